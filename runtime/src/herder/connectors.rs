//! Creating, reconfiguring and deleting connectors: each change checked,
//! stored, then applied to the running tasks.

use super::errors::{check_name, invalid, not_found, Error, Result};
use super::{ConnectorInfo, Herder, Managed, Origin};
use crate::config::{ConnectorConfig, Problems};
use crate::store::{StatusKey, StoredConnector, TargetState};
use crate::worker::Worker;
use std::collections::BTreeMap;
use std::path::Path;

impl Herder {
    /// Checks a config as submitted against its plugin and the worker; one
    /// not `trusted` (not a connector file given at start) also against
    /// what the worker lets a connector created over REST reach.
    pub(super) fn check(
        &self,
        name: &str,
        raw: &BTreeMap<String, String>,
        trusted: bool,
    ) -> Result<ConnectorConfig> {
        let providers = if trusted {
            &self.providers
        } else {
            &self.reach.providers
        };
        let mut config = ConnectorConfig::from_map(
            Path::new("config"),
            name,
            raw,
            providers,
            self.registry.as_ref(),
        )
        .map_err(|p| invalid(&p))?;
        config.trusted = trusted;
        // Before librdkafka sees the overrides: setting some of them (a
        // plugin library) is enough to load code.
        let refused = if trusted {
            Vec::new()
        } else {
            self.reach.check(&config)
        };
        let overrides = if refused.is_empty() {
            Worker::check_client_settings(&config)
        } else {
            refused
        };
        if !overrides.is_empty() {
            let mut problems = Problems::default();
            // The refusals quote paths and values: one from a placeholder
            // is named by the placeholder.
            for (k, m) in overrides {
                problems.push(crate::config::Problem::new(
                    Path::new("config"),
                    None,
                    Some(&k),
                    config.mask(&m),
                ));
            }
            return Err(invalid(&problems));
        }
        Ok(config)
    }

    /// Refuses a connector created or reconfigured over REST that would
    /// take the worker past `connectors.max` or `tasks.max.total`. A change
    /// that adds no connector and no task is never refused.
    fn check_limits(&self, name: &str, config: &ConnectorConfig) -> Result<()> {
        let worker = self.worker.config();
        let state = self.lock();
        let tasks_of = |m: &Managed| {
            m.config
                .as_ref()
                .map_or(m.tasks.len(), |c| c.runtime.tasks_max as usize)
        };
        let before = state.get(name).map(tasks_of);
        if before.is_none() && state.len() >= worker.connectors_max {
            return Err(Error::BadRequest(format!(
                "the worker runs {} connectors, as many as its `connectors.max` allows: delete one, or raise `connectors.max` in the worker config (one connector costs: docs/benchmarks.md)",
                state.len()
            )));
        }
        let others: usize = state
            .iter()
            .filter(|(n, _)| n.as_str() != name)
            .map(|(_, m)| tasks_of(m))
            .sum();
        let wanted = config.runtime.tasks_max as usize;
        if others + wanted > worker.tasks_max_total && wanted > before.unwrap_or(0) {
            return Err(Error::InvalidConfig(vec![format!(
                "`tasks.max`: {wanted} tasks and the {others} of the other connectors make {}, more than the worker's `tasks.max.total` of {}: lower `tasks.max`, or raise `tasks.max.total` in the worker config",
                others + wanted,
                worker.tasks_max_total
            )]));
        }
        Ok(())
    }

    /// Creates a connector; [`Error::ConnectorExists`] when the name is
    /// taken.
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
            return Err(Error::ConnectorExists(name.to_owned()));
        }
        let config = self.check(name, &raw, false)?;
        self.check_limits(name, &config)?;
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
                trusted: false,
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
        let config = self.check(name, &raw, false)?;
        self.check_limits(name, &config)?;
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
                trusted: false,
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
        if existing.is_some() {
            self.forget_unread_secrets();
        }
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
                return Err(Error::NameMismatch {
                    config: n.clone(),
                    request: name.to_owned(),
                });
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
        drop(written);
        // Secrets only it read are no longer cached or checked.
        self.forget_unread_secrets();
        tracing::info!(connector = name, "connector deleted");
        Ok(())
    }

    /// Lets the providers forget the secrets no connector's config reads
    /// any more (after a delete, or a config that stopped reading one).
    fn forget_unread_secrets(&self) {
        let still: Vec<String> = self
            .lock()
            .values()
            .flat_map(|m| m.raw.values().cloned())
            // The worker's own Kafka login reads secrets too.
            .chain(self.worker.cluster().security().written_login())
            .collect();
        let still: Vec<&str> = still.iter().map(String::as_str).collect();
        self.providers.forget_unread(&still);
    }
}
