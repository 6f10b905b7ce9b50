//! A connector's config file, checked against the worker's own keys and the
//! connector's description.
//!
//! The file has Kafka Connect's REST shape, so an existing connector JSON
//! loads unchanged:
//!
//! ```yaml
//! name: lines-in
//! config:
//!   connector.class: file-source
//!   tasks.max: 1
//!   file: data/input.txt
//!   topic: lines
//! ```

use super::connection::Connections;
use super::keys::check_value;
use super::store::Stores;
use super::worker::suggest;
use super::yaml::{load_flat, Entry, Value};
use super::{Problem, Problems, Providers};
use crate::contract::{ConfigIssue, ConnectorKind, Description, KeySpec, KeyType};
use secrecy::SecretString;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Keys the worker itself reads from a connector config (Kafka Connect's
/// names), besides `producer.override.*` and `consumer.override.*`.
pub const CONNECTOR_RUNTIME_KEYS: &[(&str, &str)] = &[
    (
        "connector.class",
        "The plugin connector to run, by the name it describes (`tributary plugins`). Required.",
    ),
    (
        "connector.plugin.version",
        "The plugin version to run; the newest found when unset.",
    ),
    (
        "tasks.max",
        "Most tasks to split the work into (default 1).",
    ),
    (
        "topics",
        "Sink connectors: comma-separated topics to consume.",
    ),
    (
        "topics.regex",
        "Sink connectors: a regular expression of topics to consume, instead of `topics`.",
    ),
    (
        "task.memory.max.mb",
        "Overrides the worker's per-task memory limit for this connector.",
    ),
    (
        "errors.tolerance",
        "`none` (default): a record that cannot be written or produced fails the task. `all`: it is skipped (logged, sent to the dead letter queue) and the task goes on.",
    ),
    (
        "errors.retry.timeout",
        "Milliseconds a failing operation (a retriable plugin error, a record the plugin asks to retry) is retried before it counts as failed; -1 (default): retry until it works.",
    ),
    (
        "errors.retry.delay.max.ms",
        "Longest wait between retries (exponential backoff with jitter); default 60000.",
    ),
    (
        "errors.log.enable",
        "Log every tolerated error with its record's topic, partition and offset (default false).",
    ),
    (
        "errors.log.include.messages",
        "Include the record's key and value in those log lines (default false).",
    ),
    (
        "errors.deadletterqueue.topic.name",
        "Topic that receives records skipped under `errors.tolerance=all`, unchanged; empty (default): none.",
    ),
    (
        "errors.deadletterqueue.context.headers.enable",
        "Add `__connect.errors.*` headers (original topic, partition, offset, connector, task, stage, error class and message) to dead-lettered records (default true).",
    ),
    (
        "task.call.timeout.ms",
        "Overrides the worker's per-call deadline for this connector.",
    ),
    (
        "connection.url",
        "A database the connector may use (the connection `default`); `connection.<name>.url` names others. See docs/connectors/database.md for every `connection.*` key.",
    ),
    ("connection.user", "User of the `default` connection."),
    (
        "connection.password",
        "Password of the `default` connection (secret; never passed to the plugin).",
    ),
    (
        "store.bucket",
        "A bucket the connector may use (the store `default`); `store.<name>.bucket` names others. See docs/connectors/s3.md for every `store.*` key.",
    ),
    ("store.region", "Region of the `default` store."),
    ("store.endpoint", "S3-compatible endpoint of the `default` store."),
    ("store.path.style", "Path-style addressing for the `default` store."),
    ("store.access.key.id", "Access key id of the `default` store."),
    (
        "store.secret.access.key",
        "Secret access key of the `default` store (secret; never passed to the plugin).",
    ),
];

/// Where a connector looks up plugins; the plugin registry implements it.
pub trait Catalog {
    /// The description of `class` (at `version`, or the newest), or an error
    /// that lists what is there.
    fn describe(&self, class: &str, version: Option<&str>) -> Result<Description, String>;
    /// Runs the connector's own `validate`. (A `&Vec`, as the generated
    /// bindings take it, saves a copy.)
    #[allow(clippy::ptr_arg)]
    fn validate(
        &self,
        class: &str,
        version: Option<&str>,
        config: &Vec<(String, String)>,
    ) -> Result<Vec<ConfigIssue>, String>;
}

/// A directory the guest may see, at the same path as on the host.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    pub dir: PathBuf,
    pub writable: bool,
}

