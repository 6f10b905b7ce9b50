//! The connectors of a worker, managed while it runs: create, reconfigure,
//! pause, resume, stop, restart and delete them, read their statuses and
//! offsets. This is the narrow handle the REST API talks to (Kafka
//! Connect calls it the herder).
//!
//! It owns each connector's config as submitted (placeholders unresolved)
//! and its target state, keeps both in a [`ConfigStore`] (compacted topics
//! with a configured Kafka), and drives the [`Worker`] to match: tasks run
//! only while the target state is `RUNNING`. A paused connector's tasks are
//! stopped gracefully (offsets flushed and committed) and report `PAUSED`;
//! a stopped connector has no tasks at all, and only then may its offsets
//! be changed.
//!
//! Changes are serialised (one at a time); reads never wait for a change
//! that is draining tasks. Offsets edits live in `offsets`, plugin listing
//! and validation in `plugins`, the store's record shapes in [`store`].

mod offsets;
mod plugins;
pub mod store;

pub use store::{
    ConfigStore, MemoryConfigStore, StatusKey, StatusRecord, StoredConnector, TargetState,
};

use crate::config::{ConnectorConfig, Problems, Providers};
use crate::contract::{ConnectorKind, KeySpec};
use crate::plugin::PluginRegistry;
use crate::worker::{TaskConfig, TaskState, Worker};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

/// What went wrong, by kind; the REST API maps kinds to status codes.
#[derive(Clone, Debug, PartialEq)]
pub enum Error {
    NotFound(String),
    Conflict(String),
    BadRequest(String),
    Internal(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (Error::NotFound(m) | Error::Conflict(m) | Error::BadRequest(m) | Error::Internal(m)) =
            self;
        f.write_str(m)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Shown instead of a secret key's literal value.
pub const HIDDEN: &str = "[hidden]";

/// Where a connector's config came from.
#[derive(Clone, Debug, PartialEq)]
pub enum Origin {
    /// A connector file given at start.
    File(String),
    /// The REST API (or the store, written by an earlier run).
    Rest,
}

/// One managed connector.
struct Managed {
    /// As submitted, without `name`; placeholders unresolved.
    raw: BTreeMap<String, String>,
    /// The checked config, or why it no longer passes (a stored connector
    /// whose plugin is gone).
    config: std::result::Result<ConnectorConfig, String>,
    target: TargetState,
    /// Task configs from the last start.
    tasks: Vec<TaskConfig>,
    /// Why the connector itself failed (its `task-configs` call).
    failed: Option<String>,
    origin: Origin,
}

/// A connector's identity, config and tasks (Kafka Connect's ConnectorInfo).
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectorInfo {
    pub name: String,
    /// As submitted, with `name`; secret keys' literal values hidden.
    pub config: BTreeMap<String, String>,
    pub tasks: Vec<u32>,
    pub kind: Option<ConnectorKind>,
}

/// The state of a connector or task (Kafka Connect's state names).
#[derive(Clone, Debug, PartialEq)]
pub struct State {
    pub state: String,
    pub trace: Option<String>,
}

/// A connector's status (Kafka Connect's ConnectorStateInfo).
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectorStatus {
    pub name: String,
    pub connector: State,
    pub tasks: Vec<(u32, State)>,
    pub kind: Option<ConnectorKind>,
}

/// One key's outcome in a validation (Kafka Connect's ConfigInfo).
#[derive(Clone, Debug, PartialEq)]
pub struct KeyValidation {
    pub spec: Option<KeySpec>,
    pub name: String,
    pub value: Option<String>,
    pub errors: Vec<String>,
}

/// The outcome of validating a config against a plugin.
#[derive(Clone, Debug, PartialEq)]
pub struct Validation {
    pub plugin: String,
    pub error_count: usize,
    pub keys: Vec<KeyValidation>,
}

/// Problems as `key: message` lines, without file or line.
pub fn problem_lines(problems: &Problems) -> Vec<String> {
    problems
        .0
        .iter()
        .map(|p| match &p.key {
            Some(k) => format!("`{k}`: {}", p.message),
            None => p.message.clone(),
        })
        .collect()
}

fn invalid(problems: &Problems) -> Error {
    let lines = problem_lines(problems);
    Error::BadRequest(format!(
        "Connector configuration is invalid and contains the following {} error(s):\n{}\nYou can also find the above list of errors at the endpoint `/connector-plugins/{{connectorType}}/config/validate`",
        lines.len(),
        lines.join("\n")
    ))
}

fn not_found(name: &str) -> Error {
    Error::NotFound(format!("Connector {name} not found"))
}

/// A connector's name as Kafka Connect accepts it here: letters, digits,
/// `.`, `_` and `-`.
pub fn check_name(name: &str) -> Result<()> {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "`name`: connector name {name:?} must be non-empty and hold only letters, digits, `.`, `_` and `-`"
        )))
    }
}

