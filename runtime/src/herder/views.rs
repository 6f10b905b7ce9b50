//! What the herder shows of its connectors: configs with secrets hidden,
//! task configs, and statuses (which it also publishes to the store).

use super::errors::{not_found, Error, Result};
use super::{Herder, Managed, Origin};
use crate::contract::ConnectorKind;
use crate::store::{ConnectorState, StatusKey, StatusRecord, TargetState};
use crate::worker::TaskState;
use std::collections::BTreeMap;

pub use crate::config::HIDDEN;

/// A connector's identity, config and tasks (Kafka Connect's ConnectorInfo).
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectorInfo {
    pub name: String,
    /// As submitted, with `name`; secret values hidden
    /// ([`crate::config::shown_config_value`]).
    pub config: BTreeMap<String, String>,
    pub tasks: Vec<u32>,
    pub kind: Option<ConnectorKind>,
}

/// A connector's status (Kafka Connect's ConnectorStateInfo).
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectorStatus {
    pub name: String,
    pub connector: ConnectorState,
    pub tasks: Vec<(u32, ConnectorState)>,
    pub kind: Option<ConnectorKind>,
}

impl Herder {
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
                // Written as placeholders, they are looked up by their
                // values (which are not shown), through the providers the
                // connector may use (a REST connector's are limited).
                let providers = if m.trusted {
                    &self.providers
                } else {
                    &self.reach.providers
                };
                let resolve = |v: &String| providers.resolve(v).ok();
                let version = m.raw.get("connector.plugin.version").map(resolve);
                crate::config::Catalog::describe(
                    self.registry.as_ref(),
                    &resolve(class)?,
                    version.flatten().as_deref(),
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
                let shown = crate::config::shown_config_value(k, v, secret.contains(&k.as_str()));
                (k.clone(), shown)
            })
            .collect();
        out.insert("name".into(), name.to_owned());
        out
    }

    /// A connector's config as submitted, with `name`; secret values are
    /// hidden, placeholders show as written
    /// ([`crate::config::shown_config_value`]).
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
        // the value it resolved to; any other value the connector derived
        // from one shows the placeholder where the value was.
        let shown = |(k, v): &(String, String)| match m.raw.get(k) {
            Some(raw) if raw.contains("${") => (k.clone(), raw.clone()),
            _ => match &m.config {
                Ok(c) => (k.clone(), c.mask(v)),
                Err(_) => (k.clone(), v.clone()),
            },
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
        // A config that no longer passes fails the connector whatever its
        // target; a failed split only while it should run.
        let connector = match (invalid, &failed, target) {
            (Some(reason), _, _) => ConnectorState::Failed(reason),
            (None, Some(reason), TargetState::Running) => ConnectorState::Failed(reason.clone()),
            _ => target.into(),
        };
        let tasks = match target {
            TargetState::Stopped => Vec::new(),
            TargetState::Paused => (0..n).map(|i| (i, ConnectorState::Paused)).collect(),
            TargetState::Running => {
                let running = self.worker.task_statuses(name);
                (0..n)
                    .map(|i| {
                        let s = match running.iter().find(|s| s.task == i).map(|s| &s.state) {
                            Some(TaskState::Running) => ConnectorState::Running,
                            Some(TaskState::Failed(reason)) => {
                                ConnectorState::Failed(reason.clone())
                            }
                            Some(TaskState::Stopped) | None => ConnectorState::Unassigned,
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

    pub fn task_status(&self, name: &str, task: u32) -> Result<ConnectorState> {
        let status = self.status(name)?;
        status
            .tasks
            .into_iter()
            .find(|(i, _)| *i == task)
            .map(|(_, s)| s)
            .ok_or_else(|| Error::NoTaskStatus {
                connector: name.to_owned(),
                task,
            })
    }

    /// Writes the statuses that changed since the last call to the store
    /// (the status topic). Called periodically.
    pub fn publish_statuses(&self) {
        let mut now: BTreeMap<StatusKey, StatusRecord> = BTreeMap::new();
        for name in self.connectors() {
            let Ok(status) = self.status(&name) else {
                continue;
            };
            let record = |s: &ConnectorState| StatusRecord {
                state: s.clone(),
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
}
