//! The worker's config file.

use super::keys::check_value;
use super::reach::{check_env_pattern, OverridePolicy};
use super::yaml::{load_flat, Entry};
use super::{Problem, Problems, Providers, Resolved};
use crate::contract::{KeySpec, KeyType};
use secrecy::SecretString;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Settings of one worker process.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Kafka to use; `None` starts the embedded, in-process Kafka.
    pub bootstrap_servers: Option<String>,
    /// Directories searched for plugins (`*.wasm`).
    pub plugin_path: Vec<PathBuf>,
    /// Where compiled plugins are cached.
    pub plugin_cache_dir: PathBuf,
    /// Standalone offset file (Kafka Connect's
    /// `offset.storage.file.filename`); only with `bootstrap.servers`.
    pub offset_file: Option<PathBuf>,
    pub offset_flush_interval: Duration,
    /// Compacted topic for source offsets (with a configured Kafka).
    pub offset_topic: String,
    pub offset_topic_partitions: i32,
    pub offset_topic_replication_factor: i32,
    pub task_memory_max_bytes: u64,
    pub task_call_timeout: Duration,
    /// (partitions, replication factor) of topics the worker creates on a
    /// configured Kafka; `None` when `topic.creation.enable` is false.
    pub topic_creation: Option<(i32, i32)>,
    pub sink_group_id_prefix: String,
    pub embedded_topic_partitions: i32,
    pub source_poll_max_records: u32,
    pub sink_batch_max_records: usize,
    pub sink_batch_max_bytes: usize,
    pub metrics_log_interval: Duration,
    pub shutdown_timeout: Duration,
    /// Where the REST API listens (`host:port`; empty host: every
    /// interface); `None`: no REST API.
    pub listener: Option<String>,
    /// With `https://` listeners: the PEM certificate chain and private
    /// key the REST API serves TLS with.
    pub rest_tls: Option<(PathBuf, PathBuf)>,
    /// Bearer token every REST endpoint but `GET /health` requires.
    /// Resolved; never logged or shown.
    pub rest_token: Option<SecretString>,
    /// Directories the `file` config provider may read under.
    pub file_provider_paths: Vec<PathBuf>,
    /// Directories a connector created over REST may be granted
    /// (`file.allowed.paths`).
    pub file_allowed_paths: Vec<PathBuf>,
    /// The environment variables `${env:…}` of a connector created over
    /// REST may read (a checked pattern); `None`: none.
    pub env_allowlist: Option<String>,
    /// The client overrides a connector created over REST may give.
    pub override_policy: OverridePolicy,
    /// Most connectors the worker runs; more are refused over REST.
    pub connectors_max: usize,
    /// Most tasks (the sum of every connector's `tasks.max`); a connector
    /// over it is refused over REST.
    pub tasks_max_total: usize,
    /// The `aws-secretsmanager` config provider's settings.
    pub secrets_manager: SecretsManagerSettings,
    /// Compacted topics for connector configs and statuses (with a
    /// configured Kafka).
    pub config_topic: String,
    pub status_topic: String,
    pub config_topic_replication_factor: i32,
    pub status_topic_replication_factor: i32,
    /// librdkafka properties for every producer (`producer.*`).
    pub producer: BTreeMap<String, String>,
    /// librdkafka properties for every consumer (`consumer.*`).
    pub consumer: BTreeMap<String, String>,
    /// Line of each `producer.*` / `consumer.*` key and of each Kafka
    /// security key, for problems found when librdkafka checks them.
    pub property_lines: BTreeMap<String, usize>,
    /// The Kafka security keys (`security.protocol`, `sasl.*`, `ssl.*`)
    /// for every client the worker makes, as written: placeholders stay
    /// unresolved, so a rotated SASL password can be resolved again.
    pub kafka_security: KafkaSecurity,
}

/// The worker's Kafka security keys as written (see [`KAFKA_SECURITY_KEYS`]).
/// Its `Debug` names the keys only: a literal password may be among them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KafkaSecurity(pub BTreeMap<String, String>);