/// Worker-owned settings of one connector.
#[derive(Clone, Debug, Default)]
pub struct RuntimeKeys {
    pub tasks_max: u32,
    pub topics: Vec<String>,
    pub topics_regex: Option<String>,
    pub producer_overrides: BTreeMap<String, String>,
    pub consumer_overrides: BTreeMap<String, String>,
    /// Most records in one `put` of this connector's sink tasks
    /// (`consumer.override.max.poll.records`, Kafka Connect's name);
    /// `None`: the worker's `sink.batch.max.records`.
    pub sink_batch_max_records: Option<usize>,
    /// Line of each `producer.override.*` / `consumer.override.*` key.
    pub property_lines: BTreeMap<String, usize>,
    pub task_memory_max_bytes: Option<u64>,
    pub task_call_timeout: Option<Duration>,
    pub errors: ErrorSettings,
    /// Database connections (`connection.*`), opened by the worker.
    pub connections: Connections,
    /// Object stores (`store.*`), opened by the worker.
    pub stores: Stores,
}

/// Kafka Connect's `errors.*` settings of one connector.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorSettings {
    /// `errors.tolerance=all`.
    pub tolerate_all: bool,
    /// `None`: retry until it works.
    pub retry_timeout: Option<Duration>,
    pub retry_delay_max: Duration,
    pub log: bool,
    pub log_messages: bool,
    pub dlq_topic: Option<String>,
    pub dlq_context_headers: bool,
}

impl Default for ErrorSettings {
    fn default() -> Self {
        ErrorSettings {
            tolerate_all: false,
            retry_timeout: None,
            retry_delay_max: Duration::from_secs(60),
            log: false,
            log_messages: false,
            dlq_topic: None,
            dlq_context_headers: true,
        }
    }
}

/// A connector config that passed every check.
#[derive(Clone, Debug)]
pub struct ConnectorConfig {
    pub name: String,
    pub file: PathBuf,
    pub description: Description,
    pub runtime: RuntimeKeys,
    /// What the guest receives: its declared keys, with defaults filled in,
    /// secrets left out.
    pub plugin_config: Vec<(String, String)>,
    /// Secret keys, for host capabilities only. Never logged or shown.
    pub secret_config: BTreeMap<String, SecretString>,
    /// Keys whose value held a placeholder, as written: what a rotated
    /// secret is resolved from again.
    pub placeholders: BTreeMap<String, String>,
    /// Directories granted to the guest (from its file and dir keys).
    pub grants: Vec<Grant>,
}

impl ConnectorConfig {
    /// Reads and checks a connector file; every problem at once.
    pub fn load(
        file: &Path,
        providers: &Providers,
        catalog: &dyn Catalog,
    ) -> Result<ConnectorConfig, Problems> {
        let entries = load_flat(file)?;
        ConnectorConfig::from_entries(file, entries, providers, catalog)
    }

    /// Checks a connector given in Kafka Connect's REST form: a name and a
    /// flat map of string values as submitted (placeholders unresolved).
    /// `origin` stands for the file in problems; they carry no line.
    pub fn from_map(
        origin: &Path,
        name: &str,
        config: &BTreeMap<String, String>,
        providers: &Providers,
        catalog: &dyn Catalog,
    ) -> Result<ConnectorConfig, Problems> {
        let mut entries = vec![Entry {
            key: "name".into(),
            value: Value::Str(name.to_owned()),
            line: 0,
        }];
        entries.extend(config.iter().map(|(k, v)| Entry {
            key: format!("config.{k}"),
            value: Value::Str(v.clone()),
            line: 0,
        }));
        ConnectorConfig::from_entries(origin, entries, providers, catalog)
    }

