//! Delivery against a real broker (tansu): offsets in a compacted topic,
//! kill -9, tombstones, the cleanup-policy check, the dead letter queue with
//! its headers, and a broker restart in the middle of a run.

mod common;

use common::broker::Broker;
use common::{line_count, numbered_lines, Running, Site};
use std::path::{Path, PathBuf};
use std::time::Duration;

const PLUGINS: &[&str] = &["tributary_connector_file", "tributary_testkit"];

fn worker(site: &Site, broker: &Broker) -> PathBuf {
    // A short session lets a killed worker's sink leave its group quickly.
    site.worker(&format!(
        "bootstrap.servers: {}\nconsumer.session.timeout.ms: 6000\nconsumer.heartbeat.interval.ms: 1000\n{}",
        broker.bootstrap(),
        common::broker::ONE_RECORD_BATCHES
    ))
}

fn pipeline(site: &Site, topic: &str) -> (PathBuf, PathBuf) {
    let src = site.write("source.yaml", &format!("name: lines-in\nconfig:\n  connector.class: file-source\n  file: data/in.txt\n  topic: {topic}\n"));
    let sink = site.write("sink.yaml", &format!("name: lines-out\nconfig:\n  connector.class: file-sink\n  file: data/out.txt\n  topics: {topic}\n"));
    (src, sink)
}

/// The number in a `numbered_lines` line.
fn number(line: &str) -> u64 {
    line[5..14]
        .parse()
        .unwrap_or_else(|_| panic!("not a numbered line: {line:?}"))
}

/// Checks that `out` holds every number below `n` at least once and in
/// order: it only ever moves forward by one, or jumps back to replay (the
/// duplicates at-least-once allows). Returns how many lines are duplicates.
fn assert_at_least_once_in_order(out: &Path, n: u64) -> usize {
    let text = std::fs::read_to_string(out).unwrap();
    let numbers: Vec<u64> = text.lines().map(number).collect();
    let mut max: Option<u64> = None;
    let mut prev: Option<u64> = None;
    for (i, &v) in numbers.iter().enumerate() {
        let next_new = max.map_or(0, |m| m + 1);
        assert!(
            v <= next_new,
            "line {i}: {v} skips ahead of {next_new} (a record was lost)"
        );
        if let Some(p) = prev {
            assert!(
                v == p + 1 || v <= p,
                "line {i}: {v} after {p} is out of order"
            );
        }
        max = Some(max.map_or(v, |m| m.max(v)));
        prev = Some(v);
    }
    assert_eq!(max, Some(n - 1), "the last record arrived");
    numbers.len() - n as usize
}

fn last_line(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().last().map(str::to_owned)
}

