//! `database-source` against real databases (the machine's PostgreSQL and
//! MariaDB, SQLite files, a private PostgreSQL the test restarts): every
//! mode, rows sharing a timestamp, late commits, the type mapping, bad
//! credentials and statements. Records go through the embedded Kafka to a
//! `file-sink`, whose file the tests read.

mod common;

use common::db::{exec, unique, PrivatePostgres, MARIADB_URL, PG_URL};
use common::{line_count, Site};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

const PLUGINS: &[&str] = &["tributary_connector_database", "tributary_connector_file"];

/// A source reading `table` into topic `<table>` (prefix empty), and a file
/// sink writing that topic's values to `data/out.txt`.
fn pipeline(site: &Site, table: &str, url: &str, source_extra: &str) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(site.path("data")).unwrap();
    let poll = if source_extra.contains("poll.interval.ms") {
        ""
    } else {
        "  poll.interval.ms: 200\n"
    };
    let src = site.write(
        "source.yaml",
        &format!("name: db-in\nconfig:\n  connector.class: database-source\n  connection.url: \"{url}\"\n  table.whitelist: {table}\n  topic.prefix: \"\"\n{poll}{source_extra}"),
    );
    let sink = site.write(
        "sink.yaml",
        &format!("name: db-out\nconfig:\n  connector.class: file-sink\n  file: data/out.txt\n  topics: {table}\n"),
    );
    (src, sink)
}

/// The complete lines of the sink's output (a line the worker is still
/// writing has no newline yet and is left for the next look).
fn values(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    complete
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

fn ids(path: &Path) -> Vec<i64> {
    values(path)
        .iter()
        .map(|v| v["id"].as_i64().unwrap())
        .collect()
}

/// Asserts that `got` is exactly 1..=n, each once, in order.
fn assert_exactly(got: &[i64], n: i64) {
    let want: Vec<i64> = (1..=n).collect();
    if got != want {
        let dupes = got.len() as i64 - n;
        let missing: Vec<i64> = want
            .iter()
            .filter(|i| !got.contains(i))
            .take(10)
            .copied()
            .collect();
        panic!("expected ids 1..={n} once each in order; got {} ids ({dupes:+}), missing e.g. {missing:?}", got.len());
    }
}

#[test]
fn postgres_incrementing_reads_each_row_once_with_every_type_mapped() {
    let t = unique("inc");
    exec(PG_URL, &format!(
        "CREATE TABLE {t} (id BIGSERIAL PRIMARY KEY, small SMALLINT, price NUMERIC(12,2), name TEXT, ok BOOLEAN, raw BYTEA, day DATE, at TIME, ts TIMESTAMP, tz TIMESTAMPTZ, doc JSONB, ratio DOUBLE PRECISION, gone TEXT);
         INSERT INTO {t} (small, price, name, ok, raw, day, at, ts, tz, doc, ratio)
           VALUES (7, 1234.50, 'first', true, '\\x00ff', '2024-05-01', '13:45:00.25', '2024-05-01 13:45:00.123456', '2024-05-01 13:45:00+02', '{{\"a\": [1, 2]}}', 0.5);
         INSERT INTO {t} (name) SELECT 'row ' || g FROM generate_series(2, 2500) g;"
    ));
    let site = Site::new(PLUGINS);
    let (src, sink) = pipeline(
        &site,
        &t,
        PG_URL,
        "  mode: incrementing\n  incrementing.column.name: id\n  batch.max.rows: 1000\n",
    );
    let out = site.path("data/out.txt");
    let mut running = site.run(&site.worker(""), &[&src, &sink]);
    running.wait_for("2,500 rows", Duration::from_secs(120), |_| {
        line_count(&out) >= 2500
    });
    // Rows added while it runs are picked up at the next poll.
    exec(
        PG_URL,
        &format!("INSERT INTO {t} (name) SELECT 'late ' || g FROM generate_series(1, 500) g;"),
    );
    running.wait_for("3,000 rows", Duration::from_secs(60), |_| {
        line_count(&out) >= 3000
    });
    let (code, log) = running.stop();
    assert_eq!(code, 0, "{log}");
    assert_exactly(&ids(&out), 3000);

    let first = &values(&out)[0];
    let want = serde_json::json!({
        "id": 1, "small": 7, "price": "1234.50", "name": "first", "ok": true, "raw": "AP8=",
        "day": "2024-05-01", "at": "13:45:00.250", "ts": "2024-05-01T13:45:00.123456",
        "tz": "2024-05-01T11:45:00Z", "doc": {"a": [1, 2]}, "ratio": 0.5, "gone": null
    });
    assert_eq!(first, &want);
    // Column order is kept.
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.starts_with("{\"id\":1,\"small\":7,\"price\":\"1234.50\""),
        "{}",
        &text[..80]
    );
    exec(PG_URL, &format!("DROP TABLE {t}"));
}

