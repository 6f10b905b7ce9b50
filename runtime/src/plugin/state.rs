//! What each task's `Store` holds: its WASI context (only the granted
//! directories), its memory limiter, and the host calls' implementation.

use super::bindings::tributary::connector::{host, types};
use crate::metrics::TaskMetrics;
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Who a task is, for log lines.
#[derive(Clone, Debug)]
pub struct TaskTag {
    pub connector: String,
    pub task: u32,
}

/// A linear-memory limit that remembers being hit, so the failure can say
/// so instead of showing a bare trap.
pub struct MemoryLimit {
    pub max_bytes: u64,
    pub exceeded: Option<u64>,
}

impl ResourceLimiter for MemoryLimit {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.max_bytes {
            self.exceeded = Some(desired as u64);
            // An error (not `false`) traps at once: a guest's allocator must
            // not be left to spin on failed growth.
            wasmtime::bail!("memory limit of {} MiB exceeded", self.max_bytes >> 20);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

/// Everything a task's store holds.
pub struct TaskState {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub limit: MemoryLimit,
    pub tag: TaskTag,
    pub metrics: Arc<TaskMetrics>,
    /// The guest's stderr (panic messages), kept for failure reasons.
    pub stderr: MemoryOutputPipe,
    /// The connector's database connections (the `sql` interface).
    pub databases: Arc<crate::sql::Databases>,
    /// The connector's object stores (the `blob` interface).
    pub stores: Arc<crate::blob::Stores>,
    /// The task's stop flag: a database or store call waiting for renewed
    /// credentials gives up when it is set.
    pub stop: Arc<std::sync::atomic::AtomicBool>,
    /// Epoch ticks spent in host calls (waiting on a database or a store) since the
    /// deadline last fired: the deadline is pushed back by that much.
    pub host_wait_ticks: u64,
}

impl WasiView for TaskState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for TaskState {}

impl host::Host for TaskState {
    fn log(&mut self, level: host::LogLevel, message: String) {
        let (connector, task) = (&self.tag.connector, self.tag.task);
        match level {
            host::LogLevel::Trace => {
                tracing::trace!(target: "tributary::plugin", connector, task, "{message}")
            }
            host::LogLevel::Debug => {
                tracing::debug!(target: "tributary::plugin", connector, task, "{message}")
            }
            host::LogLevel::Info => {
                tracing::info!(target: "tributary::plugin", connector, task, "{message}")
            }
            host::LogLevel::Warn => {
                tracing::warn!(target: "tributary::plugin", connector, task, "{message}")
            }
            host::LogLevel::Error => {
                tracing::error!(target: "tributary::plugin", connector, task, "{message}")
            }
        }
    }

    fn counter_add(&mut self, name: String, delta: u64) {
        self.metrics.add_plugin(&name, delta);
    }
}
