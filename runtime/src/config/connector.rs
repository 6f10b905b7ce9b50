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

use super::keys::check_value;
use super::runtime_keys::{RuntimeKeys, CONNECTOR_RUNTIME_KEYS};
use super::worker::suggest;
use super::yaml::{load_flat, Entry, Value, MAX_KEYS};
use super::{Problem, Problems, Providers, Resolved};
use crate::contract::{ConfigIssue, ConnectorKind, Description, KeySpec, KeyType};
use secrecy::SecretString;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

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
    /// A connector file given at start: the operator's, as trusted as the
    /// worker config. A connector created over REST is held to the
    /// worker's limits on what it reaches (`config::Reach`), and the host
    /// checks its grants again when it opens them.
    pub trusted: bool,
    /// Each placeholder of the config with what it resolved to, for
    /// [`ConnectorConfig::mask`]. Never logged or shown.
    masks: Vec<(String, SecretString)>,
}

impl ConnectorConfig {
    /// Reads and checks a connector file; every problem at once.
    pub fn load(
        file: &Path,
        providers: &Providers,
        catalog: &dyn Catalog,
    ) -> Result<ConnectorConfig, Problems> {
        let entries = load_flat(file)?;
        let config = ConnectorConfig::from_entries(file, entries, providers, catalog)?;
        Ok(ConnectorConfig {
            trusted: true,
            ..config
        })
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

    /// Checks a connector given as flat entries (`name`, `config.*`), step
    /// by step; every problem at once, in the order the steps find them.
    pub fn from_entries(
        file: &Path,
        entries: Vec<Entry>,
        providers: &Providers,
        catalog: &dyn Catalog,
    ) -> Result<ConnectorConfig, Problems> {
        // A file or a body was bounded as it was read; a config patched
        // through the REST API is bounded here.
        if entries.len() > MAX_KEYS {
            let message = format!(
                "holds {} keys, more than {MAX_KEYS} (the limit for a config document)",
                entries.len()
            );
            return Err(Problems(vec![Problem::new(file, None, None, message)]));
        }
        let mut draft = Draft::read(file, entries, providers);
        let Some(description) = draft.describe(catalog) else {
            return Err(draft.masked_problems());
        };
        let mut plugin = PluginKeys::default();
        let runtime = draft.apply_keys(&description, &mut plugin);
        draft.check_named(&runtime);
        draft.fill_plugin_defaults(&description, &mut plugin);
        draft.check_topics(&description, &runtime);
        if draft.problems.is_empty() {
            draft.validate(catalog, &description, &plugin);
        }
        plugin.tidy_grants();
        let masks = draft.masks();
        let problems = draft.masked_problems();
        let config = ConnectorConfig {
            name: draft.name.unwrap_or_default(),
            file: file.to_path_buf(),
            description,
            runtime,
            plugin_config: plugin.config,
            secret_config: plugin.secrets,
            placeholders: draft.placeholders,
            grants: plugin.grants,
            trusted: false,
            masks,
        };
        problems.into_result(config)
    }

    /// Text built from this config's values (a host error naming a path, a
    /// connector's failure, a task config) with each value that came from
    /// a placeholder replaced by the placeholder: what may leave the
    /// worker in an answer, a status or a log.
    pub fn mask(&self, text: &str) -> String {
        use secrecy::ExposeSecret;
        super::resolved::mask_parts(
            text,
            self.masks
                .iter()
                .map(|(p, v)| (p.as_str(), v.expose_secret())),
        )
    }
}

/// A connector config while it is checked: what was read, and every
/// problem found so far.
struct Draft<'a> {
    file: &'a Path,
    problems: Problems,
    name: Option<String>,
    /// Line of the first key under `config`: where a key that is missing
    /// is reported.
    config_line: Option<usize>,
    /// Each key under `config` (without the prefix) → its resolved value
    /// and line.
    raw: BTreeMap<String, (Resolved, usize)>,
    /// Keys whose value held a placeholder, as written.
    placeholders: BTreeMap<String, String>,
}

