//! # tributary: a connector runtime for Kafka
//!
//! A worker loads source and sink connectors as WebAssembly components and
//! moves records between them and Kafka. The modules, each with one job:
//!
//! - [`config`]: YAML worker and connector configs, checked up front with
//!   file, line and key for every problem.
//! - [`contract`]: the plugin contract's types on the host side.
//! - [`plugin`]: the WebAssembly host (wasmtime): loading, caching and
//!   sandboxing plugins, calling their tasks. Knows nothing of Kafka.
//! - [`kafka`]: producers, consumers and the embedded Kafka (rdkafka).
//!   Knows nothing of WebAssembly.
//! - [`sql`]: database pools (sqlx) the worker owns for connectors; guests
//!   reach them through the contract's `sql` interface and never see a
//!   credential.
//! - [`blob`]: S3 clients (aws-sdk-s3) the worker owns for connectors;
//!   guests reach them through the contract's `blob` interface.
//! - [`secrets`]: config providers that read secrets (files, AWS Secrets
//!   Manager) and notice when a secret rotates.
//! - [`retry`]: backoff with jitter, retrying until a timeout, renewing
//!   credentials before retrying a call they were refused for.
//! - [`offsets`]: where source offsets are kept, in Kafka Connect's format.
//! - [`worker`]: runs connectors' tasks, moving batches between `plugin` and
//!   `kafka` with at-least-once delivery.
//! - [`herder`]: the connectors of a running worker: configs and target
//!   states (kept in a store), lifecycle, statuses, offsets.
//! - [`rest`]: the HTTP API (Kafka Connect's), on top of `herder`.

pub mod blob;
pub mod config;
pub mod contract;
pub mod herder;
pub mod kafka;
pub mod metrics;
pub mod offsets;
pub mod plugin;
pub mod rest;
pub mod retry;
pub mod secrets;
pub mod sql;
pub mod worker;
