//! File → Kafka and Kafka → file through tributary, side by side with a bare
//! rdkafka producer and consumer loop doing the same work, against tansu
//! (one fresh broker for each side, in one run), 1,000,000 lines of 100 bytes.
//!
//! `cargo bench -p tributary --bench broker_throughput` (needs tansu:
//! `scripts/tansu install`). Results go to docs/benchmarks.md.

#[path = "../../tests/common/mod.rs"]
mod common;

use common::broker::Broker;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use std::io::{BufRead, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const LINES: usize = 1_000_000;

fn main() {
    // Each side gets its own broker, so neither writes into a broker that
    // already holds the other's million records.
    let bare_broker = Broker::memory();
    let broker = Broker::memory();
    let site = common::Site::new(&["tributary_connector_file"]);
    let input = site.write("data/in.txt", &common::numbered_lines(0, LINES, 99));
    let mb = (LINES * 100) as f64 / 1e6;
    let report = |what: &str, secs: f64| {
        println!(
            "{what:<34} {secs:6.2} s  {:>9.0} records/s  {:6.1} MB/s",
            LINES as f64 / secs,
            mb / secs
        )
    };

    // Bare producer: read lines, produce each, wait for every acknowledgement.
    bare_broker.create_topic("bare", 1, &[]);
    let producer: ThreadedProducer<AckClock> = bare_broker
        .config()
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("queue.buffering.max.kbytes", "262144")
        .create_with_context(AckClock::default())
        .unwrap();
    for line in std::io::BufReader::new(std::fs::File::open(&input).unwrap()).lines() {
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

    // tributary: file-source → Kafka.
    let worker = site.write(
        "worker.yaml",
        &format!(
            "bootstrap.servers: {}\nplugin.path: {}\nplugin.cache.dir: {}\nmetrics.log.interval.ms: 100\nlisteners: ''\nconsumer.fetch.wait.max.ms: {}\n",
            broker.bootstrap(),
            site.path("plugins").display(),
            site.path("cache").display(),
            common::broker::TANSU_FETCH_WAIT_MS
        ),
    );
    broker.create_topic("trib", 1, &[]);
    let src = site.write("src.yaml", "name: bench-in\nconfig:\n  connector.class: file-source\n  file: data/in.txt\n  topic: trib\n");
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
    let rss_source = common::peak_rss_kb(running.child.id());
    assert_eq!(running.stop().0, 0);

    // Bare consumer: read the topic, append values to a file, sync it.
    let consumer = bare_broker.reader_with(
        "bare",
        &[("fetch.wait.max.ms", common::broker::TANSU_FETCH_WAIT_MS)],
    );
    let mut out = std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(site.path("data/bare-out.txt")).unwrap(),
    );
    let mut n = 0;
    let mut start = None;
    while n < LINES {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m.unwrap();
            start.get_or_insert_with(Instant::now);
            out.write_all(m.payload().unwrap()).unwrap();
            out.write_all(b"\n").unwrap();
            n += 1;
        }
    }
    out.into_inner().unwrap().sync_all().unwrap();
    let bare_consume = start.unwrap().elapsed().as_secs_f64();

    // tributary: Kafka → file-sink.
    let out_path = site.path("data/out.txt");
    let sink = site.write("sink.yaml", "name: bench-out\nconfig:\n  connector.class: file-sink\n  file: data/out.txt\n  topics: trib\n");
    // Its own config topic: the worker would otherwise also start the
    // source connector the first run left in the default one.
    let sink_worker = site.write(
        "sink-worker.yaml",
        &format!(
            "{}config.storage.topic: tributary-configs-sink\n",
            std::fs::read_to_string(&worker).unwrap()
        ),
    );
    let mut running = site.run(&sink_worker, &[&sink]);
    // Watch the worker's progress lines, not the file: reading a 100 MB
    // file every few milliseconds would take the worker's CPU.
    let done = format!("written={LINES}");
    running.wait_for("every record written", Duration::from_secs(900), |log| {
        log.contains(&done)
    });
    let trib_consume = progress_time(&running.log(), "written");
    let rss_sink = common::peak_rss_kb(running.child.id());
    assert_eq!(running.stop().0, 0);
    assert!(
        std::fs::read(&out_path).unwrap() == std::fs::read(&input).unwrap(),
        "the sink wrote the input exactly"
    );

    println!("{LINES} lines of 100 bytes, tansu (memory storage) on 127.0.0.1");
    report("bare rdkafka producer loop", bare_produce);
    report("tributary file-source → Kafka", trib_produce);
    report("bare rdkafka consumer loop", bare_consume);
    report("tributary Kafka → file-sink", trib_consume);
    println!(
        "ratio file → Kafka: {:.2}; Kafka → file: {:.2}",
        bare_produce / trib_produce,
        bare_consume / trib_consume
    );
    println!("worker peak RSS: source run {rss_source} kB, sink run {rss_sink} kB");
}

/// Seconds for all `LINES` records at the rate the worker's progress lines
/// show ([`common::progress_span`]); lines come every 100 ms.
fn progress_time(log: &str, field: &str) -> f64 {
    let (counted, secs) = common::progress_span(log, field);
    secs * LINES as f64 / counted as f64
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
