//! A connector's configuration as the guest receives it.

use crate::TaskError;
use std::str::FromStr;

/// Key/value configuration. The worker has checked required keys and types
/// against the connector's description, and filled in defaults, before the
/// guest sees it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    pairs: Vec<(String, String)>,
}

impl Config {
    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key`, or a fatal task error naming the key.
    pub fn require(&self, key: &str) -> Result<&str, TaskError> {
        self.get(key)
            .ok_or_else(|| TaskError::Fatal(format!("config key `{key}` is required")))
    }

    /// The value of `key` parsed as `T`, `default` when unset, or a fatal
    /// task error naming the key and the value.
    pub fn parse_or<T: FromStr>(&self, key: &str, default: T) -> Result<T, TaskError>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(key) {
            None => Ok(default),
            Some(raw) => raw.parse().map_err(|e| {
                TaskError::Fatal(format!("config key `{key}`: cannot use {raw:?}: {e}"))
            }),
        }
    }

    /// Sets `key` (replacing an earlier value).
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        self.pairs.retain(|(k, _)| *k != key);
        self.pairs.push((key, value.into()));
    }

    /// All pairs, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// Consumes the config into its pairs.
    pub fn into_pairs(self) -> Vec<(String, String)> {
        self.pairs
    }
}

impl From<Vec<(String, String)>> for Config {
    fn from(pairs: Vec<(String, String)>) -> Self {
        Config { pairs }
    }
}