#[test]
fn mariadb_timestamp_incrementing_with_many_rows_per_timestamp() {
    let t = unique("tsinc");
    // 3,000 rows on three timestamps; batches of 100 end inside groups.
    exec(MARIADB_URL, &format!(
        "CREATE TABLE {t} (id INT AUTO_INCREMENT PRIMARY KEY, changed DATETIME(6) NOT NULL, v VARCHAR(20), amount DECIMAL(10,3), flag TINYINT(1), big BIGINT UNSIGNED);
         INSERT INTO {t} (changed, v, amount, flag, big) SELECT TIMESTAMP('2024-01-01 00:00:00') + INTERVAL (seq DIV 1000) SECOND, CONCAT('v', seq), 1.5, 1, 18446744073709551615 FROM seq_0_to_2999;"
    ));
    let site = Site::new(PLUGINS);
    let (src, sink) = pipeline(&site, &t, MARIADB_URL, "  mode: timestamp+incrementing\n  timestamp.column.name: changed\n  incrementing.column.name: id\n  batch.max.rows: 100\n");
    let out = site.path("data/out.txt");
    let mut running = site.run(&site.worker(""), &[&src, &sink]);
    running.wait_for("3,000 rows", Duration::from_secs(120), |_| {
        line_count(&out) >= 3000
    });
    std::thread::sleep(Duration::from_millis(800));
    let (code, log) = running.stop();
    assert_eq!(code, 0, "{log}");
    assert_exactly(&ids(&out), 3000);
    let first = &values(&out)[0];
    assert_eq!(first["changed"], "2024-01-01T00:00:00");
    assert_eq!(first["amount"], "1.500");
    assert_eq!(first["flag"], true);
    assert_eq!(first["big"], "18446744073709551615");
    exec(MARIADB_URL, &format!("DROP TABLE {t}"));
}

#[test]
fn postgres_timestamp_mode_keeps_groups_whole_and_waits_for_late_commits() {
    let t = unique("ts");
    // 2,500 rows on two timestamps, with batches of 1,000: the first group is
    // larger than a batch.
    exec(PG_URL, &format!(
        "CREATE TABLE {t} (id INT PRIMARY KEY, changed TIMESTAMP NOT NULL);
         INSERT INTO {t} SELECT g, TIMESTAMP '2024-01-01' + (g / 1500) * INTERVAL '1 second' FROM generate_series(1, 2500) g;"
    ));
    let site = Site::new(PLUGINS);
    let (src, sink) = pipeline(&site, &t, PG_URL, "  mode: timestamp\n  timestamp.column.name: changed\n  batch.max.rows: 1000\n  timestamp.delay.interval.ms: 3000\n");
    let out = site.path("data/out.txt");
    let mut running = site.run(&site.worker(""), &[&src, &sink]);
    running.wait_for("2,500 rows", Duration::from_secs(120), |_| {
        line_count(&out) >= 2500
    });

    // A transaction stamps its row now but commits after a newer row was
    // committed: the delay keeps the reader from moving past it.
    common::db::block(async {
        use sqlx::Connection;
        let mut slow = sqlx::PgConnection::connect(PG_URL).await.unwrap();
        let mut tx = slow.begin().await.unwrap();
        sqlx::query(&format!("INSERT INTO {t} VALUES (2501, LOCALTIMESTAMP)"))
            .execute(&mut *tx)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut fast = sqlx::PgConnection::connect(PG_URL).await.unwrap();
        sqlx::query(&format!("INSERT INTO {t} VALUES (2502, LOCALTIMESTAMP)"))
            .execute(&mut fast)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        tx.commit().await.unwrap();
    });
    running.wait_for("the late rows", Duration::from_secs(60), |_| {
        line_count(&out) >= 2502
    });
    std::thread::sleep(Duration::from_millis(800));
    let (code, log) = running.stop();
    assert_eq!(code, 0, "{log}");
    assert_exactly(&ids(&out), 2502);
    exec(PG_URL, &format!("DROP TABLE {t}"));
}