/// A connector file given at start: its config as written and as checked
/// (or why it cannot run now: a secret it needs is missing, say).
pub struct FileConnector {
    pub name: String,
    pub file: std::path::PathBuf,
    /// As written, without `name`; placeholders unresolved.
    pub raw: BTreeMap<String, String>,
    pub config: std::result::Result<ConnectorConfig, String>,
}

/// The worker's connectors, their configs and target states.
pub struct Herder {
    worker: Arc<Worker>,
    registry: Arc<PluginRegistry>,
    providers: Providers,
    store: Arc<dyn ConfigStore>,
    worker_id: String,
    state: Mutex<BTreeMap<String, Managed>>,
    /// One change at a time.
    changes: Mutex<()>,
    /// Statuses last written to the store.
    written: Mutex<BTreeMap<StatusKey, StatusRecord>>,
}

impl Herder {
    pub fn new(
        worker: Arc<Worker>,
        registry: Arc<PluginRegistry>,
        providers: Providers,
        store: Arc<dyn ConfigStore>,
        worker_id: String,
    ) -> Herder {
        Herder {
            worker,
            registry,
            providers,
            store,
            worker_id,
            state: Mutex::default(),
            changes: Mutex::default(),
            written: Mutex::default(),
        }
    }

    pub fn worker(&self) -> &Arc<Worker> {
        &self.worker
    }

    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Managed>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a change (a REST call, a rotated secret) is in progress:
    /// tasks may be between a stop and a start.
    pub fn is_changing(&self) -> bool {
        self.changes.try_lock().is_err()
    }

    fn change(&self) -> MutexGuard<'_, ()> {
        self.changes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check(&self, name: &str, raw: &BTreeMap<String, String>) -> Result<ConnectorConfig> {
        let config = ConnectorConfig::from_map(
            Path::new("config"),
            name,
            raw,
            &self.providers,
            self.registry.as_ref(),
        )
        .map_err(|p| invalid(&p))?;
        let overrides = Worker::check_overrides(&config);
        if !overrides.is_empty() {
            let mut problems = Problems::default();
            for (k, m) in overrides {
                problems.push(crate::config::Problem::new(
                    Path::new("config"),
                    None,
                    Some(&k),
                    m,
                ));
            }
            return Err(invalid(&problems));
        }
        Ok(config)
    }

