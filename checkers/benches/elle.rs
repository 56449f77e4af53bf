//! `cargo bench -p checkers --bench elle`: the cycle analysis (`checkers::elle`: inference,
//! components, cycles) on a generated history of 1M transactions (`KAOS_BENCH_TXNS=N` for
//! another size), with planted cycles; prints wall and CPU seconds and peak memory (VmHWM from
//! /proc/self/status, the bench's business, never the library's).
//!
//! The history: 64 partitions; each transaction, in one serial order, sends one to three
//! messages at partition ends (offsets known three times in four) or polls the last 1–8 records
//! of a partition, or both. One transaction pair in 5000 is a planted cycle on partitions of its
//! own, G1c or G2-item in turn. The analysis must find exactly the planted cycles.

use std::time::Instant;

use checkers::elle::{self, CycleClass, Mop, Outcome, Txn};

const PARTITIONS: u64 = 64;
const PLANT_EVERY: u64 = 5000;

fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z ^ (z >> 29)
}

/// The history, and how many cycles of each class were planted.
fn generate(count: u64) -> (Vec<Txn>, u64, u64) {
    let mut logs: Vec<Vec<u64>> = vec![Vec::new(); PARTITIONS as usize];
    let mut txns = Vec::with_capacity(count as usize + 2 * (count / PLANT_EVERY) as usize);
    let mut value = 0u64;
    let (mut g1c, mut g2) = (0, 0);
    let mut plant_key = PARTITIONS as u32;
    for n in 0..count {
        let r = mix(n);
        let key = (r % PARTITIONS) as u32;
        let log = &mut logs[key as usize];
        let mut mops = Vec::new();
        if r >> 8 & 1 == 0 || log.is_empty() {
            for i in 0..1 + (r >> 10) % 3 {
                value += 1;
                let known = (r >> (12 + i)) & 3 != 0;
                mops.push(Mop::Send {
                    key,
                    value,
                    offset: known.then_some(log.len() as i64),
                });
                log.push(value);
            }
        }
        if r >> 9 & 1 == 0 {
            let end = log.len();
            let start = end.saturating_sub(1 + ((r >> 16) % 8) as usize);
            for (offset, &v) in log.iter().enumerate().skip(start) {
                mops.push(Mop::Read {
                    key,
                    offset: offset as i64,
                    value: v,
                });
            }
        }
        txns.push(Txn {
            index: 2 * n,
            process: (r >> 20) as u32 % 32,
            outcome: Outcome::Ok,
            mops,
            invoked_ns: None,
            completed_ns: None,
        });
        if n % PLANT_EVERY == PLANT_EVERY - 1 {
            let (x, y) = (plant_key, plant_key + 1);
            plant_key += 2;
            let (a, b) = (value + 1, value + 2);
            value += 2;
            let (ta, tb) = if (n / PLANT_EVERY) % 2 == 0 {
                g1c += 1;
                (
                    vec![
                        Mop::Send {
                            key: x,
                            value: a,
                            offset: Some(0),
                        },
                        Mop::Read {
                            key: y,
                            offset: 0,
                            value: b,
                        },
                    ],
                    vec![
                        Mop::Send {
                            key: y,
                            value: b,
                            offset: Some(0),
                        },
                        Mop::Read {
                            key: x,
                            offset: 0,
                            value: a,
                        },
                    ],
                )
            } else {
                g2 += 1;
                let (c, d) = (value + 1, value + 2);
                value += 2;
                txns.push(Txn {
                    index: 2 * n + 1,
                    process: 99,
                    outcome: Outcome::Ok,
                    mops: vec![
                        Mop::Send {
                            key: x,
                            value: c,
                            offset: Some(0),
                        },
                        Mop::Send {
                            key: y,
                            value: d,
                            offset: Some(0),
                        },
                    ],
                    invoked_ns: None,
                    completed_ns: None,
                });
                (
                    vec![
                        Mop::Read {
                            key: x,
                            offset: 0,
                            value: c,
                        },
                        Mop::Send {
                            key: y,
                            value: a,
                            offset: Some(1),
                        },
                    ],
                    vec![
                        Mop::Read {
                            key: y,
                            offset: 0,
                            value: d,
                        },
                        Mop::Send {
                            key: x,
                            value: b,
                            offset: Some(1),
                        },
                    ],
                )
            };
            for mops in [ta, tb] {
                txns.push(Txn {
                    index: u64::MAX - txns.len() as u64,
                    process: 100,
                    outcome: Outcome::Ok,
                    mops,
                    invoked_ns: None,
                    completed_ns: None,
                });
            }
        }
    }
    (txns, g1c, g2)
}

fn proc_status(key: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .map(|l| l.trim_start_matches(key).trim().to_owned())
        .unwrap_or_default()
}

/// This process's user + system CPU seconds (from /proc/self/stat, in clock ticks of 1/100 s).
fn cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (tick(11) + tick(12)) / 100.0
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let count: u64 = std::env::var("KAOS_BENCH_TXNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if benching { 1_000_000 } else { 20_000 });
    let (txns, g1c, g2) = generate(count);
    let (wall, cpu) = (Instant::now(), cpu_s());
    let deps = elle::infer(
        &txns,
        elle::Options {
            ww: true,
            process: false,
            ..elle::Options::default()
        },
    );
    let cycles = elle::find_cycles(&deps);
    let (wall, cpu) = (wall.elapsed().as_secs_f64(), cpu_s() - cpu);
    let found = |class| cycles.iter().filter(|c| c.class == class).count() as u64;
    assert_eq!(
        (
            found(CycleClass::G1c),
            found(CycleClass::G2Item),
            cycles.len() as u64
        ),
        (g1c, g2, g1c + g2),
        "the planted cycles, exactly"
    );
    println!(
        "elle: {} transactions ({} mops), {} planted cycles found: {wall:.2} s wall, {cpu:.2} s CPU, peak RSS {}; load {}",
        txns.len(),
        txns.iter().map(|t| t.mops.len()).sum::<usize>(),
        cycles.len(),
        proc_status("VmHWM:"),
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );
}
