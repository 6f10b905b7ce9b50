//! Where Kafka is, and (for the embedded Kafka) flow control.
//!
//! librdkafka's mock cluster keeps only the newest 5 MB of each partition
//! and drops older records. In embedded mode a source could therefore run
//! more than 5 MB ahead of a sink on the same worker and records would be
//! lost. The embedded cluster prevents that: it tracks, per topic, the
//! bytes produced and the bytes each in-process consumer group has taken,
//! and a producer waits while it is more than [`EMBEDDED_LAG_BUDGET`]
//! ahead of the slowest group. A configured cluster has no such limit.

use super::{EmbeddedKafka, Security};
use std::collections::BTreeMap;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
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
    /// Security settings every client gets.
    security: Arc<Security>,
    embedded: Option<EmbeddedKafka>,
    /// (partitions, replication factor) of topics created on a configured
    /// cluster; `None`: the worker creates none.
    creation: Option<(i32, i32)>,
    partitions: i32,
    created: Mutex<HashSet<String>>,
    flows: Mutex<HashMap<String, TopicFlow>>,
    room: Condvar,
}

fn login_refused(bootstrap: &str, reason: &str) -> String {
    format!(
        "Kafka at {bootstrap} refused the worker's SASL login: {reason} (check sasl.username and sasl.password, or sasl.jaas.config, and sasl.mechanism)"
    )
}

impl KafkaCluster {
    /// A configured cluster.
    /// A configured cluster. With `creation`, topics the worker uses are
    /// created (if missing) with that many partitions and replicas before
    /// first use, like Kafka Connect's `topic.creation.enable`.
    pub fn external(
        bootstrap: &str,
        creation: Option<(i32, i32)>,
        security: Security,
    ) -> KafkaCluster {
        KafkaCluster {
            bootstrap: bootstrap.to_owned(),
            security: Arc::new(security),
            embedded: None,
            creation,
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
            security: Arc::new(Security::none()),
            embedded: Some(embedded),
            creation: None,
            partitions,
            created: Mutex::default(),
            flows: Mutex::default(),
            room: Condvar::new(),
        })
    }

    /// The cluster's id, as the brokers report it (`None` when they do not
    /// answer within a few seconds).
    pub fn cluster_id(&self) -> Option<String> {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let consumer: BaseConsumer = super::client_config(&[&self.client_properties()])
            .create()
            .ok()?;
        consumer.client().fetch_cluster_id(Duration::from_secs(10))
    }

    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// What every client of the worker starts from: `bootstrap.servers`
    /// and the security settings, with the SASL login as it is now.
    pub fn client_properties(&self) -> BTreeMap<String, String> {
        let mut props = self.security.properties();
        props.insert("bootstrap.servers".into(), self.bootstrap.clone());
        props
    }

    /// Connects to a configured cluster and asks for its metadata, so a
    /// refused login or a failed TLS handshake stops the start with the
    /// settings to look at, not with a timeout later. A refused login is
    /// fetched again past the secrets' caches once before giving up.
    pub fn check_reachable(&self, timeout: Duration) -> Result<(), String> {
        if self.embedded.is_some() {
            return Ok(());
        }
        let mut renewed = false;
        loop {
            match super::security::first_contact(&self.client_properties(), timeout)? {
                super::security::Contact::Answered => return Ok(()),
                super::security::Contact::LoginRefused(reason) if !renewed => {
                    renewed = true;
                    match self.security.renew(true) {
                        Ok(true) => continue,
                        Ok(false) | Err(_) => {
                            return Err(login_refused(&self.bootstrap, &reason));
                        }
                    }
                }
                super::security::Contact::LoginRefused(reason) => {
                    return Err(login_refused(&self.bootstrap, &reason))
                }
                super::security::Contact::TlsFailed(reason) => {
                    return Err(format!(
                        "the TLS handshake with Kafka at {} failed: {reason} (check ssl.ca.location, ssl.endpoint.identification.algorithm and security.protocol)",
                        self.bootstrap
                    ))
                }
                super::security::Contact::NoAnswer(reason) => {
                    return Err(format!(
                        "Kafka at {} (bootstrap.servers) did not answer within {} s: {reason}",
                        self.bootstrap,
                        timeout.as_secs()
                    ))
                }
            }
        }
    }

    /// The security settings, whose SASL login long-lived clients follow
    /// ([`Security::register`]).
    pub fn security(&self) -> &Arc<Security> {
        &self.security
    }

    pub fn is_embedded(&self) -> bool {
        self.embedded.is_some()
    }

    /// Creates `topic` before its first use, once per worker: on the
    /// embedded cluster with `embedded.topic.partitions` (the mock's
    /// auto-creation would pick 4, which reorders records without keys); on
    /// a configured cluster as `topic.creation.*` says (an existing topic is
    /// left as it is).
    pub fn ensure_topic(&self, topic: &str) -> Result<(), String> {
        if self.embedded.is_none() && self.creation.is_none() {
            return Ok(());
        }
        let mut created = self.created.lock().unwrap_or_else(|p| p.into_inner());
        if created.contains(topic) {
            return Ok(());
        }
        match (&self.embedded, self.creation) {
            (Some(embedded), _) => embedded.create_topic(topic, self.partitions)?,
            (None, Some((partitions, replicas))) => {
                let new = super::create_topic(
                    &self.client_properties(),
                    topic,
                    partitions,
                    replicas,
                    &[],
                )
                .map_err(|e| {
                    format!("{e} (set topic.creation.enable: false to leave topics to the broker)")
                })?;
                if new {
                    tracing::info!(topic, partitions, "created topic (topic.creation.enable)");
                }
            }
            (None, None) => {}
        }
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
        let external = KafkaCluster::external("k:9092", None, Security::none());
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
