//! The `database-sink` connector end to end: records flow from a file
//! source (or, for keys and tombstones, from a real broker) through Kafka
//! into real PostgreSQL, MariaDB and SQLite databases, and each test reads
//! the tables back with sqlx.
//!
//! These tests keep what only a real database shows: that each one takes
//! the sink's statements (`COPY`, multi-row and single-row `INSERT`,
//! upserts, deletes, `CREATE TABLE`), reports a refused row as bad data,
//! and that the worker's pools and credentials behave. Which statement a
//! dialect gets, how values are decoded, keep-last-per-key, updates, bad
//! records and task failures are unit tests against a fake database
//! (`connectors/database/src/sink/tests.rs`).
//!
//! Needs PostgreSQL on 127.0.0.1:5432 (user `postgres` trusted, database
//! `test`) and MariaDB on 127.0.0.1:3306 (user `root` without a password,
//! database `test`); SQLite files live in each test's directory. Every
//! test uses its own tables and topics, so they run in parallel.

mod common;

use common::broker::Broker;
use common::{line_count, Site};
use sqlx::Row;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const PLUGINS: &[&str] = &["tributary_connector_file", "tributary_connector_database"];
const POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const MARIADB_URL: &str = "mysql://root@127.0.0.1:3306/test";
const WAIT: Duration = Duration::from_secs(180);

/// A table and topic name no other test, or earlier run, uses.
fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        nanos % 100_000
    )
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Flavor {
    Postgres,
    Mariadb,
    Sqlite,
}

enum Pool {
    Postgres(sqlx::PgPool),
    Mariadb(sqlx::MySqlPool),
    Sqlite(sqlx::SqlitePool),
}

/// A test's own connection to one of the databases.
struct Db {
    flavor: Flavor,
    /// The URL the sink's `connection.url` gets.
    url: String,
    pool: Pool,
    rt: tokio::runtime::Runtime,
}

impl Db {
    /// PostgreSQL, MariaDB, or a SQLite file in `site`.
    fn open(flavor: Flavor, site: &Site) -> Db {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (url, pool) = match flavor {
            Flavor::Postgres => (
                POSTGRES_URL.to_owned(),
                Pool::Postgres(rt.block_on(sqlx::PgPool::connect(POSTGRES_URL)).unwrap()),
            ),
            Flavor::Mariadb => (
                MARIADB_URL.to_owned(),
                Pool::Mariadb(rt.block_on(sqlx::MySqlPool::connect(MARIADB_URL)).unwrap()),
            ),
            Flavor::Sqlite => {
                let file = site.path("data/sink.db");
                std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                let options = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(&file)
                    .create_if_missing(true);
                (
                    format!("sqlite://{}", file.display()),
                    Pool::Sqlite(
                        rt.block_on(sqlx::SqlitePool::connect_with(options))
                            .unwrap(),
                    ),
                )
            }
        };
        Db {
            flavor,
            url,
            pool,
            rt,
        }
    }

