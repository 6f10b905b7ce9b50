//! Wiring: Kafka, the offset and config stores, TLS and the listener, the
//! worker, the herder with the connector files, REST and the background
//! threads.

use super::{load, App, Error, Running, StopHandle, StopReason};
use crate::config::{Providers, WorkerConfig};
use crate::herder::{FileConnector, Herder};
use crate::kafka::{
    ConfigTopicSettings, ConfigTopicStore, KafkaCluster, OffsetTopicSettings, OffsetTopicStore,
    Security,
};
use crate::store::{
    ConfigStore, FileOffsetStore, MemoryConfigStore, MemoryOffsetStore, OffsetStore,
};
use crate::worker::Worker;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// SIGTERM and SIGINT, caught.
pub(super) struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    pub fn catch(runtime: &tokio::runtime::Runtime) -> Result<Signals, String> {
        let _in_runtime = runtime.enter();
        let catch = |kind| signal(kind).map_err(|e| format!("cannot catch signals: {e}"));
        Ok(Signals {
            term: catch(SignalKind::terminate())?,
            int: catch(SignalKind::interrupt())?,
        })
    }

    /// The next signal; never, when signals are not caught.
    pub async fn next(signals: &mut Option<Signals>) -> Option<StopReason> {
        match signals {
            Some(s) => tokio::select! {
                _ = s.term.recv() => Some(StopReason::Sigterm),
                _ = s.int.recv() => Some(StopReason::Sigint),
            },
            None => std::future::pending().await,
        }
    }
}

pub(super) fn start(app: App) -> Result<Running, Error> {
    let App {
        loaded,
        runtime,
        signals,
    } = app;
    let worker = loaded.worker.clone();
    let cluster = Arc::new(cluster(&worker, &loaded.providers)?);
    let offsets = offset_store(&cluster, &worker)?;
    let store = config_store(&cluster, &worker)?;
    // The certificate is read and the listener bound before any task
    // starts: a bad key file or a port in use is a start-up error.
    let tls = match &worker.rest_tls {
        Some((cert, key)) => {
            Some(crate::rest::tls::server_config(cert, key).map_err(Error::Start)?)
        }
        None => None,
    };
    let listener = match &worker.listener {
        Some(addr) => Some(bind(addr)?),
        None => None,
    };
    let rest_addr = match &listener {
        Some(l) => Some(l.local_addr().map_err(|e| Error::Start(e.to_string()))?),
        None => None,
    };
    let worker_id = rest_addr.map_or_else(|| "standalone".to_owned(), |a| a.to_string());
    let cluster_id = listener.as_ref().and_then(|_| cluster.cluster_id());
    let w = Arc::new(Worker::new(
        worker.clone(),
        cluster.clone(),
        offsets,
        loaded.registry.clone(),
        loaded.providers.clone(),
    ));
    let herder = Arc::new(Herder::new(
        w.clone(),
        loaded.registry.clone(),
        loaded.providers.clone(),
        store,
        worker_id,
    ));
    herder
        .start_up(file_connectors(loaded.connectors, loaded.unavailable)?)
        .map_err(|e| Error::Start(e.to_string()))?;
    follow_rotations(&loaded.secrets_manager, &herder, &cluster)?;
    let server = match listener {
        Some(l) => {
            let api = Arc::new(crate::rest::Api {
                herder: herder.clone(),
                token: worker.rest_token.clone(),
                kafka_cluster_id: cluster_id,
                secrets: Some(loaded.secrets_manager.clone()),
            });
            Some(serve_rest(&runtime, l, tls, api)?)
        }
        None => None,
    };
    let publishing = publish_statuses(&herder);
    Ok(Running {
        runtime,
        signals,
        worker: w,
        herder,
        server,
        rest_addr,
        publishing,
        stop: StopHandle::new(),
    })
}

fn cluster(worker: &WorkerConfig, providers: &Providers) -> Result<KafkaCluster, Error> {
    Ok(match &worker.bootstrap_servers {
        Some(servers) => {
            let security = Security::new(&worker.kafka_security.0, providers)
                .map_err(|e| Error::Start(format!("Kafka security settings: {e}")))?;
            let cluster = KafkaCluster::external(servers, worker.topic_creation, security);
            cluster
                .check_reachable(Duration::from_secs(30))
                .map_err(Error::Start)?;
            cluster
        }
        None => {
            let cluster =
                KafkaCluster::embedded(worker.embedded_topic_partitions).map_err(Error::Start)?;
            tracing::info!(
                bootstrap = cluster.bootstrap_servers(),
                "no bootstrap.servers configured: started the embedded Kafka"
            );
            cluster
        }
    })
}

/// What a restart of this worker finds again, in one sentence for the
/// start-up log (field `survives_restart`).
fn survives_restart(cluster: &KafkaCluster, worker: &WorkerConfig) -> String {
    if cluster.is_embedded() {
        return "nothing: the embedded Kafka keeps records, source offsets, sink offsets and connector configs in memory; after a restart every source reads from its start again (records arrive again, none are skipped)".to_owned();
    }
    let offsets = match &worker.offset_file {
        Some(path) => format!("offset file {}", path.display()),
        None => format!("topic {}", worker.offset_topic),
    };
    format!(
        "everything: records and sink offsets in Kafka, source offsets in the {offsets}, connector configs and statuses in topics {} and {}",
        worker.config_topic, worker.status_topic
    )
}

