//! What a task is doing: its state (with the reason when it failed) and its
//! counters, which the progress lines, the REST API's statuses and the
//! metrics show.

use crate::contract::ConnectorKind;
use crate::metrics::TaskMetrics;
use std::sync::Arc;

/// A task's state, with Kafka Connect's names.
#[derive(Clone, Debug, PartialEq)]
pub enum TaskState {
    Running,
    /// Failed, with the reason (never a secret).
    Failed(String),
    Stopped,
}

/// A task's identity, state and counters.
#[derive(Clone, Debug)]
pub struct TaskStatus {
    pub connector: String,
    pub task: u32,
    pub kind: ConnectorKind,
    pub state: TaskState,
    pub metrics: Arc<TaskMetrics>,
}

impl TaskStatus {
    pub fn new(
        connector: &str,
        task: u32,
        kind: ConnectorKind,
        metrics: Arc<TaskMetrics>,
    ) -> TaskStatus {
        TaskStatus {
            connector: connector.to_owned(),
            task,
            kind,
            state: TaskState::Running,
            metrics,
        }
    }
}
