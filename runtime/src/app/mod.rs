//! The composition root: loading and wiring a worker.
//!
//! A worker goes through three steps, each a type:
//!
//! 1. [`App::load`] reads the worker file and the connector files, resolves
//!    placeholders, starts the WebAssembly engine, loads the plugins and
//!    checks every connector config against its plugin — every problem at
//!    once, nothing started yet. `tributary validate` and `tributary
//!    plugins` stop here.
//! 2. [`App::start`] wires the parts together: Kafka (external or
//!    embedded), the offset and config stores, the REST listener (bound
//!    before any task starts, so a port in use is a start-up error), the
//!    [`Worker`], the [`Herder`] with the connector files, and the
//!    background threads (secret rotations, statuses). It returns a
//!    [`Running`] worker.
//! 3. [`Running::wait`] blocks until a signal, a [`StopHandle`], or (with
//!    no REST API to start new ones) the end of every task;
//!    [`Running::shutdown`] stops the tasks gracefully and returns a
//!    [`Report`]. A signal caught while the tasks stop ends the wait for
//!    them at once ([`Report::forced`]).
//!
//! The `tributary` binary is a thin command line over these; tests and
//! benchmarks start the same worker in process:
//!
//! ```no_run
//! use tributary::app::{App, Options};
//! let app = App::load(&Options { worker: None, connectors: vec!["lines.yaml".into()], signals: false })?;
//! let mut running = app.start()?;
//! let stop = running.stop_handle();
//! // … `stop.stop()` from anywhere …
//! let reason = running.wait();
//! let report = running.shutdown(reason);
//! assert!(report.late.is_empty());
//! # Ok::<(), tributary::app::Error>(())
//! ```
//!
//! Never: this module holds no logic of its own beyond the order in which
//! the parts are made and joined; what a part does lives in that part.

mod load;
mod start;

pub use load::Unavailable;

use crate::config::{ConnectorConfig, Problems, WorkerConfig};
use crate::herder::{ConnectorState, Herder};
use crate::plugin::PluginRegistry;
use crate::worker::{TaskState, Worker};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What to load: the command line's files.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The worker config (YAML); `None`: defaults and the embedded Kafka.
    pub worker: Option<PathBuf>,
    /// Connector configs (YAML or Kafka Connect JSON).
    pub connectors: Vec<PathBuf>,
    /// Catch SIGINT and SIGTERM from the start of loading, so a signal
    /// while plugins load or the offsets topic is read still ends in a
    /// graceful stop. Off for workers started inside tests.
    pub signals: bool,
}

/// Why a worker could not load or start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Config problems, each with file, line and key.
    #[error("{0}")]
    Config(Problems),
    /// Anything else that keeps the worker from starting (a port in use,
    /// a bad TLS key, Kafka unreachable), with the setting to look at.
    #[error("{0}")]
    Start(String),
}

/// Why a running worker stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    Sigterm,
    Sigint,
    /// [`StopHandle::stop`] was called.
    Requested,
    /// Every task ended, and with no REST API nothing could start another.
    TasksEnded,
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StopReason::Sigterm => "SIGTERM",
            StopReason::Sigint => "SIGINT",
            StopReason::Requested => "stop requested",
            StopReason::TasksEnded => "every task ended",
        })
    }
}

/// What a stopped worker reports.
#[derive(Debug)]
pub struct Report {
    pub reason: StopReason,
    /// Tasks (`connector-task`) that did not stop within
    /// `task.shutdown.graceful.timeout.ms`.
    pub late: Vec<String>,
    /// Failed tasks and connectors, each `name: reason`.
    pub failed: Vec<String>,
    /// A second signal, caught while the tasks were stopping: the worker
    /// stopped waiting for them. What they had not committed is delivered
    /// again at the next start.
    pub forced: Option<StopReason>,
}

impl Report {
    /// The worker's verdict: an error when tasks did not stop in time, or
    /// when the worker stopped because every task ended and some failed.
    pub fn outcome(&self) -> Result<(), String> {
        if let Some(signal) = self.forced {
            return Err(format!(
                "{signal} while the tasks were stopping: exited without waiting for them; records they had not committed are delivered again at the next start"
            ));
        }
        if !self.late.is_empty() {
            return Err(format!(
                "tasks did not stop within task.shutdown.graceful.timeout.ms: {}",
                self.late.join(", ")
            ));
        }
        if self.reason == StopReason::TasksEnded && !self.failed.is_empty() {
            return Err(format!(
                "every task ended; failed: {}",
                self.failed.join("; ")
            ));
        }
        Ok(())
    }
}

/// A loaded worker: configs checked, plugins loaded, nothing started.
pub struct App {
    loaded: load::Loaded,
    runtime: tokio::runtime::Runtime,
    signals: Option<start::Signals>,
}

impl App {
    /// Loads and checks everything `options` names; every problem at once.
    pub fn load(options: &Options) -> Result<App, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::Start(format!("starting the async runtime: {e}")))?;
        let signals = if options.signals {
            Some(start::Signals::catch(&runtime).map_err(Error::Start)?)
        } else {
            None
        };
        let loaded = load::load(options.worker.as_deref(), &options.connectors)?;
        Ok(App {
            loaded,
            runtime,
            signals,
        })
    }

    pub fn worker_config(&self) -> &WorkerConfig {
        &self.loaded.worker
    }

    pub fn registry(&self) -> &PluginRegistry {
        &self.loaded.registry
    }

    /// The connector files' configs, checked.
    pub fn connectors(&self) -> &[ConnectorConfig] {
        &self.loaded.connectors
    }

    /// Connector files that are right but need a secret that cannot be had
    /// now: they fail alone when the worker starts.
    pub fn unavailable(&self) -> &[Unavailable] {
        &self.loaded.unavailable
    }

    /// Connects, opens the stores, binds the REST listener and starts the
    /// connectors.
    pub fn start(self) -> Result<Running, Error> {
        start::start(self)
    }
}

