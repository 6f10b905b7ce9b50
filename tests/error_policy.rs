//! `errors.*` on the embedded Kafka: bad records are skipped into a dead
//! letter queue under `errors.tolerance=all` and fail the task under `none`;
//! retriable records are offered again and land in order.

mod common;

use common::{line_count, Site};
use std::time::Duration;

const PLUGINS: &[&str] = &["tributary_connector_file", "tributary_testkit"];

/// 1,000 lines; every 100th is rejected by the testkit sink, every 250th
/// is retriable twice before it is accepted.
fn input() -> (String, Vec<String>, Vec<String>) {
    let (mut all, mut good, mut bad) = (String::new(), Vec::new(), Vec::new());
    for i in 0..1000 {
        let line = match i {
            i if i % 100 == 99 => format!("line {i} REJECT"),
            i if i % 250 == 5 => format!("line {i} RETRY"),
            i => format!("line {i}"),
        };
        all.push_str(&line);
        all.push('\n');
        if line.contains("REJECT") {
            bad.push(line)
        } else {
            good.push(line)
        }
    }
    (all, good, bad)
}

fn source(site: &Site, topic: &str) -> std::path::PathBuf {
    site.write("source.yaml", &format!("name: lines-in\nconfig:\n  connector.class: file-source\n  file: data/in.txt\n  topic: {topic}\n"))
}

#[test]
fn tolerated_bad_records_go_to_the_dead_letter_queue_and_the_rest_flows() {
    let site = Site::new(PLUGINS);
    let (all, good, bad) = input();
    site.write("data/in.txt", &all);
    let worker = site.worker("");
    let src = source(&site, "in");
    let picky = site.write(
        "picky.yaml",
        "name: picky\nconfig:\n  connector.class: testkit-sink\n  topics: in\n  file: data/good.txt\n  errors.tolerance: all\n  errors.log.enable: true\n  errors.retry.delay.max.ms: 50\n  errors.deadletterqueue.topic.name: in-dlq\n",
    );
    let dlq = site.write("dlq.yaml", "name: dlq-reader\nconfig:\n  connector.class: file-sink\n  topics: in-dlq\n  file: data/dlq.txt\n");
    let mut running = site.run(&worker, &[&src, &picky, &dlq]);
    let (good_file, dlq_file) = (site.path("data/good.txt"), site.path("data/dlq.txt"));
    running.wait_for(
        "every record written or dead-lettered",
        Duration::from_secs(120),
        |_| line_count(&good_file) >= good.len() && line_count(&dlq_file) >= bad.len(),
    );
    let (code, log) = running.stop();
    assert_eq!(code, 0, "{log}");
    let written = std::fs::read_to_string(&good_file).unwrap();
    let written: Vec<&str> = written.lines().collect();
    assert_eq!(
        written.len(),
        good.len(),
        "every good record once, none twice"
    );
    // Retried records land after the ones accepted meanwhile; the rest keep their order.
    let plain = |v: &[&str]| {
        v.iter()
            .filter(|l| !l.contains("RETRY"))
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
    };
    let good_refs: Vec<&str> = good.iter().map(String::as_str).collect();
    assert!(
        plain(&written) == plain(&good_refs),
        "accepted records in their order"
    );
    let mut retried: Vec<&str> = written
        .iter()
        .copied()
        .filter(|l| l.contains("RETRY"))
        .collect();
    retried.sort();
    let mut expected: Vec<&str> = good_refs
        .iter()
        .copied()
        .filter(|l| l.contains("RETRY"))
        .collect();
    expected.sort();
    assert_eq!(retried, expected, "every retried record written once");
    let dead = std::fs::read_to_string(&dlq_file).unwrap();
    assert!(
        dead == bad.join("\n") + "\n",
        "bad records, unchanged, in order: {dead}"
    );
    assert!(
        log.contains("tolerated error for record in[0]@99: value contains \"REJECT\""),
        "errors.log.enable logs each:\n{log}"
    );
}

#[test]
fn without_tolerance_a_bad_record_fails_the_task_naming_the_record() {
    let site = Site::new(PLUGINS);
    site.write("data/in.txt", &input().0);
    let worker = site.worker("");
    let src = source(&site, "strict-in");
    let picky = site.write("picky.yaml", "name: picky\nconfig:\n  connector.class: testkit-sink\n  topics: strict-in\n  file: data/good.txt\n");
    let mut running = site.run(&worker, &[&src, &picky]);
    running.wait_for("the task failure", Duration::from_secs(120), |log| {
        log.contains("task failed")
    });
    let log = running.log();
    let line = log.lines().find(|l| l.contains("task failed")).unwrap();
    assert!(line.contains("connector=picky"), "{line}");
    assert!(line.contains("TASK_PUT failed for record strict-in[0]@99: value contains \"REJECT\" (errors.tolerance is none)"), "{line}");
}
