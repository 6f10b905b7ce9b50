//! PostgreSQL ↔ Kafka throughput, side by side with `psql \copy` of the same
//! rows into the same kind of table, in one run: 1,000,000 rows of five
//! columns (about 160 bytes of value JSON a row).
//!
//! `cargo bench -p tributary --bench database_throughput` (needs the
//! machine's PostgreSQL on 127.0.0.1:5432 with trust auth, `psql`, and
//! tansu: `scripts/tansu install`).
//!
//! Each direction runs alone against one tansu broker (memory storage), so
//! neither shares the two cores with the other:
//! - PostgreSQL → Kafka: `database-source` (incrementing) reads the table
//!   into a topic; timed by the worker's progress lines from the first
//!   acknowledged row to the last.
//! - Kafka → PostgreSQL: `database-sink` (insert) reads that topic, already
//!   full, into an empty table; timed by its progress lines from the first
//!   row written (each `put` commits its rows before it returns) to the
//!   last, so joining the consumer group is not counted (as in the broker
//!   benchmark). The table is counted after.
//! - `psql \copy`: the same rows from a CSV file into an empty table.

#[path = "../../tests/common/mod.rs"]
mod common;

use common::broker::Broker;
use common::db::{count_rows, exec, unique, PG_URL};
use std::process::Command;
use std::time::{Duration, Instant};

const ROWS: usize = 1_000_000;

fn psql(command: &str) {
    let out = Command::new("psql")
        .args([
            "-q",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-c",
            command,
        ])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "psql {command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Seconds for all rows at the rate of a measured span
/// ([`common::progress_span`]).
fn scaled((rows, secs): (u64, f64)) -> f64 {
    secs / rows as f64 * ROWS as f64
}

fn report(what: &str, secs: f64, bytes: usize, rss: Option<&str>) {
    println!(
        "{what}: {ROWS} rows in {secs:.2} s: {:.0} rows/s, {:.1} MB/s{}",
        ROWS as f64 / secs,
        bytes as f64 / 1e6 / secs,
        rss.map(|r| format!(", worker peak RSS {r} kB"))
            .unwrap_or_default()
    );
}

/// Seconds the sink connector's task spent in `put` calls, from the
/// worker's /metrics (`tributary_task_plugin_call_seconds_sum`).
fn put_seconds(port: u16, connector: &str) -> f64 {
    let text = reqwest::blocking::get(format!("http://127.0.0.1:{port}/metrics"))
        .unwrap()
        .text()
        .unwrap();
    let prefix = format!("tributary_task_plugin_call_seconds_sum{{connector=\"{connector}\",");
    text.lines()
        .find(|l| l.starts_with(&prefix))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in /metrics:\n{text}"))
}

/// Reads every record of `topic` (partition 0) with a bare consumer loop:
/// seconds from the first record to the last, and the bytes of the values.
fn bare_read(broker: &Broker, topic: &str) -> (f64, usize) {
    use rdkafka::message::Message;
    let consumer = broker.reader_with(
        topic,
        &[("fetch.wait.max.ms", common::broker::TANSU_FETCH_WAIT_MS)],
    );
    let (mut n, mut bytes, mut start) = (0, 0, None);
    while n < ROWS {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m.unwrap();
            start.get_or_insert_with(Instant::now);
            bytes += m.payload().map_or(0, <[u8]>::len);
            n += 1;
        }
    }
    (start.unwrap().elapsed().as_secs_f64(), bytes)
}

