//! S3 connectors for tributary, over the worker's `blob` capability (the
//! worker owns the S3 client and the credentials; these connectors only
//! name objects and lay out their bytes):
//!
//! - `s3-sink` ([`sink`]): batches records per topic partition into
//!   objects named after their first Kafka offset (Confluent's layout), so
//!   a replay rewrites the same objects;
//! - `s3-source` ([`source`]): reads objects under prefixes in key order,
//!   a record per line, and resumes in the middle of an object.
//!
//! [`format`] holds the record encodings both share (the JSON envelope,
//! raw bytes, CSV); [`path`] the time-based directory names.

mod format;
mod path;
mod sink;
mod source;

/// The version both connectors report: this crate's version.
const VERSION: &str = env!("CARGO_PKG_VERSION");

tributary_sdk::export_source!(crate::source::S3Source);
tributary_sdk::export_sink!(crate::sink::S3Sink);