/// What the plugin's own keys give.
#[derive(Default)]
struct PluginKeys {
    /// What the guest receives.
    config: Vec<(String, String)>,
    /// Secret keys, for host capabilities only.
    secrets: BTreeMap<String, SecretString>,
    grants: Vec<Grant>,
    /// Keys the file gives (the others take their defaults).
    given: BTreeSet<String>,
}

impl<'a> Draft<'a> {
    fn problem(&mut self, line: Option<usize>, key: Option<&str>, message: impl Into<String>) {
        self.problems
            .push(Problem::new(self.file, line, key, message));
    }

    /// The line of `key`, or of `config` when the key was not given.
    fn line_of(&self, key: &str) -> Option<usize> {
        self.raw.get(key).map(|(_, l)| *l).or(self.config_line)
    }

    /// Step 1: `name`, and each `config.*` key with its placeholders
    /// resolved; any other top-level key is a problem.
    fn read(file: &'a Path, entries: Vec<Entry>, providers: &Providers) -> Draft<'a> {
        let mut draft = Draft {
            file,
            problems: Problems::default(),
            name: None,
            config_line: None,
            raw: BTreeMap::new(),
            placeholders: BTreeMap::new(),
        };
        for entry in entries {
            let line = Some(entry.line);
            if entry.key == "name" {
                match entry.value.to_config_string() {
                    Some(n) if valid_name(&n) => draft.name = Some(n),
                    _ => draft.problem(
                        line,
                        Some("name"),
                        "must be a non-empty name of letters, digits, `.`, `_` and `-`",
                    ),
                }
            } else if let Some(key) = entry.key.strip_prefix("config.") {
                draft.config_line.get_or_insert(entry.line);
                if let Some(value) = entry.value.to_config_string() {
                    draft.resolve(key, value, entry.line, providers);
                }
            } else if entry.key == "config" {
                draft.config_line.get_or_insert(entry.line);
            } else {
                draft.problem(line, Some(&entry.key), "unknown top-level key: a connector file holds `name` and `config` (Kafka Connect's REST body)");
            }
        }
        let name_problem = draft
            .problems
            .0
            .iter()
            .any(|p| p.key.as_deref() == Some("name"));
        if draft.name.is_none() && !name_problem {
            draft.problem(None, Some("name"), "is required");
        }
        draft
    }

    /// Keeps a `config.*` value with its placeholders resolved (and as
    /// written, when it holds any), or the problem resolving it.
    fn resolve(&mut self, key: &str, value: String, line: usize, providers: &Providers) {
        if !super::placeholders(&value).unwrap_or_default().is_empty() {
            self.placeholders.insert(key.to_owned(), value.clone());
        }
        match Resolved::resolve(&value, providers) {
            Ok(v) => {
                self.raw.insert(key.to_owned(), (v, line));
            }
            Err(e) => self
                .problems
                .push(Problem::placeholder(self.file, Some(line), key, e)),
        }
    }

    /// Step 2: the plugin's description, by `connector.class` (and
    /// `connector.plugin.version`); `None` when there is none to check the
    /// other keys against.
    fn describe(&mut self, catalog: &dyn Catalog) -> Option<Description> {
        let Some((class, class_line)) = self.raw.remove("connector.class") else {
            let message = "is required: the plugin connector to run";
            self.problem(self.config_line, Some("connector.class"), message);
            return None;
        };
        let version = self.raw.remove("connector.plugin.version").map(|(v, _)| v);
        catalog
            .describe(class.expose(), version.as_ref().map(Resolved::expose))
            .map_err(|e| {
                // The catalog's text names the class and version it was
                // asked for: as written, when they came from placeholders.
                let e = version.iter().fold(class.mask(&e), |e, v| v.mask(&e));
                self.problem(Some(class_line), Some("connector.class"), e)
            })
            .ok()
    }

    /// Step 3: each key given, as one of the plugin's (checked against its
    /// declared type) or one the worker reads; anything else is unknown.
    fn apply_keys(&mut self, description: &Description, plugin: &mut PluginKeys) -> RuntimeKeys {
        let mut runtime = RuntimeKeys::defaults();
        for (key, (value, line)) in &self.raw {
            let outcome = match description.keys.iter().find(|s| &s.name == key) {
                Some(spec) => {
                    plugin.given.insert(key.clone());
                    check_value(spec, value).map(|v| plugin.take(spec, v))
                }
                None => runtime
                    .apply(key, value, *line)
                    .unwrap_or_else(|| Err(unknown_key(description, key))),
            };
            if let Err(e) = outcome {
                self.problems
                    .push(Problem::new(self.file, Some(*line), Some(key), e));
            }
        }
        runtime
    }

    /// Step 4: each connection and store is complete and consistent.
    fn check_named(&mut self, runtime: &RuntimeKeys) {
        let named = runtime.connections.check().into_iter();
        for (key, message) in named.chain(runtime.stores.check()) {
            self.problem(self.line_of(&key), Some(&key), message);
        }
    }

    /// Step 5: the plugin's keys the file leaves out take their defaults;
    /// a key without one is required.
    fn fill_plugin_defaults(&mut self, description: &Description, plugin: &mut PluginKeys) {
        for spec in &description.keys {
            if plugin.given.contains(&spec.name) {
                continue;
            }
            let Some(default) = &spec.default else {
                let message = format!("is required by `{}`: {}", description.name, spec.doc);
                self.problem(self.config_line, Some(&spec.name), message);
                continue;
            };
            match check_value(spec, &Resolved::literal(default.as_str())) {
                Ok(v) => {
                    if let Some(grant) = grant_for(spec, &v) {
                        plugin.grants.push(grant);
                    }
                    if !spec.secret {
                        plugin.config.push((spec.name.clone(), v));
                    }
                }
                Err(e) => {
                    let message = format!("default value: {e}");
                    self.problem(self.config_line, Some(&spec.name), message);
                }
            }
        }
    }

    /// Step 6: a sink consumes `topics` or `topics.regex`; a source neither.
    fn check_topics(&mut self, description: &Description, runtime: &RuntimeKeys) {
        let message = if description.kind == ConnectorKind::Sink {
            match (&runtime.topics_regex, runtime.topics.is_empty()) {
                (None, true) => "a sink needs `topics` or `topics.regex`",
                (Some(_), false) => "set `topics` or `topics.regex`, not both",
                _ => return,
            }
        } else if !runtime.topics.is_empty() || runtime.topics_regex.is_some() {
            "only sink connectors consume topics"
        } else {
            return;
        };
        self.problem(self.config_line, Some("topics"), message);
    }

    /// Step 7 (only when every other check passed): the connector's own
    /// `validate`, its issues at the lines of their keys.
    fn validate(&mut self, catalog: &dyn Catalog, description: &Description, plugin: &PluginKeys) {
        let (name, version) = (&description.name, Some(description.version.as_str()));
        match catalog.validate(name, version, &plugin.config) {
            Ok(issues) => {
                for issue in issues {
                    let message = self.masked(&issue.message);
                    self.problem(self.line_of(&issue.key), Some(&issue.key), message);
                }
            }
            Err(e) => {
                let message = format!("the connector's validate failed: {}", self.masked(&e));
                self.problem(self.config_line, None, message);
            }
        }
    }

    /// Every placeholder of the config and the value it resolved to.
    fn masks(&self) -> Vec<(String, SecretString)> {
        let parts = self.raw.values().flat_map(|(v, _)| v.parts());
        parts
            .map(|(p, v)| (p.to_owned(), SecretString::from(v.to_owned())))
            .collect()
    }

    /// The problems found, each message masked as [`Draft::masked`] does:
    /// the last word on anything a check quoted from a value, in one place
    /// (the checks name values through [`Resolved`] already).
    fn masked_problems(&mut self) -> Problems {
        let mut problems = std::mem::take(&mut self.problems);
        for p in &mut problems.0 {
            p.message = self.masked(&p.message);
        }
        problems
    }

    /// Text the connector wrote (its own checks) with every value that
    /// came from a placeholder replaced by the placeholder: the guest
    /// received the values, so its messages may quote any of them. Longer
    /// values first, so one that holds another is replaced whole.
    fn masked(&self, text: &str) -> String {
        let mut values: Vec<&Resolved> = self.raw.values().map(|(v, _)| v).collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.expose().len()));
        values.into_iter().fold(text.to_owned(), |t, v| v.mask(&t))
    }
}

