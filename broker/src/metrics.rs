//! Request metrics, as Kafka's `RequestMetrics`: for Produce and Fetch, histograms of the time a
//! request spent in each stage on this broker, and on a follower the round trip and the append of
//! each replica fetch. Recording is a few relaxed atomic additions; the broker writes a summary
//! (`request-metrics.json` in its data dir) at graceful shutdown, which `kaos bench broker` reads.
//!
//! Stages of a request (all from the moment its frame is fully read, Kafka's "request received"):
//! - `local`: decoding and handling (for Produce: validation and the append to the log);
//! - `remote`: until its response is ready (Produce with acks=-1: until the HW passes the batches,
//!   i.e. waiting for the followers; Fetch: the long poll), and until the responses before it on
//!   the connection are written (responses go out in request order);
//! - `send`: writing the response to the socket;
//! - `total`: receipt to the response written (Kafka's `TotalTimeMs`).
//!
//! A request without a response (Produce with acks=0) is not counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kafka_protocol::messages::ApiKey;

use crate::limits::METRICS_VALUE_US_MAX;

/// Sub-buckets per power of two: values are kept within 1/32 (about 3 %).
const SUB_BUCKETS_LOG2: u32 = 5;
const SUB_BUCKETS: u64 = 1 << SUB_BUCKETS_LOG2;
/// Buckets needed for values up to [`METRICS_VALUE_US_MAX`].
const BUCKETS: usize = bucket_index(METRICS_VALUE_US_MAX) + 1;

const fn bucket_index(value: u64) -> usize {
    if value < 2 * SUB_BUCKETS {
        return value as usize;
    }
    let shift = 63 - value.leading_zeros() - SUB_BUCKETS_LOG2;
    ((shift as u64 + 1) * SUB_BUCKETS + ((value >> shift) - SUB_BUCKETS)) as usize
}

/// The largest value bucket `index` holds.
const fn bucket_upper(index: usize) -> u64 {
    let index = index as u64;
    if index < 2 * SUB_BUCKETS {
        return index;
    }
    let shift = index / SUB_BUCKETS - 1;
    let mantissa = index % SUB_BUCKETS + SUB_BUCKETS;
    ((mantissa + 1) << shift) - 1
}

/// A log-linear histogram of microseconds (HdrHistogram's layout, two significant digits).
#[derive(Debug)]
pub struct Histogram {
    buckets: Box<[AtomicU64]>,
    sum_us: AtomicU64,
    max_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sum_us: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
        }
    }
}

/// Percentiles of a histogram, in milliseconds (each at most 3 % above the true value).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Histogram {
    pub fn record(&self, duration: Duration) {
        let us = u64::try_from(duration.as_micros())
            .unwrap_or(u64::MAX)
            .min(METRICS_VALUE_US_MAX);
        self.buckets[bucket_index(us)].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    pub fn summary(&self) -> Summary {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let count: u64 = counts.iter().sum();
        if count == 0 {
            return Summary::default();
        }
        let max_us = self.max_us.load(Ordering::Relaxed);
        let ms = |us: u64| us as f64 / 1000.0;
        // The smallest bucket bound below which at least `q` of the values lie (never above max).
        let quantile = |q: f64| -> f64 {
            let rank = ((count as f64 * q).ceil() as u64).clamp(1, count);
            let mut seen = 0;
            for (index, &c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return ms(bucket_upper(index).min(max_us));
                }
            }
            ms(max_us)
        };
        Summary {
            count,
            mean_ms: ms(self.sum_us.load(Ordering::Relaxed)) / count as f64,
            p50_ms: quantile(0.5),
            p99_ms: quantile(0.99),
            p999_ms: quantile(0.999),
            max_ms: ms(max_us),
        }
    }
}

/// One API's stage histograms (see the module comment).
#[derive(Debug, Default)]
pub struct Stages {
    pub local: Histogram,
    pub remote: Histogram,
    pub send: Histogram,
    pub total: Histogram,
}

/// When a request reached each stage.
#[derive(Debug, Clone, Copy)]
pub struct RequestTimes {
    pub received: Instant,
    pub handled: Instant,
    pub ready: Instant,
    pub written: Instant,
}

