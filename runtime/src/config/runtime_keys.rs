//! The keys the worker itself reads from a connector config (Kafka
//! Connect's names), and the settings they make: one table row per key,
//! with its type, default, doc and how it applies.
//!
//! Keys of these families are the worker's too, besides the table's rows:
//! `connection.*` (database connections, see [`super::Connections`]),
//! `store.*` (object stores, see [`super::Stores`]), `producer.override.*`
//! and `consumer.override.*` (librdkafka properties, except
//! `consumer.override.max.poll.records`, which sizes sink batches). This
//! module never sees a plugin's own keys: the connector's description
//! decides those.

use super::connection::Connections;
use super::store::Stores;
use super::Resolved;
use crate::contract::KeyType;
use std::collections::BTreeMap;
use std::time::Duration;

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

/// How the worker applies a runtime key's value.
#[derive(Clone, Copy)]
pub enum Apply {
    /// Chooses the plugin; read before every other key.
    ChoosesPlugin,
    /// Sets worker-owned settings of the connector; an error says what is
    /// wrong with the value (shown as written when it came from a
    /// placeholder).
    Sets(fn(&mut RuntimeKeys, &Resolved) -> Result<(), String>),
    /// A field of the `default` database connection (every `connection.*`
    /// key goes to [`Connections::set`]).
    Connection,
    /// A field of the `default` object store (every `store.*` key goes to
    /// [`Stores::set`]).
    Store,
}

/// One key the worker reads from a connector config.
#[derive(Clone, Copy)]
pub struct RuntimeKey {
    pub name: &'static str,
    pub ty: KeyType,
    /// `None`: unset unless given (required, or the worker's own setting).
    pub default: Option<&'static str>,
    pub doc: &'static str,
    pub apply: Apply,
}

const fn key(
    name: &'static str,
    ty: KeyType,
    default: Option<&'static str>,
    doc: &'static str,
    apply: Apply,
) -> RuntimeKey {
    RuntimeKey {
        name,
        ty,
        default,
        doc,
        apply,
    }
}

