//! The nemesis: a seeded schedule of faults, drawn before the run starts so that the same seed
//! gives the same faults, and the loop that carries it out: each fault (defined in
//! [`crate::fault`]) through its invoke and teardown actions, each `sequence` step as one action. Targets such as "the leader of partition 0" are
//! resolved from live metadata at the moment the fault starts.

use crate::clients::ClientSet;
use crate::fault::act::{hold, not_done, Act, Outcome};
use crate::fault::lag::{self, FollowerLag};
use crate::fault::network::Plan;
use crate::fault::{self, Action, Fault, Nemesis, PlannedStep, Protocol, StepTarget, Target};
use crate::history::Recorder;
use crate::limits::{LAG_PROBE_INTERVAL_MS, TRIGGER_WAIT_MS_MAX};
use crate::platform::Platform;
use kaos_history::{OpType, F, NEMESIS};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::sync::watch;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultEvent {
    pub fault: Fault,
    /// None for a `sequence`, whose steps carry their own targets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    pub start_s: f64,
    pub end_s: f64,
}

/// The faults of a run, in time order, none overlapping, all ending before `duration_s`. A
/// `random` target is drawn here, among the brokers `n1..n{broker_count}`; several targets are
/// taken in turn.
pub fn schedule(
    nemesis: &Nemesis,
    targets: &[Target],
    broker_count: usize,
    duration_s: f64,
    seed: u64,
) -> Vec<FaultEvent> {
    let mut events = Vec::new();
    if nemesis.faults.is_empty() || broker_count == 0 || targets.is_empty() {
        return events;
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut t = nemesis.interval_s * rng.random_range(0.5..1.5);
    let mut k = 0;
    loop {
        let fault = nemesis.faults[k % nemesis.faults.len()].clone();
        let length_s = if fault == Fault::Sequence {
            nemesis.sequence_length_s()
        } else {
            nemesis.down_s
        };
        if t + length_s >= duration_s {
            break;
        }
        let target = match (&fault, &targets[k % targets.len()]) {
            (Fault::Sequence, _) => None,
            (_, Target::Random) => Some(Target::Node(format!(
                "n{}",
                rng.random_range(1..=broker_count)
            ))),
            (_, other) => Some(other.clone()),
        };
        events.push(FaultEvent {
            fault,
            target,
            start_s: t,
            end_s: t + length_s,
        });
        t += length_s + nemesis.interval_s * rng.random_range(0.5..1.5);
        k += 1;
    }
    events
}

/// What the nemesis needs to resolve targets from live metadata.
pub struct Resolver {
    pub bootstrap: String,
    pub topic: String,
    /// The scenario's consumer group, for the `coordinator` target.
    pub group: Option<String>,
    /// The scenario's first transactional id, for the `txn_coordinator` target.
    pub transactional_id: Option<String>,
    /// Follower choices and partition sides.
    rng: StdRng,
}

/// Kafka's internal topic of committed offsets; a group's coordinator leads one of its partitions.
const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Kafka's internal topic of transaction states; a transactional id's coordinator leads one of
/// its partitions (the same hash as a group's).
const TXN_STATE_TOPIC: &str = "__transaction_state";

/// Java's `String.hashCode` over UTF-16 code units, then Kafka's `Utils.abs` (MIN_VALUE → 0), mod
/// `partitions`: the `__consumer_offsets` partition of a group.
fn group_partition(group: &str, partitions: usize) -> i32 {
    let h = group
        .encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)));
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    (abs as usize % partitions.max(1)) as i32
}

impl Resolver {
    pub fn new(bootstrap: String, topic: String, group: Option<String>, seed: u64) -> Self {
        // Its own stream, so that resolving does not shift the schedule's draws.
        Resolver {
            bootstrap,
            topic,
            group,
            transactional_id: None,
            rng: StdRng::seed_from_u64(seed ^ 0x6b61_6f73),
        }
    }

