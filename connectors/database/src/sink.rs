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

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use base64::Engine;
use serde_json::{Map, Value as Json};
use tributary_sdk::log::counter_add;
use tributary_sdk::sql::{
    copy_text_row, Connection, CopyLoad, CopyWriter, Dialect, SqlError, Value,
};
use tributary_sdk::{
    config_key as key, debug, info, Config, ConfigIssue, ConfigType, ConnectorKind, Description,
    PutResult, Sink, SinkBatch, SinkRecord, SinkTask, TaskError,
};

use crate::dialect::{self, ColumnInfo, Kind};
use crate::json;

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

/// Kafka Connect's logical types, by schema name.
const DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";
const DATE: &str = "org.apache.kafka.connect.data.Date";
const TIME: &str = "org.apache.kafka.connect.data.Time";
const TIMESTAMP: &str = "org.apache.kafka.connect.data.Timestamp";

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The `database-sink` connector.
pub struct DatabaseSink;

impl Sink for DatabaseSink {
    type Task = DatabaseSinkTask;

    fn describe() -> Description {
        Description {
            name: "database-sink".into(),
            version: crate::VERSION.into(),
            kind: ConnectorKind::Sink,
            summary: "Writes records into database tables (PostgreSQL, MySQL/MariaDB, SQLite): insert, upsert, update, delete on tombstone.".into(),
            reads_headers: false, // rows come from keys and values
            config: vec![
                key("insert.mode", ConfigType::String, Some("insert"),
                    "`insert` (plain INSERT), `upsert` (insert, or update the row with the same primary key) or `update` (UPDATE the row with the record's key). `upsert` and `update` need `pk.mode`."),
                key("pk.mode", ConfigType::String, Some("none"),
                    "Where the primary key columns come from: `none`, `record_key` (the record key: the fields of a JSON object, or one column for a primitive key) or `record_value` (fields of the value)."),
                key("pk.fields", ConfigType::List, Some(""),
                    "The primary key columns. `record_key`: the key's fields to use (all when empty), or the one column of a primitive key (default `__connect_key`). `record_value`: the value's fields that form the key (all when empty)."),
                key("delete.enabled", ConfigType::Boolean, Some("false"),
                    "Delete the row with the record's key on a tombstone (a null value); needs `pk.mode=record_key`. When false, tombstones are skipped (counter `tombstones_skipped`)."),
                key("table.name.format", ConfigType::String, Some("${topic}"),
                    "The table a record goes to; `${topic}` is replaced by the record's topic."),
                key("auto.create", ConfigType::Boolean, Some("false"),
                    "Create a missing table from the first record written to it: column types from the JsonConverter schema when the record has one, else from the JSON values; the key columns become the primary key."),
            ],
        }
    }

    fn validate(config: &Config) -> Vec<ConfigIssue> {
        Settings::parse(config).err().unwrap_or_default()
    }
}

/// `insert.mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum InsertMode {
    Insert,
    Upsert,
    Update,
}

/// `pk.mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PkMode {
    None,
    RecordKey,
    RecordValue,
}

/// The sink's config, checked.
#[derive(Clone, Debug)]
struct Settings {
    insert_mode: InsertMode,
    pk_mode: PkMode,
    pk_fields: Vec<String>,
    delete_enabled: bool,
    table_format: String,
    auto_create: bool,
}

impl Settings {
    /// The settings, or every problem with them (each naming its key).
    fn parse(config: &Config) -> Result<Settings, Vec<ConfigIssue>> {
        let mut issues = Vec::new();
        let mut issue = |key: &str, message: String| {
            issues.push(ConfigIssue {
                key: key.into(),
                message,
            })
        };
        let insert_mode = match config.get("insert.mode").unwrap_or("insert").trim() {
            "insert" => InsertMode::Insert,
            "upsert" => InsertMode::Upsert,
            "update" => InsertMode::Update,
            other => {
                issue(
                    "insert.mode",
                    format!("unknown mode {other:?}; use insert, upsert or update"),
                );
                InsertMode::Insert
            }
        };
        let pk_mode = match config.get("pk.mode").unwrap_or("none").trim() {
            "none" => PkMode::None,
            "record_key" => PkMode::RecordKey,
            "record_value" => PkMode::RecordValue,
            other => {
                issue(
                    "pk.mode",
                    format!("unknown mode {other:?}; use none, record_key or record_value"),
                );
                PkMode::None
            }
        };
        let pk_fields: Vec<String> = config
            .get("pk.fields")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(String::from)
            .collect();
        let mut boolean = |name: &str| match config.get(name).unwrap_or("false").trim() {
            "true" => true,
            "false" => false,
            other => {
                issue(name, format!("expects true or false, got {other:?}"));
                false
            }
        };
        let delete_enabled = boolean("delete.enabled");
        let auto_create = boolean("auto.create");
        let table_format = config
            .get("table.name.format")
            .unwrap_or("${topic}")
            .trim()
            .to_owned();
        if table_format.is_empty() {
            issue(
                "table.name.format",
                "must not be empty; `${topic}` names the table after the topic".into(),
            );
        }
        if insert_mode != InsertMode::Insert && pk_mode == PkMode::None {
            let mode = if insert_mode == InsertMode::Upsert {
                "upsert"
            } else {
                "update"
            };
            issue(
                "pk.mode",
                format!("insert.mode={mode} needs a primary key: set pk.mode to record_key or record_value"),
            );
        }
        if delete_enabled && pk_mode != PkMode::RecordKey {
            issue(
                "delete.enabled",
                "deletes find the row by the record key: delete.enabled=true needs pk.mode=record_key"
                    .into(),
            );
        }
        if pk_mode == PkMode::None && !pk_fields.is_empty() {
            issue(
                "pk.fields",
                "pk.fields is set but pk.mode is none: set pk.mode to record_key or record_value"
                    .into(),
            );
        }
        if !issues.is_empty() {
            return Err(issues);
        }
        Ok(Settings {
            insert_mode,
            pk_mode,
            pk_fields,
            delete_enabled,
            table_format,
            auto_create,
        })
    }

    /// The table records of `topic` go to.
    fn table_for(&self, topic: &str) -> String {
        self.table_format.replace("${topic}", topic)
    }