/// Every key the worker reads from a connector config, besides
/// `producer.override.*`, `consumer.override.*` and the other fields of
/// `connection.*` and `store.*`.
pub const RUNTIME_KEYS: &[RuntimeKey] = {
    use Apply::*;
    use KeyType::*;
    &[
        key(
            "connector.class",
            String,
            None,
            "The plugin connector to run, by the name it describes (`tributary plugins`). Required.",
            ChoosesPlugin,
        ),
        key(
            "connector.plugin.version",
            String,
            None,
            "The plugin version to run; the newest found when unset.",
            ChoosesPlugin,
        ),
        key(
            "tasks.max",
            Integer,
            Some("1"),
            "Most tasks to split the work into (default 1).",
            Sets(|r, v| {
                r.tasks_max = number(v, 1)?.min(1024) as u32;
                Ok(())
            }),
        ),
        key(
            "topics",
            List,
            None,
            "Sink connectors: comma-separated topics to consume.",
            Sets(|r, v| {
                r.topics = v
                    .expose()
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(From::from)
                    .collect();
                Ok(())
            }),
        ),
        key(
            "topics.regex",
            String,
            None,
            "Sink connectors: a regular expression of topics to consume, instead of `topics`.",
            // librdkafka compiles it: the worker asks it when it checks a
            // connector's client settings (`Worker::check_client_settings`).
            Sets(|r, v| {
                r.topics_regex = Some(v.expose().to_owned());
                Ok(())
            }),
        ),
        key(
            "task.memory.max.mb",
            Integer,
            None,
            "Overrides the worker's per-task memory limit for this connector.",
            Sets(|r, v| {
                r.task_memory_max_bytes = Some((number(v, 1)? as u64) << 20);
                Ok(())
            }),
        ),
        key(
            "errors.tolerance",
            String,
            Some("none"),
            "`none` (default): a record that cannot be written or produced fails the task. `all`: it is skipped (logged, sent to the dead letter queue) and the task goes on.",
            Sets(|r, v| match v.expose().trim() {
                "none" | "all" => {
                    r.errors.tolerate_all = v.expose().trim() == "all";
                    Ok(())
                }
                _ => Err(format!("expects `none` or `all`, got {v:?}")),
            }),
        ),
        key(
            "errors.retry.timeout",
            Integer,
            Some("-1"),
            "Milliseconds a failing operation (a retriable plugin error, a record the plugin asks to retry) is retried before it counts as failed; -1 (default): retry until it works.",
            Sets(|r, v| {
                let n = number(v, -1)?;
                r.errors.retry_timeout = (n >= 0).then(|| Duration::from_millis(n as u64));
                Ok(())
            }),
        ),
        key(
            "errors.retry.delay.max.ms",
            Integer,
            Some("60000"),
            "Longest wait between retries (exponential backoff with jitter); default 60000.",
            Sets(|r, v| {
                r.errors.retry_delay_max = Duration::from_millis(number(v, 1)? as u64);
                Ok(())
            }),
        ),
        key(
            "errors.log.enable",
            Boolean,
            Some("false"),
            "Log every tolerated error with its record's topic, partition and offset (default false).",
            Sets(|r, v| boolean(v).map(|b| r.errors.log = b)),
        ),
        key(
            "errors.log.include.messages",
            Boolean,
            Some("false"),
            "Include the record's key and value in those log lines (default false).",
            Sets(|r, v| boolean(v).map(|b| r.errors.log_messages = b)),
        ),
        key(
            "errors.deadletterqueue.topic.name",
            String,
            Some(""),
            "Topic that receives records skipped under `errors.tolerance=all`, unchanged; empty (default): none.",
            Sets(|r, v| {
                r.errors.dlq_topic = Some(v.expose().trim().to_owned()).filter(|t| !t.is_empty());
                Ok(())
            }),
        ),
        key(
            "errors.deadletterqueue.context.headers.enable",
            Boolean,
            Some("true"),
            "Add `__connect.errors.*` headers (original topic, partition, offset, connector, task, stage, error class and message) to dead-lettered records (default true).",
            Sets(|r, v| boolean(v).map(|b| r.errors.dlq_context_headers = b)),
        ),
        key(
            "task.call.timeout.ms",
            Integer,
            None,
            "Overrides the worker's per-call deadline for this connector.",
            Sets(|r, v| {
                r.task_call_timeout = Some(Duration::from_millis(number(v, 1)? as u64));
                Ok(())
            }),
        ),
        key(
            "connection.url",
            String,
            None,
            "A database the connector may use (the connection `default`); `connection.<name>.url` names others. See docs/connectors/database.md for every `connection.*` key.",
            Connection,
        ),
        key(
            "connection.user",
            String,
            None,
            "User of the `default` connection.",
            Connection,
        ),
        key(
            "connection.password",
            String,
            None,
            "Password of the `default` connection (secret; never passed to the plugin).",
            Connection,
        ),
        key(
            "store.bucket",
            String,
            None,
            "A bucket the connector may use (the store `default`); `store.<name>.bucket` names others. See docs/connectors/s3.md for every `store.*` key.",
            Store,
        ),
        key(
            "store.region",
            String,
            None,
            "Region of the `default` store.",
            Store,
        ),
        key(
            "store.endpoint",
            String,
            None,
            "S3-compatible endpoint of the `default` store.",
            Store,
        ),
        key(
            "store.path.style",
            Boolean,
            Some("false"),
            "Path-style addressing for the `default` store.",
            Store,
        ),
        key(
            "store.access.key.id",
            String,
            None,
            "Access key id of the `default` store.",
            Store,
        ),
        key(
            "store.secret.access.key",
            String,
            None,
            "Secret access key of the `default` store (secret; never passed to the plugin).",
            Store,
        ),
    ]
};

/// The names and docs of [`RUNTIME_KEYS`], in its order.
pub const CONNECTOR_RUNTIME_KEYS: &[(&str, &str)] = &{
    let mut pairs = [("", ""); RUNTIME_KEYS.len()];
    let mut i = 0;
    while i < pairs.len() {
        pairs[i] = (RUNTIME_KEYS[i].name, RUNTIME_KEYS[i].doc);
        i += 1;
    }
    pairs
};

impl RuntimeKeys {
    /// The settings of a connector config that sets none of the keys.
    pub fn defaults() -> RuntimeKeys {
        let mut runtime = RuntimeKeys::default();
        for k in RUNTIME_KEYS {
            if let (Some(default), Apply::Sets(set)) = (k.default, k.apply) {
                set(&mut runtime, &Resolved::literal(default)).expect("the defaults are valid");
            }
        }
        runtime
    }

