//! The `tributary` command: run connectors, check configs, list plugins.
//! Loading and running a worker live in the library ([`tributary::app`]);
//! this file is the command line and what it prints.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tributary::app::{App, Options, StopReason};
use tributary::config::{Problems, CONNECTOR_RUNTIME_KEYS};

#[derive(Parser)]
#[command(
    name = "tributary",
    version,
    about = "A connector runtime for Kafka: WebAssembly connectors, at-least-once delivery"
)]
struct Cli {
    /// Log format: `text` (default) or `json` (one JSON object per line).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "TRIBUTARY_LOG_FORMAT"
    )]
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
    /// Run connectors until SIGINT or SIGTERM. Exits 0 when every task
    /// stopped in time, 1 otherwise; a second signal while the tasks stop
    /// exits at once, with 130 (SIGINT) or 143 (SIGTERM).
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

fn main() -> ExitCode {
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
        Command::Run { worker, connectors } => run(worker, connectors),
        Command::Validate { worker, connectors } => validate(worker, connectors).map_err(failure),
        Command::Plugins { worker } => plugins(worker).map_err(failure),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((e, code)) => {
            eprintln!("error: {e}");
            code
        }
    }
}

/// A failure's message, with the usual exit code.
fn failure(message: String) -> (String, ExitCode) {
    (message, ExitCode::FAILURE)
}

/// The exit code of a worker that a second signal stopped at once: 128 plus
/// the signal's number, as a shell reports a process the signal ended.
fn forced_exit(signal: StopReason) -> ExitCode {
    match signal {
        StopReason::Sigint => ExitCode::from(130),
        StopReason::Sigterm => ExitCode::from(143),
        StopReason::Requested | StopReason::TasksEnded => ExitCode::FAILURE,
    }
}

fn run(worker: Option<PathBuf>, connectors: Vec<PathBuf>) -> Result<(), (String, ExitCode)> {
    // `FAILPOINTS`, in test builds only (fail points are compiled out of
    // builds without the `fail` crate's `failpoints` feature).
    let _fail_points = fail::has_failpoints().then(fail::FailScenario::setup);
    let mut running = load(worker, connectors, true)
        .map_err(failure)?
        .start()
        .map_err(|e| failure(e.to_string()))?;
    let reason = running.wait();
    let report = running.shutdown(reason);
    let code = report.forced.map_or(ExitCode::FAILURE, forced_exit);
    report.outcome().map_err(|e| (e, code))
}

fn validate(worker: Option<PathBuf>, connectors: Vec<PathBuf>) -> Result<(), String> {
    let app = load(worker, connectors, false)?;
    if !app.unavailable().is_empty() {
        let all = app.unavailable().iter().flat_map(|u| u.problems.0.clone());
        return Err(Problems(all.collect()).to_string());
    }
    for c in app.connectors() {
        let d = &c.description;
        let tasks = c.runtime.tasks_max;
        let file = c.file.display();
        println!(
            "{file}: ok ({} {} {}, tasks.max {tasks})",
            d.kind, d.name, d.version
        );
    }
    println!("{} connector config(s) valid", app.connectors().len());
    Ok(())
}

fn plugins(worker: Option<PathBuf>) -> Result<(), String> {
    let app = load(worker, Vec::new(), false)?;
    let dirs = app.worker_config().plugin_path.iter().map(|d| d.display());
    println!(
        "plugin.path: {}",
        dirs.map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
    );
    let registry = app.registry();
    for (plugin, d) in registry.connectors() {
        println!("\n{} {} ({}) — {}", d.name, d.version, d.kind, d.summary);
        println!("  file: {}", plugin.path.display());
        for k in &d.keys {
            let (name, ty, default) = (&k.name, k.ty.name(), k.shown_default());
            let secret = if k.secret { ", secret" } else { "" };
            println!("  {name:<24} {ty:<10} {default}{secret}. {}", k.doc);
        }
    }
    for r in &registry.rejected {
        println!("\nrejected {}: {}", r.path.display(), r.reason);
    }
    if registry.plugins.is_empty() {
        println!("\nno plugins found");
    }
    let keys: Vec<&str> = CONNECTOR_RUNTIME_KEYS.iter().map(|(k, _)| *k).collect();
    println!("\nEvery connector also takes: {}", keys.join(", "));
    Ok(())
}

/// Loads and checks, catching signals from the start when `signals`.
fn load(worker: Option<PathBuf>, connectors: Vec<PathBuf>, signals: bool) -> Result<App, String> {
    let options = Options {
        worker,
        connectors,
        signals,
    };
    App::load(&options).map_err(|e| e.to_string())
}