    /// Like [`Resolver::resolve`], and a `random` target drawn now among the brokers (a
    /// sequence step's draw happens when the step starts).
    async fn resolve_now(&mut self, target: &Target, platform: &Platform) -> Result<usize, String> {
        if *target == Target::Random {
            let brokers = platform.broker_dirs().len();
            if brokers == 0 {
                return Err("the cluster has no broker".into());
            }
            let name = format!("n{}", self.rng.random_range(1..=brokers));
            return platform
                .index_of(&name)
                .ok_or_else(|| format!("no node {name}"));
        }
        self.resolve(target, platform).await
    }

    /// The platform index of the node a target names now.
    async fn resolve(&mut self, target: &Target, platform: &Platform) -> Result<usize, String> {
        let by_name = |name: &str| {
            platform
                .index_of(name)
                .ok_or_else(|| format!("no node {name}"))
        };
        let partition = match target {
            Target::Node(name) => return by_name(name),
            Target::Random => return Err("random targets are drawn in the schedule".into()),
            Target::Client(name) => return Err(format!("{name} is a client, not a node")),
            Target::Leader(p) | Target::Follower(p) | Target::OutputLeader(p) => *p,
            Target::Coordinator | Target::TxnCoordinator => -1,
        };
        let topic = match target {
            Target::Coordinator => OFFSETS_TOPIC.to_string(),
            Target::TxnCoordinator => TXN_STATE_TOPIC.to_string(),
            // The run's output topic is named after its topic (`Scenario::output_topic`).
            Target::OutputLeader(_) => format!("{}-output", self.topic),
            _ => self.topic.clone(),
        };
        let (bootstrap, asked) = (self.bootstrap.clone(), topic.clone());
        let roles = tokio::task::spawn_blocking(move || {
            workloads::admin::partition_roles(&bootstrap, &asked)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        let partition = match target {
            Target::Coordinator => group_partition(
                self.group
                    .as_deref()
                    .ok_or("the scenario has no consumer group")?,
                roles.len(),
            ),
            Target::TxnCoordinator => group_partition(
                self.transactional_id
                    .as_deref()
                    .ok_or("the scenario has no transactional client")?,
                roles.len(),
            ),
            _ => partition,
        };
        let roles = roles
            .iter()
            .find(|r| r.partition == partition)
            .ok_or_else(|| format!("partition {partition} of {topic} is not in the metadata"))?;
        let node_id = match target {
            Target::Leader(_)
            | Target::OutputLeader(_)
            | Target::Coordinator
            | Target::TxnCoordinator
                if roles.leader >= 0 =>
            {
                roles.leader
            }
            Target::Leader(_)
            | Target::OutputLeader(_)
            | Target::Coordinator
            | Target::TxnCoordinator => {
                return Err(format!(
                    "partition {partition} of {topic} has no leader now"
                ))
            }
            _ => {
                let followers: Vec<i32> = roles
                    .replicas
                    .iter()
                    .copied()
                    .filter(|&r| r != roles.leader)
                    .collect();
                if followers.is_empty() {
                    return Err(format!("partition {partition} has no follower"));
                }
                followers[self.rng.random_range(0..followers.len())]
            }
        };
        platform.broker_index(node_id).ok_or_else(|| {
            format!("metadata names node id {node_id}, which this cluster does not have")
        })
    }
}

/// Carries out the schedule against the platform and the clients; returns when the last fault
/// has ended.
///
/// A fault that ends late (a kill, a restart or a container start slower than the schedule
/// allowed) shifts every later fault by as much, so that the up time the schedule put between
/// two faults is kept: without it a slow platform turns "down 1 s every 4 s" into faults back to
/// back, the node never up long enough for the clients to deliver what waited for it. A fault
/// that the shift would push past the end of the timed phase (`duration_s`) is not started; a
/// `nemesis` `info` op `schedule_late` says how many were left out and by how much the schedule
/// ran late.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    nemesis: &Nemesis,
    events: &[FaultEvent],
    platform: &mut Platform,
    clients: &mut ClientSet,
    resolver: &mut Resolver,
    rec: &Recorder,
    t0: Instant,
    duration_s: f64,
) -> anyhow::Result<()> {
    let trigger = nemesis.trigger_op().map_err(anyhow::Error::msg)?;
    let mut ctx = Ctx {
        nemesis,
        platform,
        resolver,
        rec,
        trigger: trigger.map(|f| (f, rec.live().arm_trigger(f))),
        phase_end: t0 + Duration::from_secs_f64(duration_s),
    };
    let mut late_s = 0.0f64;
    let mut previous_end_s: Option<f64> = None;
    for (number, scheduled) in events.iter().enumerate() {
        if let Some(end_s) = previous_end_s {
            late_s = late_s.max(t0.elapsed().as_secs_f64() - end_s);
        }
        previous_end_s = Some(scheduled.end_s);
        let Some(ev) = &shifted(scheduled, late_s, duration_s) else {
            let left_out = events.len() - number;
            let value = json!({"late_s": late_s, "faults_left_out": left_out});
            rec.op(NEMESIS, OpType::Info, F::ScheduleLate, value, None)
                .await;
            break;
        };
        notice_crashes(ctx.platform, rec).await;
        tokio::time::sleep_until((t0 + Duration::from_secs_f64(ev.start_s)).into()).await;
        notice_crashes(ctx.platform, rec).await;
        let until = t0 + Duration::from_secs_f64(ev.end_s);
        match (ev.fault.protocol(), &ev.target) {
            (Protocol::Window { invoke, teardown }, Some(Target::Client(name))) => {
                fault::client::window(invoke, teardown, name, clients, rec, until).await?
            }
            (Protocol::Window { invoke, teardown }, Some(target)) => {
                ctx.window(invoke, teardown, target, until).await?
            }
            (Protocol::Steps, _) | (_, None) => ctx.sequence(number).await?,
        }
    }
    Ok(())
}

/// A scheduled fault moved `late_s` later, or None when it would then not end before the timed
/// phase does (`duration_s`).
fn shifted(scheduled: &FaultEvent, late_s: f64, duration_s: f64) -> Option<FaultEvent> {
    let late_s = late_s.max(0.0);
    (scheduled.end_s + late_s < duration_s).then(|| FaultEvent {
        start_s: scheduled.start_s + late_s,
        end_s: scheduled.end_s + late_s,
        ..scheduled.clone()
    })
}

/// What the nemesis acts with while the schedule runs.
struct Ctx<'a> {
    nemesis: &'a Nemesis,
    platform: &'a mut Platform,
    resolver: &'a mut Resolver,
    rec: &'a Recorder,
    /// `nemesis.trigger`: its op and the count of its `ok`s as the history writer sees them.
    trigger: Option<(F, watch::Receiver<u64>)>,
    /// The end of the timed phase: a trigger is not awaited past it.
    phase_end: Instant,
}