impl Stages {
    pub fn record(&self, t: &RequestTimes) {
        self.local.record(t.handled.duration_since(t.received));
        self.remote.record(t.ready.duration_since(t.handled));
        self.send.record(t.written.duration_since(t.ready));
        self.total.record(t.written.duration_since(t.received));
    }

    fn summary(&self) -> StageSummary {
        StageSummary {
            local: self.local.summary(),
            remote: self.remote.summary(),
            send: self.send.summary(),
            total: self.total.summary(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StageSummary {
    pub local: Summary,
    pub remote: Summary,
    pub send: Summary,
    pub total: Summary,
}

/// A follower's side of replication: each fetch to the leader.
#[derive(Debug, Default)]
pub struct ReplicaFetchMetrics {
    /// Fetch request sent → response read (includes the leader's long poll).
    pub round_trip: Histogram,
    /// Validating and appending the fetched batches.
    pub append: Histogram,
}

/// Every request metric of a broker.
#[derive(Debug, Default)]
pub struct RequestMetrics {
    pub produce: Stages,
    pub fetch: Stages,
    pub replica_fetch: ReplicaFetchMetrics,
}

/// What `request-metrics.json` holds.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MetricsSummary {
    pub produce: StageSummary,
    pub fetch: StageSummary,
    pub replica_fetch_round_trip: Summary,
    pub replica_fetch_append: Summary,
}

/// File name of the summary in the data dir.
pub const METRICS_FILE_NAME: &str = "request-metrics.json";

impl RequestMetrics {
    /// The stages of `api_key`, if it is one that is measured.
    pub fn stages(&self, api_key: i16) -> Option<&Stages> {
        match ApiKey::try_from(api_key) {
            Ok(ApiKey::Produce) => Some(&self.produce),
            Ok(ApiKey::Fetch) => Some(&self.fetch),
            _ => None,
        }
    }

    pub fn summary(&self) -> MetricsSummary {
        MetricsSummary {
            produce: self.produce.summary(),
            fetch: self.fetch.summary(),
            replica_fetch_round_trip: self.replica_fetch.round_trip.summary(),
            replica_fetch_append: self.replica_fetch.append.summary(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_bound_their_values() {
        let mut previous_upper = None;
        for index in 0..BUCKETS {
            let upper = bucket_upper(index);
            if let Some(p) = previous_upper {
                assert_eq!(
                    bucket_index(p + 1),
                    index,
                    "value {} after bucket {}",
                    p + 1,
                    index - 1
                );
            }
            assert_eq!(bucket_index(upper), index);
            previous_upper = Some(upper);
        }
        assert!(bucket_upper(BUCKETS - 1) >= METRICS_VALUE_US_MAX);
        for value in [
            0,
            1,
            63,
            64,
            65,
            1000,
            12_345,
            999_999,
            METRICS_VALUE_US_MAX,
        ] {
            let upper = bucket_upper(bucket_index(value));
            assert!(
                upper >= value && (upper - value) as f64 <= value as f64 / 32.0 + 1.0,
                "{value} → {upper}"
            );
        }
    }

    #[test]
    fn percentiles_of_known_values() {
        let h = Histogram::default();
        assert_eq!(h.summary(), Summary::default());
        // 1..=1000 ms: p50 near 500 ms, p99 near 990 ms, max exactly 1000 ms.
        for ms in 1..=1000u64 {
            h.record(Duration::from_millis(ms));
        }
        let s = h.summary();
        assert_eq!(s.count, 1000);
        assert_eq!(s.max_ms, 1000.0);
        assert!((500.0..=500.0 * 1.04).contains(&s.p50_ms), "{s:?}");
        assert!((990.0..=1000.0).contains(&s.p99_ms), "{s:?}");
        assert!((s.mean_ms - 500.5).abs() < 0.01, "{s:?}");
        // A value above the limit is kept at the limit.
        h.record(Duration::from_secs(1 << 40));
        assert_eq!(h.summary().max_ms, METRICS_VALUE_US_MAX as f64 / 1000.0);
    }
}
