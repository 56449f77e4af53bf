//! The nemesis: a seeded schedule of faults, drawn before the run starts so that the same seed
//! gives the same faults, and the code that carries each fault out through the platform and
//! records its start and end in the history. Targets such as "the leader of partition 0" are
//! resolved from live metadata at the moment the fault starts.

use crate::clients::ClientSet;
use crate::history::Recorder;
use crate::netns::Endpoint;
use crate::platform::Platform;
use crate::proxy::LinkFault;
use crate::scenario::{Fault, Nemesis, PlannedStep, StepKind, StepTarget, Target};
use kaos_history::{OpType, F, NEMESIS};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::json;
use std::time::{Duration, Instant};

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
    /// Follower choices and partition sides.
    rng: StdRng,
}

/// Kafka's internal topic of committed offsets; a group's coordinator leads one of its partitions.
const OFFSETS_TOPIC: &str = "__consumer_offsets";

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
            Target::Leader(p) | Target::Follower(p) => *p,
            Target::Coordinator => -1,
        };
        let topic = if *target == Target::Coordinator {
            OFFSETS_TOPIC.to_string()
        } else {
            self.topic.clone()
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
            _ => partition,
        };
        let roles = roles
            .iter()
            .find(|r| r.partition == partition)
            .ok_or_else(|| format!("partition {partition} of {topic} is not in the metadata"))?;
        let node_id = match target {
            Target::Leader(_) | Target::Coordinator if roles.leader >= 0 => roles.leader,
            Target::Leader(_) | Target::Coordinator => {
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
    let mut late_s = 0.0f64;
    let mut previous_end_s: Option<f64> = None;
    for (number, scheduled) in events.iter().enumerate() {
        if let Some(end_s) = previous_end_s {
            late_s = late_s.max(t0.elapsed().as_secs_f64() - end_s);
        }
        previous_end_s = Some(scheduled.end_s);
        let Some(ev) = &shifted(scheduled, late_s, duration_s) else {
            let left_out = events.len() - number;
            rec.op(
                NEMESIS,
                OpType::Info,
                F::ScheduleLate,
                json!({"late_s": late_s, "faults_left_out": left_out}),
                None,
            )
            .await;
            break;
        };
        tokio::time::sleep_until((t0 + Duration::from_secs_f64(ev.start_s)).into()).await;
        let Some(ev_target) = &ev.target else {
            sequence(nemesis, number, platform, resolver, rec).await?;
            continue;
        };
        let target = serde_json::to_value(ev_target).unwrap_or_default();
        if let Target::Client(name) = ev_target {
            client_fault(ev, name, clients, rec, t0).await?;
            continue;
        }
        let node = match resolver.resolve(ev_target, platform).await {
            Ok(node) => node,
            Err(why) => {
                // Nothing was done: the fault definitely did not happen.
                not_done(rec, fault_name(&ev.fault), json!({"target": target}), why).await;
                continue;
            }
        };
        let name = platform.name(node).to_string();
        match ev.fault {
            Fault::Kill => {
                rec.op(
                    NEMESIS,
                    OpType::Invoke,
                    F::Kill,
                    json!({"node": name, "target": target}),
                    None,
                )
                .await;
                let result = platform.kill(node).await;
                close(
                    rec,
                    F::Kill,
                    &result,
                    OpType::Info,
                    |pid| json!({"node": name, "pid": pid}),
                    json!({"node": name}),
                )
                .await;
                tokio::time::sleep_until((t0 + Duration::from_secs_f64(ev.end_s)).into()).await;
                restart(platform, node, rec).await?;
            }
            Fault::PowerLoss => {
                rec.op(
                    NEMESIS,
                    OpType::Invoke,
                    F::PowerLoss,
                    json!({"node": name, "target": target}),
                    None,
                )
                .await;
                match platform.power_loss(node).await {
                    Ok((pid, dropped)) => {
                        rec.op(
                            NEMESIS,
                            OpType::Ok,
                            F::PowerLoss,
                            json!({"node": name, "pid": pid, "lazyfs": dropped}),
                            None,
                        )
                        .await
                    }
                    Err(e) => {
                        rec.op(
                            NEMESIS,
                            OpType::Info,
                            F::PowerLoss,
                            json!({"node": name}),
                            Some(format!("{e:#}")),
                        )
                        .await
                    }
                }
                tokio::time::sleep_until((t0 + Duration::from_secs_f64(ev.end_s)).into()).await;
                restart(platform, node, rec).await?;
            }
            Fault::Pause => {
                rec.op(
                    NEMESIS,
                    OpType::Invoke,
                    F::Pause,
                    json!({"node": name, "target": target}),
                    None,
                )
                .await;
                let result = platform.pause(node, true).await;
                close(
                    rec,
                    F::Pause,
                    &result,
                    OpType::Info,
                    |pid| json!({"node": name, "pid": pid}),
                    json!({"node": name}),
                )
                .await;
                tokio::time::sleep_until((t0 + Duration::from_secs_f64(ev.end_s)).into()).await;
                resume(platform, node, rec).await?;
            }
            Fault::PartitionNode | Fault::PartitionHalves | Fault::PartitionClients => {
                let (f, cuts, sides) = partition_of(&ev.fault, node, platform, &mut resolver.rng);
                rec.op(
                    NEMESIS,
                    OpType::Invoke,
                    f,
                    json!({"node": name, "target": target, "sides": sides}),
                    None,
                )
                .await;
                match platform.partition(&cuts) {
                    Ok(()) => {
                        rec.op(
                            NEMESIS,
                            OpType::Ok,
                            f,
                            json!({"node": name, "sides": sides}),
                            None,
                        )
                        .await
                    }
                    Err(e) => {
                        rec.op(
                            NEMESIS,
                            OpType::Info,
                            f,
                            json!({"node": name, "sides": sides}),
                            Some(format!("{e:#}")),
                        )
                        .await
                    }
                }
                tokio::time::sleep_until((t0 + Duration::from_secs_f64(ev.end_s)).into()).await;
                heal(platform, Some(&name), rec).await?;
            }
            Fault::Delay | Fault::Reset | Fault::Blackhole | Fault::Bandwidth => {
                let n = nemesis;
                let fault = LinkFault {
                    links: n.links,
                    delay_ms: if ev.fault == Fault::Delay {
                        n.delay_ms
                    } else {
                        0
                    },
                    jitter_ms: if ev.fault == Fault::Delay {
                        n.jitter_ms
                    } else {
                        0
                    },
                    bandwidth_bytes_per_s: if ev.fault == Fault::Bandwidth {
                        n.bandwidth_bytes_per_s
                    } else {
                        0
                    },
                    blackhole: ev.fault == Fault::Blackhole,
                };
                let value = json!({"node": name, "target": target, "fault": fault_name(&ev.fault).name(), "params": fault, "reset_interval_ms": (ev.fault == Fault::Reset).then_some(n.reset_interval_ms)});
                rec.op(NEMESIS, OpType::Invoke, F::LinkFault, value.clone(), None)
                    .await;
                let applied = if ev.fault == Fault::Reset {
                    platform.reset_links(node, n.links)
                } else {
                    platform.link_fault(node, Some(fault))
                };
                match applied {
                    Ok(()) => rec.op(NEMESIS, OpType::Ok, F::LinkFault, value, None).await,
                    Err(e) => {
                        rec.op(
                            NEMESIS,
                            OpType::Info,
                            F::LinkFault,
                            value,
                            Some(format!("{e:#}")),
                        )
                        .await
                    }
                }
                let end = t0 + Duration::from_secs_f64(ev.end_s);
                if ev.fault == Fault::Reset {
                    let every = Duration::from_millis(n.reset_interval_ms);
                    while Instant::now() + every < end {
                        tokio::time::sleep(every).await;
                        let _ = platform.reset_links(node, n.links);
                    }
                }
                tokio::time::sleep_until(end.into()).await;
                heal(platform, Some(&name), rec).await?;
            }
            Fault::Sequence => {} // carried out above
            Fault::DropCaches => {
                rec.op(
                    NEMESIS,
                    OpType::Invoke,
                    F::DropCaches,
                    json!({"node": name}),
                    None,
                )
                .await;
                match crate::faults::drop_caches() {
                    Ok(()) => {
                        rec.op(
                            NEMESIS,
                            OpType::Ok,
                            F::DropCaches,
                            json!({"node": name}),
                            None,
                        )
                        .await
                    }
                    Err(e) => {
                        rec.op(
                            NEMESIS,
                            OpType::Fail,
                            F::DropCaches,
                            json!({"node": name}),
                            Some(e.to_string()),
                        )
                        .await
                    }
                }
            }
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

/// A kill or pause of a client process; a killed client comes back as a new process.
async fn client_fault(
    ev: &FaultEvent,
    name: &str,
    clients: &mut ClientSet,
    rec: &Recorder,
    t0: Instant,
) -> anyhow::Result<()> {
    let Some(i) = clients.index(name) else {
        not_done(
            rec,
            fault_name(&ev.fault),
            json!({"node": name}),
            format!("no client {name}"),
        )
        .await;
        return Ok(());
    };
    let f = fault_name(&ev.fault);
    rec.op(NEMESIS, OpType::Invoke, f, json!({"node": name}), None)
        .await;
    let result = match ev.fault {
        Fault::Pause => clients.pause(i, true),
        _ => clients.kill(i).await,
    };
    match result {
        Ok(pid) => {
            rec.op(
                NEMESIS,
                OpType::Ok,
                f,
                json!({"node": name, "pid": pid}),
                None,
            )
            .await
        }
        Err(e) => {
            rec.op(
                NEMESIS,
                OpType::Info,
                f,
                json!({"node": name}),
                Some(format!("{e:#}")),
            )
            .await
        }
    }
    tokio::time::sleep_until((t0 + Duration::from_secs_f64(ev.end_s)).into()).await;
    if ev.fault == Fault::Pause {
        rec.op(
            NEMESIS,
            OpType::Invoke,
            F::Resume,
            json!({"node": name}),
            None,
        )
        .await;
        let result = clients.pause(i, false);
        close(
            rec,
            F::Resume,
            &result,
            OpType::Fail,
            |pid| json!({"node": name, "pid": pid}),
            json!({"node": name}),
        )
        .await;
    } else {
        rec.op(
            NEMESIS,
            OpType::Invoke,
            F::Restart,
            json!({"node": name}),
            None,
        )
        .await;
        let result = clients.restart(i, rec).await;
        close(
            rec,
            F::Restart,
            &result,
            OpType::Fail,
            |process| json!({"node": name, "process": process}),
            json!({"node": name}),
        )
        .await;
        result?;
    }
    Ok(())
}

/// The op a scheduled fault is recorded as (a link fault that starts is a `link_fault` op with
/// this name as its `"fault"`).
fn fault_name(fault: &Fault) -> F {
    match fault {
        Fault::Kill => F::Kill,
        Fault::Pause => F::Pause,
        Fault::PowerLoss => F::PowerLoss,
        Fault::DropCaches => F::DropCaches,
        // The names the checker knows as lasting faults closed by `heal`.
        Fault::PartitionNode => F::Isolate,
        Fault::PartitionHalves => F::Split,
        Fault::PartitionClients => F::CutClients,
        Fault::Delay => F::Delay,
        Fault::Reset => F::Reset,
        Fault::Blackhole => F::Blackhole,
        Fault::Bandwidth => F::Bandwidth,
        Fault::Sequence => F::Sequence,
    }
}

/// The op a step of a sequence is recorded as; `wait_ms` is no op.
fn step_op(kind: StepKind) -> Option<F> {
    match kind {
        StepKind::Kill => Some(F::Kill),
        StepKind::Pause => Some(F::Pause),
        StepKind::Resume => Some(F::Resume),
        StepKind::Restart => Some(F::Restart),
        StepKind::PowerLoss => Some(F::PowerLoss),
        StepKind::Isolate => Some(F::Isolate),
        StepKind::Heal => Some(F::Heal),
        StepKind::WaitMs => None,
    }
}

/// Runs the steps of `nemesis.sequence` in order, as event number `number` of the schedule,
/// between a `sequence` invoke and its `ok`. Each step resolves its target when it starts (or
/// takes the node of the step it names) and is recorded as its own op (`kill`, `pause`, `resume`,
/// `restart`, `power_loss`, `isolate`, `heal`) with `"sequence"` and `"step"` (1-based) in its
/// value. A step that cannot act (no leader now, the node already down, not paused) is a `fail`
/// and the sequence goes on; a node that cannot restart ends the run. What the sequence leaves
/// down, paused or isolated is restarted, resumed or healed at the end of the run.
async fn sequence(
    nemesis: &Nemesis,
    number: usize,
    platform: &mut Platform,
    resolver: &mut Resolver,
    rec: &Recorder,
) -> anyhow::Result<()> {
    let steps = nemesis.planned_sequence().map_err(anyhow::Error::msg)?;
    rec.op(
        NEMESIS,
        OpType::Invoke,
        F::Sequence,
        json!({"sequence": number, "steps": nemesis.sequence}),
        None,
    )
    .await;
    let mut nodes: Vec<Option<usize>> = Vec::with_capacity(steps.len());
    for (i, step) in steps.iter().enumerate() {
        let k = i + 1;
        let (kind, target) = match step {
            PlannedStep::Wait { ms } => {
                tokio::time::sleep(Duration::from_millis(*ms)).await;
                nodes.push(None);
                continue;
            }
            PlannedStep::Heal => {
                let value = json!({"sequence": number, "step": k});
                rec.op(NEMESIS, OpType::Invoke, F::Heal, value.clone(), None)
                    .await;
                match platform.heal_network() {
                    Ok(_) => rec.op(NEMESIS, OpType::Ok, F::Heal, value, None).await,
                    Err(e) => {
                        rec.op(
                            NEMESIS,
                            OpType::Info,
                            F::Heal,
                            value,
                            Some(format!("{e:#}")),
                        )
                        .await
                    }
                }
                nodes.push(None);
                continue;
            }
            PlannedStep::Fault { kind, target } => (*kind, target),
        };
        let Some(f) = step_op(kind) else {
            nodes.push(None); // planned as a wait, never a fault step
            continue;
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
                resolver.resolve_now(t, platform).await,
            ),
        };
        let node = match resolved {
            Ok(node) => node,
            Err(why) => {
                let value = json!({"target": target_value, "sequence": number, "step": k});
                not_done(rec, f, value, why).await;
                nodes.push(None);
                continue;
            }
        };
        nodes.push(Some(node));
        let name = platform.name(node).to_string();
        let mut value =
            json!({"node": name, "target": target_value, "sequence": number, "step": k});
        let mut cuts = Vec::new();
        if kind == StepKind::Isolate {
            let (_, c, sides) =
                partition_of(&Fault::PartitionNode, node, platform, &mut resolver.rng);
            cuts = c;
            if let Some(v) = value.as_object_mut() {
                v.insert("sides".into(), json!(sides));
            }
        }
        rec.op(NEMESIS, OpType::Invoke, f, value.clone(), None)
            .await;
        let (running, paused) = (platform.is_running(node), platform.is_paused(node));
        let refusal = match kind {
            StepKind::Kill | StepKind::PowerLoss | StepKind::Pause if !running => {
                Some(format!("node {name} is down"))
            }
            StepKind::Pause if paused => Some(format!("node {name} is already paused")),
            StepKind::Resume if !paused => Some(format!("node {name} is not paused")),
            StepKind::Restart if running => Some(format!("node {name} is running")),
            _ => None,
        };
        if let Some(why) = refusal {
            rec.op(NEMESIS, OpType::Fail, f, value, Some(why)).await;
            continue;
        }
        let done: anyhow::Result<serde_json::Value> = match kind {
            StepKind::Kill => platform.kill(node).await.map(|pid| json!({"pid": pid})),
            StepKind::PowerLoss => platform
                .power_loss(node)
                .await
                .map(|(pid, dropped)| json!({"pid": pid, "lazyfs": dropped})),
            StepKind::Pause => platform
                .pause(node, true)
                .await
                .map(|pid| json!({"pid": pid})),
            StepKind::Resume => platform
                .pause(node, false)
                .await
                .map(|pid| json!({"pid": pid})),
            StepKind::Restart => platform.start(node).await.map(|pid| json!({"pid": pid})),
            StepKind::Isolate => platform.partition(&cuts).map(|()| json!({})),
            // Planned as waits and heals, handled above.
            StepKind::WaitMs | StepKind::Heal => Ok(json!({})),
        };
        match done {
            Ok(extra) => {
                if let (Some(v), Some(extra)) = (value.as_object_mut(), extra.as_object()) {
                    v.extend(extra.clone());
                }
                rec.op(NEMESIS, OpType::Ok, f, value, None).await;
            }
            Err(e) if kind == StepKind::Restart => {
                rec.op(NEMESIS, OpType::Fail, f, value, Some(format!("{e:#}")))
                    .await;
                return Err(e);
            }
            // A signal or a lazyfs report that failed: the fault may or may not have happened.
            Err(e) => {
                rec.op(NEMESIS, OpType::Info, f, value, Some(format!("{e:#}")))
                    .await
            }
        }
    }
    rec.op(
        NEMESIS,
        OpType::Ok,
        F::Sequence,
        json!({"sequence": number, "steps": nemesis.sequence.len()}),
        None,
    )
    .await;
    Ok(())
}

/// Two sides a partition cuts apart.
type Cut = (Vec<Endpoint>, Vec<Endpoint>);

/// The history name of a partition, its cuts, and its sides by node name (`clients` for the
/// client side). Halves: the target and, drawn from `rng`, others up to (nodes - 1) / 2 in all on
/// one side (the minority; the target alone with 3 or 4 nodes), the rest (the controller
/// wherever the draw puts it) on the other.
fn partition_of(
    fault: &Fault,
    node: usize,
    platform: &Platform,
    rng: &mut StdRng,
) -> (F, Vec<Cut>, Vec<Vec<String>>) {
    let count = platform.node_count();
    let others: Vec<usize> = (0..count).filter(|&j| j != node).collect();
    let (a, b): (Vec<Endpoint>, Vec<Endpoint>) = match fault {
        Fault::PartitionClients => (vec![Endpoint::Clients], vec![Endpoint::Node(node)]),
        Fault::PartitionHalves => {
            let mut rest = others.clone();
            // Fisher-Yates from the seeded stream.
            for k in (1..rest.len()).rev() {
                rest.swap(k, rng.random_range(0..=k));
            }
            // The target on the smaller side: (nodes - 1) / 2 nodes in all, at least itself.
            let extra = ((count - 1) / 2)
                .saturating_sub(1)
                .min(rest.len().saturating_sub(1));
            let side_a: Vec<Endpoint> = std::iter::once(node)
                .chain(rest[..extra].iter().copied())
                .map(Endpoint::Node)
                .collect();
            (
                side_a,
                rest[extra..].iter().copied().map(Endpoint::Node).collect(),
            )
        }
        _ => (
            vec![Endpoint::Node(node)],
            others
                .iter()
                .copied()
                .map(Endpoint::Node)
                .chain(std::iter::once(Endpoint::Clients))
                .collect(),
        ),
    };
    let names = |side: &[Endpoint]| -> Vec<String> {
        side.iter()
            .map(|e| match e {
                Endpoint::Node(j) => platform.name(*j).to_string(),
                Endpoint::Clients => "clients".to_string(),
            })
            .collect()
    };
    let sides = vec![names(&a), names(&b)];
    (fault_name(fault), vec![(a, b)], sides)
}

/// Lifts the partition or link fault on `node` (every one, with None) and records a `heal`.
pub async fn heal(
    platform: &mut Platform,
    node: Option<&str>,
    rec: &Recorder,
) -> anyhow::Result<()> {
    let value = node.map_or(serde_json::Value::Null, |n| json!({"node": n}));
    rec.op(NEMESIS, OpType::Invoke, F::Heal, value.clone(), None)
        .await;
    match platform.heal_network() {
        Ok(_) => {
            rec.op(NEMESIS, OpType::Ok, F::Heal, value, None).await;
            Ok(())
        }
        Err(e) => {
            rec.op(
                NEMESIS,
                OpType::Fail,
                F::Heal,
                value,
                Some(format!("{e:#}")),
            )
            .await;
            Err(e)
        }
    }
}

/// Records a fault that did not happen (its target could not be found): its `invoke` and a
/// `fail` saying why.
async fn not_done(rec: &Recorder, f: F, value: serde_json::Value, why: String) {
    rec.op(NEMESIS, OpType::Invoke, f, value.clone(), None)
        .await;
    rec.op(NEMESIS, OpType::Fail, f, value, Some(why)).await;
}

/// Records how an action ended, as the op that closes its `invoke`: `ok` with `ok_value` of the
/// result, or the error with `error_type` — "info" when the action may have happened all the same
/// (a kill whose answer was lost), "fail" when it certainly did not.
async fn close<T>(
    rec: &Recorder,
    f: F,
    result: &anyhow::Result<T>,
    error_type: OpType,
    ok_value: impl FnOnce(&T) -> serde_json::Value,
    error_value: serde_json::Value,
) {
    match result {
        Ok(value) => rec.op(NEMESIS, OpType::Ok, f, ok_value(value), None).await,
        Err(e) => {
            rec.op(NEMESIS, error_type, f, error_value, Some(format!("{e:#}")))
                .await
        }
    }
}

/// Wakes a paused node and records it.
pub async fn resume(platform: &mut Platform, node: usize, rec: &Recorder) -> anyhow::Result<()> {
    let name = platform.name(node).to_string();
    rec.op(
        NEMESIS,
        OpType::Invoke,
        F::Resume,
        json!({"node": name}),
        None,
    )
    .await;
    let result = platform.pause(node, false).await;
    close(
        rec,
        F::Resume,
        &result,
        OpType::Fail,
        |pid| json!({"node": name, "pid": pid}),
        json!({"node": name}),
    )
    .await;
    result?;
    Ok(())
}

/// Restarts a node that is down and records it; a node that cannot start ends the run.
pub async fn restart(platform: &mut Platform, node: usize, rec: &Recorder) -> anyhow::Result<()> {
    if platform.is_running(node) {
        return Ok(());
    }
    let name = platform.name(node).to_string();
    rec.op(
        NEMESIS,
        OpType::Invoke,
        F::Restart,
        json!({"node": name}),
        None,
    )
    .await;
    match platform.start(node).await {
        Ok(pid) => {
            rec.op(
                NEMESIS,
                OpType::Ok,
                F::Restart,
                json!({"node": name, "pid": pid}),
                None,
            )
            .await;
            Ok(())
        }
        Err(e) => {
            rec.op(
                NEMESIS,
                OpType::Fail,
                F::Restart,
                json!({"node": name}),
                Some(format!("{e:#}")),
            )
            .await;
            Err(e)
        }
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