    pub fn from_entries(
        file: &Path,
        entries: Vec<Entry>,
        providers: &Providers,
        catalog: &dyn Catalog,
    ) -> Result<ConnectorConfig, Problems> {
        let mut problems = Problems::default();
        let mut name: Option<String> = None;
        let mut config_line = None;
        // key -> (resolved value, line)
        let mut raw: BTreeMap<String, (String, usize)> = BTreeMap::new();
        let mut placeholder_keys = BTreeMap::new();
        for entry in entries {
            if entry.key == "name" {
                match entry.value.to_config_string() {
                    Some(n) if valid_name(&n) => name = Some(n),
                    _ => problems.push(Problem::new(
                        file,
                        Some(entry.line),
                        Some("name"),
                        "must be a non-empty name of letters, digits, `.`, `_` and `-`",
                    )),
                }
            } else if let Some(key) = entry.key.strip_prefix("config.") {
                config_line.get_or_insert(entry.line);
                let Some(value) = entry.value.to_config_string() else {
                    continue;
                };
                if !super::placeholders(&value).unwrap_or_default().is_empty() {
                    placeholder_keys.insert(key.to_owned(), value.clone());
                }
                match providers.resolve(&value) {
                    Ok(v) => {
                        raw.insert(key.to_owned(), (v, entry.line));
                    }
                    Err(e) => problems.push(Problem::placeholder(file, Some(entry.line), key, e)),
                }
            } else if entry.key == "config" {
                config_line.get_or_insert(entry.line);
            } else {
                problems.push(Problem::new(
                    file,
                    Some(entry.line),
                    Some(&entry.key),
                    "unknown top-level key: a connector file holds `name` and `config` (Kafka Connect's REST body)",
                ));
            }
        }
        if name.is_none() && !problems.0.iter().any(|p| p.key.as_deref() == Some("name")) {
            problems.push(Problem::new(file, None, Some("name"), "is required"));
        }

        let Some((class, class_line)) = raw.remove("connector.class") else {
            problems.push(Problem::new(
                file,
                config_line,
                Some("connector.class"),
                "is required: the plugin connector to run",
            ));
            return Err(problems);
        };
        let version = raw.remove("connector.plugin.version").map(|(v, _)| v);
        let description = match catalog.describe(&class, version.as_deref()) {
            Ok(d) => d,
            Err(e) => {
                problems.push(Problem::new(
                    file,
                    Some(class_line),
                    Some("connector.class"),
                    e,
                ));
                return Err(problems);
            }
        };

        let mut runtime = RuntimeKeys {
            tasks_max: 1,
            ..RuntimeKeys::default()
        };
        let mut plugin_config = Vec::new();
        let mut secret_config = BTreeMap::new();
        let mut grants = Vec::new();
        let mut seen_plugin_keys = Vec::new();
        for (key, (value, line)) in &raw {
            let at = |message: String| Problem::new(file, Some(*line), Some(key), message);
            if let Some(spec) = description.keys.iter().find(|s| &s.name == key) {
                seen_plugin_keys.push(key.clone());
                match check_value(spec, value) {
                    Ok(v) => {
                        if let Some(grant) = grant_for(spec, &v) {
                            grants.push(grant);
                        }
                        if spec.secret {
                            secret_config.insert(key.clone(), SecretString::from(v));
                        } else {
                            plugin_config.push((key.clone(), v));
                        }
                    }
                    Err(e) => problems.push(at(e)),
                }
                continue;
            }
            if key.starts_with("producer.override.") || key.starts_with("consumer.override.") {
                runtime.property_lines.insert(key.clone(), *line);
            }
            if let Some(rest) = key.strip_prefix("connection.") {
                if let Err(e) = runtime.connections.set(rest, value) {
                    problems.push(at(e));
                }
                continue;
            }
            if let Some(rest) = key.strip_prefix("store.") {
                if let Err(e) = runtime.stores.set(rest, value) {
                    problems.push(at(e));
                }
                continue;
            }
            if let Some(prop) = key.strip_prefix("producer.override.") {
                runtime
                    .producer_overrides
                    .insert(prop.to_owned(), value.clone());
                continue;
            }
            let number = |min: i64| -> Result<i64, String> {
                match value.trim().parse::<i64>() {
                    Ok(n) if n >= min => Ok(n),
                    _ => Err(format!(
                        "expects an integer of at least {min}, got {value:?}"
                    )),
                }
            };
            if key == "consumer.override.max.poll.records" {
                // A Java consumer's property, not librdkafka's: the size of
                // the batches this connector's sink tasks get.
                match number(1) {
                    Ok(n) => runtime.sink_batch_max_records = Some(n.min(1 << 20) as usize),
                    Err(e) => problems.push(at(e)),
                }
                continue;
            }
            if let Some(prop) = key.strip_prefix("consumer.override.") {
                runtime
                    .consumer_overrides
                    .insert(prop.to_owned(), value.clone());
                continue;
            }
            let outcome = match key.as_str() {
                "tasks.max" => number(1).map(|n| runtime.tasks_max = n.min(1024) as u32),
                "topics" => {
                    runtime.topics = value
                        .split(',')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(String::from)
                        .collect();
                    Ok(())
                }
                "topics.regex" => {
                    runtime.topics_regex = Some(value.clone());
                    Ok(())
                }
                "task.memory.max.mb" => {
                    number(1).map(|n| runtime.task_memory_max_bytes = Some((n as u64) << 20))
                }
                "task.call.timeout.ms" => number(1)
                    .map(|n| runtime.task_call_timeout = Some(Duration::from_millis(n as u64))),
                "errors.tolerance" => match value.trim() {
                    "none" | "all" => {
                        runtime.errors.tolerate_all = value.trim() == "all";
                        Ok(())
                    }
                    _ => Err(format!("expects `none` or `all`, got {value:?}")),
                },
                "errors.retry.timeout" => number(-1).map(|n| {
                    runtime.errors.retry_timeout = (n >= 0).then(|| Duration::from_millis(n as u64))
                }),
                "errors.retry.delay.max.ms" => number(1)
                    .map(|n| runtime.errors.retry_delay_max = Duration::from_millis(n as u64)),
                "errors.log.enable" => boolean(value).map(|b| runtime.errors.log = b),
                "errors.log.include.messages" => {
                    boolean(value).map(|b| runtime.errors.log_messages = b)
                }
                "errors.deadletterqueue.topic.name" => {
                    runtime.errors.dlq_topic =
                        Some(value.trim().to_owned()).filter(|t| !t.is_empty());
                    Ok(())
                }
                "errors.deadletterqueue.context.headers.enable" => {
                    boolean(value).map(|b| runtime.errors.dlq_context_headers = b)
                }
                _ => {
                    let known = description
                        .keys
                        .iter()
                        .map(|s| s.name.as_str())
                        .chain(CONNECTOR_RUNTIME_KEYS.iter().map(|(k, _)| *k));
                    Err(format!(
                        "unknown key for connector `{}` {}{}",
                        description.name,
                        description.version,
                        suggest(key, known)
                    ))
                }
            };
            if let Err(e) = outcome {
                problems.push(at(e));
            }
        }

        for (key, message) in runtime.connections.check() {
            let line = raw.get(&key).map(|(_, l)| *l).or(config_line);
            problems.push(Problem::new(file, line, Some(&key), message));
        }

        for (key, message) in runtime.stores.check() {
            let line = raw.get(&key).map(|(_, l)| *l).or(config_line);
            problems.push(Problem::new(file, line, Some(&key), message));
        }

        for spec in &description.keys {
            if seen_plugin_keys.contains(&spec.name) {
                continue;
            }
            match &spec.default {
                Some(default) => match check_value(spec, default) {
                    Ok(v) => {
                        if let Some(grant) = grant_for(spec, &v) {
                            grants.push(grant);
                        }
                        if !spec.secret {
                            plugin_config.push((spec.name.clone(), v));
                        }
                    }
                    Err(e) => problems.push(Problem::new(
                        file,
                        config_line,
                        Some(&spec.name),
                        format!("default value: {e}"),
                    )),
                },
                None => problems.push(Problem::new(
                    file,
                    config_line,
                    Some(&spec.name),
                    format!("is required by `{}`: {}", description.name, spec.doc),
                )),
            }
        }

        if description.kind == ConnectorKind::Sink {
            match (&runtime.topics_regex, runtime.topics.is_empty()) {
                (None, true) => problems.push(Problem::new(
                    file,
                    config_line,
                    Some("topics"),
                    "a sink needs `topics` or `topics.regex`",
                )),
                (Some(_), false) => problems.push(Problem::new(
                    file,
                    config_line,
                    Some("topics"),
                    "set `topics` or `topics.regex`, not both",
                )),
                _ => {}
            }
        } else if !runtime.topics.is_empty() || runtime.topics_regex.is_some() {
            problems.push(Problem::new(
                file,
                config_line,
                Some("topics"),
                "only sink connectors consume topics",
            ));
        }

        if problems.is_empty() {
            match catalog.validate(
                &description.name,
                Some(&description.version),
                &plugin_config,
            ) {
                Ok(issues) => {
                    for issue in issues {
                        let line = raw.get(&issue.key).map(|(_, l)| *l).or(config_line);
                        problems.push(Problem::new(file, line, Some(&issue.key), issue.message));
                    }
                }
                Err(e) => problems.push(Problem::new(
                    file,
                    config_line,
                    None,
                    format!("the connector's validate failed: {e}"),
                )),
            }
        }

        grants.sort();
        grants.dedup();
        // A directory granted read-write need not also be granted read-only.
        let writable: Vec<PathBuf> = grants
            .iter()
            .filter(|g| g.writable)
            .map(|g| g.dir.clone())
            .collect();
        grants.retain(|g| g.writable || !writable.contains(&g.dir));

        let config = ConnectorConfig {
            name: name.unwrap_or_default(),
            file: file.to_path_buf(),
            description,
            runtime,
            plugin_config,
            secret_config,
            placeholders: placeholder_keys,
            grants,
        };
        problems.into_result(config)
    }
}