impl Ctx<'_> {
    /// One scheduled fault on a node: its target resolved now, `invoke`, the fault held until
    /// `until`, then `teardown`; a node that cannot come back ends the run.
    async fn window(
        &mut self,
        invoke: Action,
        teardown: Option<Action>,
        target: &Target,
        until: Instant,
    ) -> anyhow::Result<()> {
        let target_value = serde_json::to_value(target).unwrap_or_default();
        // A state trigger waits before the target is resolved: the roles may change meanwhile.
        let partition = match target {
            Target::Leader(p) | Target::Follower(p) => *p,
            _ => 0,
        };
        let lagged = self.await_follower_lag(partition).await;
        let resolved = match (target, &lagged) {
            // The follower the trigger saw lagging.
            (Target::Follower(_), Some((_, Some(seen)))) => {
                self.platform.broker_index(seen.follower).ok_or_else(|| {
                    format!(
                        "metadata names node id {}, which this cluster does not have",
                        seen.follower
                    )
                })
            }
            _ => self.resolver.resolve(target, self.platform).await,
        };
        let node = match resolved {
            Ok(node) => node,
            Err(why) => {
                // Nothing was done: the fault definitely did not happen.
                let mut value = json!({"target": target_value});
                if let Some((seen, _)) = lagged {
                    value["trigger"] = seen;
                }
                not_done(self.rec, invoke.op(), value, why).await;
                return Ok(());
            }
        };
        let name = self.platform.name(node).to_string();
        let mut value = json!({"node": name, "target": target_value});
        if let Some((seen, _)) = lagged {
            value["trigger"] = seen;
        }
        let until = match self.aim().await {
            Ok(None) if value.get("trigger").is_some() => {
                Instant::now() + Duration::from_secs_f64(self.nemesis.down_s)
            }
            Ok(None) => until,
            Ok(Some(fired)) => {
                value["trigger"] = fired;
                Instant::now() + Duration::from_secs_f64(self.nemesis.down_s)
            }
            Err(why) => {
                not_done(self.rec, invoke.op(), value, why).await;
                return Ok(());
            }
        };
        // Recorded as info or fail; the schedule goes on.
        let _ = self.act(invoke, node, value, false).await;
        let Some(teardown) = teardown else {
            return Ok(());
        };
        hold(self.platform, invoke, node, self.nemesis, until).await;
        match teardown {
            Action::Restart => restart(self.platform, node, self.rec).await,
            Action::Resume => resume(self.platform, node, self.rec).await,
            _ => heal(self.platform, Some(&name), self.rec).await,
        }
    }

    /// With `trigger_follower_lag_min`: measures the followers of `partition` every
    /// `LAG_PROBE_INTERVAL_MS` until one lags its leader by at least that many records, for at
    /// most `interval_s` (and `TRIGGER_WAIT_MS_MAX`, never past the timed phase). Returns what
    /// the fault's op records of it — the lag seen, which follower, how long it waited; or, when
    /// the state never came, `"reached": false` with the largest lag seen (the fault then starts
    /// all the same) — and the lag that fired it. None without this trigger.
    async fn await_follower_lag(&mut self, partition: i32) -> Option<(Value, Option<FollowerLag>)> {
        let lag_min = self.nemesis.trigger_follower_lag_min?;
        let started = Instant::now();
        let wait = Duration::from_secs_f64(self.nemesis.interval_s)
            .min(Duration::from_millis(TRIGGER_WAIT_MS_MAX))
            .min(self.phase_end.saturating_duration_since(started));
        let (bootstrap, topic) = (self.resolver.bootstrap.clone(), self.resolver.topic.clone());
        let mut most: Option<FollowerLag> = None;
        let mut last_error: Option<String> = None;
        let mut probes = 0u64;
        loop {
            probes += 1;
            match lag::measure(&bootstrap, &topic, partition).await {
                Ok(seen) if seen.lag >= lag_min as i64 => {
                    let value = json!({
                        "follower_lag_min": lag_min, "reached": true, "seen": seen,
                        "waited_ms": started.elapsed().as_millis() as u64, "probes": probes,
                    });
                    return Some((value, Some(seen)));
                }
                Ok(seen) => {
                    if most.as_ref().is_none_or(|m| seen.lag > m.lag) {
                        most = Some(seen);
                    }
                }
                Err(e) => last_error = Some(e),
            }
            if started.elapsed() >= wait {
                break;
            }
            tokio::time::sleep(Duration::from_millis(LAG_PROBE_INTERVAL_MS)).await;
        }
        let value = json!({
            "follower_lag_min": lag_min, "reached": false, "lag_max_seen": most,
            "last_error": last_error, "waited_ms": started.elapsed().as_millis() as u64,
            "probes": probes, "then": "started the fault all the same",
        });
        Some((value, None))
    }

    /// With a trigger: waits for the next `ok` of its op (at most `TRIGGER_WAIT_MS_MAX`, never
    /// past the timed phase), then a delay drawn from the seed in `0..=trigger_within_ms`;
    /// returns what the fault's op records of it (`{"op", "delay_ms"}`). None without a trigger;
    /// an error when the op did not come.
    async fn aim(&mut self) -> Result<Option<Value>, String> {
        let Some((f, seen)) = &mut self.trigger else {
            return Ok(None);
        };
        seen.borrow_and_update();
        let wait = Duration::from_millis(TRIGGER_WAIT_MS_MAX)
            .min(self.phase_end.saturating_duration_since(Instant::now()));
        match tokio::time::timeout(wait, seen.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err("the history writer stopped".into()),
            Err(_) => {
                return Err(format!(
                    "trigger: no {} ok within {:.1} s of the fault's start",
                    f.name(),
                    wait.as_secs_f64()
                ))
            }
        }
        let delay_ms = self
            .resolver
            .rng
            .random_range(0..=self.nemesis.trigger_within_ms);
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        Ok(Some(json!({"op": f.name(), "delay_ms": delay_ms})))
    }

    /// `action` on `node`, planned (partition sides, link parameters) into `value` and carried
    /// out; `checked`: refused when the node's state does not allow it.
    async fn act(
        &mut self,
        action: Action,
        node: usize,
        mut value: Value,
        checked: bool,
    ) -> Outcome {
        let rng = &mut self.resolver.rng;
        let plan = Plan::new(action, node, self.platform, self.nemesis, rng, &mut value);
        let act = Act {
            plan,
            checked,
            ..Act::new(action, Some(node), value)
        };
        act.run(self.platform, self.rec).await
    }

    /// Runs the steps of `nemesis.sequence` in order, as event number `number` of the schedule,
    /// between a `sequence` invoke and its `ok`. Each step resolves its target when it starts
    /// (or takes the node of the step it names) and is recorded as its own op (`kill`, `pause`,
    /// `resume`, `restart`, `power_loss`, `isolate`, `heal`) with `"sequence"` and `"step"`
    /// (1-based) in its value. A step that cannot act (no leader now, the node already down, not
    /// paused) is a `fail` and the sequence goes on; a node that cannot restart ends the run.
    /// What the sequence leaves down, paused or isolated is restarted, resumed or healed at the
    /// end of the run.
    async fn sequence(&mut self, number: usize) -> anyhow::Result<()> {
        let steps = self
            .nemesis
            .planned_sequence()
            .map_err(anyhow::Error::msg)?;
        let mut value = json!({"sequence": number, "steps": self.nemesis.sequence});
        if let Some((seen, _)) = self.await_follower_lag(0).await {
            value["trigger"] = seen;
        }
        self.rec
            .op(NEMESIS, OpType::Invoke, F::Sequence, value, None)
            .await;
        let mut nodes: Vec<Option<usize>> = Vec::with_capacity(steps.len());
        for (i, step) in steps.iter().enumerate() {
            let node = self.step(number, i + 1, step, &nodes).await?;
            nodes.push(node);
        }
        let value = json!({"sequence": number, "steps": self.nemesis.sequence.len()});
        self.rec
            .op(NEMESIS, OpType::Ok, F::Sequence, value, None)
            .await;
        Ok(())
    }

    /// Step `k` of sequence `number`; the node it hit, if any (`nodes`: those of the steps
    /// before it).
    async fn step(
        &mut self,
        number: usize,
        k: usize,
        step: &PlannedStep,
        nodes: &[Option<usize>],
    ) -> anyhow::Result<Option<usize>> {
        let (kind, target) = match step {
            PlannedStep::Wait { ms } => {
                tokio::time::sleep(Duration::from_millis(*ms)).await;
                return Ok(None);
            }
            PlannedStep::Heal => {
                let value = json!({"sequence": number, "step": k});
                let _ = Act::new(Action::Heal, None, value)
                    .run(self.platform, self.rec)
                    .await;
                return Ok(None);
            }
            PlannedStep::Fault { kind, target } => (*kind, target),
        };
        let Some(action) = kind.action() else {
            return Ok(None); // planned as a wait, never a fault step
        };
        let (target_value, resolved) = match target {
            StepTarget::SameAs(j) => (
                json!(format!("step:{j}")),
                nodes
                    .get(j - 1)
                    .copied()
                    .flatten()
                    .ok_or_else(|| format!("step {j} hit no node")),
            ),
            StepTarget::Target(t) => (
                serde_json::to_value(t).unwrap_or_default(),
                self.resolver.resolve_now(t, self.platform).await,
            ),
        };
        let node = match resolved {
            Ok(node) => node,
            Err(why) => {
                let value = json!({"target": target_value, "sequence": number, "step": k});
                not_done(self.rec, action.op(), value, why).await;
                return Ok(None);
            }
        };
        let name = self.platform.name(node).to_string();
        let value = json!({"node": name, "target": target_value, "sequence": number, "step": k});
        match self.act(action, node, value, true).await {
            Outcome::Failed(e) if matches!(action, Action::Restart | Action::Start) => Err(e),
            Outcome::Done | Outcome::Refused | Outcome::Failed(_) => Ok(Some(node)),
        }
    }
}