    /// Brings up the connectors at start: those stored by an earlier run,
    /// and those of the files given (each file's config replaces the stored
    /// one of the same name; a stored target state is kept).
    pub fn start_up(&self, files: Vec<FileConnector>) -> Result<()> {
        let _one = self.change();
        let stored = self.store.connectors();
        let mut plan: BTreeMap<String, Managed> = BTreeMap::new();
        for (name, s) in &stored {
            let config = self.check(name, &s.config).map_err(|e| e.to_string());
            if let Err(e) = &config {
                tracing::error!(connector = %name, "stored connector no longer passes its checks: {e}");
            }
            plan.insert(
                name.clone(),
                Managed {
                    raw: s.config.clone(),
                    config,
                    target: s.target,
                    tasks: Vec::new(),
                    failed: None,
                    origin: Origin::Rest,
                },
            );
        }
        for FileConnector {
            name,
            file,
            raw,
            config,
        } in files
        {
            let target = stored.get(&name).map_or(TargetState::Running, |s| s.target);
            let entry = StoredConnector {
                config: raw.clone(),
                target,
            };
            if stored.get(&name) != Some(&entry) {
                self.store.put(&name, &entry).map_err(Error::Internal)?;
            }
            if let Err(e) = &config {
                tracing::error!(connector = %name, "connector failed: {e}");
            }
            plan.insert(
                name,
                Managed {
                    raw,
                    config,
                    target,
                    tasks: Vec::new(),
                    failed: None,
                    origin: Origin::File(file.display().to_string()),
                },
            );
        }
        let names: Vec<String> = plan.keys().cloned().collect();
        *self.lock() = plan;
        for name in names {
            self.apply(&name);
        }
        Ok(())
    }

    /// Starts the tasks of `name` when its target is RUNNING and none run.
    fn apply(&self, name: &str) {
        let (config, target) = {
            let state = self.lock();
            let Some(m) = state.get(name) else { return };
            (m.config.clone(), m.target)
        };
        let Ok(config) = config else { return };
        if target == TargetState::Paused {
            // A paused connector lists its (paused) tasks, even one that
            // has not run since the worker started.
            let known = self.lock().get(name).is_some_and(|m| !m.tasks.is_empty());
            if !known {
                if let Ok(tasks) = self.worker.task_configs(&config) {
                    if let Some(m) = self.lock().get_mut(name) {
                        m.tasks = tasks;
                    }
                }
            }
            return;
        }
        if target != TargetState::Running || !self.worker.task_statuses(name).is_empty() {
            return;
        }
        let outcome = self.worker.task_configs(&config).and_then(|tasks| {
            for (i, t) in tasks.iter().enumerate() {
                self.worker.start_task(&config, i as u32, t.clone())?;
            }
            Ok(tasks)
        });
        let mut state = self.lock();
        if let Some(m) = state.get_mut(name) {
            match outcome {
                Ok(tasks) => {
                    m.tasks = tasks;
                    m.failed = None;
                }
                Err(e) => {
                    tracing::error!(connector = name, "connector failed: {e}");
                    m.failed = Some(e);
                }
            }
        }
    }

    fn stop_tasks(&self, name: &str, only: Option<u32>) {
        let late = self.worker.stop_tasks(name, only);
        if !late.is_empty() {
            tracing::warn!(
                connector = name,
                "tasks did not stop within task.shutdown.graceful.timeout.ms: {}",
                late.join(", ")
            );
        }
    }