/// Fields of a connection or store that a host capability swaps under
/// running tasks when their secret rotates (a new pool or client); any
/// other key that changes restarts the connector's tasks.
const RENEWABLE_FIELDS: &[(&str, &[&str])] = &[
    ("connection", &["url", "user", "password"]),
    (
        "store",
        &["access.key.id", "secret.access.key", "session.token"],
    ),
];

impl ConnectorConfig {
    /// The connection or store (`kind`: `connection` or `store`) a key such
    /// as `connection.password` or `store.backup.bucket` belongs to, and
    /// the field.
    fn owner<'a>(key: &'a str, kind: &str) -> Option<(&'a str, &'static str)> {
        let rest = key.strip_prefix(kind)?.strip_prefix('.')?;
        let fields = if kind == "connection" {
            super::connection::CONNECTION_FIELDS
        } else {
            super::store::STORE_FIELDS
        };
        super::connection::named_field(kind, rest, fields).ok()
    }

    /// Whether a key a host capability can swap without a task restart
    /// (credentials of a connection or a store).
    pub fn is_renewable(key: &str) -> bool {
        RENEWABLE_FIELDS.iter().any(|(kind, fields)| {
            ConnectorConfig::owner(key, kind).is_some_and(|(_, f)| fields.contains(&f))
        })
    }

    /// Whether any key of connection or store `name` (`kind`: `connection`
    /// or `store`) holds a placeholder.
    pub fn has_placeholders(&self, kind: &str, name: &str) -> bool {
        self.placeholders
            .keys()
            .any(|k| ConnectorConfig::owner(k, kind).is_some_and(|(n, _)| n == name))
    }

    /// Resolves the placeholders of connection or store `name` again
    /// (`force`: past the providers' caches) and applies them to its
    /// settings through `set` (which takes the key without its prefix).
    fn renewed(
        &self,
        kind: &str,
        name: &str,
        providers: &Providers,
        force: bool,
        mut set: impl FnMut(&str, &str) -> Result<(), String>,
    ) -> Result<(), String> {
        for (key, raw) in &self.placeholders {
            if ConnectorConfig::owner(key, kind).is_none_or(|(n, _)| n != name) {
                continue;
            }
            if force {
                providers
                    .refresh(raw)
                    .map_err(|e| format!("`{key}`: {e}"))?;
            }
            let value = providers
                .resolve(raw)
                .map_err(|e| format!("`{key}`: {e}"))?;
            set(&key[kind.len() + 1..], &value).map_err(|e| format!("`{key}`: {e}"))?;
        }
        Ok(())
    }

    /// Connection `name`'s settings with its placeholders resolved again.
    pub fn renewed_connection(
        &self,
        name: &str,
        providers: &Providers,
        force: bool,
    ) -> Result<super::ConnectionSettings, String> {
        let mut connections = super::Connections::default();
        if let Some(s) = self.runtime.connections.0.get(name) {
            connections.0.insert(name.to_owned(), s.clone());
        }
        self.renewed("connection", name, providers, force, |k, v| {
            connections.set(k, v)
        })?;
        connections
            .0
            .remove(name)
            .ok_or_else(|| format!("no connection `{name}`"))
    }

    /// Store `name`'s settings with its placeholders resolved again.
    pub fn renewed_store(
        &self,
        name: &str,
        providers: &Providers,
        force: bool,
    ) -> Result<super::StoreSettings, String> {
        let mut stores = super::Stores::default();
        if let Some(s) = self.runtime.stores.0.get(name) {
            stores.0.insert(name.to_owned(), s.clone());
        }
        self.renewed("store", name, providers, force, |k, v| stores.set(k, v))?;
        stores
            .0
            .remove(name)
            .ok_or_else(|| format!("no store `{name}`"))
    }
}

