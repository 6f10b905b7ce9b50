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
    /// Counters a plugin reported, by name.
    plugin: Mutex<BTreeMap<String, u64>>,
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