    /// Connector names, sorted.
    pub fn connectors(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Where a connector's config came from.
    pub fn origin(&self, name: &str) -> Result<Origin> {
        self.lock()
            .get(name)
            .map(|m| m.origin.clone())
            .ok_or_else(|| not_found(name))
    }

    fn masked(&self, name: &str, m: &Managed) -> BTreeMap<String, String> {
        // A config that does not pass (a secret missing at start) still
        // hides the keys its plugin declares secret.
        let described = match &m.config {
            Ok(c) => Some(c.description.clone()),
            Err(_) => m.raw.get("connector.class").and_then(|class| {
                let version = m.raw.get("connector.plugin.version");
                crate::config::Catalog::describe(
                    self.registry.as_ref(),
                    class,
                    version.map(String::as_str),
                )
                .ok()
            }),
        };
        let secret: Vec<&str> = described
            .iter()
            .flat_map(|d| d.keys.iter())
            .filter(|k| k.secret)
            .map(|k| k.name.as_str())
            .collect();
        let mut out: BTreeMap<String, String> = m
            .raw
            .iter()
            .map(|(k, v)| {
                let shown = if v.contains("${") {
                    v.clone()
                } else if secret.contains(&k.as_str()) {
                    HIDDEN.to_owned()
                } else {
                    // Worker-owned secrets: database passwords and URLs.
                    crate::config::redacted_connection_value(k, v).unwrap_or_else(|| v.clone())
                };
                (k.clone(), shown)
            })
            .collect();
        out.insert("name".into(), name.to_owned());
        out
    }

    /// A connector's config as submitted, with `name`; secret keys given
    /// as literal values are hidden (placeholders show as written).
    pub fn config(&self, name: &str) -> Result<BTreeMap<String, String>> {
        let state = self.lock();
        let m = state.get(name).ok_or_else(|| not_found(name))?;
        Ok(self.masked(name, m))
    }

    pub fn info(&self, name: &str) -> Result<ConnectorInfo> {
        let state = self.lock();
        let m = state.get(name).ok_or_else(|| not_found(name))?;
        Ok(ConnectorInfo {
            name: name.to_owned(),
            config: self.masked(name, m),
            tasks: if m.target == TargetState::Stopped {
                Vec::new()
            } else {
                (0..m.tasks.len() as u32).collect()
            },
            kind: m.config.as_ref().ok().map(|c| c.description.kind),
        })
    }

    /// Task configs: (id, config), placeholders shown as submitted.
    pub fn tasks(&self, name: &str) -> Result<Vec<(u32, BTreeMap<String, String>)>> {
        let state = self.lock();
        let m = state.get(name).ok_or_else(|| not_found(name))?;
        if m.target == TargetState::Stopped {
            return Ok(Vec::new());
        }
        // A key submitted as a placeholder shows as the placeholder, not as
        // the value it resolved to.
        let shown = |(k, v): &(String, String)| match m.raw.get(k) {
            Some(raw) if raw.contains("${") => (k.clone(), raw.clone()),
            _ => (k.clone(), v.clone()),
        };
        Ok(m.tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (i as u32, t.iter().map(shown).collect()))
            .collect())
    }

    pub fn status(&self, name: &str) -> Result<ConnectorStatus> {
        let (target, failed, invalid, n, kind) = {
            let state = self.lock();
            let m = state.get(name).ok_or_else(|| not_found(name))?;
            (
                m.target,
                m.failed.clone(),
                m.config.clone().err(),
                m.tasks.len() as u32,
                m.config.as_ref().ok().map(|c| c.description.kind),
            )
        };
        let state = |s: &str, trace: Option<String>| State {
            state: s.to_owned(),
            trace,
        };
        // A config that no longer passes fails the connector whatever its
        // target; a failed split only while it should run.
        let connector = match (invalid, &failed, target) {
            (Some(reason), _, _) => state("FAILED", Some(reason)),
            (None, Some(reason), TargetState::Running) => state("FAILED", Some(reason.clone())),
            _ => state(target.name(), None),
        };
        let tasks = match target {
            TargetState::Stopped => Vec::new(),
            TargetState::Paused => (0..n).map(|i| (i, state("PAUSED", None))).collect(),
            TargetState::Running => {
                let running = self.worker.task_statuses(name);
                (0..n)
                    .map(|i| {
                        let s = match running.iter().find(|s| s.task == i).map(|s| &s.state) {
                            Some(TaskState::Running) => state("RUNNING", None),
                            Some(TaskState::Failed(reason)) => {
                                state("FAILED", Some(reason.clone()))
                            }
                            Some(TaskState::Stopped) | None => state("UNASSIGNED", None),
                        };
                        (i, s)
                    })
                    .collect()
            }
        };
        Ok(ConnectorStatus {
            name: name.to_owned(),
            connector,
            tasks,
            kind,
        })
    }

    pub fn task_status(&self, name: &str, task: u32) -> Result<State> {
        let status = self.status(name)?;
        status
            .tasks
            .into_iter()
            .find(|(i, _)| *i == task)
            .map(|(_, s)| s)
            .ok_or_else(|| Error::NotFound(format!("No status found for task {name}-{task}")))
    }

