//! The queue checker, the streaming half: one pass over the ops keeps what `finish`
//! (`conclude.rs`) needs.
//!
//! Memory is proportional to the number of messages (one compact [`Msg`] per message id, in
//! chunks, behind an id → slot map), never to offset values or to the number of ops: per-offset
//! questions (inconsistent offsets, skipped offsets) are answered at `finish` from one sorted
//! vector of the positions the messages were seen at.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use crate::analysis::{Case, Counts, FaultWindow, Series};
use crate::expect::Expectations;
use crate::history::{self, HistoryError, Op, OpType};
use crate::history::{Flat, Rec};
use crate::limits;
use crate::scan::{self, Body};
use kaos_history::{fault_target, FaultKind, Recovery, F};

pub(crate) const NS_PER_S: f64 = 1e9;
pub(crate) const NONE: u64 = u64::MAX;
pub(crate) const NO_OFFSET: i64 = i64::MIN;

pub(crate) fn seconds(time_ns: u64) -> f64 {
    time_ns as f64 / NS_PER_S
}

pub(crate) fn millis(time_ns: u64) -> u32 {
    u32::try_from(time_ns / 1_000_000).unwrap_or(u32::MAX)
}

/// Seconds of a millisecond time, for evidence.
pub(crate) fn ms_seconds(ms: u32) -> f64 {
    f64::from(ms) / 1000.0
}

/// FxHash's mixing step: fast for the small integer keys of the checker's maps.
#[derive(Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.write_u64(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }
    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_i32(&mut self, n: i32) {
        self.write_u64(n as u32 as u64);
    }
    fn write_i64(&mut self, n: i64) {
        self.write_u64(n as u64);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// The message-id hasher: consecutive ids land in consecutive buckets (the table's low bits), so a
/// history's mostly increasing ids stay in cache, while the top bits (the table's tag) are mixed.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = FastHasher(self.0);
        h.write(bytes);
        self.0 = h.0;
    }
    fn write_u64(&mut self, id: u64) {
        const TAG_BITS: u64 = !0 << 57;
        let low = id ^ (id >> 32).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = (low & !TAG_BITS) | (low.wrapping_mul(0x2545_F491_4F6C_DD1D) & TAG_BITS);
    }
}

pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;
pub(crate) type FastSet<K> = HashSet<K, BuildHasherDefault<FastHasher>>;
type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// `Msg::flags` bits.
pub(crate) mod flag {
    /// Some `send` op mentioned the id.
    pub const HAS_SEND: u16 = 1;
    /// A `send` invoke was logged (`first_index` is the first send op).
    pub const HAS_INVOKE: u16 = 1 << 1;
    /// Read by the final read.
    pub const IN_FINAL: u16 = 1 << 2;
    /// Read by a consumer poll outside the final read.
    pub const READ_BY_CONSUMER: u16 = 1 << 3;
    /// Read before any send op mentioned it.
    pub const READ_BEFORE_SEND: u16 = 1 << 4;
    /// The read before any send op was followed by a send invoke: a future read.
    pub const FUTURE_READ: u16 = 1 << 5;
    /// Read while its send was invoked and not yet acknowledged.
    pub const READ_BEFORE_ACK: u16 = 1 << 6;
    /// The first read position came from the final read.
    pub const FIRST_READ_FINAL: u16 = 1 << 7;
    /// The final read returned it at the first read position.
    pub const FINAL_AT_FIRST: u16 = 1 << 8;
    /// `enqueue` or `accept` ok.
    pub const ACCEPTED: u16 = 1 << 9;
    /// `drop` ok.
    pub const DROPPED: u16 = 1 << 10;
    /// Sent in a transaction (a `txn` op's `send` micro-op).
    pub const TXN: u16 = 1 << 11;
    /// Read by a reader that sees committed transactions only (any reader not known to use
    /// `isolation.level = read_uncommitted`, the final read included).
    pub const READ_COMMITTED: u16 = 1 << 12;
    /// Read by a consumer with `isolation.level = read_uncommitted`.
    pub const READ_UNCOMMITTED: u16 = 1 << 13;
    /// A consumer read at the first read position carried its client's high watermark: whether
    /// it was served above it is known (`AboveHighWatermark`), so `uncommitted_read` does not
    /// infer it from the final read.
    pub const HW_AT_FIRST: u16 = 1 << 14;
}

/// Everything known about one message id, kept small: ten million of them must fit in well under
/// two gigabytes. Times are milliseconds since start; `NONE`/`NO_OFFSET`/`u32::MAX` mean absent.
#[derive(Debug, Clone)]
pub(crate) struct Msg {
    pub id: u64,
    /// Index of the first send op (or, for an id only read, of the first read): orders cases.
    pub first_index: u64,
    pub ack_index: u64,
    /// The first poll that returned it.
    pub read_index: u64,
    pub invoke_ms: u32,
    pub ack_ms: u32,
    pub read_ms: u32,
    /// Interned process of the first send op.
    pub process: u32,
    /// Interned topic of the send.
    pub topic: u32,
    /// Interned (topic, partition) of the ack and of the first read.
    pub ack_pk: u32,
    pub read_pk: u32,
    pub ack_offset: i64,
    pub read_offset: i64,
    pub attempts: u16,
    pub fails: u16,
    pub infos: u16,
    pub open: u16,
    /// Records returned by consumer polls (the final read excluded), saturating.
    pub deliveries: u16,
    pub flags: u16,
    pub extra: Option<Box<Extra>>,
}

/// The rare parts of a message's record.
#[derive(Debug, Clone, Default)]
pub(crate) struct Extra {
    /// The last send completion that was not an ack.
    pub last_unacked: Option<Unacked>,
    /// Further distinct read positions (up to `limits::POSITIONS_PER_ID_MAX - 1`).
    pub others: Vec<ReadAt>,
    /// First `enqueue`/`accept` ok, `drop` ok: (op index, ms).
    pub accepted_at: Option<(u64, u32)>,
    pub dropped_at: Option<(u64, u32)>,
    /// The earliest client stamp (CLOCK_MONOTONIC) of a poll that read the message before any
    /// send of it was seen: `future_read` compares it with the send's invoke stamp.
    pub read_before_send_monotonic_ns: Option<u64>,
    /// The earliest client stamp of a poll that read the message before its ack arrived (in
    /// history order): the ack's own stamp decides whether the read really came first.
    pub read_before_ack_monotonic_ns: Option<u64>,
}

#[derive(Debug, Clone)]
pub(crate) struct Unacked {
    pub kind: OpType,
    pub index: u64,
    pub time_ms: u32,
    pub error: Option<String>,
}

/// A further distinct position a message was read at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadAt {
    pub pk: u32,
    pub offset: i64,
    pub index: u64,
    pub time_ms: u32,
    pub in_final: bool,
    /// A consumer read here carried its client's high watermark (see `flag::HW_AT_FIRST`).
    pub hw_known: bool,
}

/// Whether message `msg` was acknowledged at `(pk, offset)` more than the receipt skew before a
/// poll that completed at `read_ms` returned it there. The high watermark a client records with a
/// record is librdkafka's cached one when poll() hands the record over, not that of the Fetch
/// response that carried it: a response of a new leader, whose HW lags its predecessor's, can
/// lower the cache while records the old leader served below its HW wait in the client's
/// queue. Such a read, of a record already acknowledged there, is not evidence of a read above
/// the HW (seen on the correct broker: 20 records of eos-pipeline-metadata-before-image,
/// acknowledged ~3,000 ops before the poll); a broker serving beyond its HW is caught by the
/// reads it serves before the producer's ack, and by the final read when the record is gone.
fn acked_here_before(msg: &Msg, (pk, offset): (u32, i64), read_ms: u32) -> bool {
    msg.ack_index != NONE
        && msg.ack_pk == pk
        && msg.ack_offset == offset
        && read_ms.saturating_sub(msg.ack_ms) > limits::RECEIPT_SKEW_MS
}

/// A consumer's read of a record at or above the high watermark its client recorded with it: the
/// broker served a record that was not committed (`uncommitted_read`, `above_high_watermark`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AboveHighWatermark {
    pub id: Option<u64>,
    pub pk: u32,
    pub offset: i64,
    pub high_watermark: i64,
    /// The poll op, its time and its process.
    pub index: u64,
    pub time_ms: u32,
    pub process: u32,
}

impl Msg {
    fn new(id: u64, first_index: u64) -> Self {
        Msg {
            id,
            first_index,
            ack_index: NONE,
            read_index: NONE,
            invoke_ms: 0,
            ack_ms: 0,
            read_ms: 0,
            process: u32::MAX,
            topic: u32::MAX,
            ack_pk: u32::MAX,
            read_pk: u32::MAX,
            ack_offset: NO_OFFSET,
            read_offset: NO_OFFSET,
            attempts: 0,
            fails: 0,
            infos: 0,
            open: 0,
            deliveries: 0,
            flags: 0,
            extra: None,
        }
    }

    pub fn has(&self, bits: u16) -> bool {
        self.flags & bits == bits
    }

    pub fn outcome(&self) -> SendOutcome {
        if self.ack_index != NONE {
            SendOutcome::Ok
        } else if self.infos > 0 || self.open > 0 || self.fails == 0 {
            SendOutcome::Info
        } else {
            SendOutcome::Fail
        }
    }

    /// Sent in a transaction that did not commit (as far as the history knows) and read only by
    /// `read_uncommitted` consumers: those reads prove nothing about what the log keeps.
    pub fn uncommitted_only(&self) -> bool {
        self.has(flag::TXN) && self.outcome() != SendOutcome::Ok && !self.has(flag::READ_COMMITTED)
    }

    pub fn is_read(&self) -> bool {
        self.read_index != NONE
    }

    pub fn acked_offset(&self) -> Option<(u32, i64)> {
        (self.ack_offset != NO_OFFSET).then_some((self.ack_pk, self.ack_offset))
    }

    /// A read of this message at `at`: its first read's position (and what that read carried), or
    /// one more position it was read at (up to `POSITIONS_PER_ID_MAX`).
    fn note_read_at(&mut self, at: ReadAt) {
        let ReadAt {
            pk,
            offset,
            in_final,
            hw_known,
            ..
        } = at;
        if self.read_index == NONE || (self.read_pk == pk && self.read_offset == offset) {
            if self.read_index == NONE {
                self.read_index = at.index;
                self.read_ms = at.time_ms;
                self.read_pk = pk;
                self.read_offset = offset;
                if in_final {
                    self.flags |= flag::FIRST_READ_FINAL;
                }
            }
            if in_final {
                self.flags |= flag::FINAL_AT_FIRST;
            }
            if hw_known {
                self.flags |= flag::HW_AT_FIRST;
            }
            return;
        }
        let extra = self.extra();
        match extra
            .others
            .iter()
            .position(|r| r.pk == pk && r.offset == offset)
        {
            Some(i) => {
                extra.others[i].in_final |= in_final;
                extra.others[i].hw_known |= hw_known;
            }
            None if extra.others.len() + 1 < limits::POSITIONS_PER_ID_MAX => extra.others.push(at),
            None => {}
        }
    }