    fn exec(&self, sql: &str) {
        let done = match &self.pool {
            Pool::Postgres(p) => self.rt.block_on(sqlx::query(sql).execute(p)).map(|_| ()),
            Pool::Mariadb(p) => self.rt.block_on(sqlx::query(sql).execute(p)).map(|_| ()),
            Pool::Sqlite(p) => self.rt.block_on(sqlx::query(sql).execute(p)).map(|_| ()),
        };
        done.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Rows of a query whose columns are all text (see [`Db::text`]).
    fn try_rows(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>, sqlx::Error> {
        fn cells<R: Row>(rows: Vec<R>) -> Vec<Vec<Option<String>>>
        where
            for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            usize: sqlx::ColumnIndex<R>,
        {
            rows.iter()
                .map(|r| {
                    (0..r.len())
                        .map(|i| r.get::<Option<String>, _>(i))
                        .collect()
                })
                .collect()
        }
        Ok(match &self.pool {
            Pool::Postgres(p) => cells(self.rt.block_on(sqlx::query(sql).fetch_all(p))?),
            Pool::Mariadb(p) => cells(self.rt.block_on(sqlx::query(sql).fetch_all(p))?),
            Pool::Sqlite(p) => cells(self.rt.block_on(sqlx::query(sql).fetch_all(p))?),
        })
    }

    fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        self.try_rows(sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// `columns` of `from` (a table, maybe with a `WHERE`) as text, one
    /// `|`-separated string per row, ordered by `order`; NULL as "NULL".
    fn table(&self, from: &str, columns: &[&str], order: &str) -> Vec<String> {
        // Aliased, so that `order` names the columns, not their text.
        let list: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{} AS c{i}", self.text(c)))
            .collect();
        let sql = format!("SELECT {} FROM {from} ORDER BY {order}", list.join(", "));
        self.rows(&sql)
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|c| c.unwrap_or_else(|| "NULL".into()))
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect()
    }

    /// Rows in `table`; 0 while it does not exist.
    fn count(&self, table: &str) -> usize {
        let sql = format!("SELECT {} FROM {table}", self.text("COUNT(*)"));
        match self.try_rows(&sql) {
            Ok(rows) => rows[0][0].as_deref().unwrap_or("0").parse().unwrap(),
            Err(_) => 0,
        }
    }

    /// `expr` cast to text in this database.
    fn text(&self, expr: &str) -> String {
        match self.flavor {
            Flavor::Mariadb => format!("CAST({expr} AS CHAR)"),
            Flavor::Postgres | Flavor::Sqlite => format!("CAST({expr} AS TEXT)"),
        }
    }

    /// Creates `table` (dropping an old one) from column definitions.
    fn create(&self, table: &str, columns: &str) {
        self.exec(&format!("DROP TABLE IF EXISTS {table}"));
        self.exec(&format!("CREATE TABLE {table} ({columns})"));
    }

    fn drop_table(&self, table: &str) {
        self.exec(&format!("DROP TABLE IF EXISTS {table}"));
    }
}

/// `key: value` lines of a connector config.
fn config(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("  {k}: {v}\n")).collect()
}

/// A file source reading `lines` into `topic`, and a database sink from
/// `topic` into `db` with `sink` settings (plus a file sink for its dead
/// letter queue when `dlq` is given). Waits until `done`, then stops the
/// worker and returns its log.
fn run_pipeline(
    site: &Site,
    db: &Db,
    topic: &str,
    lines: &[String],
    sink: &[(&str, &str)],
    dlq: Option<&str>,
    mut done: impl FnMut() -> bool,
) -> String {
    site.write("data/in.txt", &(lines.join("\n") + "\n"));
    let worker = site.worker("");
    let src = site.write(
        "source.yaml",
        &format!("name: lines-in\nconfig:\n  connector.class: file-source\n  file: data/in.txt\n  topic: {topic}\n"),
    );
    let mut connectors = vec![src, sink_file(site, "sink.yaml", "db-out", topic, db, sink)];
    if let Some(dlq) = dlq {
        connectors.push(site.write(
            "dlq.yaml",
            &format!("name: dlq-reader\nconfig:\n  connector.class: file-sink\n  topics: {dlq}\n  file: data/dlq.txt\n"),
        ));
    }
    let refs: Vec<&Path> = connectors.iter().map(PathBuf::as_path).collect();
    let mut running = site.run(&worker, &refs);
    running.wait_for("the rows in the database", WAIT, |log| {
        assert!(!log.contains("task failed"), "a task failed:\n{log}");
        done()
    });
    let (code, log) = running.stop();
    assert_eq!(code, 0, "clean exit; log:\n{log}");
    log
}

/// A database sink's connector file.
fn sink_file(
    site: &Site,
    file: &str,
    name: &str,
    topic: &str,
    db: &Db,
    settings: &[(&str, &str)],
) -> PathBuf {
    site.write(
        file,
        &format!(
            "name: {name}\nconfig:\n  connector.class: database-sink\n  topics: {topic}\n  connection.url: {}\n{}",
            db.url,
            config(settings)
        ),
    )
}

// insert

/// 2,000 records of every common type, some fields null, into a table of
/// `columns`; checks them all.
fn insert_case(flavor: Flavor, columns: &str, expected_row_7: &str) {
    let site = Site::new(PLUGINS);
    let db = Db::open(flavor, &site);
    let table = unique("ins");
    db.create(&table, columns);
    let n = 2_000;
    let lines: Vec<String> = (0..n)
        .map(|i| {
            let name = if i % 7 == 0 {
                "null".to_owned()
            } else {
                format!("\"name-{i}\"")
            };
            format!(
                r#"{{"id":{i},"name":{name},"score":{},"active":{},"price":"{}.25","born":"2024-05-{:02}","meta":{{"i":{i}}}}}"#,
                i as f64 / 2.0,
                i % 2 == 0,
                i % 100,
                1 + i % 10
            )
        })
        .collect();
    run_pipeline(&site, &db, &table, &lines, &[], None, || {
        db.count(&table) >= n
    });
    assert_eq!(db.count(&table), n, "every record is one row");
    let ids = db.rows(&format!("SELECT {} FROM {table}", db.text("SUM(id)")));
    assert_eq!(ids[0][0].as_deref(), Some(&*(n * (n - 1) / 2).to_string()));
    let nulls = db.rows(&format!(
        "SELECT {} FROM {table} WHERE name IS NULL",
        db.text("COUNT(*)")
    ));
    assert_eq!(nulls[0][0].as_deref(), Some(&*n.div_ceil(7).to_string()));
    let row = db.table(
        &table,
        &["id", "name", "score", "active", "price", "born", "meta"],
        "id",
    );
    assert_eq!(row[7], expected_row_7);
    db.drop_table(&table);
}

#[test]
fn insert_into_postgres() {
    insert_case(
        Flavor::Postgres,
        "id BIGINT PRIMARY KEY, name TEXT, score DOUBLE PRECISION, active BOOLEAN, price NUMERIC(10,2), born DATE, meta JSONB",
        r#"7|NULL|3.5|false|7.25|2024-05-08|{"i": 7}"#,
    );
}

#[test]
fn insert_into_mariadb() {
    insert_case(
        Flavor::Mariadb,
        "id BIGINT PRIMARY KEY, name VARCHAR(100), score DOUBLE, active BOOLEAN, price DECIMAL(10,2), born DATE, meta JSON",
        r#"7|NULL|3.5|0|7.25|2024-05-08|{"i":7}"#,
    );
}

#[test]
fn insert_into_sqlite() {
    insert_case(
        Flavor::Sqlite,
        "id INTEGER PRIMARY KEY, name TEXT, score REAL, active BOOLEAN, price TEXT, born DATE, meta TEXT",
        r#"7|NULL|3.5|0|7.25|2024-05-08|{"i":7}"#,
    );
}

/// PostgreSQL takes rows by `COPY`, whose text format gives tabs, newlines,
/// backslashes and `\N` a meaning: every type (uuid and enum columns from
/// their text) and awkward text arrives as it was sent.
#[test]
fn copy_into_postgres_carries_every_type_and_awkward_text() {
    let site = Site::new(PLUGINS);
    let db = Db::open(Flavor::Postgres, &site);
    let table = unique("copytypes");
    let mood = format!("{table}_mood");
    db.drop_table(&table);
    db.exec(&format!("DROP TYPE IF EXISTS {mood}"));
    db.exec(&format!("CREATE TYPE {mood} AS ENUM ('happy', 'sad')"));
    db.create(
        &table,
        &format!("id BIGINT PRIMARY KEY, txt TEXT, raw BYTEA, tag UUID, at TIMESTAMPTZ, local TIMESTAMP, t TIME, d DATE, small SMALLINT, r REAL, flag BOOLEAN, doc JSON, price NUMERIC(12,2), feeling {mood}"),
    );
    let lines = vec![
        r#"{"id":1,"txt":"tab\there\nline \\ back \r cr","raw":"AAEC/w==","tag":"6f1c1a8e-2b0a-4c9e-9a56-0d6d4f1f0001","at":"2024-05-01T12:00:00.5+02:00","local":"2024-05-01T12:00:00.123","t":"13:45:00.25","d":"2024-02-29","small":-32768,"r":1.5,"flag":"t","doc":{"a":[1,"x\ty"]},"price":"-1234.50","feeling":"happy"}"#.to_owned(),
        r#"{"id":2,"txt":"\\N","raw":null,"tag":null,"at":null,"local":null,"t":null,"d":null,"small":null,"r":null,"flag":null,"doc":null,"price":null,"feeling":null}"#.to_owned(),
        r#"{"id":3,"txt":"","raw":"","tag":"6F1C1A8E-2B0A-4C9E-9A56-0D6D4F1F0003","at":1714567500250,"local":1714567500250,"t":"00:00:00","d":19844,"small":7,"r":-0.25,"flag":false,"doc":"just text","price":12.345,"feeling":"sad"}"#.to_owned(),
    ];
    run_pipeline(&site, &db, &table, &lines, &[], None, || {
        db.count(&table) >= 3
    });
    let columns = [
        "id",
        "txt",
        "raw",
        "tag",
        "at AT TIME ZONE 'UTC'",
        "local",
        "t",
        "d",
        "small",
        "r",
        "flag",
        "doc",
        "price",
        "feeling",
    ];
    assert_eq!(
        db.table(&table, &columns, "id"),
        [
            "1|tab\there\nline \\ back \r cr|\\x000102ff|6f1c1a8e-2b0a-4c9e-9a56-0d6d4f1f0001|2024-05-01 10:00:00.5|2024-05-01 12:00:00.123|13:45:00.25|2024-02-29|-32768|1.5|true|{\"a\":[1,\"x\\ty\"]}|-1234.50|happy",
            "2|\\N|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL",
            "3||\\x|6f1c1a8e-2b0a-4c9e-9a56-0d6d4f1f0003|2024-05-01 12:45:00.25|2024-05-01 12:45:00.25|00:00:00|2024-05-01|7|-0.25|false|\"just text\"|12.35|sad",
        ]
    );
    db.drop_table(&table);
    db.exec(&format!("DROP TYPE IF EXISTS {mood}"));
}

/// A PostgreSQL table `id BIGINT PRIMARY KEY, qty INTEGER CHECK (qty >=
/// 0), name TEXT` whose statement trigger notes in `<table>_statements`
/// every statement that wrote it (see [`assert_copied_and_inserted`]); its
/// name.
fn create_noted_table(db: &Db, prefix: &str) -> String {
    let table = unique(prefix);
    db.create(
        &table,
        "id BIGINT PRIMARY KEY, qty INTEGER CHECK (qty >= 0), name TEXT",
    );
    db.create(&format!("{table}_statements"), "statement TEXT");
    db.exec(&format!(
        "CREATE FUNCTION {table}_note() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO {table}_statements VALUES (current_query()); RETURN NULL; END $$"
    ));
    db.exec(&format!(
        "CREATE TRIGGER note AFTER INSERT ON {table} FOR EACH STATEMENT EXECUTE FUNCTION {table}_note()"
    ));
    table
}

/// Asserts that a table of [`create_noted_table`] was written both by a
/// statement containing `copied` (a `COPY` that went through) and by a
/// multi-row `INSERT … VALUES` (the rows of a `COPY` that did not).
fn assert_copied_and_inserted(db: &Db, table: &str, copied: &str) {
    let statements: Vec<String> = db
        .rows(&format!("SELECT statement FROM {table}_statements"))
        .into_iter()
        .map(|r| r[0].clone().unwrap_or_default())
        .collect();
    // For messages: how many, and the first few, shortened.
    let first: Vec<String> = statements
        .iter()
        .take(3)
        .map(|s| s.chars().take(120).collect())
        .collect();
    let brief = format!("{} statements, the first: {first:?}", statements.len());
    assert!(
        statements.iter().any(|s| s.contains(copied)),
        "no rows went in by COPY: {brief}"
    );
    assert!(
        statements.iter().any(|s| s.contains("VALUES")),
        "the rows of the failed COPY did not go again by INSERT: {brief}"
    );
}

fn drop_noted(db: &Db, table: &str) {
    db.drop_table(table);
    db.drop_table(&format!("{table}_statements"));
    db.exec(&format!("DROP FUNCTION {table}_note()"));
}

/// 3,000 records into PostgreSQL, one of them breaking a CHECK
/// constraint: the rows go in by `COPY` (upsert: into a staging table,
/// then `INSERT … SELECT`), the `COPY` holding the bad record fails as a
/// whole, and its rows go again by `INSERT`, which finds the bad one. A
/// statement trigger notes which statements wrote the table.
fn copy_with_a_bad_row_case(mode: &str) {
    let site = Site::new(PLUGINS);
    let db = Db::open(Flavor::Postgres, &site);
    let table = create_noted_table(&db, &format!("copybad_{mode}"));
    let n = 3_000;
    let bad_at = 2_500;
    let lines: Vec<String> = (0..n)
        .map(|i| {
            let qty = if i == bad_at { -1 } else { i as i64 };
            format!(r#"{{"id":{i},"qty":{qty},"name":"n{i}"}}"#)
        })
        .collect();
    let dlq = format!("{table}_dlq");
    let mut sink = vec![
        ("errors.tolerance", "all"),
        ("errors.log.enable", "true"),
        ("errors.deadletterqueue.topic.name", dlq.as_str()),
        // Puts without the bad record, which go in by COPY.
        ("consumer.override.max.poll.records", "1000"),
    ];
    if mode == "upsert" {
        sink.extend([
            ("insert.mode", "upsert"),
            ("pk.mode", "record_value"),
            ("pk.fields", "id"),
        ]);
    }
    let dlq_file = site.path("data/dlq.txt");
    let log = run_pipeline(&site, &db, &table, &lines, &sink, Some(&dlq), || {
        db.count(&table) >= n - 1 && line_count(&dlq_file) >= 1
    });
    assert_eq!(db.count(&table), n - 1);
    let ids = db.rows(&format!("SELECT {} FROM {table}", db.text("SUM(id)")));
    assert_eq!(
        ids[0][0].as_deref(),
        Some(&*(n * (n - 1) / 2 - bad_at).to_string())
    );
    assert_eq!(
        std::fs::read_to_string(&dlq_file).unwrap(),
        format!("{}\n", lines[bad_at])
    );
    let reason = format!("{table}[0]@{bad_at}: table `{table}`: rejected:");
    assert!(log.contains(&reason), "{reason:?} not in:\n{log}");
    let copied = match mode {
        "upsert" => "tributary_stage",
        _ => "COPY ",
    };
    assert_copied_and_inserted(&db, &table, copied);
    drop_noted(&db, &table);
}

#[test]
fn copy_upsert_into_postgres_with_a_bad_row_writes_the_others() {
    copy_with_a_bad_row_case("upsert");
}

// delete

/// Keyed records and tombstones from a real broker: one sink deletes on
/// tombstones, a second one on the same topic skips them.
fn tombstone_case(flavor: Flavor) {
    let broker = Broker::memory();
    let site = Site::new(PLUGINS);
    let db = Db::open(flavor, &site);
    let topic = unique("del");
    let kept = format!("{topic}_kept");
    for t in [&topic, &kept] {
        db.create(t, "id INTEGER PRIMARY KEY, name VARCHAR(20), n INTEGER");
    }
    broker.create_topic(&topic, 1, &[]);
    let envelope_key = |id: i64| {
        format!(
            r#"{{"schema":{{"type":"struct","fields":[{{"field":"id","type":"int32","optional":false}}],"optional":false}},"payload":{{"id":{id}}}}}"#
        )
    };
    let records: Vec<(String, Option<&str>)> = vec![
        (r#"{"id":1}"#.into(), Some(r#"{"name":"a","n":1}"#)),
        (r#"{"id":2}"#.into(), Some(r#"{"name":"b","n":2}"#)),
        (envelope_key(3), Some(r#"{"name":"c","n":3}"#)),
        (r#"{"id":2}"#.into(), None),
        (r#"{"id":1}"#.into(), Some(r#"{"name":"a2","n":11}"#)),
        (envelope_key(3), None),
        (r#"{"id":4}"#.into(), None),
        (r#"{"id":9}"#.into(), Some(r#"{"name":"end","n":9}"#)),
    ];
    for (key, value) in &records {
        broker.produce(&topic, Some(key.as_bytes()), value.map(str::as_bytes));
    }
    let worker = site.worker(&format!("bootstrap.servers: {}\n", broker.bootstrap()));
    let deleting = [
        ("insert.mode", "upsert"),
        ("pk.mode", "record_key"),
        ("delete.enabled", "true"),
    ];
    let skipping = [
        ("insert.mode", "upsert"),
        ("pk.mode", "record_key"),
        ("pk.fields", "id"),
        ("table.name.format", "${topic}_kept"),
    ];
    let a = sink_file(&site, "deleting.yaml", "deleting", &topic, &db, &deleting);
    let b = sink_file(&site, "skipping.yaml", "skipping", &topic, &db, &skipping);
    let mut running = site.run(&worker, &[&a, &b]);
    let end = |t: &str| format!("SELECT name FROM {t} WHERE id = 9");
    running.wait_for("the end marker in both tables", WAIT, |_| {
        !db.rows(&end(&topic)).is_empty() && !db.rows(&end(&kept)).is_empty()
    });
    let (code, log) = running.stop();
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        db.table(&topic, &["id", "name", "n"], "id"),
        ["1|a2|11", "9|end|9"],
        "tombstones deleted rows 2 and 3"
    );
    assert_eq!(
        db.table(&kept, &["id", "name", "n"], "id"),
        ["1|a2|11", "2|b|2", "3|c|3", "9|end|9"],
        "without delete.enabled tombstones are skipped"
    );
    db.drop_table(&topic);
    db.drop_table(&kept);
}

#[test]
fn tombstones_delete_rows_in_mariadb() {
    tombstone_case(Flavor::Mariadb);
}

// JsonConverter envelopes and auto.create

#[test]
fn envelopes_create_a_postgres_table_from_their_schema() {
    let site = Site::new(PLUGINS);
    let db = Db::open(Flavor::Postgres, &site);
    let table = unique("env");
    db.drop_table(&table);
    let schema = r#"{"type":"struct","name":"row","optional":false,"fields":[
        {"field":"id","type":"int64","optional":false},
        {"field":"name","type":"string","optional":true},
        {"field":"price","type":"bytes","optional":true,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2"}},
        {"field":"born","type":"int32","optional":true,"name":"org.apache.kafka.connect.data.Date","version":1},
        {"field":"seen","type":"int64","optional":true,"name":"org.apache.kafka.connect.data.Timestamp","version":1},
        {"field":"ok","type":"boolean","optional":true},
        {"field":"ratio","type":"float64","optional":true},
        {"field":"small","type":"int16","optional":false}]}"#
        .replace(['\n', ' '], "");
    let line = |payload: &str| format!(r#"{{"schema":{schema},"payload":{payload}}}"#);
    let lines = vec![
        line(
            r#"{"id":1,"name":"one","price":"MDk=","born":19844,"seen":1714567500250,"ok":true,"ratio":0.25,"small":7}"#,
        ),
        line(
            r#"{"id":2,"name":null,"price":"/w==","born":0,"seen":0,"ok":false,"ratio":null,"small":-3}"#,
        ),
        line(
            r#"{"id":1,"name":"uno","price":"AA==","born":1,"seen":1000,"ok":null,"ratio":1.5,"small":8}"#,
        ),
    ];
    let sink = [
        ("insert.mode", "upsert"),
        ("pk.mode", "record_value"),
        ("pk.fields", "id"),
        ("auto.create", "true"),
    ];
    let updated = format!("SELECT name FROM {table} WHERE id = 1 AND name = 'uno'");
    let log = run_pipeline(&site, &db, &table, &lines, &sink, None, || {
        db.try_rows(&updated)
            .map(|r| !r.is_empty())
            .unwrap_or(false)
    });
    assert!(log.contains(&format!("created table `{table}`")), "{log}");
    let mut types = db.table(
        &format!("information_schema.columns WHERE table_name = '{table}'"),
        &["column_name", "data_type", "is_nullable"],
        "ordinal_position",
    );
    types.sort();
    assert_eq!(
        types,
        [
            "born|date|YES",
            "id|bigint|NO",
            "name|text|YES",
            "ok|boolean|YES",
            "price|numeric|YES",
            "ratio|double precision|YES",
            "seen|timestamp without time zone|YES",
            "small|smallint|NO",
        ]
    );
    assert_eq!(
        db.table(
            &table,
            &["id", "name", "price", "born", "seen", "ok", "ratio", "small"],
            "id"
        ),
        [
            "1|uno|0.00|1970-01-02|1970-01-01 00:00:01|NULL|1.5|8",
            "2|NULL|-0.01|1970-01-01|1970-01-01 00:00:00|false|NULL|-3",
        ]
    );
    db.drop_table(&table);
}

// bad records

/// Five bad records among twenty: a type mismatch, not JSON, a CHECK
/// violation, a field with no column and a duplicate key. They go to the
/// dead letter queue; the fifteen others are written.
fn bad_records_case(flavor: Flavor) {
    let site = Site::new(PLUGINS);
    let db = Db::open(flavor, &site);
    let table = unique("bad");
    db.create(
        &table,
        "id INTEGER PRIMARY KEY, qty INTEGER CHECK (qty >= 0), name VARCHAR(20)",
    );
    let lines: Vec<String> = (0..20)
        .map(|i| match i {
            3 => r#"{"id":3,"qty":"many","name":"x"}"#.to_owned(),
            7 => "this is not JSON".to_owned(),
            11 => r#"{"id":11,"qty":-5,"name":"negative"}"#.to_owned(),
            13 => r#"{"id":13,"qty":1,"colour":"red"}"#.to_owned(),
            17 => r#"{"id":1,"qty":1,"name":"duplicate"}"#.to_owned(),
            i => format!(r#"{{"id":{i},"qty":{i},"name":"n{i}"}}"#),
        })
        .collect();
    let bad: Vec<&str> = [3, 7, 11, 13, 17]
        .iter()
        .map(|&i| lines[i].as_str())
        .collect();
    let dlq = format!("{table}_dlq");
    let sink = [
        ("errors.tolerance", "all"),
        ("errors.log.enable", "true"),
        ("errors.deadletterqueue.topic.name", &dlq),
    ];
    let dlq_file = site.path("data/dlq.txt");
    let log = run_pipeline(&site, &db, &table, &lines, &sink, Some(&dlq), || {
        db.count(&table) >= 15 && line_count(&dlq_file) >= 5
    });
    let good: Vec<String> = (0..20)
        .filter(|i| ![3, 7, 11, 13, 17].contains(i))
        .map(|i| format!("{i}|{i}|n{i}"))
        .collect();
    assert_eq!(db.table(&table, &["id", "qty", "name"], "id"), good);
    let dead = std::fs::read_to_string(&dlq_file).unwrap();
    assert_eq!(
        dead.lines().collect::<Vec<_>>(),
        bad,
        "the bad records, in order"
    );
    for reason in [
        format!("{table}[0]@3: table `{table}`: field `qty`: \"many\" does not fit column type"),
        format!("{table}[0]@7: table `{table}`: the value is not JSON"),
        format!("{table}[0]@11: table `{table}`: rejected:"),
        format!("{table}[0]@13: table `{table}`: no column for field `colour`"),
        format!("{table}[0]@17: table `{table}`: rejected:"),
    ] {
        assert!(log.contains(&reason), "{reason:?} not in:\n{log}");
    }
    db.drop_table(&table);
}

#[test]
fn bad_records_go_to_the_dead_letter_queue_mariadb() {
    bad_records_case(Flavor::Mariadb);
}

#[test]
fn bad_records_go_to_the_dead_letter_queue_sqlite() {
    bad_records_case(Flavor::Sqlite);
}

// failures

#[test]
fn wrong_credentials_fail_the_task_without_the_password() {
    let site = Site::new(PLUGINS);
    let db = Db::open(Flavor::Mariadb, &site);
    let table = unique("auth");
    db.create(&table, "id BIGINT PRIMARY KEY");
    site.write("data/in.txt", "{\"id\":1}\n");
    let worker = site.worker("");
    let src = site.write(
        "source.yaml",
        &format!("name: lines-in\nconfig:\n  connector.class: file-source\n  file: data/in.txt\n  topic: {table}\n"),
    );
    let password = "not-the-password-4711";
    let sink = sink_file(
        &site,
        "sink.yaml",
        "db-out",
        &table,
        &db,
        &[
            ("connection.user", "tributary_nobody"),
            ("connection.password", password),
            ("errors.retry.timeout", "2000"),
            ("errors.retry.delay.max.ms", "200"),
        ],
    );
    let mut running = site.run(&worker, &[&src, &sink]);
    running.wait_for("the task failure", WAIT, |log| log.contains("task failed"));
    let log = running.log();
    let line = log.lines().find(|l| l.contains("task failed")).unwrap();
    assert!(
        line.contains("Access denied for user 'tributary_nobody'"),
        "{line}"
    );
    assert!(
        !log.contains("retrying the batch"),
        "refused credentials are not retried: {log}"
    );
    assert!(
        !log.contains(password),
        "the password leaked into the log:\n{log}"
    );
    assert_eq!(db.count(&table), 0);
    db.drop_table(&table);
}

#[test]
fn connections_killed_mid_stream_are_retried_without_losing_or_doubling_rows() {
    let site = Site::new(PLUGINS);
    let db = Db::open(Flavor::Postgres, &site);
    let table = unique("killed");
    db.create(&table, "id BIGINT PRIMARY KEY, name TEXT, note TEXT");
    let n = 30_000;
    // Every 20th record has one more field: a put writes many groups, so a
    // connection killed in the middle leaves it partly written.
    let lines: Vec<String> = (0..n)
        .map(|i| match i % 20 {
            0 => format!(r#"{{"id":{i},"name":"row {i}","note":"n"}}"#),
            _ => format!(r#"{{"id":{i},"name":"row {i}"}}"#),
        })
        .collect();
    // Plain inserts: a record written twice would fail on its duplicate key.
    let sink = [("errors.retry.delay.max.ms", "100")];
    let kill = format!(
        "SELECT {} FROM pg_stat_activity WHERE application_name = 'tributary' AND query LIKE '%{table}%' AND pid <> pg_backend_pid()",
        db.text("pg_terminate_backend(pid)")
    );
    let mut kills = 0;
    let log = run_pipeline(&site, &db, &table, &lines, &sink, None, || {
        let done = db.count(&table) >= n;
        if !done {
            kills += db.rows(&kill).len();
        }
        done
    });
    assert_eq!(db.count(&table), n, "every row once");
    let retries = log.matches("retrying the batch").count();
    println!("terminated {kills} connections; the sink retried {retries} batches");
    db.drop_table(&table);
}

#[test]
fn primitive_keys_create_upsert_and_delete_sqlite_rows() {
    let broker = Broker::memory();
    let site = Site::new(PLUGINS);
    let db = Db::open(Flavor::Sqlite, &site);
    let topic = unique("prim");
    broker.create_topic(&topic, 1, &[]);
    let records: [(&str, Option<&str>); 5] = [
        (
            r#"{"schema":{"type":"int64","optional":false},"payload":7}"#,
            Some(r#"{"name":"a"}"#),
        ),
        ("8", Some(r#"{"name":"b"}"#)),
        ("7", None),
        ("8", Some(r#"{"name":"b2"}"#)),
        ("9", Some(r#"{"name":"end"}"#)),
    ];
    for (key, value) in records {
        broker.produce(&topic, Some(key.as_bytes()), value.map(str::as_bytes));
    }
    let worker = site.worker(&format!("bootstrap.servers: {}\n", broker.bootstrap()));
    let settings = [
        ("insert.mode", "upsert"),
        ("pk.mode", "record_key"),
        ("pk.fields", "id"),
        ("delete.enabled", "true"),
        ("auto.create", "true"),
    ];
    let sink = sink_file(&site, "sink.yaml", "db-out", &topic, &db, &settings);
    let mut running = site.run(&worker, &[&sink]);
    let end = format!("SELECT name FROM {topic} WHERE id = 9");
    running.wait_for("the end marker", WAIT, |log| {
        assert!(!log.contains("task failed"), "{log}");
        db.try_rows(&end).map(|r| !r.is_empty()).unwrap_or(false)
    });
    let (code, log) = running.stop();
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        db.table(
            &format!("pragma_table_info('{topic}')"),
            &["name", "type", "\"notnull\"", "pk"],
            "cid"
        ),
        ["id|INTEGER|1|1", "name|TEXT|0|0"],
        "the key column from the key's schema, first"
    );
    assert_eq!(db.table(&topic, &["id", "name"], "id"), ["8|b2", "9|end"]);
}

// Kept against real databases: what a fake cannot show (the SQL each dialect
// accepts for UPDATE and CREATE TABLE, and the error a real PostgreSQL gives
// for a column dropped under a running sink).

/// Updates two of five existing rows, one missing row (not created), and
/// the last row as an end marker.
fn update_case(flavor: Flavor) {
    let site = Site::new(PLUGINS);
    let db = Db::open(flavor, &site);
    let table = unique("upd");
    db.create(
        &table,
        "id INTEGER PRIMARY KEY, name VARCHAR(20), n INTEGER",
    );
    db.exec(&format!(
        "INSERT INTO {table} (id, name, n) VALUES (1, 'old', 0), (2, 'old', 0), (3, 'old', 0), (4, 'old', 0), (5, 'old', 0)"
    ));
    let lines: Vec<String> = [
        r#"{"id":2,"name":"new","n":2}"#,
        r#"{"id":4,"name":"new","n":4}"#,
        r#"{"id":99,"name":"ghost","n":99}"#,
        r#"{"id":5,"name":"last","n":5}"#,
    ]
    .map(String::from)
    .to_vec();
    let sink = [
        ("insert.mode", "update"),
        ("pk.mode", "record_value"),
        ("pk.fields", "id"),
    ];
    let last = format!("SELECT name FROM {table} WHERE id = 5 AND name = 'last'");
    run_pipeline(&site, &db, &table, &lines, &sink, None, || {
        !db.rows(&last).is_empty()
    });
    assert_eq!(
        db.table(&table, &["id", "name", "n"], "id"),
        ["1|old|0", "2|new|2", "3|old|0", "4|new|4", "5|last|5"],
        "update changes existing rows and creates none"
    );
    db.drop_table(&table);
}

#[test]
fn update_in_postgres_changes_existing_rows_only() {
    update_case(Flavor::Postgres);
}

#[test]
fn plain_json_creates_a_mariadb_table_with_inferred_types() {
    let site = Site::new(PLUGINS);
    let db = Db::open(Flavor::Mariadb, &site);
    let table = unique("auto");
    db.drop_table(&table);
    let lines = vec![
        r#"{"code":"a","n":1,"x":1.5,"flag":true,"doc":{"k":[1,2]}}"#.to_owned(),
        r#"{"code":"b","n":2,"x":2.5,"flag":false,"doc":[]}"#.to_owned(),
    ];
    let sink = [
        ("pk.mode", "record_value"),
        ("pk.fields", "code"),
        ("auto.create", "true"),
    ];
    run_pipeline(&site, &db, &table, &lines, &sink, None, || {
        db.count(&table) >= 2
    });
    let mut types = db.table(
        &format!(
            "information_schema.columns WHERE table_schema = DATABASE() AND table_name = '{table}'"
        ),
        &["column_name", "column_type", "is_nullable", "column_key"],
        "ordinal_position",
    );
    types.sort();
    assert_eq!(
        types,
        [
            "code|varchar(255)|NO|PRI",
            "doc|longtext|YES|",
            "flag|tinyint(1)|YES|",
            "n|bigint(20)|YES|",
            "x|double|YES|",
        ]
    );
    assert_eq!(
        db.table(&table, &["code", "n", "x", "flag", "doc"], "code"),
        [r#"a|1|1.5|1|{"k":[1,2]}"#, "b|2|2.5|0|[]"]
    );
    db.drop_table(&table);
}

#[test]
fn columns_added_or_dropped_while_running_are_noticed() {
    let site = Site::new(PLUGINS);
    let db = Db::open(Flavor::Postgres, &site);
    let table = unique("alter");
    db.create(&table, "id BIGINT PRIMARY KEY, name TEXT, extra TEXT");
    let input = site.write("data/in.txt", "{\"id\":1,\"name\":\"a\",\"extra\":\"x\"}\n");
    let worker = site.worker("");
    let src = site.write(
        "source.yaml",
        &format!("name: lines-in\nconfig:\n  connector.class: file-source\n  file: data/in.txt\n  topic: {table}\n"),
    );
    let dlq = format!("{table}_dlq");
    let sink = sink_file(
        &site,
        "sink.yaml",
        "db-out",
        &table,
        &db,
        &[
            ("errors.tolerance", "all"),
            ("errors.deadletterqueue.topic.name", &dlq),
        ],
    );
    let reader = site.write(
        "dlq.yaml",
        &format!("name: dlq-reader\nconfig:\n  connector.class: file-sink\n  topics: {dlq}\n  file: data/dlq.txt\n"),
    );
    let mut running = site.run(&worker, &[&src, &sink, &reader]);
    running.wait_for("the first row", WAIT, |_| db.count(&table) >= 1);
    // The sink knows the columns as they were; change them under it.
    db.exec(&format!(
        "ALTER TABLE {table} DROP COLUMN extra, ADD COLUMN note TEXT"
    ));
    let more = [
        r#"{"id":2,"name":"b","extra":"y"}"#,
        r#"{"id":3,"name":"c","note":"new"}"#,
    ];
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&input)
        .unwrap();
    std::io::Write::write_all(&mut file, (more.join("\n") + "\n").as_bytes()).unwrap();
    let dlq_file = site.path("data/dlq.txt");
    running.wait_for("row 3 and one dead letter", WAIT, |log| {
        assert!(!log.contains("task failed"), "{log}");
        db.count(&table) >= 2 && line_count(&dlq_file) >= 1
    });
    let (code, log) = running.stop();
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        db.table(&table, &["id", "name", "note"], "id"),
        ["1|a|NULL", "3|c|new"]
    );
    assert_eq!(
        std::fs::read_to_string(&dlq_file).unwrap(),
        format!("{}\n", more[0])
    );
    db.drop_table(&table);
}

// shutdown

/// Sends `signal` (`TERM`, `KILL`, …) to process `pid`.
fn signal(pid: u32, signal: &str) {
    let sent = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(sent.success(), "kill -{signal} {pid}");
}

/// A sink blocked on a table that another transaction holds locked cannot
/// finish its graceful stop. The first SIGTERM starts the stop and the
/// worker waits for the sink; a second SIGTERM ends the worker at once,
/// with exit status 143 (128 + SIGTERM), long before the graceful timeout.
#[test]
fn a_second_sigterm_exits_at_once_while_a_sink_is_blocked_on_a_lock() {
    let site = Site::new(PLUGINS);
    let db = Db::open(Flavor::Postgres, &site);
    let table = unique("locked");
    db.create(&table, "id BIGINT PRIMARY KEY, name TEXT");
    let Pool::Postgres(pool) = &db.pool else {
        unreachable!()
    };
    let mut lock = db.rt.block_on(pool.begin()).unwrap();
    let statement = format!("LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE");
    db.rt
        .block_on(sqlx::query(&statement).execute(&mut *lock))
        .unwrap();

    let lines: Vec<String> = (0..100)
        .map(|i| format!(r#"{{"id":{i},"name":"name-{i}"}}"#))
        .collect();
    site.write("data/in.txt", &(lines.join("\n") + "\n"));
    let graceful = Duration::from_secs(120);
    let worker = site.worker_with_rest(&format!(
        "listeners: http://127.0.0.1:0\ntask.shutdown.graceful.timeout.ms: {}\n",
        graceful.as_millis()
    ));
    let src = site.write(
        "source.yaml",
        &format!("name: lines-in\nconfig:\n  connector.class: file-source\n  file: data/in.txt\n  topic: {table}\n"),
    );
    let sink = sink_file(&site, "sink.yaml", "db-out", &table, &db, &[]);
    let api = common::rest::Api::start(&site, &worker, &[&src, &sink]);
    let rest = api
        .base
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut run = api.run;

    // The sink's statement waits for the lock.
    let blocked = format!(
        "SELECT CAST(COUNT(*) AS TEXT) FROM pg_stat_activity WHERE application_name = 'tributary' AND wait_event_type = 'Lock' AND query LIKE '%{table}%'"
    );
    run.wait_for("the sink to wait for the lock", WAIT, |_| {
        db.rows(&blocked)[0][0].as_deref() != Some("0")
    });

    // The first SIGTERM: the REST API closes, the worker waits for the sink.
    let pid = run.child.id();
    signal(pid, "TERM");
    run.wait_for("the REST API to close", WAIT, |_| {
        std::net::TcpStream::connect(&rest).is_err()
    });
    assert!(
        run.child.try_wait().unwrap().is_none(),
        "the worker waits for the blocked sink:\n{}",
        run.log()
    );

    // The second SIGTERM: out at once.
    let second = std::time::Instant::now();
    signal(pid, "TERM");
    let (code, log) = run.wait_exit(graceful);
    assert_eq!(code, 143, "exit status of a second SIGTERM; log:\n{log}");
    assert!(
        second.elapsed() < graceful / 2,
        "exited {:?} after the second SIGTERM",
        second.elapsed()
    );

    db.rt.block_on(lock.rollback()).unwrap();
    db.drop_table(&table);
}
