//! Property test of the cycle analysis: random serializable transactional histories (every
//! transaction's polls read each partition up to its end at the moment the transaction runs, in
//! one serial order, which is also their real-time order: each is invoked after the previous one
//! completed), with planted cycles of each class — and of the realtime variants, and intermediate
//! reads (G1b) — on partitions of their own. The analysis must return exactly the planted
//! anomalies: their classes and their transactions, nothing else.

use std::collections::BTreeSet;

use checkers::elle::{self, CycleClass, Mop, Outcome, Txn};

/// What a test plants: a cycle of a class, needing realtime order or not.
type Plant = (CycleClass, Option<&'static str>);

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
    /// The clients' clock: each transaction is invoked at it and completes 1 later.
    clock: u64,
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
            clock: 1_000,
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
        self.clock += 10;
        self.txns.push(Txn {
            index,
            process,
            outcome: Outcome::Ok,
            mops,
            invoked_ns: Some(self.clock),
            completed_ns: Some(self.clock + 1),
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

    /// Plants a cycle of `class` (needing realtime order if `order` says so) on fresh
    /// partitions; returns its transactions' op indexes.
    fn plant(&mut self, (class, order): Plant, keys: u32) -> BTreeSet<u64> {
        let (x, y) = (PLANT_KEY_BASE + 2 * keys, PLANT_KEY_BASE + 2 * keys + 1);
        let (v1, v2, v3, v4) = (self.value(), self.value(), self.value(), self.value());
        let indexes: Vec<u64> = match (class, order) {
            // A completes, then B is invoked and writes what A read: G1c-realtime.
            (CycleClass::G1c, Some("realtime")) => vec![
                self.push(vec![Gen::read(y, 0, v2)]),
                self.push(vec![Gen::send(y, v2, 0)]),
            ],
            // B's write to x completes before C is invoked, and C reads x without it: the rw
            // edge and the realtime edge close G-single-realtime.
            (CycleClass::GSingle, Some("realtime")) => {
                self.push(vec![Gen::send(x, v1, 0)]);
                vec![
                    self.push(vec![Gen::send(x, v2, 1)]),
                    self.push(vec![Gen::read(x, 0, v1)]),
                ]
            }
            (_, Some(other)) => panic!("no plant for {class:?}-{other}"),
            (class, None) => self.plant_data_cycle(class, (x, y), (v1, v2, v3, v4)),
        };
        indexes.into_iter().collect()
    }

    /// Plants an intermediate read on a fresh partition: W sends two messages there, R (a later
    /// transaction) reads only the first. Returns (W, R) op indexes.
    fn plant_intermediate_read(&mut self, keys: u32) -> (u64, u64) {
        let z = PLANT_KEY_BASE + 2 * keys;
        let (v1, v2) = (self.value(), self.value());
        let w = self.push(vec![Gen::send(z, v1, 0), Gen::send(z, v2, 1)]);
        let r = self.push(vec![Gen::read(z, 0, v1)]);
        (w, r)
    }

    /// Plants a cycle of data edges alone.
    fn plant_data_cycle(
        &mut self,
        class: CycleClass,
        (x, y): (u32, u32),
        (v1, v2, v3, v4): (u64, u64, u64, u64),
    ) -> Vec<u64> {
        match class {
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
        }
    }
}

const PLANTS: [Plant; 6] = [
    (CycleClass::G0, None),
    (CycleClass::G1c, None),
    (CycleClass::GSingle, None),
    (CycleClass::G2Item, None),
    (CycleClass::G1c, Some("realtime")),
    (CycleClass::GSingle, Some("realtime")),
];

/// The planted cycles, and the found ones, as (class, order, transactions).
type Cycles = BTreeSet<(CycleClass, Option<&'static str>, BTreeSet<u64>)>;

/// The cycles of `txns` as (class, order, transactions), each explanation checked.
fn cycles_of(txns: &[Txn], options: elle::Options, seed: u64) -> Cycles {
    let deps = elle::infer(txns, options);
    elle::find_cycles(&deps)
        .into_iter()
        .map(|c| {
            let txns: BTreeSet<u64> = c.steps.iter().flat_map(|s| [s.from, s.to]).collect();
            let name = format!(
                "a cycle, {}{}.",
                c.class.name(),
                c.order.map(|o| format!("-{o}")).unwrap_or_default()
            );
            assert!(
                c.explanation.ends_with(&name),
                "seed {seed}: {}",
                c.explanation
            );
            (c.class, c.order, txns)
        })
        .collect()
}

/// Every option on: ww dependencies, and realtime edges through rw edges too.
fn everything() -> elle::Options {
    elle::Options {
        ww: true,
        realtime_rw: true,
        ..elle::Options::default()
    }
}

fn run(seed: u64, size: usize) -> (Gen, Cycles) {
    let mut g = Gen::new(seed);
    let mut planted = Cycles::new();
    let mut keys = 0;
    for _ in 0..size {
        g.background();
        if g.rng.below(50) == 0 {
            let plant = PLANTS[g.rng.below(PLANTS.len() as u64) as usize];
            planted.insert((plant.0, plant.1, g.plant(plant, keys)));
            keys += 1;
        }
    }
    (g, planted)
}

#[test]
fn planted_cycles_are_found_exactly() {
    let mut plants_seen = BTreeSet::new();
    for seed in 1..=60 {
        let (g, planted) = run(seed, 400);
        let found = cycles_of(&g.txns, everything(), seed);
        assert_eq!(found, planted, "seed {seed}");
        plants_seen.extend(planted.iter().map(|(c, o, _)| (*c, *o)));
    }
    assert_eq!(plants_seen, PLANTS.into_iter().collect());
}

/// By default realtime order closes cycles through ww and wr edges only (a Kafka poll that did
/// not return a write completed before it began is fetch lag): the G-single-realtime plants are
/// no anomaly then, every other plant is found all the same; without stamps, no realtime cycle.
#[test]
fn realtime_closes_rw_cycles_only_when_asked_and_needs_stamps() {
    for seed in 1..=20 {
        let (mut g, planted) = run(seed, 400);
        let default = elle::Options {
            ww: true,
            ..elle::Options::default()
        };
        let found = cycles_of(&g.txns, default, seed);
        let want: Cycles = planted
            .iter()
            .filter(|(c, o, _)| (*c, *o) != (CycleClass::GSingle, Some("realtime")))
            .cloned()
            .collect();
        assert_eq!(found, want, "seed {seed}");
        for txn in &mut g.txns {
            txn.invoked_ns = None;
            txn.completed_ns = None;
        }
        let found = cycles_of(&g.txns, everything(), seed);
        let want: Cycles = planted.iter().filter(|p| p.1.is_none()).cloned().collect();
        assert_eq!(found, want, "seed {seed}: without stamps");
    }
}

/// Elle's G1b: planted intermediate reads are found exactly (writer, reader), and the
/// serializable background — whose polls always end at a transaction's last send — has none,
/// although its transactions often send a partition twice.
#[test]
fn planted_intermediate_reads_are_found_exactly() {
    let mut total = 0;
    for seed in 1..=40 {
        let mut g = Gen::new(seed);
        let mut planted = BTreeSet::new();
        let mut keys = 0;
        for _ in 0..400 {
            g.background();
            if g.rng.below(40) == 0 {
                planted.insert(g.plant_intermediate_read(keys));
                keys += 1;
            }
        }
        let found: BTreeSet<(u64, u64)> = elle::intermediate_read_cases(&g.txns, "t")
            .into_iter()
            .map(|c| {
                assert!(c.cause.contains("Elle's G1b"), "seed {seed}: {}", c.cause);
                (c.op_indexes[0], c.op_indexes[1])
            })
            .collect();
        assert_eq!(found, planted, "seed {seed}");
        assert!(
            cycles_of(&g.txns, everything(), seed).is_empty(),
            "seed {seed}: an intermediate read is no cycle"
        );
        total += planted.len();
    }
    assert!(total > 0);
}

#[test]
fn a_serializable_history_has_no_cycle() {
    for seed in 100..=120 {
        let mut g = Gen::new(seed);
        for _ in 0..500 {
            g.background();
        }
        let options = elle::Options {
            process: true,
            ..everything()
        };
        assert!(cycles_of(&g.txns, options, seed).is_empty(), "seed {seed}");
        assert!(
            elle::intermediate_read_cases(&g.txns, "t").is_empty(),
            "seed {seed}"
        );
    }
}

/// Without ww dependencies (the default, as Jepsen's), a write cycle is not a cycle at all, and
/// the other classes are found all the same.
#[test]
fn without_ww_dependencies_only_g0_disappears() {
    let mut g = Gen::new(7);
    let g0 = g.plant((CycleClass::G0, None), 0);
    let g1c = g.plant((CycleClass::G1c, None), 1);
    let deps = elle::infer(&g.txns, elle::Options::default());
    let found: Vec<(CycleClass, BTreeSet<u64>)> = elle::find_cycles(&deps)
        .into_iter()
        .map(|c| (c.class, c.steps.iter().map(|s| s.from).collect()))
        .collect();
    assert_eq!(found, vec![(CycleClass::G1c, g1c)]);
    assert_eq!(g0.len(), 2);
}
