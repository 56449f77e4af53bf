//! The `[nemesis]` table of a scenario: which faults, how often and how long, the parameters of
//! the link faults, and the steps of a `sequence` (checked into [`PlannedStep`]s).

use super::kind::{Action, Fault, Setup, Shape};
use super::target::Target;
use crate::limits::SEQUENCE_WAIT_MS_MAX;
use crate::platform::Capability;
use crate::proxy::Links;
use kaos_history::F;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nemesis {
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// Mean seconds between the end of one fault and the start of the next (each gap is drawn
    /// uniformly from half to one and a half times this, from the seed).
    #[serde(default = "default_interval")]
    pub interval_s: f64,
    /// How long a fault lasts.
    #[serde(default = "default_down")]
    pub down_s: f64,
    /// `random` (a broker drawn from the seed each time), `leader` / `leader:P` (the current leader of
    /// partition P, 0 by default), `follower` / `follower:P`, `controller`, or a node name (`n1`).
    #[serde(default = "default_target")]
    pub target: String,
    /// Link faults: which connections through the target's proxy they hit — `all`, `clients`
    /// (client processes → the broker) or `brokers` (the other brokers → the broker).
    #[serde(default)]
    pub links: Links,
    /// `delay`: milliseconds each chunk is held, plus a uniform draw of up to `jitter_ms`.
    #[serde(default = "default_delay_ms")]
    pub delay_ms: u64,
    #[serde(default)]
    pub jitter_ms: u64,
    /// `bandwidth`: bytes per second per direction of each connection.
    #[serde(default = "default_bandwidth")]
    pub bandwidth_bytes_per_s: u64,
    /// `reset`: milliseconds between two resets while the fault lasts.
    #[serde(default = "default_reset_interval_ms")]
    pub reset_interval_ms: u64,
    /// The steps of the `sequence` fault (`[[nemesis.sequence]]`), in order.
    #[serde(default)]
    pub sequence: Vec<Step>,
    /// Power loss leaves torn writes: a seeded prefix of each file's last unsynced write reaches
    /// the disk (`kaos lazyfs --torn-writes`). Needs a `power_loss` fault or step.
    #[serde(default)]
    pub torn_writes: bool,
    /// Aim each scheduled fault at a moment of the history: at its scheduled start the fault
    /// waits for the next op of this name that a client completes `ok` (`"offset_commit"`: kill
    /// the group coordinator right after a commit was acknowledged), then up to
    /// `trigger_within_ms` more (drawn from the seed), and starts; it lasts `down_s` from then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    /// Aim each scheduled fault at a state of the brokers: at its scheduled start the fault
    /// waits until some follower of the partition it targets (`leader:P` / `follower:P`; P = 0
    /// for a `sequence`) lags the leader by at least this many records (the leader's log end
    /// offset minus the follower's, as each replica answers ListOffsets with Kafka's debugging
    /// replica id), measured every `LAG_PROBE_INTERVAL_MS`, for at most `interval_s` (never past
    /// the timed phase); then it starts, and its op's value says what was seen. A state that
    /// never came is recorded too (`"reached": false`, the largest lag seen), and the fault
    /// starts then all the same. Not with `trigger`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_follower_lag_min: Option<u64>,
    /// The longest delay after the triggering op (each fault draws 0..=this from the seed).
    #[serde(default = "default_trigger_within_ms")]
    pub trigger_within_ms: u64,
    /// `drop_responses` aimed at the idempotence window: while the fault lasts, a connection is
    /// reset the moment it has this many requests without a response (its producer then retries
    /// them all at once); 0 (the default): only when the fault is lifted.
    #[serde(default)]
    pub reset_in_flight_min: u64,
    /// `reset` aimed at a request: each reset holds every covered connection's next request
    /// whole (its sender wrote all of it: with acks=0 a producer counts it delivered), never
    /// forwards it, and resets the connection then (one that sends nothing within a second is
    /// reset as it is). The `heal` op reports the requests cut. Needs a `reset` fault.
    #[serde(default)]
    pub reset_cuts_request: bool,
}