    fn extra(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    pub fn last_unacked(&self) -> Option<&Unacked> {
        self.extra.as_ref().and_then(|e| e.last_unacked.as_ref())
    }

    pub fn others(&self) -> &[ReadAt] {
        self.extra.as_ref().map_or(&[], |e| e.others.as_slice())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendOutcome {
    Ok,
    Fail,
    Info,
}

/// Messages in fixed-size chunks: growing never copies (nor doubles the memory of) what is there.
#[derive(Debug, Default)]
pub(crate) struct Msgs {
    chunks: Vec<Vec<Msg>>,
    len: usize,
}

const CHUNK_LEN: usize = 1 << 16;

impl Msgs {
    fn push(&mut self, msg: Msg) -> usize {
        if self.len % CHUNK_LEN == 0 {
            self.chunks.push(Vec::with_capacity(CHUNK_LEN));
        }
        if let Some(chunk) = self.chunks.last_mut() {
            chunk.push(msg);
        }
        self.len += 1;
        self.len - 1
    }

    #[inline]
    pub fn get(&self, slot: usize) -> &Msg {
        &self.chunks[slot / CHUNK_LEN][slot % CHUNK_LEN]
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, slot: usize) -> &mut Msg {
        &mut self.chunks[slot / CHUNK_LEN][slot % CHUNK_LEN]
    }

    pub fn iter(&self) -> impl Iterator<Item = &Msg> {
        self.chunks.iter().flatten()
    }

    pub fn len(&self) -> usize {
        self.len
    }
}

/// Message id → slot, in pages of `PAGE_LEN` consecutive ids (kaos ids are a producer number in
/// the high bits and a sequence in the low bits, so each producer fills its own pages): no hashing
/// per id, consecutive ids share cache lines. Memory stays proportional to the number of messages:
/// a new page is only made while the pages hold at most twice the messages (plus
/// `limits::DENSE_IDS_SLACK` ids); ids beyond that go to a hash map.
#[derive(Debug, Default)]
pub(crate) struct Slots {
    /// Page number (`id >> PAGE_BITS`) → index in `pages`.
    page_of: FastMap<u64, u32>,
    pages: Vec<Box<[u32]>>,
    sparse: IdMap<u32>,
}

const PAGE_BITS: u32 = 12;
const PAGE_LEN: usize = 1 << PAGE_BITS;

impl Slots {
    #[inline]
    pub fn get(&self, id: u64) -> Option<u32> {
        if let Some(&page) = self.page_of.get(&(id >> PAGE_BITS)) {
            let slot = self.pages[page as usize][(id as usize) & (PAGE_LEN - 1)];
            if slot != u32::MAX {
                return Some(slot);
            }
        }
        if self.sparse.is_empty() {
            return None;
        }
        self.sparse.get(&id).copied()
    }

    /// Inserts a new id; `messages` is how many messages exist with it.
    #[inline]
    pub fn insert(&mut self, id: u64, slot: u32, messages: usize) {
        let number = id >> PAGE_BITS;
        let page = match self.page_of.get(&number) {
            Some(&page) => Some(page),
            None => {
                let bound = messages
                    .saturating_mul(2)
                    .saturating_add(limits::DENSE_IDS_SLACK);
                if (self.pages.len() + 1).saturating_mul(PAGE_LEN) <= bound {
                    let page = u32::try_from(self.pages.len()).unwrap_or(u32::MAX);
                    self.pages.push(vec![u32::MAX; PAGE_LEN].into_boxed_slice());
                    self.page_of.insert(number, page);
                    Some(page)
                } else {
                    None
                }
            }
        };
        match page {
            Some(page) => self.pages[page as usize][(id as usize) & (PAGE_LEN - 1)] = slot,
            None => {
                self.sparse.insert(id, slot);
            }
        }
    }
}

/// A send invoke not yet completed.
#[derive(Debug, Clone, Copy)]
struct OpenSend {
    id: Option<u64>,
}

/// Where the harness is in its `final_read` phase.
#[derive(Debug, Clone, Default)]
pub(crate) struct FinalRead {
    pub active: bool,
    pub invoked_at_ns: Option<u64>,
    pub completed: bool,
    pub ended_without_ok: Option<String>,
    /// Every Metadata answer of the final read said the topic does not exist: its id, name and
    /// the error (`end_offsets` with `topic_missing`).
    pub topic_missing: Option<TopicMissing>,
}

/// A compacted topic's final read, as `conclude::superseded` judges absences by it.
#[derive(Debug, Default)]
pub(crate) struct Compaction {
    /// The producers' key space (`kaos_history::message_key`).
    pub keys: u64,
    /// Per (partition, key): the highest offset the final read holds a record of that key at.
    pub latest: FastMap<(u32, u64), i64>,
    /// Per (partition, offset): the message the final read holds there. The cleaner keeps
    /// offsets, so another message at a message's position means it was overwritten, not
    /// compacted.
    pub held: FastMap<(u32, i64), u64>,
}

/// A topic the final read found gone.
#[derive(Debug, Clone)]
pub(crate) struct TopicMissing {
    pub topic: u32,
    pub name: String,
    pub error: String,
}

/// A note that may repeat, counted rather than repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Oddity {
    CompletionWithoutInvoke,
    MalformedRecords,
    RecoveryWithoutFault,
    JumpsBeyondLimit,
}

/// Why a consumer's next read of a partition is expected somewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reset {
    /// An assign/subscribe/rebalance with a committed offset for the group.
    Committed,
    /// A `seek`.
    Seek,
}

/// One consumer's progress in one partition, within its current assignment generation.
#[derive(Debug, Clone, Copy)]
struct PartState {
    /// Last offset read (`NO_OFFSET` before the first read).
    last: i64,
    last_index: u64,
    /// After a reset: where the next read must start (`None`: anywhere).
    pending: Option<Option<(i64, Reset)>>,
    generation: i64,
}

/// A consumer moved within a partition other than to the next offset.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Jump {
    pub process: u32,
    pub pk: u32,
    /// The offset before (exclusive): the last one read, or the expected one minus one.
    pub from: i64,
    /// The offset read.
    pub to: i64,
    pub index: u64,
    pub time_ms: u32,
    pub id: Option<u64>,
    pub generation: i64,
    /// `None`: between or within polls in one generation; `Some`: the first read after a reset.
    pub after: Option<Reset>,
    pub within_poll: bool,
    /// Read by a poll of a transaction that did not commit (`fail` or `info`), which does not
    /// move the consumer's position.
    pub uncommitted: bool,
}

/// The latest acknowledged commit of a group for one partition (history order).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CommitAt {
    pub offset: i64,
    pub index: u64,
    pub time_ns: u64,
    /// The committing client's CLOCK_MONOTONIC stamp of the commit's `ok`, when it has one.
    pub monotonic_ns: Option<u64>,
    pub process: u32,
}

/// A start of a group on a partition below the group's latest acknowledged commit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LostCommit {
    pub group: u32,
    pub pk: u32,
    pub commit: CommitAt,
    /// Where reading started, by a `seek` or the first read after an assignment.
    pub start: i64,
    pub index: u64,
    pub time_ns: u64,
    pub process: u32,
    pub after: Reset,
}

/// A `process` ok op's record of one message.
#[derive(Debug, Clone)]
pub(crate) struct Processed {
    pub count: u32,
    /// (op index, ms, process, pk, offset) of the first two processings.
    pub first: (u64, u32, u32, u32, i64),
    pub second: Option<(u64, u32, u32, u32, i64)>,
}

/// The queue checker. Feed it every op in history order with [`Checker::observe`] (or lines with
/// [`Checker::observe_line`]), then call [`Checker::finish`].
#[derive(Debug)]
pub struct Checker {
    pub(crate) expect: Expectations,
    pub(crate) ops: u64,
    pub(crate) last_time_ns: u64,
    /// Topic, process and group names, interned: per-message records keep a u32.
    pub(crate) names: Interner,
    /// (topic, partition) pairs, interned.
    pub(crate) pks: Vec<(u32, i32)>,
    pk_ids: FastMap<(u32, i32), u32>,
    harness: u32,
    nemesis: u32,
    pub(crate) slots: Slots,
    pub(crate) msgs: Msgs,
    open_sends: FastMap<u32, VecDeque<OpenSend>>,
    /// Highest offset the final read returned per partition.
    pub(crate) final_ends: FastMap<u32, i64>,
    /// Final-read positions whose record carries no id.
    pub(crate) final_without_id: FastSet<(u32, i64)>,
    /// Highest offset any successful poll returned per partition.
    pub(crate) read_frontier: FastMap<u32, i64>,
    /// The log start offset per partition the final read found (its `end_offsets` `low`):
    /// what lies below it was deleted by retention.
    pub(crate) log_start: FastMap<u32, i64>,
    consumers: FastMap<(u32, u32), PartState>,
    pub(crate) process_group: FastMap<u32, u32>,
    /// Highest committed offset per (group, partition).
    pub(crate) committed: FastMap<(u32, u32), i64>,
    /// The latest acknowledged commit per (group, partition), for `lost_commit`.
    pub(crate) last_commit: FastMap<(u32, u32), CommitAt>,
    /// Starts below the latest commit, kept up to the evidence cap; the count is exact.
    pub(crate) lost_commits: Vec<LostCommit>,
    pub(crate) lost_commits_count: u64,
    /// Consumer reads at or above the high watermark recorded with them, up to the evidence cap;
    /// the count is exact.
    pub(crate) above_hw: Vec<AboveHighWatermark>,
    pub(crate) above_hw_count: u64,
    /// Consumer reads (outside the final read) whose record carried a high watermark.
    pub(crate) reads_with_hw: u64,
    pub(crate) jumps: Vec<Jump>,
    /// Reads that went backwards: (jump, why), kept up to the evidence cap; the count is exact.
    pub(crate) rewinds: Vec<Jump>,
    pub(crate) rewinds_count: u64,
    pub(crate) processed: IdMap<Processed>,
    pub(crate) final_read: FinalRead,
    pub(crate) faults: Vec<FaultWindow>,
    pub(crate) series: Series,
    pub(crate) counts: Counts,
    pub(crate) oddities: FastMap<Oddity, u64>,
    pub(crate) notes: Vec<String>,
    /// The harness `start` op's value (the scenario), if any.
    pub(crate) scenario: Option<serde_json::Value>,
    /// On a compacted topic, what the final read holds by key and by position (filled in by
    /// `finish`; see `conclude::superseded`).
    pub(crate) compaction: Option<Compaction>,
    /// `client_start` specs by client (process) name.
    pub(crate) client_specs: HashMap<String, serde_json::Value>,
    pub(crate) replica_cases: Vec<Case>,
    /// `node_crash` cases (from `crash` ops), up to the evidence cap, and how many more.
    pub(crate) crashes: Vec<Case>,
    pub(crate) crashes_omitted: u64,
    last_topic: Option<(String, u32)>,
    /// Consumer processes with `isolation.level = read_uncommitted` (from `client_start`).
    pub(crate) uncommitted_readers: FastSet<u32>,
    /// Completed transactions (`txn` ops, or Jepsen's), for the cycle analysis at `finish`.
    pub(crate) txns: Vec<crate::elle::Txn>,
    /// Each process's open `txn` invoke's client stamp (its realtime start).
    pub(crate) txn_invoked: HashMap<u32, u64>,
    /// Each process's open `txn` invoke's `time_ns` (to say when a stalled pipeline began the
    /// transaction that never completed).
    pub(crate) txn_open_since: HashMap<u32, u64>,
    /// The topic whose partitions the transactions' keys are, and the cycle analysis's options.
    pub(crate) txn_topic: Option<String>,
    pub(crate) elle_options: crate::elle::Options,
}

