//! One partition's transactions (KIP-98), as Kafka's `ProducerStateManager` and
//! `TransactionIndex` keep them: the open transactions (producer id → offset of its first
//! transactional batch), the markers not yet below the HW, and the aborted transactions (producer
//! id, first offset, offset of the abort marker) that a `read_committed` Fetch returns so the
//! consumer can drop their records. The last stable offset (LSO) is the smallest first offset of a
//! transaction that is open or whose marker is not yet below the HW, or the HW when there is none.
//!
//! Like [`crate::producer::ProducerStates`] it is rebuilt from the log (the newest segments that
//! the producer-state scan reads), never stored on its own: a transaction that began in an older
//! segment than the scan reaches is not known after a restart (its marker then ends nothing).

use std::collections::{BTreeMap, VecDeque};

use crate::limits;
use crate::wire::batch::BatchHeader;
use crate::wire::control::Marker;

/// An aborted transaction as Fetch reports it (and up to where its records go).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// The offset of the abort marker.
    pub last_offset: i64,
}

/// Open, completing and aborted transactions of one partition.
#[derive(Debug, Default, Clone)]
pub struct PartitionTxns {
    /// Producer id → first offset of its open transaction.
    open: BTreeMap<i64, i64>,
    /// (first offset, marker offset) of ended transactions whose marker is not yet below the HW.
    completing: VecDeque<(i64, i64)>,
    /// Oldest first; at most [`limits::ABORTED_TXNS_PER_PARTITION_MAX`].
    aborted: VecDeque<AbortedTxn>,
}

impl PartitionTxns {
    pub fn new() -> PartitionTxns {
        PartitionTxns::default()
    }

    /// Records a batch placed at `base_offset`: a transactional data batch opens (or continues)
    /// its producer's transaction; a marker ends it.
    pub fn record(&mut self, header: &BatchHeader, base_offset: i64, marker: Option<Marker>) {
        if !header.is_transactional() || !header.has_producer_id() {
            return;
        }
        let producer_id = header.producer_id;
        if !header.is_control() {
            if !self.open.contains_key(&producer_id)
                && self.open.len() >= limits::PRODUCERS_PER_PARTITION_MAX
            {
                tracing::warn!(
                    producer_id,
                    "too many open transactions in one partition; not tracked"
                );
                return;
            }
            self.open.entry(producer_id).or_insert(base_offset);
            return;
        }
        let Some(marker) = marker else { return };
        let Some(first_offset) = self.open.remove(&producer_id) else {
            return;
        };
        self.completing.push_back((first_offset, base_offset));
        if marker == Marker::Abort {
            if self.aborted.len() >= limits::ABORTED_TXNS_PER_PARTITION_MAX {
                self.aborted.pop_front();
            }
            self.aborted.push_back(AbortedTxn {
                producer_id,
                first_offset,
                last_offset: base_offset,
            });
        }
    }

    /// Forgets the completions whose markers are below `high_watermark`.
    pub fn high_watermark_moved(&mut self, high_watermark: i64) {
        self.completing
            .retain(|&(_, marker)| marker >= high_watermark);
    }

    /// The last stable offset under `high_watermark`.
    pub fn last_stable_offset(&self, high_watermark: i64) -> i64 {
        let open = self.open.values().copied().min().unwrap_or(i64::MAX);
        let completing = self
            .completing
            .iter()
            .filter(|&&(_, marker)| marker >= high_watermark)
            .map(|&(first, _)| first)
            .min()
            .unwrap_or(i64::MAX);
        high_watermark.min(open).min(completing)
    }

    /// The first offset of `producer_id`'s open transaction here.
    pub fn open_transaction(&self, producer_id: i64) -> Option<i64> {
        self.open.get(&producer_id).copied()
    }

    /// The aborted transactions whose records may lie in `[from, to)`.
    pub fn aborted_between(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        self.aborted
            .iter()
            .filter(|a| a.last_offset >= from && a.first_offset < to)
            .take(limits::ABORTED_TXNS_PER_FETCH_MAX)
            .copied()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::batch::{
        build_producer_batch, set_attributes, validate_batch, ATTRIBUTE_TRANSACTIONAL,
    };
    use crate::wire::control::build_marker;

    fn data(producer_id: i64) -> BatchHeader {
        let mut bytes = build_producer_batch(0, 0, &[b"v"], producer_id, 0, 0);
        set_attributes(&mut bytes, ATTRIBUTE_TRANSACTIONAL);
        validate_batch(&bytes, 1 << 20).expect("valid")
    }

    fn marker(producer_id: i64, m: Marker) -> (BatchHeader, Option<Marker>) {
        let bytes = build_marker(m, producer_id, 0, 0, 0);
        (
            validate_batch(&bytes, 1 << 20).expect("valid"),
            crate::wire::control::marker_of(&bytes),
        )
    }

    #[test]
    fn the_lso_stops_at_the_first_open_or_unreplicated_transaction() {
        let mut txns = PartitionTxns::new();
        txns.record(&data(1), 3, None);
        txns.record(&data(2), 5, None);
        txns.record(&data(1), 6, None);
        assert_eq!(txns.last_stable_offset(8), 3);
        let (h, m) = marker(1, Marker::Abort);
        txns.record(&h, 8, m);
        // The abort marker is at 8: not below an HW of 8 yet.
        assert_eq!(txns.last_stable_offset(8), 3);
        assert_eq!(txns.last_stable_offset(9), 5);
        let (h, m) = marker(2, Marker::Commit);
        txns.record(&h, 9, m);
        assert_eq!(txns.last_stable_offset(10), 10);
        txns.high_watermark_moved(10);
        assert_eq!(txns.last_stable_offset(10), 10);
        assert_eq!(
            txns.aborted_between(0, 10),
            vec![AbortedTxn {
                producer_id: 1,
                first_offset: 3,
                last_offset: 8
            }]
        );
        assert!(txns.aborted_between(9, 20).is_empty());
        assert!(txns.aborted_between(0, 3).is_empty());
        // A marker for no open transaction ends nothing.
        let (h, m) = marker(7, Marker::Abort);
        txns.record(&h, 10, m);
        assert_eq!(txns.aborted_between(0, 20).len(), 1);
    }
}
