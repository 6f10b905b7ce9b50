//! Source offsets in a compacted Kafka topic, as Kafka Connect keeps them in
//! distributed mode (`offset.storage.topic`).
//!
//! At start the topic is created (`cleanup.policy=compact`) when missing,
//! refused when it exists with another policy, and read to its end before
//! any source task opens. A record that is not an offset (not the expected
//! JSON) is logged with its partition and offset and skipped; keys are kept
//! in their canonical form (`canonical_offset_key`), so a record another
//! writer laid out differently is still the partition's entry. A write
//! returns only when Kafka acknowledged every record of it.

use super::sync_producer::{OutRecord, SyncProducer};
use super::{admin_options, client_config, create_topic, props, KafkaCluster};
use crate::contract::{JsonMap, PartitionOffset};
use crate::store::{
    canonical_offset_key, decode_offsets, offset_key, offset_record_value, offset_value,
    OffsetStore, Record,
};
use rdkafka::admin::{AdminClient, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How the offsets topic is set up.
#[derive(Clone, Debug)]
pub struct OffsetTopicSettings {
    pub topic: String,
    pub partitions: i32,
    /// -1: the broker's default.
    pub replication_factor: i32,
}

/// Offsets kept in a compacted topic.
pub struct OffsetTopicStore {
    topic: String,
    producer: SyncProducer,
    /// Key bytes → value bytes, as read at start and written since.
    entries: Mutex<BTreeMap<String, String>>,
}

impl OffsetTopicStore {
    /// Checks or creates the topic, then reads it to its end.
    pub fn open(
        cluster: &KafkaCluster,
        settings: &OffsetTopicSettings,
        producer_props: &BTreeMap<String, String>,
        consumer_props: &BTreeMap<String, String>,
    ) -> Result<OffsetTopicStore, String> {
        let bootstrap = cluster.client_properties();
        ensure_compacted(&bootstrap, settings, "offsets topic")?;
        let topic = settings.topic.as_str();
        let mut entries = BTreeMap::new();
        read_to_end(
            &bootstrap,
            consumer_props,
            topic,
            |partition, offset, key, value| {
                // Kept in canonical form: one entry per partition, whoever
                // wrote the record, and a later record replaces it.
                let Some(key) = key.and_then(canonical_offset_key) else {
                    tracing::warn!(
                        topic,
                        partition,
                        offset,
                        "skipping an offsets record whose key is not [\"connector\",{{…}}]"
                    );
                    return;
                };
                match value {
                    None => {
                        entries.remove(&key);
                    }
                    Some(v) => match offset_record_value(v) {
                        Some(s) => {
                            entries.insert(key, s.to_owned());
                        }
                        None => tracing::warn!(
                            topic,
                            partition,
                            offset,
                            "skipping an offsets record whose value is not a JSON object"
                        ),
                    },
                }
            },
        )?;
        let producer = SyncProducer::new(cluster, &[producer_props])?;
        tracing::info!(topic = %settings.topic, entries = entries.len(), "read the offsets topic to its end");
        Ok(OffsetTopicStore {
            topic: settings.topic.clone(),
            producer,
            entries: Mutex::new(entries),
        })
    }

    /// Writes records; a `None` value is a tombstone.
    fn produce(&self, records: &[Record]) -> Result<(), String> {
        let out: Vec<OutRecord<'_>> = records
            .iter()
            .map(|(k, v)| OutRecord {
                topic: &self.topic,
                key: Some(k.as_bytes()),
                value: v.as_deref().map(str::as_bytes),
                headers: Vec::new(),
            })
            .collect();
        self.producer
            .send_all(&out, Duration::from_secs(30))
            .map_err(|e| format!("writing offsets to topic `{}`: {e}", self.topic))
    }
}

impl OffsetStore for OffsetTopicStore {
    fn load(&self, connector: &str) -> Vec<PartitionOffset> {
        decode_offsets(
            connector,
            &self.entries.lock().unwrap_or_else(|p| p.into_inner()),
        )
    }

    fn write(&self, connector: &str, offsets: &[PartitionOffset]) -> Result<(), String> {
        let records: Vec<Record> = offsets
            .iter()
            .map(|po| {
                (
                    offset_key(connector, &po.partition),
                    Some(offset_value(&po.offset)),
                )
            })
            .collect();
        // One writer at a time: a failure must not be blamed on another write.
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        self.produce(&records)?;
        entries.extend(records.into_iter().filter_map(|(k, v)| Some((k, v?))));
        Ok(())
    }

    fn delete(&self, connector: &str, partitions: &[JsonMap]) -> Result<(), String> {
        let records: Vec<Record> = partitions
            .iter()
            .map(|p| (offset_key(connector, p), None))
            .collect();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        self.produce(&records)?;
        for (k, _) in records {
            entries.remove(&k);
        }
        Ok(())
    }
}

/// Creates the topic compacted, or checks the policy of the one there.
/// `what` names the topic in messages ("offsets topic").
pub(super) fn ensure_compacted(
    bootstrap: &BTreeMap<String, String>,
    settings: &OffsetTopicSettings,
    what: &str,
) -> Result<(), String> {
    let topic = settings.topic.as_str();
    let compact = [("cleanup.policy", "compact")];
    let new = create_topic(
        bootstrap,
        topic,
        settings.partitions,
        settings.replication_factor,
        &compact,
    )
    .map_err(|e| format!("{what}: {e}"))?;
    if new {
        tracing::info!(topic, "created the {what} (cleanup.policy=compact)");
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> = client_config(&[bootstrap])
        .create()
        .map_err(|e| format!("cannot create a Kafka admin client: {e}"))?;
    let described = futures::executor::block_on(
        admin.describe_configs([&ResourceSpecifier::Topic(topic)], &admin_options()),
    );
    let policy = match described.as_ref().map(|r| r.first()) {
        Ok(Some(Ok(resource))) => resource
            .entries
            .iter()
            .find(|e| e.name == "cleanup.policy")
            .and_then(|e| e.value.clone()),
        _ => None,
    };
    match policy {
        Some(p) if p.split(',').any(|x| x.trim() == "compact") => Ok(()),
        Some(p) => Err(format!(
            "{what} `{topic}` has cleanup.policy={p}; it must be compact, or old records are deleted and what they kept is lost. Change it (kafka-configs --alter --add-config cleanup.policy=compact) or configure another topic"
        )),
        None => {
            tracing::warn!(topic, "the broker did not report the {what}'s cleanup.policy; make sure it is compact");
            Ok(())
        }
    }
}

/// Reads every partition of `topic` from the beginning to its end, handing
/// each record (partition, offset, key as UTF-8, value) to `record`.
pub(super) fn read_to_end(
    bootstrap: &BTreeMap<String, String>,
    consumer_props: &BTreeMap<String, String>,
    topic: &str,
    mut record: impl FnMut(i32, i64, Option<&str>, Option<&[u8]>),
) -> Result<(), String> {
    let fixed = props(&[
        ("group.id", "tributary-offsets-reader"),
        ("enable.auto.commit", "false"),
        ("enable.partition.eof", "false"),
    ]);
    let consumer: BaseConsumer = client_config(&[bootstrap, consumer_props, &fixed])
        .create()
        .map_err(|e| format!("cannot create a Kafka consumer: {e}"))?;
    let timeout = Duration::from_secs(30);
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| format!("reading topic `{topic}`: {e}"))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut ends = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for p in partitions {
        let (_, high) = consumer
            .fetch_watermarks(topic, p, timeout)
            .map_err(|e| format!("reading the end of topic `{topic}` partition {p}: {e}"))?;
        if high > 0 {
            ends.insert(p, high);
            assignment
                .add_partition_offset(topic, p, Offset::Beginning)
                .map_err(|e| e.to_string())?;
        }
    }
    if ends.is_empty() {
        return Ok(());
    }
    consumer
        .assign(&assignment)
        .map_err(|e| format!("reading topic `{topic}`: {e}"))?;
    let start = Instant::now();
    let mut positions: BTreeMap<i32, i64> = BTreeMap::new();
    let reached = |positions: &BTreeMap<i32, i64>| {
        ends.iter()
            .all(|(p, end)| positions.get(p).copied().unwrap_or(-1) + 1 >= *end)
    };
    loop {
        if start.elapsed() > Duration::from_secs(120) {
            return Err(format!(
                "reading topic `{topic}` did not reach its end within 120 s"
            ));
        }
        // Past the reported end, read until nothing more comes: some
        // brokers report the end of the last batch, not of its last record.
        let Some(result) = consumer.poll(Duration::from_millis(300)) else {
            if reached(&positions) {
                break;
            }
            continue;
        };
        let m = result.map_err(|e| format!("reading topic `{topic}`: {e}"))?;
        positions.insert(m.partition(), m.offset());
        let key = m.key().and_then(|k| std::str::from_utf8(k).ok());
        record(m.partition(), m.offset(), key, m.payload());
    }
    Ok(())
}