/// Asks a [`Running`] worker to stop, from any thread.
#[derive(Clone)]
pub struct StopHandle {
    requested: Arc<AtomicBool>,
    wake: Arc<tokio::sync::Notify>,
}

impl StopHandle {
    fn new() -> StopHandle {
        StopHandle {
            requested: Arc::default(),
            wake: Arc::default(),
        }
    }

    pub fn stop(&self) {
        self.requested.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }
}

/// A started worker.
pub struct Running {
    runtime: tokio::runtime::Runtime,
    signals: Option<start::Signals>,
    worker: Arc<Worker>,
    herder: Arc<Herder>,
    server: Option<tokio::task::JoinHandle<()>>,
    rest_addr: Option<std::net::SocketAddr>,
    publishing: Arc<AtomicBool>,
    stop: StopHandle,
}

impl Running {
    /// Where the REST API listens, when it does.
    pub fn rest_addr(&self) -> Option<std::net::SocketAddr> {
        self.rest_addr
    }

    pub fn herder(&self) -> &Arc<Herder> {
        &self.herder
    }

    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Blocks until a signal (when caught), a [`StopHandle::stop`], or —
    /// without a REST API, when nothing can start new tasks — until every
    /// task ended.
    pub fn wait(&mut self) -> StopReason {
        let rest = self.server.is_some();
        let (worker, herder, stop) = (&self.worker, &self.herder, &self.stop);
        let signals = &mut self.signals;
        self.runtime.block_on(async {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                if stop.requested.load(Ordering::SeqCst) {
                    return StopReason::Requested;
                }
                tokio::select! {
                    Some(reason) = start::Signals::next(signals) => return reason,
                    _ = stop.wake.notified() => {}
                    // A rotated secret may be restarting a connector's tasks.
                    _ = tick.tick() => if !rest && worker.all_done() && !herder.is_changing() {
                        return StopReason::TasksEnded;
                    },
                }
            }
        })
    }

    /// Stops serving REST, stops every task gracefully (sources deliver
    /// what is in flight and commit; sinks flush and commit) and reports.
    ///
    /// With signals caught, a signal while the tasks stop (a second one,
    /// after the one that ended [`Running::wait`]) ends the wait for them at
    /// once: the report says so ([`Report::forced`]) and the tasks are left
    /// as they are, for the process to exit.
    pub fn shutdown(mut self, reason: StopReason) -> Report {
        self.publishing.store(false, Ordering::Relaxed);
        // No new requests: nothing starts while the tasks drain (a change
        // in progress finishes first).
        if let Some(server) = self.server.take() {
            server.abort();
        }
        let late = match self.signals.take() {
            None => self.herder.shutdown(),
            Some(signals) => {
                // The tasks stop on a thread of their own; this one waits
                // for them or for the next signal, whichever comes first.
                let (done, stopped) = tokio::sync::oneshot::channel();
                let herder = self.herder.clone();
                let stopping =
                    std::thread::Builder::new()
                        .name("shutdown".into())
                        .spawn(move || {
                            let _ = done.send(herder.shutdown());
                        });
                if let Err(e) = stopping {
                    tracing::warn!(
                        "cannot start a thread ({e}): a signal cannot cut the shutdown short"
                    );
                    return self.report(reason, self.herder.shutdown());
                }
                let mut signals = Some(signals);
                let outcome = self.runtime.block_on(async {
                    tokio::select! {
                        late = stopped => Ok(late.unwrap_or_default()),
                        Some(second) = start::Signals::next(&mut signals) => Err(second),
                    }
                });
                match outcome {
                    Ok(late) => late,
                    Err(second) => return self.forced(reason, second),
                }
            }
        };
        self.report(reason, late)
    }

    /// The report of a finished shutdown.
    fn report(&self, reason: StopReason, late: Vec<String>) -> Report {
        let mut failed: Vec<String> = self
            .worker
            .statuses()
            .into_iter()
            .filter_map(|s| match s.state {
                TaskState::Failed(reason) => Some(format!("{}-{}: {reason}", s.connector, s.task)),
                _ => None,
            })
            .collect();
        // Connectors that never started (a secret missing at start, say).
        for name in self.herder.connectors() {
            if let Ok(status) = self.herder.status(&name) {
                if let ConnectorState::Failed(reason) = status.connector {
                    failed.push(format!("{name}: {reason}"));
                }
            }
        }
        log_totals(&self.worker);
        Report {
            reason,
            late,
            failed,
            forced: None,
        }
    }

    /// The report of a shutdown cut short by the signal `second`. The
    /// tasks keep their threads; nothing here waits for them, and the
    /// async runtime is let go without waiting for what runs on it.
    fn forced(self, reason: StopReason, second: StopReason) -> Report {
        tracing::warn!("{second} while the tasks were stopping: not waiting for them");
        self.runtime.shutdown_background();
        Report {
            reason,
            late: Vec::new(),
            failed: Vec::new(),
            forced: Some(second),
        }
    }
}

/// Each task's totals, logged at exit.
fn log_totals(worker: &Worker) {
    for s in worker.statuses() {
        let plugin: Vec<String> = s
            .metrics
            .plugin_counters()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        tracing::info!(
            connector = %s.connector,
            task = s.task,
            records_in = s.metrics.records_in.load(Ordering::Relaxed),
            records_out = s.metrics.records_out.load(Ordering::Relaxed),
            batches = s.metrics.batches.load(Ordering::Relaxed),
            "task totals{}{}",
            if plugin.is_empty() { "" } else { "; plugin counters: " },
            plugin.join(", ")
        );
    }
}
