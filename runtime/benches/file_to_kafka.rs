//! File → Kafka throughput on the embedded Kafka: 1,000,000 lines of 100
//! bytes read by the file source and acknowledged by Kafka.
//!
//! `cargo bench -p tributary --bench file_to_kafka`. Runs the real binary;
//! the clock starts when the task logs that it runs (plugin compiled and
//! loaded, Kafka up) and stops at the first progress line that counts every
//! record acknowledged.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

const LINES: usize = 1_000_000;

fn main() {
    let site = common::Site::new(&["tributary_connector_file"]);
    site.write("data/in.txt", &common::numbered_lines(0, LINES, 99));
    let worker = site.write(
        "worker.yaml",
        &format!(
            "plugin.path: {}\nplugin.cache.dir: {}\nmetrics.log.interval.ms: 100\nlisteners: ''\n",
            site.path("plugins").display(),
            site.path("cache").display()
        ),
    );
    let src = site.write("src.yaml", "name: bench\nconfig:\n  connector.class: file-source\n  file: data/in.txt\n  topic: bench\n");
    let mut running = site.run(&worker, &[&src]);
    running.wait_for("the task to run", Duration::from_secs(120), |log| {
        log.contains("source task running")
    });
    let start = Instant::now();
    let done = format!("acknowledged={LINES}");
    running.wait_for(
        "every record acknowledged",
        Duration::from_secs(600),
        |log| log.contains(&done),
    );
    let elapsed = start.elapsed();
    let pid = running.child.id();
    let rss = common::peak_rss_kb(pid);
    let (code, _) = running.stop();
    assert_eq!(code, 0);
    let secs = elapsed.as_secs_f64();
    println!("file → embedded Kafka: {LINES} lines of 100 bytes in {secs:.2} s (±0.1 s progress-line resolution)");
    println!(
        "throughput: {:.0} records/s, {:.1} MB/s",
        LINES as f64 / secs,
        (LINES * 100) as f64 / 1e6 / secs
    );
    println!("worker peak RSS: {rss} kB");
}
