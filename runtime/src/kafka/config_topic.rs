//! Connector configs and target states in a compacted config topic, and
//! statuses in a compacted status topic, as Kafka Connect keeps them in
//! distributed mode (`config.storage.topic`, `status.storage.topic`; the
//! records are made and read by `crate::store`'s codecs).
//!
//! At start both topics are created (`cleanup.policy=compact`) when
//! missing, refused when they exist with another policy, and the config
//! topic is read to its end. A record this store does not know is logged
//! with its partition and offset and skipped. A write returns only when
//! Kafka acknowledged it.

use super::offset_topic::{ensure_compacted, read_to_end};
use super::sync_producer::{OutRecord, SyncProducer};
use super::{KafkaCluster, OffsetTopicSettings};
use crate::store::{
    apply_config_record, connector_records, removal_records, status_record, target_record,
    ConfigStore, Record, StatusKey, StatusRecord, StoredConnector, TargetState,
};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Where the config and status topics are.
#[derive(Clone, Debug)]
pub struct ConfigTopicSettings {
    pub config_topic: String,
    pub config_replication_factor: i32,
    pub status_topic: String,
    pub status_replication_factor: i32,
}

/// Configs, target states and statuses in compacted topics.
pub struct ConfigTopicStore {
    settings: ConfigTopicSettings,
    producer: SyncProducer,
    connectors: Mutex<BTreeMap<String, StoredConnector>>,
}

impl ConfigTopicStore {
    /// Checks or creates both topics, then reads the config topic to its end.
    pub fn open(
        cluster: &KafkaCluster,
        settings: &ConfigTopicSettings,
        producer_props: &BTreeMap<String, String>,
        consumer_props: &BTreeMap<String, String>,
    ) -> Result<ConfigTopicStore, String> {
        let bootstrap = cluster.client_properties();
        // Kafka Connect's config topic has exactly one partition: the order
        // of its records is the order of the changes.
        for (topic, rf, what) in [
            (
                &settings.config_topic,
                settings.config_replication_factor,
                "config topic",
            ),
            (
                &settings.status_topic,
                settings.status_replication_factor,
                "status topic",
            ),
        ] {
            let s = OffsetTopicSettings {
                topic: topic.clone(),
                partitions: 1,
                replication_factor: rf,
            };
            ensure_compacted(&bootstrap, &s, what)?;
        }
        let topic = settings.config_topic.as_str();
        let mut connectors = BTreeMap::new();
        read_to_end(
            &bootstrap,
            consumer_props,
            topic,
            |partition, offset, key, value| {
                let value = value.map(std::str::from_utf8);
                let known = match (key, value) {
                    (Some(k), None) => apply_config_record(&mut connectors, k, None),
                    (Some(k), Some(Ok(v))) => apply_config_record(&mut connectors, k, Some(v)),
                    _ => false,
                };
                if !known {
                    tracing::warn!(
                        topic,
                        partition,
                        offset,
                        "skipping a config record this worker does not know"
                    );
                }
            },
        )?;
        tracing::info!(
            topic,
            connectors = connectors.len(),
            "read the config topic to its end"
        );
        Ok(ConfigTopicStore {
            settings: settings.clone(),
            producer: SyncProducer::new(cluster, &[producer_props])?,
            connectors: Mutex::new(connectors),
        })
    }

    fn send(&self, topic: &str, records: &[Record]) -> Result<(), String> {
        let out: Vec<OutRecord<'_>> = records
            .iter()
            .map(|(k, v)| OutRecord {
                topic,
                key: Some(k.as_bytes()),
                value: v.as_deref().map(str::as_bytes),
                headers: Vec::new(),
            })
            .collect();
        self.producer
            .send_all(&out, Duration::from_secs(30))
            .map_err(|e| format!("writing to topic `{topic}`: {e}"))
    }
}

impl ConfigStore for ConfigTopicStore {
    fn connectors(&self) -> BTreeMap<String, StoredConnector> {
        self.connectors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn put(&self, name: &str, connector: &StoredConnector) -> Result<(), String> {
        let mut all = self.connectors.lock().unwrap_or_else(|p| p.into_inner());
        self.send(
            &self.settings.config_topic,
            &connector_records(name, connector),
        )?;
        all.insert(name.to_owned(), connector.clone());
        Ok(())
    }

    fn put_target(&self, name: &str, target: TargetState) -> Result<(), String> {
        let mut all = self.connectors.lock().unwrap_or_else(|p| p.into_inner());
        self.send(&self.settings.config_topic, &[target_record(name, target)])?;
        if let Some(c) = all.get_mut(name) {
            c.target = target;
        }
        Ok(())
    }

    fn remove(&self, name: &str, statuses: &[StatusKey]) -> Result<(), String> {
        let mut all = self.connectors.lock().unwrap_or_else(|p| p.into_inner());
        self.send(&self.settings.config_topic, &removal_records(name))?;
        all.remove(name);
        drop(all);
        let tombstones: Vec<Record> = statuses.iter().map(|k| status_record(k, None)).collect();
        self.send(&self.settings.status_topic, &tombstones)
    }

    fn put_status(&self, key: &StatusKey, status: Option<&StatusRecord>) -> Result<(), String> {
        self.send(&self.settings.status_topic, &[status_record(key, status)])
    }
}