#[test]
fn sqlite_bulk_rereads_the_table_and_a_custom_query_is_one_source() {
    let site = Site::new(PLUGINS);
    let file = site.path("data/app.db");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let url = format!("sqlite://{}", file.display());
    exec(
        &format!("{url}?mode=rwc"),
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL, ok BOOLEAN);
        INSERT INTO items VALUES (1, 'one', 1.5, 1), (2, 'two', NULL, 0), (3, 'three', 3.0, 1);",
    );
    let (src, sink) = pipeline(
        &site,
        "items",
        &url,
        "  mode: bulk\n  poll.interval.ms: 300\n",
    );
    let out = site.path("data/out.txt");
    let mut running = site.run(&site.worker(""), &[&src, &sink]);
    running.wait_for("two passes", Duration::from_secs(60), |_| {
        line_count(&out) >= 6
    });
    let (code, log) = running.stop();
    assert_eq!(code, 0, "{log}");
    let got = values(&out);
    assert_eq!(
        got[0],
        serde_json::json!({"id": 1, "name": "one", "price": 1.5, "ok": true})
    );
    assert_eq!(
        got[1],
        serde_json::json!({"id": 2, "name": "two", "price": null, "ok": false})
    );
    assert_eq!(
        &got[3..6],
        &got[0..3],
        "the second pass reads the same rows"
    );

    // A custom query, incrementing: its topic is topic.prefix.
    let src = site.write("query.yaml", &format!("name: q-in\nconfig:\n  connector.class: database-source\n  connection.url: \"{url}\"\n  query: SELECT id, upper(name) AS name FROM items WHERE price IS NOT NULL\n  mode: incrementing\n  incrementing.column.name: id\n  topic.prefix: expensive\n"));
    let sink = site.write("qsink.yaml", "name: q-out\nconfig:\n  connector.class: file-sink\n  file: data/q.txt\n  topics: expensive\n");
    let q = site.path("data/q.txt");
    let mut running = site.run(&site.worker(""), &[&src, &sink]);
    running.wait_for("the query's rows", Duration::from_secs(60), |_| {
        line_count(&q) >= 2
    });
    let (code, log) = running.stop();
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        values(&q),
        vec![
            serde_json::json!({"id": 1, "name": "ONE"}),
            serde_json::json!({"id": 3, "name": "THREE"})
        ]
    );
}

#[test]
fn tables_by_pattern_spread_over_tasks_each_with_its_own_topic_and_offset() {
    let prefix = unique("multi");
    for i in 0..3 {
        exec(PG_URL, &format!("CREATE TABLE {prefix}_t{i} (id INT PRIMARY KEY, v TEXT); INSERT INTO {prefix}_t{i} SELECT g, 't{i}' FROM generate_series(1, 100) g;"));
    }
    let site = Site::new(PLUGINS);
    let src = site.write("source.yaml", &format!("name: many\nconfig:\n  connector.class: database-source\n  connection.url: \"{PG_URL}\"\n  table.whitelist: \"{prefix}_t[0-9]+\"\n  topic.prefix: \"x-\"\n  mode: incrementing\n  incrementing.column.name: id\n  tasks.max: 2\n"));
    std::fs::create_dir_all(site.path("data")).unwrap();
    let mut sinks = Vec::new();
    for i in 0..3 {
        sinks.push(site.write(&format!("sink{i}.yaml"), &format!("name: out{i}\nconfig:\n  connector.class: file-sink\n  file: data/t{i}.txt\n  topics: x-{prefix}_t{i}\n")));
    }
    let mut args: Vec<&Path> = vec![&src];
    args.extend(sinks.iter().map(PathBuf::as_path));
    let mut running = site.run(&site.worker(""), &args);
    running.wait_for("three tables", Duration::from_secs(60), |_| {
        (0..3).all(|i| line_count(&site.path(&format!("data/t{i}.txt"))) >= 100)
    });
    let (code, log) = running.stop();
    assert_eq!(code, 0, "{log}");
    for i in 0..3 {
        let v = values(&site.path(&format!("data/t{i}.txt")));
        assert_eq!(v.len(), 100);
        assert!(v.iter().all(|r| r["v"] == format!("t{i}")));
        exec(PG_URL, &format!("DROP TABLE {prefix}_t{i}"));
    }
    // Two tasks shared the three tables.
    let started = log
        .lines()
        .filter(|l| l.contains("starting task connector=many"))
        .count();
    assert_eq!(started, 2, "{log}");
}

#[test]
fn a_database_restart_mid_stream_loses_no_row() {
    let pg = PrivatePostgres::start();
    exec(&pg.admin_url(), "CREATE TABLE events (id INT PRIMARY KEY, body TEXT); INSERT INTO events SELECT g, 'e' || g FROM generate_series(1, 1000) g;");
    let site = Site::new(PLUGINS);
    let (src, sink) = pipeline(&site, "events", &pg.admin_url(), "  mode: incrementing\n  incrementing.column.name: id\n  batch.max.rows: 200\n  connection.pool.acquire.timeout.ms: 1000\n  errors.retry.delay.max.ms: 500\n");
    let out = site.path("data/out.txt");
    let mut running = site.run(&site.worker(""), &[&src, &sink]);
    running.wait_for("the first rows", Duration::from_secs(60), |_| {
        line_count(&out) >= 1000
    });
    pg.down();
    std::thread::sleep(Duration::from_secs(2));
    pg.up();
    exec(
        &pg.admin_url(),
        "INSERT INTO events SELECT g, 'e' || g FROM generate_series(1001, 2000) g;",
    );
    running.wait_for(
        "rows written after the restart",
        Duration::from_secs(90),
        |_| line_count(&out) >= 2000,
    );
    let (code, log) = running.stop();
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains("retrying") || log.contains("unavailable"),
        "the outage was seen: {log}"
    );
    assert_exactly(&ids(&out), 2000);
}