    /// The statement a record that is not a tombstone asks for.
    fn write_op(&self) -> Op {
        match self.insert_mode {
            InsertMode::Insert => Op::Insert,
            InsertMode::Upsert => Op::Upsert,
            InsertMode::Update => Op::Update,
        }
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

/// A record, decoded: its fields in column order and which of them form the
/// key, with the JsonConverter schemas it came with (for auto-create).
struct Decoded {
    op: Op,
    fields: Vec<(String, Json)>,
    /// The names of the key fields (all among `fields`).
    key: Vec<String>,
    key_schema: Option<Json>,
    /// The key was a primitive (one column, `key_schema` is its schema).
    primitive_key: bool,
    value_schema: Option<Json>,
}

impl Decoded {
    /// The JsonConverter schema of field `name`, if the record had one.
    fn schema_of(&self, name: &str) -> Option<&Json> {
        if self.key.iter().any(|k| k == name) {
            if self.primitive_key {
                return self.key_schema.as_ref();
            }
            if let Some(s) = self.key_schema.as_ref().and_then(|s| field_schema(s, name)) {
                return Some(s);
            }
        }
        self.value_schema
            .as_ref()
            .and_then(|s| field_schema(s, name))
    }
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
struct Group {
    table: String,
    op: Op,
    /// The field names of every row, in order.
    names: Vec<String>,
    /// The names among `names` that form the key.
    key: Vec<String>,
    rows: Vec<Row>,
    /// The group's `COPY`, when it started before the group was complete.
    copying: Copying,
}

/// Whether an insert group's `COPY` runs while its records are decoded.
enum Copying {
    /// Not (yet): the group is written when it is complete.
    No,
    /// It runs: rows up to `done` are converted, `prepared` and sent.
    Open(Box<OpenCopy>),
    /// It could not start; the group is written when it is complete.
    Off,
}

/// A `COPY` that runs while its group grows.
struct OpenCopy {
    writer: CopyWriter,
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

impl Group {
    fn new(table: String, op: Op, key: Vec<String>, row: Row) -> Group {
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
pub struct DatabaseSinkTask {
    db: Connection,
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

impl SinkTask for DatabaseSinkTask {
    fn open(config: Config) -> Result<Self, TaskError> {
        let settings = Settings::parse(&config).map_err(|issues| {
            let text: Vec<String> = issues
                .iter()
                .map(|i| format!("`{}`: {}", i.key, i.message))
                .collect();
            TaskError::Fatal(text.join("; "))
        })?;
        let db = Connection::open(CONNECTION).map_err(|e| {
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

impl DatabaseSinkTask {
    /// Decodes the records, groups them and writes the groups.
    fn write_batch(&mut self, batch: &SinkBatch, out: &mut Outcome) -> Result<(), TaskError> {
        // At most one open group per table; a table's records keep their order.
        let mut pending: Vec<Group> = Vec::new();
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

// Decoding records.
impl DatabaseSinkTask {
    /// The row a record asks for; `None` for a tombstone to skip; `Err` with
    /// the reason for a bad record.
    fn decode(&self, record: &SinkRecord) -> Result<Option<Decoded>, String> {
        let not_object = |v: &Json| format!("the value is {}, not a JSON object", json_kind(v));
        let (mut value, value_schema) = match &record.value {
            None => return self.decode_tombstone(record),
            Some(bytes) => match parse_document(bytes, "value")? {
                Document::Object(fields) if is_envelope(&fields) => {
                    let (payload, schema) = envelope_parts(fields);
                    match payload {
                        Json::Null => return self.decode_tombstone(record),
                        Json::Object(mut m) => {
                            apply_logical_types(&mut m, &schema);
                            (m.into_iter().collect::<Vec<_>>(), Some(schema))
                        }
                        other => return Err(not_object(&other)),
                    }
                }
                Document::Object(fields) => (fields, None),
                Document::Other(Json::Null) => return self.decode_tombstone(record),
                Document::Other(other) => return Err(not_object(&other)),
            },
        };
        let op = self.settings.write_op();
        let mut decoded = Decoded {
            op,
            fields: Vec::new(),
            key: Vec::new(),
            key_schema: None,
            primitive_key: false,
            value_schema,
        };
        match self.settings.pk_mode {
            PkMode::None => decoded.fields = value,
            PkMode::RecordValue => {
                decoded.key = self.value_key(&value)?;
                decoded.fields = value;
            }
            PkMode::RecordKey => {
                let (key_fields, key_schema, primitive) = self.record_key(record)?;
                decoded.key = key_fields.iter().map(|(n, _)| n.clone()).collect();
                value.retain(|(name, _)| !key_fields.iter().any(|(k, _)| k == name));
                decoded.fields = key_fields;
                decoded.fields.extend(value);
                decoded.key_schema = key_schema;
                decoded.primitive_key = primitive;
            }
        }
        Ok(Some(decoded))
    }

    /// A record with a null value: a delete by key, or skipped.
    fn decode_tombstone(&self, record: &SinkRecord) -> Result<Option<Decoded>, String> {
        if !self.settings.delete_enabled {
            return Ok(None);
        }
        let (fields, key_schema, primitive) = self.record_key(record)?;
        Ok(Some(Decoded {
            op: Op::Delete,
            key: fields.iter().map(|(n, _)| n.clone()).collect(),
            fields,
            key_schema,
            primitive_key: primitive,
            value_schema: None,
        }))
    }

    /// The key columns of `pk.mode=record_value`: `pk.fields`, or every field.
    fn value_key(&self, value: &[(String, Json)]) -> Result<Vec<String>, String> {
        if self.settings.pk_fields.is_empty() {
            return Ok(value.iter().map(|(n, _)| n.clone()).collect());
        }
        for f in &self.settings.pk_fields {
            match value.iter().find(|(n, _)| n == f).map(|(_, v)| v) {
                None => return Err(format!("the value has no field `{f}` (named in pk.fields)")),
                Some(Json::Null) => return Err(format!("key field `{f}` of the value is null")),
                Some(_) => {}
            }
        }
        Ok(self.settings.pk_fields.clone())
    }

    /// The key columns of `pk.mode=record_key`, with the key's schema and
    /// whether the key was a primitive.
    #[allow(clippy::type_complexity)]
    fn record_key(
        &self,
        record: &SinkRecord,
    ) -> Result<(Vec<(String, Json)>, Option<Json>, bool), String> {
        let no_key = || "the record has no key (pk.mode=record_key needs one)".to_string();
        let bytes = record.key.as_ref().ok_or_else(no_key)?;
        let (payload, schema) = unwrap_envelope(parse(bytes, "key")?);
        let pk = &self.settings.pk_fields;
        match payload {
            Json::Null => Err(no_key()),
            Json::Object(mut map) => {
                if let Some(s) = &schema {
                    apply_logical_types(&mut map, s);
                }
                let fields: Vec<(String, Json)> = if pk.is_empty() {
                    map.into_iter().collect()
                } else {
                    let mut fields = Vec::with_capacity(pk.len());
                    for f in pk {
                        let v = map.remove(f).ok_or_else(|| {
                            format!("the key has no field `{f}` (named in pk.fields)")
                        })?;
                        fields.push((f.clone(), v));
                    }
                    fields
                };
                if fields.is_empty() {
                    return Err("the key is an empty JSON object".into());
                }
                if let Some((f, _)) = fields.iter().find(|(_, v)| v.is_null()) {
                    return Err(format!("key field `{f}` is null"));
                }
                Ok((fields, schema, false))
            }
            primitive => {
                if pk.len() > 1 {
                    return Err(format!(
                        "the key is a single {}, but pk.fields names {} columns",
                        json_kind(&primitive),
                        pk.len()
                    ));
                }
                let name = pk
                    .first()
                    .cloned()
                    .unwrap_or_else(|| PRIMITIVE_KEY_COLUMN.into());
                let v = match &schema {
                    Some(s) => logical_value(primitive, s),
                    None => primitive,
                };
                Ok((vec![(name, v)], schema, true))
            }
        }
    }
}

/// Parses a key or value as JSON.
fn parse(bytes: &[u8], what: &str) -> Result<Json, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("the {what} is not JSON: {e}"))
}

/// A value as the sink reads it: an object's fields in a list, in their
/// order (cheaper than a map for the few fields of a row); anything else
/// as it is.
enum Document {
    Object(Vec<(String, Json)>),
    Other(Json),
}

/// The fields of a JSON object, in order; a repeated name keeps the place
/// of its first and the value of its last (as a map would).
struct Fields(Vec<(String, Json)>);

impl<'de> serde::Deserialize<'de> for Fields {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Fields, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Fields;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Fields, A::Error> {
                let mut fields: Vec<(String, Json)> = Vec::with_capacity(8);
                while let Some(name) = map.next_key::<String>()? {
                    let value: Json = map.next_value()?;
                    fields.push((name, value));
                }
                Ok(Fields(without_repeats(fields)))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// `fields` with each repeated name once: in the place of its first, with
/// the value of its last.
fn without_repeats(fields: Vec<(String, Json)>) -> Vec<(String, Json)> {
    let repeats = if fields.len() <= 16 {
        (1..fields.len()).any(|i| fields[..i].iter().any(|(n, _)| *n == fields[i].0))
    } else {
        let mut seen = HashSet::with_capacity(fields.len());
        !fields.iter().all(|(n, _)| seen.insert(n.as_str()))
    };
    if !repeats {
        return fields;
    }
    let mut map = Map::with_capacity(fields.len());
    for (n, v) in fields {
        map.insert(n, v);
    }
    map.into_iter().collect()
}

/// Parses a value: a JSON object into its fields, anything else as JSON.
fn parse_document(bytes: &[u8], what: &str) -> Result<Document, String> {
    let object = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{');
    let not_json = |e: serde_json::Error| format!("the {what} is not JSON: {e}");
    if object {
        serde_json::from_slice::<Fields>(bytes)
            .map(|f| Document::Object(f.0))
            .map_err(not_json)
    } else {
        serde_json::from_slice(bytes)
            .map(Document::Other)
            .map_err(not_json)
    }
}

/// Whether the fields are a JsonConverter envelope (exactly `schema`, an
/// object with a `type`, and `payload`).
fn is_envelope(fields: &[(String, Json)]) -> bool {
    let get = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    fields.len() == 2
        && get("payload").is_some()
        && get("schema")
            .and_then(Json::as_object)
            .is_some_and(|s| s.contains_key("type"))
}

/// The payload and schema of an envelope's fields.
fn envelope_parts(fields: Vec<(String, Json)>) -> (Json, Json) {
    let (mut payload, mut schema) = (Json::Null, Json::Null);
    for (n, v) in fields {
        match n.as_str() {
            "payload" => payload = v,
            _ => schema = v,
        }
    }
    (payload, schema)
}

/// The payload and schema of a JsonConverter envelope (an object of exactly
/// `schema`, an object with a `type`, and `payload`); anything else as it is.
fn unwrap_envelope(v: Json) -> (Json, Option<Json>) {
    let is_envelope = match &v {
        Json::Object(m) => {
            m.len() == 2
                && m.contains_key("payload")
                && m.get("schema")
                    .and_then(Json::as_object)
                    .is_some_and(|s| s.contains_key("type"))
        }
        _ => false,
    };
    match v {
        Json::Object(mut m) if is_envelope => {
            let schema = m.remove("schema");
            (m.remove("payload").unwrap_or(Json::Null), schema)
        }
        other => (other, None),
    }
}

/// The schema of field `name` of a struct schema.
fn field_schema<'a>(schema: &'a Json, name: &str) -> Option<&'a Json> {
    schema
        .get("fields")?
        .as_array()?
        .iter()
        .find(|f| f.get("field").and_then(Json::as_str) == Some(name))
}

/// Rewrites the fields of `value` that have a Kafka Connect logical type in
/// `schema` into the text forms the columns take.
fn apply_logical_types(value: &mut Map<String, Json>, schema: &Json) {
    let Some(fields) = schema.get("fields").and_then(Json::as_array) else {
        return;
    };
    for f in fields {
        let Some(name) = f.get("field").and_then(Json::as_str) else {
            continue;
        };
        if let Some(v) = value.get_mut(name) {
            *v = logical_value(v.take(), f);
        }
    }
}

/// A value of a logical type as text: a Decimal's base64 unscaled integer
/// as a decimal number, Date (days), Time (milliseconds of the day) and
/// Timestamp (epoch milliseconds) numbers as ISO 8601. Anything else, and
/// anything that does not decode, is returned as it is.
fn logical_value(v: Json, schema: &Json) -> Json {
    let kind = match schema.get("name").and_then(Json::as_str) {
        Some(DECIMAL) => {
            return match &v {
                Json::String(s) => decimal_from_base64(s, scale_of(schema))
                    .map(Json::String)
                    .unwrap_or(v),
                _ => v,
            }
        }
        Some(DATE) => Kind::Date,
        Some(TIME) => Kind::Time,
        Some(TIMESTAMP) => Kind::Timestamp,
        _ => return v,
    };
    if !v.is_number() {
        return v;
    }
    let column = ColumnInfo {
        name: String::new(),
        type_name: String::new(),
        kind,
    };
    match json::from_json(&v, &column) {
        Ok(Value::Date(s) | Value::Time(s) | Value::Timestamp(s)) => Json::String(s),
        _ => v,
    }
}

/// The `scale` parameter of a Decimal schema (Kafka Connect writes it as a
/// string).
fn scale_of(schema: &Json) -> u32 {
    match schema.get("parameters").and_then(|p| p.get("scale")) {
        Some(Json::String(s)) => s.trim().parse().unwrap_or(0),
        Some(Json::Number(n)) => n.as_u64().unwrap_or(0) as u32,
        _ => 0,
    }
}

/// A Kafka Connect Decimal (big-endian two's complement unscaled integer,
/// base64) as decimal text; `None` if it is not base64 or over 16 bytes.
fn decimal_from_base64(s: &str, scale: u32) -> Option<String> {
    let bytes = B64.decode(s.trim()).ok()?;
    if bytes.is_empty() || bytes.len() > 16 {
        return None;
    }
    let fill = if bytes[0] & 0x80 != 0 { 0xff } else { 0 };
    let mut buf = [fill; 16];
    buf[16 - bytes.len()..].copy_from_slice(&bytes);
    let n = i128::from_be_bytes(buf);
    let digits = n.unsigned_abs().to_string();
    let scale = scale as usize;
    let text = if scale == 0 {
        digits
    } else {
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (int, frac) = padded.split_at(padded.len() - scale);
        format!("{int}.{frac}")
    };
    Some(if n < 0 { format!("-{text}") } else { text })
}

/// What kind of JSON value `v` is, for messages.
fn json_kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

// Tables: columns from the catalog, auto-create.
impl DatabaseSinkTask {
    /// Makes sure the columns of `table` are known, creating the table from
    /// `record` under `auto.create`. `false`: the table is missing and the
    /// record is a delete, so there is nothing to do.
    fn ensure_table(&mut self, table: &str, record: &Decoded) -> Result<bool, TaskError> {
        if self.tables.contains_key(table) {
            return Ok(true);
        }
        let mut columns = self.load_columns(table)?;
        if columns.is_empty() {
            if !self.settings.auto_create {
                return Err(TaskError::Fatal(format!(
                    "table `{table}` does not exist in the database of connection `{CONNECTION}` (auto.create is false): create it, or set auto.create=true"
                )));
            }
            if record.op == Op::Delete {
                return Ok(false);
            }
            self.create_table(table, record)?;
            columns = self.load_columns(table)?;
            if columns.is_empty() {
                return Err(TaskError::Fatal(format!(
                    "table `{table}` was created, but the catalog does not show its columns"
                )));
            }
        }
        self.tables.insert(table.to_owned(), columns);
        Ok(true)
    }

    /// The columns of `table` from the catalog (empty: no such table).
    fn load_columns(&self, table: &str) -> Result<Vec<ColumnInfo>, TaskError> {
        dialect::columns(&self.db, table).map_err(|e| {
            let text = format!(
                "cannot read the columns of table `{table}`: {}",
                e.message()
            );
            if e.is_transient() {
                TaskError::Retriable(text)
            } else {
                TaskError::Fatal(text)
            }
        })
    }

    /// Reads the columns of `table` again (once per `put`); `false` if they
    /// were already read again in this `put`.
    fn reload(&mut self, table: &str) -> Result<bool, TaskError> {
        if !self.reloaded.insert(table.to_owned()) {
            return Ok(false);
        }
        let columns = self.load_columns(table)?;
        if columns.is_empty() {
            return Err(TaskError::Fatal(format!(
                "table `{table}` no longer exists in the database of connection `{CONNECTION}`"
            )));
        }
        debug!("read the columns of table `{table}` again");
        self.tables.insert(table.to_owned(), columns);
        Ok(true)
    }

    /// `CREATE TABLE` from the fields of `record`.
    fn create_table(&self, table: &str, record: &Decoded) -> Result<(), TaskError> {
        let q = |name: &str| self.dialect.quote(name);
        let mut defs: Vec<String> = record
            .fields
            .iter()
            .map(|(name, v)| {
                let is_key = record.key.contains(name);
                let schema = record.schema_of(name);
                let required = schema
                    .and_then(|s| s.get("optional"))
                    .and_then(Json::as_bool)
                    == Some(false);
                let ty = ColumnType::of(schema, v).sql(self.dialect, is_key);
                let not_null = if is_key || required { " NOT NULL" } else { "" };
                format!("{} {ty}{not_null}", q(name))
            })
            .collect();
        if !record.key.is_empty() {
            let key: Vec<String> = record.key.iter().map(|k| q(k)).collect();
            defs.push(format!("PRIMARY KEY ({})", key.join(", ")));
        }
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {} ({})",
            q(table),
            defs.join(", ")
        );
        self.db
            .execute(&sql, &[])
            .map_err(|e| task_error(table, &sql, &e))?;
        info!("created table `{table}`: {sql}");
        Ok(())
    }
}

/// The type family of an auto-created column.
#[derive(Clone, Copy, Debug)]
enum ColumnType {
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Bool,
    String,
    Bytes,
    /// Kafka Connect's Decimal with its scale (`None`: unknown).
    Decimal(Option<u32>),
    Date,
    Time,
    Timestamp,
    Json,
}

impl ColumnType {
    /// From a JsonConverter field schema when there is one, else from the
    /// JSON value.
    fn of(schema: Option<&Json>, value: &Json) -> ColumnType {
        let name = schema.and_then(|s| s.get("name")).and_then(Json::as_str);
        let ty = schema.and_then(|s| s.get("type")).and_then(Json::as_str);
        match (name, ty) {
            (Some(DECIMAL), _) => ColumnType::Decimal(schema.map(scale_of)),
            (Some(DATE), _) => ColumnType::Date,
            (Some(TIME), _) => ColumnType::Time,
            (Some(TIMESTAMP), _) => ColumnType::Timestamp,
            (_, Some("int8")) => ColumnType::Int8,
            (_, Some("int16")) => ColumnType::Int16,
            (_, Some("int32")) => ColumnType::Int32,
            (_, Some("int64")) => ColumnType::Int64,
            (_, Some("float32")) => ColumnType::Float32,
            (_, Some("float64")) => ColumnType::Float64,
            (_, Some("boolean")) => ColumnType::Bool,
            (_, Some("string")) => ColumnType::String,
            (_, Some("bytes")) => ColumnType::Bytes,
            (_, Some("struct" | "map" | "array")) => ColumnType::Json,
            _ => ColumnType::infer(value),
        }
    }

    /// From a JSON value alone.
    fn infer(value: &Json) -> ColumnType {
        match value {
            Json::Number(n) if n.is_i64() => ColumnType::Int64,
            Json::Number(n) if n.is_u64() => ColumnType::Decimal(Some(0)),
            Json::Number(_) => ColumnType::Float64,
            Json::Bool(_) => ColumnType::Bool,
            Json::Object(_) | Json::Array(_) => ColumnType::Json,
            Json::String(_) | Json::Null => ColumnType::String,
        }
    }

    /// The column type in `dialect`; `key` columns need a bounded type on
    /// MySQL.
    fn sql(self, dialect: Dialect, key: bool) -> String {
        use ColumnType as T;
        let s = match dialect {
            Dialect::Postgres => match self {
                T::Int8 | T::Int16 => "SMALLINT",
                T::Int32 => "INTEGER",
                T::Int64 => "BIGINT",
                T::Float32 => "REAL",
                T::Float64 => "DOUBLE PRECISION",
                T::Bool => "BOOLEAN",
                T::String => "TEXT",
                T::Bytes => "BYTEA",
                T::Decimal(_) => "NUMERIC",
                T::Date => "DATE",
                T::Time => "TIME",
                T::Timestamp => "TIMESTAMP",
                T::Json => "JSONB",
            },
            Dialect::Mysql => match self {
                T::Int8 => "TINYINT",
                T::Int16 => "SMALLINT",
                T::Int32 => "INT",
                T::Int64 => "BIGINT",
                T::Float32 => "FLOAT",
                T::Float64 => "DOUBLE",
                T::Bool => "BOOLEAN",
                T::String if key => "VARCHAR(255)",
                T::String => "TEXT",
                T::Bytes if key => "VARBINARY(255)",
                T::Bytes => "LONGBLOB",
                T::Decimal(scale) => {
                    return format!("DECIMAL(65, {})", scale.unwrap_or(10).min(30));
                }
                T::Date => "DATE",
                T::Time => "TIME(3)",
                T::Timestamp => "DATETIME(3)",
                T::Json => "JSON",
            },
            Dialect::Sqlite => match self {
                T::Int8 | T::Int16 | T::Int32 | T::Int64 => "INTEGER",
                T::Float32 | T::Float64 => "REAL",
                T::Bool => "BOOLEAN",
                T::String | T::Json => "TEXT",
                T::Bytes => "BLOB",
                T::Decimal(_) => "NUMERIC",
                T::Date => "DATE",
                T::Time => "TIME",
                T::Timestamp => "TIMESTAMP",
            },
        };
        s.to_owned()
    }
}

// Writing groups.
impl DatabaseSinkTask {
    /// Writes a group. Records the database rejects become bad records;
    /// a statement error reads the table's columns again once and retries
    /// what was not written, then fails the task.
    fn write(&mut self, mut group: Group, out: &mut Outcome) -> Result<(), TaskError> {
        let mut start = 0;
        let mut open = match std::mem::replace(&mut group.copying, Copying::No) {
            Copying::Open(c) => Some(c),
            Copying::No | Copying::Off => None,
        };
        loop {
            let result = match open.take() {
                Some(c) => self.finish_copy(&group, *c, out),
                None => {
                    let rows = &group.rows[start..];
                    let Some(columns) = self.columns_of(&group.table, &group.names)? else {
                        self.no_column(&group, rows, out);
                        return Ok(());
                    };
                    let mut prepared = convert(&group.table, &columns, rows, out);
                    let statement = self.statement(&group, &columns);
                    self.execute(group.op, &statement, &mut prepared, out)
                }
            };
            let failure = match result {
                Ok(()) => return Ok(()),
                Err(f) => f,
            };
            let retry =
                matches!(failure.error, SqlError::Statement(_)) && self.reload(&group.table)?;
            if !retry {
                return Err(task_error(&group.table, &failure.sql, &failure.error));
            }
            debug!(
                "table `{}`: {}; trying again with its columns read again",
                group.table,
                failure.error.message()
            );
            start = group
                .rows
                .iter()
                .position(|r| r.index == failure.first_unwritten)
                .unwrap_or(group.rows.len());
            for r in &group.rows[start..] {
                out.results[r.index] = PutResult::Ok;
            }
        }
    }

    /// The SQL text of `group` for `columns`.
    fn statement<'a>(&self, group: &'a Group, columns: &'a [ColumnInfo]) -> Statement<'a> {
        Statement {
            dialect: self.dialect,
            table: &group.table,
            columns,
            key: key_positions(group),
        }
    }

    /// The columns for `names`, matched exactly or else ignoring case; the
    /// catalog is read again once if one is missing. `None`: still missing.
    fn columns_of(
        &mut self,
        table: &str,
        names: &[String],
    ) -> Result<Option<Vec<ColumnInfo>>, TaskError> {
        loop {
            let known = self.tables.get(table).map(Vec::as_slice).unwrap_or(&[]);
            let found: Option<Vec<ColumnInfo>> = names
                .iter()
                .map(|n| find_column(known, n).cloned())
                .collect();
            if found.is_some() || !self.reload(table)? {
                return Ok(found);
            }
        }
    }

    /// Every row is bad: a field has no column.
    fn no_column(&self, group: &Group, rows: &[Row], out: &mut Outcome) {
        let known = self
            .tables
            .get(&group.table)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let missing: Vec<&str> = group
            .names
            .iter()
            .filter(|n| find_column(known, n).is_none())
            .map(String::as_str)
            .collect();
        let reason = format!("no column for field `{}`", missing.join("`, `"));
        for r in rows {
            out.bad(r.index, &r.at, &group.table, &reason);
        }
    }

    /// Runs the statements of `op` on the rows of one group.
    fn execute(
        &self,
        op: Op,
        statement: &Statement,
        rows: &mut [Prepared],
        out: &mut Outcome,
    ) -> Result<(), Failure> {
        match (op, self.dialect) {
            (Op::Insert | Op::Upsert, Dialect::Postgres) => {
                self.copy(statement, op == Op::Upsert, rows, out)
            }
            (Op::Insert | Op::Upsert, Dialect::Mysql) => {
                self.insert_multi_row(statement, op == Op::Upsert, rows, out)
            }
            (Op::Insert | Op::Upsert, Dialect::Sqlite) => {
                let sql = statement.insert(1, op == Op::Upsert);
                self.run_batch(statement, &sql, rows, out, |p| p.values.clone())
            }
            (Op::Update, _) => {
                if statement.key.len() == statement.columns.len() {
                    // Nothing but the key: nothing to set.
                    return Ok(());
                }
                let sql = statement.update();
                self.run_batch(statement, &sql, rows, out, |p| statement.update_params(p))
            }
            (Op::Delete, _) => {
                let sql = statement.delete();
                self.run_batch(statement, &sql, rows, out, |p| statement.key_params(p))
            }
        }
    }

    /// PostgreSQL: every row in one `COPY … FROM STDIN` (upsert: into a
    /// temporary table, then `INSERT … SELECT … ON CONFLICT`), all or
    /// nothing. When the database rejects the data, the rows are written
    /// again with multi-row `INSERT`s, which find the bad records.
    fn copy(
        &self,
        statement: &Statement,
        upsert: bool,
        rows: &mut [Prepared],
        out: &mut Outcome,
    ) -> Result<(), Failure> {
        if rows.is_empty() {
            return Ok(());
        }
        let load = statement.copy_load(upsert);
        let mut writer = self.db.copy_begin(&load).map_err(|error| Failure {
            first_unwritten: rows[0].index,
            error,
            sql: load.copy.clone(),
        })?;
        let mut text = Vec::with_capacity(PIECE + 4096);
        let sent: Vec<usize> = if upsert {
            last_per_key(rows, &statement.key)
        } else {
            (0..rows.len()).collect()
        };
        let result = send_rows(&mut writer, &mut text, sent.iter().map(|&i| &rows[i]))
            .and_then(|()| end_load(writer, &text));
        self.copied(statement, upsert, result, rows, out)
    }

    /// What a `COPY` of `rows` came to: written, written again the
    /// `INSERT` way when the database rejected the data, or a failure.
    fn copied(
        &self,
        statement: &Statement,
        upsert: bool,
        result: Result<u64, SqlError>,
        rows: &[Prepared],
        out: &mut Outcome,
    ) -> Result<(), Failure> {
        match result {
            Ok(_) => {
                out.wrote(rows.iter());
                Ok(())
            }
            Err(SqlError::Data(m)) => {
                debug!(
                    "table `{}`: {m}; writing {} rows with INSERT to find the bad ones",
                    statement.table,
                    rows.len()
                );
                self.insert_multi_row(statement, upsert, rows, out)
            }
            Err(error) => Err(Failure {
                first_unwritten: rows.first().map_or(usize::MAX, |p| p.index),
                error,
                sql: statement.copy_load(upsert).copy,
            }),
        }
    }

    /// Starts the `COPY` of an insert group that is still growing, or sends
    /// it the rows that came since the last time. A `COPY` that cannot
    /// start or fails is left for [`Self::write`] to deal with when the
    /// group is complete.
    fn copy_some(&mut self, group: &mut Group, out: &mut Outcome) {
        if matches!(group.copying, Copying::No) {
            group.copying = match self.open_copy(group) {
                Some(c) => Copying::Open(Box::new(c)),
                None => Copying::Off,
            };
        }
        let Copying::Open(c) = &mut group.copying else {
            return;
        };
        if c.failed.is_some() {
            return;
        }
        let new = convert(&group.table, &c.columns, &group.rows[c.done..], out);
        c.done = group.rows.len();
        counter_add("rows_streamed", new.len() as u64);
        if let Err(e) = send_rows(&mut c.writer, &mut c.text, &new) {
            c.failed = Some(e);
        }
        c.prepared.extend(new);
    }

    /// A `COPY` into the group's table, begun; `None` when it cannot run
    /// now (the group is then written the usual way, which says why).
    fn open_copy(&mut self, group: &Group) -> Option<OpenCopy> {
        let columns = self.columns_of(&group.table, &group.names).ok()??;
        let load = self.statement(group, &columns).copy_load(false);
        let writer = self.db.copy_begin(&load).ok()?;
        Some(OpenCopy {
            writer,
            columns,
            prepared: Vec::new(),
            done: 0,
            text: Vec::with_capacity(PIECE + 4096),
            failed: None,
        })
    }

    /// Sends the rest of a group whose `COPY` runs, and ends the `COPY`.
    fn finish_copy(&self, group: &Group, c: OpenCopy, out: &mut Outcome) -> Result<(), Failure> {
        let OpenCopy {
            mut writer,
            columns,
            mut prepared,
            done,
            mut text,
            failed,
        } = c;
        let new = convert(&group.table, &columns, &group.rows[done..], out);
        let result = failed
            .map_or(Ok(()), Err)
            .and_then(|()| send_rows(&mut writer, &mut text, &new))
            .and_then(|()| end_load(writer, &text));
        prepared.extend(new);
        self.copied(
            &self.statement(group, &columns),
            false,
            result,
            &prepared,
            out,
        )
    }

    /// Multi-row `INSERT`s in chunks; a chunk whose data the database
    /// rejects is written again one row at a time.
    fn insert_multi_row(
        &self,
        statement: &Statement,
        upsert: bool,
        rows: &[Prepared],
        out: &mut Outcome,
    ) -> Result<(), Failure> {
        let width = statement.columns.len().max(1);
        let per_chunk = (MAX_PARAMS / width).clamp(1, MAX_ROWS);
        for chunk in rows.chunks(per_chunk) {
            let distinct: Vec<&Prepared> = if upsert {
                let last = last_per_key(chunk, &statement.key);
                last.into_iter().map(|i| &chunk[i]).collect()
            } else {
                chunk.iter().collect()
            };
            let sql = statement.insert(distinct.len(), upsert);
            let params: Vec<Value> = distinct
                .iter()
                .flat_map(|p| p.values.iter().cloned())
                .collect();
            match self.db.execute(&sql, &params) {
                Ok(_) => out.wrote(chunk),
                Err(SqlError::Data(m)) => {
                    debug!(
                        "table `{}`: {m}; writing {} rows one by one",
                        statement.table,
                        chunk.len()
                    );
                    self.insert_one_by_one(statement, upsert, chunk, out)?;
                }
                Err(error) => {
                    return Err(Failure {
                        first_unwritten: chunk[0].index,
                        error,
                        sql,
                    })
                }
            }
        }
        Ok(())
    }

    /// Single-row `INSERT`s; the rows the database rejects are bad records.
    fn insert_one_by_one(
        &self,
        statement: &Statement,
        upsert: bool,
        rows: &[Prepared],
        out: &mut Outcome,
    ) -> Result<(), Failure> {
        let sql = statement.insert(1, upsert);
        for p in rows {
            match self.db.execute(&sql, &p.values) {
                Ok(_) => out.wrote([p]),
                Err(SqlError::Data(m)) => {
                    out.bad(p.index, &p.at, statement.table, &format!("rejected: {m}"))
                }
                Err(error) => {
                    return Err(Failure {
                        first_unwritten: p.index,
                        error,
                        sql,
                    })
                }
            }
        }
        Ok(())
    }

    /// `sql` once per row in one transaction (`execute-batch`). A row the
    /// database rejects becomes a bad record and the others run again.
    fn run_batch(
        &self,
        statement: &Statement,
        sql: &str,
        rows: &[Prepared],
        out: &mut Outcome,
        params_of: impl Fn(&Prepared) -> Vec<Value>,
    ) -> Result<(), Failure> {
        let mut live: Vec<&Prepared> = rows.iter().collect();
        let mut params: Vec<Vec<Value>> = live.iter().map(|p| params_of(p)).collect();
        while !live.is_empty() {
            match self.db.execute_batch(sql, &params) {
                Ok(_) => {
                    out.wrote(live);
                    return Ok(());
                }
                Err((i, SqlError::Data(m))) if (i as usize) < live.len() => {
                    let p = live.remove(i as usize);
                    params.remove(i as usize);
                    out.bad(p.index, &p.at, statement.table, &format!("rejected: {m}"));
                }
                Err((_, error)) => {
                    return Err(Failure {
                        first_unwritten: live[0].index,
                        error,
                        sql: sql.to_owned(),
                    })
                }
            }
        }
        Ok(())
    }
}

/// Appends rows to `text` in COPY's text format, and writes `text` to the
/// load whenever it holds a piece; stops at the load's first error.
fn send_rows<'a>(
    writer: &mut CopyWriter,
    text: &mut Vec<u8>,
    rows: impl IntoIterator<Item = &'a Prepared>,
) -> Result<(), SqlError> {
    for row in rows {
        copy_text_row(text, &row.values);
        if text.len() >= PIECE {
            writer.write(text)?;
            text.clear();
        }
    }
    Ok(())
}

/// Writes what is left of `text` to the load and ends it: the rows it
/// loaded.
fn end_load(writer: CopyWriter, text: &[u8]) -> Result<u64, SqlError> {
    if !text.is_empty() {
        writer.write(text)?;
    }
    CopyWriter::finish(writer)
}

/// The column called `name`: exactly, or else ignoring case.
fn find_column<'a>(columns: &'a [ColumnInfo], name: &str) -> Option<&'a ColumnInfo> {
    columns
        .iter()
        .find(|c| c.name == name)
        .or_else(|| columns.iter().find(|c| c.name.eq_ignore_ascii_case(name)))
}

/// The positions of the key fields among the group's fields.
fn key_positions(group: &Group) -> Vec<usize> {
    group
        .key
        .iter()
        .filter_map(|k| group.names.iter().position(|n| n == k))
        .collect()
}

/// Converts rows to SQL values for `columns`; a field that does not fit its
/// column makes its record bad.
fn convert(table: &str, columns: &[ColumnInfo], rows: &[Row], out: &mut Outcome) -> Vec<Prepared> {
    let mut prepared = Vec::with_capacity(rows.len());
    for row in rows {
        let values: Result<Vec<Value>, String> = row
            .fields
            .iter()
            .zip(columns)
            .map(|((_, v), c)| json::from_json(v, c))
            .collect();
        match values {
            Ok(values) => prepared.push(Prepared {
                index: row.index,
                at: row.at.clone(),
                values,
            }),
            Err(reason) => out.bad(row.index, &row.at, table, &reason),
        }
    }
    prepared
}

/// The positions of the last row of every key, in the order of those last
/// rows: one PostgreSQL upsert statement may not touch a row twice.
fn last_per_key(rows: &[Prepared], key: &[usize]) -> Vec<usize> {
    let mut seen = HashSet::new();
    let mut out: Vec<usize> = (0..rows.len())
        .rev()
        .filter(|&r| {
            let k: Vec<String> = key
                .iter()
                .map(|&i| format!("{:?}", rows[r].values[i]))
                .collect();
            seen.insert(k)
        })
        .collect();
    out.reverse();
    out
}

/// SQL text for one group's table and columns.
struct Statement<'a> {
    dialect: Dialect,
    table: &'a str,
    columns: &'a [ColumnInfo],
    /// Positions of the key columns in `columns`.
    key: Vec<usize>,
}

impl Statement<'_> {
    fn quote(&self, name: &str) -> String {
        self.dialect.quote(name)
    }

    /// The `n`th placeholder (1-based) for a value of `column`; PostgreSQL
    /// gets an explicit cast for types it will not convert text to by
    /// itself (uuid, enums).
    fn param(&self, n: usize, column: &ColumnInfo) -> String {
        let p = self.dialect.placeholder(n);
        if self.dialect == Dialect::Postgres && column.kind == Kind::Other {
            format!("{p}::{}", self.quote(&column.type_name))
        } else {
            p
        }
    }

    fn column_list(&self) -> String {
        let names: Vec<String> = self.columns.iter().map(|c| self.quote(&c.name)).collect();
        names.join(", ")
    }

    fn non_key(&self) -> impl Iterator<Item = &ColumnInfo> {
        self.columns
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.key.contains(i))
            .map(|(_, c)| c)
    }

    fn key_columns(&self) -> impl Iterator<Item = &ColumnInfo> {
        self.key.iter().map(|&i| &self.columns[i])
    }

    /// `INSERT` of `rows` rows, as an upsert on the key when `upsert`.
    fn insert(&self, rows: usize, upsert: bool) -> String {
        let width = self.columns.len();
        let mut sql = format!(
            "INSERT INTO {} ({}) VALUES ",
            self.quote(self.table),
            self.column_list()
        );
        for r in 0..rows {
            if r > 0 {
                sql.push_str(", ");
            }
            let params: Vec<String> = self
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| self.param(r * width + i + 1, c))
                .collect();
            sql.push('(');
            sql.push_str(&params.join(", "));
            sql.push(')');
        }
        if upsert {
            sql.push_str(&self.on_conflict());
        }
        sql
    }

    /// A PostgreSQL bulk load of this table's columns, without its rows:
    /// `COPY` into the table, or for an upsert into a temporary table
    /// (dropped at commit) that then goes in with `ON CONFLICT`.
    fn copy_load(&self, upsert: bool) -> CopyLoad {
        let table = self.quote(self.table);
        let columns = self.column_list();
        if !upsert {
            return CopyLoad {
                before: Vec::new(),
                copy: format!("COPY {table} ({columns}) FROM STDIN"),
                after: Vec::new(),
            };
        }
        let stage = "pg_temp.\"tributary_stage\"";
        CopyLoad {
            before: vec![format!(
                "CREATE TEMPORARY TABLE \"tributary_stage\" ON COMMIT DROP AS SELECT {columns} FROM {table} WITH NO DATA"
            )],
            copy: format!("COPY {stage} ({columns}) FROM STDIN"),
            after: vec![format!(
                "INSERT INTO {table} ({columns}) SELECT {columns} FROM {stage}{}",
                self.on_conflict()
            )],
        }
    }

    /// The upsert clause of this dialect.
    fn on_conflict(&self) -> String {
        let rest: Vec<String> = self.non_key().map(|c| self.quote(&c.name)).collect();
        let key: Vec<String> = self.key_columns().map(|c| self.quote(&c.name)).collect();
        match self.dialect {
            Dialect::Mysql => {
                let set: Vec<String> = if rest.is_empty() {
                    vec![format!("{0} = {0}", key[0])]
                } else {
                    rest.iter().map(|c| format!("{c} = VALUES({c})")).collect()
                };
                format!(" ON DUPLICATE KEY UPDATE {}", set.join(", "))
            }
            Dialect::Postgres | Dialect::Sqlite => {
                if rest.is_empty() {
                    return format!(" ON CONFLICT ({}) DO NOTHING", key.join(", "));
                }
                let set: Vec<String> = rest.iter().map(|c| format!("{c} = EXCLUDED.{c}")).collect();
                format!(
                    " ON CONFLICT ({}) DO UPDATE SET {}",
                    key.join(", "),
                    set.join(", ")
                )
            }
        }
    }

    /// `key1 = p AND key2 = p`, numbering placeholders from `first`.
    fn where_key(&self, first: usize) -> String {
        let conds: Vec<String> = self
            .key_columns()
            .enumerate()
            .map(|(i, c)| format!("{} = {}", self.quote(&c.name), self.param(first + i, c)))
            .collect();
        conds.join(" AND ")
    }

    /// `UPDATE … SET <non-key columns> WHERE <key>`.
    fn update(&self) -> String {
        let set: Vec<String> = self
            .non_key()
            .enumerate()
            .map(|(i, c)| format!("{} = {}", self.quote(&c.name), self.param(i + 1, c)))
            .collect();
        format!(
            "UPDATE {} SET {} WHERE {}",
            self.quote(self.table),
            set.join(", "),
            self.where_key(set.len() + 1)
        )
    }

    /// `DELETE … WHERE <key>`.
    fn delete(&self) -> String {
        format!(
            "DELETE FROM {} WHERE {}",
            self.quote(self.table),
            self.where_key(1)
        )
    }

    /// The parameters of `update`: non-key values, then key values.
    fn update_params(&self, p: &Prepared) -> Vec<Value> {
        let mut out: Vec<Value> = (0..self.columns.len())
            .filter(|i| !self.key.contains(i))
            .map(|i| p.values[i].clone())
            .collect();
        out.extend(self.key_params(p));
        out
    }

    /// The key values of a row.
    fn key_params(&self, p: &Prepared) -> Vec<Value> {
        self.key.iter().map(|&i| p.values[i].clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_decode_from_kafka_connect_bytes() {
        // 12345 = 0x3039, scale 2.
        assert_eq!(decimal_from_base64("MDk=", 2).as_deref(), Some("123.45"));
        // -1 = 0xff, scale 3.
        assert_eq!(decimal_from_base64("/w==", 3).as_deref(), Some("-0.001"));
        assert_eq!(decimal_from_base64("MDk=", 0).as_deref(), Some("12345"));
        assert_eq!(decimal_from_base64("not base64!", 0), None);
    }

    fn column(name: &str, kind: Kind, type_name: &str) -> ColumnInfo {
        ColumnInfo {
            name: name.into(),
            type_name: type_name.into(),
            kind,
        }
    }

    #[test]
    fn statements_in_each_dialect() {
        let columns = [
            column("id", Kind::Int, "int8"),
            column("tag", Kind::Other, "uuid"),
            column("n", Kind::Int, "int4"),
        ];
        let statement = |dialect, columns| Statement {
            dialect,
            table: "t",
            columns,
            key: vec![0],
        };
        let pg = statement(Dialect::Postgres, &columns[..]);
        assert_eq!(
            pg.insert(2, true),
            r#"INSERT INTO "t" ("id", "tag", "n") VALUES ($1, $2::"uuid", $3), ($4, $5::"uuid", $6) ON CONFLICT ("id") DO UPDATE SET "tag" = EXCLUDED."tag", "n" = EXCLUDED."n""#
        );
        assert_eq!(
            pg.update(),
            r#"UPDATE "t" SET "tag" = $1::"uuid", "n" = $2 WHERE "id" = $3"#
        );
        assert_eq!(pg.delete(), r#"DELETE FROM "t" WHERE "id" = $1"#);
        let mysql = statement(Dialect::Mysql, &columns[..]);
        assert_eq!(
            mysql.insert(1, true),
            "INSERT INTO `t` (`id`, `tag`, `n`) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE `tag` = VALUES(`tag`), `n` = VALUES(`n`)"
        );
        let key_only = statement(Dialect::Sqlite, &columns[..1]);
        assert_eq!(
            key_only.insert(1, true),
            r#"INSERT INTO "t" ("id") VALUES (?) ON CONFLICT ("id") DO NOTHING"#
        );
        let mysql_key_only = statement(Dialect::Mysql, &columns[..1]);
        assert_eq!(
            mysql_key_only.insert(1, true),
            "INSERT INTO `t` (`id`) VALUES (?) ON DUPLICATE KEY UPDATE `id` = `id`"
        );
    }

    #[test]
    fn postgres_bulk_loads_copy_into_the_table_or_a_staging_table() {
        let columns = [
            column("id", Kind::Int, "int8"),
            column("n", Kind::Int, "int4"),
        ];
        let statement = Statement {
            dialect: Dialect::Postgres,
            table: "t",
            columns: &columns,
            key: vec![0],
        };
        let insert = statement.copy_load(false);
        assert_eq!(insert.copy, r#"COPY "t" ("id", "n") FROM STDIN"#);
        assert!(insert.before.is_empty() && insert.after.is_empty());
        let upsert = statement.copy_load(true);
        assert_eq!(
            upsert.before,
            [
                r#"CREATE TEMPORARY TABLE "tributary_stage" ON COMMIT DROP AS SELECT "id", "n" FROM "t" WITH NO DATA"#
            ]
        );
        assert_eq!(
            upsert.copy,
            r#"COPY pg_temp."tributary_stage" ("id", "n") FROM STDIN"#
        );
        assert_eq!(
            upsert.after,
            [
                r#"INSERT INTO "t" ("id", "n") SELECT "id", "n" FROM pg_temp."tributary_stage" ON CONFLICT ("id") DO UPDATE SET "n" = EXCLUDED."n""#
            ]
        );
    }

    #[test]
    fn objects_keep_their_field_order_and_the_last_of_a_repeated_name() {
        let names = |bytes: &[u8]| match parse_document(bytes, "value").unwrap() {
            Document::Object(f) => f
                .into_iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>(),
            Document::Other(v) => vec![format!("other {v}")],
        };
        assert_eq!(names(br#" {"b":1,"a":2,"c":3}"#), ["b=1", "a=2", "c=3"]);
        assert_eq!(names(br#"{"b":1,"a":2,"b":3}"#), ["b=3", "a=2"]);
        assert_eq!(names(b"[1]"), ["other [1]"]);
        assert_eq!(names(b"null"), ["other null"]);
        let wide: Vec<String> = (0..20).map(|i| format!("\"f{}\":{i}", i % 18)).collect();
        let wide = names(format!("{{{}}}", wide.join(",")).as_bytes());
        assert_eq!(wide.len(), 18);
        assert_eq!(wide[1], "f1=19");
        assert!(parse_document(br#"{"a":1"#, "value")
            .err()
            .unwrap()
            .starts_with("the value is not JSON"));
    }

    #[test]
    fn an_upsert_statement_keeps_the_last_row_of_each_key() {
        let row = |index, id, n| Prepared {
            index,
            at: At {
                topic: Rc::from("t"),
                partition: 0,
                offset: index as i64,
            },
            values: vec![Value::Integer(id), Value::Integer(n)],
        };
        let rows = [row(0, 1, 10), row(1, 2, 20), row(2, 1, 11), row(3, 3, 30)];
        let kept: Vec<usize> = last_per_key(&rows, &[0]);
        assert_eq!(kept, [1, 2, 3]);
    }

    #[test]
    fn validate_names_the_key_of_each_inconsistency() {
        let config = |pairs: &[(&str, &str)]| {
            Config::from(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<Vec<_>>(),
            )
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
    fn envelopes_are_recognised_by_their_two_keys() {
        let env: Json =
            serde_json::from_str(r#"{"schema":{"type":"struct","fields":[]},"payload":{"id":1}}"#)
                .unwrap();
        let (payload, schema) = unwrap_envelope(env);
        assert_eq!(payload, serde_json::json!({"id": 1}));
        assert!(schema.is_some());
        let plain = serde_json::json!({"schema": "public", "payload": 3});
        let (same, none) = unwrap_envelope(plain.clone());
        assert_eq!(same, plain);
        assert!(none.is_none());
    }
}
