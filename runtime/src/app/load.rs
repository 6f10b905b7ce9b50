//! Loading: providers → worker config → engine → registry → connector
//! configs → checks, with every problem collected before anything starts.

use super::Error;
use crate::config::{ConnectorConfig, Problem, Problems, Providers, WorkerConfig};
use crate::kafka::check_property;
use crate::plugin::{PluginEngine, PluginRegistry};
use crate::worker::Worker;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Worker config, plugin registry and connector configs, checked.
pub(super) struct Loaded {
    pub worker: Arc<WorkerConfig>,
    pub registry: Arc<PluginRegistry>,
    pub providers: Providers,
    pub secrets_manager: Arc<crate::secrets::SecretsManager>,
    pub connectors: Vec<ConnectorConfig>,
    /// Connectors whose config is right but a secret it names cannot be
    /// had now (missing, access denied): they fail alone, the others start.
    pub unavailable: Vec<Unavailable>,
}

/// A connector file that cannot run now, and why.
pub struct Unavailable {
    pub name: String,
    pub file: PathBuf,
    pub problems: Problems,
}

pub(super) fn load(
    worker_file: Option<&Path>,
    connector_files: &[PathBuf],
) -> Result<Loaded, Error> {
    let mut problems = Problems::default();
    // The provider settings come first (with `env` placeholders only):
    // the other keys may need the providers they set up.
    let bootstrap = match worker_file {
        Some(f) => WorkerConfig::load_lenient(f, &Providers::default()).0,
        None => WorkerConfig::defaults(),
    };
    let (providers, secrets_manager) =
        crate::secrets::providers(&bootstrap).map_err(Error::Start)?;
    let worker = match worker_file {
        Some(f) => {
            let (worker, p) = WorkerConfig::load_lenient(f, &providers);
            problems.extend(p);
            worker
        }
        None => bootstrap,
    };
    let engine = PluginEngine::new(&worker.plugin_cache_dir)
        .map_err(|e| Error::Start(format!("starting the WebAssembly engine: {e:#}")))?;
    let registry = PluginRegistry::load(&engine, &worker.plugin_path);
    let mut connectors = Vec::new();
    let mut unavailable = Vec::new();
    for file in connector_files {
        match ConnectorConfig::load(file, &providers, &registry) {
            Ok(c) => connectors.push(c),
            // A secret that cannot be had now fails the connector alone
            // (other problems of it may follow from the missing value).
            Err(p) => match p.any_unavailable().then(|| file_name(file)).flatten() {
                Some(name) => unavailable.push(Unavailable {
                    name,
                    file: file.clone(),
                    problems: p,
                }),
                None => problems.extend(p),
            },
        }
    }
    check_client_properties(worker_file, &worker, &connectors, &mut problems);
    if let Some(file) = worker_file {
        check_kafka_security(file, &worker, &providers, &mut problems);
    }
    let mut names: Vec<&str> = connectors
        .iter()
        .map(|c| c.name.as_str())
        .chain(unavailable.iter().map(|u| u.name.as_str()))
        .collect();
    names.sort();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::Start(format!(
            "two connector files use the name `{}`; names must be unique",
            w[0]
        )));
    }
    if !problems.is_empty() {
        return Err(Error::Config(problems));
    }
    Ok(Loaded {
        worker: Arc::new(worker),
        registry: Arc::new(registry),
        providers,
        secrets_manager,
        connectors,
        unavailable,
    })
}

/// librdkafka's own properties and patterns, checked now rather than at
/// task start: the worker file's `producer.*` and `consumer.*`, and each
/// connector's client settings ([`Worker::check_client_settings`]).
fn check_client_properties(
    worker_file: Option<&Path>,
    worker: &WorkerConfig,
    connectors: &[ConnectorConfig],
    problems: &mut Problems,
) {
    if let Some(file) = worker_file {
        let lines = &worker.property_lines;
        for (prefix, props) in [
            ("producer.", &worker.producer),
            ("consumer.", &worker.consumer),
        ] {
            for (name, value) in props {
                if let Err(e) = check_property(name, value) {
                    let key = format!("{prefix}{name}");
                    problems.push(Problem::new(file, lines.get(&key).copied(), Some(&key), e));
                }
            }
        }
    }
    for c in connectors {
        for (key, message) in Worker::check_client_settings(c) {
            let line = c.runtime.property_lines.get(&key).copied();
            problems.push(Problem::new(&c.file, line, Some(&key), message));
        }
    }
}

/// The worker's Kafka security keys, as librdkafka will take them when the
/// first client is made: each problem names the key as written and its
/// line, never a secret's value.
fn check_kafka_security(
    file: &Path,
    worker: &WorkerConfig,
    providers: &Providers,
    problems: &mut Problems,
) {
    let written = &worker.kafka_security.0;
    if written.is_empty() || worker.bootstrap_servers.is_none() {
        return;
    }
    let security = match crate::kafka::Security::new(written, providers) {
        Ok(s) => s,
        Err(e) => {
            // A placeholder that does not resolve is already a problem;
            // anything else (a `sasl.jaas.config` line that cannot be
            // read) is one now. Errors name the key first and never quote
            // a value.
            if !e.contains("placeholder `$") {
                let (key, message) = e.split_once(": ").unwrap_or(("sasl.jaas.config", &e));
                let line = worker.property_lines.get(key).copied();
                problems.push(Problem::new(file, line, Some(key), message));
            }
            return;
        }
    };
    let props = security.properties();
    let secrets: Vec<&str> = ["sasl.password", "ssl.key.password", "ssl.keystore.password"]
        .iter()
        .filter_map(|k| props.get(*k))
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .collect();
    for (property, message) in crate::kafka::check_security(&props) {
        // Back to the key the file uses.
        let key = match property.as_str() {
            "sasl.mechanisms" if written.contains_key("sasl.mechanism") => "sasl.mechanism",
            "sasl.username" | "sasl.password" if written.contains_key("sasl.jaas.config") => {
                "sasl.jaas.config"
            }
            other => other,
        };
        let message = secrets
            .iter()
            .fold(message, |m, secret| m.replace(secret, "(secret)"));
        let line = worker.property_lines.get(key).copied();
        problems.push(Problem::new(file, line, Some(key), message));
    }
}

/// The `name` of a connector file, as written.
fn file_name(file: &Path) -> Option<String> {
    crate::config::yaml::load_flat(file)
        .ok()?
        .into_iter()
        .find(|e| e.key == "name")?
        .value
        .to_config_string()
}

/// A connector file's config as written: `config.*` keys with their values
/// as strings, placeholders unresolved (what the config store keeps).
pub(super) fn raw_config(file: &Path) -> Result<BTreeMap<String, String>, Error> {
    let entries = crate::config::yaml::load_flat(file).map_err(Error::Config)?;
    Ok(entries
        .into_iter()
        .filter_map(|e| {
            let key = e.key.strip_prefix("config.")?.to_owned();
            Some((key, e.value.to_config_string()?))
        })
        .collect())
}