impl Checker {
    pub fn new(expect: Expectations) -> Self {
        let mut names = Interner::default();
        let harness = names.intern(kaos_history::HARNESS);
        let nemesis = names.intern(kaos_history::NEMESIS);
        Checker {
            expect,
            ops: 0,
            last_time_ns: 0,
            names,
            pks: Vec::new(),
            pk_ids: FastMap::default(),
            harness,
            nemesis,
            slots: Slots::default(),
            msgs: Msgs::default(),
            open_sends: FastMap::default(),
            final_ends: FastMap::default(),
            final_without_id: FastSet::default(),
            read_frontier: FastMap::default(),
            log_start: FastMap::default(),
            consumers: FastMap::default(),
            process_group: FastMap::default(),
            committed: FastMap::default(),
            last_commit: FastMap::default(),
            lost_commits: Vec::new(),
            lost_commits_count: 0,
            above_hw: Vec::new(),
            above_hw_count: 0,
            reads_with_hw: 0,
            jumps: Vec::new(),
            rewinds: Vec::new(),
            rewinds_count: 0,
            processed: IdMap::default(),
            final_read: FinalRead::default(),
            faults: Vec::new(),
            series: Series::default(),
            counts: Counts::default(),
            oddities: FastMap::default(),
            notes: Vec::new(),
            scenario: None,
            compaction: None,
            client_specs: HashMap::new(),
            replica_cases: Vec::new(),
            crashes: Vec::new(),
            crashes_omitted: 0,
            last_topic: None,
            uncommitted_readers: FastSet::default(),
            txns: Vec::new(),
            txn_invoked: HashMap::new(),
            txn_open_since: HashMap::new(),
            txn_topic: None,
            elle_options: crate::elle::Options::default(),
        }
    }

    /// Adds a note to the analysis (for example from the reader of the history text).
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// Reads per-replica dumps (see [`crate::replicas`]) and keeps their divergence cases for
    /// `finish`, judged by the `replica_divergence` expectation.
    pub fn observe_replica_dumps(
        &mut self,
        dumps: &[(String, &str)],
    ) -> Result<(), crate::replicas::DumpError> {
        let cases = crate::replicas::divergence(dumps)?;
        self.replica_cases.extend(cases);
        Ok(())
    }

    /// Takes one line of `history.jsonl` (1-based `line_number` for errors), through the fast
    /// path when it can.
    pub fn observe_line(&mut self, line: &str, line_number: usize) -> Result<(), HistoryError> {
        let mut records = Vec::new();
        self.observe_line_with(line, line_number, &mut records)
    }

