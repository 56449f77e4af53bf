//! An action carried out on a platform and recorded, Jepsen's way: the `invoke` before it, then
//! `ok` with what it did, `info` when it may or may not have happened, `fail` when it certainly
//! did not. The seeded schedule and the `sequence` steps both act through here.

use super::network::{Cut, Plan};
use super::{host, Action, LinkKind, Nemesis};
use crate::history::Recorder;
use crate::platform::Platform;
use kaos_history::{OpType, F, NEMESIS};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// One action on one node (None: the whole network, for `heal`), with the op value it is
/// recorded with and what was decided before it started.
pub struct Act {
    pub action: Action,
    pub node: Option<usize>,
    pub value: Value,
    pub plan: Plan,
    /// Refuse (a `fail`) what the node's state does not allow: a kill of a node that is down, a
    /// resume of one that is not paused (a sequence step; the schedule acts regardless).
    pub checked: bool,
}

/// How an action ended; it is recorded already.
pub enum Outcome {
    Done,
    /// The node's state did not allow it.
    Refused,
    Failed(anyhow::Error),
}

impl Act {
    pub fn new(action: Action, node: Option<usize>, value: Value) -> Act {
        Act {
            action,
            node,
            value,
            plan: Plan::Nothing,
            checked: false,
        }
    }

    /// Records the invoke, carries the action out and records how it ended.
    pub async fn run(self, platform: &mut Platform, rec: &Recorder) -> Outcome {
        let Act {
            action,
            node,
            value,
            plan,
            checked,
        } = self;
        let f = action.op();
        rec.op(NEMESIS, OpType::Invoke, f, value.clone(), None)
            .await;
        if let Some(why) = node
            .filter(|_| checked)
            .and_then(|n| refusal(platform, action, n))
        {
            rec.op(NEMESIS, OpType::Fail, f, value, Some(why)).await;
            return Outcome::Refused;
        }
        let result = perform(platform, action, node, plan).await;
        record_end(rec, action, value, &result).await;
        match result {
            Ok(_) => Outcome::Done,
            Err(e) => Outcome::Failed(e),
        }
    }
}

/// Why node `node`'s state does not allow `action`, if it does not.
fn refusal(platform: &Platform, action: Action, node: usize) -> Option<String> {
    let (running, paused) = (platform.is_running(node), platform.is_paused(node));
    let name = platform.name(node);
    match action {
        Action::Kill | Action::PowerLoss | Action::Pause if !running => {
            Some(format!("node {name} is down"))
        }
        Action::Pause if paused => Some(format!("node {name} is already paused")),
        Action::Resume if !paused => Some(format!("node {name} is not paused")),
        Action::Restart | Action::Start if running => Some(format!("node {name} is running")),
        _ => None,
    }
}

/// Does `action` through the platform; what it learned (a PID, what lazyfs dropped).
async fn perform(
    platform: &mut Platform,
    action: Action,
    node: Option<usize>,
    plan: Plan,
) -> anyhow::Result<Value> {
    match action {
        Action::Heal => {
            platform.heal_network()?;
            // What the proxies saw while the fault lasted: how many requests a connection had
            // in flight at most, how many were reset on reaching `reset_in_flight_min`, and how
            // many requests resets cut (`reset_cuts_request`).
            let seen = platform.take_in_flight();
            return Ok(if seen.is_empty() {
                json!({})
            } else {
                json!({ "in_flight": seen.into_iter().map(|(node, f)| json!({"node": node, "max": f.max, "resets": f.resets, "cut": f.cut})).collect::<Vec<_>>() })
            });
        }
        Action::DropCaches => return Ok(host::drop_caches().map(|()| json!({}))?),
        _ => {}
    }
    let n = node.ok_or_else(|| anyhow::anyhow!("{} needs a node", action.op()))?;
    let pid = |pid: Option<u32>| json!({ "pid": pid });
    match (action, plan) {
        (Action::Kill, _) => platform.kill(n).await.map(pid),
        (Action::PowerLoss, _) => platform
            .power_loss(n)
            .await
            .map(|(pid, dropped)| json!({"pid": pid, "lazyfs": dropped})),
        (Action::Pause, _) => platform.pause(n, true).await.map(pid),
        (Action::Resume, _) => platform.pause(n, false).await.map(pid),
        (Action::Restart, _) => platform.start(n).await.map(|p| json!({ "pid": p })),
        (Action::Start, _) => platform
            .start_unwaited(n)
            .await
            .map(|p| json!({ "pid": p, "waited": false })),
        (Action::Partition(_), Plan::Cuts(cuts)) => partition(platform, &cuts),
        (Action::Link(LinkKind::Reset), Plan::Link(fault)) => platform
            .reset_links(n, fault.links, fault.reset_cuts_request)
            .map(|()| json!({})),
        (Action::Link(_), Plan::Link(fault)) => {
            platform.link_fault(n, Some(fault)).map(|()| json!({}))
        }
        (action, _) => anyhow::bail!("{} was not planned", action.op()),
    }
}

fn partition(platform: &mut Platform, cuts: &[Cut]) -> anyhow::Result<Value> {
    platform.partition(cuts).map(|()| json!({}))
}

/// While a fault lasts (its invoke done, until `until`): a `reset` resets its links again every
/// `reset_interval_ms`; the others only wait.
pub async fn hold(
    platform: &mut Platform,
    action: Action,
    node: usize,
    params: &Nemesis,
    until: Instant,
) {
    if action == Action::Link(LinkKind::Reset) {
        let every = Duration::from_millis(params.reset_interval_ms);
        while Instant::now() + every < until {
            tokio::time::sleep(every).await;
            let _ = platform.reset_links(node, params.links, params.reset_cuts_request);
        }
    }
    tokio::time::sleep_until(until.into()).await;
}

/// Records a fault that did not happen (its target could not be found): its `invoke` and a
/// `fail` saying why.
pub async fn not_done(rec: &Recorder, f: F, value: Value, why: String) {
    rec.op(NEMESIS, OpType::Invoke, f, value.clone(), None)
        .await;
    rec.op(NEMESIS, OpType::Fail, f, value, Some(why)).await;
}

/// Records how an action ended: `ok` with what it learned added to `value`, or the error with
/// the action's error type.
pub async fn record_end(
    rec: &Recorder,
    action: Action,
    mut value: Value,
    result: &anyhow::Result<Value>,
) {
    match result {
        Ok(extra) => {
            if let (Some(v), Some(extra)) = (value.as_object_mut(), extra.as_object()) {
                v.extend(extra.clone());
            }
            rec.op(NEMESIS, OpType::Ok, action.op(), value, None).await
        }
        Err(e) => {
            let why = format!("{e:#}");
            rec.op(NEMESIS, action.error_type(), action.op(), value, Some(why))
                .await
        }
    }
}
