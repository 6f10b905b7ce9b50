//! Kafka, through rdkafka (with its bundled librdkafka). Everything that
//! knows rdkafka lives here, and nothing here knows WebAssembly.
//!
//! - [`KafkaCluster`]: where Kafka is — a configured cluster, or the
//!   embedded one (librdkafka's mock cluster, in process, kept in memory).
//! - [`RecordProducer`]: produces source records and reports every delivery
//!   (acknowledged or failed) by sequence number, so the worker commits
//!   source offsets only for acknowledged records.
//! - [`OffsetTopicStore`], [`ConfigTopicStore`]: source offsets, and
//!   connector configs, target states and statuses, in compacted topics.
//! - [`RecordConsumer`]: consumes a sink connector's topics in its consumer
//!   group and commits exactly the offsets the worker says were flushed.

mod cluster;
mod config_topic;
mod consumer;
mod embedded;
mod offset_topic;
mod producer;
mod security;
mod sync_producer;

pub use cluster::KafkaCluster;
pub use config_topic::{ConfigTopicSettings, ConfigTopicStore};
pub use consumer::{
    check_topic_pattern, group_offsets, set_group_offsets, BatchLimits, RecordConsumer,
    TopicPartition,
};
pub use embedded::EmbeddedKafka;
pub use offset_topic::{OffsetTopicSettings, OffsetTopicStore};
pub use producer::{Ack, FailedDelivery, RecordProducer};
pub use security::{check_security, is_refused_login, jaas_login, Registration, Security};
pub use sync_producer::{OutRecord, SyncProducer};

use crate::contract::Header;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header as KafkaHeader, OwnedHeaders};
use rdkafka::producer::{BaseRecord, ProducerContext, ThreadedProducer};
use rdkafka::ClientConfig;
use std::collections::BTreeMap;
use std::time::Duration;

/// Checks one librdkafka property (name and value) as librdkafka would
/// when a client is created; the error says what librdkafka objects to.
pub fn check_property(name: &str, value: &str) -> Result<(), String> {
    match ClientConfig::new().set(name, value).create_native_config() {
        Ok(_) => Ok(()),
        Err(rdkafka::error::KafkaError::ClientConfig(_, description, _, _)) => {
            Err(format!("librdkafka refuses it: {description}"))
        }
        Err(e) => Err(format!("librdkafka refuses it: {e}")),
    }
}

/// A property layer from literal pairs.
fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Kafka headers for a record, `None` when there are none.
fn owned_headers(headers: &[Header]) -> Option<OwnedHeaders> {
    if headers.is_empty() {
        return None;
    }
    let mut h = OwnedHeaders::new_with_capacity(headers.len());
    for header in headers {
        h = h.insert(KafkaHeader {
            key: &header.key,
            value: header.value.as_deref(),
        });
    }
    Some(h)
}

/// Queues `record`, waiting while librdkafka's queue is full; never drops it.
fn send_when_room<C: ProducerContext + 'static>(
    producer: &ThreadedProducer<C>,
    mut record: BaseRecord<'_, [u8], [u8], C::DeliveryOpaque>,
) -> Result<(), KafkaError> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(Duration::from_millis(2));
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// Creates `topic` with an admin client made from `client` (the cluster's
/// [`KafkaCluster::client_properties`]); `Ok(false)` when it already exists.
fn create_topic(
    client: &BTreeMap<String, String>,
    topic: &str,
    partitions: i32,
    replication_factor: i32,
    configs: &[(&str, &str)],
) -> Result<bool, String> {
    use rdkafka::admin::{AdminClient, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = client_config(&[client])
        .create()
        .map_err(|e| format!("cannot create a Kafka admin client: {e}"))?;
    let mut new = NewTopic::new(
        topic,
        partitions,
        TopicReplication::Fixed(replication_factor),
    );
    for (k, v) in configs {
        new = new.set(k, v);
    }
    let options = admin_options();
    let result = futures::executor::block_on(admin.create_topics([&new], &options))
        .map_err(|e| format!("cannot create topic `{topic}`: {e}"))?;
    match result.first() {
        Some(Ok(_)) => Ok(true),
        Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) | None => Ok(false),
        Some(Err((_, code))) => Err(format!("cannot create topic `{topic}`: {code}")),
    }
}

fn admin_options() -> rdkafka::admin::AdminOptions {
    rdkafka::admin::AdminOptions::new()
        .request_timeout(Some(Duration::from_secs(30)))
        .operation_timeout(Some(Duration::from_secs(30)))
}

/// A client config from layers of properties; later layers win.
fn client_config(layers: &[&BTreeMap<String, String>]) -> ClientConfig {
    let mut config = ClientConfig::new();
    for layer in layers {
        for (k, v) in layer.iter() {
            config.set(k, v);
        }
    }
    config
}
