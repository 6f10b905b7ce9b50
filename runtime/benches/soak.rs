//! A soak: one worker on tansu for `SOAK_SECS` (default 1800 s) running two
//! pipelines fed the whole time, under REST load and connector churn; then
//! it checks that output equals input, that the log holds no error and that
//! the worker's memory stayed flat.
//!
//! `cargo bench -p tributary --bench soak` (needs tansu: `scripts/tansu
//! install`; the machine's PostgreSQL on 127.0.0.1:5432 with trust auth;
//! `wrk` for the REST load). `SOAK_SECS=120` makes a short one.
//!
//! - file → Kafka → file: a writer appends 200 numbered lines a second to
//!   the input of a `file-source`; a `file-sink` writes the topic out.
//! - PostgreSQL → Kafka → PostgreSQL: a writer inserts 200 rows a second
//!   into a table read by `database-source` (incrementing); a
//!   `database-sink` upserts them into a second table by `id`.
//! - REST load: `wrk` (1 thread, 4 connections, 10 s) on a connector's
//!   status every 30 s.
//! - Churn: every 5 s a `file-source` is created over REST, waited RUNNING,
//!   paused, waited PAUSED, resumed, waited RUNNING and deleted.
//!
//! The worker's RSS is sampled every 10 s. "Flat" compares the median of
//! the last fifth of the run with the median of the fifth after a warm-up
//! (the first 10 % of the run): within 10 %.

#[path = "../../tests/common/mod.rs"]
mod common;

