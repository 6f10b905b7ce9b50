//! File → Kafka and Kafka → file through tributary, side by side with a bare
//! rdkafka producer and consumer loop doing the same work, against tansu,
//! 1,000,000 lines of 100 bytes, in rounds (fresh brokers each round; three
//! by default, `BENCH_ROUNDS=N` for another number).
//!
//! `cargo bench -p tributary --bench broker_throughput` (needs tansu:
//! `scripts/tansu install`). Results go to docs/benchmarks.md.
//!
//! Besides the times, each phase reports the CPU seconds its client
//! process and its broker used (and the worker's per thread), so a run
//! shows whether the two cores were the limit.

#[path = "../../tests/common/mod.rs"]
mod common;

use common::broker::Broker;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const LINES: usize = 1_000_000;

/// The number in environment variable `name`, or `default`.
fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|e| panic!("{name}={v:?}: {e}")))
        .unwrap_or(default)
}

/// How often the worker logs progress (ms; `BENCH_PROGRESS_MS` to change
/// it): the benchmark reads tributary's times off those lines, so they
/// bound how precise the times are. Before commit c7f39e5 it was 100: the line
/// counting the last record came up to 100 ms after it, which the times
/// counted as work (about 50 ms of 0.5 s on average).
fn progress_ms() -> u64 {
    env_number("BENCH_PROGRESS_MS", 10)
}

