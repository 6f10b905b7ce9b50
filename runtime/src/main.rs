//! The `tributary` command: run connectors, check configs, list plugins,
//! ask a running worker whether it is healthy. Loading and running a worker
//! live in the library ([`tributary::app`]); this file is the command line
//! and what it prints.

use clap::{Parser, Subcommand};
use std::io::{IsTerminal, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};
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
    /// GET a worker's health endpoint: exits 0 on a 2xx answer, 1 with the
    /// reason otherwise. For container health checks (an image without a
    /// shell or curl). Plain HTTP only.
    Health {
        /// The URL to ask.
        #[arg(default_value = "http://127.0.0.1:8083/health")]
        url: String,
        /// How long to wait for the answer, in milliseconds.
        #[arg(long, default_value_t = 5000)]
        timeout_ms: u64,
    },
}

fn main() -> ExitCode {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("TRIBUTARY_LOG").unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new("info,cranelift_codegen=warn,wasmtime=warn")
        });
    let cli = Cli::parse();
    // Colours only for a person at a terminal: a log read through a pipe,
    // a file or a container's log driver holds no escape codes.
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    let result = match cli.command {
        Command::Run { worker, connectors } => run(worker, connectors),
        Command::Validate { worker, connectors } => validate(worker, connectors).map_err(failure),
        Command::Plugins { worker } => plugins(worker).map_err(failure),
        Command::Health { url, timeout_ms } => {
            health(&url, Duration::from_millis(timeout_ms)).map_err(failure)
        }
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

/// One GET of `url` (`http://host[:port][/path]`), answered within
/// `timeout`; prints the status line of a 2xx answer, and is an error
/// naming the URL and the reason otherwise.
fn health(url: &str, timeout: Duration) -> Result<(), String> {
    let fail = |reason: String| format!("{url}: {reason}");
    let (host, port, path) = http_url(url).map_err(fail)?;
    let deadline = Instant::now() + timeout;
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("no answer within {} ms", timeout.as_millis()))
    };
    let addrs: Vec<_> = (host.trim_start_matches('[').trim_end_matches(']'), port)
        .to_socket_addrs()
        .map_err(|e| fail(format!("cannot resolve {host}: {e}")))?
        .collect();
    let mut refused = format!("{host} resolves to no address");
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, left().map_err(fail)?) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => refused = format!("cannot connect to {addr}: {e}"),
        }
    }
    let mut stream = stream.ok_or_else(|| fail(refused))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: tributary-health\r\nConnection: close\r\n\r\n"
    );
    stream
        .set_write_timeout(Some(left().map_err(fail)?))
        .and_then(|()| stream.write_all(request.as_bytes()))
        .map_err(|e| fail(format!("cannot send the request: {e}")))?;
    // The status line is all that is read: at most 1 KiB up to its end.
    let mut head = Vec::new();
    let mut buf = [0u8; 256];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 1024 {
        stream
            .set_read_timeout(Some(left().map_err(fail)?))
            .map_err(|e| fail(e.to_string()))?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(fail(format!("no answer within {} ms", timeout.as_millis())))
            }
            Err(e) => return Err(fail(format!("cannot read the answer: {e}"))),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let line = text.split("\r\n").next().unwrap_or_default();
    let status = line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| {
            fail(format!(
                "not an HTTP answer: {:?}",
                line.chars().take(80).collect::<String>()
            ))
        })?;
    if (200..300).contains(&status) {
        println!("{url}: {line}");
        Ok(())
    } else {
        Err(fail(format!("answered {line}")))
    }
}

/// The host, port and path of an `http://` URL.
fn http_url(url: &str) -> Result<(String, u16, String), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        "expects an http:// URL (an https:// listener is probed by the orchestrator's own HTTPS check)".to_owned()
    })?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => {
            let port = authority[i + 1..]
                .parse::<u16>()
                .map_err(|_| format!("`{}` is not a port", &authority[i + 1..]))?;
            (&authority[..i], port)
        }
        _ => (authority, 80),
    };
    if host.is_empty() {
        return Err("names no host".into());
    }
    Ok((host.to_owned(), port, path.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::http_url;

    #[test]
    fn health_urls_are_split_into_host_port_and_path() {
        let split = http_url;
        assert_eq!(
            split("http://127.0.0.1:8083/health"),
            Ok(("127.0.0.1".into(), 8083, "/health".into()))
        );
        assert_eq!(
            split("http://worker"),
            Ok(("worker".into(), 80, "/".into()))
        );
        assert_eq!(
            split("http://[::1]:9/health"),
            Ok(("[::1]".into(), 9, "/health".into()))
        );
        assert_eq!(
            split("http://[::1]/h"),
            Ok(("[::1]".into(), 80, "/h".into()))
        );
        assert!(split("https://worker:8443/health")
            .unwrap_err()
            .contains("http://"));
        assert!(split("http://worker:port/health")
            .unwrap_err()
            .contains("`port` is not a port"));
        assert!(split("http://:8083/health")
            .unwrap_err()
            .contains("no host"));
    }
}
