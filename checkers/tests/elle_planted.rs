//! Property test of the cycle analysis: random serializable transactional histories (every
//! transaction's polls read each partition up to its end at the moment the transaction runs, in
//! one serial order), with planted cycles of each class on partitions of their own. The analysis
//! must return exactly the planted cycles: their classes and their transactions, nothing else.

use std::collections::BTreeSet;

use checkers::elle::{self, CycleClass, Mop, Outcome, Txn};

/// splitmix64: a seed drives every choice, and a failure prints it.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct Gen {
    rng: Rng,
    /// Per partition: the values at offsets 0, 1, ….
    logs: Vec<Vec<u64>>,
    txns: Vec<Txn>,
    next_value: u64,
    next_index: u64,
}

const BACKGROUND_KEYS: u32 = 8;
/// Planted cycles use partitions from here on, so they never touch the background.
const PLANT_KEY_BASE: u32 = 1000;

impl Gen {
    fn new(seed: u64) -> Gen {
        Gen {
            rng: Rng(seed),
            logs: vec![Vec::new(); BACKGROUND_KEYS as usize],
            txns: Vec::new(),
            next_value: 1,
            next_index: 0,
        }
    }

    fn value(&mut self) -> u64 {
        self.next_value += 1;
        self.next_value
    }

    fn push(&mut self, mops: Vec<Mop>) -> u64 {
        self.next_index += 2;
        let index = self.next_index;
        let process = self.rng.below(5) as u32;
        self.txns.push(Txn {
            index,
            process,
            outcome: Outcome::Ok,
            mops,
        });
        index
    }

    /// One serializable transaction: sends appended at each partition's end, polls of a suffix
    /// up to the current end.
    fn background(&mut self) {
        let mut mops = Vec::new();
        for _ in 0..1 + self.rng.below(4) {
            let key = self.rng.below(u64::from(BACKGROUND_KEYS)) as u32;
            let log = key as usize;
            if self.rng.below(2) == 0 {
                let value = self.value();
                let offset = self.logs[log].len() as i64;
                self.logs[log].push(value);
                let known = self.rng.below(4) != 0;
                mops.push(Mop::Send {
                    key,
                    value,
                    offset: known.then_some(offset),
                });
            } else if !self.logs[log].is_empty() {
                let end = self.logs[log].len();
                let start = self.rng.below(end as u64) as usize;
                for (offset, &value) in self.logs[log].iter().enumerate().skip(start) {
                    mops.push(Mop::Read {
                        key,
                        offset: offset as i64,
                        value,
                    });
                }
            }
        }
        self.push(mops);
    }

    fn send(key: u32, value: u64, offset: i64) -> Mop {
        Mop::Send {
            key,
            value,
            offset: Some(offset),
        }
    }

    fn read(key: u32, offset: i64, value: u64) -> Mop {
        Mop::Read { key, offset, value }
    }

    /// Plants a cycle of `class` on fresh partitions; returns its transactions' op indexes.
    fn plant(&mut self, class: CycleClass, keys: u32) -> BTreeSet<u64> {
        let (x, y) = (PLANT_KEY_BASE + 2 * keys, PLANT_KEY_BASE + 2 * keys + 1);
        let (v1, v2, v3, v4) = (self.value(), self.value(), self.value(), self.value());
        let indexes: Vec<u64> = match class {
            // A and B write x and y in opposite orders.
            CycleClass::G0 => vec![
                self.push(vec![Gen::send(x, v1, 0), Gen::send(y, v2, 1)]),
                self.push(vec![Gen::send(x, v3, 1), Gen::send(y, v4, 0)]),
            ],
            // Each reads the other's write.
            CycleClass::G1c => vec![
                self.push(vec![Gen::send(x, v1, 0), Gen::read(y, 0, v2)]),
                self.push(vec![Gen::send(y, v2, 0), Gen::read(x, 0, v1)]),
            ],
            // C reads B's y but not B's x, which follows A's x: read skew.
            CycleClass::GSingle => {
                self.push(vec![Gen::send(x, v1, 0)]);
                vec![
                    self.push(vec![Gen::send(x, v2, 1), Gen::send(y, v3, 0)]),
                    self.push(vec![Gen::read(x, 0, v1), Gen::read(y, 0, v3)]),
                ]
            }
            // A and B each read the state before the other's write: write skew.
            CycleClass::G2Item => {
                self.push(vec![Gen::send(x, v1, 0), Gen::send(y, v2, 0)]);
                let (v5, v6) = (self.value(), self.value());
                vec![
                    self.push(vec![Gen::read(x, 0, v1), Gen::send(y, v5, 1)]),
                    self.push(vec![Gen::read(y, 0, v2), Gen::send(x, v6, 1)]),
                ]
            }
        };
        let _ = v4;
        indexes.into_iter().collect()
    }
}

const CLASSES: [CycleClass; 4] = [
    CycleClass::G0,
    CycleClass::G1c,
    CycleClass::GSingle,
    CycleClass::G2Item,
];

/// The planted cycles, and the found ones, as (class, transactions).
type Cycles = BTreeSet<(CycleClass, BTreeSet<u64>)>;

fn run(seed: u64, size: usize) -> (Cycles, Cycles) {
    let mut g = Gen::new(seed);
    let mut planted = Cycles::new();
    let mut keys = 0;
    for _ in 0..size {
        g.background();
        if g.rng.below(50) == 0 {
            let class = CLASSES[g.rng.below(4) as usize];
            planted.insert((class, g.plant(class, keys)));
            keys += 1;
        }
    }
    let deps = elle::infer(
        &g.txns,
        elle::Options {
            ww: true,
            process: false,
        },
    );
    let found: Cycles = elle::find_cycles(&deps)
        .into_iter()
        .map(|c| {
            let txns: BTreeSet<u64> = c.steps.iter().flat_map(|s| [s.from, s.to]).collect();
            assert!(
                c.explanation
                    .contains(&format!("a cycle, {}", c.class.name())),
                "seed {seed}: {}",
                c.explanation
            );
            (c.class, txns)
        })
        .collect();
    (planted, found)
}

#[test]
fn planted_cycles_are_found_exactly() {
    let mut classes_seen = BTreeSet::new();
    for seed in 1..=60 {
        let (planted, found) = run(seed, 400);
        assert_eq!(found, planted, "seed {seed}");
        classes_seen.extend(planted.iter().map(|(c, _)| *c));
    }
    assert_eq!(classes_seen, CLASSES.into_iter().collect());
}

#[test]
fn a_serializable_history_has_no_cycle() {
    for seed in 100..=120 {
        let mut g = Gen::new(seed);
        for _ in 0..500 {
            g.background();
        }
        let deps = elle::infer(
            &g.txns,
            elle::Options {
                ww: true,
                process: true,
            },
        );
        assert!(elle::find_cycles(&deps).is_empty(), "seed {seed}");
    }
}

/// Without ww dependencies (the default, as Jepsen's), a write cycle is not a cycle at all, and
/// the other classes are found all the same.
#[test]
fn without_ww_dependencies_only_g0_disappears() {
    let mut g = Gen::new(7);
    let g0 = g.plant(CycleClass::G0, 0);
    let g1c = g.plant(CycleClass::G1c, 1);
    let deps = elle::infer(&g.txns, elle::Options::default());
    let found: Vec<(CycleClass, BTreeSet<u64>)> = elle::find_cycles(&deps)
        .into_iter()
        .map(|c| (c.class, c.steps.iter().map(|s| s.from).collect()))
        .collect();
    assert_eq!(found, vec![(CycleClass::G1c, g1c)]);
    assert_eq!(g0.len(), 2);
}
