//! The sink task against a recording fake database, with no database
//! running: which statements each dialect gets, how values are decoded,
//! which records go bad and why, and what fails the task. The end-to-end
//! tests (`tests/database_sink.rs`) keep what only a real database can
//! show: that PostgreSQL, MariaDB and SQLite take these statements.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use tributary_sdk::sql::{Dialect, SqlError, Value};
use tributary_sdk::testing::{self, Answer, FakeSql, Record, SqlCall};
use tributary_sdk::{acceptance, PutResult, Sink, SinkTask, Source, TaskError};

use super::{DatabaseSink, DatabaseSinkTask};

type Catalog = Rc<RefCell<HashMap<String, Vec<(String, String)>>>>;

/// A fake database installed as connection `default`, whose catalog holds
/// the tables a test declares.
struct Db {
    sql: FakeSql,
    tables: Catalog,
}

impl Db {
    fn new(dialect: Dialect) -> Db {
        let sql = FakeSql::new(dialect);
        let tables: Catalog = Rc::default();
        let catalog = Rc::clone(&tables);
        sql.answer(move |call| match call {
            SqlCall::Query { statement, params }
                if statement.contains("information_schema.columns")
                    || statement.contains("pragma_table_info") =>
            {
                let Some(Value::Text(table)) = params.first() else {
                    return None;
                };
                let columns = catalog.borrow().get(table).cloned().unwrap_or_default();
                let rows = columns
                    .into_iter()
                    .map(|(n, t)| vec![Value::Text(n), Value::Text(t)])
                    .collect();
                Some(Answer::Rows(testing::rows(&["name", "type"], rows)))
            }
            _ => None,
        });
        sql.install("default");
        Db { sql, tables }
    }

    /// Declares table `name` with `(column, catalog type)`s.
    fn table(&self, name: &str, columns: &[(&str, &str)]) {
        let columns = columns
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        self.tables.borrow_mut().insert(name.to_owned(), columns);
    }

    /// A task of a sink with `settings`, writing through this database.
    fn task(&self, settings: &[(&str, &str)]) -> DatabaseSinkTask<FakeSql> {
        let config = testing::config(&DatabaseSink::describe().keys, settings);
        DatabaseSinkTask::<FakeSql>::open(config).expect("the task opens")
    }

    /// The calls that write: statements, batches and finished loads
    /// (catalog queries and load starts left out).
    fn writes(&self) -> Vec<SqlCall> {
        let calls = self.sql.calls().into_iter();
        calls
            .filter(|c| !matches!(c, SqlCall::Query { .. } | SqlCall::CopyBegin { .. }))
            .collect()
    }

    /// Data errors for every write holding a value for which `bad` is true:
    /// what a database answers to a row breaking a constraint.
    fn reject(&self, bad: impl Fn(&Value) -> bool + 'static) {
        self.sql.answer(move |call| {
            let data = || SqlError::Data("violates check constraint".into());
            match call {
                SqlCall::Execute { params, .. } if params.iter().any(&bad) => {
                    Some(Answer::Fail(data()))
                }
                SqlCall::ExecuteBatch { params, .. } => params
                    .iter()
                    .position(|row| row.iter().any(&bad))
                    .map(|i| Answer::FailAt(i as u32, data())),
                SqlCall::Copy { data: text, .. } => {
                    let text = String::from_utf8_lossy(text);
                    let bad_line = text.lines().any(|line| {
                        line.split('\t').any(|cell| {
                            let value = match cell.parse::<i64>() {
                                Ok(n) => Value::Integer(n),
                                Err(_) => Value::Text(cell.to_owned()),
                            };
                            bad(&value)
                        })
                    });
                    bad_line.then(|| Answer::Fail(data()))
                }
                _ => None,
            }
        });
    }
}

/// Hands `records` to `put`, checking one result per record.
fn put(task: &mut DatabaseSinkTask<FakeSql>, records: &[Record]) -> Vec<PutResult> {
    acceptance::put(task, &testing::sink_batch(records)).expect("put succeeds")
}

/// JSON values as records of topic `t` at offsets 0, 1, 2, …
fn lines(values: &[String]) -> Vec<Record> {
    testing::values("t", values.iter().map(String::as_str))
}

/// The positions of the records that are not `Ok`, with their reasons.
fn bad(results: &[PutResult]) -> Vec<(usize, String)> {
    results
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match r {
            PutResult::Ok => None,
            PutResult::BadRecord(m) | PutResult::Retriable(m) => Some((i, m.clone())),
        })
        .collect()
}

/// Records of every common type; every 7th name null.
fn typed_lines(n: usize) -> Vec<String> {
    (0..n)
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
        .collect()
}

