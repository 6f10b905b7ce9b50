//! file → Kafka → file through the real binary, on the embedded Kafka.

mod common;

use common::{line_count, numbered_lines, Site};
use std::time::Duration;

const FILE: &str = "tributary_connector_file";

fn connectors(
    site: &Site,
    input: &str,
    output: &str,
    topic: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let src = site.write(
        "source.yaml",
        &format!("name: lines-in\nconfig:\n  connector.class: file-source\n  file: {input}\n  topic: {topic}\n"),
    );
    let sink = site.write(
        "sink.yaml",
        &format!("name: lines-out\nconfig:\n  connector.class: file-sink\n  file: {output}\n  topics: {topic}\n"),
    );
    (src, sink)
}

#[test]
fn hundred_thousand_lines_arrive_exactly_and_in_order() {
    let site = Site::new(&[FILE]);
    let input = numbered_lines(0, 100_000, 60);
    site.write("data/in.txt", &input);
    let worker = site.worker("");
    let (src, sink) = connectors(&site, "data/in.txt", "data/out.txt", "lines");
    let mut running = site.run(&worker, &[&src, &sink]);
    let out = site.path("data/out.txt");
    running.wait_for(
        "100,000 lines in the sink file",
        Duration::from_secs(180),
        |_| line_count(&out) >= 100_000,
    );
    let (code, log) = running.stop();
    assert_eq!(code, 0, "clean exit on SIGTERM; log:\n{log}");
    let got = std::fs::read_to_string(&out).unwrap();
    assert_eq!(got.len(), input.len(), "sink file size");
    assert!(
        got == input,
        "the sink file must hold exactly the input lines, in order"
    );
    assert!(
        log.contains("started the embedded Kafka"),
        "the worker says it runs the embedded Kafka:\n{log}"
    );
}

/// The worker as a library: loaded, started, stopped and reported on in
/// this process, as tests and benchmarks embed it.
#[test]
fn a_worker_runs_in_process_and_reports_at_shutdown() {
    use tributary::app::{App, Options, StopReason};
    let site = Site::new(&[FILE]);
    let input = numbered_lines(0, 5_000, 40);
    site.write("data/in.txt", &input);
    let worker = site.worker("");
    // The process's working directory is not the site's: absolute paths.
    let (input_file, out) = (site.path("data/in.txt"), site.path("data/out.txt"));
    let (src, sink) = connectors(
        &site,
        &input_file.display().to_string(),
        &out.display().to_string(),
        "in-process",
    );
    let app = App::load(&Options {
        worker: Some(worker),
        connectors: vec![src, sink],
        signals: false,
    })
    .unwrap();
    assert_eq!(app.connectors().len(), 2);
    let mut running = app.start().unwrap();
    assert!(running.rest_addr().is_none(), "no listeners configured");
    let stop = running.stop_handle();
    let watcher = std::thread::spawn({
        let out = out.clone();
        move || {
            let start = std::time::Instant::now();
            while line_count(&out) < 5_000 && start.elapsed() < Duration::from_secs(120) {
                std::thread::sleep(Duration::from_millis(20));
            }
            stop.stop();
        }
    });
    let reason = running.wait();
    watcher.join().unwrap();
    assert_eq!(reason, StopReason::Requested);
    let report = running.shutdown(reason);
    assert_eq!(report.outcome(), Ok(()), "{report:?}");
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), input);
}

/// The demo's worker config (`configs/worker.yaml`) in a site: its keys,
/// except those the site's worker config sets itself.
fn demo_worker(site: &Site) -> std::path::PathBuf {
    let demo = std::fs::read_to_string(common::root().join("configs/worker.yaml")).unwrap();
    let own = [
        "plugin.path:",
        "listeners:",
        "offset.flush.interval.ms:",
        "metrics.log.interval.ms:",
    ];
    let keys: String = demo
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !own.iter().any(|k| l.starts_with(k)))
        .map(|l| format!("{l}\n"))
        .collect();
    // Where the demo keeps files, relative to the worker's directory.
    std::fs::create_dir_all(site.path("demo-data")).unwrap();
    site.worker(&keys)
}

/// The input lines missing from `out` (duplicates there are allowed).
fn missing_lines(input: &str, out: &std::path::Path) -> usize {
    let got = std::fs::read_to_string(out).unwrap_or_default();
    let got: std::collections::HashSet<&str> = got.lines().collect();
    input.lines().filter(|l| !got.contains(l)).count()
}

