//! Per-task counters. The worker counts what every connector does (records
//! in and out, batches, errors) so no plugin can get those names wrong;
//! plugins add their own through the `counter-add` host call.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// Counters of one task. Shared between the task's thread and observers.
#[derive(Debug, Default)]
pub struct TaskMetrics {
    /// Source: records returned by `poll`. Sink: records consumed from Kafka.
    pub records_in: AtomicU64,
    /// Source: records Kafka acknowledged. Sink: records accepted by `put`.
    pub records_out: AtomicU64,
    /// Bytes of record values moved (out).
    pub bytes_out: AtomicU64,
    /// Calls into the plugin that returned a batch.
    pub batches: AtomicU64,
    /// Offsets made durable (source) or consumer commits (sink).
    pub commits: AtomicU64,
    /// Retriable errors seen.
    pub retries: AtomicU64,
    /// Records that failed and were tolerated (`errors.tolerance=all`).
    pub records_failed: AtomicU64,
    /// Of those, records written to the dead letter queue.
    pub records_dlq: AtomicU64,
    /// Sink: records in the task's partitions not consumed yet, as of its
    /// last batch (high watermarks librdkafka already knows; no request).
    pub consumer_lag: AtomicU64,
    /// Seconds each batch call into the plugin took (`poll`, `put`).
    pub call_seconds: Histogram,
    /// Records per batch (source: per `poll`; sink: per `put`).
    pub batch_records: Histogram,
    /// Counters a plugin reported, by name.
    plugin: Mutex<BTreeMap<String, u64>>,
}

/// Upper bounds of [`TaskMetrics::call_seconds`]' buckets.
pub const CALL_SECONDS_BUCKETS: &[f64] =
    &[0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];

/// Upper bounds of [`TaskMetrics::batch_records`]' buckets.
pub const BATCH_RECORDS_BUCKETS: &[f64] = &[1.0, 10.0, 100.0, 500.0, 1000.0, 2000.0, 5000.0];

/// A histogram with fixed buckets, as Prometheus reads it: a count per
/// bucket (not cumulative here), a total count and a sum.
#[derive(Debug, Default)]
pub struct Histogram {
    /// One count per bound, plus one past the last (+Inf).
    counts: [AtomicU64; 12],
    count: AtomicU64,
    /// Sum, in millionths.
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, bounds: &[f64], value: f64) {
        let i = bounds
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(bounds.len());
        self.counts[i.min(self.counts.len() - 1)].fetch_add(1, Relaxed);
        self.count.fetch_add(1, Relaxed);
        self.sum_micros
            .fetch_add((value * 1e6).max(0.0) as u64, Relaxed);
    }

    /// Cumulative counts per bound (then +Inf), total count and sum.
    pub fn snapshot(&self, bounds: &[f64]) -> (Vec<u64>, u64, f64) {
        let mut acc = 0;
        let cumulative = (0..=bounds.len())
            .map(|i| {
                acc += self.counts[i].load(Relaxed);
                acc
            })
            .collect();
        (
            cumulative,
            self.count.load(Relaxed),
            self.sum_micros.load(Relaxed) as f64 / 1e6,
        )
    }
}

impl TaskMetrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
    }

    /// Adds to a plugin's own counter.
    pub fn add_plugin(&self, name: &str, delta: u64) {
        let mut map = self.plugin.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry(name.to_owned()).or_default() += delta;
    }

    /// A copy of the plugin's own counters.
    pub fn plugin_counters(&self) -> BTreeMap<String, u64> {
        self.plugin
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