impl PluginKeys {
    /// A checked value the file gives for `spec`: a grant for a path key;
    /// a secret is kept apart from what the guest receives.
    fn take(&mut self, spec: &KeySpec, value: String) {
        if let Some(grant) = grant_for(spec, &value) {
            self.grants.push(grant);
        }
        if spec.secret {
            self.secrets
                .insert(spec.name.clone(), SecretString::from(value));
        } else {
            self.config.push((spec.name.clone(), value));
        }
    }

    /// Each directory once; one granted read-write is not also granted
    /// read-only.
    fn tidy_grants(&mut self) {
        self.grants.sort();
        self.grants.dedup();
        let writable: Vec<PathBuf> = self
            .grants
            .iter()
            .filter(|g| g.writable)
            .map(|g| g.dir.clone())
            .collect();
        self.grants
            .retain(|g| g.writable || !writable.contains(&g.dir));
    }
}

/// The problem of a key that is neither the plugin's nor the worker's,
/// with the nearest known key.
fn unknown_key(description: &Description, key: &str) -> String {
    let known = description
        .keys
        .iter()
        .map(|s| s.name.as_str())
        .chain(CONNECTOR_RUNTIME_KEYS.iter().map(|(k, _)| *k));
    format!(
        "unknown key for connector `{}` {}{}",
        description.name,
        description.version,
        suggest(key, known)
    )
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

    /// `value`, what key `key` resolved to, shown as the key was written
    /// when that held a placeholder: for checks outside this module.
    pub fn resolved(&self, key: &str, value: &str) -> Resolved {
        Resolved::new(value.to_owned(), self.placeholders.get(key).cloned())
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
        mut set: impl FnMut(&str, &Resolved) -> Result<(), String>,
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
            let value = Resolved::resolve(raw, providers).map_err(|e| format!("`{key}`: {e}"))?;
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
    use crate::config::RUNTIME_KEYS;

    struct OneSource;
    impl Catalog for OneSource {
        fn describe(&self, class: &str, version: Option<&str>) -> Result<Description, String> {
            if class != "file-source" {
                return Err(format!(
                    "no plugin provides `{class}`; found: file-source 0.1.0"
                ));
            }
            if let Some(v) = version.filter(|v| *v != "0.1.0") {
                return Err(format!(
                    "plugin `{class}` has no version {v}; found versions: 0.1.0"
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
                .map(|(k, v)| ConfigIssue {
                    key: k.clone(),
                    message: format!(
                        "topic {v:?} starts with _: topics starting with _ are internal"
                    ),
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
    fn a_config_over_the_key_limit_is_refused() {
        let config: BTreeMap<String, String> = (0..crate::config::yaml::MAX_KEYS)
            .map(|i| (format!("k{i}"), "v".to_owned()))
            .collect();
        let err = ConnectorConfig::from_map(
            Path::new("config"),
            "x",
            &config,
            &Providers::default(),
            &OneSource,
        )
        .unwrap_err();
        assert_eq!(
            err.0[0].to_string(),
            "config: holds 10001 keys, more than 10000 (the limit for a config document)"
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
            "c.yaml:5: `topic`: topic \"_internal\" starts with _: topics starting with _ are internal"
        );
    }

    #[test]
    fn secrets_do_not_leak_into_problems() {
        let err = load("name: x\nconfig:\n  connector.class: file-source\n  token: ${env:TRIBUTARY_NOT_SET_EITHER}\n").unwrap_err();
        assert!(err.to_string().contains("TRIBUTARY_NOT_SET_EITHER"));
    }

    /// A value that `key` refuses when written as it is, holding `marker`:
    /// the first of a few candidates that gives a problem for `key`.
    /// `None`: the key takes any text.
    fn refused(key: &str, marker: &str, dir: &Path) -> Option<String> {
        let candidates = [
            // Not a number, a boolean, a URL, a regular expression, a
            // plugin or a version.
            format!("x-{marker}("),
            // A file in a directory that does not exist.
            dir.join(marker).join("x").display().to_string(),
        ];
        candidates.into_iter().find(|bad| {
            let text = with_key(dir, key, &format!("{bad:?}"));
            load(&text).is_err_and(|p| p.0.iter().any(|p| is_about(p, key)))
        })
    }

    /// Whether `problem` is about the value of `key` (`OneSource` is a
    /// source: any `topics` is refused for that; the plugin's choice is
    /// reported under `connector.class`).
    fn is_about(problem: &Problem, key: &str) -> bool {
        let key = match key {
            "connector.plugin.version" => "connector.class",
            k => k,
        };
        problem.key.as_deref() == Some(key)
            && problem.message != "only sink connectors consume topics"
    }

    /// A file-source config (valid but for `key`) with `key: value`.
    fn with_key(dir: &Path, key: &str, value: &str) -> String {
        let mut keys = BTreeMap::from([
            ("connector.class", "file-source".to_owned()),
            (
                "file",
                format!("{:?}", dir.join("in.txt").display().to_string()),
            ),
            ("topic", "t".to_owned()),
        ]);
        keys.insert(key, value.to_owned());
        let lines: Vec<String> = keys.iter().map(|(k, v)| format!("  {k}: {v}")).collect();
        format!("name: x\nconfig:\n{}\n", lines.join("\n"))
    }

    #[test]
    fn a_refused_value_from_a_placeholder_is_named_by_the_placeholder_for_every_key() {
        let dir = tempfile::tempdir().unwrap();
        let plugin_keys = OneSource.describe("file-source", None).unwrap().keys;
        let keys = RUNTIME_KEYS
            .iter()
            .map(|k| k.name.to_owned())
            .chain(plugin_keys.iter().map(|k| k.name.clone()));
        let mut takes_any = Vec::new();
        for key in keys {
            let marker = format!("marker{}", key.replace('.', "-"));
            let Some(bad) = refused(&key, &marker, dir.path()) else {
                takes_any.push(key);
                continue;
            };
            let var = format!(
                "TRIBUTARY_CONNECTOR_TEST_{}",
                key.replace('.', "_").to_uppercase()
            );
            std::env::set_var(&var, &bad);
            let placeholder = format!("${{env:{var}}}");
            let problems = load(&with_key(dir.path(), &key, &placeholder)).unwrap_err();
            let text = problems.to_string();
            assert!(!text.contains(&marker), "`{key}`: {text}");
            let own = problems.0.iter().find(|p| is_about(p, &key));
            let own = own.unwrap_or_else(|| panic!("`{key}` from a placeholder is taken: {text}"));
            let secret = plugin_keys.iter().any(|k| k.name == key && k.secret);
            assert!(
                secret || own.message.contains(&placeholder),
                "`{key}`: {own} does not name {placeholder}"
            );
        }
        assert_eq!(
            takes_any,
            [
                "topics",
                "topics.regex",
                "errors.deadletterqueue.topic.name",
                "connection.user",
                "connection.password",
                "store.bucket",
                "store.region",
                "store.access.key.id",
                "store.secret.access.key",
                "topic",
                "token",
            ],
            "every other key refuses a value"
        );
    }

    #[test]
    fn the_connectors_own_messages_name_placeholders() {
        let dir = tempfile::tempdir().unwrap();
        std::env::set_var("TRIBUTARY_CONNECTOR_TEST_TOPIC", "_marker-own-message");
        let text = with_key(dir.path(), "topic", "${env:TRIBUTARY_CONNECTOR_TEST_TOPIC}");
        let err = load(&text).unwrap_err().to_string();
        assert!(!err.contains("marker-own-message"), "{err}");
        assert!(
            err.contains("`topic`: topic \"${env:TRIBUTARY_CONNECTOR_TEST_TOPIC}\" starts with _"),
            "{err}"
        );
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
