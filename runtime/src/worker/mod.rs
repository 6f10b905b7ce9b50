//! Runs connectors: splits each into tasks and drives every task on its own
//! thread, moving batches between a plugin instance and Kafka.
//!
//! This is the only module that uses both `plugin` and `kafka`, and it
//! sees neither wasmtime nor rdkafka: only their narrow APIs.
//!
//! A task that fails (a fatal plugin error, a trap, an exceeded limit)
//! stops alone; its reason is kept in its [`TaskStatus`]. The worker and
//! every other task keep running.

mod errors;
mod sink;
mod source;
mod status;

pub use status::{TaskState, TaskStatus};

use crate::config::{ConnectorConfig, WorkerConfig};
use crate::contract::ConnectorKind;
use crate::kafka::KafkaCluster;
use crate::metrics::TaskMetrics;
use crate::offsets::OffsetStore;
use crate::plugin::{PluginRegistry, TaskSandbox};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What every task of a worker shares.
#[derive(Clone)]
pub(crate) struct Shared {
    pub worker: Arc<WorkerConfig>,
    pub cluster: Arc<KafkaCluster>,
    pub offsets: Arc<dyn OffsetStore>,
    pub stop: Arc<AtomicBool>,
}

/// One running task.
struct TaskHandle {
    status: Arc<Mutex<TaskStatus>>,
    thread: Option<JoinHandle<()>>,
}

/// A running worker: its connectors and their tasks.
pub struct Worker {
    shared: Shared,
    registry: Arc<PluginRegistry>,
    tasks: Vec<TaskHandle>,
}

impl Worker {
    pub fn new(
        worker: Arc<WorkerConfig>,
        cluster: Arc<KafkaCluster>,
        offsets: Arc<dyn OffsetStore>,
        registry: Arc<PluginRegistry>,
    ) -> Worker {
        Worker {
            shared: Shared {
                worker,
                cluster,
                offsets,
                stop: Arc::new(AtomicBool::new(false)),
            },
            registry,
            tasks: Vec::new(),
        }
    }

    /// Splits `connector` into tasks and starts them. Fails only when the
    /// connector cannot be split; a task that fails later fails alone.
    pub fn start(&mut self, connector: &ConnectorConfig) -> Result<usize, String> {
        let d = &connector.description;
        let (plugin, _) = self.registry.find(&d.name, Some(&d.version))?;
        let configs = plugin
            .task_configs(
                d.kind,
                &connector.name,
                &connector.plugin_config,
                connector.runtime.tasks_max,
            )
            .map_err(|e| format!("connector `{}`: task-configs failed: {e}", connector.name))?;
        let databases = Arc::new(
            crate::sql::Databases::open(&connector.runtime.connections)
                .map_err(|e| format!("connector `{}`: {e}", connector.name))?,
        );
        tracing::info!(connector = %connector.name, plugin = %d.name, version = %d.version, tasks = configs.len(), "starting connector");
        for (i, task_config) in configs.into_iter().enumerate() {
            let metrics = Arc::new(TaskMetrics::default());
            let sandbox = TaskSandbox {
                connector: connector.name.clone(),
                task: i as u32,
                grants: connector.grants.clone(),
                memory_max_bytes: connector
                    .runtime
                    .task_memory_max_bytes
                    .unwrap_or(self.shared.worker.task_memory_max_bytes),
                call_timeout: connector
                    .runtime
                    .task_call_timeout
                    .unwrap_or(self.shared.worker.task_call_timeout),
                metrics: metrics.clone(),
                databases: databases.clone(),
            };
            let status = Arc::new(Mutex::new(TaskStatus::new(
                &connector.name,
                i as u32,
                d.kind,
                metrics,
            )));
            let (shared, plugin, connector, status2) = (
                self.shared.clone(),
                plugin.clone(),
                connector.clone(),
                status.clone(),
            );
            let thread = std::thread::Builder::new()
                .name(format!("{}-{i}", connector.name))
                .spawn(move || {
                    let outcome = match connector.description.kind {
                        ConnectorKind::Source => source::run(&shared, &plugin, &connector, sandbox, &task_config),
                        ConnectorKind::Sink => sink::run(&shared, &plugin, &connector, sandbox, &task_config),
                    };
                    let mut s = status2.lock().unwrap_or_else(|p| p.into_inner());
                    match outcome {
                        Ok(()) => s.state = TaskState::Stopped,
                        Err(reason) => {
                            tracing::error!(connector = %s.connector, task = s.task, "task failed: {reason}");
                            s.state = TaskState::Failed(reason);
                        }
                    }
                })
                .map_err(|e| format!("cannot start a thread: {e}"))?;
            self.tasks.push(TaskHandle {
                status,
                thread: Some(thread),
            });
        }
        Ok(self.tasks.len())
    }

