//! The nemesis table checked at load against the scenario's cluster and platform: each fault's
//! and step's parameters, what it needs of the platform and of this machine, and whom it may hit.
//! Errors say what to change.

use super::{Fault, Nemesis, PlannedStep, StepKind, StepTarget, Target};
use crate::cluster::PlatformKind;
use crate::limits::{
    IN_FLIGHT_RESET_MIN_MAX, SEQUENCE_STEPS_MAX, TRIGGER_FOLLOWER_LAG_MIN_MAX,
    TRIGGER_WITHIN_MS_MAX,
};
use crate::platform;

/// What the checks need of the rest of the scenario.
pub struct Context {
    pub platform: PlatformKind,
    /// Brokers and the controller.
    pub nodes: usize,
}

/// Every check of the nemesis table (`steps`: its sequence, planned) that does not need the
/// scenario's topic and clients.
pub fn nemesis(n: &Nemesis, steps: &[PlannedStep], c: &Context) -> Result<(), String> {
    sequence_use(n, steps)?;
    capabilities(n, c.platform)?;
    let targets = Target::parse_list(&n.target).unwrap_or_default();
    for fault in &n.faults {
        fault_params(fault, n, &targets, c)?;
    }
    for (k, step) in steps.iter().enumerate() {
        step_params(k + 1, step, steps, c)?;
    }
    if n.torn_writes && !n.setup().lazyfs {
        return Err("nemesis.torn_writes tears the writes a power loss drops: it needs a \"power_loss\" fault or a power_loss step in nemesis.sequence".into());
    }
    machine(n, c.platform)?;
    trigger(n)?;
    follower_lag_trigger(n, &targets)?;
    if n.reset_in_flight_min > 0 && !n.faults.contains(&Fault::DropResponses) {
        return Err("nemesis.reset_in_flight_min resets connections whose responses a drop_responses fault holds back: it needs a \"drop_responses\" fault".into());
    }
    if n.reset_cuts_request && !n.faults.contains(&Fault::Reset) {
        return Err(
            "nemesis.reset_cuts_request aims the resets of a \"reset\" fault: it needs one".into(),
        );
    }
    if n.reset_in_flight_min > IN_FLIGHT_RESET_MIN_MAX {
        return Err(format!(
            "nemesis.reset_in_flight_min {} is more than {IN_FLIGHT_RESET_MIN_MAX}",
            n.reset_in_flight_min
        ));
    }
    if !n.faults.is_empty()
        && (!(n.interval_s > 0.0 && n.interval_s.is_finite())
            || !(n.down_s > 0.0 && n.down_s.is_finite()))
    {
        return Err("nemesis.interval_s and nemesis.down_s must be positive numbers".into());
    }
    Ok(())
}

/// A trigger names an op, aims faults that have a window on a node (a sequence's steps have no
/// single start to aim), and waits a bounded time after its op.
fn trigger(n: &Nemesis) -> Result<(), String> {
    if n.trigger_op()?.is_none() {
        return Ok(());
    }
    if n.faults.contains(&Fault::Sequence) {
        return Err("nemesis.trigger aims scheduled faults; a sequence's steps cannot be aimed (remove the trigger or the sequence)".into());
    }
    if n.trigger_within_ms > TRIGGER_WITHIN_MS_MAX {
        return Err(format!(
            "nemesis.trigger_within_ms {} is more than {TRIGGER_WITHIN_MS_MAX}",
            n.trigger_within_ms
        ));
    }
    Ok(())
}

/// `trigger_follower_lag_min` watches one partition's followers: it aims faults whose target
/// names a partition (`leader:P`, `follower:P`) or a `sequence` (which starts when partition 0's
/// follower lags), never together with `trigger`, with a lag of at least one record. (A topic
/// with followers is checked with the scenario's topic, `Scenario::check_targets`.)
fn follower_lag_trigger(n: &Nemesis, targets: &[Target]) -> Result<(), String> {
    let Some(lag) = n.trigger_follower_lag_min else {
        return Ok(());
    };
    if n.trigger.is_some() {
        return Err("nemesis.trigger_follower_lag_min and nemesis.trigger both aim the faults' start: keep one".into());
    }
    if lag == 0 || lag > TRIGGER_FOLLOWER_LAG_MIN_MAX {
        return Err(format!(
            "nemesis.trigger_follower_lag_min {lag} must be from 1 to {TRIGGER_FOLLOWER_LAG_MIN_MAX} records"
        ));
    }
    let window_faults = n.faults.iter().any(|f| *f != Fault::Sequence);
    let unaimed = targets
        .iter()
        .find(|t| !matches!(t, Target::Leader(_) | Target::Follower(_)));
    if let (true, Some(t)) = (window_faults, unaimed) {
        return Err(format!("nemesis.trigger_follower_lag_min watches the followers of the partition a fault targets: nemesis.target names {t:?}, no partition (use \"leader\", \"leader:P\", \"follower\" or \"follower:P\")"));
    }
    Ok(())
}