    /// `observe_line` with a caller-kept scratch vector for poll records (no allocation per poll).
    pub(crate) fn observe_line_with<'a>(
        &mut self,
        line: &'a str,
        line_number: usize,
        records: &mut Vec<Rec<'a>>,
    ) -> Result<(), HistoryError> {
        match scan::scan_line(line, records) {
            Some(scanned) => {
                self.observe_scanned(&scanned, records);
                Ok(())
            }
            None => {
                let op = history::parse_op(line, line_number)?;
                self.observe(&op);
                Ok(())
            }
        }
    }

    fn observe_scanned(&mut self, line: &scan::Line<'_>, records: &[Rec<'_>]) {
        self.ops += 1;
        self.last_time_ns = self.last_time_ns.max(line.time_ns);
        let meta = Meta {
            index: line.index,
            time_ns: line.time_ns,
            monotonic_ns: line.monotonic_ns,
            process: self.names.intern(&line.process),
            kind: line.kind,
            error: line.error.as_deref(),
        };
        match &line.body {
            Body::Records => {
                if meta.kind == OpType::Ok {
                    self.on_poll(&meta, records);
                } else if !records.is_empty() {
                    self.on_uncommitted_poll(&meta, records);
                }
            }
            Body::Flat(flat) => self.on_flat(line.f, &meta, flat),
        }
    }

    /// Takes one op, in history order.
    pub fn observe(&mut self, op: &Op) {
        self.ops += 1;
        self.last_time_ns = self.last_time_ns.max(op.time_ns);
        let meta = Meta {
            index: op.index,
            time_ns: op.time_ns,
            monotonic_ns: op.monotonic_ns,
            process: self.names.intern(&op.process),
            kind: op.kind,
            error: op.error.as_deref(),
        };
        let f = op.name();
        match f {
            Some(F::Poll) if op.kind == OpType::Ok => {
                let (records, malformed) = history::polled_records(&op.value);
                if malformed > 0 {
                    *self.oddities.entry(Oddity::MalformedRecords).or_default() += malformed;
                }
                self.on_poll(&meta, &records);
            }
            Some(F::Poll) if !op.value.is_null() => {
                let (records, _) = history::polled_records(&op.value);
                if !records.is_empty() {
                    self.on_uncommitted_poll(&meta, &records);
                }
            }
            Some(
                f @ (F::Send
                | F::Enqueue
                | F::Accept
                | F::Drop
                | F::Process
                | F::OffsetCommit
                | F::Seek),
            ) => {
                self.on_flat(f, &meta, &history::flat_of(&op.value));
            }
            // An `info` assignment may have happened: its resets apply, so that no skip is
            // claimed across it.
            Some(F::Assign | F::Subscribe | F::Rebalance)
                if matches!(op.kind, OpType::Ok | OpType::Info) =>
            {
                self.on_assignment(&meta, &op.value);
            }
            Some(F::FinalRead) if meta.process == self.harness => self.observe_final_read(op),
            Some(F::EndOffsets) if op.kind == OpType::Ok => self.on_end_offsets(&op.value),
            Some(F::Start)
                if meta.process == self.harness
                    && self.scenario.is_none()
                    && !op.value.is_null() =>
            {
                self.scenario = Some(op.value.clone());
            }
            Some(F::ClientStart) if meta.process == self.harness => {
                let client = op.value.get("client").and_then(serde_json::Value::as_str);
                if let (Some(client), Some(spec)) = (client, op.value.get("spec")) {
                    if history::reads_uncommitted(spec) {
                        let process = self.names.intern(client);
                        self.uncommitted_readers.insert(process);
                    }
                    self.client_specs.insert(client.to_owned(), spec.clone());
                }
            }
            Some(F::Txn) => self.on_txn(&meta, &op.value),
            // Any name, ours or another nemesis's: an unknown one is an instant event.
            _ if meta.process == self.nemesis => self.observe_nemesis(op),
            _ => {}
        }
    }

    fn on_flat(&mut self, f: F, meta: &Meta<'_>, flat: &Flat<'_>) {
        match f {
            F::Send => self.on_send(meta, flat),
            F::Enqueue | F::Accept | F::Drop if meta.kind == OpType::Ok => {
                self.on_accept(f == F::Drop, meta, flat)
            }
            F::Process if meta.kind == OpType::Ok => self.on_process(meta, flat),
            F::OffsetCommit if meta.kind == OpType::Ok => self.on_offset_commit(meta, flat),
            F::Seek if meta.kind == OpType::Ok => self.on_seek(meta, flat),
            _ => {}
        }
    }

    pub(crate) fn topic_id(&mut self, topic: &str) -> u32 {
        if let Some((name, id)) = &self.last_topic {
            if name == topic {
                return *id;
            }
        }
        let id = self.names.intern(topic);
        self.last_topic = Some((topic.to_owned(), id));
        id
    }

    /// The final read's `end_offsets`: each partition's log start offset (`low`).
    fn on_end_offsets(&mut self, value: &serde_json::Value) {
        let Some(topic) = value.get("topic").and_then(serde_json::Value::as_str) else {
            return;
        };
        let name = topic.to_owned();
        let topic = self.topic_id(topic);
        if let Some(error) = value.get("topic_missing") {
            self.final_read.topic_missing = Some(TopicMissing {
                topic,
                name,
                error: error
                    .as_str()
                    .map_or_else(|| error.to_string(), str::to_owned),
            });
        }
        let partitions = value
            .get("partitions")
            .and_then(serde_json::Value::as_array);
        for p in partitions.into_iter().flatten() {
            let partition = p.get("partition").and_then(serde_json::Value::as_i64);
            let low = p.get("low").and_then(serde_json::Value::as_i64);
            if let (Some(partition), Some(low)) =
                (partition.and_then(|n| i32::try_from(n).ok()), low)
            {
                let pk = self.pk(topic, partition);
                self.log_start.insert(pk, low);
            }
        }
    }

    pub(crate) fn pk(&mut self, topic: u32, partition: i32) -> u32 {
        if let Some(pk) = self.pk_ids.get(&(topic, partition)) {
            return *pk;
        }
        let pk = u32::try_from(self.pks.len()).unwrap_or(u32::MAX);
        self.pks.push((topic, partition));
        self.pk_ids.insert((topic, partition), pk);
        pk
    }

    /// The slot of message `id`, created (first mentioned at `index`) when new.
    #[inline]
    pub(crate) fn slot(&mut self, id: u64, index: u64) -> usize {
        if let Some(slot) = self.slots.get(id) {
            return slot as usize;
        }
        let slot = self.msgs.push(Msg::new(id, index));
        self.slots
            .insert(id, u32::try_from(slot).unwrap_or(u32::MAX), self.msgs.len());
        slot
    }

    pub(crate) fn msg(&self, id: u64) -> Option<&Msg> {
        self.slots.get(id).map(|slot| self.msgs.get(slot as usize))
    }

    fn bump(series: &mut Vec<u64>, time_ns: u64, by: u64) {
        let second = usize::try_from(time_ns / 1_000_000_000)
            .unwrap_or(usize::MAX)
            .min(limits::SERIES_SECONDS_MAX - 1);
        if series.len() <= second {
            series.resize(second + 1, 0);
        }
        series[second] += by;
    }

    fn on_send(&mut self, meta: &Meta<'_>, flat: &Flat<'_>) {
        let topic = flat.topic.as_deref().map(|t| self.topic_id(t));
        if meta.kind == OpType::Invoke {
            self.on_send_invoke(meta, flat.id, topic);
        } else {
            self.on_send_completion(meta, flat, topic);
        }
    }

    pub(crate) fn on_send_invoke(
        &mut self,
        meta: &Meta<'_>,
        value_id: Option<u64>,
        topic: Option<u32>,
    ) {
        let open = OpenSend { id: value_id };
        self.open_sends
            .entry(meta.process)
            .or_default()
            .push_back(open);
        let Some(id) = value_id else {
            self.counts.sends_without_id += 1;
            return;
        };
        let slot = self.slot(id, meta.index);
        let msg = self.msgs.get_mut(slot);
        msg.attempts = msg.attempts.saturating_add(1);
        if !msg.has(flag::HAS_INVOKE) {
            if !msg.has(flag::HAS_SEND) {
                msg.first_index = meta.index;
                // The history orders ops as the harness received them, one pipe per client
                // process, so a read may arrive a moment before the invoke that another pipe
                // still holds. With the clients' own CLOCK_MONOTONIC stamps on both ops the
                // order is exact: a poll that completed before the send was invoked read the
                // future. Without them (an older history), only a read that precedes the invoke
                // by more than the receipt skew is provably in the future.
                if msg.has(flag::READ_BEFORE_SEND) {
                    let read_ns = msg
                        .extra
                        .as_ref()
                        .and_then(|e| e.read_before_send_monotonic_ns);
                    let future = match (read_ns, meta.monotonic_ns) {
                        (Some(read), Some(invoke)) => read < invoke,
                        _ => {
                            millis(meta.time_ns).saturating_sub(msg.read_ms)
                                > limits::RECEIPT_SKEW_MS
                        }
                    };
                    if future {
                        msg.flags |= flag::FUTURE_READ;
                    } else if let (Some(read), Some(_)) = (read_ns, meta.monotonic_ns) {
                        // Received before the invoke, made after it: a read before the ack
                        // unless the ack's stamp comes first.
                        msg.flags |= flag::READ_BEFORE_ACK;
                        msg.extra().read_before_ack_monotonic_ns = Some(read);
                    }
                }
            }
            msg.flags |= flag::HAS_INVOKE | flag::HAS_SEND;
            msg.invoke_ms = millis(meta.time_ns);
            msg.process = meta.process;
        }
        if msg.topic == u32::MAX {
            if let Some(t) = topic {
                msg.topic = t;
            }
        }
    }

    pub(crate) fn on_send_completion(
        &mut self,
        meta: &Meta<'_>,
        flat: &Flat<'_>,
        topic: Option<u32>,
    ) {
        let value_id = flat.id;
        // A completion: the next ok/fail/info of the same process and f completes the oldest
        // open invoke; when the completion names its id, the open invoke with that id.
        let matched = self.open_sends.get_mut(&meta.process).and_then(|queue| {
            let at = match value_id {
                Some(id) => queue
                    .iter()
                    .position(|open| open.id == Some(id))
                    .unwrap_or(0),
                None => 0,
            };
            queue.remove(at)
        });
        if matched.is_none() {
            *self
                .oddities
                .entry(Oddity::CompletionWithoutInvoke)
                .or_default() += 1;
        }
        match meta.kind {
            OpType::Ok => Self::bump(&mut self.series.sends_ok, meta.time_ns, 1),
            OpType::Fail => Self::bump(&mut self.series.sends_fail, meta.time_ns, 1),
            OpType::Info | OpType::Invoke => {
                Self::bump(&mut self.series.sends_info, meta.time_ns, 1)
            }
        }
        let Some(id) = value_id.or(matched.and_then(|open| open.id)) else {
            if matched.is_none() {
                self.counts.sends_without_id += 1;
            }
            return;
        };
        // The broker's ack: a negative offset (what `acks=0` reports) is no position.
        let acked = match (meta.kind, flat.partition, flat.offset) {
            (OpType::Ok, Some(partition), Some(offset)) if offset >= 0 => {
                i32::try_from(partition).ok().map(|p| (p, offset))
            }
            _ => None,
        };
        self.record_send_outcome(meta, id, topic, acked);
    }

    /// A send's completion on its message: the ack's position, or the failure or unknown outcome.
    fn record_send_outcome(
        &mut self,
        meta: &Meta<'_>,
        id: u64,
        topic: Option<u32>,
        acked: Option<(i32, i64)>,
    ) {
        let slot = self.slot(id, meta.index);
        let known_topic = self.msgs.get(slot).topic;
        let topic = topic.unwrap_or(known_topic);
        let pos = match acked {
            Some((partition, offset)) => {
                let topic = if topic == u32::MAX {
                    self.topic_id("")
                } else {
                    topic
                };
                Some((self.pk(topic, partition), offset))
            }
            None => None,
        };
        let msg = self.msgs.get_mut(slot);
        if !msg.has(flag::HAS_SEND) {
            msg.flags |= flag::HAS_SEND;
            msg.first_index = meta.index;
            msg.invoke_ms = millis(meta.time_ns);
            msg.process = meta.process;
            msg.attempts = msg.attempts.max(1);
        }
        if msg.topic == u32::MAX {
            msg.topic = topic;
        }
        match meta.kind {
            OpType::Ok => {
                if msg.ack_index == NONE {
                    msg.ack_index = meta.index;
                    msg.ack_ms = millis(meta.time_ns);
                    // A read that reached the history before the ack, while the clients' clocks
                    // say the producer had its ack first, was not a read before the ack.
                    let read_ns = msg
                        .extra
                        .as_ref()
                        .and_then(|e| e.read_before_ack_monotonic_ns);
                    if let (Some(read), Some(ack)) = (read_ns, meta.monotonic_ns) {
                        if ack < read {
                            msg.flags &= !flag::READ_BEFORE_ACK;
                        }
                    }
                    if let Some((pk, offset)) = pos {
                        msg.ack_pk = pk;
                        msg.ack_offset = offset;
                    }
                }
            }
            OpType::Fail | OpType::Info | OpType::Invoke => {
                if meta.kind == OpType::Fail {
                    msg.fails = msg.fails.saturating_add(1);
                } else {
                    msg.infos = msg.infos.saturating_add(1);
                }
                msg.extra().last_unacked = Some(Unacked {
                    kind: meta.kind,
                    index: meta.index,
                    time_ms: millis(meta.time_ns),
                    error: meta.error.map(str::to_owned),
                });
            }
        }
    }

    /// A consumer record read at `(pk, offset)` with the high watermark its client knew then:
    /// at or above it, the record was served before it was committed (`uncommitted_read`,
    /// `above_high_watermark`).
    fn note_high_watermark(
        &mut self,
        meta: &Meta<'_>,
        id: Option<u64>,
        (pk, offset): (u32, i64),
        high_watermark: i64,
    ) {
        self.reads_with_hw += 1;
        if offset < high_watermark {
            return;
        }
        self.above_hw_count += 1;
        if self.above_hw.len() < limits::CASES_PER_CLASS_MAX {
            self.above_hw.push(AboveHighWatermark {
                id,
                pk,
                offset,
                high_watermark,
                index: meta.index,
                time_ms: millis(meta.time_ns),
                process: meta.process,
            });
        }
    }

    /// A record of the final read at `(pk, offset)`: the partition's end as read, and where the
    /// read found a record without a kaos id.
    fn note_final_record(&mut self, pk: u32, offset: i64, without_id: bool) {
        self.counts.final_read_records += 1;
        let end = self.final_ends.entry(pk).or_insert(offset);
        *end = (*end).max(offset);
        if without_id {
            self.final_without_id.insert((pk, offset));
        }
    }

    pub(crate) fn on_poll(&mut self, meta: &Meta<'_>, records: &[Rec<'_>]) {
        self.counts.polls_ok += 1;
        let in_final = self.final_read.active;
        if !in_final {
            let n = records.len() as u64;
            self.counts.records_polled += n;
            Self::bump(&mut self.series.records_polled, meta.time_ns, n);
        }
        let time_ms = millis(meta.time_ns);
        let view = if self.uncommitted_readers.contains(&meta.process) {
            flag::READ_UNCOMMITTED
        } else {
            flag::READ_COMMITTED
        };
        for record in records {
            let topic = self.topic_id(&record.topic);
            let pk = self.pk(topic, record.partition);
            let offset = record.offset;
            let frontier = self.read_frontier.entry(pk).or_insert(offset);
            *frontier = (*frontier).max(offset);
            if in_final {
                self.note_final_record(pk, offset, record.id.is_none());
            }
            self.consumer_order(meta, pk, offset, record.id, time_ms);
            let hw_known = !in_final && record.high_watermark.is_some();
            let high_watermark = record.high_watermark.filter(|_| !in_final);
            let Some(id) = record.id else {
                if let Some(hw) = high_watermark {
                    self.note_high_watermark(meta, None, (pk, offset), hw);
                }
                self.counts.records_without_id += 1;
                continue;
            };
            let slot = self.slot(id, meta.index);
            if let Some(hw) = high_watermark {
                if !acked_here_before(self.msgs.get(slot), (pk, offset), time_ms) {
                    self.note_high_watermark(meta, Some(id), (pk, offset), hw);
                }
            }
            let msg = self.msgs.get_mut(slot);
            if !msg.has(flag::HAS_SEND) {
                msg.flags |= flag::READ_BEFORE_SEND;
                if let Some(ns) = meta.monotonic_ns {
                    let earliest = &mut msg.extra().read_before_send_monotonic_ns;
                    *earliest = Some(earliest.map_or(ns, |e| e.min(ns)));
                }
            } else if msg.ack_index == NONE {
                msg.flags |= flag::READ_BEFORE_ACK;
                if let Some(ns) = meta.monotonic_ns {
                    let earliest = &mut msg.extra().read_before_ack_monotonic_ns;
                    *earliest = Some(earliest.map_or(ns, |e| e.min(ns)));
                }
            }
            msg.flags |= view;
            if !in_final {
                msg.deliveries = msg.deliveries.saturating_add(1);
                msg.flags |= flag::READ_BY_CONSUMER;
            }
            msg.note_read_at(ReadAt {
                pk,
                offset,
                index: meta.index,
                time_ms,
                in_final,
                hw_known,
            });
            if in_final && !msg.has(flag::IN_FINAL) {
                msg.flags |= flag::IN_FINAL;
                self.counts.final_read_distinct_ids += 1;
            }
        }
    }

    /// A `poll` `fail` / `info` that carries records: a transaction that did not commit (Jepsen's
    /// aborted or crashed `:txn`) read them. They are checked for skips and rewinds against the
    /// consumer's position, which they do not move: the transaction's abort rewinds the
    /// consumer, so its next poll must start where the last committed one left off. They are no
    /// read of the messages (an aborted poll's duplicates are the cycle pass's).
    fn on_uncommitted_poll(&mut self, meta: &Meta<'_>, records: &[Rec<'_>]) {
        let time_ms = millis(meta.time_ns);
        let mut saved: Vec<((u32, u32), Option<PartState>)> = Vec::new();
        for record in records {
            let topic = self.topic_id(&record.topic);
            let pk = self.pk(topic, record.partition);
            let key = (meta.process, pk);
            if !saved.iter().any(|(k, _)| *k == key) {
                saved.push((key, self.consumers.get(&key).copied()));
            }
            self.consumer_order(meta, pk, record.offset, record.id, time_ms);
        }
        for (key, state) in saved {
            match state {
                Some(state) => {
                    self.consumers.insert(key, state);
                }
                None => {
                    self.consumers.remove(&key);
                }
            }
        }
    }

    /// Poll skip and nonmonotonic poll, per consumer and partition within one generation.
    fn consumer_order(
        &mut self,
        meta: &Meta<'_>,
        pk: u32,
        offset: i64,
        id: Option<u64>,
        time_ms: u32,
    ) {
        let state = self
            .consumers
            .entry((meta.process, pk))
            .or_insert(PartState {
                last: NO_OFFSET,
                last_index: NONE,
                pending: Some(None),
                generation: -1,
            });
        let jump = |from: i64, after: Option<Reset>, within_poll: bool, generation: i64| Jump {
            process: meta.process,
            pk,
            from,
            to: offset,
            index: meta.index,
            time_ms,
            id,
            generation,
            after,
            within_poll,
            uncommitted: meta.kind != OpType::Ok,
        };
        let assigned_start = matches!(state.pending, Some(Some((_, Reset::Committed))));
        let (forward, backward) = match state.pending.take() {
            Some(None) => (None, None),
            Some(Some((expected, why))) => {
                let j = jump(expected - 1, Some(why), false, state.generation);
                if offset < expected {
                    (None, Some(j))
                } else if offset > expected {
                    (Some(j), None)
                } else {
                    (None, None)
                }
            }
            None => {
                let within = state.last_index == meta.index;
                let j = jump(state.last, None, within, state.generation);
                if offset <= state.last {
                    (None, Some(j))
                } else if offset > state.last.saturating_add(1) {
                    (Some(j), None)
                } else {
                    (None, None)
                }
            }
        };
        state.last = offset;
        state.last_index = meta.index;
        if let Some(j) = forward {
            if self.jumps.len() < limits::CONSUMER_JUMPS_MAX {
                self.jumps.push(j);
            } else {
                *self.oddities.entry(Oddity::JumpsBeyondLimit).or_default() += 1;
            }
        }
        if let Some(j) = backward {
            self.rewinds_count += 1;
            if self.rewinds.len() < limits::CASES_PER_CLASS_MAX {
                self.rewinds.push(j);
            }
        }
        if assigned_start {
            self.check_start(meta, pk, offset, Reset::Committed);
        }
    }

    /// `lost_commit`: `meta.process` started reading `pk` at `start` (after `after`) below the
    /// latest commit its group had acknowledged before the start: by the clients' CLOCK_MONOTONIC
    /// stamps when both ops have one, else received at least `RECEIPT_SKEW_MS` earlier, so that
    /// a commit and a start racing through different pipes are not claimed.
    fn check_start(&mut self, meta: &Meta<'_>, pk: u32, start: i64, after: Reset) {
        let Some(group) = self.process_group.get(&meta.process).copied() else {
            return;
        };
        let Some(commit) = self.last_commit.get(&(group, pk)).copied() else {
            return;
        };
        let before = match (commit.monotonic_ns, meta.monotonic_ns) {
            (Some(committed), Some(started)) => committed < started,
            _ => {
                let skew_ns = u64::from(limits::RECEIPT_SKEW_MS) * 1_000_000;
                meta.time_ns >= commit.time_ns.saturating_add(skew_ns)
            }
        };
        if start >= commit.offset || !before {
            return;
        }
        self.lost_commits_count += 1;
        if self.lost_commits.len() < limits::CASES_PER_CLASS_MAX {
            self.lost_commits.push(LostCommit {
                group,
                pk,
                commit,
                start,
                index: meta.index,
                time_ns: meta.time_ns,
                process: meta.process,
                after,
            });
        }
    }

    /// `assign`/`subscribe`/`rebalance` ok: a new generation; the next read of each partition
    /// must start at the group's committed offset when one is known, anywhere otherwise.
    fn on_assignment(&mut self, meta: &Meta<'_>, value: &serde_json::Value) {
        if let Some(group) = value.get("group").and_then(serde_json::Value::as_str) {
            let group = self.names.intern(group);
            self.process_group.insert(meta.process, group);
        }
        let generation = value
            .get("generation")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(-1);
        let topic = value
            .get("topic")
            .and_then(serde_json::Value::as_str)
            .map(|t| self.topic_id(t));
        let partitions: Vec<i32> = value
            .get("partitions")
            .and_then(serde_json::Value::as_array)
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| p.as_i64().and_then(|p| i32::try_from(p).ok()))
                    .collect()
            })
            .unwrap_or_default();
        let group = self.process_group.get(&meta.process).copied();
        // Everything this process held is reset (partitions it no longer owns are forgotten).
        let mut owned: Vec<u32> = Vec::new();
        if let Some(topic) = topic {
            for p in &partitions {
                owned.push(self.pk(topic, *p));
            }
        }
        // Without a partition list (a subscription), every partition held is reset and kept.
        let keep_all = topic.is_none() || value.get("partitions").is_none();
        // Jepsen's clients (Java's KafkaConsumer) keep the positions of partitions that stay
        // assigned; librdkafka's assign resets them.
        let keeps = value
            .get("keeps_positions")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        let process = meta.process;
        let committed = &self.committed;
        let expected = |pk: u32| {
            group
                .and_then(|g| committed.get(&(g, pk)).copied())
                .map(|c| (c, Reset::Committed))
        };
        self.consumers.retain(|(p, pk), state| {
            if *p != process {
                return true;
            }
            if keeps && owned.contains(pk) {
                true
            } else if keep_all || owned.contains(pk) {
                state.pending = Some(expected(*pk));
                state.generation = generation;
                true
            } else {
                false
            }
        });
        for pk in owned {
            let pending = Some(expected(pk));
            self.consumers
                .entry((process, pk))
                .and_modify(|s| {
                    if !keeps {
                        s.pending = pending;
                        s.generation = generation;
                    }
                })
                .or_insert(PartState {
                    last: NO_OFFSET,
                    last_index: NONE,
                    pending,
                    generation,
                });
        }
    }

    fn flat_pk(&mut self, flat: &Flat<'_>) -> Option<u32> {
        let topic = self.topic_id(flat.topic.as_deref().unwrap_or(""));
        let partition = i32::try_from(flat.partition?).ok()?;
        Some(self.pk(topic, partition))
    }

    fn on_seek(&mut self, meta: &Meta<'_>, flat: &Flat<'_>) {
        let (Some(pk), Some(offset)) = (self.flat_pk(flat), flat.offset) else {
            return;
        };
        let state = self
            .consumers
            .entry((meta.process, pk))
            .or_insert(PartState {
                last: NO_OFFSET,
                last_index: NONE,
                pending: None,
                generation: -1,
            });
        state.pending = Some(Some((offset, Reset::Seek)));
        self.check_start(meta, pk, offset, Reset::Seek);
    }

    fn on_offset_commit(&mut self, meta: &Meta<'_>, flat: &Flat<'_>) {
        self.counts.offset_commits += 1;
        let group = match flat.group.as_deref() {
            Some(g) => {
                let g = self.names.intern(g);
                self.process_group.insert(meta.process, g);
                g
            }
            None => match self.process_group.get(&meta.process) {
                Some(g) => *g,
                None => self.names.intern(""),
            },
        };
        let (Some(pk), Some(offset)) = (self.flat_pk(flat), flat.offset) else {
            return;
        };
        let c = self.committed.entry((group, pk)).or_insert(offset);
        *c = (*c).max(offset);
        let at = CommitAt {
            offset,
            index: meta.index,
            time_ns: meta.time_ns,
            monotonic_ns: meta.monotonic_ns,
            process: meta.process,
        };
        self.last_commit.insert((group, pk), at);
    }

    fn on_process(&mut self, meta: &Meta<'_>, flat: &Flat<'_>) {
        self.counts.processed += 1;
        let Some(id) = flat.id else { return };
        let pk = self.flat_pk(flat).unwrap_or(u32::MAX);
        let at = (
            meta.index,
            millis(meta.time_ns),
            meta.process,
            pk,
            flat.offset.unwrap_or(NO_OFFSET),
        );
        self.processed
            .entry(id)
            .and_modify(|p| {
                p.count = p.count.saturating_add(1);
                if p.second.is_none() {
                    p.second = Some(at);
                }
            })
            .or_insert(Processed {
                count: 1,
                first: at,
                second: None,
            });
    }

    fn on_accept(&mut self, dropped: bool, meta: &Meta<'_>, flat: &Flat<'_>) {
        let Some(id) = flat.id else { return };
        let topic = flat.topic.as_deref().map(|t| self.topic_id(t));
        let slot = self.slot(id, meta.index);
        let msg = self.msgs.get_mut(slot);
        if msg.topic == u32::MAX {
            if let Some(t) = topic {
                msg.topic = t;
            }
        }
        if msg.process == u32::MAX {
            msg.process = meta.process;
        }
        let at = Some((meta.index, millis(meta.time_ns)));
        if dropped {
            msg.flags |= flag::DROPPED;
            let extra = msg.extra();
            extra.dropped_at = extra.dropped_at.or(at);
        } else {
            msg.flags |= flag::ACCEPTED;
            let extra = msg.extra();
            extra.accepted_at = extra.accepted_at.or(at);
        }
    }

    fn observe_final_read(&mut self, op: &Op) {
        match op.kind {
            OpType::Invoke => {
                self.final_read.active = true;
                self.final_read.invoked_at_ns.get_or_insert(op.time_ns);
            }
            OpType::Ok => {
                self.final_read.active = false;
                self.final_read.completed = true;
            }
            OpType::Fail | OpType::Info => {
                self.final_read.active = false;
                self.final_read.ended_without_ok = Some(format!(
                    "{} at {:.2} s{}",
                    if op.kind == OpType::Fail {
                        "failed"
                    } else {
                        "ended with an unknown outcome"
                    },
                    seconds(op.time_ns),
                    op.error
                        .as_deref()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                ));
            }
        }
    }

    fn observe_nemesis(&mut self, op: &Op) {
        // A fault takes effect when its op completes ok (or info: probably happened).
        // A `sequence` op only brackets its steps, which are faults of their own.
        if !matches!(op.kind, OpType::Ok | OpType::Info) || op.name() == Some(F::Sequence) {
            return;
        }
        if op.name() == Some(F::Crash) {
            if self.crashes.len() < crate::limits::CASES_PER_CLASS_MAX {
                let case = crate::analysis::NodeExit::case_of(op, seconds(op.time_ns));
                self.crashes.push(case);
            } else {
                self.crashes_omitted += 1;
            }
        }
        let target = fault_target(&op.value);
        let now_s = seconds(op.time_ns);
        if let Some(recovery) = Recovery::from_name(&op.f) {
            let closes = |w: &FaultWindow| {
                w.end_s.is_none()
                    && FaultKind::from_name(&w.kind).is_some_and(|k| recovery.closes(k))
            };
            let closes_all =
                target.is_empty() || !self.faults.iter().any(|w| closes(w) && w.target == target);
            let mut closed = 0;
            for window in &mut self.faults {
                if closes(window)
                    && (window.target == target
                        || (closes_all && recovery.closes_all_when_untargeted()))
                {
                    window.end_s = Some(now_s);
                    closed += 1;
                }
            }
            if closed == 0 && recovery.expects_a_window() {
                *self
                    .oddities
                    .entry(Oddity::RecoveryWithoutFault)
                    .or_default() += 1;
            }
            return;
        }
        let instantaneous = !FaultKind::from_name(&op.f).is_some_and(FaultKind::is_lasting);
        if !instantaneous
            && self
                .faults
                .iter()
                .any(|w| w.end_s.is_none() && w.kind == op.f && w.target == target)
        {
            return; // already in effect: the first op opened the window
        }
        self.faults.push(FaultWindow {
            kind: op.f.clone(),
            target,
            start_s: now_s,
            end_s: instantaneous.then_some(now_s),
            op_index: op.index,
        });
    }

    /// Open send invokes become attempts of unknown outcome.
    pub(crate) fn close_open_sends(&mut self) {
        let open: Vec<u64> = self
            .open_sends
            .values()
            .flatten()
            .filter_map(|open| open.id)
            .collect();
        for id in open {
            if let Some(slot) = self.slots.get(id) {
                let msg = self.msgs.get_mut(slot as usize);
                msg.open = msg.open.saturating_add(1);
                self.counts.sends_open += 1;
            }
        }
    }

    /// Ops read so far.
    pub fn ops(&self) -> u64 {
        self.ops
    }
}

