//! The worker's backing stores, in Kafka Connect's record formats: where
//! connector configs and target states ([`ConfigStore`]), statuses, and
//! source offsets ([`OffsetStore`]) are kept, the codecs of their records,
//! and the implementations that need no Kafka (in memory, in a file).
//!
//! `kafka` implements the same traits on compacted topics with these
//! codecs. Every write returns only once it is durable. This module decides
//! nothing: the herder says what to keep, the worker when offsets are
//! ready.

mod configs;
mod offset_file;
mod offsets;
mod statuses;

pub use configs::{
    apply_config_record, config_value, connector_records, removal_records, target_record,
    target_value, ConfigStore, MemoryConfigStore, StoredConnector, TargetState,
};
pub use offset_file::FileOffsetStore;
pub use offsets::{
    canonical_offset_key, decode_offsets, offset_key, offset_record_value, offset_value,
    parse_offset_key, MemoryOffsetStore, OffsetStore,
};
pub use statuses::{status_record, status_value, ConnectorState, StatusKey, StatusRecord};

/// A record of a compacted topic: key, and value (`None`: a tombstone).
pub type Record = (String, Option<String>);