impl std::fmt::Debug for KafkaSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// Worker keys that secure every Kafka client the worker makes: its
/// producers and consumers, the offset, config and status stores, admin
/// clients. librdkafka's names, and Kafka Connect's `sasl.mechanism` and
/// `sasl.jaas.config`. `producer.*`, `consumer.*` and a connector's
/// overrides come after them and win.
pub const KAFKA_SECURITY_KEYS: &[&str] = &[
    "security.protocol",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
    "sasl.jaas.config",
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.key.location",
    "ssl.key.password",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.endpoint.identification.algorithm",
];

/// Where AWS Secrets Manager is and how often to look for new versions of
/// the secrets in use.
#[derive(Clone, Debug)]
pub struct SecretsManagerSettings {
    /// `None`: the default AWS chain's region, else us-east-1.
    pub region: Option<String>,
    /// An emulator's endpoint, e.g. `http://127.0.0.1:5000`.
    pub endpoint: Option<String>,
    pub refresh_interval: Duration,
}

/// Worker keys that set up config providers. Their values may use `env`
/// placeholders only: the providers do not exist yet when they are read.
pub const PROVIDER_KEYS: &[&str] = &[
    "config.providers.file.allowed.paths",
    "config.providers.aws-secretsmanager.region",
    "config.providers.aws-secretsmanager.endpoint",
    "config.providers.aws-secretsmanager.refresh.interval.ms",
];

fn key(name: &str, ty: KeyType, default: Option<&str>, doc: &str) -> KeySpec {
    KeySpec {
        name: name.into(),
        ty,
        default: default.map(Into::into),
        doc: doc.into(),
        secret: false,
    }
}

