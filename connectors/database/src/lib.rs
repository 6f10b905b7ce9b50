//! Database connectors for tributary, with Kafka Connect JDBC's semantics,
//! over the worker's `sql` capability (the worker owns the pools and the
//! credentials; these connectors only write SQL):
//!
//! - `database-source` ([`source`]): reads tables (or a query) in `bulk`,
//!   `incrementing`, `timestamp` or `timestamp+incrementing` mode, one
//!   offset per table;
//! - `database-sink` ([`sink`]): inserts, upserts, updates and deletes rows
//!   from records, in batches on each database's fast path.
//!
//! [`dialect`] holds the SQL that differs between PostgreSQL, MySQL/MariaDB
//! and SQLite; [`json`] the mapping between SQL values and JSON.

mod dialect;
mod json;
mod sink;
mod source;

/// The version both connectors report: this crate's version.
const VERSION: &str = env!("CARGO_PKG_VERSION");

tributary_sdk::export_source!(crate::source::DatabaseSource);
tributary_sdk::export_sink!(crate::sink::DatabaseSink);
