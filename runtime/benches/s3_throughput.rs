//! Kafka → S3 and S3 → Kafka through tributary against moto, side by side
//! with a bare aws-sdk-s3 loop moving the same objects in the same run, to
//! show which part the emulator bounds: 1,000,000 records with 200-byte
//! values.
//!
//! `cargo bench -p tributary --bench s3_throughput` (needs `moto_server`,
//! moto 5.2.5 or later, and tansu: `scripts/tansu install`). Results go to
//! docs/benchmarks.md.
//!
//! - Kafka → S3: the records are produced to tansu first (not timed); then
//!   `s3-sink` (format `json`, `flush.size` 10000: 100 objects) runs, timed
//!   from the worker's first progress line (after the consumer group join)
//!   until the last object is listed in the bucket.
//! - Bare upload: the same 100 objects, read back from the bucket, put one
//!   after the other (as the sink task does) into another bucket with
//!   aws-sdk-s3.
//! - S3 → Kafka: `s3-source` on the sink's objects into tansu, timed by the
//!   worker's progress lines (first to last, scaled to every record).
//! - Bare download: the same objects got one after the other.
//!
//! For each timed part the benchmark reports the CPU time moto's process
//! used: a moto busy for the whole wall time bounds that part.

#[path = "../../tests/common/mod.rs"]
mod common;

use aws_sdk_s3::primitives::ByteStream;
use common::broker::Broker;
use common::moto::Moto;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const RECORDS: usize = 1_000_000;
const VALUE: usize = 200;
const FLUSH_SIZE: usize = 10_000;

