//! `database-sink`: writes records into tables of PostgreSQL, MySQL/MariaDB
//! or SQLite with Kafka Connect JDBC sink semantics, over the worker's `sql`
//! capability (connection `default`).
//!
//! This module owns the sink's description and config checks; the decoding
//! of records (plain JSON objects or JsonConverter envelopes, key columns
//! from the record key or from value fields, tombstones); table
//! auto-creation from the first record; and the batched statements:
//!
//! - PostgreSQL: one `COPY … FROM STDIN` of a group's rows through the
//!   worker's `copy-writer` (upsert: into a temporary table, then `INSERT …
//!   SELECT … ON CONFLICT DO UPDATE`); when the database rejects the data,
//!   the rows go again the MySQL way below. In a `put` whose records all go
//!   to one table, an insert group's `COPY` starts while its records are
//!   still decoded, and takes their rows in pieces: the database parses
//!   one piece while the task decodes the next;
//! - MySQL/MariaDB: one multi-row `INSERT … VALUES (…),(…)` per chunk
//!   (upsert: `ON DUPLICATE KEY UPDATE`), falling back to one row at a time
//!   when the database rejects the data of a chunk, so only the records at
//!   fault become bad records;
//! - SQLite, `update` mode and deletes: one `execute-batch` (one
//!   transaction, statement prepared once) of single-row statements.
//!
//! Consecutive records of a table with the same operation and the same
//! fields are written together; the order of a table's writes and deletes
//! is the records' order. Everything is written in `put`. When a `put`
//! fails retriably (the database went away), the task remembers which of
//! its records were written, so the worker's retry of the batch writes each
//! record once.

mod decode;
mod settings;
mod statement;
mod table;
mod write;

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use serde_json::Value as Json;
use tributary_sdk::log::counter_add;
use tributary_sdk::sql::{Connection, Dialect, SqlCapability, SqlError, Value};
use tributary_sdk::{
    debug, Config, ConfigIssue, Description, Key, PutResult, Sink, SinkBatch, SinkTask, TaskError,
};

use crate::dialect::{self, ColumnInfo};
use settings::Settings;

/// The connection the sink writes through.
const CONNECTION: &str = "default";
/// Most parameters in one multi-row statement (both PostgreSQL and MySQL
/// stop at 65,535).
const MAX_PARAMS: usize = 60_000;
/// Most rows in one multi-row statement.
const MAX_ROWS: usize = 2_000;
/// `COPY` text is written to the database in pieces of about this size.
const PIECE: usize = 64 << 10;
/// An insert group under way converts and sends its rows when this many
/// have come since the last time.
const STREAM_ROWS: usize = 256;
/// The column of a primitive record key when `pk.fields` names none (Kafka
/// Connect's name).
const PRIMITIVE_KEY_COLUMN: &str = "__connect_key";

/// The `database-sink` connector.
pub struct DatabaseSink;

impl Sink for DatabaseSink {
    type Task = DatabaseSinkTask;

    fn describe() -> Description {
        Description::sink("database-sink", crate::VERSION)
            .summary("Writes records into database tables (PostgreSQL, MySQL/MariaDB, SQLite): insert, upsert, update, delete on tombstone.")
            // Rows come from keys and values: headers are not read.
            .key(Key::string("insert.mode").default("insert").doc(
                "`insert` (plain INSERT), `upsert` (insert, or update the row with the same primary key) or `update` (UPDATE the row with the record's key). `upsert` and `update` need `pk.mode`."))
            .key(Key::string("pk.mode").default("none").doc(
                "Where the primary key columns come from: `none`, `record_key` (the record key: the fields of a JSON object, or one column for a primitive key) or `record_value` (fields of the value)."))
            .key(Key::list("pk.fields").default("").doc(
                "The primary key columns. `record_key`: the key's fields to use (all when empty), or the one column of a primitive key (default `__connect_key`). `record_value`: the value's fields that form the key (all when empty)."))
            .key(Key::boolean("delete.enabled").default("false").doc(
                "Delete the row with the record's key on a tombstone (a null value); needs `pk.mode=record_key`. When false, tombstones are skipped (counter `tombstones_skipped`)."))
            .key(Key::string("table.name.format").default("${topic}").doc(
                "The table a record goes to; `${topic}` is replaced by the record's topic."))
            .key(Key::boolean("auto.create").default("false").doc(
                "Create a missing table from the first record written to it: column types from the JsonConverter schema when the record has one, else from the JSON values; the key columns become the primary key."))
    }

    fn validate(config: &Config) -> Vec<ConfigIssue> {
        Settings::parse(config).err().unwrap_or_default()
    }
}

/// What a record asks of its table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Insert,
    Upsert,
    Update,
    Delete,
}