fn boolean(value: &str) -> Result<bool, String> {
    match value.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("expects true or false, got {value:?}")),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

fn grant_for(spec: &KeySpec, value: &str) -> Option<Grant> {
    let path = PathBuf::from(value);
    match spec.ty {
        KeyType::FileRead => Some(Grant {
            dir: path.parent()?.to_path_buf(),
            writable: false,
        }),
        KeyType::FileWrite => Some(Grant {
            dir: path.parent()?.to_path_buf(),
            writable: true,
        }),
        KeyType::DirRead => Some(Grant {
            dir: path,
            writable: false,
        }),
        KeyType::DirWrite => Some(Grant {
            dir: path,
            writable: true,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::yaml::parse_flat;

    struct OneSource;
    impl Catalog for OneSource {
        fn describe(&self, class: &str, _version: Option<&str>) -> Result<Description, String> {
            if class != "file-source" {
                return Err(format!(
                    "no plugin provides `{class}`; found: file-source 0.1.0"
                ));
            }
            Ok(Description {
                name: "file-source".into(),
                version: "0.1.0".into(),
                kind: ConnectorKind::Source,
                summary: String::new(),
                reads_headers: false,
                keys: vec![
                    KeySpec {
                        name: "file".into(),
                        ty: KeyType::FileRead,
                        default: None,
                        doc: "The file to read.".into(),
                        secret: false,
                    },
                    KeySpec {
                        name: "topic".into(),
                        ty: KeyType::String,
                        default: None,
                        doc: "Target topic.".into(),
                        secret: false,
                    },
                    KeySpec {
                        name: "batch.size".into(),
                        ty: KeyType::Integer,
                        default: Some("2000".into()),
                        doc: String::new(),
                        secret: false,
                    },
                    KeySpec {
                        name: "token".into(),
                        ty: KeyType::String,
                        default: Some("".into()),
                        doc: String::new(),
                        secret: true,
                    },
                ],
            })
        }
        fn validate(
            &self,
            _: &str,
            _: Option<&str>,
            config: &Vec<(String, String)>,
        ) -> Result<Vec<ConfigIssue>, String> {
            Ok(config
                .iter()
                .filter(|(k, v)| k == "topic" && v.starts_with('_'))
                .map(|(k, _)| ConfigIssue {
                    key: k.clone(),
                    message: "topics starting with _ are internal".into(),
                })
                .collect())
        }
    }

    fn load(text: &str) -> Result<ConnectorConfig, Problems> {
        let file = Path::new("c.yaml");
        ConnectorConfig::from_entries(
            file,
            parse_flat(file, text)?,
            &Providers::default(),
            &OneSource,
        )
    }

    #[test]
    fn a_good_config_gets_defaults_and_grants() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.txt");
        let c = load(&format!(
            "name: lines\nconfig:\n  connector.class: file-source\n  file: {}\n  topic: t\n  token: s3cret\n  producer.override.linger.ms: 1\n",
            input.display()
        ))
        .unwrap();
        assert_eq!(c.name, "lines");
        assert_eq!(c.runtime.tasks_max, 1);
        assert_eq!(c.runtime.producer_overrides.get("linger.ms").unwrap(), "1");
        assert!(c
            .plugin_config
            .contains(&("batch.size".into(), "2000".into())));
        assert!(
            !c.plugin_config.iter().any(|(k, _)| k == "token"),
            "secrets never reach the guest"
        );
        assert_eq!(
            secrecy::ExposeSecret::expose_secret(c.secret_config.get("token").unwrap()),
            "s3cret"
        );
        assert_eq!(
            c.grants,
            vec![Grant {
                dir: dir.path().to_path_buf(),
                writable: false
            }]
        );
    }

    #[test]
    fn all_problems_at_once_with_lines() {
        let err = load("name: lines\nconfig:\n  connector.class: file-source\n  batch.size: many\n  tpoic: t\n  tasks.max: 0\n").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("c.yaml:4: `batch.size`: expects an integer, got \"many\""),
            "{text}"
        );
        assert!(text.contains("c.yaml:5: `tpoic`: unknown key for connector `file-source` 0.1.0 (did you mean `topic`?)"), "{text}");
        assert!(
            text.contains("c.yaml:6: `tasks.max`: expects an integer of at least 1"),
            "{text}"
        );
        assert!(
            text.contains("`file`: is required by `file-source`: The file to read."),
            "{text}"
        );
        assert!(text.contains("`topic`: is required"), "{text}");
        assert_eq!(err.0.len(), 5, "{text}");
    }

    #[test]
    fn max_poll_records_sizes_sink_batches_and_stays_out_of_librdkafka() {
        let dir = tempfile::tempdir().unwrap();
        let text = |n: &str| {
            format!(
                "name: lines\nconfig:\n  connector.class: file-source\n  file: {}\n  topic: t\n  consumer.override.max.poll.records: {n}\n  consumer.override.fetch.min.bytes: 10\n",
                dir.path().join("in.txt").display()
            )
        };
        let c = load(&text("10000")).unwrap();
        assert_eq!(c.runtime.sink_batch_max_records, Some(10000));
        assert_eq!(
            c.runtime.consumer_overrides.keys().collect::<Vec<_>>(),
            ["fetch.min.bytes"]
        );
        assert_eq!(
            load(&text("20")).unwrap().runtime.sink_batch_max_records,
            Some(20)
        );
        let err = load(&text("0")).unwrap_err().to_string();
        assert!(
            err.contains("c.yaml:6: `consumer.override.max.poll.records`: expects an integer of at least 1, got \"0\""),
            "{err}"
        );
    }

    #[test]
    fn unknown_plugin_lists_what_is_there() {
        let err = load("name: x\nconfig:\n  connector.class: jdbc-source\n").unwrap_err();
        assert_eq!(
            err.0[0].to_string(),
            "c.yaml:3: `connector.class`: no plugin provides `jdbc-source`; found: file-source 0.1.0"
        );
    }

    #[test]
    fn the_connectors_own_validate_runs_and_points_at_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let err = load(&format!(
            "name: x\nconfig:\n  connector.class: file-source\n  file: {}/f\n  topic: _internal\n",
            dir.path().display()
        ))
        .unwrap_err();
        assert_eq!(
            err.0[0].to_string(),
            "c.yaml:5: `topic`: topics starting with _ are internal"
        );
    }

    #[test]
    fn secrets_do_not_leak_into_problems() {
        let err = load("name: x\nconfig:\n  connector.class: file-source\n  token: ${env:TRIBUTARY_NOT_SET_EITHER}\n").unwrap_err();
        assert!(err.to_string().contains("TRIBUTARY_NOT_SET_EITHER"));
    }

    /// A provider whose values the test changes, like a rotated secret.
    struct Rotating(std::sync::Mutex<BTreeMap<String, String>>);
    impl crate::config::ConfigProvider for Rotating {
        fn resolve(&self, reference: &str) -> Result<String, crate::config::ProviderError> {
            self.0
                .lock()
                .unwrap()
                .get(reference)
                .cloned()
                .ok_or_else(|| {
                    crate::config::ProviderError::Unavailable(format!("no `{reference}`"))
                })
        }
    }

    #[test]
    fn connection_credentials_are_resolved_again_and_only_they_are_renewable() {
        use secrecy::ExposeSecret;
        let dir = tempfile::tempdir().unwrap();
        let values = std::sync::Arc::new(Rotating(std::sync::Mutex::new(BTreeMap::from([
            ("user".to_owned(), "alice".to_owned()),
            ("pw".to_owned(), "one".to_owned()),
        ]))));
        let mut providers = Providers::default();
        providers.register("test", values.clone());
        let file = Path::new("c.yaml");
        let text = format!(
            "name: x\nconfig:\n  connector.class: file-source\n  file: {}/f\n  topic: t\n  connection.url: postgres://db:5432/app\n  connection.user: ${{test:user}}\n  connection.password: ${{test:pw}}\n  connection.other.url: postgres://db:5432/other\n",
            dir.path().display()
        );
        let c = ConnectorConfig::from_entries(
            file,
            parse_flat(file, &text).unwrap(),
            &providers,
            &OneSource,
        )
        .unwrap();
        assert_eq!(
            c.placeholders.keys().collect::<Vec<_>>(),
            ["connection.password", "connection.user"]
        );
        assert!(c.has_placeholders("connection", "default"));
        assert!(!c.has_placeholders("connection", "other"));
        *values.0.lock().unwrap() = BTreeMap::from([
            ("user".to_owned(), "bob".to_owned()),
            ("pw".to_owned(), "two".to_owned()),
        ]);
        let renewed = c.renewed_connection("default", &providers, false).unwrap();
        assert_eq!(renewed.user.as_deref(), Some("bob"));
        assert_eq!(renewed.password.unwrap().expose_secret(), "two");
        assert_eq!(
            renewed.url.unwrap().expose_secret(),
            "postgres://db:5432/app",
            "keys without placeholders stay"
        );
        values.0.lock().unwrap().clear();
        let e = c
            .renewed_connection("default", &providers, false)
            .unwrap_err();
        assert!(
            e.contains("`connection.password`") && e.contains("no `pw`"),
            "{e}"
        );

        for key in [
            "connection.password",
            "connection.url",
            "connection.replica.user",
            "store.secret.access.key",
            "store.backup.access.key.id",
        ] {
            assert!(ConnectorConfig::is_renewable(key), "{key}");
        }
        for key in [
            "connection.host",
            "store.bucket",
            "table.name.format",
            "topics",
            "password",
        ] {
            assert!(!ConnectorConfig::is_renewable(key), "{key}");
        }
    }
}
