//! A rotated secret reaching the connectors that read it: credentials
//! renewed under the running tasks, or the tasks restarted when the secret
//! is not a credential.

use super::Herder;
use crate::config::ConnectorConfig;
use std::collections::BTreeMap;

impl Herder {
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
            let trusted = self.lock().get(&name).is_some_and(|m| m.trusted);
            let config = match self.check(&name, &raw, trusted) {
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
}