use common::broker::Broker;
use common::db::{count_rows, exec, texts, unique, PG_URL};
use common::rest::{running, Api};
use serde_json::json;
use std::io::Write;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RATE: usize = 200;

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn main() {
    let secs: u64 = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1800);
    let run_for = Duration::from_secs(secs);
    let broker = Broker::memory();
    let lines_topic = unique("soak_lines");
    let src = unique("soak_src");
    let dst = unique("soak_dst");
    let churn_topic = unique("soak_churn");
    for t in [&lines_topic, &src, &churn_topic] {
        broker.create_topic(t, 1, &[]);
    }
    let columns = "id BIGINT PRIMARY KEY, name TEXT NOT NULL, amount NUMERIC(12,2), note TEXT";
    exec(
        PG_URL,
        &format!("CREATE TABLE {src} ({columns}); CREATE TABLE {dst} ({columns});"),
    );

    let site = common::Site::new(&["tributary_connector_file", "tributary_connector_database"]);
    std::fs::create_dir_all(site.path("data")).unwrap();
    std::fs::write(site.path("data/input.txt"), "").unwrap();
    std::fs::write(site.path("data/churn.txt"), "one\ntwo\nthree\n").unwrap();
    let worker = site.write(
        "worker.yaml",
        &format!(
            "bootstrap.servers: {}\nplugin.path: {}\nplugin.cache.dir: {}\nmetrics.log.interval.ms: 0\n\
             listeners: http://127.0.0.1:0\noffset.flush.interval.ms: 1000\n\
             consumer.fetch.wait.max.ms: {}\nfile.allowed.paths: {}\n",
            broker.bootstrap(),
            site.path("plugins").display(),
            site.path("cache").display(),
            common::broker::TANSU_FETCH_WAIT_MS,
            site.path("data").display(),
        ),
    );
    let connectors = [
        site.write(
            "lines-in.yaml",
            &format!(
                "name: soak-lines-in\nconfig:\n  connector.class: file-source\n  file: {}\n  topic: {lines_topic}\n",
                site.path("data/input.txt").display()
            ),
        ),
        site.write(
            "lines-out.yaml",
            &format!(
                "name: soak-lines-out\nconfig:\n  connector.class: file-sink\n  file: {}\n  topics: {lines_topic}\n",
                site.path("data/output.txt").display()
            ),
        ),
        site.write(
            "rows-in.yaml",
            &format!(
                "name: soak-rows-in\nconfig:\n  connector.class: database-source\n  connection.url: \"{PG_URL}\"\n  table.whitelist: {src}\n  topic.prefix: \"\"\n  mode: incrementing\n  incrementing.column.name: id\n  poll.interval.ms: 200\n"
            ),
        ),
        site.write(
            "rows-out.yaml",
            &format!(
                "name: soak-rows-out\nconfig:\n  connector.class: database-sink\n  connection.url: \"{PG_URL}\"\n  topics: {src}\n  table.name.format: {dst}\n  insert.mode: upsert\n  pk.mode: record_value\n  pk.fields: id\n"
            ),
        ),
    ];
    let paths: Vec<&std::path::Path> = connectors.iter().map(|p| p.as_path()).collect();
    let api = Api::start(&site, &worker, &paths);
    let pid = api.run.child.id();
    for name in [
        "soak-lines-in",
        "soak-lines-out",
        "soak-rows-in",
        "soak-rows-out",
    ] {
        api.wait_status(name, "RUNNING", running);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();

    // The writers: RATE lines and RATE rows a second until the end.
    let lines_written = Arc::new(AtomicUsize::new(0));
    let line_writer = {
        let (stop, written, path) = (
            stop.clone(),
            lines_written.clone(),
            site.path("data/input.txt"),
        );
        std::thread::spawn(move || {
            let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
            while !stop.load(Ordering::Relaxed) {
                let from = written.load(Ordering::Relaxed);
                let text = common::numbered_lines(from, RATE, 9);
                file.write_all(text.as_bytes()).unwrap();
                file.flush().unwrap();
                written.store(from + RATE, Ordering::Relaxed);
                std::thread::sleep(Duration::from_secs(1));
            }
        })
    };
    let rows_written = Arc::new(AtomicUsize::new(0));
    let row_writer = {
        let (stop, written, src) = (stop.clone(), rows_written.clone(), src.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let from = written.load(Ordering::Relaxed);
                exec(PG_URL, &format!(
                    "INSERT INTO {src} SELECT g, 'customer-' || g, (g % 100000) / 100.0, repeat('n', 40) FROM generate_series({}, {}) g",
                    from + 1,
                    from + RATE
                ));
                written.store(from + RATE, Ordering::Relaxed);
                std::thread::sleep(Duration::from_secs(1));
            }
        })
    };

    // REST load and churn, and the RSS samples, on this thread.
    let status_url = format!("{}/connectors/soak-lines-in/status", api.base);
    let (mut samples, mut cycles, mut requests) = (Vec::new(), 0usize, 0u64);
    let (mut next_sample, mut next_wrk, mut next_churn) = (started, started, started);
    while started.elapsed() < run_for {
        let now = Instant::now();
        if now >= next_sample {
            samples.push((started.elapsed().as_secs(), rss_kb(pid)));
            next_sample += Duration::from_secs(10);
        }
        if now >= next_wrk {
            let out = Command::new("wrk")
                .args(["-t1", "-c4", "-d10s", &status_url])
                .output()
                .expect("wrk (Debian's package wrk)");
            let text = String::from_utf8_lossy(&out.stdout);
            requests += text
                .lines()
                .find(|l| l.contains("requests in"))
                .and_then(|l| l.split_whitespace().next()?.parse().ok())
                .unwrap_or(0);
            assert!(!text.contains("Non-2xx"), "wrk saw errors:\n{text}");
            next_wrk += Duration::from_secs(30);
        }
        if now >= next_churn {
            let name = format!("soak-churn-{cycles}");
            let config = json!({
                "connector.class": "file-source",
                "file": site.path("data/churn.txt").display().to_string(),
                "topic": churn_topic,
            });
            let (code, body) = api.call(
                "POST",
                "/connectors",
                Some(json!({"name": name, "config": config})),
            );
            assert_eq!(code, 201, "{body}");
            api.wait_status(&name, "RUNNING", running);
            assert_eq!(
                api.call("PUT", &format!("/connectors/{name}/pause"), None)
                    .0,
                202
            );
            api.wait_status(&name, "PAUSED", |s| s["connector"]["state"] == "PAUSED");
            assert_eq!(
                api.call("PUT", &format!("/connectors/{name}/resume"), None)
                    .0,
                202
            );
            api.wait_status(&name, "RUNNING", running);
            assert_eq!(
                api.call("DELETE", &format!("/connectors/{name}"), None).0,
                204
            );
            cycles += 1;
            next_churn += Duration::from_secs(5);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    line_writer.join().unwrap();
    row_writer.join().unwrap();
    let (lines, rows) = (
        lines_written.load(Ordering::Relaxed),
        rows_written.load(Ordering::Relaxed),
    );

    // Everything written arrives.
    let drain = Instant::now();
    api.wait_until("every line and row delivered", || {
        common::line_count(&site.path("data/output.txt")) >= lines && count_rows(&dst) >= rows
    });
    let drained = drain.elapsed().as_secs_f64();
    let input = std::fs::read_to_string(site.path("data/input.txt")).unwrap();
    let output = std::fs::read_to_string(site.path("data/output.txt")).unwrap();
    assert!(output == input, "file output differs from its input");
    let same = texts(
        PG_URL,
        &format!("SELECT count(*) FROM {src} s JOIN {dst} d USING (id) WHERE s.name = d.name AND s.amount = d.amount AND s.note = d.note"),
    );
    assert_eq!(
        same[0][0].as_deref(),
        Some(rows.to_string().as_str()),
        "every row copied unchanged"
    );
    samples.push((started.elapsed().as_secs(), rss_kb(pid)));
    let (code, log) = api.run.stop();
    assert_eq!(code, 0, "the worker exited {code}");
    let errors: Vec<&str> = log.lines().filter(|l| l.contains(" ERROR ")).collect();

    // RSS: warm-up excluded, then the first and last fifths compared.
    let after_warmup: Vec<u64> = samples
        .iter()
        .filter(|(t, _)| *t >= secs / 10)
        .map(|(_, kb)| *kb)
        .collect();
    let fifth = (after_warmup.len() / 5).max(1);
    let early = median(after_warmup[..fifth].to_vec());
    let late = median(after_warmup[after_warmup.len() - fifth..].to_vec());
    let peak = samples.iter().map(|(_, kb)| *kb).max().unwrap_or(0);
    let change = (late as f64 - early as f64) / early as f64 * 100.0;
    println!("soak: {secs} s; {lines} lines file → Kafka → file, {rows} rows PostgreSQL → Kafka → PostgreSQL; output equals input (drained {drained:.1} s after the writers stopped)");
    println!("soak: REST load {requests} status requests by wrk, all 2xx; {cycles} connectors created, paused, resumed and deleted");
    println!("soak: worker RSS {early} kB after warm-up, {late} kB at the end ({change:+.1} %), peak {peak} kB; {} samples", samples.len());
    println!("soak: {} ERROR lines in the log", errors.len());
    for e in errors.iter().take(20) {
        println!("  {e}");
    }
    exec(PG_URL, &format!("DROP TABLE {src}; DROP TABLE {dst};"));
    assert!(errors.is_empty(), "the log has errors");
    assert!(
        change.abs() <= 10.0,
        "RSS moved {change:+.1} % (from {early} kB to {late} kB)"
    );
}
