//! Where Kafka is, and (for the embedded Kafka) flow control.
//!
//! librdkafka's mock cluster keeps only the newest 5 MB of each partition
//! and drops older records. In embedded mode a source could therefore run
//! more than 5 MB ahead of a sink on the same worker and records would be
//! lost. The embedded cluster prevents that: it tracks, per topic, the
//! bytes produced and the bytes each in-process consumer group has taken,
//! and a producer waits while it is more than [`EMBEDDED_LAG_BUDGET`]
//! ahead of the slowest group. A configured cluster has no such limit.

use super::EmbeddedKafka;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// How far (bytes, with a per-record overhead) a producer may run ahead of
/// the slowest in-process consumer group of a topic on the embedded Kafka.
pub const EMBEDDED_LAG_BUDGET: u64 = 3 << 20;

/// Bytes a record occupies in the mock's log beyond key and value (approx.).
const RECORD_OVERHEAD: u64 = 24;

#[derive(Default)]
struct TopicFlow {
    produced: u64,
    /// Bytes taken per consumer group.
    consumed: HashMap<String, u64>,
}

impl TopicFlow {
    fn lag(&self) -> u64 {
        let slowest = self
            .consumed
            .values()
            .copied()
            .min()
            .unwrap_or(self.produced);
        self.produced.saturating_sub(slowest)
    }
}

/// The Kafka the worker talks to.
pub struct KafkaCluster {
    bootstrap: String,
    embedded: Option<EmbeddedKafka>,
    partitions: i32,
    created: Mutex<HashSet<String>>,
    flows: Mutex<HashMap<String, TopicFlow>>,
    room: Condvar,
}

impl KafkaCluster {
    /// A configured cluster.
    pub fn external(bootstrap: &str) -> KafkaCluster {
        KafkaCluster {
            bootstrap: bootstrap.to_owned(),
            embedded: None,
            partitions: 1,
            created: Mutex::default(),
            flows: Mutex::default(),
            room: Condvar::new(),
        }
    }

    /// Starts the embedded cluster; its topics get `partitions` partitions.
    pub fn embedded(partitions: i32) -> Result<KafkaCluster, String> {
        let embedded = EmbeddedKafka::start()?;
        Ok(KafkaCluster {
            bootstrap: embedded.bootstrap_servers().to_owned(),
            embedded: Some(embedded),
            partitions,
            created: Mutex::default(),
            flows: Mutex::default(),
            room: Condvar::new(),
        })
    }

    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    pub fn is_embedded(&self) -> bool {
        self.embedded.is_some()
    }

    /// On the embedded cluster, creates `topic` before first use, with the
    /// configured partition count (the mock's auto-creation would pick 4,
    /// which reorders records without keys). A configured cluster creates
    /// topics by its own rules.
    pub fn ensure_topic(&self, topic: &str) -> Result<(), String> {
        let Some(embedded) = &self.embedded else {
            return Ok(());
        };
        let mut created = self.created.lock().unwrap_or_else(|p| p.into_inner());
        if created.contains(topic) {
            return Ok(());
        }
        embedded.create_topic(topic, self.partitions)?;
        created.insert(topic.to_owned());
        Ok(())
    }

    /// Embedded only: a consumer group of this worker reads `topic`.
    pub(super) fn register_consumer(&self, topic: &str, group: &str) {
        if self.embedded.is_some() {
            let mut flows = self.flows.lock().unwrap_or_else(|p| p.into_inner());
            let flow = flows.entry(topic.to_owned()).or_default();
            let produced = flow.produced;
            // A group that joins late starts from the beginning of the log.
            flow.consumed
                .entry(group.to_owned())
                .or_insert(produced.saturating_sub(EMBEDDED_LAG_BUDGET));
        }
    }

    /// Embedded only: waits until `topic` has room for `bytes` more, or
    /// `cancel` is set (then returns false). Counts the bytes as produced.
    pub(super) fn reserve(&self, topic: &str, bytes: u64, cancel: &AtomicBool) -> bool {
        if self.embedded.is_none() {
            return true;
        }
        let mut flows = self.flows.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let flow = flows.entry(topic.to_owned()).or_default();
            if flow.lag() < EMBEDDED_LAG_BUDGET {
                flow.produced += bytes + RECORD_OVERHEAD;
                return true;
            }
            if cancel.load(Ordering::Relaxed) {
                return false;
            }
            flows = self
                .room
                .wait_timeout(flows, Duration::from_millis(50))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Embedded only: `group` took `bytes` of `topic`.
    pub(super) fn consumed(&self, topic: &str, group: &str, bytes: u64) {
        if self.embedded.is_some() {
            let mut flows = self.flows.lock().unwrap_or_else(|p| p.into_inner());
            *flows
                .entry(topic.to_owned())
                .or_default()
                .consumed
                .entry(group.to_owned())
                .or_default() += bytes + RECORD_OVERHEAD;
            self.room.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_producer_waits_for_the_slowest_group_only_on_the_embedded_cluster() {
        let cancel = AtomicBool::new(false);
        let external = KafkaCluster::external("k:9092");
        for _ in 0..100 {
            assert!(external.reserve("t", 1 << 20, &cancel));
        }

        let embedded = KafkaCluster::embedded(1).unwrap();
        embedded.register_consumer("t", "fast");
        embedded.register_consumer("t", "slow");
        let mb = 1 << 20;
        for _ in 0..3 {
            assert!(embedded.reserve("t", mb, &cancel));
        }
        cancel.store(true, Ordering::Relaxed);
        assert!(
            !embedded.reserve("t", mb, &cancel),
            "3 MB ahead of both groups: no room"
        );
        embedded.consumed("t", "fast", 3 * mb);
        assert!(
            !embedded.reserve("t", mb, &cancel),
            "the slow group still lags"
        );
        embedded.consumed("t", "slow", mb);
        assert!(embedded.reserve("t", mb, &cancel));
        // A topic nobody in this worker reads is not held back.
        for _ in 0..10 {
            assert!(embedded.reserve("other", mb, &cancel));
        }
    }
}