/// Where source offsets are kept: the offset file when one is named, the
/// offsets topic with a configured Kafka. With the embedded Kafka they are
/// kept in memory, with the records they point into, and are gone with
/// them: a file would outlive the records and make a restarted source
/// skip those the old embedded Kafka held (the worker config refuses
/// `offset.storage.file.filename` without `bootstrap.servers`).
fn offset_store(
    cluster: &KafkaCluster,
    worker: &WorkerConfig,
) -> Result<Arc<dyn OffsetStore>, Error> {
    tracing::info!(
        survives_restart = %survives_restart(cluster, worker),
        "what a restart of this worker finds again"
    );
    Ok(match (&worker.offset_file, cluster.is_embedded()) {
        (_, true) => Arc::new(MemoryOffsetStore::default()),
        (Some(path), false) => Arc::new(FileOffsetStore::open(path).map_err(Error::Start)?),
        (None, false) => {
            let settings = OffsetTopicSettings {
                topic: worker.offset_topic.clone(),
                partitions: worker.offset_topic_partitions,
                replication_factor: worker.offset_topic_replication_factor,
            };
            Arc::new(
                OffsetTopicStore::open(cluster, &settings, &worker.producer, &worker.consumer)
                    .map_err(Error::Start)?,
            )
        }
    })
}

/// Where connector configs, target states and statuses are kept: compacted
/// topics with a configured Kafka, memory with the embedded one.
fn config_store(
    cluster: &KafkaCluster,
    worker: &WorkerConfig,
) -> Result<Arc<dyn ConfigStore>, Error> {
    if cluster.is_embedded() {
        return Ok(Arc::new(MemoryConfigStore::default()));
    }
    let settings = ConfigTopicSettings {
        config_topic: worker.config_topic.clone(),
        config_replication_factor: worker.config_topic_replication_factor,
        status_topic: worker.status_topic.clone(),
        status_replication_factor: worker.status_topic_replication_factor,
    };
    Ok(Arc::new(
        ConfigTopicStore::open(cluster, &settings, &worker.producer, &worker.consumer)
            .map_err(Error::Start)?,
    ))
}

fn bind(addr: &str) -> Result<std::net::TcpListener, Error> {
    let cannot =
        |e: std::io::Error| Error::Start(format!("cannot listen on {addr} (listeners): {e}"));
    let l = std::net::TcpListener::bind(addr).map_err(cannot)?;
    l.set_nonblocking(true).map_err(cannot)?;
    Ok(l)
}

/// The connector files, as the herder takes them: each with its config as
/// written and as checked, or why it cannot run now.
fn file_connectors(
    connectors: Vec<crate::config::ConnectorConfig>,
    unavailable: Vec<load::Unavailable>,
) -> Result<Vec<FileConnector>, Error> {
    let mut files = Vec::new();
    for c in connectors {
        files.push(FileConnector {
            name: c.name.clone(),
            raw: load::raw_config(&c.file)?,
            file: c.file.clone(),
            config: Ok(c),
        });
    }
    for u in unavailable {
        let why: Vec<String> = u.problems.0.iter().map(|p| p.to_string()).collect();
        files.push(FileConnector {
            name: u.name,
            raw: load::raw_config(&u.file)?,
            file: u.file,
            config: Err(why.join("; ")),
        });
    }
    Ok(files)
}

/// A rotated secret reaches the connectors that read it, and the Kafka
/// clients when it holds the worker's Kafka login.
fn follow_rotations(
    secrets: &crate::secrets::SecretsManager,
    herder: &Arc<Herder>,
    cluster: &Arc<KafkaCluster>,
) -> Result<(), Error> {
    let (changed, rotations) = std::sync::mpsc::channel();
    secrets.subscribe(changed);
    let herder = herder.clone();
    let security = cluster.security().clone();
    std::thread::Builder::new()
        .name("secret-rotations".into())
        .spawn(move || {
            for secret in rotations {
                if security.reads(crate::secrets::AWS_SECRETS_MANAGER, &secret) {
                    if let Err(e) = security.renew(false) {
                        tracing::error!("{e}");
                    }
                }
                herder.secret_changed(crate::secrets::AWS_SECRETS_MANAGER, &secret);
            }
        })
        .map_err(|e| Error::Start(format!("cannot start a thread: {e}")))?;
    Ok(())
}

/// Statuses go to the status topic as they change, until the returned
/// flag is cleared.
fn publish_statuses(herder: &Arc<Herder>) -> Arc<AtomicBool> {
    let publishing = Arc::new(AtomicBool::new(true));
    let (herder, flag) = (herder.clone(), publishing.clone());
    std::thread::spawn(move || {
        while flag.load(Ordering::Relaxed) {
            herder.publish_statuses();
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    publishing
}

/// Serves the REST API on `listener` (over TLS with `tls`) on `runtime`.
fn serve_rest(
    runtime: &tokio::runtime::Runtime,
    listener: std::net::TcpListener,
    tls: Option<Arc<crate::rest::tls::ServerConfig>>,
    api: Arc<crate::rest::Api>,
) -> Result<tokio::task::JoinHandle<()>, Error> {
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Start(e.to_string()))?;
    let listener = {
        let _in_runtime = runtime.enter();
        tokio::net::TcpListener::from_std(listener)
            .map_err(|e| Error::Start(format!("cannot listen on {addr}: {e}")))?
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!("REST API listening on {scheme}://{addr}");
    Ok(runtime.spawn(async move {
        let served = match tls {
            None => crate::rest::serve(listener, api).await,
            Some(config) => crate::rest::tls::serve(listener, api, config).await,
        };
        if let Err(e) = served {
            tracing::error!("REST API stopped: {e}");
        }
    }))
}
