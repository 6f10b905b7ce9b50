//! Connector configs and target states, in Kafka Connect's record shapes
//! (the config topic of its distributed mode): `connector-<name>` →
//! `{"properties":{…}}`, `target-state-<name>` →
//! `{"state":"PAUSED","state.v2":"PAUSED"}`.
//!
//! `kafka::ConfigTopicStore` keeps them in a compacted topic;
//! [`MemoryConfigStore`] keeps them for the life of the process (the
//! embedded Kafka keeps nothing either). A [`ConfigStore`] keeps the
//! statuses of connectors and tasks too, as the status topic's records.

use super::statuses::{StatusKey, StatusRecord};
use super::Record;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// What a connector should be doing, with Kafka Connect's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetState {
    Running,
    Paused,
    Stopped,
}

impl TargetState {
    /// Kafka Connect's name: `RUNNING` (its `STARTED`), `PAUSED`, `STOPPED`.
    pub fn name(self) -> &'static str {
        match self {
            TargetState::Running => "RUNNING",
            TargetState::Paused => "PAUSED",
            TargetState::Stopped => "STOPPED",
        }
    }

    /// Parses Kafka Connect's names (`STARTED` and `RUNNING` alike).
    pub fn parse(s: &str) -> Option<TargetState> {
        match s.trim().to_ascii_uppercase().as_str() {
            "RUNNING" | "STARTED" => Some(TargetState::Running),
            "PAUSED" => Some(TargetState::Paused),
            "STOPPED" => Some(TargetState::Stopped),
            _ => None,
        }
    }
}

/// A connector as stored: its config as submitted (placeholders
/// unresolved, without `name`) and its target state.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredConnector {
    pub config: BTreeMap<String, String>,
    pub target: TargetState,
}

/// Durable storage of connector configs, target states and statuses.
/// Writes return once durable.
pub trait ConfigStore: Send + Sync {
    /// Every connector stored (as read at start, and written since).
    fn connectors(&self) -> BTreeMap<String, StoredConnector>;
    /// Stores a connector's config and target state.
    fn put(&self, name: &str, connector: &StoredConnector) -> Result<(), String>;
    /// Stores a connector's target state only.
    fn put_target(&self, name: &str, target: TargetState) -> Result<(), String>;
    /// Forgets a connector: its config, target state and statuses.
    fn remove(&self, name: &str, statuses: &[StatusKey]) -> Result<(), String>;
    /// Records a status (`None`: forget it).
    fn put_status(&self, key: &StatusKey, status: Option<&StatusRecord>) -> Result<(), String>;
}

/// The config topic's record value for a connector's config.
pub fn config_value(config: &BTreeMap<String, String>) -> String {
    serde_json::json!({ "properties": config }).to_string()
}

/// The config topic's record value for a target state. `state` alone is
/// what Kafka Connect before 3.5 reads (it knows no STOPPED: it sees
/// PAUSED), `state.v2` what newer versions read.
pub fn target_value(target: TargetState) -> String {
    let v1 = match target {
        TargetState::Running => "STARTED",
        TargetState::Paused | TargetState::Stopped => "PAUSED",
    };
    let v2 = match target {
        TargetState::Running => "STARTED",
        other => other.name(),
    };
    serde_json::json!({ "state": v1, "state.v2": v2 }).to_string()
}

/// The config topic's records that store a connector: its config (with
/// `name`, as Kafka Connect writes it) and its target state.
pub fn connector_records(name: &str, connector: &StoredConnector) -> Vec<Record> {
    let mut config = connector.config.clone();
    config.insert("name".into(), name.to_owned());
    vec![
        (format!("connector-{name}"), Some(config_value(&config))),
        (
            format!("target-state-{name}"),
            Some(target_value(connector.target)),
        ),
    ]
}

/// The config topic's record that stores a connector's target state.
pub fn target_record(name: &str, target: TargetState) -> Record {
    (format!("target-state-{name}"), Some(target_value(target)))
}

/// The config topic's tombstones that forget a connector.
pub fn removal_records(name: &str) -> Vec<Record> {
    vec![
        (format!("connector-{name}"), None),
        (format!("target-state-{name}"), None),
    ]
}