/// Consumer properties for both readers, the bare loop and the worker's
/// sink (`BENCH_CONSUMER="key=value,key=value"`), besides tansu's
/// `fetch.wait.max.ms`.
fn consumer_properties() -> Vec<(String, String)> {
    let mut props = vec![(
        "fetch.wait.max.ms".to_owned(),
        common::broker::TANSU_FETCH_WAIT_MS.to_owned(),
    )];
    for pair in std::env::var("BENCH_CONSUMER")
        .unwrap_or_default()
        .split(',')
    {
        if let Some((k, v)) = pair.split_once('=') {
            props.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    props
}

/// One round's four times (seconds) and what they cost.
struct Round {
    bare_produce: f64,
    trib_produce: f64,
    bare_consume: f64,
    trib_consume: f64,
    notes: Vec<String>,
}

fn main() {
    let rounds = env_number("BENCH_ROUNDS", 3) as usize;
    let site = common::Site::new(&["tributary_connector_file"]);
    let input = site.write("data/in.txt", &common::numbered_lines(0, LINES, 99));
    let results: Vec<Round> = (1..=rounds).map(|r| round(&site, &input, r)).collect();

    let mb = (LINES * 100) as f64 / 1e6;
    println!("\n{LINES} lines of 100 bytes, tansu (memory storage) on 127.0.0.1");
    for (i, r) in results.iter().enumerate() {
        println!("round {}:", i + 1);
        for (what, secs) in [
            ("bare rdkafka producer loop", r.bare_produce),
            ("tributary file-source → Kafka", r.trib_produce),
            ("bare rdkafka consumer loop", r.bare_consume),
            ("tributary Kafka → file-sink", r.trib_consume),
        ] {
            println!(
                "  {what:<32} {secs:6.3} s  {:>9.0} records/s  {:6.1} MB/s",
                LINES as f64 / secs,
                mb / secs
            );
        }
        println!(
            "  ratio file → Kafka: {:.2}; Kafka → file: {:.2}",
            r.bare_produce / r.trib_produce,
            r.bare_consume / r.trib_consume
        );
        for note in &r.notes {
            println!("  {note}");
        }
    }
    let median = |f: &dyn Fn(&Round) -> f64| {
        let mut v: Vec<f64> = results.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "median of {rounds}: file → Kafka {:.3} s (bare {:.3} s, ratio {:.2}); Kafka → file {:.3} s (bare {:.3} s, ratio {:.2})",
        median(&|r| r.trib_produce),
        median(&|r| r.bare_produce),
        median(&|r| r.bare_produce / r.trib_produce),
        median(&|r| r.trib_consume),
        median(&|r| r.bare_consume),
        median(&|r| r.bare_consume / r.trib_consume),
    );
}

fn round(site: &common::Site, input: &Path, n: usize) -> Round {
    // Each side gets its own fresh broker, so neither writes into a broker
    // that already holds the other's (or an earlier round's) records.
    let bare_broker = Broker::memory();
    let broker = Broker::memory();
    let mut notes = Vec::new();

    // Bare producer: read lines, produce each, wait for every acknowledgement.
    bare_broker.create_topic("bare", 1, &[]);
    let cpu = Cpu::start(&bare_broker);
    let producer: ThreadedProducer<AckClock> = bare_broker
        .config()
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("queue.buffering.max.kbytes", "262144")
        .create_with_context(AckClock::default())
        .unwrap();
    for line in std::io::BufReader::new(std::fs::File::open(input).unwrap()).lines() {
        let line = line.unwrap();
        let mut record: BaseRecord<'_, [u8], [u8]> =
            BaseRecord::to("bare").payload(line.as_bytes());
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(300)).unwrap();
    // Like the worker's progress lines: from the first acknowledgement to
    // the last, so neither side counts connection set-up.
    let clock = producer.context();
    let (first, last) = (
        clock.first.lock().unwrap().unwrap(),
        clock.last.lock().unwrap().unwrap(),
    );
    let bare_produce = (last - first).as_secs_f64();
    drop(producer);
    notes.push(cpu.report("bare producer"));

    // tributary: file-source → Kafka.
    let worker = site.write(
        "worker.yaml",
        &format!(
            "bootstrap.servers: {}\nplugin.path: {}\nplugin.cache.dir: {}\nmetrics.log.interval.ms: {}\nlisteners: ''\n{}",
            broker.bootstrap(),
            site.path("plugins").display(),
            site.path("cache").display(),
            progress_ms(),
            consumer_properties()
                .iter()
                .map(|(k, v)| format!("consumer.{k}: {v}\n"))
                .collect::<String>()
        ),
    );
    broker.create_topic("trib", 1, &[]);
    let src = site.write("src.yaml", "name: bench-in\nconfig:\n  connector.class: file-source\n  file: data/in.txt\n  topic: trib\n");
    let cpu = Cpu::start(&broker);
    let mut running = site.run(&worker, &[&src]);
    running.wait_for("the source task", Duration::from_secs(120), |log| {
        log.contains("source task running")
    });
    let done = format!("acknowledged={LINES}");
    running.wait_for(
        "every record acknowledged",
        Duration::from_secs(900),
        |log| log.contains(&done),
    );
    let trib_produce = progress_time(&running.log(), "acknowledged");
    notes.push(format!(
        "{}; worker peak RSS {} kB",
        cpu.report_worker("tributary source run", running.child.id()),
        common::peak_rss_kb(running.child.id())
    ));
    assert_eq!(running.stop().0, 0);

    // Bare consumer: read the topic, append values to a file, sync it.
    let cpu = Cpu::start(&bare_broker);
    let props = consumer_properties();
    let props: Vec<(&str, &str)> = props
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let consumer = bare_broker.reader_with("bare", &props);
    let mut out = std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(site.path(&format!("data/bare-out-{n}.txt"))).unwrap(),
    );
    let mut count = 0;
    let mut start = None;
    while count < LINES {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m.unwrap();
            start.get_or_insert_with(Instant::now);
            out.write_all(m.payload().unwrap()).unwrap();
            out.write_all(b"\n").unwrap();
            count += 1;
        }
    }
    out.into_inner().unwrap().sync_all().unwrap();
    let bare_consume = start.unwrap().elapsed().as_secs_f64();
    drop(consumer);
    notes.push(cpu.report("bare consumer"));

    // tributary: Kafka → file-sink.
    let out_name = format!("data/out-{n}.txt");
    let sink = site.write(
        "sink.yaml",
        &format!("name: bench-out\nconfig:\n  connector.class: file-sink\n  file: {out_name}\n  topics: trib\n"),
    );
    // Its own config topic: the worker would otherwise also start the
    // source connector the first run left in the default one.
    let sink_worker = site.write(
        "sink-worker.yaml",
        &format!(
            "{}config.storage.topic: tributary-configs-sink\n",
            std::fs::read_to_string(&worker).unwrap()
        ),
    );
    let cpu = Cpu::start(&broker);
    let mut running = site.run(&sink_worker, &[&sink]);
    // Watch the worker's progress lines, not the file: reading a 100 MB
    // file every few milliseconds would take the worker's CPU.
    let done = format!("written={LINES}");
    running.wait_for("every record written", Duration::from_secs(900), |log| {
        log.contains(&done)
    });
    let trib_consume = progress_time(&running.log(), "written");
    notes.push(format!(
        "{}; worker peak RSS {} kB",
        cpu.report_worker("tributary sink run", running.child.id()),
        common::peak_rss_kb(running.child.id())
    ));
    assert_eq!(running.stop().0, 0);
    assert!(
        std::fs::read(site.path(&out_name)).unwrap() == std::fs::read(input).unwrap(),
        "the sink wrote the input exactly"
    );
    Round {
        bare_produce,
        trib_produce,
        bare_consume,
        trib_consume,
        notes,
    }
}