    /// Creates a connector; `Conflict` when the name is taken.
    pub fn create(
        &self,
        name: &str,
        mut raw: BTreeMap<String, String>,
        target: TargetState,
    ) -> Result<ConnectorInfo> {
        check_name(name)?;
        raw.remove("name");
        let _one = self.change();
        if self.lock().contains_key(name) {
            return Err(Error::Conflict(format!("Connector {name} already exists")));
        }
        let config = self.check(name, &raw)?;
        self.store
            .put(
                name,
                &StoredConnector {
                    config: raw.clone(),
                    target,
                },
            )
            .map_err(Error::Internal)?;
        self.lock().insert(
            name.to_owned(),
            Managed {
                raw,
                config: Ok(config),
                target,
                tasks: Vec::new(),
                failed: None,
                origin: Origin::Rest,
            },
        );
        tracing::info!(
            connector = name,
            target = target.name(),
            "connector created"
        );
        self.apply(name);
        self.info(name)
    }

    /// Replaces a connector's config, or creates the connector; returns
    /// whether it was created.
    pub fn put_config(
        &self,
        name: &str,
        mut raw: BTreeMap<String, String>,
    ) -> Result<(bool, ConnectorInfo)> {
        check_name(name)?;
        raw.remove("name");
        let _one = self.change();
        let existing = self.lock().get(name).map(|m| (m.target, m.raw.clone()));
        let config = self.check(name, &raw)?;
        let target = existing.as_ref().map_or(TargetState::Running, |e| e.0);
        self.store
            .put(
                name,
                &StoredConnector {
                    config: raw.clone(),
                    target,
                },
            )
            .map_err(Error::Internal)?;
        if existing.is_some() {
            self.stop_tasks(name, None);
        }
        let mut state = self.lock();
        let origin = state.get(name).map_or(Origin::Rest, |m| m.origin.clone());
        state.insert(
            name.to_owned(),
            Managed {
                raw,
                config: Ok(config),
                target,
                tasks: Vec::new(),
                failed: None,
                origin,
            },
        );
        drop(state);
        tracing::info!(
            connector = name,
            "connector config {}",
            if existing.is_some() {
                "updated"
            } else {
                "created"
            }
        );
        self.apply(name);
        Ok((existing.is_none(), self.info(name)?))
    }

    /// Applies a patch (a `None` value removes the key).
    pub fn patch_config(
        &self,
        name: &str,
        patch: BTreeMap<String, Option<String>>,
    ) -> Result<ConnectorInfo> {
        let mut raw = self
            .lock()
            .get(name)
            .map(|m| m.raw.clone())
            .ok_or_else(|| not_found(name))?;
        if let Some(Some(n)) = patch.get("name") {
            if n != name {
                return Err(Error::BadRequest(format!(
                    "`name`: connector name configuration ({n}) doesn't match connector name in the URL ({name})"
                )));
            }
        }
        for (k, v) in patch {
            match v {
                Some(v) => raw.insert(k, v),
                None => raw.remove(&k),
            };
        }
        self.put_config(name, raw).map(|(_, info)| info)
    }

    /// Deletes a connector: stops its tasks and forgets it (its source
    /// offsets stay, as in Kafka Connect).
    pub fn delete(&self, name: &str) -> Result<()> {
        let _one = self.change();
        // Out of the map first, so no status of it is published after its
        // tombstones; back in if the store cannot forget it.
        let managed = self.lock().remove(name).ok_or_else(|| not_found(name))?;
        let mut keys = vec![StatusKey::Connector(name.to_owned())];
        keys.extend((0..managed.tasks.len() as u32).map(|i| StatusKey::Task(name.to_owned(), i)));
        if let Err(e) = self.store.remove(name, &keys) {
            self.lock().insert(name.to_owned(), managed);
            return Err(Error::Internal(e));
        }
        self.stop_tasks(name, None);
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        written.retain(|k, _| !keys.contains(k));
        tracing::info!(connector = name, "connector deleted");
        Ok(())
    }