#[test]
fn both_connectors_keep_the_contract_in_their_descriptions() {
    acceptance::description(&DatabaseSink::describe());
    acceptance::description(&crate::source::DatabaseSource::describe());
}

#[test]
fn validate_names_the_key_of_each_inconsistency() {
    let config = |pairs: &[(&str, &str)]| {
        tributary_sdk::testing::config(&DatabaseSink::describe().keys, pairs)
    };
    let keys = |pairs: &[(&str, &str)]| -> Vec<String> {
        DatabaseSink::validate(&config(pairs))
            .into_iter()
            .map(|i| i.key)
            .collect()
    };
    assert!(keys(&[]).is_empty());
    assert_eq!(keys(&[("insert.mode", "upsert")]), ["pk.mode"]);
    assert_eq!(
        keys(&[("pk.mode", "record_value"), ("delete.enabled", "true")]),
        ["delete.enabled"]
    );
    assert_eq!(keys(&[("insert.mode", "merge")]), ["insert.mode"]);
    assert_eq!(keys(&[("pk.fields", "id")]), ["pk.fields"]);
    assert!(keys(&[
        ("insert.mode", "upsert"),
        ("pk.mode", "record_key"),
        ("delete.enabled", "true")
    ])
    .is_empty());
}

#[test]
fn validate_names_the_key_and_the_fix_of_each_inconsistency() {
    let issues = |pairs: &[(&str, &str)]| -> Vec<String> {
        DatabaseSink::validate(&testing::config(&DatabaseSink::describe().keys, pairs))
            .into_iter()
            .map(|i| i.to_string())
            .collect()
    };
    assert_eq!(
        issues(&[("insert.mode", "upsert")]),
        ["`pk.mode`: insert.mode=upsert needs a primary key: set pk.mode to record_key or record_value"]
    );
    assert_eq!(
        issues(&[("pk.mode", "record_value"), ("delete.enabled", "true")]),
        ["`delete.enabled`: deletes find the row by the record key: delete.enabled=true needs pk.mode=record_key"]
    );
}

#[test]
fn postgres_takes_an_insert_put_in_one_copy_of_decoded_values() {
    let db = Db::new(Dialect::Postgres);
    db.table(
        "t",
        &[
            ("id", "int8"),
            ("name", "text"),
            ("score", "float8"),
            ("active", "bool"),
            ("price", "numeric"),
            ("born", "date"),
            ("meta", "jsonb"),
        ],
    );
    let mut task = db.task(&[]);
    let results = put(&mut task, &lines(&typed_lines(100)));
    assert!(bad(&results).is_empty(), "{:?}", bad(&results));
    let writes = db.writes();
    assert_eq!(writes.len(), 1, "one COPY: {:?}", db.sql.statements());
    let SqlCall::Copy { load, data } = &writes[0] else {
        panic!("not a COPY: {:?}", writes[0]);
    };
    assert_eq!(
        load.copy,
        r#"COPY "t" ("id", "name", "score", "active", "price", "born", "meta") FROM STDIN"#
    );
    let text = String::from_utf8(data.clone()).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 100);
    assert_eq!(rows[7], "7\t\\N\t3.5\tf\t7.25\t2024-05-08\t{\"i\":7}");
    assert_eq!(rows[8], "8\tname-8\t4.0\tt\t8.25\t2024-05-09\t{\"i\":8}");
}

#[test]
fn postgres_types_without_a_conversion_of_their_own_take_text() {
    // uuid and enum columns take their text (with a cast in statements);
    // timestamptz takes ISO text or epoch milliseconds.
    let db = Db::new(Dialect::Postgres);
    db.table(
        "t",
        &[("id", "uuid"), ("feeling", "t_mood"), ("at", "timestamptz")],
    );
    let mut task = db.task(&[
        ("insert.mode", "upsert"),
        ("pk.mode", "record_value"),
        ("pk.fields", "id"),
    ]);
    let records = lines(&[
        r#"{"id":"6f1c1a8e-2b0a-4c9e-9a56-0d6d4f1f0001","feeling":"happy","at":"2024-05-01T12:00:00Z"}"#.into(),
        r#"{"id":"6f1c1a8e-2b0a-4c9e-9a56-0d6d4f1f0002","feeling":"sad","at":1714567500250}"#.into(),
    ]);
    assert!(bad(&put(&mut task, &records)).is_empty());
    let SqlCall::Copy { load, data } = &db.writes()[0] else {
        panic!("not a COPY: {:?}", db.sql.statements());
    };
    assert_eq!(
        load.copy,
        r#"COPY pg_temp."tributary_stage" ("id", "feeling", "at") FROM STDIN"#
    );
    assert_eq!(
        String::from_utf8_lossy(data),
        "6f1c1a8e-2b0a-4c9e-9a56-0d6d4f1f0001\thappy\t2024-05-01T12:00:00Z\n\
         6f1c1a8e-2b0a-4c9e-9a56-0d6d4f1f0002\tsad\t2024-05-01T12:45:00.250Z\n"
    );
}