/// What every op handler needs of the op.
pub(crate) struct Meta<'a> {
    pub index: u64,
    pub time_ns: u64,
    /// The client's CLOCK_MONOTONIC stamp (`None` in histories without it, and for the
    /// harness's own ops): comparable across client processes, unlike `time_ns`.
    pub monotonic_ns: Option<u64>,
    pub process: u32,
    pub kind: OpType,
    pub error: Option<&'a str>,
}

/// Names (topics, processes, groups) stored once and referred to by a u32.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    ids: HashMap<String, u32, BuildHasherDefault<FastHasher>>,
    names: Vec<String>,
    /// The last few names looked up (most histories cycle through a handful of processes).
    recent: [u32; 4],
    recent_next: usize,
}

impl Interner {
    #[inline]
    pub fn intern(&mut self, name: &str) -> u32 {
        for id in self.recent {
            if let Some(known) = self.names.get(id as usize) {
                if known == name {
                    return id;
                }
            }
        }
        let id = self.intern_slow(name);
        self.recent[self.recent_next] = id;
        self.recent_next = (self.recent_next + 1) % self.recent.len();
        id
    }

    fn intern_slow(&mut self, name: &str) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(name.to_owned());
        self.ids.insert(name.to_owned(), id);
        id
    }

    pub fn name(&self, id: u32) -> &str {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.names.get(i))
            .map_or("?", String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{Analysis, AnomalyKind, Verdict};
    use crate::history::parse_op;

    fn run(lines: &[&str], expect: Expectations) -> Analysis {
        let mut checker = Checker::new(expect);
        for (i, line) in lines.iter().enumerate() {
            checker.observe(&parse_op(line, i + 1).expect("valid fixture line"));
        }
        checker.finish()
    }

    const FINAL_READ: [&str; 2] = [
        r#"{"index":90,"time_ns":9000000000,"process":"harness","type":"invoke","f":"final_read"}"#,
        r#"{"index":99,"time_ns":9900000000,"process":"harness","type":"ok","f":"final_read"}"#,
    ];

    /// The same lines through `observe` (parsed ops) and `observe_line` (the fast path).
    fn both_paths(lines: &[&str]) -> [Analysis; 2] {
        let mut fast = Checker::new(Expectations::default());
        for (i, line) in lines.iter().enumerate() {
            fast.observe_line(line, i + 1).expect("valid fixture line");
        }
        [run(lines, Expectations::default()), fast.finish()]
    }

    fn case_ids(a: &Analysis, kind: AnomalyKind) -> Vec<u64> {
        a.anomaly(kind)
            .map(|x| x.cases.iter().map(|c| c.id).collect())
            .unwrap_or_default()
    }

    /// A poll of a transaction that did not commit (`fail`/`info` with records) is held to the
    /// consumer's position and does not move it: the next poll starts where the last committed
    /// one left off (Jepsen's poll-skip-test "txn abort").
    #[test]
    fn uncommitted_polls_are_checked_and_rewound() {
        let send = |i: u64| {
            format!(
                r#"{{"index":{i},"time_ns":{i},"process":"p","type":"ok","f":"send","value":{{"id":{i},"topic":"t","partition":0,"offset":{i}}}}}"#
            )
        };
        let poll = |index: u64, kind: &str, offsets: &[u64]| {
            let records: Vec<String> = offsets
                .iter()
                .map(|o| format!(r#"{{"topic":"t","partition":0,"offset":{o},"id":{o}}}"#))
                .collect();
            format!(
                r#"{{"index":{index},"time_ns":{index},"process":"c","type":"{kind}","f":"poll","value":{{"records":[{}]}}}}"#,
                records.join(",")
            )
        };
        let mut lines: Vec<String> = (0..5).map(send).collect();
        // 0 (ok), 1 2 (fail: fine, rewinds), 1 2 (ok: fine), then 4 (info: skips 3), 3 (ok:
        // fine, the info poll did not move the position).
        lines.push(poll(10, "ok", &[0]));
        lines.push(poll(11, "fail", &[1, 2]));
        lines.push(poll(12, "ok", &[1, 2]));
        lines.push(poll(13, "info", &[4]));
        lines.push(poll(14, "ok", &[3]));
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        for a in both_paths(&lines) {
            assert_eq!(case_ids(&a, AnomalyKind::PollSkip), vec![4]);
            assert_eq!(
                case_ids(&a, AnomalyKind::NonmonotonicPoll),
                Vec::<u64>::new()
            );
            // The uncommitted polls are no reads: 4 was read by none that committed.
            assert_eq!(a.counts.records_polled, 4);
        }
    }

    /// A kaos consumer's `info` assignment (it may have happened) resets the positions like an
    /// `ok` one, so no skip is claimed across it; with Jepsen's `keeps_positions`, a partition
    /// that stays assigned keeps its position, so a skip across the re-assignment is seen.
    #[test]
    fn an_info_assignment_resets_and_a_covering_reassignment_keeps_positions() {
        let lines = |keeps: bool| {
            let mut out: Vec<String> = (0..4)
                .map(|i| format!(r#"{{"index":{i},"time_ns":{i},"process":"p","type":"ok","f":"send","value":{{"id":{i},"topic":"t","partition":0,"offset":{i}}}}}"#))
                .collect();
            out.push(r#"{"index":10,"time_ns":10,"process":"c","type":"ok","f":"poll","value":{"records":[{"topic":"t","partition":0,"offset":0,"id":0}]}}"#.to_owned());
            out.push(format!(r#"{{"index":11,"time_ns":11,"process":"c","type":"info","f":"assign","value":{{"topic":"t","partitions":[0],"keeps_positions":{keeps}}},"error":"timeout"}}"#));
            out.push(r#"{"index":12,"time_ns":12,"process":"c","type":"ok","f":"poll","value":{"records":[{"topic":"t","partition":0,"offset":3,"id":3}]}}"#.to_owned());
            out
        };
        let resets = lines(false);
        let resets: Vec<&str> = resets.iter().map(String::as_str).collect();
        for a in both_paths(&resets) {
            assert_eq!(case_ids(&a, AnomalyKind::PollSkip), Vec::<u64>::new());
        }
        let keeps = lines(true);
        let keeps: Vec<&str> = keeps.iter().map(String::as_str).collect();
        for a in both_paths(&keeps) {
            assert_eq!(case_ids(&a, AnomalyKind::PollSkip), vec![3]);
        }
    }

    #[test]
    fn async_completions_match_by_id() {
        let lines = [
            r#"{"index":0,"time_ns":0,"process":"p","type":"invoke","f":"send","value":{"id":1,"topic":"t"}}"#,
            r#"{"index":1,"time_ns":1,"process":"p","type":"invoke","f":"send","value":{"id":2,"topic":"t"}}"#,
            r#"{"index":2,"time_ns":2,"process":"p","type":"ok","f":"send","value":{"id":2,"topic":"t","partition":0,"offset":0}}"#,
            r#"{"index":3,"time_ns":3,"process":"p","type":"info","f":"send","value":{"id":1,"topic":"t"},"error":"TIMED_OUT"}"#,
        ];
        let a = run(&lines, Expectations::default());
        assert_eq!(a.counts.sends_ok, 1);
        assert_eq!(a.counts.sends_info, 1);
        assert_eq!(a.counts.sends_open, 0);
        assert_eq!(a.verdict, Verdict::Unknown);
    }

    #[test]
    fn completion_without_id_completes_the_oldest_invoke() {
        let mut lines = vec![
            r#"{"index":0,"time_ns":0,"process":"p","type":"invoke","f":"send","value":{"id":1,"topic":"t"}}"#,
            r#"{"index":1,"time_ns":1,"process":"p","type":"fail","f":"send","error":"MSG_SIZE_TOO_LARGE"}"#,
        ];
        lines.extend(FINAL_READ);
        let a = run(&lines, Expectations::default());
        assert_eq!(a.counts.sends_fail, 1);
        assert_eq!(a.counts.unacknowledged_absent, 1);
        assert_eq!(a.verdict, Verdict::Valid);
        let case = &a
            .anomaly(AnomalyKind::UnacknowledgedAbsent)
            .expect("present")
            .cases[0];
        assert!(case.cause.contains("MSG_SIZE_TOO_LARGE"), "{}", case.cause);
        assert_eq!(case.op_indexes, vec![0, 1]);
    }

    #[test]
    fn fault_windows_open_and_close_per_node() {
        let lines = [
            r#"{"index":0,"time_ns":1000000000,"process":"nemesis","type":"invoke","f":"kill","value":{"node":"n1"}}"#,
            r#"{"index":1,"time_ns":1500000000,"process":"nemesis","type":"ok","f":"kill","value":{"node":"n1"}}"#,
            r#"{"index":2,"time_ns":2000000000,"process":"nemesis","type":"ok","f":"kill","value":{"node":"n2"}}"#,
            r#"{"index":3,"time_ns":3000000000,"process":"nemesis","type":"ok","f":"restart","value":{"node":"n1"}}"#,
            r#"{"index":4,"time_ns":3500000000,"process":"nemesis","type":"ok","f":"drop_caches","value":{"node":"n3"}}"#,
            r#"{"index":5,"time_ns":4000000000,"process":"nemesis","type":"ok","f":"partition","value":{"nodes":["n1","n2"]}}"#,
            r#"{"index":6,"time_ns":5000000000,"process":"nemesis","type":"ok","f":"heal","value":null}"#,
        ];
        let a = run(&lines, Expectations::default());
        let windows: Vec<(String, Option<f64>)> =
            a.faults.iter().map(|w| (w.label(), w.end_s)).collect();
        assert_eq!(
            windows,
            vec![
                ("kill n1".to_owned(), Some(3.0)),
                ("kill n2".to_owned(), None),
                ("drop_caches n3".to_owned(), Some(3.5)),
                ("partition n1,n2".to_owned(), Some(5.0)),
            ]
        );
        assert_eq!(a.faults[0].start_s, 1.5);
    }

    #[test]
    fn an_old_format_link_fault_line_reads_as_the_link_fault_window_it_meant() {
        // Before issue 14 a link fault was also recorded under its kind's name (`delay`, …).
        let lines = [
            r#"{"index":0,"time_ns":1000000000,"process":"nemesis","type":"invoke","f":"delay","value":{"node":"n1","target":"n1"}}"#,
            r#"{"index":1,"time_ns":1500000000,"process":"nemesis","type":"ok","f":"delay","value":{"node":"n1"}}"#,
            r#"{"index":2,"time_ns":2000000000,"process":"nemesis","type":"fail","f":"blackhole","value":{"target":"leader"},"error":"no leader"}"#,
            r#"{"index":3,"time_ns":3000000000,"process":"nemesis","type":"ok","f":"heal","value":{"node":"n1"}}"#,
        ];
        let a = run(&lines, Expectations::default());
        let windows: Vec<(String, Option<f64>)> =
            a.faults.iter().map(|w| (w.label(), w.end_s)).collect();
        assert_eq!(windows, vec![("link_fault n1".to_owned(), Some(3.0))]);
        assert_eq!(a.counts.ops, 4);
    }

    #[test]
    fn a_crash_op_is_a_node_crash_with_its_exit_as_evidence_and_the_verdict_follows_the_code() {
        let crash = |code: &str| {
            format!(
                r#"{{"index":0,"time_ns":1000000000,"process":"nemesis","type":"info","f":"crash","value":{{"node":"n2","exit_code":{code},"meaning":"m","log_tail":"tail"}},"error":"node n2 crashed: m"}}"#
            )
        };
        let check = |code: &str| {
            let line = crash(code);
            run(
                &[line.as_str(), FINAL_READ[0], FINAL_READ[1]],
                Expectations::default(),
            )
        };
        assert_eq!(
            run(&FINAL_READ, Expectations::default()).verdict,
            Verdict::Valid,
            "the same history without the crash"
        );
        let a = check("71");
        assert_eq!(a.verdict, Verdict::Invalid);
        assert_eq!(a.counts.node_crash, 1);
        let case = &a.anomaly(AnomalyKind::NodeCrash).expect("node_crash").cases[0];
        assert_eq!(case.sub_kind.as_deref(), Some("invariant"));
        assert_eq!(case.nodes, vec!["n2".to_owned()]);
        assert_eq!(case.op_indexes, vec![0]);
        let exit = case.exit.as_ref().expect("its exit");
        assert_eq!((exit.exit_code, exit.log_tail.as_str()), (Some(71), "tail"));
        assert!(
            a.notes[0].starts_with("node n2 crashed: m, outside any fault"),
            "{:?}",
            a.notes
        );
        assert_eq!(check("70").verdict, Verdict::Invalid);
        // Another end (here a signal: no code) is no proof of a wrong state: unknown, not valid.
        let signalled = check("null");
        assert_eq!(signalled.verdict, Verdict::Unknown);
        assert_eq!(signalled.counts.node_crash, 1);
        // Allowed, it is listed and noted and changes nothing.
        let mut expect = Expectations::default();
        expect.set(AnomalyKind::NodeCrash, crate::expect::Allowance::Allowed);
        let line = crash("71");
        let allowed = run(&[line.as_str(), FINAL_READ[0], FINAL_READ[1]], expect);
        assert_eq!(allowed.verdict, Verdict::Valid);
        assert_eq!(allowed.counts.node_crash, 1);
    }

    #[test]
    fn a_sequence_brackets_its_steps_and_a_restart_ends_a_pause_of_the_killed_process() {
        let lines = [
            r#"{"index":0,"time_ns":1000000000,"process":"nemesis","type":"invoke","f":"sequence","value":{"sequence":0}}"#,
            r#"{"index":1,"time_ns":1100000000,"process":"nemesis","type":"ok","f":"pause","value":{"node":"n1","step":1}}"#,
            r#"{"index":2,"time_ns":2000000000,"process":"nemesis","type":"ok","f":"kill","value":{"node":"n1","step":2}}"#,
            r#"{"index":3,"time_ns":3000000000,"process":"nemesis","type":"ok","f":"restart","value":{"node":"n1","step":3}}"#,
            r#"{"index":4,"time_ns":3100000000,"process":"nemesis","type":"ok","f":"sequence","value":{"sequence":0}}"#,
        ];
        let a = run(&lines, Expectations::default());
        let windows: Vec<(String, Option<f64>)> =
            a.faults.iter().map(|w| (w.label(), w.end_s)).collect();
        assert_eq!(
            windows,
            vec![
                ("pause n1".to_owned(), Some(3.0)),
                ("kill n1".to_owned(), Some(3.0)),
            ]
        );
    }

    #[test]
    fn series_bucket_by_second() {
        let lines = [
            r#"{"index":0,"time_ns":100,"process":"p","type":"invoke","f":"send","value":{"id":1,"topic":"t"}}"#,
            r#"{"index":1,"time_ns":200,"process":"p","type":"ok","f":"send","value":{"id":1,"topic":"t","partition":0,"offset":0}}"#,
            r#"{"index":2,"time_ns":2100000000,"process":"c","type":"ok","f":"poll","value":{"records":[{"topic":"t","partition":0,"offset":0,"id":1}]}}"#,
            r#"{"index":3,"time_ns":2500000000,"process":"p","type":"invoke","f":"send","value":{"id":2,"topic":"t"}}"#,
        ];
        let a = run(&lines, Expectations::default());
        assert_eq!(a.series.sends_ok, vec![1, 0, 0]);
        assert_eq!(a.series.records_polled, vec![0, 0, 1]);
        assert_eq!(a.series.duration_s, 2.5);
        assert_eq!(a.counts.sends_open, 1);
    }

    /// Four acknowledged messages at offsets 0..=3; a consumer reads offset 0 then 3 (a reset
    /// past 1 and 2); the final read finds the log starting at `low` and reads from there.
    fn retention_history(low: i64) -> Vec<String> {
        let mut lines = Vec::new();
        for id in 1..=4u64 {
            let offset = id - 1;
            lines.push(format!(r#"{{"index":{},"time_ns":{},"process":"p","type":"invoke","f":"send","value":{{"id":{id},"topic":"t"}}}}"#, 2 * id, 2 * id));
            lines.push(format!(r#"{{"index":{},"time_ns":{},"process":"p","type":"ok","f":"send","value":{{"id":{id},"topic":"t","partition":0,"offset":{offset}}}}}"#, 2 * id + 1, 2 * id + 1));
        }
        for (index, offset) in [(20, 0), (21, 3)] {
            lines.push(format!(r#"{{"index":{index},"time_ns":{index},"process":"c","type":"ok","f":"poll","value":{{"records":[{{"topic":"t","partition":0,"offset":{offset},"id":{}}}]}}}}"#, offset + 1));
        }
        lines.push(FINAL_READ[0].to_string());
        lines.push(format!(r#"{{"index":91,"time_ns":9100000000,"process":"final-reader","type":"ok","f":"end_offsets","value":{{"topic":"t","partitions":[{{"partition":0,"low":{low},"high":4}}]}}}}"#));
        for offset in low..4 {
            lines.push(format!(r#"{{"index":{},"time_ns":9200000000,"process":"final-reader","type":"ok","f":"poll","value":{{"records":[{{"topic":"t","partition":0,"offset":{offset},"id":{}}}]}}}}"#, 92 + offset, offset + 1));
        }
        lines.push(FINAL_READ[1].to_string());
        lines
    }

    #[test]
    fn messages_below_the_final_log_start_are_deleted_by_retention_not_lost() {
        let deleted = retention_history(3);
        let lines: Vec<&str> = deleted.iter().map(String::as_str).collect();
        let a = run(&lines, Expectations::default());
        assert_eq!(a.counts.retention_deleted, 2, "{a:?}");
        assert_eq!((a.counts.lost, a.counts.poll_skip), (0, 0));
        assert_eq!(a.verdict, Verdict::Valid);
        let case = &a
            .anomaly(AnomalyKind::RetentionDeleted)
            .expect("present")
            .cases[0];
        assert!(
            case.cause.contains("log start offset at 3"),
            "{}",
            case.cause
        );
        // The same reads with the log starting at 0: the two never-read messages are lost, and the
        // consumer's jump over them is a skip.
        let kept = retention_history(0);
        let lines: Vec<&str> = kept.iter().map(String::as_str).collect();
        let a = run(&lines, Expectations::default());
        assert_eq!(a.counts.retention_deleted, 0);
        assert_eq!(a.counts.poll_skip, 1);
        assert_eq!(a.verdict, Verdict::Invalid);
    }

    /// Four acknowledged messages at offsets 0..=3 over two keys (`keys = 2`: ids 1 and 3 are
    /// key 1, ids 2 and 4 key 0) on a topic whose brokers compact (`policy`); the final read
    /// holds the records at `kept` only.
    fn compaction_history(policy: &str, kept: &[i64]) -> Vec<String> {
        let mut lines = vec![format!(
            r#"{{"index":0,"time_ns":0,"process":"harness","type":"invoke","f":"start","value":{{"cluster":{{"settings":{{"log.cleanup.policy":"{policy}"}}}},"topic":{{"name":"t","partitions":1,"replication_factor":1}},"clients":[{{"kind":"producer","keys":2}}]}}}}"#
        )];
        for id in 1..=4u64 {
            let offset = id - 1;
            lines.push(format!(r#"{{"index":{},"time_ns":{},"process":"p","type":"invoke","f":"send","value":{{"id":{id},"topic":"t"}}}}"#, 2 * id, 2 * id));
            lines.push(format!(r#"{{"index":{},"time_ns":{},"process":"p","type":"ok","f":"send","value":{{"id":{id},"topic":"t","partition":0,"offset":{offset}}}}}"#, 2 * id + 1, 2 * id + 1));
        }
        lines.push(FINAL_READ[0].to_string());
        lines.push(r#"{"index":91,"time_ns":9100000000,"process":"final-reader","type":"ok","f":"end_offsets","value":{"topic":"t","partitions":[{"partition":0,"low":0,"high":4}]}}"#.to_string());
        for &offset in kept {
            lines.push(format!(r#"{{"index":{},"time_ns":9200000000,"process":"final-reader","type":"ok","f":"poll","value":{{"records":[{{"topic":"t","partition":0,"offset":{offset},"id":{}}}]}}}}"#, 92 + offset, offset + 1));
        }
        lines.push(FINAL_READ[1].to_string());
        lines
    }

    #[test]
    fn a_message_superseded_by_a_later_record_of_its_key_is_compacted_not_lost() {
        let check = |policy: &str, kept: &[i64]| {
            let history = compaction_history(policy, kept);
            let lines: Vec<&str> = history.iter().map(String::as_str).collect();
            run(&lines, Expectations::default())
        };
        // The latest record of each key kept: the two older ones were compacted.
        let a = check("compact", &[2, 3]);
        assert_eq!((a.counts.compacted, a.counts.lost), (2, 0), "{a:?}");
        assert_eq!(a.verdict, Verdict::Valid);
        let case = &a.anomaly(AnomalyKind::Compacted).expect("present").cases[0];
        assert!(case.cause.contains("later record of key"), "{}", case.cause);
        // Key 1's latest record (id 3, offset 2) gone: it and id 1 are lost, id 2 compacted.
        let a = check("compact,delete", &[3]);
        assert_eq!((a.counts.compacted, a.counts.lost), (1, 2), "{a:?}");
        assert_eq!(a.verdict, Verdict::Invalid);
        // A topic that does not compact: every absence is a loss.
        let a = check("delete", &[2, 3]);
        assert_eq!((a.counts.compacted, a.counts.lost), (0, 2), "{a:?}");
    }

    /// The harness writes the topic's effective policy (whichever scenario table set it) as the
    /// `start` op's `topic.cleanup_policy`; the checker reads it there (older histories: the
    /// cluster's `log.cleanup.policy`, as above).
    #[test]
    fn the_start_ops_topic_cleanup_policy_says_the_topic_is_compacted() {
        let check = |policy: &str| {
            let mut history = compaction_history("-", &[2, 3]);
            history[0] = history[0].replace(
                r#""cluster":{"settings":{"log.cleanup.policy":"-"}},"topic":{"#,
                &format!(r#""topic":{{"cleanup_policy":"{policy}","#),
            );
            let lines: Vec<&str> = history.iter().map(String::as_str).collect();
            run(&lines, Expectations::default())
        };
        let a = check("compact,delete");
        assert_eq!((a.counts.compacted, a.counts.lost), (2, 0), "{a:?}");
        assert_eq!(a.verdict, Verdict::Valid);
        let a = check("delete");
        assert_eq!((a.counts.compacted, a.counts.lost), (0, 2), "{a:?}");
    }

    /// Ids 1..=4 at offsets 0..=3 (`keys = 2`: ids 1 and 3 key 1, ids 2 and 4 key 0) under
    /// `policy`; a consumer reads offsets 0, 2 and 3 (over offset 1, id 2, which a cleaner may
    /// remove: id 4 has its key at offset 3); a final read that returns the records at `final_`
    /// and then fails.
    fn compacted_incomplete_final_read(policy: &str, final_: &[i64]) -> Vec<String> {
        let mut lines = compaction_history(policy, &[]);
        lines.retain(|l| !l.contains("final"));
        for (k, offset) in [0i64, 2, 3].into_iter().enumerate() {
            lines.push(format!(r#"{{"index":{},"time_ns":{},"process":"c","type":"ok","f":"poll","value":{{"records":[{{"topic":"t","partition":0,"offset":{offset},"id":{}}}]}}}}"#, 20 + k, 20 + k, offset + 1));
        }
        lines.push(FINAL_READ[0].to_string());
        for &offset in final_ {
            lines.push(format!(r#"{{"index":{},"time_ns":9200000000,"process":"final-reader","type":"ok","f":"poll","value":{{"records":[{{"topic":"t","partition":0,"offset":{offset},"id":{}}}]}}}}"#, 92 + offset, offset + 1));
        }
        lines.push(r#"{"index":99,"time_ns":9900000000,"process":"harness","type":"fail","f":"final_read","error":"timeout"}"#.to_string());
        lines
    }

    /// On a compacted topic whose final read did not complete, the latest record of a key is
    /// known only from the part read: a message never read may have been removed as superseded
    /// by a record that part did not reach. It is `unseen` (UNKNOWN), not `lost`, and a
    /// consumer's jump over it is no `poll_skip`; unless the final read holds it (then the
    /// cleaner had not removed it, and the jump was a skip).
    #[test]
    fn an_incomplete_final_read_of_a_compacted_topic_claims_no_loss_or_skip_from_absence() {
        let check = |policy: &str, final_: &[i64]| {
            let history = compacted_incomplete_final_read(policy, final_);
            let lines: Vec<&str> = history.iter().map(String::as_str).collect();
            both_paths(&lines)
        };
        for a in check("compact", &[2]) {
            assert_eq!(case_ids(&a, AnomalyKind::Unseen), vec![2], "{a:?}");
            assert_eq!((a.counts.lost, a.counts.poll_skip), (0, 0), "{a:?}");
            assert_eq!(a.verdict, Verdict::Unknown);
            let case = &a.anomaly(AnomalyKind::Unseen).expect("present").cases[0];
            assert!(case.cause.contains("compacted"), "{}", case.cause);
        }
        // The final read holds id 2 at offset 1: it was there, so the jump over it skipped it.
        for a in check("compact", &[1]) {
            assert_eq!(case_ids(&a, AnomalyKind::PollSkip), vec![3], "{a:?}");
            assert_eq!(a.counts.lost, 0, "{a:?}");
            assert_eq!(a.verdict, Verdict::Invalid);
        }
        // A topic that does not compact: unread below what consumers read is lost, the jump a skip.
        for a in check("delete", &[2]) {
            assert_eq!(case_ids(&a, AnomalyKind::Lost), vec![2], "{a:?}");
            assert_eq!(case_ids(&a, AnomalyKind::PollSkip), vec![3], "{a:?}");
            assert_eq!(a.verdict, Verdict::Invalid);
        }
    }

    #[test]
    fn a_message_overwritten_at_its_offset_is_lost_even_when_its_key_was_written_again() {
        // As above with the latest records kept (offsets 2 and 3), but offset 0, where id 1 was
        // acknowledged, holds id 5 (an unacknowledged send): the log was truncated and written
        // again there. The cleaner keeps offsets, so id 1 is lost, not compacted, although a
        // later record of its key (id 3) is in the final read. Id 2 (offset 1, gone) was
        // compacted.
        let mut history = compaction_history("compact", &[2, 3]);
        let at = history
            .iter()
            .position(|l| l.contains(r#""f":"final_read""#))
            .expect("the final_read invoke");
        history.insert(at, r#"{"index":20,"time_ns":20,"process":"p2","type":"invoke","f":"send","value":{"id":5,"topic":"t"}}"#.to_string());
        history.insert(at + 1, r#"{"index":21,"time_ns":21,"process":"p2","type":"info","f":"send","value":{"id":5,"topic":"t"},"error":"TIMED_OUT"}"#.to_string());
        let first_poll = history
            .iter()
            .position(|l| l.contains(r#""f":"poll""#))
            .expect("the final read's first poll");
        history.insert(first_poll, r#"{"index":92,"time_ns":9200000000,"process":"final-reader","type":"ok","f":"poll","value":{"records":[{"topic":"t","partition":0,"offset":0,"id":5}]}}"#.to_string());
        let lines: Vec<&str> = history.iter().map(String::as_str).collect();
        let a = run(&lines, Expectations::default());
        assert_eq!(case_ids(&a, AnomalyKind::Lost), vec![1], "{a:?}");
        assert_eq!(case_ids(&a, AnomalyKind::Compacted), vec![2], "{a:?}");
        // (The rewrite itself is also `inconsistent_offsets`, which a scenario may allow.)
        assert_eq!(case_ids(&a, AnomalyKind::InconsistentOffsets), vec![1]);
        assert_eq!(a.counts.nonmonotonic_poll, 0, "{a:?}");
    }

    #[test]
    fn proof_without_a_final_read_is_invalid_not_unknown() {
        let lines = [
            r#"{"index":0,"time_ns":0,"process":"p","type":"invoke","f":"send","value":{"id":1,"topic":"t"}}"#,
            r#"{"index":1,"time_ns":1,"process":"p","type":"fail","f":"send","value":{"id":1,"topic":"t"},"error":"NOT_LEADER"}"#,
            r#"{"index":2,"time_ns":2,"process":"c","type":"ok","f":"poll","value":{"records":[{"topic":"t","partition":0,"offset":7,"id":1}]}}"#,
        ];
        let a = run(&lines, Expectations::default());
        assert_eq!(a.verdict, Verdict::Invalid);
        assert_eq!(a.counts.aborted_read, 1);
        assert_eq!(a.counts.recovered, 0, "recovered is about the final read");
        assert!(a.notes.iter().any(|n| n.contains("no loss claim")));
    }

    /// A final read that found the topic gone (every Metadata answer: UNKNOWN_TOPIC_OR_PARTITION).
    const TOPIC_GONE: [&str; 4] = [
        r#"{"index":90,"time_ns":9000000000,"process":"harness","type":"invoke","f":"final_read"}"#,
        r#"{"index":91,"time_ns":9100000000,"process":"r","type":"invoke","f":"end_offsets","value":{"topic":"t"}}"#,
        r#"{"index":92,"time_ns":9200000000,"process":"r","type":"ok","f":"end_offsets","value":{"topic":"t","partitions":[],"topic_missing":"UNKNOWN_TOPIC_OR_PARTITION"}}"#,
        r#"{"index":99,"time_ns":9900000000,"process":"harness","type":"ok","f":"final_read"}"#,
    ];

    #[test]
    fn a_topic_gone_after_acknowledged_writes_is_every_one_of_them_lost() {
        let mut lines = vec![
            r#"{"index":0,"time_ns":1000000000,"process":"p","type":"invoke","f":"send","value":{"id":1,"topic":"t"}}"#,
            r#"{"index":1,"time_ns":1100000000,"process":"p","type":"ok","f":"send","value":{"id":1,"topic":"t","partition":0,"offset":0}}"#,
            r#"{"index":2,"time_ns":1200000000,"process":"p","type":"invoke","f":"send","value":{"id":2,"topic":"t"}}"#,
            r#"{"index":3,"time_ns":1300000000,"process":"p","type":"ok","f":"send","value":{"id":2,"topic":"t","partition":0,"offset":1}}"#,
            r#"{"index":4,"time_ns":1400000000,"process":"nemesis","type":"ok","f":"power_loss","value":{"node":"n1"}}"#,
            r#"{"index":5,"time_ns":2000000000,"process":"p","type":"invoke","f":"send","value":{"id":3,"topic":"t"}}"#,
            r#"{"index":6,"time_ns":2100000000,"process":"p","type":"fail","f":"send","value":{"id":3,"topic":"t"},"error":"UnknownTopicOrPartition"}"#,
        ];
        lines.extend(TOPIC_GONE);
        for a in both_paths(&lines) {
            assert_eq!(a.verdict, Verdict::Invalid, "{a:?}");
            assert_eq!(case_ids(&a, AnomalyKind::Lost), vec![1, 2]);
            let case = &a.anomaly(AnomalyKind::Lost).expect("lost").cases[0];
            assert!(
                case.cause.contains("the final read found no topic t at all (Metadata: UNKNOWN_TOPIC_OR_PARTITION): the topic itself was gone"),
                "{}",
                case.cause
            );
            assert!(
                a.notes
                    .iter()
                    .any(|n| n.starts_with("The topic itself was gone") && n.contains("(2 lost)")),
                "{:?}",
                a.notes
            );
            assert!(!a
                .notes
                .iter()
                .any(|n| n.contains("No completed final read")));
        }
    }

    #[test]
    fn a_topic_gone_with_nothing_acknowledged_verified_nothing() {
        let mut lines = vec![
            r#"{"index":0,"time_ns":1000000000,"process":"p","type":"invoke","f":"send","value":{"id":1,"topic":"t"}}"#,
            r#"{"index":1,"time_ns":1100000000,"process":"p","type":"fail","f":"send","value":{"id":1,"topic":"t"},"error":"UnknownTopicOrPartition"}"#,
        ];
        lines.extend(TOPIC_GONE);
        for a in both_paths(&lines) {
            assert_eq!(a.verdict, Verdict::Unknown, "{a:?}");
            assert_eq!(a.counts.lost, 0);
            assert!(
                a.notes.iter().any(|n| n.contains(
                    "No completed final read: the final read found no topic t (Metadata: UNKNOWN_TOPIC_OR_PARTITION) and nothing had been acknowledged"
                )),
                "{:?}",
                a.notes
            );
        }
        // The same history with the topic found (and empty) is the valid run it always was: the
        // rule is about the topic's absence.
        let mut found = lines[..2].to_vec();
        found.extend(FINAL_READ);
        assert_eq!(run(&found, Expectations::default()).verdict, Verdict::Valid);
    }

    #[test]
    fn acks_zero_offsets_are_no_position() {
        let mut lines = vec![
            r#"{"index":0,"time_ns":0,"process":"p","type":"invoke","f":"send","value":{"id":1,"topic":"t"}}"#,
            r#"{"index":1,"time_ns":1,"process":"p","type":"ok","f":"send","value":{"id":1,"topic":"t","partition":0,"offset":-1}}"#,
        ];
        lines.extend(FINAL_READ);
        let a = run(&lines, Expectations::default());
        let case = &a.anomaly(AnomalyKind::Lost).expect("lost").cases[0];
        assert_eq!(case.acknowledged_at, None);
        assert!(
            case.cause.starts_with("Acknowledged at 0.00 s, absent"),
            "{}",
            case.cause
        );
    }

    #[test]
    fn a_huge_time_cannot_exhaust_memory() {
        let lines = [
            r#"{"index":0,"time_ns":18446744073709551615,"process":"p","type":"ok","f":"send","value":{"id":1}}"#,
        ];
        let a = run(&lines, Expectations::default());
        assert_eq!(a.series.sends_ok.len(), limits::SERIES_SECONDS_MAX);
    }

    #[test]
    fn lost_cause_names_the_overwriting_message_and_the_fault() {
        let mut lines = vec![
            r#"{"index":0,"time_ns":12000000000,"process":"p","type":"invoke","f":"send","value":{"id":1,"topic":"t"}}"#,
            r#"{"index":1,"time_ns":12410000000,"process":"p","type":"ok","f":"send","value":{"id":1,"topic":"t","partition":0,"offset":5012}}"#,
            r#"{"index":2,"time_ns":12430000000,"process":"nemesis","type":"ok","f":"kill","value":{"node":"n1"}}"#,
            r#"{"index":3,"time_ns":13000000000,"process":"p","type":"invoke","f":"send","value":{"id":2,"topic":"t"}}"#,
            r#"{"index":4,"time_ns":13100000000,"process":"p","type":"ok","f":"send","value":{"id":2,"topic":"t","partition":0,"offset":5012}}"#,
        ];
        lines.push(FINAL_READ[0]);
        lines.push(r#"{"index":95,"time_ns":9500000000,"process":"r","type":"ok","f":"poll","value":{"records":[{"topic":"t","partition":0,"offset":5012,"id":2}]}}"#);
        lines.push(FINAL_READ[1]);
        let a = run(&lines, Expectations::default());
        assert_eq!(a.verdict, Verdict::Invalid);
        let lost = a.anomaly(AnomalyKind::Lost).expect("lost");
        assert_eq!(lost.count, 1);
        let case = &lost.cases[0];
        assert_eq!(case.id, 1);
        assert!(
            case.cause.contains("partition 0 offset 5012"),
            "{}",
            case.cause
        );
        assert!(
            case.cause.contains("node n1 was killed at 12.43 s"),
            "{}",
            case.cause
        );
        assert!(case.cause.contains("now holds message 2"), "{}", case.cause);
        assert_eq!(
            case.faults_nearby,
            vec!["kill n1 at 12.43 s (never recovered)".to_owned()]
        );
    }
}

#[cfg(test)]
mod size_tests {
    #[test]
    fn a_message_record_stays_small() {
        assert!(
            std::mem::size_of::<super::Msg>() <= 96,
            "{}",
            std::mem::size_of::<super::Msg>()
        );
    }
}

#[cfg(test)]
mod slot_tests {
    use super::Slots;

    #[test]
    fn dense_and_sparse_ids_mix() {
        let mut slots = Slots::default();
        slots.insert(1 << 40, 0, 1); // a page of its own (the slack allows a few)
        slots.insert(3, 1, 2);
        slots.insert(70_000, 2, 3);
        slots.insert(u64::MAX, 3, 4);
        // Beyond the slack, ids scattered one per page go to the map.
        for i in 0..100u64 {
            slots.insert(i << 32, 4 + i as u32, 5 + i as usize);
        }
        assert!(!slots.sparse.is_empty());
        for i in 1..100u64 {
            assert_eq!(slots.get(i << 32), Some(4 + i as u32));
        }
        assert_eq!(slots.get(1 << 40), Some(0));
        assert_eq!(slots.get(3), Some(1));
        assert_eq!(slots.get(70_000), Some(2));
        assert_eq!(slots.get(u64::MAX), Some(3));
        assert_eq!(slots.get(4), None);
        assert_eq!(slots.get(5 << 40), None);
    }
}
