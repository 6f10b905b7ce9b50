//! Runs connectors: splits each into tasks and drives every task on its own
//! thread, moving batches between a plugin instance and Kafka.
//!
//! This is the only module that uses both `plugin` and `kafka`, and it
//! sees neither wasmtime nor rdkafka: only their narrow APIs.
//!
//! Connectors are started, stopped and restarted one at a time while the
//! worker runs (the REST API does that through `herder`); each task has its
//! own stop flag.
//!
//! A task that fails (a fatal plugin error, a trap, an exceeded limit)
//! stops alone; its reason is kept in its [`TaskStatus`]. The worker and
//! every other task keep running.

mod errors;
mod progress;
mod sink;
mod source;
mod status;

pub use status::{TaskState, TaskStatus};

use crate::config::{ConnectorConfig, Providers, WorkerConfig};
use crate::contract::ConnectorKind;
use crate::contract::{PartitionOffset, Scalar};
use crate::kafka::{
    check_property, group_offsets, set_group_offsets, KafkaCluster, TopicPartition,
};
use crate::metrics::TaskMetrics;
use crate::plugin::{PluginRegistry, TaskSandbox};
use crate::store::OffsetStore;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What every task of a worker shares. Each task gets its own copy with
/// its own `stop` flag, so one connector (or one task) can be stopped while
/// the others go on.
#[derive(Clone)]
pub(crate) struct Shared {
    pub worker: Arc<WorkerConfig>,
    pub cluster: Arc<KafkaCluster>,
    pub offsets: Arc<dyn OffsetStore>,
    pub stop: Arc<AtomicBool>,
}

/// A task's config, as the connector's `task-configs` gave it.
pub type TaskConfig = Vec<(String, String)>;

/// One running task.
struct TaskHandle {
    status: Arc<Mutex<TaskStatus>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TaskHandle {
    fn id(&self) -> u32 {
        self.status.lock().unwrap_or_else(|p| p.into_inner()).task
    }
}

/// A running worker: the tasks of its connectors, by connector name.
///
/// Connectors come and go while the worker runs: [`Worker::start_task`]
/// starts one task, [`Worker::stop_tasks`] stops some or all tasks of one
/// connector (gracefully: sources deliver what is in flight and commit,
/// sinks flush and commit) and waits for them.
pub struct Worker {
    shared: Shared,
    registry: Arc<PluginRegistry>,
    tasks: Mutex<BTreeMap<String, Vec<TaskHandle>>>,
    /// Each running connector's database pools, shared by its tasks; made
    /// at its first task's start, dropped when its last task stops.
    pools: Mutex<BTreeMap<String, Arc<crate::sql::Databases>>>,
    /// Each running connector's object stores, likewise.
    stores: Mutex<BTreeMap<String, Arc<crate::blob::Stores>>>,
    /// Resolve placeholders again when credentials rotate.
    providers: Providers,
}

impl Worker {
    /// The Kafka the worker's clients talk to.
    pub fn cluster(&self) -> &Arc<KafkaCluster> {
        &self.shared.cluster
    }

    pub fn new(
        worker: Arc<WorkerConfig>,
        cluster: Arc<KafkaCluster>,
        offsets: Arc<dyn OffsetStore>,
        registry: Arc<PluginRegistry>,
        providers: Providers,
    ) -> Worker {
        Worker {
            shared: Shared {
                worker,
                cluster,
                offsets,
                stop: Arc::new(AtomicBool::new(false)),
            },
            registry,
            tasks: Mutex::default(),
            pools: Mutex::default(),
            stores: Mutex::default(),
            providers,
        }
    }

    /// A renewal hook for connection or store `name` of `connector`
    /// (`kind`), when its settings hold placeholders.
    fn renewal<S: 'static>(
        &self,
        connector: &Arc<ConnectorConfig>,
        kind: &'static str,
        name: &str,
        renewed: fn(&ConnectorConfig, &str, &Providers, bool) -> Result<S, String>,
    ) -> Option<crate::retry::Renew<S>> {
        if !connector.has_placeholders(kind, name) {
            return None;
        }
        let (connector, providers, name) =
            (connector.clone(), self.providers.clone(), name.to_owned());
        Some(Arc::new(move |force| {
            renewed(&connector, &name, &providers, force)
        }))
    }