/// Every key a worker config may hold, besides `producer.*` and
/// `consumer.*` (passed to librdkafka as they are).
pub fn worker_keys() -> Vec<KeySpec> {
    use KeyType::*;
    vec![
        key("bootstrap.servers", String, Some(""), "Kafka brokers, host:port[,host:port]. Empty: start the embedded in-process Kafka (nothing is kept across runs)."),
        key("plugin.path", List, Some("plugins"), "Directories searched for connector plugins (*.wasm)."),
        key("plugin.cache.dir", String, Some(""), "Where compiled plugins are cached. Empty: $XDG_CACHE_HOME/tributary or ~/.cache/tributary."),
        key("offset.storage.file.filename", String, Some(""), "File that keeps source offsets across restarts (Kafka Connect's standalone mode); needs bootstrap.servers. Empty: the offsets topic with a configured Kafka; with the embedded Kafka, offsets live in it and are gone with its records at exit."),
        key("offset.storage.topic", String, Some("tributary-offsets"), "Compacted topic that keeps source offsets when bootstrap.servers is set and offset.storage.file.filename is not."),
        key("offset.storage.partitions", Integer, Some("1"), "Partitions of the offsets topic when the worker creates it."),
        key("offset.storage.replication.factor", Integer, Some("-1"), "Replication factor of the offsets topic when the worker creates it; -1: the broker's default."),
        key("offset.flush.interval.ms", Integer, Some("5000"), "How often acknowledged source offsets are made durable and committed to the task."),
        key("task.memory.max.mb", Integer, Some("256"), "Linear memory limit of each task; a task that needs more fails alone."),
        key("task.call.timeout.ms", Integer, Some("10000"), "Longest a single call into a plugin may run before the task is failed."),
        key("topic.creation.enable", Boolean, Some("true"), "With a configured Kafka, create missing topics (source targets, dead letter queues) before first use."),
        key("topic.creation.default.partitions", Integer, Some("1"), "Partitions of topics the worker creates on a configured Kafka."),
        key("topic.creation.default.replication.factor", Integer, Some("-1"), "Replication factor of topics the worker creates; -1: the broker's default."),
        key("sink.group.id.prefix", String, Some("connect-"), "Consumer group of a sink connector: this prefix + the connector's name (Kafka Connect's default)."),
        key("embedded.topic.partitions", Integer, Some("1"), "Partitions of the topics the embedded Kafka creates."),
        key("source.poll.max.records", Integer, Some("2000"), "Most records a source task returns from one poll."),
        key("sink.batch.max.records", Integer, Some("10000"), "Most records handed to a sink task in one put."),
        key("sink.batch.max.bytes", Integer, Some("8388608"), "Most bytes of keys and values handed to a sink task in one put: a put ends with the record that reaches it (and holds at least one)."),
        key("metrics.log.interval.ms", Integer, Some("5000"), "How often each task logs its record counts; 0 turns it off."),
        key("task.shutdown.graceful.timeout.ms", Integer, Some("10000"), "How long shutdown waits for tasks to flush and commit."),
        key("listeners", String, Some("http://:8083"), "Where the REST API listens: http://host:port or https://host:port (empty host: every interface; port 0: any free port, which the log names). Empty: no REST API, and the worker exits when every task has ended."),
        key("rest.tls.certificate.file", String, Some(""), "With an https:// listener: PEM file holding the server's certificate chain."),
        key("rest.tls.key.file", String, Some(""), "With an https:// listener: PEM file holding the server's private key."),
        KeySpec { secret: true, ..key("rest.auth.token", String, Some(""), "Bearer token required on every REST endpoint but GET /health (a ${provider:…} placeholder keeps it out of the file). Left out: no authentication; a blank value is an error.") },
        key("config.storage.topic", String, Some("tributary-configs"), "Compacted topic that keeps connector configs and target states (Kafka Connect's format) when bootstrap.servers is set."),
        key("config.storage.replication.factor", Integer, Some("-1"), "Replication factor of the config topic when the worker creates it; -1: the broker's default."),
        key("status.storage.topic", String, Some("tributary-status"), "Compacted topic that keeps connector and task statuses when bootstrap.servers is set."),
        key("status.storage.replication.factor", Integer, Some("-1"), "Replication factor of the status topic when the worker creates it; -1: the broker's default."),
        key("file.allowed.paths", List, Some(""), "Directories whose files and subdirectories a connector created over REST may be granted (the `file` of file-source and file-sink, directory keys, a SQLite file, `*.location` client overrides), comma-separated; links and `..` are resolved before the check. Empty: none. Connector files given at start are not limited."),
        key("config.providers.env.allowlist.pattern", String, Some(""), "Regular expression the whole name of an environment variable must match for a connector created over REST to read it with `${env:VAR}` (Kafka Connect's EnvVarConfigProvider setting). Empty: none. The worker config and connector files given at start read any."),
        key("connector.client.config.override.policy", String, Some("None"), "Client overrides a connector created over REST may give: `None` (default): no `producer.override.*` or `consumer.override.*`; `Principal`: only security.protocol, sasl.mechanism(s), sasl.username, sasl.password; `All`: any (Kafka Connect's default). Properties that load code or run commands are refused whatever the policy, and `*.location` files must be under file.allowed.paths."),
        key("connectors.max", Integer, Some("100"), "Most connectors the worker runs; creating one more over REST is refused. Connector files given at start count, and are never refused."),
        key("tasks.max.total", Integer, Some("400"), "Most tasks of all connectors together, counted by their tasks.max; a connector over it is refused over REST."),
        key("security.protocol", String, Some(""), "How every Kafka client of the worker talks to the brokers: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL. Empty: librdkafka's default, PLAINTEXT."),
        key("sasl.mechanism", String, Some(""), "SASL mechanism of every Kafka client: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (Kafka Connect's name; librdkafka's `sasl.mechanisms` is taken too). Empty: librdkafka's default, GSSAPI, which this build does not have."),
        key("sasl.mechanisms", String, Some(""), "librdkafka's name for sasl.mechanism; give one of the two."),
        key("sasl.username", String, Some(""), "SASL username of every Kafka client (PLAIN and SCRAM); may be a placeholder, followed when its secret rotates."),
        KeySpec { secret: true, ..key("sasl.password", String, Some(""), "SASL password of every Kafka client (PLAIN and SCRAM); may be a placeholder (`${aws-secretsmanager:AmazonMSK_NAME:password}`), followed when its secret rotates without restarting a client.") },
        KeySpec { secret: true, ..key("sasl.jaas.config", String, Some(""), "Kafka Connect's way to give the SASL login: `org.apache.kafka.common.security.scram.ScramLoginModule required username=\"…\" password=\"…\";` (or PlainLoginModule). Read for its username and password; give it or sasl.username and sasl.password.") },
        key("ssl.ca.location", String, Some(""), "PEM file of the CA certificates that sign the brokers' certificates. Empty: the system's CA store (librdkafka's default)."),
        key("ssl.certificate.location", String, Some(""), "PEM file of the worker's client certificate, for mutual TLS."),
        key("ssl.key.location", String, Some(""), "PEM file of the client certificate's private key."),
        KeySpec { secret: true, ..key("ssl.key.password", String, Some(""), "Password of ssl.key.location, when it is encrypted.") },
        key("ssl.keystore.location", String, Some(""), "PKCS#12 file holding the client certificate and key (instead of ssl.certificate.location and ssl.key.location)."),
        KeySpec { secret: true, ..key("ssl.keystore.password", String, Some(""), "Password of ssl.keystore.location.") },
        key("ssl.endpoint.identification.algorithm", String, Some(""), "`https` (librdkafka's default): the broker's certificate must name the host the worker connected to; `none`: it need not."),
        key("config.providers.file.allowed.paths", List, Some(""), "Directories `${file:PATH:KEY}` placeholders may read under (comma-separated). Empty: the file provider reads nothing."),
        key("config.providers.aws-secretsmanager.region", String, Some(""), "Region of AWS Secrets Manager for `${aws-secretsmanager:SECRET[:KEY]}` placeholders. Empty: the default AWS chain's (AWS_REGION, profile), else us-east-1."),
        key("config.providers.aws-secretsmanager.endpoint", String, Some(""), "Endpoint of a Secrets Manager emulator (e.g. http://127.0.0.1:5000). Empty: AWS."),
        key("config.providers.aws-secretsmanager.refresh.interval.ms", Integer, Some("300000"), "How often each secret in use is checked for a new AWSCURRENT version (DescribeSecret; GetSecretValue only when it changed)."),
    ]
}