/// One step of a `sequence` fault: `{ step = "kill", target = "follower" }`,
/// `{ step = "restart", target = "step:1" }` (the node step 1 hit), `{ step = "wait_ms", ms = 1500 }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub step: StepKind,
    /// Whom it hits (any node target of the nemesis, or `step:K` for the node of step K); not for
    /// `wait_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `wait_ms`: how long to wait before the next step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// SIGKILL; the node stays down until a `restart` step or the end of the run.
    Kill,
    /// SIGSTOP; the node stays paused until a `resume` step or the end of the run.
    Pause,
    /// SIGCONT a node paused by an earlier step.
    Resume,
    /// Start a node that is down and wait until it answers.
    Restart,
    /// Start a node that is down without waiting for it to answer (it may not be able to yet:
    /// a broker whose controller is paused holds clients' Metadata requests until it registers).
    Start,
    /// SIGKILL and drop every write not fsynced (lazyfs); down until `restart`.
    PowerLoss,
    /// Wait `ms` milliseconds.
    WaitMs,
    /// Cut the node off from every other node and from the clients (as `partition_node`) until
    /// a `heal` step or the end of the run. Local platform only.
    Isolate,
    /// Lift every partition (no target). Local platform only.
    Heal,
}

impl StepKind {
    /// What a platform must be able to do to run this step.
    pub fn needs(self) -> Capability {
        match self {
            StepKind::Kill
            | StepKind::Pause
            | StepKind::Resume
            | StepKind::Restart
            | StepKind::Start
            | StepKind::WaitMs => Capability::ControlNodes,
            StepKind::PowerLoss => Capability::PowerLoss,
            StepKind::Isolate | StepKind::Heal => Capability::IsolateSteps,
        }
    }
    /// The action it takes; none for `wait_ms`.
    pub fn action(self) -> Option<Action> {
        match self {
            StepKind::Kill => Some(Action::Kill),
            StepKind::Pause => Some(Action::Pause),
            StepKind::Resume => Some(Action::Resume),
            StepKind::Restart => Some(Action::Restart),
            StepKind::Start => Some(Action::Start),
            StepKind::PowerLoss => Some(Action::PowerLoss),
            StepKind::Isolate => Some(Action::Partition(Shape::Isolate)),
            StepKind::Heal => Some(Action::Heal),
            StepKind::WaitMs => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            StepKind::Kill => "kill",
            StepKind::Pause => "pause",
            StepKind::Resume => "resume",
            StepKind::Restart => "restart",
            StepKind::Start => "start",
            StepKind::PowerLoss => "power_loss",
            StepKind::WaitMs => "wait_ms",
            StepKind::Isolate => "isolate",
            StepKind::Heal => "heal",
        }
    }
}

/// Whom a step hits: a target resolved when the step starts, or the node an earlier step hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepTarget {
    Target(Target),
    /// The node of step K (1-based, an earlier step).
    SameAs(usize),
}

/// A validated step: what it does, whom, or how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlannedStep {
    Fault {
        kind: StepKind,
        target: StepTarget,
    },
    Wait {
        ms: u64,
    },
    /// Lift every partition.
    Heal,
}