/// Where a record is in Kafka, for messages: `topic[partition]@offset`
/// (formatted only when a message needs it).
#[derive(Clone)]
struct At {
    topic: Rc<str>,
    partition: i32,
    offset: i64,
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}[{}]@{}", self.topic, self.partition, self.offset)
    }
}

/// One record waiting to be written.
struct Row {
    /// Its position in the batch.
    index: usize,
    at: At,
    fields: Vec<(String, Json)>,
}

/// Consecutive records of one table with the same operation and fields.
struct Group<W> {
    table: String,
    op: Op,
    /// The field names of every row, in order.
    names: Vec<String>,
    /// The names among `names` that form the key.
    key: Vec<String>,
    rows: Vec<Row>,
    /// The group's `COPY`, when it started before the group was complete.
    copying: Copying<W>,
}

/// Whether an insert group's `COPY` runs while its records are decoded.
enum Copying<W> {
    /// Not (yet): the group is written when it is complete.
    No,
    /// It runs: rows up to `done` are converted, `prepared` and sent.
    Open(Box<OpenCopy<W>>),
    /// It could not start; the group is written when it is complete.
    Off,
}

/// A `COPY` that runs while its group grows.
struct OpenCopy<W> {
    writer: W,
    columns: Vec<ColumnInfo>,
    /// The rows converted so far (kept for the `INSERT` way, should the
    /// database reject the data).
    prepared: Vec<Prepared>,
    /// How many of the group's rows were converted.
    done: usize,
    /// `COPY` text not sent yet.
    text: Vec<u8>,
    /// The load's error, once a `write` returned one.
    failed: Option<SqlError>,
}

impl<W> Group<W> {
    fn new(table: String, op: Op, key: Vec<String>, row: Row) -> Group<W> {
        Group {
            table,
            op,
            names: row.fields.iter().map(|(n, _)| n.clone()).collect(),
            key,
            rows: vec![row],
            copying: Copying::No,
        }
    }

    /// Rows not converted yet by a `COPY` under way.
    fn unconverted(&self) -> usize {
        match &self.copying {
            Copying::Open(c) => self.rows.len() - c.done,
            Copying::No | Copying::Off => self.rows.len(),
        }
    }

    /// Whether `row` can join this group.
    fn fits(&self, op: Op, key: &[String], row: &Row) -> bool {
        self.op == op
            && self.key == key
            && self.names.len() == row.fields.len()
            && self.names.iter().zip(&row.fields).all(|(a, (b, _))| a == b)
    }
}

/// A row converted to the SQL values of its columns.
struct Prepared {
    index: usize,
    at: At,
    values: Vec<Value>,
}

/// A statement that failed in a way that is not the data's fault; rows from
/// record `first_unwritten` on were not written.
struct Failure {
    first_unwritten: usize,
    error: SqlError,
    sql: String,
}

/// A bad record's result, naming the record and its table.
fn bad(at: &At, table: &str, reason: &str) -> PutResult {
    PutResult::BadRecord(format!("{at}: table `{table}`: {reason}"))
}

/// What became of the records of one `put` so far.
struct Outcome {
    results: Vec<PutResult>,
    /// The records (by position) whose statements the database took.
    written: Vec<usize>,
}

impl Outcome {
    fn new(records: usize) -> Outcome {
        Outcome {
            results: vec![PutResult::Ok; records],
            written: Vec::new(),
        }
    }

    fn bad(&mut self, index: usize, at: &At, table: &str, reason: &str) {
        self.results[index] = bad(at, table, reason);
    }

    fn wrote<'a>(&mut self, rows: impl IntoIterator<Item = &'a Prepared>) {
        self.written.extend(rows.into_iter().map(|p| p.index));
    }
}

/// Where a record is in Kafka: topic, partition, offset.
type Place = (String, i32, i64);

/// A task error for a statement on `table`: retriable when the database
/// was away or refused the credentials, fatal otherwise.
fn task_error(table: &str, sql: &str, e: &SqlError) -> TaskError {
    let text = format!(
        "table `{table}`: {}; statement: {}",
        e.message(),
        dialect::brief(sql)
    );
    if e.is_transient() {
        TaskError::Retriable(text)
    } else {
        TaskError::Fatal(text)
    }
}

/// One task of a `database-sink`.
pub struct DatabaseSinkTask<D = Connection> {
    db: D,
    dialect: Dialect,
    settings: Settings,
    /// The columns of every table written so far, from the catalog.
    tables: HashMap<String, Vec<ColumnInfo>>,
    /// Tables whose columns were read again during this `put` (at most
    /// once each).
    reloaded: HashSet<String>,
    /// Records written by a `put` that then failed retriably: the worker
    /// offers the batch again, and these are not written twice (which
    /// would make duplicate-key errors of them in insert mode).
    written_before: HashSet<Place>,
}

