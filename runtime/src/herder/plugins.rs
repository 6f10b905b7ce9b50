//! The plugins a worker offers, and validating a config against one
//! without creating anything (`PUT /connector-plugins/{plugin}/config/validate`).

use super::errors::{Error, Result};
use super::Herder;
use crate::config::{ConnectorConfig, Problems};
use crate::contract::{Description, KeySpec};
use crate::worker::Worker;
use std::collections::BTreeMap;
use std::path::Path;

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

impl Herder {
    /// Every connector plugin (name, version, kind), sorted.
    pub fn plugins(&self) -> Vec<Description> {
        self.registry
            .connectors()
            .into_iter()
            .map(|(_, d)| d.clone())
            .collect()
    }

    /// A plugin's newest description; [`Error::UnknownPlugin`] when none
    /// has that name.
    pub fn plugin(&self, name: &str) -> Result<Description> {
        self.registry
            .find(name, None)
            .map(|(_, d)| d)
            .map_err(|_| Error::UnknownPlugin(name.to_owned()))
    }

    /// Validates `raw` for `plugin` without creating anything.
    pub fn validate(&self, plugin: &str, mut raw: BTreeMap<String, String>) -> Result<Validation> {
        if let Some(class) = raw.get("connector.class") {
            if class != plugin {
                return Err(Error::ClassMismatch {
                    class: class.clone(),
                    plugin: plugin.to_owned(),
                });
            }
        }
        let description = self
            .registry
            .find(
                plugin,
                raw.get("connector.plugin.version").map(String::as_str),
            )
            .map_err(|e| Error::BadRequest(format!("`connector.class`: {e}")))?;
        raw.insert("connector.class".into(), plugin.to_owned());
        let name = raw.remove("name").unwrap_or_else(|| "validate".into());
        // Validated as a connector created over REST would be.
        let problems = match ConnectorConfig::from_map(
            Path::new("config"),
            &name,
            &raw,
            &self.reach.providers,
            self.registry.as_ref(),
        ) {
            Ok(c) => {
                let mut p = Problems::default();
                // librdkafka sees only overrides the worker allows: setting
                // some (a plugin library) is enough to load code.
                let refused = self.reach.check(&c);
                let objections = if refused.is_empty() {
                    Worker::check_client_settings(&c)
                } else {
                    refused
                };
                for (k, m) in objections {
                    p.push(crate::config::Problem::new(
                        Path::new("config"),
                        None,
                        Some(&k),
                        c.mask(&m),
                    ));
                }
                p
            }
            Err(p) => p,
        };
        let description = description.1;
        let mut keys: Vec<KeyValidation> = Vec::new();
        let secret = |k: &str| description.keys.iter().any(|s| s.name == k && s.secret);
        let shown = |k: &str, v: &String| crate::config::shown_config_value(k, v, secret(k));
        for spec in &description.keys {
            keys.push(KeyValidation {
                spec: Some(spec.clone()),
                name: spec.name.clone(),
                value: raw
                    .get(&spec.name)
                    .map(|v| shown(&spec.name, v))
                    .or_else(|| spec.default.clone().filter(|_| !spec.secret)),
                errors: Vec::new(),
            });
        }
        // Each key's place in `keys`, so that a config of many keys is
        // checked in one pass.
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        for (i, kv) in keys.iter().enumerate() {
            index.entry(kv.name.clone()).or_insert(i);
        }
        for (k, v) in &raw {
            if !index.contains_key(k) {
                index.insert(k.clone(), keys.len());
                keys.push(KeyValidation {
                    spec: None,
                    name: k.clone(),
                    value: Some(shown(k, v)),
                    errors: Vec::new(),
                });
            }
        }
        let mut error_count = 0;
        for p in &problems.0 {
            let key = p.key.clone().unwrap_or_else(|| "connector.class".into());
            error_count += 1;
            match index.get(&key) {
                Some(&i) => keys[i].errors.push(p.message.clone()),
                None => {
                    index.insert(key.clone(), keys.len());
                    keys.push(KeyValidation {
                        spec: None,
                        name: key,
                        value: None,
                        errors: vec![p.message.clone()],
                    });
                }
            }
        }
        Ok(Validation {
            plugin: plugin.to_owned(),
            error_count,
            keys,
        })
    }
}
