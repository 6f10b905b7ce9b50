//! A connector's configuration as the guest receives it, read as typed
//! values: `config.get::<u32>("batch.size")` gives the value the user set,
//! or else the key's declared default, parsed; an error names the key.
//!
//! This module never checks a config against a description the way the
//! worker does (that happened before the guest sees it); it only reads.

use std::fmt;

use crate::describe::Key;
use crate::TaskError;

/// Key/value configuration, with the key declarations of the connector's
/// description (for defaults). The worker has checked required keys and
/// types against the description before the guest sees it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    pairs: Vec<(String, String)>,
    keys: Vec<Key>,
}

impl Config {
    /// `pairs` read against the key declarations `keys` (a description's
    /// [`keys`](crate::Description::keys)), whose defaults fill in unset
    /// keys.
    pub fn new(keys: &[Key], pairs: Vec<(String, String)>) -> Config {
        Config {
            pairs,
            keys: keys.to_vec(),
        }
    }

    /// `key` as a `T`: the value set, or else the key's declared default.
    /// Errors name the key: unset with no default, or not a `T`.
    ///
    /// ```
    /// use tributary_sdk::{Config, Key};
    ///
    /// let keys = [Key::integer("batch.size").default("2000")];
    /// let config = Config::new(&keys, vec![]);
    /// assert_eq!(config.get::<u32>("batch.size").unwrap(), 2000);
    /// let config = Config::new(&keys, vec![("batch.size".into(), "-1".into())]);
    /// let e = config.get::<u32>("batch.size").unwrap_err();
    /// assert_eq!(e.to_string(), "config key `batch.size`: cannot use \"-1\": expects a whole number from 0 to 4294967295");
    /// ```
    pub fn get<T: ConfigValue>(&self, key: &str) -> Result<T, ConfigError> {
        match self.value(key) {
            Some(raw) => T::from_config(raw).map_err(|why| ConfigError {
                key: key.to_owned(),
                message: format!("cannot use {raw:?}: {why}"),
            }),
            None => Err(ConfigError {
                key: key.to_owned(),
                message: if self.keys.iter().any(|k| k.name == key) {
                    "is required".to_owned()
                } else {
                    "is not set, and the connector declares no such key".to_owned()
                },
            }),
        }
    }

    /// `key` as a `T`, or `None` when it is neither set nor has a default
    /// (an optional key without a default).
    pub fn get_opt<T: ConfigValue>(&self, key: &str) -> Result<Option<T>, ConfigError> {
        match self.value(key) {
            None => Ok(None),
            Some(_) => self.get(key).map(Some),
        }
    }

    /// The value the user set for `key`, as written; `None` when unset
    /// (declared defaults do not count).
    pub fn raw(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value set, or else the declared default.
    fn value(&self, key: &str) -> Option<&str> {
        self.raw(key).or_else(|| {
            self.keys
                .iter()
                .find(|k| k.name == key)
                .and_then(|k| k.default.as_deref())
        })
    }

    /// Sets `key` (replacing an earlier value).
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        self.pairs.retain(|(k, _)| *k != key);
        self.pairs.push((key, value.into()));
    }

    /// All pairs the user set, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// Consumes the config into its pairs.
    pub fn into_pairs(self) -> Vec<(String, String)> {
        self.pairs
    }
}

impl From<Vec<(String, String)>> for Config {
    /// Pairs without key declarations: only the keys set have values.
    fn from(pairs: Vec<(String, String)>) -> Self {
        Config {
            pairs,
            keys: Vec::new(),
        }
    }
}

/// A config value that cannot be used: which key, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config key `{}`: {}", self.key, self.message)
    }
}

impl std::error::Error for ConfigError {}

impl From<ConfigError> for TaskError {
    /// A task cannot run with a config it cannot read: fatal.
    fn from(e: ConfigError) -> TaskError {
        TaskError::Fatal(e.to_string())
    }
}

impl From<ConfigError> for ConfigIssue {
    fn from(e: ConfigError) -> ConfigIssue {
        ConfigIssue {
            key: e.key,
            message: e.message,
        }
    }
}

/// A problem with one config key, for `validate`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigIssue {
    pub key: String,
    pub message: String,
}

impl ConfigIssue {
    pub fn new(key: &str, message: impl Into<String>) -> ConfigIssue {
        ConfigIssue {
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.key, self.message)
    }
}

/// A type a config value can be read as ([`Config::get`]).
pub trait ConfigValue: Sized {
    /// `raw` as this type, or what was expected instead.
    fn from_config(raw: &str) -> Result<Self, String>;
}

impl ConfigValue for String {
    /// The text as written.
    fn from_config(raw: &str) -> Result<Self, String> {
        Ok(raw.to_owned())
    }
}

impl ConfigValue for bool {
    fn from_config(raw: &str) -> Result<Self, String> {
        match raw.trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err("expects true or false".to_owned()),
        }
    }
}

impl ConfigValue for f64 {
    fn from_config(raw: &str) -> Result<Self, String> {
        raw.trim()
            .parse()
            .map_err(|_| "expects a number".to_owned())
    }
}

impl ConfigValue for Vec<String> {
    /// The comma-separated items, trimmed; empty items dropped.
    fn from_config(raw: &str) -> Result<Self, String> {
        Ok(raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect())
    }
}

macro_rules! integer_values {
    ($($t:ty),*) => {$(
        impl ConfigValue for $t {
            fn from_config(raw: &str) -> Result<Self, String> {
                raw.trim().parse().map_err(|_| {
                    format!("expects a whole number from {} to {}", <$t>::MIN, <$t>::MAX)
                })
            }
        }
    )*};
}

integer_values!(i32, i64, u16, u32, u64, usize);

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        let keys = [
            Key::integer("batch.size").default("2000"),
            Key::string("topic"),
            Key::list("fields").default(""),
            Key::boolean("auto.create").default("false"),
        ];
        let pairs = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::new(&keys, pairs)
    }

    #[test]
    fn values_are_read_typed_from_the_config_or_the_declared_default() {
        let c = config(&[("batch.size", " 10 "), ("fields", "a, b,,c")]);
        assert_eq!(c.get::<u32>("batch.size"), Ok(10));
        assert_eq!(c.get::<Vec<String>>("fields").unwrap(), ["a", "b", "c"]);
        assert_eq!(c.get::<bool>("auto.create"), Ok(false));
        assert_eq!(c.raw("auto.create"), None, "a default is not a set value");
        assert_eq!(config(&[]).get::<usize>("batch.size"), Ok(2000));
        assert_eq!(c.get_opt::<String>("topic"), Ok(None));
    }

    #[test]
    fn errors_name_the_key_and_what_is_wrong() {
        let e = config(&[]).get::<String>("topic").unwrap_err();
        assert_eq!(e.to_string(), "config key `topic`: is required");
        let e = config(&[("auto.create", "yes")])
            .get::<bool>("auto.create")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "config key `auto.create`: cannot use \"yes\": expects true or false"
        );
        let e = config(&[]).get::<i64>("nope").unwrap_err();
        assert!(e.message.contains("declares no such key"), "{e}");
        let issue: ConfigIssue = e.into();
        assert_eq!(issue.key, "nope");
        let fatal: TaskError = config(&[("batch.size", "x")])
            .get::<u32>("batch.size")
            .unwrap_err()
            .into();
        assert!(matches!(fatal, TaskError::Fatal(m) if m.starts_with("config key `batch.size`")));
    }
}