    /// Renews the credentials of `connector`'s connections and stores from
    /// its secrets (after a rotation was noticed): pools and clients whose
    /// login changed are rebuilt under the running tasks. Names those
    /// rebuilt.
    pub fn renew_credentials(&self, connector: &str) -> Vec<String> {
        let mut renewed = Vec::new();
        let pools = self
            .pools
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(connector)
            .cloned();
        if let Some(d) = pools {
            renewed.extend(
                d.renew_all()
                    .into_iter()
                    .map(|n| format!("connection `{n}`")),
            );
        }
        let stores = self
            .stores
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(connector)
            .cloned();
        if let Some(s) = stores {
            renewed.extend(s.renew_all().into_iter().map(|n| format!("store `{n}`")));
        }
        renewed
    }

    /// The database pools of `connector` (`connection.*` keys).
    fn databases(&self, connector: &ConnectorConfig) -> Result<Arc<crate::sql::Databases>, String> {
        let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(d) = pools.get(&connector.name) {
            return Ok(d.clone());
        }
        let config = Arc::new(connector.clone());
        let d = Arc::new(
            crate::sql::Databases::open(&connector.runtime.connections, |name| {
                self.renewal(
                    &config,
                    "connection",
                    name,
                    ConnectorConfig::renewed_connection,
                )
            })
            .map_err(|e| format!("connector `{}`: {e}", connector.name))?,
        );
        pools.insert(connector.name.clone(), d.clone());
        Ok(d)
    }

    /// The object stores of `connector` (`store.*` keys).
    fn stores(&self, connector: &ConnectorConfig) -> Result<Arc<crate::blob::Stores>, String> {
        let mut stores = self.stores.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = stores.get(&connector.name) {
            return Ok(s.clone());
        }
        let config = Arc::new(connector.clone());
        let s = Arc::new(
            crate::blob::Stores::open(&connector.runtime.stores, |name| {
                self.renewal(&config, "store", name, ConnectorConfig::renewed_store)
            })
            .map_err(|e| format!("connector `{}`: {e}", connector.name))?,
        );
        stores.insert(connector.name.clone(), s.clone());
        Ok(s)
    }

    /// The worker's settings.
    pub fn config(&self) -> &WorkerConfig {
        &self.shared.worker
    }

    /// The offset store the source tasks use.
    pub fn offsets(&self) -> &Arc<dyn OffsetStore> {
        &self.shared.offsets
    }

    /// librdkafka's objections to a connector's client settings, as (key,
    /// message): its `producer.override.*` and `consumer.override.*`
    /// properties and its `topics.regex` (compiled by librdkafka, so checked
    /// by it). A value that came from a placeholder is named by the
    /// placeholder.
    pub fn check_client_settings(connector: &ConnectorConfig) -> Vec<(String, String)> {
        let r = &connector.runtime;
        let producer = r
            .producer_overrides
            .iter()
            .map(|(k, v)| ("producer.override.", k, v));
        let consumer = r
            .consumer_overrides
            .iter()
            .map(|(k, v)| ("consumer.override.", k, v));
        // librdkafka's text quotes the value: a value that came from a
        // placeholder is replaced by the placeholder here, where it
        // becomes a problem.
        let mut problems: Vec<(String, String)> = producer
            .chain(consumer)
            .filter_map(|(prefix, k, v)| {
                let key = format!("{prefix}{k}");
                let value = connector.resolved(&key, v);
                check_property(k, v).err().map(|e| (key, value.mask(&e)))
            })
            .collect();
        if let Some(pattern) = &r.topics_regex {
            if let Err(e) = crate::kafka::check_topic_pattern(pattern) {
                let value = connector.resolved("topics.regex", pattern);
                let message = format!("expects a regular expression of topics, got {value:?}: {e}");
                problems.push(("topics.regex".into(), value.mask(&message)));
            }
        }
        problems
    }

    /// A sink connector's consumer group.
    pub fn sink_group(&self, connector: &ConnectorConfig) -> String {
        format!(
            "{}{}",
            self.shared.worker.sink_group_id_prefix, connector.name
        )
    }