#[test]
fn bad_credentials_statements_and_columns_fail_the_task_with_the_database_message() {
    let site = Site::new(PLUGINS);
    let t = unique("bad");
    exec(
        MARIADB_URL,
        &format!("CREATE TABLE {t} (id INT PRIMARY KEY)"),
    );
    let in_table = format!("table {t}");
    let cases = [
        // MariaDB checks passwords over TCP.
        (format!("  connection.url: \"mysql://root@127.0.0.1:3306/test\"\n  connection.password: not-the-Password-42\n  table.whitelist: {t}\n  mode: bulk\n"),
         vec!["Access denied for user 'root'", "connection `default` (mysql://127.0.0.1:3306/test)"]),
        (format!("  connection.url: \"{MARIADB_URL}\"\n  query: SELEC id FROM {t}\n  mode: bulk\n"),
         vec!["You have an error in your SQL syntax", "SELEC id FROM"]),
        (format!("  connection.url: \"{MARIADB_URL}\"\n  table.whitelist: {t}\n  mode: incrementing\n  incrementing.column.name: seq\n"),
         vec!["Unknown column 'seq'", in_table.as_str()]),
    ];
    for (i, (config, wants)) in cases.iter().enumerate() {
        let src = site.write(&format!("bad{i}.yaml"), &format!("name: bad{i}\nconfig:\n  connector.class: database-source\n  topic.prefix: bad{i}\n{config}"));
        let (code, log) = site
            .run(&site.worker(""), &[&src])
            .wait_exit(Duration::from_secs(60));
        assert_ne!(code, 0, "{log}");
        for want in wants {
            assert!(log.contains(want), "case {i}: {want:?} not in:\n{log}");
        }
        assert!(
            !log.contains("not-the-Password-42"),
            "the password leaked:\n{log}"
        );
    }
    exec(MARIADB_URL, &format!("DROP TABLE {t}"));
}

/// Checks ids hold every id 1..=n at least once and in order (a replay
/// after a crash may repeat a tail); returns how many are repeats.
fn assert_at_least_once_in_order(got: &[i64], n: i64) -> usize {
    let mut max = 0;
    for (i, &id) in got.iter().enumerate() {
        assert!(
            id <= max + 1,
            "record {i}: id {id} skips ahead of {} (a row was lost)",
            max + 1
        );
        if i > 0 {
            let prev = got[i - 1];
            assert!(
                id == prev + 1 || id <= prev,
                "record {i}: id {id} after {prev} is out of order"
            );
        }
        max = max.max(id);
    }
    assert_eq!(max, n, "the last row arrived");
    got.len() - n as usize
}

#[test]
fn kill_9_mid_stream_then_restart_loses_no_row() {
    let broker = common::broker::Broker::memory();
    let t = unique("crash");
    let n = 100_000;
    exec(PG_URL, &format!("CREATE TABLE {t} (id INT PRIMARY KEY, body TEXT); INSERT INTO {t} SELECT g, repeat('x', 100) FROM generate_series(1, {n}) g;"));
    let site = Site::new(PLUGINS);
    let worker = site.worker(&format!(
        "bootstrap.servers: {}\nconsumer.session.timeout.ms: 6000\nconsumer.heartbeat.interval.ms: 1000\n{}",
        broker.bootstrap(),
        common::broker::ONE_RECORD_BATCHES
    ));
    let (src, sink) = pipeline(
        &site,
        &t,
        PG_URL,
        "  mode: incrementing\n  incrementing.column.name: id\n",
    );
    let out = site.path("data/out.txt");
    let mut first = site.run(&worker, &[&src, &sink]);
    first.wait_for(
        "a third of the rows and committed offsets",
        Duration::from_secs(180),
        |_| line_count(&out) >= n / 3 && !broker.consume_all("tributary-offsets").is_empty(),
    );
    let at_kill = line_count(&out);
    first.kill9_and_let_its_sessions_expire();
    let mut second = site.run(&worker, &[&src, &sink]);
    second.wait_for("the last row", Duration::from_secs(300), |_| {
        ids(&out).last() == Some(&(n as i64))
    });
    std::thread::sleep(Duration::from_millis(500));
    let (code, log) = second.stop();
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains("resuming after"),
        "the source resumed from its offset: {log}"
    );
    let repeats = assert_at_least_once_in_order(&ids(&out), n as i64);
    println!("kill -9 after {at_kill} of {n} rows in the sink: {repeats} rows delivered twice");
    exec(PG_URL, &format!("DROP TABLE {t}"));
}
