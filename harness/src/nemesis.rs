//! The nemesis: a seeded schedule of faults, drawn before the run starts so that the same seed
//! gives the same faults, and the code that carries each fault out through the platform and
//! records its start and end in the history.

use crate::history::Recorder;
use crate::platform::LocalPlatform;
use crate::scenario::{Fault, Nemesis};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::json;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultEvent {
    pub fault: Fault,
    pub node: usize,
    pub start_s: f64,
    pub end_s: f64,
}

/// The faults of a run, in time order, none overlapping, all ending before `duration_s`.
pub fn schedule(nemesis: &Nemesis, node_count: usize, fixed_target: Option<usize>, duration_s: f64, seed: u64) -> Vec<FaultEvent> {
    let mut events = Vec::new();
    let Some(fault) = nemesis.faults.first() else { return events };
    if node_count == 0 {
        return events;
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut t = nemesis.interval_s * rng.random_range(0.5..1.5);
    let mut k = 0;
    while t + nemesis.down_s < duration_s {
        let node = fixed_target.unwrap_or_else(|| rng.random_range(0..node_count));
        let fault = nemesis.faults.get(k % nemesis.faults.len()).unwrap_or(fault).clone();
        events.push(FaultEvent { fault, node, start_s: t, end_s: t + nemesis.down_s });
        t += nemesis.down_s + nemesis.interval_s * rng.random_range(0.5..1.5);
        k += 1;
    }
    events
}

/// Carries out the schedule against the platform; returns when the last fault has ended.
pub async fn run(events: &[FaultEvent], platform: &mut LocalPlatform, rec: &Recorder, t0: Instant) -> anyhow::Result<()> {
    for ev in events {
        tokio::time::sleep_until((t0 + Duration::from_secs_f64(ev.start_s)).into()).await;
        let name = platform.nodes[ev.node].name.clone();
        match ev.fault {
            Fault::Kill => {
                rec.op("nemesis", "invoke", "kill", json!({"node": name}), None).await;
                match platform.kill(ev.node).await {
                    Ok(pid) => rec.op("nemesis", "ok", "kill", json!({"node": name, "pid": pid}), None).await,
                    Err(e) => rec.op("nemesis", "info", "kill", json!({"node": name}), Some(format!("{e:#}"))).await,
                }
                tokio::time::sleep_until((t0 + Duration::from_secs_f64(ev.end_s)).into()).await;
                restart(platform, ev.node, rec).await?;
            }
        }
    }
    Ok(())
}

/// Restarts a node that is down and records it; a node that cannot start ends the run.
pub async fn restart(platform: &mut LocalPlatform, node: usize, rec: &Recorder) -> anyhow::Result<()> {
    if platform.nodes[node].is_running() {
        return Ok(());
    }
    let name = platform.nodes[node].name.clone();
    rec.op("nemesis", "invoke", "restart", json!({"node": name}), None).await;
    match platform.start(node).await {
        Ok(pid) => {
            rec.op("nemesis", "ok", "restart", json!({"node": name, "pid": pid}), None).await;
            Ok(())
        }
        Err(e) => {
            rec.op("nemesis", "fail", "restart", json!({"node": name}), Some(format!("{e:#}"))).await;
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kill_every(interval_s: f64, down_s: f64) -> Nemesis {
        Nemesis { faults: vec![Fault::Kill], interval_s, down_s, target: "random".into() }
    }

    #[test]
    fn the_seed_fixes_the_schedule() {
        let n = kill_every(3.0, 1.0);
        let a = schedule(&n, 3, None, 60.0, 42);
        assert_eq!(a, schedule(&n, 3, None, 60.0, 42));
        assert_ne!(a, schedule(&n, 3, None, 60.0, 43));
        assert!(a.len() >= 10, "{}", a.len());
    }

    #[test]
    fn faults_do_not_overlap_and_end_in_time() {
        let n = kill_every(2.0, 1.5);
        for seed in 0..50 {
            let events = schedule(&n, 2, None, 30.0, seed);
            for w in events.windows(2) {
                assert!(w[0].end_s <= w[1].start_s);
            }
            for e in &events {
                assert!(e.start_s > 0.0 && e.end_s < 30.0 && e.node < 2);
                assert!((e.end_s - e.start_s - 1.5).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn a_fixed_target_and_no_faults() {
        let n = kill_every(1.0, 0.5);
        assert!(schedule(&n, 3, Some(2), 20.0, 1).iter().all(|e| e.node == 2));
        assert!(schedule(&Nemesis::default(), 3, None, 20.0, 1).is_empty());
    }
}
