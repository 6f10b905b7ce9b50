//! What a connector created over REST may reach on the worker's host: the
//! directories its file keys are granted (`file.allowed.paths`), the
//! environment variables its `${env:…}` placeholders read
//! (`config.providers.env.allowlist.pattern`), and the client properties
//! it may override (`connector.client.config.override.policy`).
//!
//! A connector file given at start is the operator's, as trusted as the
//! worker config: none of these limits apply to it.

use super::{ConfigProvider, ConnectorConfig, EnvProvider, ProviderError, Providers};
use crate::contract::KeyType;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// Directories a setting allows, and the check that a path is under one
/// of them once `..` and links are resolved.
#[derive(Clone, Debug)]
pub struct AllowedPaths {
    dirs: Vec<PathBuf>,
    /// The worker key that lists them, named in every refusal.
    setting: &'static str,
}

impl AllowedPaths {
    pub fn new(dirs: &[PathBuf], setting: &'static str) -> AllowedPaths {
        AllowedPaths {
            dirs: dirs.to_vec(),
            setting,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.dirs.is_empty()
    }

    /// The allowed directories with their links resolved (one that does
    /// not exist stays as given: nothing under it passes until it does).
    fn real_dirs(&self) -> Vec<PathBuf> {
        self.dirs
            .iter()
            .map(|d| resolve(d).unwrap_or_else(|_| d.clone()))
            .collect()
    }

    /// `path` resolved (`..` and links), when it is under an allowed
    /// directory; else a refusal that names the setting.
    pub fn check(&self, path: &Path) -> Result<PathBuf, String> {
        self.check_written(path, None)
    }

    /// [`AllowedPaths::check`] of a path taken from a value that was
    /// `written` with a placeholder: a refusal names the value as written,
    /// never the path (which holds what the placeholder resolved to).
    pub fn check_written(&self, path: &Path, written: Option<&str>) -> Result<PathBuf, String> {
        let setting = self.setting;
        let named = match written {
            Some(w) => format!("the path of {w}"),
            None => path.display().to_string(),
        };
        if self.dirs.is_empty() {
            return Err(format!(
                "{named} is outside the directories the worker's `{setting}` allows, and it lists none (add a directory that holds it to `{setting}` in the worker config)"
            ));
        }
        let real = resolve(path).map_err(|e| match written {
            Some(_) => format!("cannot resolve {named}"),
            None => format!("cannot resolve {named}: {e}"),
        })?;
        let dirs = self.real_dirs();
        if dirs.iter().any(|d| real.starts_with(d)) {
            return Ok(real);
        }
        let shown = if real == path || written.is_some() {
            named
        } else {
            format!("{named} (that is {})", real.display())
        };
        Err(format!(
            "{shown} is outside the directories the worker's `{setting}` allows ({})",
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

/// `path` made absolute with its links and `..` resolved; a tail that does
/// not exist yet (a file a sink will create) is kept as written after its
/// nearest existing ancestor is resolved, and may hold no `..`.
pub fn resolve(path: &Path) -> std::io::Result<PathBuf> {
    let path = std::path::absolute(path)?;
    let mut missing: Vec<&std::ffi::OsStr> = Vec::new();
    let mut at: &Path = &path;
    loop {
        match at.canonicalize() {
            Ok(mut real) => {
                for part in missing.iter().rev() {
                    real.push(part);
                }
                return Ok(real);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let name = match at.components().next_back() {
                    Some(Component::Normal(name)) => name,
                    Some(Component::CurDir) => std::ffi::OsStr::new(""),
                    _ => {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidInput,
                            "`..` under a directory that does not exist",
                        ))
                    }
                };
                missing.push(name);
                at = at.parent().ok_or(e)?;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Kafka Connect's `connector.client.config.override.policy`: which
/// `producer.override.*` and `consumer.override.*` keys a connector created
/// over REST may give.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverridePolicy {
    /// No override at all.
    None,
    /// Only who the client is: `security.protocol`, `sasl.mechanism(s)`,
    /// `sasl.username`, `sasl.password` (`sasl.jaas.config` in Java).
    Principal,
    /// Any property, but those in [`never_overridden`].
    All,
}

/// The properties [`OverridePolicy::Principal`] allows.
const PRINCIPAL: &[&str] = &[
    "security.protocol",
    "sasl.jaas.config",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
];

impl OverridePolicy {
    pub const SETTING: &'static str = "connector.client.config.override.policy";

    pub fn parse(value: &str) -> Result<OverridePolicy, String> {
        match value.trim() {
            "None" => Ok(OverridePolicy::None),
            "Principal" => Ok(OverridePolicy::Principal),
            "All" => Ok(OverridePolicy::All),
            other => Err(format!("expects None, Principal or All, got {other:?}")),
        }
    }

    /// Why the policy refuses `property`, if it does.
    fn refuses(self, property: &str) -> Option<String> {
        let setting = OverridePolicy::SETTING;
        match self {
            OverridePolicy::All => None,
            OverridePolicy::Principal if PRINCIPAL.contains(&property) => None,
            OverridePolicy::Principal => Some(format!(
                "the worker's `{setting}` is `Principal`, which allows only {} (set it to `All` in the worker config to allow any client override)",
                PRINCIPAL.join(", ")
            )),
            OverridePolicy::None => Some(format!(
                "the worker's `{setting}` is `None`: connectors created over REST override no client property (set it to `All` in the worker config, Kafka Connect's default, to allow this)"
            )),
        }
    }
}

/// Why a librdkafka property is refused from any connector created over
/// REST, whatever the policy: it loads code into the worker or runs a
/// command. Host files (`*.location`, keytabs) are checked apart.
fn never_overridden(property: &str) -> Option<&'static str> {
    Some(match property {
        "plugin.library.paths" => "loads shared libraries into the worker",
        "ssl.engine.location" => "loads an OpenSSL engine (a shared library) into the worker",
        "ssl.providers" => "loads OpenSSL providers (shared libraries) into the worker",
        "sasl.kerberos.kinit.cmd" => "is a shell command the worker runs",
        "sasl.oauthbearer.method" => {
            "makes the worker fetch tokens from the endpoints and files the config names"
        }
        "sasl.oauthbearer.token.endpoint.url" => {
            "sends the worker's OAuth client credentials to the endpoint it names"
        }
        _ => return None,
    })
}

/// Whether a librdkafka property names a file on the worker's host.
fn names_host_file(property: &str) -> bool {
    property.ends_with(".location")
        || property.ends_with(".file")
        || property == "sasl.kerberos.keytab"
}

/// The limits on what a connector created over REST reaches.
#[derive(Clone)]
pub struct Reach {
    /// `file.allowed.paths`.
    pub files: AllowedPaths,
    /// `connector.client.config.override.policy`.
    pub overrides: OverridePolicy,
    /// The worker's providers with `env` limited to
    /// `config.providers.env.allowlist.pattern`.
    pub providers: Providers,
}

/// Name of the file-grant setting.
pub const FILE_ALLOWED_PATHS: &str = "file.allowed.paths";
/// Name of the env provider's allow-list.
pub const ENV_ALLOWLIST: &str = "config.providers.env.allowlist.pattern";

impl Reach {
    /// The limits a worker config sets, over the worker's `providers`.
    pub fn new(worker: &super::WorkerConfig, providers: &Providers) -> Reach {
        let mut limited = providers.clone();
        limited.register(
            "env",
            Arc::new(AllowedEnv::new(worker.env_allowlist.as_deref())),
        );
        Reach {
            files: AllowedPaths::new(&worker.file_allowed_paths, FILE_ALLOWED_PATHS),
            overrides: worker.override_policy,
            providers: limited,
        }
    }

    /// What a connector config created over REST reaches beyond these
    /// limits, as (key, message): file keys outside `file.allowed.paths`,
    /// client overrides the policy or the worker refuses, SQLite files and
    /// CA files outside `file.allowed.paths`.
    pub fn check(&self, config: &ConnectorConfig) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let value = |key: &str| {
            config
                .plugin_config
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .or_else(|| {
                    let secret = config.secret_config.get(key)?;
                    Some(secrecy::ExposeSecret::expose_secret(secret).to_owned())
                })
        };
        for spec in &config.description.keys {
            let Some(v) = value(&spec.name) else { continue };
            let dir = match spec.ty {
                KeyType::FileRead | KeyType::FileWrite => Path::new(&v).parent(),
                KeyType::DirRead | KeyType::DirWrite => Some(Path::new(&v)),
                _ => continue,
            };
            let written = config.placeholders.get(&spec.name).map(String::as_str);
            if let Some(Err(e)) = dir.map(|d| self.files.check_written(d, written)) {
                problems.push((spec.name.clone(), e));
            }
        }
        self.check_overrides(config, &mut problems);
        self.check_connections(config, &mut problems);
        problems
    }

    fn check_overrides(&self, config: &ConnectorConfig, problems: &mut Vec<(String, String)>) {
        let r = &config.runtime;
        for key in r.property_lines.keys() {
            let (property, value) = match key.strip_prefix("producer.override.") {
                Some(p) => (p, r.producer_overrides.get(p)),
                None => {
                    let p = key.strip_prefix("consumer.override.").unwrap_or(key);
                    (p, r.consumer_overrides.get(p))
                }
            };
            let property = property.trim();
            if let Some(why) = never_overridden(property) {
                problems.push((
                    key.clone(),
                    format!("{why}: no connector created over REST may set it (a worker-wide `producer.{property}` or `consumer.{property}` in the worker config can)"),
                ));
            } else if let Some(why) = self.overrides.refuses(property) {
                problems.push((key.clone(), why));
            } else if let Some(v) = value.filter(|_| names_host_file(property)) {
                if property == "ssl.ca.location" && v.trim() == "probe" {
                    continue;
                }
                // One path, as librdkafka reads it.
                let written = config.placeholders.get(key).map(String::as_str);
                if let Err(e) = self.files.check_written(Path::new(v.trim()), written) {
                    problems.push((key.clone(), e));
                }
            }
        }
    }

    /// SQLite files and CA files of `connection.*` keys are host files the
    /// worker opens for the connector: they are held to `file.allowed.paths`.
    fn check_connections(&self, config: &ConnectorConfig, problems: &mut Vec<(String, String)>) {
        use secrecy::ExposeSecret;
        for (name, c) in &config.runtime.connections.0 {
            let key = |f: &str| match name.as_str() {
                "default" => format!("connection.{f}"),
                _ => format!("connection.{name}.{f}"),
            };
            let url = c.url.as_ref().map(|u| u.expose_secret().to_owned());
            let sqlite_file = match (&url, c.dialect.as_deref(), &c.database) {
                (Some(u), _, _) => sqlite_path(u).map(|p| (key("url"), p)),
                (None, Some("sqlite"), Some(d)) => Some((key("database"), PathBuf::from(d))),
                _ => None,
            };
            if let Some((k, path)) = sqlite_file {
                // The path alone: the URL may hold a password.
                let written = config.placeholders.get(&k).map(String::as_str);
                if let Err(e) = self.files.check_written(&path, written) {
                    problems.push((k, format!("the SQLite file {e}")));
                }
            }
            if let Some(cert) = &c.ssl_root_cert {
                let k = key("ssl.root.cert");
                let written = config.placeholders.get(&k).map(String::as_str);
                if let Err(e) = self.files.check_written(cert, written) {
                    problems.push((k, e));
                }
            }
        }
    }
}

/// The file of a `sqlite:` URL (`None`: another database, or one in memory).
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (db, params) = rest.split_once('?').unwrap_or((rest, ""));
    let in_memory = db == ":memory:" || (db.is_empty() && params.contains("mode=memory"));
    if in_memory {
        return None;
    }
    let decoded = percent_decode(db);
    Some(PathBuf::from(if decoded.is_empty() {
        "."
    } else {
        &decoded
    }))
}

/// `%XX` escapes decoded, as SQLite URLs allow them.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap() * 16 + hex(l).unwrap()) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `${env:VAR}` for connectors created over REST: only the variables whose
/// whole name matches `config.providers.env.allowlist.pattern` (Kafka
/// Connect's `EnvVarConfigProvider` setting); none when it is empty.
pub struct AllowedEnv {
    pattern: Option<regex::Regex>,
}

impl AllowedEnv {
    /// `pattern` was checked with the worker config; one that does not
    /// compile allows nothing.
    pub fn new(pattern: Option<&str>) -> AllowedEnv {
        AllowedEnv {
            pattern: pattern.and_then(|p| regex::Regex::new(&format!("^(?:{p})$")).ok()),
        }
    }
}

impl ConfigProvider for AllowedEnv {
    fn resolve(&self, reference: &str) -> Result<String, ProviderError> {
        match &self.pattern {
            Some(p) if p.is_match(reference) => EnvProvider.resolve(reference),
            Some(_) => Err(ProviderError::Invalid(format!(
                "environment variable `{reference}` does not match the worker's `{ENV_ALLOWLIST}` (widen the pattern in the worker config to let connectors created over REST read it)"
            ))),
            None => Err(ProviderError::Invalid(format!(
                "connectors created over REST read no environment variable: the worker's `{ENV_ALLOWLIST}` is empty (set it in the worker config to a pattern that matches `{reference}`)"
            ))),
        }
    }
}

/// Checks a `config.providers.env.allowlist.pattern` value.
pub fn check_env_pattern(pattern: &str) -> Result<(), String> {
    regex::Regex::new(&format!("^(?:{pattern})$"))
        .map(|_| ())
        .map_err(|e| format!("is not a regular expression: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::yaml::parse_flat;
    use crate::config::{Catalog, WorkerConfig};
    use crate::contract::{ConfigIssue, ConnectorKind, Description, KeySpec};
    use std::collections::BTreeMap;

    /// One sink plugin with a file key.
    struct OneSink;
    impl Catalog for OneSink {
        fn describe(&self, _: &str, _: Option<&str>) -> Result<Description, String> {
            Ok(Description {
                name: "out".into(),
                version: "0.1.0".into(),
                kind: ConnectorKind::Sink,
                summary: String::new(),
                reads_headers: false,
                keys: vec![KeySpec {
                    name: "file".into(),
                    ty: KeyType::FileWrite,
                    default: None,
                    doc: String::new(),
                    secret: false,
                }],
            })
        }
        fn validate(
            &self,
            _: &str,
            _: Option<&str>,
            _: &Vec<(String, String)>,
        ) -> Result<Vec<ConfigIssue>, String> {
            Ok(Vec::new())
        }
    }

    fn reach(worker: &str) -> Reach {
        let file = Path::new("worker.yaml");
        let providers = Providers::default();
        let w = WorkerConfig::from_entries(file, parse_flat(file, worker).unwrap(), &providers)
            .unwrap();
        Reach::new(&w, &providers)
    }

    fn refused(reach: &Reach, pairs: &[(&str, String)]) -> BTreeMap<String, String> {
        let config: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .chain([
                ("connector.class".to_owned(), "out".to_owned()),
                ("topics".to_owned(), "t".to_owned()),
            ])
            .collect();
        let c = ConnectorConfig::from_map(
            Path::new("config"),
            "c",
            &config,
            &reach.providers,
            &OneSink,
        )
        .unwrap();
        reach.check(&c).into_iter().collect()
    }

    #[test]
    fn a_rest_config_is_held_to_the_workers_limits() {
        let dir = tempfile::tempdir().unwrap();
        let allowed = dir.path().join("allowed");
        std::fs::create_dir_all(&allowed).unwrap();
        let at = |p: &str| dir.path().join(p).display().to_string();
        let all = reach(&format!(
            "file.allowed.paths: {}\nconnector.client.config.override.policy: All\n",
            allowed.display()
        ));
        let inside = [
            ("file", at("allowed/out.txt")),
            (
                "connection.url",
                format!("sqlite://{}?mode=rwc", at("allowed/db.sqlite")),
            ),
            ("connection.mem.url", "sqlite://:memory:".to_owned()),
            ("producer.override.linger.ms", "5".to_owned()),
            ("consumer.override.ssl.ca.location", at("allowed/ca.pem")),
        ];
        assert_eq!(refused(&all, &inside), BTreeMap::new());
        let outside = refused(
            &all,
            &[
                ("file", at("out.txt")),
                (
                    "connection.url",
                    format!("sqlite://{}", at("allowed/../db.sqlite")),
                ),
                ("connection.other.dialect", "sqlite".to_owned()),
                ("connection.other.database", at("other.db")),
                ("consumer.override.ssl.ca.location", at("ca.pem")),
                ("producer.override.plugin.library.paths", at("allowed/x.so")),
                (
                    "producer.override.sasl.kerberos.kinit.cmd",
                    "touch /tmp/x".to_owned(),
                ),
            ],
        );
        assert_eq!(
            outside.keys().collect::<Vec<_>>(),
            [
                "connection.other.database",
                "connection.url",
                "consumer.override.ssl.ca.location",
                "file",
                "producer.override.plugin.library.paths",
                "producer.override.sasl.kerberos.kinit.cmd",
            ],
            "{outside:?}"
        );
        assert!(
            outside["connection.url"].starts_with("the SQLite file "),
            "{outside:?}"
        );
        assert!(
            outside.values().all(|m| !m.contains("mode=")),
            "the URL itself is not shown: {outside:?}"
        );
        assert!(
            outside["producer.override.plugin.library.paths"].contains("loads shared libraries")
        );

        let principal = reach("connector.client.config.override.policy: Principal\n");
        let got = refused(
            &principal,
            &[
                ("file", at("allowed/out.txt")),
                ("producer.override.sasl.mechanism", "PLAIN".to_owned()),
                ("producer.override.linger.ms", "5".to_owned()),
            ],
        );
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            ["file", "producer.override.linger.ms"],
            "no file.allowed.paths: nothing is allowed; {got:?}"
        );
        assert!(got["producer.override.linger.ms"].contains("is `Principal`"));
    }

    #[test]
    fn paths_are_checked_after_dot_dot_and_links_are_resolved() {
        let dir = tempfile::tempdir().unwrap();
        let allowed = dir.path().join("allowed");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(allowed.join("sub")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, allowed.join("link")).unwrap();
        let paths = AllowedPaths::new(std::slice::from_ref(&allowed), FILE_ALLOWED_PATHS);
        let real_allowed = allowed.canonicalize().unwrap();
        assert_eq!(
            paths.check(&allowed.join("sub")).unwrap(),
            real_allowed.join("sub")
        );
        // A file or directory a sink creates later is checked by its
        // existing parent.
        assert_eq!(
            paths.check(&allowed.join("new/file.txt")).unwrap(),
            real_allowed.join("new/file.txt")
        );
        for bad in [
            outside.clone(),
            allowed.join("../outside"),
            allowed.join("sub/../../outside/x"),
            allowed.join("link"),
            allowed.join("link/x.txt"),
            allowed.join("missing/../../outside"),
            PathBuf::from("/etc"),
        ] {
            let e = paths.check(&bad).unwrap_err();
            assert!(
                e.contains("outside the directories the worker's `file.allowed.paths` allows")
                    || e.contains("`..` under a directory that does not exist"),
                "{}: {e}",
                bad.display()
            );
        }
        let none = AllowedPaths::new(&[], FILE_ALLOWED_PATHS);
        let e = none.check(&allowed).unwrap_err();
        assert!(
            e.contains("it lists none") && e.contains("`file.allowed.paths`"),
            "{e}"
        );
    }

    #[test]
    fn the_policy_allows_what_kafka_connect_allows() {
        assert_eq!(OverridePolicy::parse("None"), Ok(OverridePolicy::None));
        assert_eq!(
            OverridePolicy::parse("Principal"),
            Ok(OverridePolicy::Principal)
        );
        assert_eq!(OverridePolicy::parse("All"), Ok(OverridePolicy::All));
        assert!(OverridePolicy::parse("all").is_err());
        let none = OverridePolicy::None.refuses("linger.ms").unwrap();
        assert!(
            none.contains("`connector.client.config.override.policy` is `None`")
                && none.contains("`All`"),
            "{none}"
        );
        assert!(OverridePolicy::Principal
            .refuses("sasl.mechanism")
            .is_none());
        assert!(OverridePolicy::Principal
            .refuses("security.protocol")
            .is_none());
        assert!(OverridePolicy::Principal.refuses("linger.ms").is_some());
        assert!(OverridePolicy::All.refuses("linger.ms").is_none());
        for p in [
            "plugin.library.paths",
            "ssl.engine.location",
            "sasl.kerberos.kinit.cmd",
        ] {
            assert!(never_overridden(p).is_some(), "{p}");
        }
        assert!(names_host_file("ssl.key.location"));
        assert!(names_host_file("sasl.kerberos.keytab"));
        assert!(!names_host_file("linger.ms"));
    }

    #[test]
    fn env_placeholders_resolve_only_by_the_allowlist() {
        std::env::set_var("TRIBUTARY_REACH_TEST_OK", "fine");
        std::env::set_var("TRIBUTARY_REACH_TEST_SECRET", "hidden-value");
        let allowed = AllowedEnv::new(Some("TRIBUTARY_REACH_TEST_OK|OTHER"));
        assert_eq!(allowed.resolve("TRIBUTARY_REACH_TEST_OK").unwrap(), "fine");
        let e = allowed.resolve("TRIBUTARY_REACH_TEST_SECRET").unwrap_err();
        assert!(
            e.message()
                .contains("`config.providers.env.allowlist.pattern`")
                && !e.message().contains("hidden-value"),
            "{e}"
        );
        // The whole name must match, not a part of it.
        assert!(AllowedEnv::new(Some("TRIBUTARY_REACH_TEST"))
            .resolve("TRIBUTARY_REACH_TEST_OK")
            .is_err());
        let e = AllowedEnv::new(None)
            .resolve("TRIBUTARY_REACH_TEST_OK")
            .unwrap_err();
        assert!(e.message().contains("is empty"), "{e}");
        assert!(check_env_pattern("A(").is_err());
        assert!(check_env_pattern("AWS_.*|HOME").is_ok());
    }

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("sqlite://:memory:"), None);
        assert_eq!(sqlite_path("sqlite://?mode=memory"), None);
        assert_eq!(sqlite_path("postgres://h/db"), None);
        assert_eq!(
            sqlite_path("sqlite:///etc/x%20y.db?mode=rwc"),
            Some(PathBuf::from("/etc/x y.db"))
        );
        assert_eq!(
            sqlite_path("sqlite://data/a.db"),
            Some(PathBuf::from("data/a.db"))
        );
    }
}
