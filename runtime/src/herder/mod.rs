//! The connectors of a worker, managed while it runs: create, reconfigure,
//! pause, resume, stop, restart and delete them, read their statuses and
//! offsets. This is the narrow handle the REST API talks to (Kafka
//! Connect calls it the herder).
//!
//! It owns each connector's config as submitted (placeholders unresolved)
//! and its target state, keeps both in a [`ConfigStore`] (compacted topics
//! with a configured Kafka), and drives the [`Worker`] to match: tasks run
//! only while the target state is `RUNNING`. A paused connector's tasks are
//! stopped gracefully (offsets flushed and committed) and report `PAUSED`;
//! a stopped connector has no tasks at all, and only then may its offsets
//! be changed.
//!
//! Changes are serialised (one at a time); reads never wait for a change
//! that is draining tasks. The files: `lifecycle` (start-up, target
//! states, restarts, shutdown), `connectors` (create, reconfigure,
//! delete), `views` (configs, tasks, statuses as the API shows them),
//! `rotation` (a secret changed), `offsets` (reading and editing offsets),
//! `plugins` (listing and validating), `errors` (what a call can refuse).
//! It answers in types; the words Kafka Connect's REST API uses for them
//! belong to `rest`.

mod connectors;
mod errors;
mod lifecycle;
mod offsets;
mod plugins;
mod rotation;
mod views;

pub use crate::store::{ConnectorState, TargetState};
pub use errors::{check_name, problem_lines, Error, Result};
pub use plugins::{KeyValidation, Validation};
pub use views::{ConnectorInfo, ConnectorStatus, HIDDEN};

use crate::config::{ConnectorConfig, Providers, Reach};
use crate::plugin::PluginRegistry;
use crate::store::{ConfigStore, StatusKey, StatusRecord};
use crate::worker::{TaskConfig, Worker};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Where a connector's config came from.
#[derive(Clone, Debug, PartialEq)]
pub enum Origin {
    /// A connector file given at start.
    File(String),
    /// The REST API (or the store, written by an earlier run).
    Rest,
}

/// One managed connector.
struct Managed {
    /// As submitted, without `name`; placeholders unresolved.
    raw: BTreeMap<String, String>,
    /// The checked config, or why it no longer passes (a stored connector
    /// whose plugin is gone).
    config: std::result::Result<ConnectorConfig, String>,
    target: TargetState,
    /// Task configs from the last start.
    tasks: Vec<TaskConfig>,
    /// Why the connector itself failed (its `task-configs` call).
    failed: Option<String>,
    origin: Origin,
    /// Its config is a connector file's, as given at start (see
    /// [`ConnectorConfig::trusted`]); one replaced over REST is not.
    trusted: bool,
}

/// A connector file given at start: its config as written and as checked
/// (or why it cannot run now: a secret it needs is missing, say).
pub struct FileConnector {
    pub name: String,
    pub file: std::path::PathBuf,
    /// As written, without `name`; placeholders unresolved.
    pub raw: BTreeMap<String, String>,
    pub config: std::result::Result<ConnectorConfig, String>,
}

/// The worker's connectors, their configs and target states.
pub struct Herder {
    worker: Arc<Worker>,
    registry: Arc<PluginRegistry>,
    providers: Providers,
    /// What a connector created over REST may reach, and the providers
    /// its placeholders resolve with.
    reach: Reach,
    store: Arc<dyn ConfigStore>,
    worker_id: String,
    state: Mutex<BTreeMap<String, Managed>>,
    /// One change at a time.
    changes: Mutex<()>,
    /// Statuses last written to the store.
    written: Mutex<BTreeMap<StatusKey, StatusRecord>>,
}

impl Herder {
    pub fn new(
        worker: Arc<Worker>,
        registry: Arc<PluginRegistry>,
        providers: Providers,
        store: Arc<dyn ConfigStore>,
        worker_id: String,
    ) -> Herder {
        let reach = Reach::new(worker.config(), &providers);
        Herder {
            worker,
            registry,
            providers,
            reach,
            store,
            worker_id,
            state: Mutex::default(),
            changes: Mutex::default(),
            written: Mutex::default(),
        }
    }

    pub fn worker(&self) -> &Arc<Worker> {
        &self.worker
    }

    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Managed>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a change (a REST call, a rotated secret) is in progress:
    /// tasks may be between a stop and a start.
    pub fn is_changing(&self) -> bool {
        self.changes.try_lock().is_err()
    }

    fn change(&self) -> MutexGuard<'_, ()> {
        self.changes.lock().unwrap_or_else(|p| p.into_inner())
    }
}