    /// Sets a connector's target state and makes its tasks follow.
    pub fn set_target(&self, name: &str, target: TargetState) -> Result<()> {
        let _one = self.change();
        let before = self
            .lock()
            .get(name)
            .map(|m| m.target)
            .ok_or_else(|| not_found(name))?;
        if before != target {
            self.store
                .put_target(name, target)
                .map_err(Error::Internal)?;
            if let Some(m) = self.lock().get_mut(name) {
                m.target = target;
            }
            tracing::info!(
                connector = name,
                target = target.name(),
                "target state changed"
            );
        }
        if target != TargetState::Running {
            self.stop_tasks(name, None);
        }
        self.apply(name);
        Ok(())
    }

    /// Restarts a connector. Without `include_tasks` only the connector
    /// itself (it splits its work again when it had failed to); with it,
    /// its tasks too (only the failed ones with `only_failed`). Returns the
    /// ids of the restarted tasks.
    pub fn restart(&self, name: &str, include_tasks: bool, only_failed: bool) -> Result<Vec<u32>> {
        let _one = self.change();
        let (target, mut failed, raw, invalid) = {
            let state = self.lock();
            let m = state.get(name).ok_or_else(|| not_found(name))?;
            (
                m.target,
                m.failed.is_some(),
                m.raw.clone(),
                m.config.is_err(),
            )
        };
        if invalid {
            // It failed its checks (a secret missing at start, say): check
            // it again; the restart starts it if it passes now.
            let config = self.check(name, &raw).map_err(|e| e.to_string());
            failed = true;
            if let Some(m) = self.lock().get_mut(name) {
                m.config = config;
            }
        }
        if target != TargetState::Running {
            return Ok(Vec::new());
        }
        if !include_tasks {
            if failed {
                self.stop_tasks(name, None);
                self.apply(name);
            }
            return Ok(Vec::new());
        }
        if !only_failed || failed {
            // Every task: the connector splits its work again.
            self.stop_tasks(name, None);
            self.apply(name);
            let n = self.lock().get(name).map_or(0, |m| m.tasks.len() as u32);
            return Ok((0..n).collect());
        }
        let restart: Vec<u32> = self
            .worker
            .task_statuses(name)
            .iter()
            .filter(|s| matches!(s.state, TaskState::Failed(_)))
            .map(|s| s.task)
            .collect();
        for &id in &restart {
            self.restart_one(name, id)?;
        }
        Ok(restart)
    }

    fn restart_one(&self, name: &str, task: u32) -> Result<()> {
        let (config, task_config) = {
            let state = self.lock();
            let m = state.get(name).ok_or_else(|| not_found(name))?;
            let t = m
                .tasks
                .get(task as usize)
                .cloned()
                .ok_or_else(|| Error::NotFound(format!("Unknown task: {name}-{task}")))?;
            (m.config.clone(), t)
        };
        let config = config.map_err(Error::BadRequest)?;
        self.stop_tasks(name, Some(task));
        self.worker
            .start_task(&config, task, task_config)
            .map_err(Error::Internal)
    }

    /// Restarts one task (when the connector is RUNNING).
    pub fn restart_task(&self, name: &str, task: u32) -> Result<()> {
        let _one = self.change();
        let target = {
            let state = self.lock();
            let m = state.get(name).ok_or_else(|| not_found(name))?;
            if task as usize >= m.tasks.len() {
                return Err(Error::NotFound(format!("Unknown task: {name}-{task}")));
            }
            m.target
        };
        if target != TargetState::Running {
            return Ok(());
        }
        self.restart_one(name, task)
    }

