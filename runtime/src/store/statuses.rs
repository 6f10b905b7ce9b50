//! Statuses of connectors and tasks, in Kafka Connect's record shapes (the
//! status topic of its distributed mode): `status-connector-<name>` and
//! `status-task-<name>-<id>` → `{"state":…,"trace":…,"worker_id":…}`.

use super::configs::TargetState;
use super::Record;

/// The state of a connector or of one of its tasks (Kafka Connect's
/// `AbstractStatus.State`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectorState {
    /// Runs nowhere: a task of a running connector that has not started,
    /// or has ended.
    Unassigned,
    Running,
    Paused,
    Stopped,
    /// Being restarted (what a restart request reports for the instances
    /// it restarts).
    Restarting,
    /// Failed, with the reason (Kafka Connect's `trace`).
    Failed(String),
}

impl ConnectorState {
    /// Its name as Kafka Connect's `State` enum spells it (`RUNNING`,
    /// `FAILED`, …): in the status topic and in REST answers alike.
    pub fn name(&self) -> &'static str {
        match self {
            ConnectorState::Unassigned => "UNASSIGNED",
            ConnectorState::Running => "RUNNING",
            ConnectorState::Paused => "PAUSED",
            ConnectorState::Stopped => "STOPPED",
            ConnectorState::Restarting => "RESTARTING",
            ConnectorState::Failed(_) => "FAILED",
        }
    }

    /// Why it failed, when it did.
    pub fn trace(&self) -> Option<&str> {
        match self {
            ConnectorState::Failed(reason) => Some(reason),
            _ => None,
        }
    }
}

impl From<TargetState> for ConnectorState {
    /// The state of a connector that is doing what it should.
    fn from(target: TargetState) -> ConnectorState {
        match target {
            TargetState::Running => ConnectorState::Running,
            TargetState::Paused => ConnectorState::Paused,
            TargetState::Stopped => ConnectorState::Stopped,
        }
    }
}

/// The status of a connector or of one of its tasks, as last reported.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusRecord {
    pub state: ConnectorState,
    pub worker_id: String,
}

/// Which status a record is: a connector's or one task's.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum StatusKey {
    Connector(String),
    Task(String, u32),
}

impl StatusKey {
    /// The status topic's key: `status-connector-x`, `status-task-x-0`.
    pub fn topic_key(&self) -> String {
        match self {
            StatusKey::Connector(name) => format!("status-connector-{name}"),
            StatusKey::Task(name, id) => format!("status-task-{name}-{id}"),
        }
    }
}

/// The status topic's record value.
pub fn status_value(status: &StatusRecord) -> String {
    serde_json::json!({
        "state": status.state.name(),
        "trace": status.state.trace(),
        "worker_id": status.worker_id,
        "generation": 0,
    })
    .to_string()
}

/// The status topic's record that stores a status (`None`: a tombstone
/// that forgets it).
pub fn status_record(key: &StatusKey, status: Option<&StatusRecord>) -> Record {
    (key.topic_key(), status.map(status_value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_records_carry_kafka_connects_state_names_and_trace() {
        let key = StatusKey::Task("c".into(), 2);
        let failed = StatusRecord {
            state: ConnectorState::Failed("poll: disk full".into()),
            worker_id: "w:8083".into(),
        };
        let (k, v) = status_record(&key, Some(&failed));
        assert_eq!(k, "status-task-c-2");
        let v: serde_json::Value = serde_json::from_str(&v.unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"state": "FAILED", "trace": "poll: disk full", "worker_id": "w:8083", "generation": 0})
        );
        let running = StatusRecord {
            state: TargetState::Running.into(),
            worker_id: "w:8083".into(),
        };
        let v: serde_json::Value = serde_json::from_str(&status_value(&running)).unwrap();
        assert_eq!(v["state"], "RUNNING");
        assert!(v["trace"].is_null());
        assert_eq!(
            status_record(&StatusKey::Connector("c".into()), None),
            ("status-connector-c".to_owned(), None)
        );
    }
}