    /// Applies one key (without `config.`) given at `line`: `None` when it
    /// is not the worker's, else whether its value was taken. The plugin's
    /// choice (`connector.class`, `connector.plugin.version`) is read
    /// before; here it is no key of the worker's.
    pub fn apply(
        &mut self,
        key: &str,
        value: &Resolved,
        line: usize,
    ) -> Option<Result<(), String>> {
        if key.starts_with("producer.override.") || key.starts_with("consumer.override.") {
            self.property_lines.insert(key.to_owned(), line);
        }
        if let Some(rest) = key.strip_prefix("connection.") {
            return Some(self.connections.set(rest, value));
        }
        if let Some(rest) = key.strip_prefix("store.") {
            return Some(self.stores.set(rest, value));
        }
        if let Some(prop) = key.strip_prefix("producer.override.") {
            self.producer_overrides
                .insert(prop.to_owned(), value.expose().to_owned());
            return Some(Ok(()));
        }
        if key == "consumer.override.max.poll.records" {
            // A Java consumer's property, not librdkafka's: the size of
            // the batches this connector's sink tasks get.
            return Some(
                number(value, 1)
                    .map(|n| self.sink_batch_max_records = Some(n.min(1 << 20) as usize)),
            );
        }
        if let Some(prop) = key.strip_prefix("consumer.override.") {
            self.consumer_overrides
                .insert(prop.to_owned(), value.expose().to_owned());
            return Some(Ok(()));
        }
        match RUNTIME_KEYS.iter().find(|k| k.name == key)?.apply {
            Apply::Sets(set) => Some(set(self, value)),
            Apply::ChoosesPlugin | Apply::Connection | Apply::Store => None,
        }
    }
}

/// An integer of at least `min`.
fn number(value: &Resolved, min: i64) -> Result<i64, String> {
    match value.expose().trim().parse::<i64>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(format!(
            "expects an integer of at least {min}, got {value:?}"
        )),
    }
}

fn boolean(value: &Resolved) -> Result<bool, String> {
    match value.expose().trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("expects true or false, got {value:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_defaults_are_the_settings_of_an_empty_config() {
        let runtime = RuntimeKeys::defaults();
        assert_eq!(runtime.tasks_max, 1);
        assert_eq!(runtime.errors, ErrorSettings::default());
        assert!(runtime.topics.is_empty() && runtime.topics_regex.is_none());
        assert_eq!(runtime.task_memory_max_bytes, None);
        assert_eq!(runtime.task_call_timeout, None);
    }

    #[test]
    fn every_row_is_named_once_and_listed_by_name() {
        let mut names: Vec<&str> = RUNTIME_KEYS.iter().map(|k| k.name).collect();
        assert_eq!(
            names,
            CONNECTOR_RUNTIME_KEYS
                .iter()
                .map(|(k, _)| *k)
                .collect::<Vec<_>>()
        );
        names.sort_unstable();
        names.dedup();
        assert_eq!(
            names.len(),
            RUNTIME_KEYS.len(),
            "a key is in the table twice"
        );
    }

    #[test]
    fn each_key_applies_to_its_setting_and_names_what_it_expects() {
        let mut r = RuntimeKeys::defaults();
        assert_eq!(r.apply("tasks.max", &"5000".into(), 3), Some(Ok(())));
        assert_eq!(r.tasks_max, 1024, "capped");
        assert_eq!(
            r.apply("errors.retry.timeout", &"250".into(), 4),
            Some(Ok(()))
        );
        assert_eq!(r.errors.retry_timeout, Some(Duration::from_millis(250)));
        assert_eq!(
            r.apply("errors.log.enable", &"yes".into(), 5),
            Some(Err("expects true or false, got \"yes\"".into()))
        );
        assert_eq!(
            r.apply("errors.tolerance", &"some".into(), 6),
            Some(Err("expects `none` or `all`, got \"some\"".into()))
        );
        assert_eq!(
            r.apply("consumer.override.max.poll.records", &"9".into(), 7),
            Some(Ok(()))
        );
        assert_eq!(r.sink_batch_max_records, Some(9));
        assert_eq!(
            r.property_lines.get("consumer.override.max.poll.records"),
            Some(&7)
        );
        assert_eq!(r.apply("connector.class", &"file-source".into(), 8), None);
        assert_eq!(r.apply("tpoic", &"t".into(), 9), None);
    }
}