impl WorkerConfig {
    /// The defaults, as an empty file gives them.
    pub fn defaults() -> WorkerConfig {
        WorkerConfig::from_entries(Path::new("(defaults)"), Vec::new(), &Providers::default())
            .expect("defaults are valid")
    }

    /// Reads and checks a worker config file; every problem at once.
    pub fn load(file: &Path, providers: &Providers) -> Result<WorkerConfig, Problems> {
        let (config, problems) = WorkerConfig::load_lenient(file, providers);
        problems.into_result(config)
    }

    /// Like [`WorkerConfig::load`], but always gives a config (defaults where
    /// a key is wrong) alongside the problems, so checks that need it (the
    /// plugin path, librdkafka properties) can still run and report too.
    pub fn load_lenient(file: &Path, providers: &Providers) -> (WorkerConfig, Problems) {
        match load_flat(file) {
            Ok(entries) => WorkerConfig::build(file, entries, providers),
            Err(problems) => (WorkerConfig::defaults(), problems),
        }
    }

    pub fn from_entries(
        file: &Path,
        entries: Vec<Entry>,
        providers: &Providers,
    ) -> Result<WorkerConfig, Problems> {
        let (config, problems) = WorkerConfig::build(file, entries, providers);
        problems.into_result(config)
    }

    fn build(file: &Path, entries: Vec<Entry>, providers: &Providers) -> (WorkerConfig, Problems) {
        let specs = worker_keys();
        let mut problems = Problems::default();
        let mut values: BTreeMap<String, String> = BTreeMap::new();
        let mut lines: BTreeMap<String, usize> = BTreeMap::new();
        let mut producer = BTreeMap::new();
        let mut property_lines = BTreeMap::new();
        let mut consumer = BTreeMap::new();
        let mut kafka_security = BTreeMap::new();
        for entry in entries {
            let written = entry.value.to_config_string();
            let raw = match entry
                .value
                .to_config_string()
                .map(|s| Resolved::resolve(&s, providers))
            {
                None => continue,
                Some(Ok(v)) => v,
                Some(Err(e)) => {
                    problems.push(Problem::placeholder(file, Some(entry.line), &entry.key, e));
                    continue;
                }
            };
            if let Some(prop) = entry.key.strip_prefix("producer.") {
                property_lines.insert(entry.key.clone(), entry.line);
                producer.insert(prop.to_owned(), raw.expose().to_owned());
            } else if let Some(prop) = entry.key.strip_prefix("consumer.") {
                property_lines.insert(entry.key.clone(), entry.line);
                consumer.insert(prop.to_owned(), raw.expose().to_owned());
            } else if let Some(spec) = specs.iter().find(|s| s.name == entry.key) {
                match check_value(spec, &raw) {
                    Ok(v) => {
                        // Blank (an empty variable behind a placeholder,
                        // as in an image configured by environment): unset.
                        if KAFKA_SECURITY_KEYS.contains(&entry.key.as_str()) && !v.trim().is_empty()
                        {
                            property_lines.insert(entry.key.clone(), entry.line);
                            kafka_security
                                .insert(entry.key.clone(), written.clone().unwrap_or_default());
                        }
                        lines.insert(entry.key.clone(), entry.line);
                        values.insert(entry.key, v);
                    }
                    Err(e) => {
                        problems.push(Problem::new(file, Some(entry.line), Some(&entry.key), e))
                    }
                }
            } else {
                let hint = suggest(&entry.key, specs.iter().map(|s| s.name.as_str()));
                problems.push(Problem::new(
                    file,
                    Some(entry.line),
                    Some(&entry.key),
                    format!("unknown worker key{hint}"),
                ));
            }
        }
        let get = |name: &str| -> String {
            values.get(name).cloned().unwrap_or_else(|| {
                specs
                    .iter()
                    .find(|s| s.name == name)
                    .and_then(|s| s.default.clone())
                    .unwrap_or_default()
            })
        };
        let int = |name: &str| -> i64 { get(name).parse().unwrap_or(0) };
        let ms = |name: &str| Duration::from_millis(int(name).max(0) as u64);
        for name in [
            "connectors.max",
            "tasks.max.total",
            "task.memory.max.mb",
            "task.call.timeout.ms",
            "embedded.topic.partitions",
            "source.poll.max.records",
            "sink.batch.max.records",
            "sink.batch.max.bytes",
            "offset.flush.interval.ms",
            "config.providers.aws-secretsmanager.refresh.interval.ms",
        ] {
            if int(name) < 1 {
                problems.push(Problem::new(file, None, Some(name), "must be at least 1"));
            }
        }
        let listeners = get("listeners");
        if !listeners.trim().is_empty() && listener(&listeners).is_none() {
            let line = lines.get("listeners").copied();
            problems.push(Problem::new(file, line, Some("listeners"), format!("expects http://host:port or https://host:port (one listener), got {listeners:?}")));
        }
        let https = listeners.trim().starts_with("https://");
        let (cert, tls_key) = (get("rest.tls.certificate.file"), get("rest.tls.key.file"));
        if https && (cert.is_empty() || tls_key.is_empty()) {
            let line = lines.get("listeners").copied();
            problems.push(Problem::new(
                file,
                line,
                Some("listeners"),
                "an https:// listener needs rest.tls.certificate.file and rest.tls.key.file",
            ));
        }
        // Leaving the key out runs without authentication; a token that is
        // there but blank (an unset variable behind a placeholder, say)
        // must not turn authentication off without a word.
        if let Some(&line) = lines.get("rest.auth.token") {
            if get("rest.auth.token").trim().is_empty() {
                problems.push(Problem::new(
                    file,
                    Some(line),
                    Some("rest.auth.token"),
                    "is empty: a blank token would turn authentication off (leave the key out to run without authentication)",
                ));
            }
        }
        let policy = OverridePolicy::parse(&get("connector.client.config.override.policy"))
            .unwrap_or_else(|e| {
                let key = "connector.client.config.override.policy";
                problems.push(Problem::new(file, lines.get(key).copied(), Some(key), e));
                OverridePolicy::None
            });
        let env_pattern = get("config.providers.env.allowlist.pattern");
        if let Err(e) = check_env_pattern(&env_pattern) {
            let key = "config.providers.env.allowlist.pattern";
            problems.push(Problem::new(file, lines.get(key).copied(), Some(key), e));
        }
        let paths = |name: &str| -> Vec<PathBuf> {
            get(name)
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect()
        };
        // The embedded Kafka forgets its records at exit; offsets kept in a
        // file would outlive them, and a restarted source would skip what
        // only the old embedded Kafka held.
        if let Some(&line) = lines.get("offset.storage.file.filename") {
            if get("bootstrap.servers").trim().is_empty()
                && !get("offset.storage.file.filename").is_empty()
            {
                problems.push(Problem::new(
                    file,
                    Some(line),
                    Some("offset.storage.file.filename"),
                    "needs bootstrap.servers: without it the worker runs the embedded Kafka, which keeps no record after exit, and offsets kept in a file would make a restarted source skip the records only the old embedded Kafka held. Remove the key (with the embedded Kafka, source offsets live in it and a restart reads every source from its start) or set bootstrap.servers",
                ));
            }
        }
        check_kafka_security(
            file,
            &kafka_security,
            &lines,
            get("bootstrap.servers").trim().is_empty(),
            &mut problems,
        );
        let cache = get("plugin.cache.dir");
        let config = WorkerConfig {
            bootstrap_servers: Some(get("bootstrap.servers")).filter(|s| !s.trim().is_empty()),
            plugin_path: get("plugin.path")
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect(),
            plugin_cache_dir: if cache.is_empty() {
                default_cache_dir()
            } else {
                PathBuf::from(cache)
            },
            offset_file: Some(get("offset.storage.file.filename"))
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
            offset_flush_interval: ms("offset.flush.interval.ms"),
            offset_topic: get("offset.storage.topic"),
            offset_topic_partitions: int("offset.storage.partitions").max(1) as i32,
            offset_topic_replication_factor: int("offset.storage.replication.factor") as i32,
            task_memory_max_bytes: (int("task.memory.max.mb").max(1) as u64) << 20,
            task_call_timeout: ms("task.call.timeout.ms"),
            topic_creation: (get("topic.creation.enable") == "true").then(|| {
                (
                    int("topic.creation.default.partitions").max(1) as i32,
                    int("topic.creation.default.replication.factor") as i32,
                )
            }),
            sink_group_id_prefix: get("sink.group.id.prefix"),
            embedded_topic_partitions: int("embedded.topic.partitions").max(1) as i32,
            source_poll_max_records: int("source.poll.max.records").clamp(1, 1 << 20) as u32,
            sink_batch_max_records: int("sink.batch.max.records").clamp(1, 1 << 20) as usize,
            // At most 1 GiB: a sink batch locates its bytes with u32 offsets
            // (ADR 0007), and one record may follow the limit.
            sink_batch_max_bytes: int("sink.batch.max.bytes").clamp(1, 1 << 30) as usize,
            metrics_log_interval: ms("metrics.log.interval.ms"),
            shutdown_timeout: ms("task.shutdown.graceful.timeout.ms"),
            listener: listener(&get("listeners")),
            rest_tls: https.then(|| (PathBuf::from(cert), PathBuf::from(tls_key))),
            rest_token: Some(get("rest.auth.token"))
                .filter(|t| !t.is_empty())
                .map(SecretString::from),
            file_provider_paths: get("config.providers.file.allowed.paths")
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect(),
            file_allowed_paths: paths("file.allowed.paths"),
            env_allowlist: Some(env_pattern).filter(|p| !p.is_empty()),
            override_policy: policy,
            connectors_max: int("connectors.max").max(1) as usize,
            tasks_max_total: int("tasks.max.total").max(1) as usize,
            secrets_manager: SecretsManagerSettings {
                region: Some(get("config.providers.aws-secretsmanager.region"))
                    .filter(|s| !s.trim().is_empty()),
                endpoint: Some(get("config.providers.aws-secretsmanager.endpoint"))
                    .filter(|s| !s.trim().is_empty()),
                refresh_interval: ms("config.providers.aws-secretsmanager.refresh.interval.ms"),
            },
            config_topic: get("config.storage.topic"),
            status_topic: get("status.storage.topic"),
            config_topic_replication_factor: int("config.storage.replication.factor") as i32,
            status_topic_replication_factor: int("status.storage.replication.factor") as i32,
            producer,
            consumer,
            property_lines,
            kafka_security: KafkaSecurity(kafka_security),
        };
        (config, problems)
    }
}