    /// A secret of `provider` called `id` has a new value. Each connector
    /// whose config reads it is resolved again: when only credentials of
    /// its connections and stores read it, the pools and clients are
    /// rebuilt under the running tasks; otherwise (a table name, say) its
    /// tasks restart with the new config.
    pub fn secret_changed(&self, provider: &str, id: &str) {
        let _one = self.change();
        // (name, config as submitted, keys that read the secret, valid now)
        type Affected = (String, BTreeMap<String, String>, Vec<String>, bool);
        let affected: Vec<Affected> = self
            .lock()
            .iter()
            .filter_map(|(name, m)| {
                let keys: Vec<String> = m
                    .raw
                    .iter()
                    .filter(|(_, v)| self.providers.reads(v, provider, id))
                    .map(|(k, _)| k.clone())
                    .collect();
                (!keys.is_empty()).then(|| (name.clone(), m.raw.clone(), keys, m.config.is_ok()))
            })
            .collect();
        for (name, raw, keys, was_valid) in affected {
            let config = match self.check(&name, &raw) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(connector = %name, secret = %id, "after the secret changed the connector's config no longer passes; its tasks keep their values: {e}");
                    continue;
                }
            };
            if let Some(m) = self.lock().get_mut(&name) {
                m.config = Ok(config);
            }
            if was_valid && keys.iter().all(|k| ConnectorConfig::is_renewable(k)) {
                let renewed = self.worker.renew_credentials(&name);
                if renewed.is_empty() {
                    // Already renewed by a call that was refused, or not
                    // running: nothing to rebuild.
                    continue;
                }
                tracing::info!(
                    connector = %name,
                    secret = %id,
                    renewed = %renewed.join(", "),
                    "secret rotated: credentials renewed under the running tasks"
                );
                continue;
            }
            tracing::info!(
                connector = %name,
                secret = %id,
                keys = %keys.join(", "),
                "secret changed keys that are not credentials; restarting the connector's tasks"
            );
            self.stop_tasks(&name, None);
            if let Some(m) = self.lock().get_mut(&name) {
                m.failed = None;
            }
            self.apply(&name);
        }
    }

    /// Writes the statuses that changed since the last call to the store
    /// (the status topic). Called periodically.
    pub fn publish_statuses(&self) {
        let mut now: BTreeMap<StatusKey, StatusRecord> = BTreeMap::new();
        for name in self.connectors() {
            let Ok(status) = self.status(&name) else {
                continue;
            };
            let record = |s: &State| StatusRecord {
                state: s.state.clone(),
                trace: s.trace.clone(),
                worker_id: self.worker_id.clone(),
            };
            now.insert(
                StatusKey::Connector(name.clone()),
                record(&status.connector),
            );
            for (id, s) in &status.tasks {
                now.insert(StatusKey::Task(name.clone(), *id), record(s));
            }
        }
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        for (k, v) in &now {
            if written.get(k) != Some(v) {
                match self.store.put_status(k, Some(v)) {
                    Ok(()) => {
                        written.insert(k.clone(), v.clone());
                    }
                    Err(e) => tracing::warn!("status not written, will retry: {e}"),
                }
            }
        }
    }

    /// Stops every task (at shutdown); the target states stay as stored.
    pub fn shutdown(&self) -> Vec<String> {
        let _one = self.change();
        self.publish_statuses();
        self.worker.shutdown()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Problem;

    #[test]
    fn names_are_checked_and_problems_name_their_key() {
        assert!(check_name("lines-in.v2_x").is_ok());
        for bad in ["", "a/b", "a b", "über"] {
            let Err(Error::BadRequest(m)) = check_name(bad) else {
                panic!("{bad:?} was accepted");
            };
            assert!(m.starts_with("`name`"), "{m}");
        }
        let mut p = Problems::default();
        p.push(Problem::new(
            Path::new("config"),
            None,
            Some("file"),
            "is required",
        ));
        p.push(Problem::new(
            Path::new("config"),
            None,
            None,
            "validate crashed",
        ));
        assert_eq!(
            problem_lines(&p),
            vec!["`file`: is required", "validate crashed"]
        );
        let Error::BadRequest(m) = invalid(&p) else {
            panic!()
        };
        assert!(
            m.starts_with("Connector configuration is invalid and contains the following 2 error(s):\n`file`: is required\n"),
            "{m}"
        );
    }
}
