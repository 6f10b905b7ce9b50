//! File connectors for tributary, modelled on Kafka Connect's FileStream
//! connectors. One component provides both:
//!
//! - `file-source` ([`source`]): follows a text file and produces one record
//!   per line, resuming at the byte position it last committed;
//! - `file-sink` ([`sink`]): appends each record's value as a line to a file.
//!
//! This module owns what both share (the crate version, the component
//! exports); each connector lives in its own module.

mod sink;
mod source;

/// The version both connectors report: this crate's version.
const VERSION: &str = env!("CARGO_PKG_VERSION");

tributary_sdk::export_source!(crate::source::FileSource);
tributary_sdk::export_sink!(crate::sink::FileSink);
