//! The WebAssembly host: everything that knows wasmtime lives here, and
//! nothing here knows Kafka.
//!
//! - [`PluginEngine`]: one wasmtime `Engine` per worker, an epoch ticker that
//!   enforces per-call deadlines, and an on-disk cache of compiled
//!   components keyed by the wasm's hash and the engine's configuration.
//! - [`PluginRegistry`]: the plugins found in `plugin.path`, by the name and
//!   version they describe; refuses files that are not components or speak
//!   another contract version.
//! - [`SourceInstance`] / [`SinkInstance`]: one task's sandbox (its own
//!   `Store` with a memory limit, WASI with exactly the granted
//!   directories) and typed calls into it.
//!
//! A trap, an exceeded deadline or memory limit ends that task's instance
//! with a [`CallError::Failed`] that says why; the worker and other tasks
//! are untouched.

mod bindings;
mod blob_host;
mod engine;
mod registry;
mod sql_host;
mod state;
mod task;

pub use engine::{PluginEngine, CONTRACT_VERSION};
pub use registry::{Plugin, PluginRegistry, Rejected};
pub use task::{CallError, SinkInstance, SourceInstance, TaskSandbox};