/// Records every node that exited on its own since the last look (outside any fault: what the
/// nemesis kills it reaps itself) as a `crash` `info` of the nemesis, saying what its exit code
/// means and the last lines of its log: "node n2 crashed: invariant violated (exit 71)". The
/// node is down from then on, and the end of the run restarts it. Returns how many there were.
pub async fn notice_crashes(platform: &mut Platform, rec: &Recorder) -> usize {
    let exited = platform.exited().await;
    for (node, status) in &exited {
        let name = platform.name(*node).to_string();
        let (meaning, invalid) = platform.exit_meaning(status);
        let log_tail = crate::platform::log_tail(&platform.log_path(*node));
        let what = format!("node {name} crashed: {meaning}");
        eprintln!("kaos: {what}; the last lines of its log:\n  {log_tail}");
        let value = json!({"node": name, "exit_code": status.code(), "meaning": meaning, "invalid": invalid, "log_tail": log_tail});
        rec.op(NEMESIS, OpType::Info, F::Crash, value, Some(what))
            .await;
    }
    exited.len()
}

/// Lifts the partition or link fault on `node` (every one, with None) and records a `heal`.
pub async fn heal(
    platform: &mut Platform,
    node: Option<&str>,
    rec: &Recorder,
) -> anyhow::Result<()> {
    let value = node.map_or(serde_json::Value::Null, |n| json!({"node": n}));
    ended(Act::new(Action::Heal, None, value).run(platform, rec).await)
}