impl Nemesis {
    /// The sequence's steps checked: known targets, references to earlier steps that hit a
    /// node, `ms` only (and always) on `wait_ms`. Errors name the step (1-based).
    pub fn planned_sequence(&self) -> Result<Vec<PlannedStep>, String> {
        let mut planned = Vec::with_capacity(self.sequence.len());
        for (i, step) in self.sequence.iter().enumerate() {
            let k = i + 1;
            let at = |m: String| format!("nemesis.sequence step {k} ({}): {m}", step.step.name());
            if step.step == StepKind::WaitMs {
                if step.target.is_some() {
                    return Err(at("wait_ms takes `ms`, not a target".into()));
                }
                let ms = step.ms.ok_or_else(|| at("needs `ms`".into()))?;
                if ms > SEQUENCE_WAIT_MS_MAX {
                    return Err(at(format!("ms {ms} is more than {SEQUENCE_WAIT_MS_MAX}")));
                }
                planned.push(PlannedStep::Wait { ms });
                continue;
            }
            if step.step == StepKind::Heal {
                if step.target.is_some() || step.ms.is_some() {
                    return Err(at(
                        "heal lifts every partition: it takes no target and no `ms`".into(),
                    ));
                }
                planned.push(PlannedStep::Heal);
                continue;
            }
            if step.ms.is_some() {
                return Err(at(
                    "`ms` belongs to wait_ms steps (add a { step = \"wait_ms\", ms = … } step)"
                        .into(),
                ));
            }
            let text = step
                .target
                .as_deref()
                .ok_or_else(|| at("needs a target".into()))?;
            let target = match text.strip_prefix("step:") {
                Some(j) => {
                    let j: usize = j.parse().map_err(|_| {
                        at(format!(
                            "{text:?}: the step number after 'step:' must be a number"
                        ))
                    })?;
                    if j == 0 || j >= k {
                        return Err(at(format!(
                            "{text:?} must name an earlier step (1..{})",
                            k - 1
                        )));
                    }
                    if !matches!(planned[j - 1], PlannedStep::Fault { .. }) {
                        return Err(at(format!(
                            "{text:?} names a {} step, which hits no node",
                            self.sequence[j - 1].step.name()
                        )));
                    }
                    StepTarget::SameAs(j)
                }
                None => match Target::parse(text).map_err(at)? {
                    Target::Client(name) => {
                        return Err(at(format!(
                            "{name:?}: sequence steps act on nodes, not client processes"
                        )))
                    }
                    t => StepTarget::Target(t),
                },
            };
            planned.push(PlannedStep::Fault {
                kind: step.step,
                target,
            });
        }
        Ok(planned)
    }

    /// What the platform must set up for these faults (and the steps of a sequence among them).
    pub fn setup(&self) -> Setup {
        let faults = self
            .faults
            .iter()
            .fold(Setup::default(), |s, f| s.and(f.setup()));
        if !self.faults.contains(&Fault::Sequence) {
            return faults;
        }
        self.sequence
            .iter()
            .filter_map(|s| s.step.action())
            .fold(faults, |s, a| s.and(a.setup()))
    }

    /// The op named by `trigger`, checked: one of kaos's op names (`kaos_history::F`).
    pub fn trigger_op(&self) -> Result<Option<F>, String> {
        let Some(name) = self.trigger.as_deref() else {
            return Ok(None);
        };
        F::from_name(name).map(Some).ok_or_else(|| {
            format!("nemesis.trigger {name:?} is not an op of the history (e.g. \"offset_commit\", \"send\", \"poll\"; see docs/history.md)")
        })
    }

    /// How long the schedule reserves for one sequence: its waits (the steps themselves take
    /// what they take; a late sequence delays the next fault).
    pub fn sequence_length_s(&self) -> f64 {
        self.sequence
            .iter()
            .filter_map(|s| (s.step == StepKind::WaitMs).then_some(s.ms.unwrap_or(0)))
            .sum::<u64>() as f64
            / 1000.0
    }
}

impl Default for Nemesis {
    fn default() -> Self {
        Nemesis {
            faults: Vec::new(),
            interval_s: default_interval(),
            down_s: default_down(),
            target: default_target(),
            links: Links::All,
            delay_ms: default_delay_ms(),
            jitter_ms: 0,
            bandwidth_bytes_per_s: default_bandwidth(),
            reset_interval_ms: default_reset_interval_ms(),
            sequence: Vec::new(),
            torn_writes: false,
            trigger: None,
            trigger_follower_lag_min: None,
            trigger_within_ms: default_trigger_within_ms(),
            reset_in_flight_min: 0,
            reset_cuts_request: false,
        }
    }
}

fn default_trigger_within_ms() -> u64 {
    50
}

fn default_delay_ms() -> u64 {
    200
}
fn default_bandwidth() -> u64 {
    64 * 1024
}
fn default_reset_interval_ms() -> u64 {
    500
}

fn default_interval() -> f64 {
    5.0
}
fn default_down() -> f64 {
    1.0
}
fn default_target() -> String {
    "random".into()
}