    /// A snapshot of every task's status.
    pub fn statuses(&self) -> Vec<TaskStatus> {
        self.tasks
            .iter()
            .map(|t| t.status.lock().unwrap_or_else(|p| p.into_inner()).clone())
            .collect()
    }

    /// True when no task is running any more.
    pub fn all_done(&self) -> bool {
        self.tasks
            .iter()
            .all(|t| t.thread.as_ref().is_none_or(|h| h.is_finished()))
    }

    /// Asks every task to stop: sources stop polling, deliver what is in
    /// flight and commit; sinks flush and commit. Waits up to the worker's
    /// `task.shutdown.graceful.timeout.ms`; returns the tasks that did not
    /// finish in time.
    pub fn shutdown(&mut self) -> Vec<String> {
        self.shared.stop.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + self.shared.worker.shutdown_timeout;
        let mut late = Vec::new();
        for task in &mut self.tasks {
            let Some(handle) = task.thread.take() else {
                continue;
            };
            while !handle.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if handle.is_finished() {
                let _ = handle.join();
            } else {
                let s = task.status.lock().unwrap_or_else(|p| p.into_inner());
                late.push(format!("{}-{}", s.connector, s.task));
            }
        }
        late
    }
}

/// Opens a task, retrying retriable failures within `errors.retry.timeout`.
pub(crate) fn open_with_retry<T>(
    stop: &AtomicBool,
    settings: &crate::config::ErrorSettings,
    metrics: &TaskMetrics,
    connector: &str,
    task: u32,
    mut open: impl FnMut() -> Result<T, crate::plugin::CallError>,
) -> Result<T, String> {
    let mut retry = errors::Retry::default();
    loop {
        match open() {
            Ok(instance) => return Ok(instance),
            Err(crate::plugin::CallError::Guest(crate::contract::TaskError::Retriable(m)))
                if !stop.load(Ordering::Relaxed) =>
            {
                TaskMetrics::add(&metrics.retries, 1);
                let Some(delay) = retry.next_delay(settings) else {
                    return Err(format!(
                        "open: still failing after errors.retry.timeout: {m}"
                    ));
                };
                tracing::warn!(connector, task, "open: {m}; retrying");
                nap(stop, delay);
            }
            Err(e) => return Err(format!("open: {e}")),
        }
    }
}

/// Sleeps up to `d`, waking early when the worker stops.
pub(crate) fn nap(stop: &AtomicBool, d: Duration) {
    let end = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= end {
            break;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(20)));
    }
}

/// Exponential backoff with jitter, capped.
pub(crate) fn backoff(attempt: u32, cap: Duration) -> Duration {
    let base = Duration::from_millis(100).saturating_mul(1 << attempt.min(10));
    let capped = base.min(cap);
    let jitter = Instant::now().elapsed().subsec_nanos() as u64
        ^ (std::process::id() as u64).wrapping_mul(attempt as u64 + 1);
    capped.mul_f64(0.5 + (jitter % 1000) as f64 / 2000.0)
}