/// Wakes a paused node and records it.
pub async fn resume(platform: &mut Platform, node: usize, rec: &Recorder) -> anyhow::Result<()> {
    let value = json!({"node": platform.name(node)});
    ended(
        Act::new(Action::Resume, Some(node), value)
            .run(platform, rec)
            .await,
    )
}

/// Restarts a node that is down and records it; a node that cannot start ends the run.
pub async fn restart(platform: &mut Platform, node: usize, rec: &Recorder) -> anyhow::Result<()> {
    if platform.is_running(node) {
        return Ok(());
    }
    let value = json!({"node": platform.name(node)});
    ended(
        Act::new(Action::Restart, Some(node), value)
            .run(platform, rec)
            .await,
    )
}

/// A teardown that failed ends the run.
fn ended(outcome: Outcome) -> anyhow::Result<()> {
    match outcome {
        Outcome::Failed(e) => Err(e),
        Outcome::Done | Outcome::Refused => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kill_every(interval_s: f64, down_s: f64) -> Nemesis {
        Nemesis {
            faults: vec![Fault::Kill],
            interval_s,
            down_s,
            target: "random".into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_seed_fixes_the_schedule() {
        let n = kill_every(3.0, 1.0);
        let a = schedule(&n, &[Target::Random], 3, 60.0, 42);
        assert_eq!(a, schedule(&n, &[Target::Random], 3, 60.0, 42));
        assert_ne!(a, schedule(&n, &[Target::Random], 3, 60.0, 43));
        assert!(a.len() >= 10, "{}", a.len());
        let drawn: std::collections::BTreeSet<_> = a.iter().map(|e| e.target.clone()).collect();
        assert!(drawn.len() > 1, "random targets vary: {drawn:?}");
    }

    #[test]
    fn faults_do_not_overlap_and_end_in_time() {
        let n = kill_every(2.0, 1.5);
        for seed in 0..50 {
            let events = schedule(&n, &[Target::Random], 2, 30.0, seed);
            for w in events.windows(2) {
                assert!(w[0].end_s <= w[1].start_s);
            }
            for e in &events {
                assert!(e.start_s > 0.0 && e.end_s < 30.0);
                assert!(matches!(&e.target, Some(Target::Node(n)) if n == "n1" || n == "n2"));
                assert!((e.end_s - e.start_s - 1.5).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn fixed_and_dynamic_targets_are_kept_and_no_faults_means_none() {
        let n = kill_every(1.0, 0.5);
        assert!(schedule(&n, &[Target::Leader(1)], 3, 20.0, 1)
            .iter()
            .all(|e| e.target == Some(Target::Leader(1))));
        assert!(schedule(&Nemesis::default(), &[Target::Random], 3, 20.0, 1).is_empty());
        let both = schedule(&n, &[Target::Leader(0), Target::Coordinator], 3, 20.0, 1);
        assert!(both.len() >= 4);
        assert!(both
            .iter()
            .step_by(2)
            .all(|e| e.target == Some(Target::Leader(0))));
        assert!(both
            .iter()
            .skip(1)
            .step_by(2)
            .all(|e| e.target == Some(Target::Coordinator)));
    }

    #[test]
    fn a_sequence_is_one_event_as_long_as_its_waits_without_a_target() {
        let text = r#"
faults = ["sequence", "kill"]
interval_s = 2.0
target = "leader"
[[sequence]]
step = "kill"
target = "follower"
[[sequence]]
step = "wait_ms"
ms = 1500
[[sequence]]
step = "restart"
target = "step:1"
[[sequence]]
step = "wait_ms"
ms = 500
"#;
        let n: Nemesis = toml::from_str(text).expect("nemesis table");
        let events = schedule(&n, &[Target::Leader(0)], 2, 30.0, 5);
        assert!(events.len() >= 4, "{events:?}");
        for pair in events.chunks(2) {
            assert_eq!(pair[0].fault, Fault::Sequence);
            assert_eq!(pair[0].target, None);
            assert!(
                (pair[0].end_s - pair[0].start_s - 2.0).abs() < 1e-9,
                "{:?}",
                pair[0]
            );
            if let Some(kill) = pair.get(1) {
                assert_eq!(
                    (kill.fault.clone(), kill.target.clone()),
                    (Fault::Kill, Some(Target::Leader(0)))
                );
            }
        }
        // The scheduled events never overlap, whatever their lengths.
        for w in events.windows(2) {
            assert!(w[0].end_s <= w[1].start_s);
        }
    }

    #[test]
    fn a_late_fault_shifts_the_next_one_and_one_that_no_longer_fits_is_left_out() {
        let ev = FaultEvent {
            fault: Fault::PowerLoss,
            target: Some(Target::Node("n1".into())),
            start_s: 6.0,
            end_s: 7.0,
        };
        assert_eq!(
            shifted(&ev, 0.0, 14.0),
            Some(ev.clone()),
            "on time: as scheduled"
        );
        let late = shifted(&ev, 2.5, 14.0).expect("still fits");
        assert_eq!(
            (late.start_s, late.end_s),
            (8.5, 9.5),
            "the up time before it is kept: it moves by the lateness"
        );
        assert_eq!(late.fault, ev.fault);
        assert_eq!(late.target, ev.target);
        assert_eq!(
            shifted(&ev, 7.0, 14.0),
            None,
            "ending at the end of the timed phase: left out"
        );
        assert_eq!(
            shifted(&ev, -1.0, 14.0),
            Some(ev.clone()),
            "early is not a reason to start sooner"
        );
    }

    #[test]
    fn groups_hash_to_the_partition_kafka_picks() {
        // Java: "group".hashCode() == 98629247; "".hashCode() == 0;
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE, which Kafka's abs maps to 0.
        assert_eq!(group_partition("group", 50), 98629247 % 50);
        assert_eq!(group_partition("", 8), 0);
        assert_eq!(group_partition("polygenelubricants", 7), 0);
        // Negative hashes (computed independently): "consumers" → -421004483, "kaos-a" → -1138647794.
        assert_eq!(group_partition("consumers", 8), 3);
        assert_eq!(group_partition("kaos-a", 8), 2);
    }
}