/// The demo's worker on the embedded Kafka, stopped (SIGTERM) and killed
/// (SIGKILL) while the sink lags behind the source: a restart loses no
/// line. The embedded Kafka keeps nothing across a restart, so the source
/// reads its file from the start again; lines may arrive twice, none may
/// be missing. At start the worker says what a restart finds again.
#[test]
fn the_demo_worker_loses_no_line_when_restarted_while_the_sink_lags() {
    let site = Site::new(&[FILE]);
    // 6 MB: more than the embedded Kafka lets a producer run ahead of the
    // sink (3 MiB), so the source is ahead of the sink for most of the run.
    let n = 60_000;
    let input = numbered_lines(0, n, 99);
    site.write("data/in.txt", &input);
    let worker = demo_worker(&site);
    let (src, sink) = connectors(&site, "data/in.txt", "data/out.txt", "demo-lines");
    let out = site.path("data/out.txt");
    let json = [("TRIBUTARY_LOG_FORMAT".to_owned(), "json".to_owned())];

    let mut first = site.run_with_env(&worker, &[&src, &sink], &json);
    first.wait_for("the first lines", Duration::from_secs(120), |_| {
        line_count(&out) >= 5_000
    });
    let (code, log) = first.stop();
    assert_eq!(code, 0, "{log}");
    let survives: Vec<String> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|l| Some(l["fields"]["survives_restart"].as_str()?.to_owned()))
        .collect();
    assert_eq!(survives.len(), 1, "said once at start:\n{log}");
    assert!(survives[0].starts_with("nothing"), "{}", survives[0]);
    let after_stop = line_count(&out);
    assert!(after_stop < n, "the sink was still behind at the stop");

    let mut second = site.run_with_env(&worker, &[&src, &sink], &json);
    second.wait_for("more lines", Duration::from_secs(120), |_| {
        line_count(&out) >= after_stop + 5_000
    });
    second.kill9();

    let mut third = site.run_with_env(&worker, &[&src, &sink], &json);
    third.wait_for("every input line", Duration::from_secs(180), |_| {
        line_count(&out) >= n && missing_lines(&input, &out) == 0
    });
    let (code, log) = third.stop();
    assert_eq!(code, 0, "{log}");
    assert_eq!(missing_lines(&input, &out), 0);
}

/// A Kafka Connect standalone worker config names an offset file; without
/// `bootstrap.servers` the offsets would outlive the embedded Kafka's
/// records. The config is refused, naming the key and its line.
#[test]
fn an_offset_file_without_bootstrap_servers_is_refused() {
    let site = Site::new(&[FILE]);
    let worker = site.worker("offset.storage.file.filename: offsets.jsonl\n");
    let output = site.cli(&["validate", "-w", worker.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let problem = stderr
        .lines()
        .find(|l| l.contains("offset.storage.file.filename"))
        .unwrap_or_else(|| panic!("the key is named:\n{stderr}"));
    assert!(problem.contains("bootstrap.servers"), "{problem}");
    // With a configured Kafka the same key is a worker's offset store.
    let worker = site
        .worker("bootstrap.servers: 127.0.0.1:9\noffset.storage.file.filename: offsets.jsonl\n");
    let output = site.cli(&["validate", "-w", worker.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn appended_lines_are_followed_and_a_truncated_file_is_read_again() {
    let site = Site::new(&[FILE]);
    site.write("data/in.txt", &numbered_lines(0, 100, 20));
    let worker = site.worker("");
    let (src, sink) = connectors(&site, "data/in.txt", "data/out.txt", "follow");
    let out = site.path("data/out.txt");
    let mut running = site.run(&worker, &[&src, &sink]);
    running.wait_for("the first 100 lines", Duration::from_secs(120), |_| {
        line_count(&out) >= 100
    });

    // A line written in two parts is produced once, whole.
    let input = site.path("data/in.txt");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&input)
        .unwrap();
    std::io::Write::write_all(&mut f, b"half a ").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    std::io::Write::write_all(&mut f, b"line\n").unwrap();
    drop(f);
    running.wait_for("the appended line", Duration::from_secs(60), |_| {
        line_count(&out) >= 101
    });

    std::fs::write(&input, "after truncation\n").unwrap();
    running.wait_for("the truncation warning", Duration::from_secs(60), |log| {
        log.contains("truncated")
    });
    running.wait_for("the line after truncation", Duration::from_secs(60), |_| {
        line_count(&out) >= 102
    });
    let (code, log) = running.stop();
    assert_eq!(code, 0, "{log}");
    let mut expected = numbered_lines(0, 100, 20);
    expected.push_str("half a line\nafter truncation\n");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), expected);
}

#[test]
fn a_missing_input_file_fails_the_task_with_its_path() {
    let site = Site::new(&[FILE]);
    std::fs::create_dir_all(site.path("data")).unwrap();
    let worker = site.worker("");
    let (src, _) = connectors(&site, "data/nope.txt", "data/out.txt", "missing");
    let mut running = site.run(&worker, &[&src]);
    running.wait_for("the task failure", Duration::from_secs(60), |log| {
        log.contains("task failed")
    });
    let log = running.log();
    let failure = log.lines().find(|l| l.contains("task failed")).unwrap();
    assert!(
        failure.contains(&site.path("data/nope.txt").display().to_string()),
        "{failure}"
    );
    let output = running.child.wait_with_output_code();
    assert_ne!(output, 0, "every task ended and one failed: non-zero exit");
}

trait WaitCode {
    fn wait_with_output_code(&mut self) -> i32;
}

impl WaitCode for std::process::Child {
    fn wait_with_output_code(&mut self) -> i32 {
        self.wait().unwrap().code().unwrap_or(-1)
    }
}