fn main() {
    let columns = "id BIGINT PRIMARY KEY, name TEXT NOT NULL, amount NUMERIC(12,2), created TIMESTAMPTZ, note TEXT";
    let src = unique("bench_src");
    exec(PG_URL, &format!(
        "CREATE TABLE {src} ({columns});
         INSERT INTO {src} SELECT g, 'customer-' || g, (g % 100000) / 100.0, TIMESTAMPTZ '2024-01-01' + g * INTERVAL '1 second', repeat('n', 60) FROM generate_series(1, {ROWS}) g;"
    ));
    let broker = Broker::memory();
    broker.create_topic(&src, 1, &[]);
    let site = common::Site::new(&["tributary_connector_database"]);
    std::fs::create_dir_all(site.path("data")).unwrap();
    let worker = site.write(
        "worker.yaml",
        &format!(
            "bootstrap.servers: {}\nplugin.path: {}\nplugin.cache.dir: {}\nmetrics.log.interval.ms: 100\nlisteners: ''\n",
            broker.bootstrap(),
            site.path("plugins").display(),
            site.path("cache").display()
        ),
    );

    // psql \copy: out to CSV, then (timed) into an empty table.
    let csv = site.path("data/rows.csv");
    psql(&format!(
        "\\copy {src} TO '{}' WITH (FORMAT csv)",
        csv.display()
    ));
    let copy_table = unique("bench_copy");
    exec(PG_URL, &format!("CREATE TABLE {copy_table} ({columns})"));
    // Every timed write to PostgreSQL starts from a checkpoint, so none
    // pays for the WAL an earlier one left behind.
    exec(PG_URL, "CHECKPOINT");
    let start = Instant::now();
    psql(&format!(
        "\\copy {copy_table} FROM '{}' WITH (FORMAT csv)",
        csv.display()
    ));
    let copy_secs = start.elapsed().as_secs_f64();
    let csv_bytes = std::fs::metadata(&csv).unwrap().len() as usize;

    // PostgreSQL → Kafka: the table into the topic of the same name.
    let source = site.write("source.yaml", &format!(
        "name: bench-in\nconfig:\n  connector.class: database-source\n  connection.url: \"{PG_URL}\"\n  table.whitelist: {src}\n  topic.prefix: \"\"\n  mode: incrementing\n  incrementing.column.name: id\n  batch.max.rows: 5000\n"
    ));
    let mut running = site.run(&worker, &[&source]);
    let done = format!("acknowledged={ROWS}");
    running.wait_for("every row acknowledged", Duration::from_secs(900), |l| {
        l.contains(&done)
    });
    let source_rss = common::peak_rss_kb(running.child.id());
    let (code, log) = running.stop();
    assert_eq!(code, 0, "{log}");
    let source_span = common::progress_span(&log, "acknowledged");
    // The broker's own ceiling for a reader of that topic: a bare rdkafka
    // consumer loop that only reads it, timed from its first record.
    let (bare_secs, json_bytes) = bare_read(&broker, &src);

    // Kafka → PostgreSQL: that topic, already full, into an empty table;
    // once with the worker's batch size (puts of up to 10,000 records),
    // once with its earlier one (2,000).
    let default_batches = sink(&site, &worker, &src, columns, "bench-out", "");
    let small_batches = sink(
        &site,
        &worker,
        &src,
        columns,
        "bench-out-small",
        "  consumer.override.max.poll.records: 2000\n",
    );

    println!(
        "rows: {ROWS}; value JSON {:.0} bytes/row; CSV {:.0} bytes/row",
        json_bytes as f64 / ROWS as f64,
        csv_bytes as f64 / ROWS as f64
    );
    report("psql \\copy (CSV → PostgreSQL)", copy_secs, csv_bytes, None);
    report(
        "database-source (PostgreSQL → Kafka)",
        scaled(source_span),
        json_bytes,
        Some(&source_rss),
    );
    report(
        "bare rdkafka consumer loop (reads the topic, writes nothing)",
        bare_secs,
        json_bytes,
        None,
    );
    println!(
        "  (timed over {} source rows in {:.2} s)",
        source_span.0, source_span.1
    );
    for (what, run) in [
        (
            "puts of up to 10,000 records, the worker's default",
            &default_batches,
        ),
        (
            "puts of up to 2,000: consumer.override.max.poll.records",
            &small_batches,
        ),
    ] {
        report(
            &format!("database-sink (Kafka → PostgreSQL, insert; {what})"),
            scaled(run.span),
            json_bytes,
            Some(&run.rss),
        );
        report(
            "  of which inside `put` (decoding, COPY, commit; no waiting on Kafka)",
            run.put_secs,
            json_bytes,
            None,
        );
        println!(
            "  (timed over {} rows in {:.2} s) sink / \\copy: {:.2}; sink / bare consumer loop: {:.2}",
            run.span.0,
            run.span.1,
            copy_secs / scaled(run.span),
            bare_secs / scaled(run.span)
        );
    }
    for t in [
        &src,
        &copy_table,
        &default_batches.table,
        &small_batches.table,
    ] {
        exec(PG_URL, &format!("DROP TABLE {t}"));
    }
}

/// What one sink run measured.
struct SinkRun {
    table: String,
    span: (u64, f64),
    put_secs: f64,
    rss: String,
}

/// Runs `database-sink` connector `name` (with `extra` config lines) over
/// topic `src`, already full, into a new empty table, alone in a worker.
fn sink(
    site: &common::Site,
    worker: &std::path::Path,
    src: &str,
    columns: &str,
    name: &str,
    extra: &str,
) -> SinkRun {
    let table = unique("bench_dst");
    exec(PG_URL, &format!("CREATE TABLE {table} ({columns})"));
    let sink = site.write(&format!("{name}.yaml"), &format!(
        "name: {name}\nconfig:\n  connector.class: database-sink\n  connection.url: \"{PG_URL}\"\n  topics: {src}\n  table.name.format: {table}\n  insert.mode: insert\n{extra}"
    ));
    // With REST on, for the sink's time inside `put` from /metrics.
    let rest_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sink_worker = site.write(
        &format!("{name}-worker.yaml"),
        // Its own config topic: the worker would otherwise also start the
        // connectors earlier runs left in the default one.
        &std::fs::read_to_string(worker).unwrap().replace(
            "listeners: ''",
            &format!(
                "listeners: http://127.0.0.1:{rest_port}\nconfig.storage.topic: tributary-configs-{name}\nconsumer.fetch.wait.max.ms: {}",
                common::broker::TANSU_FETCH_WAIT_MS
            ),
        ),
    );
    exec(PG_URL, "CHECKPOINT");
    let mut running = site.run(&sink_worker, &[&sink]);
    // `written` counts records whose `put` returned: their rows are
    // committed. (Polling `count(*)` instead would cost PostgreSQL a scan
    // of the growing table ten times a second, on the same two cores.)
    let done = format!("written={ROWS}");
    running.wait_for("every row written", Duration::from_secs(900), |l| {
        l.contains(&done)
    });
    let rss = common::peak_rss_kb(running.child.id());
    let put_secs = put_seconds(rest_port, name);
    let (code, log) = running.stop();
    assert_eq!(code, 0, "{log}");
    assert_eq!(count_rows(&table), ROWS, "every row once");
    SinkRun {
        table,
        span: common::progress_span(&log, "written"),
        put_secs,
        rss,
    }
}
