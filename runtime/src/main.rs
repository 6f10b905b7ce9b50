//! The `tributary` command: run connectors, check configs, list plugins.

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tributary::config::{
    ConnectorConfig, Problem, Problems, Providers, WorkerConfig, CONNECTOR_RUNTIME_KEYS,
};
use tributary::herder::{ConnectorState, FileConnector, Herder};
use tributary::kafka::{
    check_property, ConfigTopicSettings, ConfigTopicStore, KafkaCluster, OffsetTopicSettings,
    OffsetTopicStore,
};
use tributary::plugin::{PluginEngine, PluginRegistry};
use tributary::store::{
    ConfigStore, FileOffsetStore, MemoryConfigStore, MemoryOffsetStore, OffsetStore,
};
use tributary::worker::{TaskState, Worker};

/// A connector file's config as written: `config.*` keys with their values
/// as strings, placeholders unresolved (what the config store keeps).
fn raw_config(file: &Path) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let entries = tributary::config::yaml::load_flat(file).map_err(|p| anyhow::anyhow!("{p}"))?;
    Ok(entries
        .into_iter()
        .filter_map(|e| {
            let key = e.key.strip_prefix("config.")?.to_owned();
            Some((key, e.value.to_config_string()?))
        })
        .collect())
}

#[derive(Parser)]
#[command(
    name = "tributary",
    version,
    about = "A connector runtime for Kafka: WebAssembly connectors, at-least-once delivery"
)]
struct Cli {
    /// Log format: `text` (default) or `json` (one JSON object per line).
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run connectors until SIGINT or SIGTERM (a second signal exits at once).
    Run {
        /// Worker config (YAML). Without it: defaults and the embedded Kafka.
        #[arg(short, long)]
        worker: Option<PathBuf>,
        /// Connector configs (YAML or Kafka Connect JSON). More can be
        /// created through the REST API.
        connectors: Vec<PathBuf>,
    },
    /// Check configs; exits non-zero listing every problem.
    Validate {
        #[arg(short, long)]
        worker: Option<PathBuf>,
        connectors: Vec<PathBuf>,
    },
    /// List the plugins found in plugin.path, with their config keys.
    Plugins {
        #[arg(short, long)]
        worker: Option<PathBuf>,
    },
}