/// Seconds for all `LINES` records at the rate the worker's progress lines
/// show ([`common::progress_span`]); lines come every [`progress_ms`].
fn progress_time(log: &str, field: &str) -> f64 {
    let (counted, secs) = common::progress_span(log, field);
    secs * LINES as f64 / counted as f64
}

/// CPU seconds used by a phase's client (this process, or a worker) and
/// its broker.
struct Cpu {
    broker: u32,
    broker_start: f64,
    this_start: f64,
}

impl Cpu {
    fn start(broker: &Broker) -> Cpu {
        let broker = broker.pid().expect("the broker runs");
        Cpu {
            broker,
            broker_start: cpu_seconds(&format!("/proc/{broker}/stat")),
            this_start: cpu_seconds("/proc/self/stat"),
        }
    }

    fn broker_used(&self) -> f64 {
        cpu_seconds(&format!("/proc/{}/stat", self.broker)) - self.broker_start
    }

    /// A bare loop's phase: this process's CPU and the broker's.
    fn report(&self, what: &str) -> String {
        format!(
            "CPU {what}: client {:.2} s, tansu {:.2} s",
            cpu_seconds("/proc/self/stat") - self.this_start,
            self.broker_used()
        )
    }

    /// A worker's phase: its CPU from its start, by thread name, and the
    /// broker's.
    fn report_worker(&self, what: &str, pid: u32) -> String {
        let mut threads: BTreeMap<String, f64> = BTreeMap::new();
        if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for task in dir.flatten() {
                let path = task.path();
                let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
                // librdkafka's broker threads carry the broker's address.
                let name = name.trim().split(':').next().unwrap_or("").to_owned();
                *threads.entry(name).or_default() +=
                    cpu_seconds(&path.join("stat").display().to_string());
            }
        }
        let total: f64 = threads.values().sum();
        let parts: Vec<String> = threads
            .iter()
            .filter(|(_, s)| **s >= 0.01)
            .map(|(n, s)| format!("{n} {s:.2}"))
            .collect();
        format!(
            "CPU {what}: worker {total:.2} s ({}), tansu {:.2} s",
            parts.join(", "),
            self.broker_used()
        )
    }
}

/// User + system CPU seconds of a `/proc/.../stat` file; 0 when unreadable.
fn cpu_seconds(stat: &str) -> f64 {
    let Ok(text) = std::fs::read_to_string(stat) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces, in parentheses).
    let rest = text.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat; 12 and 13 after ')'.
    (ticks(11) + ticks(12)) / clock_ticks()
}

/// The unit of `/proc` CPU times (`USER_HZ`), from `getconf`.
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Times the first and the last delivery report.
#[derive(Default)]
struct AckClock {
    first: Mutex<Option<Instant>>,
    last: Mutex<Option<Instant>>,
}

impl ClientContext for AckClock {}

impl ProducerContext for AckClock {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        assert!(result.is_ok(), "bare producer: a record was refused");
        let now = Instant::now();
        self.first.lock().unwrap().get_or_insert(now);
        *self.last.lock().unwrap() = Some(now);
    }
}