impl<D: SqlCapability + 'static> SinkTask for DatabaseSinkTask<D> {
    fn open(config: Config) -> Result<Self, TaskError> {
        let settings = Settings::parse(&config).map_err(|issues| {
            let text: Vec<String> = issues
                .iter()
                .map(|i| format!("`{}`: {}", i.key, i.message))
                .collect();
            TaskError::Fatal(text.join("; "))
        })?;
        let db = D::open(CONNECTION).map_err(|e| {
            let text = format!("cannot open connection `{CONNECTION}`: {}", e.message());
            if e.is_transient() {
                TaskError::Retriable(text)
            } else {
                TaskError::Fatal(text)
            }
        })?;
        let dialect = db.dialect();
        debug!("writing through connection `{CONNECTION}` ({dialect:?}), {settings:?}");
        Ok(DatabaseSinkTask {
            db,
            dialect,
            settings,
            tables: HashMap::new(),
            reloaded: HashSet::new(),
            written_before: HashSet::new(),
        })
    }

    fn put(&mut self, batch: &SinkBatch) -> Result<Vec<PutResult>, TaskError> {
        self.reloaded.clear();
        let mut out = Outcome::new(batch.len());
        match self.write_batch(batch, &mut out) {
            Ok(()) => {
                self.written_before.clear();
                Ok(out.results)
            }
            Err(e) => {
                if matches!(e, TaskError::Retriable(_)) {
                    let places = out.written.iter().map(|&i| place(batch, i));
                    self.written_before.extend(places);
                }
                Err(e)
            }
        }
    }

    /// Every record was written by `put` before it returned, so there is
    /// nothing left to write here; the worker commits the Kafka offsets
    /// after this returns.
    fn flush(&mut self) -> Result<(), TaskError> {
        Ok(())
    }
}

/// Where record `index` of `batch` is in Kafka.
fn place(batch: &SinkBatch, index: usize) -> Place {
    let r = batch.get(index);
    (r.topic.to_owned(), r.partition, r.offset)
}

impl<D: SqlCapability> DatabaseSinkTask<D> {
    /// Decodes the records, groups them and writes the groups.
    fn write_batch(&mut self, batch: &SinkBatch, out: &mut Outcome) -> Result<(), TaskError> {
        // At most one open group per table; a table's records keep their order.
        let mut pending: Vec<Group<D::Writer>> = Vec::new();
        let mut skipped = 0;
        // Each topic's name (shared by its records' `At`s) and table.
        let topics: Vec<(Rc<str>, String)> = batch
            .topics()
            .iter()
            .map(|t| (Rc::from(t.as_str()), self.settings.table_for(t)))
            .collect();
        // A `COPY` may run while records are decoded only when no other
        // table's columns may have to be read meanwhile (the load holds a
        // pooled connection, and the pool may have no other).
        let early_copy =
            self.dialect == Dialect::Postgres && topics.windows(2).all(|w| w[0].1 == w[1].1);
        for (index, record) in batch.records().enumerate() {
            if !self.written_before.is_empty() && self.written_before.contains(&place(batch, index))
            {
                continue;
            }
            let (topic, table) = &topics[batch.topic_index(index)];
            let at = At {
                topic: topic.clone(),
                partition: record.partition,
                offset: record.offset,
            };
            let decoded = match self.decode(&record) {
                Ok(Some(d)) => d,
                Ok(None) => {
                    skipped += 1;
                    continue;
                }
                Err(reason) => {
                    out.bad(index, &at, table, &reason);
                    continue;
                }
            };
            if !self.ensure_table(table, &decoded)? {
                debug!("{at}: no table `{table}` yet, so no row to delete");
                continue;
            }
            let row = Row {
                index,
                at,
                fields: decoded.fields,
            };
            let at = match pending.iter().position(|g| g.table == *table) {
                Some(i) if pending[i].fits(decoded.op, &decoded.key, &row) => {
                    pending[i].rows.push(row);
                    i
                }
                Some(i) => {
                    let next = Group::new(table.clone(), decoded.op, decoded.key, row);
                    let full = std::mem::replace(&mut pending[i], next);
                    self.write(full, out)?;
                    i
                }
                None => {
                    pending.push(Group::new(table.clone(), decoded.op, decoded.key, row));
                    pending.len() - 1
                }
            };
            let group = &mut pending[at];
            if early_copy && group.op == Op::Insert && group.unconverted() >= STREAM_ROWS {
                self.copy_some(group, out);
            }
        }
        for group in pending {
            self.write(group, out)?;
        }
        if skipped > 0 {
            counter_add("tombstones_skipped", skipped);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