#[test]
fn kill_9_mid_run_then_restart_loses_nothing() {
    let broker = Broker::memory();
    let site = Site::new(PLUGINS);
    let n = 200_000;
    let input = numbered_lines(0, n, 40);
    site.write("data/in.txt", &input);
    let last = input.lines().last().unwrap().to_owned();
    let worker = worker(&site, &broker);
    let (src, sink) = pipeline(&site, "lines");
    let out = site.path("data/out.txt");

    let mut first = site.run(&worker, &[&src, &sink]);
    // Kill it mid-run, once the source has committed offsets (before that
    // a restart reads the file again from the start, which is allowed but
    // proves less).
    first.wait_for(
        "a third of the lines and committed offsets",
        Duration::from_secs(180),
        |_| line_count(&out) >= n / 3 && !broker.consume_all("tributary-offsets").is_empty(),
    );
    let log = first.kill9_and_let_its_sessions_expire();
    assert!(log.contains("read the offsets topic to its end"), "{log}");
    let at_kill = line_count(&out);

    let mut second = site.run(&worker, &[&src, &sink]);
    second.wait_for("the restarted tasks", Duration::from_secs(120), |log| {
        log.contains("source task running") && log.contains("sink task running")
    });
    second.wait_for("the last line", Duration::from_secs(300), |_| {
        last_line(&out).as_deref() == Some(last.as_str())
    });
    std::thread::sleep(Duration::from_millis(500));
    let (code, log) = second.stop();
    assert_eq!(code, 0, "{log}");
    let resumed = log
        .lines()
        .find(|l| l.contains("reading") && l.contains("from byte"))
        .unwrap_or_default()
        .to_owned();
    assert!(
        !resumed.contains("from byte 0 "),
        "the source resumed from its committed offset: {resumed}\n{}",
        log.lines()
            .filter(|l| l.contains("offset"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let duplicates = assert_at_least_once_in_order(&out, n as u64);
    println!("kill -9 after {at_kill} of {n} lines in the sink: {duplicates} duplicates after the restart ({resumed})");
}

/// `offset.storage.file.filename` with a cluster: the source's offsets go
/// to the file in Kafka Connect's format, and a restarted source resumes
/// at the committed byte offset, producing only what was appended.
#[test]
fn an_offset_file_keeps_the_committed_byte_offset_across_a_restart() {
    let broker = Broker::memory();
    let site = Site::new(PLUGINS);
    site.write("data/in.txt", &numbered_lines(0, 1_000, 30));
    let worker = site.worker(&format!(
        "bootstrap.servers: {}\noffset.storage.file.filename: {}\n{}",
        broker.bootstrap(),
        site.path("offsets.jsonl").display(),
        common::broker::ONE_RECORD_BATCHES
    ));
    let (src, sink) = pipeline(&site, "resume");
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
    let escape = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    assert!(
        offsets.contains(&escape(&expected_key)),
        "Kafka Connect's key format in {offsets}"
    );
    assert!(
        offsets.contains(&escape(&format!(r#"{{"position":{}}}"#, 1_000 * 31))),
        "{offsets}"
    );

    // More lines arrive while the worker is down.
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
fn a_tombstone_makes_the_source_start_over() {
    let broker = Broker::memory();
    let site = Site::new(PLUGINS);
    site.write("data/in.txt", &numbered_lines(0, 1_000, 30));
    let worker = worker(&site, &broker);
    let src = site.write("source.yaml", "name: lines-in\nconfig:\n  connector.class: file-source\n  file: data/in.txt\n  topic: once\n");
    let count = |b: &Broker| b.consume_all("once").len();
    // A corrupt record in the offsets topic is skipped, never fatal.
    broker.create_topic("tributary-offsets", 1, &[("cleanup.policy", "compact")]);
    broker.produce("tributary-offsets", Some(b"garbage"), Some(b"not json"));

    let mut run = site.run(&worker, &[&src]);
    run.wait_for("1,000 records in Kafka", Duration::from_secs(120), |_| {
        count(&broker) >= 1_000
    });
    let (code, log) = run.stop();
    assert_eq!(code, 0, "{log}");
    let skipped = log
        .lines()
        .find(|l| l.contains("skipping an offsets record"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        skipped.contains("partition=0") && skipped.contains("offset=0"),
        "{skipped}"
    );
    let offsets = broker.consume_all("tributary-offsets");
    let key = format!(
        r#"["lines-in",{{"filename":"{}"}}]"#,
        site.path("data/in.txt").display()
    );
    let last = offsets
        .iter()
        .rev()
        .find(|r| r.key.as_deref() == Some(key.as_bytes()))
        .expect("Kafka Connect's key format");
    assert_eq!(last.value.as_deref(), Some(&br#"{"position":31000}"#[..]));

    // A restart resumes at the end: nothing new.
    let run = site.run(&worker, &[&src]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(run.stop().0, 0);
    assert_eq!(count(&broker), 1_000);

    broker.produce("tributary-offsets", Some(key.as_bytes()), None);
    let mut run = site.run(&worker, &[&src]);
    run.wait_for("the file produced again", Duration::from_secs(120), |_| {
        count(&broker) >= 2_000
    });
    let (code, log) = run.stop();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("from byte 0"), "{log}");
    assert_eq!(count(&broker), 2_000);
}

#[test]
fn a_non_compacted_offsets_topic_is_refused() {
    let broker = Broker::memory();
    broker.create_topic("tributary-offsets", 1, &[("cleanup.policy", "delete")]);
    let site = Site::new(PLUGINS);
    site.write("data/in.txt", "x\n");
    let worker = worker(&site, &broker);
    let src = site.write("source.yaml", "name: lines-in\nconfig:\n  connector.class: file-source\n  file: data/in.txt\n  topic: t\n");
    let (code, log) = site
        .run(&worker, &[&src])
        .wait_exit(Duration::from_secs(60));
    assert_ne!(code, 0);
    assert!(
        log.contains(
            "offsets topic `tributary-offsets` has cleanup.policy=delete; it must be compact"
        ),
        "{log}"
    );
    assert!(
        !log.contains("source task running"),
        "no task opened:\n{log}"
    );
}

/// 3,000 records of 1,000 bytes already in a topic: one sink's puts stop
/// at the worker's `sink.batch.max.bytes` (100,000), another's at its
/// `consumer.override.max.poll.records` (7); both get every record.
#[test]
fn puts_are_bounded_by_bytes_and_by_the_connectors_record_count() {
    let broker = Broker::memory();
    let site = Site::new(PLUGINS);
    broker.create_topic("big", 1, &[]);
    let values: Vec<String> = (0..3000).map(|i| format!("{i:0>1000}")).collect();
    broker.produce_all("big", &values);
    std::fs::create_dir_all(site.path("data")).unwrap();
    let worker = site.worker(&format!(
        "bootstrap.servers: {}\nsink.batch.max.bytes: 100000\n",
        broker.bootstrap()
    ));
    let by_bytes = site.write("bytes.yaml", "name: by-bytes\nconfig:\n  connector.class: testkit-sink\n  topics: big\n  file: data/bytes.txt\n");
    let by_count = site.write("count.yaml", "name: by-count\nconfig:\n  connector.class: testkit-sink\n  topics: big\n  file: data/count.txt\n  consumer.override.max.poll.records: 7\n");
    let mut run = site.run(&worker, &[&by_bytes, &by_count]);
    run.wait_for(
        "every record in both files",
        Duration::from_secs(120),
        |_| {
            line_count(&site.path("data/bytes.txt")) >= 3000
                && line_count(&site.path("data/count.txt")) >= 3000
        },
    );
    let (code, log) = run.stop();
    assert_eq!(code, 0, "{log}");
    // (records, bytes) of every put of `connector`, from the testkit's log.
    let puts = |connector: &str| -> Vec<(usize, usize)> {
        log.lines()
            .filter(|l| l.contains(connector))
            .filter_map(|l| {
                let rest = l.split("put of ").nth(1)?;
                let mut words = rest.split(' ');
                let records = words.next()?.parse().ok()?;
                let bytes = words.nth(1)?.parse().ok()?;
                Some((records, bytes))
            })
            .collect()
    };
    let bytes = puts("by-bytes");
    assert_eq!(bytes.iter().map(|p| p.0).sum::<usize>(), 3000, "{bytes:?}");
    // A put ends with the record that reaches the limit.
    assert!(bytes.iter().all(|p| p.1 < 100_000 + 1000), "{bytes:?}");
    assert!(
        bytes.iter().any(|p| p.1 >= 100_000),
        "no put reached the limit: {bytes:?}"
    );
    let count = puts("by-count");
    assert_eq!(count.iter().map(|p| p.0).sum::<usize>(), 3000, "{count:?}");
    assert!(count.iter().all(|p| p.0 <= 7), "{count:?}");
    assert_eq!(line_count(&site.path("data/bytes.txt")), 3000);
    assert_eq!(line_count(&site.path("data/count.txt")), 3000);
}

#[test]
fn bad_records_reach_the_dead_letter_queue_with_context_headers() {
    let broker = Broker::memory();
    let site = Site::new(PLUGINS);
    let mut input = String::new();
    for i in 0..500 {
        input.push_str(&if i % 100 == 42 {
            format!("line {i} REJECT\n")
        } else {
            format!("line {i}\n")
        });
    }
    site.write("data/in.txt", &input);
    let worker = worker(&site, &broker);
    let src = site.write("source.yaml", "name: lines-in\nconfig:\n  connector.class: file-source\n  file: data/in.txt\n  topic: in\n");
    let picky = site.write(
        "picky.yaml",
        "name: picky\nconfig:\n  connector.class: testkit-sink\n  topics: in\n  file: data/good.txt\n  errors.tolerance: all\n  errors.deadletterqueue.topic.name: in-dlq\n",
    );
    let good = site.path("data/good.txt");
    let mut run = site.run(&worker, &[&src, &picky]);
    run.wait_for("495 good records", Duration::from_secs(120), |_| {
        line_count(&good) >= 495
    });
    let (code, log) = run.stop();
    assert_eq!(code, 0, "{log}");
    let dead = broker.consume_all("in-dlq");
    assert_eq!(dead.len(), 5);
    for (k, r) in dead.iter().enumerate() {
        let i = 100 * k + 42;
        assert_eq!(
            r.value.as_deref(),
            Some(format!("line {i} REJECT").as_bytes())
        );
        let h = |name: &str| {
            r.headers
                .iter()
                .find(|(k, _)| k == &format!("__connect.errors.{name}"))
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(h("topic"), Some("in"));
        assert_eq!(h("partition"), Some("0"));
        assert_eq!(h("offset"), Some(i.to_string().as_str()));
        assert_eq!(h("connector.name"), Some("picky"));
        assert_eq!(h("task.id"), Some("0"));
        assert_eq!(h("stage"), Some("TASK_PUT"));
        assert_eq!(h("class.name"), Some("bad-record"));
        assert_eq!(h("exception.message"), Some("value contains \"REJECT\""));
    }
    assert_eq!(line_count(&good), 495);
}

/// testkit-sink says it does not read headers, so its batches carry none;
/// with a dead letter queue they must, for the records it refuses.
#[test]
fn a_sink_that_reads_no_headers_still_dead_letters_records_with_theirs() {
    let broker = Broker::memory();
    let site = Site::new(PLUGINS);
    broker.create_topic("hin", 1, &[]);
    let values: Vec<String> = (0..20)
        .map(|i| {
            if i % 10 == 3 {
                format!("line {i} REJECT")
            } else {
                format!("line {i}")
            }
        })
        .collect();
    broker.produce_with_headers("hin", &values, |i| {
        vec![
            ("trace".into(), format!("t-{i}")),
            ("origin".into(), "upstream".into()),
        ]
    });
    site.write("data/.keep", "");
    let worker = worker(&site, &broker);
    let picky = site.write(
        "picky.yaml",
        "name: picky\nconfig:\n  connector.class: testkit-sink\n  topics: hin\n  file: data/good.txt\n  errors.tolerance: all\n  errors.deadletterqueue.topic.name: hin-dlq\n",
    );
    let good = site.path("data/good.txt");
    let mut run = site.run(&worker, &[&picky]);
    run.wait_for("18 good records", Duration::from_secs(120), |_| {
        line_count(&good) >= 18
    });
    let (code, log) = run.stop();
    assert_eq!(code, 0, "{log}");
    let dead = broker.consume_all("hin-dlq");
    assert_eq!(dead.len(), 2);
    for (r, i) in dead.iter().zip([3, 13]) {
        assert_eq!(
            r.value.as_deref(),
            Some(format!("line {i} REJECT").as_bytes())
        );
        let h = |name: &str| {
            r.headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            h("trace"),
            Some(format!("t-{i}").as_str()),
            "{:?}",
            r.headers
        );
        assert_eq!(h("origin"), Some("upstream"));
        assert_eq!(h("__connect.errors.offset"), Some(i.to_string().as_str()));
        assert_eq!(
            r.headers[..2],
            [
                ("trace".to_owned(), format!("t-{i}")),
                ("origin".to_owned(), "upstream".to_owned())
            ],
            "the record's own headers first, in order"
        );
    }
}

#[test]
fn the_broker_restarts_mid_run_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::sqlite(dir.path());
    let site = Site::new(PLUGINS);
    let n = 30_000;
    let input = numbered_lines(0, n, 40);
    site.write("data/in.txt", &input);
    let last = input.lines().last().unwrap().to_owned();
    let worker = worker(&site, &broker);
    let (src, sink) = pipeline(&site, "survive");
    let out = site.path("data/out.txt");
    let mut run: Running = site.run(&worker, &[&src, &sink]);
    run.wait_for("some lines through", Duration::from_secs(180), |_| {
        line_count(&out) >= 3_000
    });
    broker.kill();
    std::thread::sleep(Duration::from_secs(3));
    broker.start();
    run.wait_for(
        "the last line after the broker came back",
        Duration::from_secs(300),
        |_| last_line(&out).as_deref() == Some(last.as_str()),
    );
    let (code, log) = run.stop();
    assert_eq!(code, 0, "{log}");
    let duplicates = assert_at_least_once_in_order(&out, n as u64);
    println!("broker restart: {duplicates} duplicates");
}