    /// A sink connector's offsets (its consumer group's committed offsets
    /// on its `topics`), in Kafka Connect's shape: partition
    /// `{"kafka_topic": …, "kafka_partition": …}`, offset `{"kafka_offset": …}`.
    pub fn sink_offsets(
        &self,
        connector: &ConnectorConfig,
    ) -> Result<Vec<PartitionOffset>, String> {
        let layers = [
            &self.shared.worker.consumer,
            &connector.runtime.consumer_overrides,
        ];
        let committed = group_offsets(
            &self.shared.cluster,
            &layers,
            &self.sink_group(connector),
            &connector.runtime.topics,
        )?;
        Ok(committed
            .into_iter()
            .map(|((topic, partition), offset)| PartitionOffset {
                partition: [
                    ("kafka_topic".to_owned(), Scalar::Text(topic)),
                    ("kafka_partition".to_owned(), Scalar::Int(partition as i64)),
                ]
                .into_iter()
                .collect(),
                offset: [("kafka_offset".to_owned(), Scalar::Int(offset))]
                    .into_iter()
                    .collect(),
            })
            .collect())
    }

    /// Sets a stopped sink connector's committed offsets; `None`: the
    /// partition's earliest offset.
    pub fn set_sink_offsets(
        &self,
        connector: &ConnectorConfig,
        offsets: &[(TopicPartition, Option<i64>)],
    ) -> Result<(), String> {
        let layers = [
            &self.shared.worker.consumer,
            &connector.runtime.consumer_overrides,
        ];
        set_group_offsets(
            &self.shared.cluster,
            &layers,
            &self.sink_group(connector),
            offsets,
        )
    }

    /// Splits `connector` into task configs (the plugin's `task-configs`).
    pub fn task_configs(&self, connector: &ConnectorConfig) -> Result<Vec<TaskConfig>, String> {
        let d = &connector.description;
        let (plugin, _) = self.registry.find(&d.name, Some(&d.version))?;
        plugin
            .task_configs(
                d.kind,
                &connector.name,
                &connector.plugin_config,
                connector.runtime.tasks_max,
            )
            .map_err(|e| format!("connector `{}`: task-configs failed: {e}", connector.name))
    }