fn main() {
    let moto = Moto::start();
    moto.create_bucket("lake");
    moto.create_bucket("bare");
    let broker = Broker::memory();
    broker.create_topic("events", 1, &[]);
    produce(&broker);

    let site = common::Site::new(&["tributary_connector_s3"]);
    let worker = site.write(
        "worker.yaml",
        &format!(
            "bootstrap.servers: {}\nplugin.path: {}\nplugin.cache.dir: {}\nmetrics.log.interval.ms: 100\noffset.flush.interval.ms: 200\nlisteners: ''\n",
            broker.bootstrap(),
            site.path("plugins").display(),
            site.path("cache").display()
        ),
    );
    let objects = RECORDS / FLUSH_SIZE;

    // tributary: Kafka → s3-sink.
    let sink = site.write(
        "sink.yaml",
        &format!(
            "name: bench-s3-sink\nconfig:\n  connector.class: s3-sink\n  topics: events\n  flush.size: {FLUSH_SIZE}\n{}",
            moto.store_keys("lake")
        ),
    );
    let mut running = site.run(&worker, &[&sink]);
    let moto_cpu = cpu_seconds(moto.child.id());
    running.wait_for("the first progress line", Duration::from_secs(300), |log| {
        log.contains(" written=")
    });
    let mut last_seen = 0.0;
    running.wait_for("every object in S3", Duration::from_secs(1800), |_| {
        std::thread::sleep(Duration::from_millis(50));
        let n = moto.list("lake", "topics/").len();
        last_seen = seconds_of_day();
        n >= objects
    });
    let moto_sink_cpu = cpu_seconds(moto.child.id()) - moto_cpu;
    let (t0, c0) = common::progress_points(&running.log(), "written")[0];
    let sink_secs = (last_seen - t0) * RECORDS as f64 / (RECORDS as u64 - c0) as f64;
    let sink_wall = running_wall(&running);
    let rss_sink = common::peak_rss_kb(running.child.id());
    assert_eq!(running.stop().0, 0);

    // The sink's objects, for the bare loops.
    let keys: Vec<String> = moto
        .list("lake", "topics/")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys.len(), objects, "{keys:?}");
    let bodies: Vec<Vec<u8>> = keys.iter().map(|k| moto.get("lake", k)).collect();
    let object_bytes: usize = bodies.iter().map(Vec::len).sum();
    let lines: usize = bodies
        .iter()
        .map(|b| b.iter().filter(|c| **c == b'\n').count())
        .sum();
    assert_eq!(lines, RECORDS, "every record in S3 once");

    // Bare aws-sdk-s3: put the same objects, one after the other.
    let client = moto.client();
    let cpu = cpu_seconds(moto.child.id());
    let started = Instant::now();
    moto.rt.block_on(async {
        for (key, body) in keys.iter().zip(&bodies) {
            client
                .put_object()
                .bucket("bare")
                .key(key)
                .body(ByteStream::from(body.clone()))
                .send()
                .await
                .unwrap();
        }
    });
    let bare_put = started.elapsed().as_secs_f64();
    let moto_put_cpu = cpu_seconds(moto.child.id()) - cpu;

    // tributary: s3-source → Kafka.
    broker.create_topic("restored", 1, &[]);
    let source = site.write(
        "source.yaml",
        &format!(
            "name: bench-s3-source\nconfig:\n  connector.class: s3-source\n  prefixes: topics/events/partition=0/\n  topic: restored\n{}",
            moto.store_keys("lake")
        ),
    );
    let cpu = cpu_seconds(moto.child.id());
    let mut running = site.run(&worker, &[&source]);
    let done = format!("acknowledged={RECORDS}");
    running.wait_for(
        "every record acknowledged",
        Duration::from_secs(1800),
        |log| log.contains(&done),
    );
    let moto_source_cpu = cpu_seconds(moto.child.id()) - cpu;
    let points = common::progress_points(&running.log(), "acknowledged");
    let ((t0, c0), (t1, c1)) = (points[0], points[points.len() - 1]);
    assert!(c1 > c0, "progress over more than one line: {points:?}");
    let source_secs = (t1 - t0) * RECORDS as f64 / (c1 - c0) as f64;
    let source_wall = running_wall(&running);
    let rss_source = common::peak_rss_kb(running.child.id());
    assert_eq!(running.stop().0, 0);

    // Bare aws-sdk-s3: get the same objects, one after the other.
    let cpu = cpu_seconds(moto.child.id());
    let started = Instant::now();
    let got: usize = moto.rt.block_on(async {
        let mut total = 0;
        for key in &keys {
            let o = client
                .get_object()
                .bucket("lake")
                .key(key)
                .send()
                .await
                .unwrap();
            total += o.body.collect().await.unwrap().into_bytes().len();
        }
        total
    });
    let bare_get = started.elapsed().as_secs_f64();
    let moto_get_cpu = cpu_seconds(moto.child.id()) - cpu;
    assert_eq!(got, object_bytes);

    let values_mb = (RECORDS * VALUE) as f64 / 1e6;
    let objects_mb = object_bytes as f64 / 1e6;
    println!(
        "{RECORDS} records, {VALUE}-byte values ({values_mb:.0} MB); {objects} objects of {FLUSH_SIZE} JSON lines, {objects_mb:.1} MB; moto on 127.0.0.1, tansu (memory storage)"
    );
    println!(
        "{:<36} {:>8} {:>12} {:>10} {:>11} {:>10}",
        "", "seconds", "records/s", "MB/s vals", "MB/s objs", "moto CPU"
    );
    let row = |what: &str, secs: f64, cpu: f64| {
        println!(
            "{what:<36} {secs:8.2} {:>12.0} {:>10.1} {:>11.1} {:>9.0}%",
            RECORDS as f64 / secs,
            values_mb / secs,
            objects_mb / secs,
            100.0 * cpu / secs
        )
    };
    row("tributary Kafka → s3-sink", sink_secs, moto_sink_cpu);
    row("bare aws-sdk-s3 put loop", bare_put, moto_put_cpu);
    row("tributary s3-source → Kafka", source_secs, moto_source_cpu);
    row("bare aws-sdk-s3 get loop", bare_get, moto_get_cpu);
    println!(
        "ratio bare/tributary: put {:.2}, get {:.2}",
        bare_put / sink_secs,
        bare_get / source_secs
    );
    println!(
        "(moto CPU of the tributary rows is over the worker's whole run: {sink_wall:.1} s and {source_wall:.1} s including start-up)"
    );
    println!("worker peak RSS: sink run {rss_sink} kB, source run {rss_source} kB");
}

/// Produces the records (200-byte JSON values, no key) with a bare producer.
fn produce(broker: &Broker) {
    let producer: BaseProducer = broker
        .config()
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "500000")
        .create()
        .unwrap();
    for i in 0..RECORDS {
        let head = format!("{{\"n\":{i:>9},\"pad\":\"");
        let value = format!("{head}{}\"}}", "x".repeat(VALUE - head.len() - 2));
        debug_assert_eq!(value.len(), VALUE);
        let mut record: BaseRecord<'_, [u8], [u8]> =
            BaseRecord::to("events").payload(value.as_bytes());
        record.timestamp = Some(1_700_000_000_000 + i as i64);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    producer.poll(Duration::from_millis(20));
                    record = back;
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(300)).unwrap();
}

/// Seconds since the worker started, to its last log line.
fn running_wall(running: &common::Running) -> f64 {
    let log = running.log();
    let times: Vec<f64> = log.lines().filter_map(common::line_time).collect();
    match (times.first(), times.last()) {
        (Some(a), Some(b)) => b - a,
        _ => 0.0,
    }
}

/// UTC seconds of the day now, as the worker's log lines count them.
fn seconds_of_day() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        % 86_400.0
}

/// CPU seconds (user and system) a process used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    (ticks(11) + ticks(12)) / 100.0
}
