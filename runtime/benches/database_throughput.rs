//! PostgreSQL ↔ Kafka throughput, side by side with `psql \copy` of the same
//! rows into the same kind of table, in one run: 1,000,000 rows of about
//! 200 bytes (the value JSON of a row is ~200 bytes).
//!
//! `cargo bench -p tributary --bench database_throughput` (needs the
//! machine's PostgreSQL on 127.0.0.1:5432 with trust auth, and `psql`).
//!
//! - PostgreSQL → Kafka: `database-source` (incrementing) into the embedded
//!   Kafka; the clock runs from "source task running" to the progress line
//!   counting every row acknowledged by Kafka.
//! - Kafka → PostgreSQL: the rows as JSON lines, `file-source` → embedded
//!   Kafka → `database-sink` (insert); the clock runs from "sink task
//!   running" to the progress line counting every row written (each `put`
//!   commits its rows before it returns); the table is counted after. The
//!   rate is taken from the first progress line with rows written to the
//!   last, by the log's timestamps, so joining the consumer group is not
//!   counted (as in the broker benchmark).
//! - `psql \copy`: the same rows from a CSV file into an empty table.

#[path = "../../tests/common/mod.rs"]
mod common;

use common::db::{exec, texts, unique, PG_URL};
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

fn count(table: &str) -> usize {
    texts(PG_URL, &format!("SELECT count(*) FROM {table}"))[0][0]
        .as_deref()
        .unwrap_or("0")
        .parse()
        .unwrap()
}