    /// Starts task `task` of `connector` on its own thread.
    pub fn start_task(
        &self,
        connector: &ConnectorConfig,
        task: u32,
        task_config: TaskConfig,
    ) -> Result<(), String> {
        let d = &connector.description;
        let (plugin, _) = self.registry.find(&d.name, Some(&d.version))?;
        tracing::info!(connector = %connector.name, task, plugin = %d.name, version = %d.version, "starting task");
        let metrics = Arc::new(TaskMetrics::default());
        let stop = Arc::new(AtomicBool::new(false));
        let sandbox = TaskSandbox {
            connector: connector.name.clone(),
            task,
            grants: connector.grants.clone(),
            allowed: (!connector.trusted).then(|| {
                crate::config::AllowedPaths::new(
                    &self.shared.worker.file_allowed_paths,
                    crate::config::FILE_ALLOWED_PATHS,
                )
            }),
            memory_max_bytes: connector
                .runtime
                .task_memory_max_bytes
                .unwrap_or(self.shared.worker.task_memory_max_bytes),
            call_timeout: connector
                .runtime
                .task_call_timeout
                .unwrap_or(self.shared.worker.task_call_timeout),
            metrics: metrics.clone(),
            databases: self.databases(connector)?,
            stores: self.stores(connector)?,
            stop: stop.clone(),
        };
        let status = Arc::new(Mutex::new(TaskStatus::new(
            &connector.name,
            task,
            d.kind,
            metrics,
        )));
        let shared = Shared {
            stop: stop.clone(),
            ..self.shared.clone()
        };
        let connector_name = connector.name.clone();
        let (connector, status2) = (connector.clone(), status.clone());
        let thread = std::thread::Builder::new()
            .name(format!("{}-{task}", connector.name))
            .spawn(move || {
                let span = tracing::info_span!("task", connector = %connector.name, task);
                let _in_task = span.enter();
                // A panic on this thread (host code, or the glue around the
                // guest) fails this task alone, with the panic's message.
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    fail::fail_point!("task-run", |m| Err(m.unwrap_or_default()));
                    match connector.description.kind {
                        ConnectorKind::Source => {
                            source::run(&shared, &plugin, &connector, sandbox, &task_config)
                        }
                        ConnectorKind::Sink => {
                            sink::run(&shared, &plugin, &connector, sandbox, &task_config)
                        }
                    }
                }))
                .unwrap_or_else(|panic| {
                    Err(format!("panicked: {}", panic_message(panic.as_ref())))
                });
                let mut s = status2.lock().unwrap_or_else(|p| p.into_inner());
                match outcome {
                    Ok(()) => s.state = TaskState::Stopped,
                    Err(reason) => {
                        // The guest's text and the host's errors may quote
                        // values: one from a placeholder is named by it.
                        let reason = connector.mask(&reason);
                        tracing::error!("task failed: {reason}");
                        s.state = TaskState::Failed(reason);
                    }
                }
            })
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        self.lock()
            .entry(connector_name)
            .or_default()
            .push(TaskHandle {
                status,
                stop,
                thread: Some(thread),
            });
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<TaskHandle>>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops the tasks of `connector` (only task `only`, when given) and
    /// waits for them, up to `task.shutdown.graceful.timeout.ms`. They are
    /// forgotten; returns those that did not finish in time.
    pub fn stop_tasks(&self, connector: &str, only: Option<u32>) -> Vec<String> {
        let mut taken = Vec::new();
        {
            let mut all = self.lock();
            if let Some(tasks) = all.get_mut(connector) {
                let (stop, keep): (Vec<_>, Vec<_>) = std::mem::take(tasks)
                    .into_iter()
                    .partition(|t| only.is_none_or(|id| t.id() == id));
                *tasks = keep;
                taken = stop;
                if tasks.is_empty() {
                    all.remove(connector);
                    self.pools
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(connector);
                    self.stores
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(connector);
                }
            }
        }
        stop_and_wait(
            taken.iter_mut().collect(),
            self.shared.worker.shutdown_timeout,
        )
    }

    /// A snapshot of the status of every task of `connector`, by task id.
    pub fn task_statuses(&self, connector: &str) -> Vec<TaskStatus> {
        let mut out: Vec<TaskStatus> = self
            .lock()
            .get(connector)
            .map(|ts| {
                ts.iter()
                    .map(|t| t.status.lock().unwrap_or_else(|p| p.into_inner()).clone())
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by_key(|s| s.task);
        out
    }

    /// A snapshot of every task's status.
    pub fn statuses(&self) -> Vec<TaskStatus> {
        self.lock()
            .values()
            .flatten()
            .map(|t| t.status.lock().unwrap_or_else(|p| p.into_inner()).clone())
            .collect()
    }

    /// True when no task is running any more.
    pub fn all_done(&self) -> bool {
        self.lock()
            .values()
            .flatten()
            .all(|t| t.thread.as_ref().is_none_or(|h| h.is_finished()))
    }

    /// Asks every task to stop: sources stop polling, deliver what is in
    /// flight and commit; sinks flush and commit. Waits up to the worker's
    /// `task.shutdown.graceful.timeout.ms`; returns the tasks that did not
    /// finish in time. Their statuses stay readable.
    pub fn shutdown(&self) -> Vec<String> {
        self.shared.stop.store(true, Ordering::SeqCst);
        let mut all = self.lock();
        stop_and_wait(
            all.values_mut().flatten().collect(),
            self.shared.worker.shutdown_timeout,
        )
    }
}

/// The message a panic was raised with (`panic!("…")` carries a `&str`
/// or a `String`).
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Signals every task in `tasks` to stop, then waits for them up to
/// `timeout`; returns those that did not finish in time.
fn stop_and_wait(mut tasks: Vec<&mut TaskHandle>, timeout: Duration) -> Vec<String> {
    for t in &tasks {
        t.stop.store(true, Ordering::SeqCst);
    }
    let deadline = Instant::now() + timeout;
    let mut late = Vec::new();
    for task in tasks.iter_mut() {
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

/// Opens a task, retrying retriable failures within `errors.retry.timeout`.
pub(crate) fn open_with_retry<T>(
    stop: &AtomicBool,
    settings: &crate::config::ErrorSettings,
    metrics: &TaskMetrics,
    mut open: impl FnMut() -> Result<T, crate::plugin::CallError>,
) -> Result<T, String> {
    let mut retry = crate::retry::Retry::default();
    loop {
        match open() {
            Ok(instance) => return Ok(instance),
            Err(crate::plugin::CallError::Guest(crate::contract::TaskError::Retriable(m)))
                if !stop.load(Ordering::Relaxed) =>
            {
                TaskMetrics::add(&metrics.retries, 1);
                let Some(delay) =
                    retry.next_delay(settings.retry_timeout, settings.retry_delay_max)
                else {
                    return Err(format!(
                        "open: still failing after errors.retry.timeout: {m}"
                    ));
                };
                tracing::warn!("open: {m}; retrying");
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