fn main() -> std::process::ExitCode {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("TRIBUTARY_LOG").unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new("info,cranelift_codegen=warn,wasmtime=warn")
        });
    let cli = Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    let result = match cli.command {
        Command::Run { worker, connectors } => run(worker.as_deref(), &connectors),
        Command::Validate { worker, connectors } => validate(worker.as_deref(), &connectors),
        Command::Plugins { worker } => plugins(worker.as_deref()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Worker config, plugin registry and connector configs, every problem at once.
struct Loaded {
    worker: Arc<WorkerConfig>,
    registry: Arc<PluginRegistry>,
    providers: Providers,
    secrets_manager: Arc<tributary::secrets::SecretsManager>,
    connectors: Vec<ConnectorConfig>,
    /// Connectors whose config is right but a secret it names cannot be
    /// had now (missing, access denied): they fail alone, the others start.
    unavailable: Vec<(String, PathBuf, Problems)>,
}

/// The `name` of a connector file, as written.
fn file_name(file: &Path) -> Option<String> {
    tributary::config::yaml::load_flat(file)
        .ok()?
        .into_iter()
        .find(|e| e.key == "name")?
        .value
        .to_config_string()
}

fn load(worker_file: Option<&Path>, connector_files: &[PathBuf]) -> anyhow::Result<Loaded> {
    let mut problems = Problems::default();
    // The provider settings come first (with `env` placeholders only):
    // the other keys may need the providers they set up.
    let bootstrap = match worker_file {
        Some(f) => WorkerConfig::load_lenient(f, &Providers::default()).0,
        None => WorkerConfig::defaults(),
    };
    let (providers, secrets_manager) =
        tributary::secrets::providers(&bootstrap).map_err(anyhow::Error::msg)?;
    let worker = match worker_file {
        Some(f) => {
            let (worker, p) = WorkerConfig::load_lenient(f, &providers);
            problems.extend(p);
            worker
        }
        None => bootstrap,
    };
    let engine =
        PluginEngine::new(&worker.plugin_cache_dir).context("starting the WebAssembly engine")?;
    let registry = PluginRegistry::load(&engine, &worker.plugin_path);
    let mut connectors = Vec::new();
    let mut unavailable = Vec::new();
    for file in connector_files {
        match ConnectorConfig::load(file, &providers, &registry) {
            Ok(c) => connectors.push(c),
            // A secret that cannot be had now fails the connector alone
            // (other problems of it may follow from the missing value).
            Err(p) => match p.any_unavailable().then(|| file_name(file)).flatten() {
                Some(name) => unavailable.push((name, file.clone(), p)),
                None => problems.extend(p),
            },
        }
    }
    // librdkafka's own properties, checked now rather than at task start.
    let mut check = |file: &Path,
                     lines: &std::collections::BTreeMap<String, usize>,
                     prefix: &str,
                     props: &std::collections::BTreeMap<String, String>| {
        for (name, value) in props {
            if let Err(e) = check_property(name, value) {
                let key = format!("{prefix}{name}");
                problems.push(Problem::new(file, lines.get(&key).copied(), Some(&key), e));
            }
        }
    };
    if let Some(file) = worker_file {
        check(file, &worker.property_lines, "producer.", &worker.producer);
        check(file, &worker.property_lines, "consumer.", &worker.consumer);
    }
    for c in &connectors {
        check(
            &c.file,
            &c.runtime.property_lines,
            "producer.override.",
            &c.runtime.producer_overrides,
        );
        check(
            &c.file,
            &c.runtime.property_lines,
            "consumer.override.",
            &c.runtime.consumer_overrides,
        );
    }
    let mut names: Vec<&str> = connectors
        .iter()
        .map(|c| c.name.as_str())
        .chain(unavailable.iter().map(|(n, _, _)| n.as_str()))
        .collect();
    names.sort();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        bail!(
            "two connector files use the name `{}`; names must be unique",
            w[0]
        );
    }
    if !problems.is_empty() {
        bail!("{problems}");
    }
    Ok(Loaded {
        worker: Arc::new(worker),
        registry: Arc::new(registry),
        providers,
        secrets_manager,
        connectors,
        unavailable,
    })
}

fn validate(worker: Option<&Path>, connectors: &[PathBuf]) -> anyhow::Result<()> {
    let loaded = load(worker, connectors)?;
    if !loaded.unavailable.is_empty() {
        let mut problems = Problems::default();
        for (_, _, p) in loaded.unavailable {
            problems.extend(p);
        }
        bail!("{problems}");
    }
    for c in &loaded.connectors {
        println!(
            "{}: ok ({} {} {}, tasks.max {})",
            c.file.display(),
            c.description.kind,
            c.description.name,
            c.description.version,
            c.runtime.tasks_max
        );
    }
    println!("{} connector config(s) valid", loaded.connectors.len());
    Ok(())
}

fn plugins(worker: Option<&Path>) -> anyhow::Result<()> {
    let loaded = load(worker, &[])?;
    let dirs: Vec<String> = loaded
        .worker
        .plugin_path
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    println!("plugin.path: {}", dirs.join(", "));
    for (plugin, d) in loaded.registry.connectors() {
        println!("\n{} {} ({}) — {}", d.name, d.version, d.kind, d.summary);
        println!("  file: {}", plugin.path.display());
        for k in &d.keys {
            let default = match &k.default {
                None => "required".to_owned(),
                Some(v) if k.secret => format!(
                    "default: {}",
                    if v.is_empty() { "(empty)" } else { "(secret)" }
                ),
                Some(v) => format!("default: {v:?}"),
            };
            let secret = if k.secret { ", secret" } else { "" };
            println!(
                "  {:<24} {:<10} {default}{secret}. {}",
                k.name,
                k.ty.name(),
                k.doc
            );
        }
    }
    for r in &loaded.registry.rejected {
        println!("\nrejected {}: {}", r.path.display(), r.reason);
    }
    if loaded.registry.plugins.is_empty() {
        println!("\nno plugins found");
    }
    println!(
        "\nEvery connector also takes: {}",
        CONNECTOR_RUNTIME_KEYS
            .iter()
            .map(|(k, _)| *k)
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

fn run(worker_file: Option<&Path>, connector_files: &[PathBuf]) -> anyhow::Result<()> {
    // Signals are caught from the start: a SIGTERM while plugins load or
    // the offsets topic is read still ends in a graceful stop.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (mut term, mut int) = {
        use tokio::signal::unix::{signal, SignalKind};
        let _in_runtime = runtime.enter();
        (
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        )
    };
    let loaded = load(worker_file, connector_files)?;
    let worker = loaded.worker.clone();
    let cluster = match &worker.bootstrap_servers {
        Some(servers) => KafkaCluster::external(servers, worker.topic_creation),
        None => {
            let cluster = KafkaCluster::embedded(worker.embedded_topic_partitions)
                .map_err(anyhow::Error::msg)?;
            tracing::info!(bootstrap = cluster.bootstrap_servers(), "no bootstrap.servers configured: started the embedded Kafka (in memory, nothing is kept after exit)");
            cluster
        }
    };
    let offsets: Arc<dyn OffsetStore> = match (&worker.offset_file, cluster.is_embedded()) {
        (Some(path), _) => Arc::new(FileOffsetStore::open(path).map_err(anyhow::Error::msg)?),
        (None, false) => {
            let settings = OffsetTopicSettings {
                topic: worker.offset_topic.clone(),
                partitions: worker.offset_topic_partitions,
                replication_factor: worker.offset_topic_replication_factor,
            };
            Arc::new(
                OffsetTopicStore::open(&cluster, &settings, &worker.producer, &worker.consumer)
                    .map_err(anyhow::Error::msg)?,
            )
        }
        (None, true) => {
            tracing::info!(
                "no offset.storage.file.filename: source offsets are kept in memory only"
            );
            Arc::new(MemoryOffsetStore::default())
        }
    };
    let store = config_store(&cluster, &worker)?;
    // The certificate is read and the listener bound before any task
    // starts: a bad key file or a port in use is a start-up error.
    let tls = match &worker.rest_tls {
        Some((cert, key)) => {
            Some(tributary::rest::tls::server_config(cert, key).map_err(anyhow::Error::msg)?)
        }
        None => None,
    };
    let listener = match &worker.listener {
        Some(addr) => {
            let l = std::net::TcpListener::bind(addr)
                .with_context(|| format!("cannot listen on {addr} (listeners)"))?;
            l.set_nonblocking(true)?;
            Some(l)
        }
        None => None,
    };
    let worker_id = match &listener {
        Some(l) => l.local_addr()?.to_string(),
        None => "standalone".to_owned(),
    };
    let cluster_id = if listener.is_some() {
        cluster.cluster_id()
    } else {
        None
    };
    let w = Arc::new(Worker::new(
        worker.clone(),
        Arc::new(cluster),
        offsets,
        loaded.registry.clone(),
        loaded.providers.clone(),
    ));
    let herder = Arc::new(Herder::new(
        w.clone(),
        loaded.registry.clone(),
        loaded.providers.clone(),
        store,
        worker_id.clone(),
    ));
    let mut files = Vec::new();
    for c in loaded.connectors {
        files.push(FileConnector {
            name: c.name.clone(),
            raw: raw_config(&c.file)?,
            file: c.file.clone(),
            config: Ok(c),
        });
    }
    for (name, file, problems) in loaded.unavailable {
        files.push(FileConnector {
            name,
            raw: raw_config(&file)?,
            file,
            config: Err(problems
                .0
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("; ")),
        });
    }
    herder.start_up(files).map_err(anyhow::Error::msg)?;
    // A rotated secret reaches the connectors that read it.
    let (changed, rotations) = std::sync::mpsc::channel();
    loaded.secrets_manager.subscribe(changed);
    {
        let herder = herder.clone();
        std::thread::Builder::new()
            .name("secret-rotations".into())
            .spawn(move || {
                for secret in rotations {
                    herder.secret_changed(tributary::secrets::AWS_SECRETS_MANAGER, &secret);
                }
            })?;
    }
    let server = match listener {
        Some(l) => {
            let api = Arc::new(tributary::rest::Api {
                herder: herder.clone(),
                token: worker.rest_token.clone(),
                kafka_cluster_id: cluster_id.clone(),
                secrets: Some(loaded.secrets_manager.clone()),
            });
            Some(start_rest(&runtime, l, tls, api)?)
        }
        None => None,
    };
    // Statuses go to the status topic as they change.
    let publishing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    {
        let (herder, publishing) = (herder.clone(), publishing.clone());
        std::thread::spawn(move || {
            while publishing.load(std::sync::atomic::Ordering::Relaxed) {
                herder.publish_statuses();
                std::thread::sleep(Duration::from_millis(500));
            }
        });
    }
    let rest = worker.listener.is_some();

    let reason = runtime.block_on(async {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                _ = term.recv() => break Ok::<_, anyhow::Error>("SIGTERM"),
                _ = int.recv() => break Ok("SIGINT"),
                // Without a REST API nothing can start new tasks.
                // (A rotated secret may be restarting a connector's tasks.)
                _ = tick.tick() => if !rest && w.all_done() && !herder.is_changing() { break Ok("every task ended") },
            }
        }
    })?;
    publishing.store(false, std::sync::atomic::Ordering::Relaxed);
    // No new requests: nothing starts while the tasks drain (a change in
    // progress finishes first).
    if let Some(server) = server {
        server.abort();
    }
    let late = herder.shutdown();
    let mut failed: Vec<String> = w
        .statuses()
        .into_iter()
        .filter_map(|s| match s.state {
            TaskState::Failed(reason) => Some(format!("{}-{}: {reason}", s.connector, s.task)),
            _ => None,
        })
        .collect();
    // Connectors that never started (a secret missing at start, say).
    for name in herder.connectors() {
        if let Ok(status) = herder.status(&name) {
            if let ConnectorState::Failed(reason) = status.connector {
                failed.push(format!("{name}: {reason}"));
            }
        }
    }
    for s in w.statuses() {
        let plugin: Vec<String> = s
            .metrics
            .plugin_counters()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        tracing::info!(
            connector = %s.connector,
            task = s.task,
            records_in = s.metrics.records_in.load(std::sync::atomic::Ordering::Relaxed),
            records_out = s.metrics.records_out.load(std::sync::atomic::Ordering::Relaxed),
            batches = s.metrics.batches.load(std::sync::atomic::Ordering::Relaxed),
            "task totals{}{}",
            if plugin.is_empty() { "" } else { "; plugin counters: " },
            plugin.join(", ")
        );
    }
    if !late.is_empty() {
        bail!(
            "tasks did not stop within task.shutdown.graceful.timeout.ms: {}",
            late.join(", ")
        );
    }
    if reason == "every task ended" && !failed.is_empty() {
        bail!("every task ended; failed: {}", failed.join("; "));
    }
    Ok(())
}

/// Where connector configs, target states and statuses are kept: compacted
/// topics with a configured Kafka, memory with the embedded one.
fn config_store(
    cluster: &KafkaCluster,
    worker: &WorkerConfig,
) -> anyhow::Result<Arc<dyn ConfigStore>> {
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
            .map_err(anyhow::Error::msg)?,
    ))
}

/// Serves the REST API on `listener` (over TLS with `tls`) on `runtime`.
fn start_rest(
    runtime: &tokio::runtime::Runtime,
    listener: std::net::TcpListener,
    tls: Option<Arc<tributary::rest::tls::ServerConfig>>,
    api: Arc<tributary::rest::Api>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let addr = listener.local_addr()?;
    let listener = {
        let _in_runtime = runtime.enter();
        tokio::net::TcpListener::from_std(listener)?
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!("REST API listening on {scheme}://{addr}");
    Ok(runtime.spawn(async move {
        let served = match tls {
            None => tributary::rest::serve(listener, api).await,
            Some(config) => tributary::rest::tls::serve(listener, api, config).await,
        };
        if let Err(e) = served {
            tracing::error!("REST API stopped: {e}");
        }
    }))
}