/// Applies one config-topic record (key, value or tombstone) to `into`;
/// false when the record is not one this store knows.
pub fn apply_config_record(
    into: &mut BTreeMap<String, StoredConnector>,
    key: &str,
    value: Option<&str>,
) -> bool {
    let json = value.map(serde_json::from_str::<serde_json::Value>);
    if let Some(name) = key.strip_prefix("connector-") {
        match json {
            None => {
                into.remove(name);
                true
            }
            Some(Ok(v)) => {
                let Some(props) = v.get("properties").and_then(|p| p.as_object()) else {
                    return false;
                };
                let config = props
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .filter(|(k, _)| k != "name")
                    .collect();
                let target = into.get(name).map_or(TargetState::Running, |c| c.target);
                into.insert(name.to_owned(), StoredConnector { config, target });
                true
            }
            Some(Err(_)) => false,
        }
    } else if let Some(name) = key.strip_prefix("target-state-") {
        let Some(Ok(v)) = json else {
            // A target state's tombstone comes with the connector's.
            return json.is_none();
        };
        let state = v
            .get("state.v2")
            .or_else(|| v.get("state"))
            .and_then(|s| s.as_str())
            .and_then(TargetState::parse);
        match (state, into.get_mut(name)) {
            (Some(s), Some(c)) => {
                c.target = s;
                true
            }
            (Some(_), None) => true,
            (None, _) => false,
        }
    } else {
        // Kafka Connect's task-… and commit-… records: tributary computes
        // task configs itself.
        key.starts_with("task-") || key.starts_with("commit-")
    }
}

/// Configs, target states and statuses in memory, for a worker without a
/// configured Kafka.
#[derive(Default)]
pub struct MemoryConfigStore {
    connectors: Mutex<BTreeMap<String, StoredConnector>>,
    statuses: Mutex<BTreeMap<StatusKey, StatusRecord>>,
}

impl MemoryConfigStore {
    /// The statuses recorded (for tests).
    pub fn statuses(&self) -> BTreeMap<StatusKey, StatusRecord> {
        self.statuses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl ConfigStore for MemoryConfigStore {
    fn connectors(&self) -> BTreeMap<String, StoredConnector> {
        self.connectors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn put(&self, name: &str, connector: &StoredConnector) -> Result<(), String> {
        self.connectors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_owned(), connector.clone());
        Ok(())
    }

    fn put_target(&self, name: &str, target: TargetState) -> Result<(), String> {
        if let Some(c) = self
            .connectors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(name)
        {
            c.target = target;
        }
        Ok(())
    }

    fn remove(&self, name: &str, statuses: &[StatusKey]) -> Result<(), String> {
        self.connectors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        let mut s = self.statuses.lock().unwrap_or_else(|p| p.into_inner());
        for k in statuses {
            s.remove(k);
        }
        Ok(())
    }

    fn put_status(&self, key: &StatusKey, status: Option<&StatusRecord>) -> Result<(), String> {
        let mut s = self.statuses.lock().unwrap_or_else(|p| p.into_inner());
        match status {
            Some(v) => s.insert(key.clone(), v.clone()),
            None => s.remove(key),
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_records_replay_into_connectors_and_target_states() {
        let mut c = BTreeMap::new();
        let config: BTreeMap<String, String> =
            [("connector.class".to_owned(), "file-source".to_owned())].into();
        assert!(apply_config_record(
            &mut c,
            "connector-a",
            Some(&config_value(&config))
        ));
        assert!(apply_config_record(
            &mut c,
            "target-state-a",
            Some(&target_value(TargetState::Stopped))
        ));
        assert_eq!(c["a"].target, TargetState::Stopped);
        assert_eq!(c["a"].config, config);
        // A new config keeps the target state; Kafka Connect's own v1 record parses.
        assert!(apply_config_record(
            &mut c,
            "connector-a",
            Some(&config_value(&config))
        ));
        assert_eq!(c["a"].target, TargetState::Stopped);
        assert!(apply_config_record(
            &mut c,
            "target-state-a",
            Some(r#"{"state":"PAUSED"}"#)
        ));
        assert_eq!(c["a"].target, TargetState::Paused);
        assert!(apply_config_record(&mut c, "connector-a", None));
        assert!(c.is_empty());
        assert!(!apply_config_record(
            &mut c,
            "connector-b",
            Some("not json")
        ));
        assert!(!apply_config_record(&mut c, "something-else", Some("{}")));
    }

    #[test]
    fn records_written_for_a_connector_replay_into_it() {
        let stored = StoredConnector {
            config: [("topic".to_owned(), "t".to_owned())].into(),
            target: TargetState::Paused,
        };
        fn replay(c: &mut BTreeMap<String, StoredConnector>, records: Vec<Record>) {
            for (k, v) in records {
                assert!(apply_config_record(c, &k, v.as_deref()), "{k}");
            }
        }
        let mut c = BTreeMap::new();
        replay(&mut c, connector_records("a", &stored));
        assert_eq!(
            c.get("a"),
            Some(&stored),
            "`name` is written, not read back"
        );
        replay(&mut c, vec![target_record("a", TargetState::Stopped)]);
        assert_eq!(c["a"].target, TargetState::Stopped);
        let removal = removal_records("a");
        assert!(removal.iter().all(|(_, v)| v.is_none()), "tombstones");
        replay(&mut c, removal);
        assert!(c.is_empty());
    }
}
