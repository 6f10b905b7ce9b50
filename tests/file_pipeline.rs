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

#[test]
fn a_restart_resumes_at_the_committed_byte_offset() {
    let site = Site::new(&[FILE]);
    site.write("data/in.txt", &numbered_lines(0, 1_000, 30));
    let worker = site.worker(&format!(
        "offset.storage.file.filename: {}\n",
        site.path("offsets.jsonl").display()
    ));
    let (src, sink) = connectors(&site, "data/in.txt", "data/out.txt", "resume");
    let out = site.path("data/out.txt");

    let mut first = site.run(&worker, &[&src, &sink]);
    first.wait_for("the first 1,000 lines", Duration::from_secs(120), |_| {
        line_count(&out) >= 1_000
    });
    let (code, log) = first.stop();
    assert_eq!(code, 0, "{log}");
    let offsets = std::fs::read_to_string(site.path("offsets.jsonl")).unwrap();
    let expected_key = format!(
        r#"["lines-in",{{"filename":"{}"}}]"#,
        site.path("data/in.txt").display()
    );
    assert!(
        offsets.contains(&serde_json_escape(&expected_key)),
        "Kafka Connect's key format in {offsets}"
    );
    assert!(
        offsets.contains(&serde_json_escape(&format!(
            r#"{{"position":{}}}"#,
            1_000 * 31
        ))),
        "{offsets}"
    );

    // More lines arrive while the worker is down. The embedded Kafka starts
    // empty again, so the sink sees only what the source produces now.
    let mut more = std::fs::OpenOptions::new()
        .append(true)
        .open(site.path("data/in.txt"))
        .unwrap();
    std::io::Write::write_all(&mut more, numbered_lines(1_000, 500, 30).as_bytes()).unwrap();
    drop(more);
    let mut second = site.run(&worker, &[&src, &sink]);
    second.wait_for("the 500 new lines", Duration::from_secs(120), |_| {
        line_count(&out) >= 1_500
    });
    std::thread::sleep(Duration::from_millis(500));
    let (code, log) = second.stop();
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains(&format!("from byte {}", 1_000 * 31)),
        "resumed at the committed position:\n{log}"
    );
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        numbered_lines(0, 1_500, 30),
        "no line lost, none repeated"
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

fn serde_json_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

trait WaitCode {
    fn wait_with_output_code(&mut self) -> i32;
}

impl WaitCode for std::process::Child {
    fn wait_with_output_code(&mut self) -> i32 {
        self.wait().unwrap().code().unwrap_or(-1)
    }
}