/// A `sequence` fault and `[[nemesis.sequence]]` steps come together.
fn sequence_use(n: &Nemesis, steps: &[PlannedStep]) -> Result<(), String> {
    if n.faults.contains(&Fault::Sequence) && steps.is_empty() {
        return Err("the sequence fault needs steps: [[nemesis.sequence]] tables such as { step = \"kill\", target = \"leader\" }".into());
    }
    if !steps.is_empty() && !n.faults.contains(&Fault::Sequence) {
        return Err(
            "nemesis.sequence has steps but nemesis.faults has no \"sequence\" to run them".into(),
        );
    }
    if steps.len() > SEQUENCE_STEPS_MAX {
        return Err(format!(
            "nemesis.sequence has {} steps; at most {SEQUENCE_STEPS_MAX}",
            steps.len()
        ));
    }
    Ok(())
}

/// Every fault and step is one the platform can do (`platform::can`).
fn capabilities(n: &Nemesis, kind: PlatformKind) -> Result<(), String> {
    let Some(f) = n.faults.iter().find(|f| !platform::can(kind, f.needs())) else {
        let refused = n
            .sequence
            .iter()
            .enumerate()
            .find(|(_, s)| !platform::can(kind, s.step.needs()));
        return match refused {
            Some((k, s)) => Err(format!("nemesis.sequence step {}: the {} step is not available on the {} platform; run this scenario with platform = \"local\"", k + 1, s.step.name(), platform_name(kind))),
            None => Ok(()),
        };
    };
    let name = f.name();
    Err(match kind {
        PlatformKind::External => format!("the {name} fault is not available on the external platform: kaos does not control an external cluster's nodes (it can kill and pause the scenario's own client processes, target = \"producer-N\" or \"consumer-N\"); run this scenario on platform local or docker"),
        _ => format!("the {name} fault is not available on the {} platform; run this scenario with platform = \"local\"", platform_name(kind)),
    })
}

fn platform_name(kind: PlatformKind) -> &'static str {
    match kind {
        PlatformKind::Local => "local",
        PlatformKind::Docker => "docker",
        PlatformKind::External => "external",
    }
}

/// One fault's parameters and targets.
fn fault_params(f: &Fault, n: &Nemesis, targets: &[Target], c: &Context) -> Result<(), String> {
    let controller = Target::Node("controller".into());
    if *f == Fault::PowerLoss && targets.contains(&controller) {
        return Err(
            "power_loss targets brokers; the controller's data directory is not on lazyfs".into(),
        );
    }
    if f.setup().network {
        if targets.iter().any(|t| matches!(t, Target::Client(_))) {
            return Err(
                "nemesis.target: partitions and link faults target nodes, not client processes"
                    .into(),
            );
        }
        if f.is_link_fault() && targets.contains(&controller) {
            return Err(
                "nemesis.target: link faults act on a broker's proxy; the controller has none"
                    .into(),
            );
        }
    }
    match f {
        Fault::PartitionNode | Fault::PartitionHalves if c.nodes < 2 => {
            Err("partition_node and partition_halves need at least two nodes".into())
        }
        Fault::Bandwidth if n.bandwidth_bytes_per_s == 0 => {
            Err("nemesis.bandwidth_bytes_per_s must be positive".into())
        }
        Fault::Reset if n.reset_interval_ms == 0 => {
            Err("nemesis.reset_interval_ms must be positive".into())
        }
        _ => Ok(()),
    }
}

/// Step `k`'s target and the nodes it needs.
fn step_params(
    k: usize,
    step: &PlannedStep,
    steps: &[PlannedStep],
    c: &Context,
) -> Result<(), String> {
    let PlannedStep::Fault { kind, target } = step else {
        return Ok(());
    };
    match kind {
        StepKind::PowerLoss
            if base_target(steps, target) == Some(&Target::Node("controller".into())) =>
        {
            Err(format!("nemesis.sequence step {k}: power_loss targets brokers; the controller's data directory is not on lazyfs"))
        }
        StepKind::Isolate if c.nodes < 2 => Err("an isolate step needs at least two nodes".into()),
        _ => Ok(()),
    }
}

/// What this machine must provide for the faults (Jepsen's nemesis `setup!`, checked before
/// anything starts): root for drop caches, lazyfs, network namespaces or nftables.
fn machine(n: &Nemesis, kind: PlatformKind) -> Result<(), String> {
    if n.faults.contains(&Fault::DropCaches) {
        super::host::drop_caches_available()?;
    }
    let setup = n.setup();
    if setup.lazyfs {
        crate::lazyfs::check_available()
            .map_err(|e| format!("the power_loss fault needs the lazyfs file system: {e}"))?;
    }
    if setup.network {
        match kind {
            PlatformKind::Local => crate::netns::check_available()
                .map_err(|e| format!("the partition and link faults: {e}"))?,
            PlatformKind::Docker if n.faults.iter().any(Fault::is_partition) => {
                crate::platform::docker::partitions_available()?
            }
            PlatformKind::Docker | PlatformKind::External => {}
        }
    }
    Ok(())
}

/// The target a step finally names, following `step:K` references back (None for a wait).
fn base_target<'a>(steps: &'a [PlannedStep], target: &'a StepTarget) -> Option<&'a Target> {
    let mut target = target;
    for _ in 0..=steps.len() {
        match target {
            StepTarget::Target(t) => return Some(t),
            StepTarget::SameAs(j) => match steps.get(j - 1)? {
                PlannedStep::Fault { target: t, .. } => target = t,
                PlannedStep::Wait { .. } | PlannedStep::Heal => return None,
            },
        }
    }
    None
}