/// The sink's rows and seconds from its first progress line with rows
/// written to the one counting all of them, by the log's timestamps: like
/// the broker benchmark, this leaves out joining the consumer group
/// (seconds on the embedded Kafka), which is not throughput.
fn sink_span(log: &str) -> (usize, f64) {
    let progress: Vec<(f64, usize)> = log
        .lines()
        .filter(|l| l.contains("records/s from Kafka") && l.contains("bench-out"))
        .filter_map(|l| {
            let written = l.split("written=").nth(1)?.split_whitespace().next()?;
            Some((common::line_time(l)?, written.parse().ok()?))
        })
        .filter(|&(_, w)| w > 0)
        .collect();
    let (t0, w0) = progress[0];
    let (t1, w1) = *progress.iter().find(|&&(_, w)| w >= ROWS).unwrap();
    let secs = if t1 >= t0 {
        t1 - t0
    } else {
        t1 + 86_400.0 - t0
    };
    (w1 - w0, secs)
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

fn main() {
    let columns = "id BIGINT PRIMARY KEY, name TEXT NOT NULL, amount NUMERIC(12,2), created TIMESTAMPTZ, note TEXT";
    let src = unique("bench_src");
    exec(PG_URL, &format!(
        "CREATE TABLE {src} ({columns});
         INSERT INTO {src} SELECT g, 'customer-' || g, (g % 100000) / 100.0, TIMESTAMPTZ '2024-01-01' + g * INTERVAL '1 second', repeat('n', 60) FROM generate_series(1, {ROWS}) g;"
    ));
    let site = common::Site::new(&["tributary_connector_database", "tributary_connector_file"]);
    std::fs::create_dir_all(site.path("data")).unwrap();
    let worker = site.write(
        "worker.yaml",
        &format!(
            "plugin.path: {}\nplugin.cache.dir: {}\nmetrics.log.interval.ms: 100\nlisteners: ''\n",
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
    let start = Instant::now();
    psql(&format!(
        "\\copy {copy_table} FROM '{}' WITH (FORMAT csv)",
        csv.display()
    ));
    let copy_secs = start.elapsed().as_secs_f64();
    let csv_bytes = std::fs::metadata(&csv).unwrap().len() as usize;

    // PostgreSQL → Kafka.
    let source = site.write("source.yaml", &format!(
        "name: bench-in\nconfig:\n  connector.class: database-source\n  connection.url: \"{PG_URL}\"\n  table.whitelist: {src}\n  topic.prefix: \"\"\n  mode: incrementing\n  incrementing.column.name: id\n  batch.max.rows: 5000\n"
    ));
    let mut running = site.run(&worker, &[&source]);
    running.wait_for("the source task", Duration::from_secs(120), |l| {
        l.contains("source task running")
    });
    let start = Instant::now();
    let done = format!("acknowledged={ROWS}");
    running.wait_for("every row acknowledged", Duration::from_secs(900), |l| {
        l.contains(&done)
    });
    let source_secs = start.elapsed().as_secs_f64();
    let source_rss = common::peak_rss_kb(running.child.id());
    let (code, log) = running.stop();
    assert_eq!(code, 0, "{log}");

    // Kafka → PostgreSQL: the same rows as JSON lines through a file source.
    let mut lines = String::with_capacity(ROWS * 200);
    for g in 1..=ROWS {
        let secs = g as i64;
        lines.push_str(&format!(
            "{{\"id\":{g},\"name\":\"customer-{g}\",\"amount\":\"{}.{:02}\",\"created\":\"2024-01-{:02}T{:02}:{:02}:{:02}Z\",\"note\":\"{}\"}}\n",
            (g % 100000) / 100,
            (g % 100000) % 100,
            1 + secs / 86400 % 28,
            secs / 3600 % 24,
            secs / 60 % 60,
            secs % 60,
            "n".repeat(60)
        ));
    }
    let json_bytes = lines.len();
    site.write("data/rows.json", &lines);
    drop(lines);
    let dst = unique("bench_dst");
    exec(PG_URL, &format!("CREATE TABLE {dst} ({columns})"));
    let feed = site.write("feed.yaml", &format!("name: feed\nconfig:\n  connector.class: file-source\n  file: data/rows.json\n  topic: {dst}\n"));
    let sink = site.write("sink.yaml", &format!(
        "name: bench-out\nconfig:\n  connector.class: database-sink\n  connection.url: \"{PG_URL}\"\n  topics: {dst}\n  insert.mode: insert\n"
    ));
    let mut running = site.run(&worker, &[&feed, &sink]);
    running.wait_for("the sink task", Duration::from_secs(120), |l| {
        l.contains("sink task running")
    });
    // `written` counts records whose `put` returned: their rows are
    // committed. (Polling `count(*)` instead would cost PostgreSQL a scan
    // of the growing table ten times a second, on the same two cores.)
    let done = format!("written={ROWS}");
    running.wait_for("every row written", Duration::from_secs(900), |l| {
        l.contains(&done)
    });
    let sink_rss = common::peak_rss_kb(running.child.id());
    let (code, log) = running.stop();
    assert_eq!(code, 0, "{log}");
    assert_eq!(count(&dst), ROWS, "every row once");
    let (sink_rows, sink_secs) = sink_span(&log);

    println!(
        "rows: {ROWS}; value JSON {:.0} bytes/row; CSV {:.0} bytes/row",
        json_bytes as f64 / ROWS as f64,
        csv_bytes as f64 / ROWS as f64
    );
    report("psql \\copy (CSV → PostgreSQL)", copy_secs, csv_bytes, None);
    report(
        "database-source (PostgreSQL → embedded Kafka)",
        source_secs,
        json_bytes,
        Some(&source_rss),
    );
    let sink_per_row = sink_secs / sink_rows as f64;
    report(
        "database-sink (embedded Kafka → PostgreSQL, insert)",
        sink_per_row * ROWS as f64,
        json_bytes,
        Some(&sink_rss),
    );
    println!(
        "  (timed over rows {}..{ROWS}: {sink_secs:.2} s)",
        ROWS - sink_rows
    );
    println!(
        "sink / \\copy: {:.2}",
        copy_secs / (sink_per_row * ROWS as f64)
    );
    for t in [&src, &copy_table, &dst] {
        exec(PG_URL, &format!("DROP TABLE {t}"));
    }
}