#[test]
fn mysql_takes_multi_row_inserts_of_at_most_two_thousand_rows() {
    let db = Db::new(Dialect::Mysql);
    db.table(
        "t",
        &[
            ("id", "bigint(20)"),
            ("name", "varchar(100)"),
            ("score", "double"),
            ("active", "tinyint(1)"),
            ("price", "decimal(10,2)"),
            ("born", "date"),
            ("meta", "json"),
        ],
    );
    let mut task = db.task(&[]);
    assert!(bad(&put(&mut task, &lines(&typed_lines(2_500)))).is_empty());
    let writes = db.writes();
    let sizes: Vec<usize> = writes
        .iter()
        .map(|c| match c {
            SqlCall::Execute { params, .. } => params.len() / 7,
            other => panic!("not an INSERT: {other:?}"),
        })
        .collect();
    assert_eq!(sizes, [2_000, 500]);
    let SqlCall::Execute { statement, params } = &writes[0] else {
        unreachable!()
    };
    assert!(
        statement.starts_with("INSERT INTO `t` (`id`, `name`, `score`, `active`, `price`, `born`, `meta`) VALUES (?, ?, ?, ?, ?, ?, ?), (?,"),
        "{}",
        &statement[..120]
    );
    assert_eq!(
        params[7 * 7..8 * 7],
        [
            Value::Integer(7),
            Value::Null,
            Value::Float(3.5),
            Value::Boolean(false),
            Value::Decimal("7.25".into()),
            Value::Date("2024-05-08".into()),
            Value::Json(r#"{"i":7}"#.into()),
        ]
    );
}

#[test]
fn sqlite_takes_one_execute_batch_of_single_row_inserts() {
    let db = Db::new(Dialect::Sqlite);
    db.table(
        "t",
        &[("id", "INTEGER"), ("name", "TEXT"), ("half", "REAL")],
    );
    let mut task = db.task(&[]);
    let values: Vec<String> = (0..300)
        .map(|i| format!(r#"{{"id":{i},"name":"l{i}","half":{}.5}}"#, i))
        .collect();
    assert!(bad(&put(&mut task, &lines(&values))).is_empty());
    let writes = db.writes();
    assert_eq!(writes.len(), 1);
    let SqlCall::ExecuteBatch { statement, params } = &writes[0] else {
        panic!("not a batch: {:?}", writes[0]);
    };
    assert_eq!(
        statement,
        r#"INSERT INTO "t" ("id", "name", "half") VALUES (?, ?, ?)"#
    );
    assert_eq!(params.len(), 300);
    assert_eq!(
        params[299],
        [
            Value::Integer(299),
            Value::Text("l299".into()),
            Value::Float(299.5)
        ]
    );
}

/// Three rounds over 50 keys (each key twice in a row in the last round):
/// the rows each dialect's upsert gets, as (id, n).
fn upsert_rows(dialect: Dialect) -> (Vec<String>, Vec<(i64, i64)>) {
    let db = Db::new(dialect);
    match dialect {
        Dialect::Mysql => db.table(
            "t",
            &[
                ("id", "bigint(20)"),
                ("name", "varchar(20)"),
                ("n", "int(11)"),
            ],
        ),
        _ => db.table("t", &[("id", "int8"), ("name", "text"), ("n", "int4")]),
    }
    let mut task = db.task(&[
        ("insert.mode", "upsert"),
        ("pk.mode", "record_value"),
        ("pk.fields", "id"),
    ]);
    let mut values = Vec::new();
    for round in 0..3 {
        for id in 0..50 {
            if round == 2 {
                values.push(format!(r#"{{"id":{id},"name":"early","n":-1}}"#));
            }
            values.push(format!(
                r#"{{"id":{id},"name":"round-{round}","n":{}}}"#,
                round * 100 + id
            ));
        }
    }
    assert!(bad(&put(&mut task, &lines(&values))).is_empty());
    let mut statements = Vec::new();
    let mut rows = Vec::new();
    let int = |v: &Value| match v {
        Value::Integer(n) => *n,
        other => panic!("not an integer: {other:?}"),
    };
    for call in db.writes() {
        statements.push(call.statement().to_owned());
        match call {
            SqlCall::Copy { data, .. } => {
                for line in String::from_utf8(data).unwrap().lines() {
                    let cells: Vec<&str> = line.split('\t').collect();
                    rows.push((cells[0].parse().unwrap(), cells[2].parse().unwrap()));
                }
            }
            SqlCall::Execute { params, .. } => {
                rows.extend(params.chunks(3).map(|r| (int(&r[0]), int(&r[2]))));
            }
            SqlCall::ExecuteBatch { params, .. } => {
                rows.extend(params.iter().map(|r| (int(&r[0]), int(&r[2]))));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    (statements, rows)
}

#[test]
fn upserts_keep_the_last_record_of_each_key_in_every_dialect() {
    let last: Vec<(i64, i64)> = (0..50).map(|id| (id, 200 + id)).collect();
    // PostgreSQL: one statement may not touch a row twice, so the staging
    // table gets the last row of each key only.
    let (statements, rows) = upsert_rows(Dialect::Postgres);
    assert_eq!(
        statements,
        [r#"COPY pg_temp."tributary_stage" ("id", "name", "n") FROM STDIN"#]
    );
    assert_eq!(rows, last);
    // MySQL: one multi-row statement, a row per key.
    let (statements, rows) = upsert_rows(Dialect::Mysql);
    assert_eq!(statements.len(), 1);
    assert!(
        statements[0]
            .ends_with(" ON DUPLICATE KEY UPDATE `name` = VALUES(`name`), `n` = VALUES(`n`)"),
        "{}",
        statements[0]
    );
    assert_eq!(rows, last);
    // SQLite: single-row statements in order, the last one of a key wins.
    let (statements, rows) = upsert_rows(Dialect::Sqlite);
    assert_eq!(
        statements,
        [
            r#"INSERT INTO "t" ("id", "name", "n") VALUES (?, ?, ?) ON CONFLICT ("id") DO UPDATE SET "name" = EXCLUDED."name", "n" = EXCLUDED."n""#
        ]
    );
    assert_eq!(rows.len(), 200);
    let mut kept: HashMap<i64, i64> = HashMap::new();
    kept.extend(rows);
    let mut kept: Vec<(i64, i64)> = kept.into_iter().collect();
    kept.sort();
    assert_eq!(kept, last);
}

#[test]
fn updates_set_the_other_columns_by_key_and_insert_nothing() {
    for (dialect, sql) in [
        (
            Dialect::Postgres,
            r#"UPDATE "t" SET "name" = $1, "n" = $2 WHERE "id" = $3"#,
        ),
        (
            Dialect::Sqlite,
            r#"UPDATE "t" SET "name" = ?, "n" = ? WHERE "id" = ?"#,
        ),
    ] {
        let db = Db::new(dialect);
        db.table("t", &[("id", "int8"), ("name", "text"), ("n", "int4")]);
        let mut task = db.task(&[
            ("insert.mode", "update"),
            ("pk.mode", "record_value"),
            ("pk.fields", "id"),
        ]);
        let records = lines(&[
            r#"{"id":2,"name":"new","n":2}"#.into(),
            r#"{"id":99,"name":"ghost","n":99}"#.into(),
        ]);
        assert!(bad(&put(&mut task, &records)).is_empty());
        let writes = db.writes();
        assert_eq!(writes.len(), 1, "{dialect:?}: {:?}", db.sql.statements());
        let SqlCall::ExecuteBatch { statement, params } = &writes[0] else {
            panic!("not a batch: {:?}", writes[0]);
        };
        assert_eq!(statement, sql);
        assert_eq!(
            params[1],
            [
                Value::Text("ghost".into()),
                Value::Integer(99),
                Value::Integer(99)
            ]
        );
    }
}

/// Keyed records and tombstones: keys as plain JSON and as JsonConverter
/// envelopes.
fn keyed() -> Vec<Record> {
    let envelope_key = |id: i64| {
        format!(
            r#"{{"schema":{{"type":"struct","fields":[{{"field":"id","type":"int32","optional":false}}],"optional":false}},"payload":{{"id":{id}}}}}"#
        )
    };
    let record = |offset, key: String, value: Option<&str>| {
        let r = Record::new("t", offset).key(key);
        match value {
            Some(v) => r.value(v),
            None => r,
        }
    };
    vec![
        record(0, r#"{"id":1}"#.into(), Some(r#"{"name":"a","n":1}"#)),
        record(1, envelope_key(3), Some(r#"{"name":"c","n":3}"#)),
        record(2, r#"{"id":2}"#.into(), None),
        record(3, envelope_key(3), None),
        record(4, r#"{"id":9}"#.into(), Some(r#"{"name":"end","n":9}"#)),
    ]
}

#[test]
fn tombstones_delete_by_key_in_order_or_are_skipped() {
    let db = Db::new(Dialect::Mysql);
    db.table("t", &[("id", "int"), ("name", "varchar(20)"), ("n", "int")]);
    let mut deleting = db.task(&[
        ("insert.mode", "upsert"),
        ("pk.mode", "record_key"),
        ("delete.enabled", "true"),
    ]);
    assert!(bad(&put(&mut deleting, &keyed())).is_empty());
    let writes = db.writes();
    let statements: Vec<&str> = writes.iter().map(SqlCall::statement).collect();
    assert_eq!(statements.len(), 3, "{statements:?}");
    assert!(statements[0].starts_with(
        "INSERT INTO `t` (`id`, `name`, `n`) VALUES (?, ?, ?), (?, ?, ?) ON DUPLICATE KEY"
    ));
    assert_eq!(statements[1], "DELETE FROM `t` WHERE `id` = ?");
    assert!(statements[2].starts_with("INSERT INTO `t`"));
    assert!(matches!(
        &writes[1],
        SqlCall::ExecuteBatch { params, .. } if *params == [vec![Value::Integer(2)], vec![Value::Integer(3)]]
    ));

    db.sql.clear();
    let mut skipping = db.task(&[
        ("insert.mode", "upsert"),
        ("pk.mode", "record_key"),
        ("pk.fields", "id"),
    ]);
    assert!(bad(&put(&mut skipping, &keyed())).is_empty());
    assert!(db.sql.statements().iter().all(|s| !s.starts_with("DELETE")));
    assert_eq!(testing::counter("tombstones_skipped"), 2);
}

#[test]
fn a_primitive_key_is_one_column_named_by_pk_fields_or_connect_key() {
    let db = Db::new(Dialect::Sqlite);
    db.table("t", &[("__connect_key", "INTEGER"), ("name", "TEXT")]);
    let mut task = db.task(&[("insert.mode", "upsert"), ("pk.mode", "record_key")]);
    let records = [Record::new("t", 0).key("8").value(r#"{"name":"b"}"#)];
    assert!(bad(&put(&mut task, &records)).is_empty());
    let SqlCall::ExecuteBatch { statement, params } = &db.writes()[0] else {
        panic!("{:?}", db.sql.statements());
    };
    assert!(
        statement.contains(r#"ON CONFLICT ("__connect_key")"#),
        "{statement}"
    );
    assert_eq!(params[0], [Value::Integer(8), Value::Text("b".into())]);
}

/// Creates `t` with `columns` when a `CREATE TABLE` runs.
fn create_on_demand(db: &Db, columns: &'static [(&'static str, &'static str)]) {
    let catalog = Rc::clone(&db.tables);
    db.sql.answer(move |call| {
        if let SqlCall::Execute { statement, .. } = call {
            if statement.starts_with("CREATE TABLE") {
                let columns = columns
                    .iter()
                    .map(|(n, t)| (n.to_string(), t.to_string()))
                    .collect();
                catalog.borrow_mut().insert("t".into(), columns);
            }
        }
        None
    });
}

#[test]
fn auto_create_types_columns_from_the_envelope_schema() {
    let db = Db::new(Dialect::Postgres);
    create_on_demand(
        &db,
        &[
            ("id", "int8"),
            ("price", "numeric"),
            ("born", "date"),
            ("seen", "timestamp"),
            ("small", "int2"),
            ("name", "text"),
        ],
    );
    let mut task = db.task(&[
        ("insert.mode", "upsert"),
        ("pk.mode", "record_value"),
        ("pk.fields", "id"),
        ("auto.create", "true"),
    ]);
    let schema = r#"{"type":"struct","fields":[
        {"field":"id","type":"int64","optional":false},
        {"field":"price","type":"bytes","optional":true,"name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"}},
        {"field":"born","type":"int32","optional":true,"name":"org.apache.kafka.connect.data.Date"},
        {"field":"seen","type":"int64","optional":true,"name":"org.apache.kafka.connect.data.Timestamp"},
        {"field":"small","type":"int16","optional":false},
        {"field":"name","type":"string","optional":true}]}"#;
    let value = format!(
        r#"{{"schema":{schema},"payload":{{"id":2,"price":"/w==","born":19844,"seen":1000,"small":-3,"name":null}}}}"#
    );
    assert!(bad(&put(&mut task, &lines(&[value]))).is_empty());
    let statements = db.sql.statements();
    let create = statements.iter().find(|s| s.starts_with("CREATE")).unwrap();
    assert_eq!(
        create,
        r#"CREATE TABLE IF NOT EXISTS "t" ("id" BIGINT NOT NULL, "price" NUMERIC, "born" DATE, "seen" TIMESTAMP, "small" SMALLINT NOT NULL, "name" TEXT, PRIMARY KEY ("id"))"#
    );
    let Some(SqlCall::Copy { data, .. }) = db
        .writes()
        .into_iter()
        .find(|c| matches!(c, SqlCall::Copy { .. }))
    else {
        panic!("no COPY: {statements:?}");
    };
    assert_eq!(
        String::from_utf8_lossy(&data),
        "2\t-0.01\t2024-05-01\t1970-01-01T00:00:01.000\t-3\t\\N\n"
    );
    assert!(testing::logs()
        .iter()
        .any(|(_, l)| l.starts_with("created table `t`")));
}

#[test]
fn auto_create_infers_column_types_from_plain_json() {
    let db = Db::new(Dialect::Mysql);
    create_on_demand(
        &db,
        &[
            ("code", "varchar(255)"),
            ("n", "bigint(20)"),
            ("x", "double"),
            ("flag", "tinyint(1)"),
            ("doc", "longtext"),
        ],
    );
    let mut task = db.task(&[
        ("pk.mode", "record_value"),
        ("pk.fields", "code"),
        ("auto.create", "true"),
    ]);
    let records = lines(&[r#"{"code":"a","n":1,"x":1.5,"flag":true,"doc":{"k":[1,2]}}"#.into()]);
    assert!(bad(&put(&mut task, &records)).is_empty());
    assert_eq!(
        db.sql.statements().iter().find(|s| s.starts_with("CREATE")).unwrap(),
        "CREATE TABLE IF NOT EXISTS `t` (`code` VARCHAR(255) NOT NULL, `n` BIGINT, `x` DOUBLE, `flag` BOOLEAN, `doc` JSON, PRIMARY KEY (`code`))"
    );

    let db = Db::new(Dialect::Sqlite);
    create_on_demand(
        &db,
        &[("n", "INTEGER"), ("half", "REAL"), ("label", "TEXT")],
    );
    let mut task = db.task(&[("auto.create", "true")]);
    let records = lines(&[r#"{"n":1,"half":1.5,"label":"l1"}"#.into()]);
    assert!(bad(&put(&mut task, &records)).is_empty());
    assert_eq!(
        db.sql
            .statements()
            .iter()
            .find(|s| s.starts_with("CREATE"))
            .unwrap(),
        r#"CREATE TABLE IF NOT EXISTS "t" ("n" INTEGER, "half" REAL, "label" TEXT)"#
    );
}

/// Five bad records among twenty: a type mismatch, not JSON, a CHECK
/// violation, a field with no column and a duplicate key.
fn bad_records_case(dialect: Dialect) {
    let db = Db::new(dialect);
    match dialect {
        Dialect::Mysql => db.table(
            "t",
            &[
                ("id", "int(11)"),
                ("qty", "int(11)"),
                ("name", "varchar(20)"),
            ],
        ),
        _ => db.table(
            "t",
            &[("id", "int4"), ("qty", "int4"), ("name", "varchar(20)")],
        ),
    }
    // The database refuses a negative quantity and a second id 1.
    db.reject(|v| *v == Value::Integer(-5) || *v == Value::Text("duplicate".into()));
    let values: Vec<String> = (0..20)
        .map(|i| match i {
            3 => r#"{"id":3,"qty":"many","name":"x"}"#.to_owned(),
            7 => "this is not JSON".to_owned(),
            11 => r#"{"id":11,"qty":-5,"name":"negative"}"#.to_owned(),
            13 => r#"{"id":13,"qty":1,"colour":"red"}"#.to_owned(),
            17 => r#"{"id":1,"qty":1,"name":"duplicate"}"#.to_owned(),
            i => format!(r#"{{"id":{i},"qty":{i},"name":"n{i}"}}"#),
        })
        .collect();
    let mut task = db.task(&[]);
    let results = put(&mut task, &lines(&values));
    let found = bad(&results);
    let at: Vec<usize> = found.iter().map(|(i, _)| *i).collect();
    assert_eq!(at, [3, 7, 11, 13, 17], "{dialect:?}: {found:?}");
    let expected = [
        "t[0]@3: table `t`: field `qty`: \"many\" does not fit column type",
        "t[0]@7: table `t`: the value is not JSON",
        "t[0]@11: table `t`: rejected: violates check constraint",
        "t[0]@13: table `t`: no column for field `colour`",
        "t[0]@17: table `t`: rejected: violates check constraint",
    ];
    for ((_, reason), start) in found.iter().zip(expected) {
        assert!(
            reason.starts_with(start),
            "{dialect:?}: {reason:?} does not start with {start:?}"
        );
    }
    assert!(found.iter().all(|(_, r)| !r.is_empty()));
}

#[test]
fn bad_records_name_the_record_the_table_and_why_in_every_dialect() {
    bad_records_case(Dialect::Postgres);
    bad_records_case(Dialect::Mysql);
    bad_records_case(Dialect::Sqlite);
}

/// 3,000 records into PostgreSQL, one of them refused: the `COPY` holding
/// it fails as a whole and its rows go again by multi-row `INSERT`s, whose
/// failing chunk goes one row at a time.
fn copy_with_a_bad_row(settings: &[(&str, &str)], copy: &str, insert_tail: &str) {
    let db = Db::new(Dialect::Postgres);
    db.table("t", &[("id", "int8"), ("qty", "int4"), ("name", "text")]);
    db.reject(|v| *v == Value::Integer(-1));
    let values: Vec<String> = (0..3_000)
        .map(|i| {
            let qty = if i == 2_500 { -1 } else { i };
            format!(r#"{{"id":{i},"qty":{qty},"name":"n{i}"}}"#)
        })
        .collect();
    let mut task = db.task(settings);
    let found = bad(&put(&mut task, &lines(&values)));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, 2_500);
    assert!(
        found[0].1.starts_with("t[0]@2500: table `t`: rejected:"),
        "{}",
        found[0].1
    );
    let statements = db.sql.statements();
    let writes: Vec<&String> = statements
        .iter()
        .filter(|s| !s.starts_with("SELECT"))
        .collect();
    assert!(writes[0].starts_with(copy), "{writes:?}");
    let multi_row: Vec<&&String> = writes.iter().filter(|s| s.contains("), (")).collect();
    assert_eq!(multi_row.len(), 2, "chunks of 2,000 and 1,000 rows");
    assert!(
        multi_row.iter().all(|s| s.ends_with(insert_tail)),
        "{}",
        multi_row[0]
    );
    let one_by_one = writes
        .iter()
        .filter(|s| !s.contains("), (") && s.contains("VALUES"))
        .count();
    assert_eq!(one_by_one, 1_000, "the failing chunk again, row by row");
}

#[test]
fn a_refused_copy_goes_again_by_insert_to_find_the_bad_row() {
    copy_with_a_bad_row(&[], r#"COPY "t" ("id", "qty", "name") FROM STDIN"#, ")");
    copy_with_a_bad_row(
        &[
            ("insert.mode", "upsert"),
            ("pk.mode", "record_value"),
            ("pk.fields", "id"),
        ],
        r#"COPY pg_temp."tributary_stage""#,
        r#"ON CONFLICT ("id") DO UPDATE SET "qty" = EXCLUDED."qty", "name" = EXCLUDED."name""#,
    );
}

#[test]
fn a_copy_starts_while_a_put_decodes_and_a_late_bad_row_still_goes_alone() {
    let db = Db::new(Dialect::Postgres);
    db.table("t", &[("id", "int8"), ("qty", "int4"), ("name", "text")]);
    db.reject(|v| *v == Value::Integer(-1));
    let values: Vec<String> = (0..2_000)
        .map(|i| {
            let qty = if i == 1_900 { -1 } else { i };
            format!(r#"{{"id":{i},"qty":{qty},"name":"tab\there {i}"}}"#)
        })
        .collect();
    let mut task = db.task(&[]);
    let found = bad(&put(&mut task, &lines(&values)));
    assert_eq!(found.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [1_900]);
    // The COPY began once 256 rows were decoded, and took them in pieces.
    assert!(testing::counter("rows_streamed") >= 256);
    let calls = db.sql.calls();
    let begun = calls
        .iter()
        .position(|c| matches!(c, SqlCall::CopyBegin { .. }))
        .unwrap();
    let SqlCall::Copy { data, .. } = calls
        .iter()
        .find(|c| matches!(c, SqlCall::Copy { .. }))
        .unwrap()
    else {
        unreachable!()
    };
    assert_eq!(data.iter().filter(|b| **b == b'\n').count(), 2_000);
    assert!(
        String::from_utf8_lossy(data).contains("tab\\there 5\n"),
        "tabs escaped"
    );
    assert!(
        calls[begun + 1..]
            .iter()
            .any(|c| c.statement().contains("VALUES")),
        "INSERTs after the failed COPY"
    );
}

#[test]
fn a_missing_table_fails_the_task_naming_it() {
    let db = Db::new(Dialect::Postgres);
    let mut task = db.task(&[]);
    let batch = testing::sink_batch(&lines(&[r#"{"id":1}"#.into()]));
    match task.put(&batch) {
        Err(TaskError::Fatal(m)) => assert_eq!(
            m,
            "table `t` does not exist in the database of connection `default` (auto.create is false): create it, or set auto.create=true"
        ),
        other => panic!("expected a fatal error, got {other:?}"),
    }
    assert!(db.writes().is_empty());
}

#[test]
fn a_statement_error_reads_the_columns_again_once_then_fails_with_message_and_statement() {
    let db = Db::new(Dialect::Postgres);
    db.table("t", &[("id", "int8"), ("twice", "int8")]);
    db.sql.answer(|call| {
        matches!(call, SqlCall::CopyBegin { .. }).then(|| {
            Answer::Fail(SqlError::Statement(
                "connection `default`: column \"twice\" is a generated column".into(),
            ))
        })
    });
    let mut task = db.task(&[]);
    let batch = testing::sink_batch(&lines(&[r#"{"id":1,"twice":5}"#.into()]));
    let Err(TaskError::Fatal(m)) = task.put(&batch) else {
        panic!("expected a fatal error");
    };
    assert_eq!(
        m,
        "table `t`: connection `default`: column \"twice\" is a generated column; statement: COPY \"t\" (\"id\", \"twice\") FROM STDIN"
    );
    let catalog_reads = db
        .sql
        .calls()
        .iter()
        .filter(|c| matches!(c, SqlCall::Query { .. }))
        .count();
    assert_eq!(
        catalog_reads, 2,
        "read once, then once again after the error"
    );
}

#[test]
fn columns_changed_while_running_are_read_again() {
    let db = Db::new(Dialect::Postgres);
    db.table("t", &[("id", "int8"), ("name", "text"), ("extra", "text")]);
    let mut task = db.task(&[]);
    assert!(bad(&put(
        &mut task,
        &lines(&[r#"{"id":1,"name":"a","extra":"x"}"#.into()])
    ))
    .is_empty());
    // Change the columns under the task: its COPY naming `extra` fails.
    db.table("t", &[("id", "int8"), ("name", "text"), ("note", "text")]);
    db.sql.answer(|call| {
        (matches!(call, SqlCall::CopyBegin { load } if load.copy.contains("\"extra\""))).then(
            || {
                Answer::Fail(SqlError::Statement(
                    "column \"extra\" does not exist".into(),
                ))
            },
        )
    });
    db.sql.clear();
    let records = [
        Record::new("t", 1).value(r#"{"id":2,"name":"b","extra":"y"}"#),
        Record::new("t", 2).value(r#"{"id":3,"name":"c","note":"new"}"#),
    ];
    let found = bad(&put(&mut task, &records));
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0],
        (0, "t[0]@1: table `t`: no column for field `extra`".into())
    );
    let copies: Vec<String> = db
        .writes()
        .iter()
        .filter_map(|c| match c {
            SqlCall::Copy { data, .. } => Some(String::from_utf8_lossy(data).into_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(copies, ["3\tc\tnew\n"]);
}

#[test]
fn a_put_retried_after_the_database_went_away_writes_each_record_once() {
    let db = Db::new(Dialect::Mysql);
    db.table("t", &[("id", "int"), ("name", "text"), ("note", "text")]);
    // Records alternate between two field sets: each run is its own group.
    let values: Vec<String> = (0..6)
        .map(|i| match i / 2 % 2 {
            0 => format!(r#"{{"id":{i},"name":"r{i}"}}"#),
            _ => format!(r#"{{"id":{i},"name":"r{i}","note":"n"}}"#),
        })
        .collect();
    // The second statement finds the database away, once.
    let seen = Rc::new(Cell::new(0));
    let count = Rc::clone(&seen);
    db.sql.answer(move |call| {
        if !matches!(call, SqlCall::Execute { .. }) {
            return None;
        }
        count.set(count.get() + 1);
        (count.get() == 2).then(|| Answer::Fail(SqlError::Unavailable("connection reset".into())))
    });
    let mut task = db.task(&[]);
    let batch = testing::sink_batch(&lines(&values));
    assert!(
        matches!(task.put(&batch), Err(TaskError::Retriable(m)) if m.contains("connection reset"))
    );
    assert!(bad(&acceptance::put(&mut task, &batch).unwrap()).is_empty());
    let mut ids: Vec<i64> = Vec::new();
    for (i, call) in db.writes().iter().enumerate() {
        if let SqlCall::Execute { params, .. } = call {
            if i != 1 {
                ids.extend(params.iter().filter_map(|v| match v {
                    Value::Integer(n) => Some(*n),
                    _ => None,
                }));
            }
        }
    }
    ids.sort();
    assert_eq!(ids, [0, 1, 2, 3, 4, 5], "every record written once");
}