/// The security keys' own rules: one name per setting, and a Kafka to
/// secure (the embedded Kafka is in process and takes none).
fn check_kafka_security(
    file: &Path,
    security: &BTreeMap<String, String>,
    lines: &BTreeMap<String, usize>,
    embedded: bool,
    problems: &mut Problems,
) {
    let line = |key: &str| lines.get(key).copied();
    for (a, b) in [
        ("sasl.mechanism", "sasl.mechanisms"),
        ("sasl.jaas.config", "sasl.username"),
        ("sasl.jaas.config", "sasl.password"),
    ] {
        if security.contains_key(a) && security.contains_key(b) {
            problems.push(Problem::new(
                file,
                line(b),
                Some(b),
                format!("give {a} or {b}, not both"),
            ));
        }
    }
    // A login is a pair: librdkafka would log in with an empty half.
    for (given, missing) in [
        ("sasl.username", "sasl.password"),
        ("sasl.password", "sasl.username"),
    ] {
        if security.contains_key(given)
            && !security.contains_key(missing)
            && !security.contains_key("sasl.jaas.config")
        {
            problems.push(Problem::new(
                file,
                line(given),
                Some(given),
                format!("needs {missing} too: a SASL login is a username and a password"),
            ));
        }
    }
    if embedded {
        if let Some(key) = security.keys().next() {
            problems.push(Problem::new(
                file,
                line(key),
                Some(key),
                "needs bootstrap.servers: the embedded Kafka runs inside the worker and takes no security settings",
            ));
        }
    }
}

