//! What TLS and SASL cost: file → Kafka through tributary, 1,000,000 lines
//! of 100 bytes, PLAINTEXT against SASL_SSL with SCRAM-SHA-512, on tansu,
//! in one run, in rounds (fresh brokers each round; `BENCH_ROUNDS`,
//! default 3).
//!
//! `cargo bench -p tributary --bench secure_kafka` (needs tansu:
//! `scripts/tansu install`; and stunnel: `apt-get install stunnel4`).
//! Results go to docs/benchmarks.md.
//!
//! Both brokers keep their records in SQLite (tansu keeps SCRAM
//! credentials only there). tansu does not serve TLS itself, so on the
//! secured side stunnel terminates TLS in front of it: that side also pays
//! a second process relaying every byte on the same two cores. The
//! difference is therefore an upper bound of what TLS and SASL cost the
//! worker.

#[path = "../../tests/common/mod.rs"]
mod common;

use common::broker::Broker;
use common::secure::SecureBroker;
use std::time::Duration;

const LINES: usize = 1_000_000;

fn rounds() -> usize {
    std::env::var("BENCH_ROUNDS")
        .ok()
        .map(|v| v.parse().expect("BENCH_ROUNDS is a number"))
        .unwrap_or(3)
}

/// Seconds from the first acknowledgement to the last, off the worker's
/// progress lines (every 10 ms), for `LINES` records.
fn produce(site: &common::Site, kafka_keys: &str, n: usize, what: &str) -> f64 {
    let worker = site.write(
        &format!("worker-{what}-{n}.yaml"),
        &format!(
            "{kafka_keys}plugin.path: {}\nplugin.cache.dir: {}\nmetrics.log.interval.ms: 10\nlisteners: ''\noffset.storage.topic: offsets-{what}-{n}\nconfig.storage.topic: configs-{what}-{n}\nstatus.storage.topic: status-{what}-{n}\n",
            site.path("plugins").display(),
            site.path("cache").display(),
        ),
    );
    let src = site.write(
        &format!("src-{what}-{n}.yaml"),
        &format!("name: bench-{what}-{n}\nconfig:\n  connector.class: file-source\n  file: data/in.txt\n  topic: bench-{what}-{n}\n"),
    );
    let mut running = site.run(&worker, &[&src]);
    let done = format!("acknowledged={LINES}");
    running.wait_for(
        "every record acknowledged",
        Duration::from_secs(900),
        |log| {
            assert!(!log.contains("task failed"), "{log}");
            log.contains(&done)
        },
    );
    let (counted, secs) = common::progress_span(&running.log(), "acknowledged");
    assert_eq!(running.stop().0, 0);
    secs * LINES as f64 / counted as f64
}

fn main() {
    let site = common::Site::new(&["tributary_connector_file"]);
    site.write("data/in.txt", &common::numbered_lines(0, LINES, 99));
    let mut results = Vec::new();
    for n in 1..=rounds() {
        let dir = tempfile::tempdir().unwrap();
        let plain = Broker::sqlite(dir.path());
        let plain_secs = produce(
            &site,
            &format!("bootstrap.servers: {}\n", plain.bootstrap()),
            n,
            "plaintext",
        );
        drop(plain);
        let secure = SecureBroker::start();
        secure.set_scram_password("bench", "bench-password");
        let secure_secs = produce(
            &site,
            &secure.worker_keys("bench", "bench-password", &secure.ca),
            n,
            "sasl-ssl",
        );
        drop(secure);
        println!(
            "round {n}: PLAINTEXT {plain_secs:.3} s ({:.0} records/s); SASL_SSL SCRAM-SHA-512 through stunnel {secure_secs:.3} s ({:.0} records/s); ratio {:.2}",
            LINES as f64 / plain_secs,
            LINES as f64 / secure_secs,
            plain_secs / secure_secs
        );
        results.push((plain_secs, secure_secs));
    }
    let median = |f: &dyn Fn(&(f64, f64)) -> f64| {
        let mut v: Vec<f64> = results.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "median of {}: PLAINTEXT {:.0} records/s, SASL_SSL {:.0} records/s, ratio {:.2} (file → Kafka, {LINES} × 100 B, tansu on SQLite)",
        results.len(),
        LINES as f64 / median(&|r| r.0),
        LINES as f64 / median(&|r| r.1),
        median(&|r| r.0 / r.1),
    );
}
