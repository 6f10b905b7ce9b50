//! Bringing connectors up at start, making their tasks follow the target
//! state, restarting them, and stopping everything at shutdown.

use super::errors::{not_found, Error, Result};
use super::{FileConnector, Herder, Managed, Origin};
use crate::store::{StoredConnector, TargetState};
use crate::worker::TaskState;
use std::collections::BTreeMap;

impl Herder {
    /// Brings up the connectors at start: those stored by an earlier run,
    /// and those of the files given (each file's config replaces the stored
    /// one of the same name; a stored target state is kept).
    pub fn start_up(&self, files: Vec<FileConnector>) -> Result<()> {
        let _one = self.change();
        let stored = self.store.connectors();
        let mut plan: BTreeMap<String, Managed> = BTreeMap::new();
        for (name, s) in &stored {
            let config = self
                .check(name, &s.config, false)
                .map_err(|e| e.to_string());
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
                    trusted: false,
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
                    trusted: true,
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
    pub(super) fn apply(&self, name: &str) {
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

    pub(super) fn stop_tasks(&self, name: &str, only: Option<u32>) {
        let late = self.worker.stop_tasks(name, only);
        if !late.is_empty() {
            tracing::warn!(
                connector = name,
                "tasks did not stop within task.shutdown.graceful.timeout.ms: {}",
                late.join(", ")
            );
        }
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
        let (target, mut failed, raw, invalid, trusted) = {
            let state = self.lock();
            let m = state.get(name).ok_or_else(|| not_found(name))?;
            (
                m.target,
                m.failed.is_some(),
                m.raw.clone(),
                m.config.is_err(),
                m.trusted,
            )
        };
        if invalid {
            // It failed its checks (a secret missing at start, say): check
            // it again; the restart starts it if it passes now.
            let config = self.check(name, &raw, trusted).map_err(|e| e.to_string());
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
                .ok_or_else(|| Error::UnknownTask {
                    connector: name.to_owned(),
                    task,
                })?;
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
                return Err(Error::UnknownTask {
                    connector: name.to_owned(),
                    task,
                });
            }
            m.target
        };
        if target != TargetState::Running {
            return Ok(());
        }
        self.restart_one(name, task)
    }

    /// Stops every task (at shutdown); the target states stay as stored.
    pub fn shutdown(&self) -> Vec<String> {
        let _one = self.change();
        self.publish_statuses();
        self.worker.shutdown()
    }
}