/// `http://host:port` → `host:port` (an empty host: every interface).
fn listener(value: &str) -> Option<String> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    let rest = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"))?;
    let (host, port) = rest.trim_end_matches('/').rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    Some(format!("{host}:{port}"))
}

fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("tributary");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(home).join(".cache").join("tributary");
    }
    std::env::temp_dir().join("tributary-cache")
}

/// ` (did you mean `x`?)` when a known key is one or two edits away.
pub(crate) fn suggest<'a>(key: &str, known: impl Iterator<Item = &'a str>) -> String {
    // Only a key within two characters of the length can be two edits away,
    // which spares comparing a very long key letter by letter.
    let len = key.chars().count();
    known
        .filter(|k| k.chars().count().abs_diff(len) <= 2)
        .map(|k| (edit_distance(key, k), k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::yaml::parse_flat;

    fn load(text: &str) -> Result<WorkerConfig, Problems> {
        let file = Path::new("worker.yaml");
        WorkerConfig::from_entries(file, parse_flat(file, text)?, &Providers::default())
    }

    #[test]
    fn defaults_mean_embedded_kafka() {
        let c = load("").unwrap();
        assert_eq!(c.bootstrap_servers, None);
        assert_eq!(c.plugin_path, vec![PathBuf::from("plugins")]);
        assert_eq!(c.sink_group_id_prefix, "connect-");
        assert_eq!(c.listener.as_deref(), Some("0.0.0.0:8083"));
        assert!(c.rest_token.is_none());
    }

    #[test]
    fn a_blank_rest_token_is_an_error_naming_the_key() {
        std::env::set_var("TRIBUTARY_WORKER_TEST_BLANK_TOKEN", "");
        let providers = Providers::default();
        for text in [
            "rest.auth.token: \"\"\n",
            "rest.auth.token: \"   \"\n",
            "listeners: http://127.0.0.1:0\nrest.auth.token: ${env:TRIBUTARY_WORKER_TEST_BLANK_TOKEN}\n",
        ] {
            let file = Path::new("worker.yaml");
            let entries = parse_flat(file, text).unwrap();
            let shown = WorkerConfig::from_entries(file, entries, &providers)
                .map(|_| ())
                .unwrap_err()
                .to_string();
            assert!(
                shown.contains("`rest.auth.token`: is empty: a blank token would turn authentication off"),
                "{text:?}: {shown}"
            );
        }
        let c = load("rest.auth.token: t0ken\n").unwrap();
        assert!(c.rest_token.is_some());
    }

    #[test]
    fn listeners_are_checked() {
        assert_eq!(
            load("listeners: http://127.0.0.1:0\n")
                .unwrap()
                .listener
                .as_deref(),
            Some("127.0.0.1:0")
        );
        assert_eq!(load("listeners: ''\n").unwrap().listener, None);
        let err = load("listeners: ftp://x:1\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("worker.yaml:1: `listeners`: expects http://host:port"),
            "{err}"
        );
        let err = load("listeners: https://x:1\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("`listeners`: an https:// listener needs rest.tls.certificate.file"),
            "{err}"
        );
        let c = load(
            "listeners: https://:8443\nrest.tls.certificate.file: c.pem\nrest.tls.key.file: k.pem\n",
        )
        .unwrap();
        assert_eq!(c.listener.as_deref(), Some("0.0.0.0:8443"));
        assert_eq!(
            c.rest_tls,
            Some((PathBuf::from("c.pem"), PathBuf::from("k.pem")))
        );
    }

    #[test]
    fn kafka_security_keys_are_kept_as_written_and_blank_ones_are_unset() {
        std::env::set_var("TRIBUTARY_WORKER_TEST_KAFKA_USER", "alice");
        std::env::set_var("TRIBUTARY_WORKER_TEST_KAFKA_BLANK", "");
        let c = load(
            "bootstrap.servers: k:9096\nsecurity.protocol: SASL_SSL\nsasl:\n  mechanism: SCRAM-SHA-512\n  username: ${env:TRIBUTARY_WORKER_TEST_KAFKA_USER}\n  password: pw\nssl.ca.location: ${env:TRIBUTARY_WORKER_TEST_KAFKA_BLANK}\n",
        )
        .unwrap();
        let kept: Vec<(&str, &str)> = c
            .kafka_security
            .0
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            kept,
            [
                ("sasl.mechanism", "SCRAM-SHA-512"),
                ("sasl.password", "pw"),
                ("sasl.username", "${env:TRIBUTARY_WORKER_TEST_KAFKA_USER}"),
                ("security.protocol", "SASL_SSL"),
            ]
        );
        assert_eq!(
            format!("{:?}", c.kafka_security),
            r#"{"sasl.mechanism", "sasl.password", "sasl.username", "security.protocol"}"#,
            "Debug names the keys only"
        );
    }

    #[test]
    fn kafka_security_keys_need_a_kafka_and_one_name_per_setting() {
        let text = load("security.protocol: SSL\n").unwrap_err().to_string();
        assert!(
            text.contains("worker.yaml:1: `security.protocol`: needs bootstrap.servers"),
            "{text}"
        );
        let text = load(
            "bootstrap.servers: k:9096\nsasl.mechanism: PLAIN\nsasl.mechanisms: PLAIN\nsasl.jaas.config: x\nsasl.password: y\n",
        )
        .unwrap_err()
        .to_string();
        let half = load("bootstrap.servers: k:9096\nsasl.username: alice\n")
            .unwrap_err()
            .to_string();
        assert!(
            half.contains("`sasl.username`: needs sasl.password too"),
            "{half}"
        );
        assert!(
            text.contains("`sasl.mechanisms`: give sasl.mechanism or sasl.mechanisms, not both"),
            "{text}"
        );
        assert!(
            text.contains("`sasl.password`: give sasl.jaas.config or sasl.password, not both"),
            "{text}"
        );
    }

    #[test]
    fn librdkafka_sections_pass_through() {
        let c = load(
            "bootstrap.servers: k:9092\nproducer:\n  linger.ms: 5\nconsumer.fetch.min.bytes: 1\n",
        )
        .unwrap();
        assert_eq!(c.bootstrap_servers.as_deref(), Some("k:9092"));
        assert_eq!(c.producer.get("linger.ms").map(String::as_str), Some("5"));
        assert_eq!(
            c.consumer.get("fetch.min.bytes").map(String::as_str),
            Some("1")
        );
    }

    #[test]
    fn every_problem_is_reported_with_line_and_key() {
        let err = load("plugin.pth: x\ntask.memory.max.mb: lots\noffset.flush.interval.ms: ${env:TRIBUTARY_UNSET_FOR_TEST}\n").unwrap_err();
        let text = err.to_string();
        assert_eq!(err.0.len(), 3, "{text}");
        assert!(
            text.contains(
                "worker.yaml:1: `plugin.pth`: unknown worker key (did you mean `plugin.path`?)"
            ),
            "{text}"
        );
        assert!(
            text.contains("worker.yaml:2: `task.memory.max.mb`: expects an integer, got \"lots\""),
            "{text}"
        );
        assert!(
            text.contains("worker.yaml:3: `offset.flush.interval.ms`: placeholder"),
            "{text}"
        );
    }
}
