//! Faults on the scenario's own client processes: a kill (the client comes back as a new
//! process) or a pause, by the same protocol as a node's.

use super::act::{not_done, record_end};
use super::Action;
use crate::clients::ClientSet;
use crate::history::Recorder;
use serde_json::json;
use std::time::Instant;

/// Opens the fault on client `name` with `invoke`, holds it until `until`, ends it with
/// `teardown`; a client that cannot restart ends the run.
pub async fn window(
    invoke: Action,
    teardown: Option<Action>,
    name: &str,
    clients: &mut ClientSet,
    rec: &Recorder,
    until: Instant,
) -> anyhow::Result<()> {
    let value = json!({ "node": name });
    let Some(i) = clients.index(name) else {
        not_done(rec, invoke.op(), value, format!("no client {name}")).await;
        return Ok(());
    };
    act(invoke, i, clients, rec, value.clone()).await?;
    let Some(teardown) = teardown else {
        return Ok(());
    };
    tokio::time::sleep_until(until.into()).await;
    act(teardown, i, clients, rec, value).await
}

/// One action on client `i`, recorded; only a failed restart is an error.
async fn act(
    action: Action,
    i: usize,
    clients: &mut ClientSet,
    rec: &Recorder,
    value: serde_json::Value,
) -> anyhow::Result<()> {
    let pid = |pid: Option<u32>| json!({ "pid": pid });
    rec.op(
        kaos_history::NEMESIS,
        kaos_history::OpType::Invoke,
        action.op(),
        value.clone(),
        None,
    )
    .await;
    let result = match action {
        Action::Pause => clients.pause(i, true).map(pid),
        Action::Resume => clients.pause(i, false).map(pid),
        Action::Restart => {
            let result = clients.restart(i, rec).await;
            let recorded = result.as_ref().map(|p| json!({ "process": p }));
            let recorded = recorded.map_err(|e| anyhow::anyhow!("{e:#}"));
            record_end(rec, action, value, &recorded).await;
            return result.map(|_| ());
        }
        _ => clients.kill(i).await.map(pid),
    };
    record_end(rec, action, value, &result).await;
    Ok(())
}
