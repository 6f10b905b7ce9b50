//! Kafka, through rdkafka (with its bundled librdkafka). Everything that
//! knows rdkafka lives here, and nothing here knows WebAssembly.
//!
//! - [`KafkaCluster`]: where Kafka is — a configured cluster, or the
//!   embedded one (librdkafka's mock cluster, in process, kept in memory).
//! - [`RecordProducer`]: produces source records and reports every delivery
//!   (acknowledged or failed) by sequence number, so the worker commits
//!   source offsets only for acknowledged records.
//! - [`RecordConsumer`]: consumes a sink connector's topics in its consumer
//!   group and commits exactly the offsets the worker says were flushed.

mod cluster;
mod consumer;
mod embedded;
mod offset_topic;
mod producer;
mod sync_producer;

pub use cluster::KafkaCluster;
pub use consumer::{RecordConsumer, TopicPartition};
pub use embedded::EmbeddedKafka;
pub use offset_topic::{OffsetTopicSettings, OffsetTopicStore};
pub use producer::{Ack, FailedDelivery, RecordProducer};
pub use sync_producer::{OutRecord, SyncProducer};

use rdkafka::ClientConfig;
use std::collections::BTreeMap;

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
