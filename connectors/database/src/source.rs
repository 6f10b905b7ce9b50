//! `database-source`: reads tables (or one query) and produces a record per
//! row, like Kafka Connect's JDBC source connector.
//!
//! Modes (`mode`):
//! - `bulk`: the whole table at every poll interval; no offset.
//! - `incrementing`: rows whose `incrementing.column.name` is above the last
//!   one seen (new rows; updates are not seen).
//! - `timestamp`: rows whose `timestamp.column.name` is after the last one
//!   seen and before the database's now minus `timestamp.delay.interval.ms`
//!   (new and updated rows). Rows sharing a timestamp are produced as a
//!   group whose last row alone carries the offset, so none is lost or
//!   repeated when a batch boundary falls inside the group.
//! - `timestamp+incrementing`: ordered by (timestamp, incrementing); the
//!   offset holds both, so every row is produced exactly once even when
//!   many share a timestamp.
//!
//! The source partition is `{"table": <name>}` (`{"query": "query"}` for a
//! custom query), the offset `{"incrementing": n}`, `{"timestamp": "…"}` or
//! both. Tables are spread over tasks by their position in the sorted list
//! of matching tables; the list is refreshed every `table.poll.interval.ms`.
//! The topic is `topic.prefix` + table; the key a JSON object of the primary
//! key columns (none without a primary key); the value a JSON object of every
//! column (see `crate::json` for the type mapping).

use crate::dialect::{self, brief};
use crate::json::to_json;
use regex::Regex;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};
use tributary_sdk::sql::{Connection, Dialect, SqlError, Value};
use tributary_sdk::{
    info, json_get, Config, ConfigIssue, Description, JsonMap, Key, PartitionOffset, Scalar,
    Source, SourceBatch, SourceRecord, SourceTask, TaskError,
};

const TABLE: &str = "table";
const QUERY: &str = "query";
const INCREMENTING: &str = "incrementing";
const TIMESTAMP: &str = "timestamp";

/// How rows are picked, by `mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Bulk,
    Incrementing,
    Timestamp,
    TimestampIncrementing,
}

impl Mode {
    fn parse(s: &str) -> Result<Mode, String> {
        Ok(match s.trim() {
            "bulk" => Mode::Bulk,
            "incrementing" => Mode::Incrementing,
            "timestamp" => Mode::Timestamp,
            "timestamp+incrementing" => Mode::TimestampIncrementing,
            other => {
                return Err(format!(
                "expects bulk, incrementing, timestamp or timestamp+incrementing, got {other:?}"
            ))
            }
        })
    }

    fn incrementing(self) -> bool {
        matches!(self, Mode::Incrementing | Mode::TimestampIncrementing)
    }

    fn timestamp(self) -> bool {
        matches!(self, Mode::Timestamp | Mode::TimestampIncrementing)
    }
}

/// The `database-source` connector.
pub struct DatabaseSource;

impl Source for DatabaseSource {
    type Task = DatabaseSourceTask;

    fn describe() -> Description {
        Description::source("database-source", crate::VERSION)
            .summary("Reads tables or a query of PostgreSQL, MySQL/MariaDB or SQLite into topics, a record per row (Kafka Connect JDBC source semantics).")
            .key(Key::string("mode").default("bulk").doc("bulk, incrementing, timestamp or timestamp+incrementing: how new rows are found."))
            .key(Key::list("table.whitelist").default("").doc("Tables to read: names or regular expressions matched against whole table names. Empty with `query` set."))
            .key(Key::string("query").default("").doc("A custom query to read instead of tables (one task; topic = topic.prefix). Mode conditions are added around it."))
            .key(Key::string("topic.prefix").doc("Prefix of each table's topic (topic = prefix + table); the topic itself for a custom query."))
            .key(Key::string("incrementing.column.name").default("").doc("A strictly increasing integer column (incrementing modes)."))
            .key(Key::string("timestamp.column.name").default("").doc("A column set to the time a row was written or changed (timestamp modes)."))
            .key(Key::integer("timestamp.delay.interval.ms").default("0").doc("Rows newer than the database's now minus this are left for a later poll, so transactions that commit late are not skipped."))
            .key(Key::integer("poll.interval.ms").default("5000").doc("How long a table that has been read up to its end waits before it is queried again."))
            .key(Key::integer("batch.max.rows").default("1000").doc("Most rows one query fetches."))
            .key(Key::integer("table.poll.interval.ms").default("60000").doc("How often the list of matching tables is read again."))
    }

    fn validate(config: &Config) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let mode_text = config.get::<String>("mode").unwrap_or_default();
        let mode = match Mode::parse(&mode_text) {
            Ok(m) => Some(m),
            Err(e) => {
                issues.push(ConfigIssue::new("mode", e));
                None
            }
        };
        let tables = config.get::<String>("table.whitelist").unwrap_or_default();
        let tables = tables.trim();
        let query = config.get::<String>("query").unwrap_or_default();
        let query = query.trim();
        match (tables.is_empty(), query.is_empty()) {
            (true, true) => issues.push(ConfigIssue::new(
                "table.whitelist",
                "set `table.whitelist` or `query`",
            )),
            (false, false) => issues.push(ConfigIssue::new(
                "query",
                "set `table.whitelist` or `query`, not both",
            )),
            _ => {}
        }
        for pattern in tables.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if let Err(e) = Regex::new(&format!("^(?:{pattern})$")) {
                issues.push(ConfigIssue::new(
                    "table.whitelist",
                    format!("{pattern:?} is not a valid regular expression: {e}"),
                ));
            }
        }
        if let Some(mode) = mode {
            let unset = |key: &str| {
                config
                    .get::<String>(key)
                    .unwrap_or_default()
                    .trim()
                    .is_empty()
            };
            if mode.incrementing() && unset("incrementing.column.name") {
                issues.push(ConfigIssue::new(
                    "incrementing.column.name",
                    format!("is required in mode {mode_text}"),
                ));
            }
            if mode.timestamp() && unset("timestamp.column.name") {
                issues.push(ConfigIssue::new(
                    "timestamp.column.name",
                    format!("is required in mode {mode_text}"),
                ));
            }
        }
        if config
            .raw("topic.prefix")
            .is_some_and(|p| p.trim().is_empty())
            && !query.is_empty()
        {
            issues.push(ConfigIssue::new(
                "topic.prefix",
                "is the topic of a custom query: must not be empty",
            ));
        }
        for k in [
            "batch.max.rows",
            "poll.interval.ms",
            "table.poll.interval.ms",
        ] {
            if config.get::<i64>(k).is_ok_and(|n| n < 1) {
                issues.push(ConfigIssue::new(k, "must be at least 1"));
            }
        }
        if config
            .get::<i64>("timestamp.delay.interval.ms")
            .is_ok_and(|n| n < 0)
        {
            issues.push(ConfigIssue::new(
                "timestamp.delay.interval.ms",
                "must not be negative",
            ));
        }
        issues
    }

    /// A custom query is one task; tables are spread over `max_tasks` tasks
    /// by position (each task lists the tables itself, so tables created
    /// later are picked up without a restart).
    fn task_configs(config: &Config, max_tasks: u32) -> Result<Vec<Config>, String> {
        let query = config.get::<String>("query").map_err(|e| e.to_string())?;
        let count = if query.trim().is_empty() {
            max_tasks.max(1)
        } else {
            1
        };
        Ok((0..count)
            .map(|i| {
                let mut c = config.clone();
                c.set("task.index", i.to_string());
                c.set("task.count", count.to_string());
                c
            })
            .collect())
    }
}

/// Settings a task reads once.
struct Settings {
    mode: Mode,
    patterns: Vec<Regex>,
    query: Option<String>,
    topic_prefix: String,
    incrementing: String,
    timestamp: String,
    delay_ms: u64,
    poll_interval: Duration,
    batch_max_rows: u32,
    table_poll_interval: Duration,
    index: usize,
    count: usize,
}

fn fatal(key: &str, e: impl std::fmt::Display) -> TaskError {
    TaskError::Fatal(format!("config key `{key}`: {e}"))
}

impl Settings {
    fn read(config: &Config) -> Result<Settings, TaskError> {
        let mode = Mode::parse(&config.get::<String>("mode")?).map_err(|e| fatal("mode", e))?;
        let patterns = config
            .get::<Vec<String>>("table.whitelist")?
            .iter()
            .map(|p| Regex::new(&format!("^(?:{p})$")).map_err(|e| fatal("table.whitelist", e)))
            .collect::<Result<Vec<_>, _>>()?;
        let query =
            Some(config.get::<String>("query")?.trim().to_owned()).filter(|q| !q.is_empty());
        let ms = |k: &str| config.get::<u64>(k).map(Duration::from_millis);
        Ok(Settings {
            mode,
            patterns,
            query,
            topic_prefix: config.get("topic.prefix")?,
            incrementing: config
                .get::<String>("incrementing.column.name")?
                .trim()
                .to_owned(),
            timestamp: config
                .get::<String>("timestamp.column.name")?
                .trim()
                .to_owned(),
            delay_ms: config.get("timestamp.delay.interval.ms")?,
            poll_interval: ms("poll.interval.ms")?,
            batch_max_rows: config.get::<u32>("batch.max.rows")?.max(1),
            table_poll_interval: ms("table.poll.interval.ms")?,
            index: config.get_opt("task.index")?.unwrap_or(0),
            count: config.get_opt::<usize>("task.count")?.unwrap_or(1).max(1),
        })
    }
}

/// A row fetched and not yet handed to the worker, with the offset it
/// carries (only the last row of a timestamp group carries one).
struct Pending {
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    offset: Option<JsonMap>,
}

/// What a task knows of one table (or the custom query).
struct Reader {
    /// The table name; `None` for the custom query.
    table: Option<String>,
    topic: String,
    partition: JsonMap,
    /// Primary key columns, read at first use.
    key_columns: Option<Vec<String>>,
    incrementing: Option<i64>,
    timestamp: Option<String>,
    pending: VecDeque<Pending>,
    /// When to query again.
    due: Instant,
}

/// One task of `database-source`.
pub struct DatabaseSourceTask {
    db: Connection,
    dialect: Dialect,
    s: Settings,
    sources: Vec<Reader>,
    /// Offsets the task was opened with, by table (or `query`).
    resumed: BTreeMap<String, JsonMap>,
    tables_listed: Option<Instant>,
    cursor: usize,
}

/// A database error as a task error: an unreachable database is retried
/// (within `errors.retry.timeout`). Refused credentials are fatal: the
/// worker has already fetched them again from their provider before it
/// reports the failure.
fn task_error(e: SqlError, what: &str) -> TaskError {
    match e {
        SqlError::Unavailable(_) => TaskError::Retriable(format!("{what}: {}", e.message())),
        _ => TaskError::Fatal(format!("{what}: {}", e.message())),
    }
}

fn text_of(s: &Scalar) -> Option<&str> {
    match s {
        Scalar::Text(t) => Some(t),
        _ => None,
    }
}

impl SourceTask for DatabaseSourceTask {
    fn open(config: Config, offsets: Vec<PartitionOffset>) -> Result<Self, TaskError> {
        let s = Settings::read(&config)?;
        let db = Connection::open("default")
            .map_err(|e| task_error(e, "opening the connection `default`"))?;
        let dialect = db.dialect();
        let mut resumed = BTreeMap::new();
        for po in offsets {
            let name = json_get(&po.partition, TABLE)
                .and_then(text_of)
                .or_else(|| json_get(&po.partition, QUERY).map(|_| QUERY));
            if let Some(name) = name {
                resumed.insert(name.to_owned(), po.offset);
            }
        }
        let mut task = DatabaseSourceTask {
            db,
            dialect,
            s,
            sources: Vec::new(),
            resumed,
            tables_listed: None,
            cursor: 0,
        };
        if task.s.query.is_some() {
            let topic = task.s.topic_prefix.clone();
            task.add_source(None, topic);
        }
        Ok(task)
    }

    fn poll(&mut self, max_records: u32) -> Result<SourceBatch, TaskError> {
        if self.s.query.is_none() {
            self.refresh_tables()?;
        }
        let mut batch = SourceBatch::new();
        let now = Instant::now();
        let n = self.sources.len();
        // Round robin from the cursor: the first source that is due.
        let Some(i) = (0..n).map(|k| (self.cursor + k) % n).find(|&i| {
            let src = &self.sources[i];
            !src.pending.is_empty() || src.due <= now
        }) else {
            return Ok(batch);
        };
        self.cursor = (i + 1) % n.max(1);
        if self.sources[i].pending.is_empty() {
            self.fetch(i)?;
        }
        let src = &mut self.sources[i];
        if src.pending.is_empty() {
            return Ok(batch);
        }
        let topic = batch.add_topic(&src.topic);
        let partition = batch.add_partition(src.partition.clone());
        while batch.len() < max_records as usize {
            let Some(p) = src.pending.pop_front() else {
                break;
            };
            batch.push(SourceRecord {
                topic,
                partition,
                key: p.key.as_deref(),
                value: Some(&p.value),
                ..SourceRecord::default()
            });
            if let Some(offset) = p.offset {
                batch.set_offset(offset);
            }
        }
        Ok(batch)
    }
}

impl DatabaseSourceTask {
    fn add_source(&mut self, table: Option<String>, topic: String) {
        let (partition, resumed_key) = match &table {
            Some(t) => (vec![(TABLE.to_owned(), Scalar::Text(t.clone()))], t.clone()),
            None => (
                vec![(QUERY.to_owned(), Scalar::Text(QUERY.to_owned()))],
                QUERY.to_owned(),
            ),
        };
        let offset = self.resumed.get(&resumed_key);
        let incrementing = offset.and_then(|o| match json_get(o, INCREMENTING) {
            Some(Scalar::Integer(n)) => Some(*n),
            _ => None,
        });
        let timestamp =
            offset.and_then(|o| json_get(o, TIMESTAMP).and_then(text_of).map(String::from));
        if offset.is_some() {
            info!("{}: resuming after {:?}", topic, offset);
        }
        self.sources.push(Reader {
            table,
            topic,
            partition,
            key_columns: None,
            incrementing,
            timestamp,
            pending: VecDeque::new(),
            due: Instant::now(),
        });
    }

    /// Reads the list of tables again when it is time, keeping this task's
    /// share: every `count`th matching table, starting at `index`.
    fn refresh_tables(&mut self) -> Result<(), TaskError> {
        if self
            .tables_listed
            .is_some_and(|t| t.elapsed() < self.s.table_poll_interval)
        {
            return Ok(());
        }
        let all = dialect::list_tables(&self.db).map_err(|e| task_error(e, "listing tables"))?;
        self.tables_listed = Some(Instant::now());
        let mine: Vec<String> = all
            .into_iter()
            .filter(|t| self.s.patterns.iter().any(|p| p.is_match(t)))
            .enumerate()
            .filter(|(i, _)| i % self.s.count == self.s.index)
            .map(|(_, t)| t)
            .collect();
        self.sources
            .retain(|s| s.table.as_ref().is_some_and(|t| mine.contains(t)));
        for t in mine {
            if !self.sources.iter().any(|s| s.table.as_deref() == Some(&t)) {
                info!("reading table {t}");
                let topic = format!("{}{t}", self.s.topic_prefix);
                self.add_source(Some(t), topic);
            }
        }
        Ok(())
    }

    /// What the statements read from: a quoted table, or the custom query
    /// as a subquery.
    fn source_clause(&self, src: &Reader) -> String {
        match (&src.table, &self.s.query) {
            (Some(t), _) => self.dialect.quote(t),
            (None, Some(q)) => format!("({q}) tributary_query"),
            (None, None) => unreachable!("a source is a table or the query"),
        }
    }

    /// Runs the mode's query for source `i` and queues its rows.
    fn fetch(&mut self, i: usize) -> Result<(), TaskError> {
        let d = self.dialect;
        let what = self.sources[i]
            .table
            .clone()
            .map(|t| format!("table {t}"))
            .unwrap_or_else(|| "the query".into());
        if self.sources[i].table.is_some() && self.sources[i].key_columns.is_none() {
            let t = self.sources[i].table.clone().unwrap_or_default();
            let pk = dialect::primary_key(&self.db, &t)
                .map_err(|e| task_error(e, &format!("reading the primary key of {what}")))?;
            self.sources[i].key_columns = Some(pk);
        }
        let src = &self.sources[i];
        let from = self.source_clause(src);
        let inc = d.quote(&self.s.incrementing);
        let ts = d.quote(&self.s.timestamp);
        let limit = self.s.batch_max_rows;
        let bound = dialect::now_minus(d, self.s.delay_ms);
        let mut params = Vec::new();
        let p = |v: Value, params: &mut Vec<Value>| {
            params.push(v);
            d.placeholder(params.len())
        };
        let sql = match self.s.mode {
            Mode::Bulk => format!("SELECT * FROM {from}"),
            Mode::Incrementing => match src.incrementing {
                Some(last) => format!("SELECT * FROM {from} WHERE {inc} > {} ORDER BY {inc} ASC LIMIT {limit}", p(Value::Integer(last), &mut params)),
                None => format!("SELECT * FROM {from} WHERE {inc} IS NOT NULL ORDER BY {inc} ASC LIMIT {limit}"),
            },
            Mode::Timestamp => match &src.timestamp {
                Some(last) => format!("SELECT * FROM {from} WHERE {ts} > {} AND {ts} < {bound} ORDER BY {ts} ASC LIMIT {limit}", p(ts_value(last), &mut params)),
                None => format!("SELECT * FROM {from} WHERE {ts} < {bound} ORDER BY {ts} ASC LIMIT {limit}"),
            },
            Mode::TimestampIncrementing => match (&src.timestamp, src.incrementing) {
                (Some(last_ts), Some(last_inc)) => {
                    let a = p(ts_value(last_ts), &mut params);
                    let b = p(ts_value(last_ts), &mut params);
                    let c = p(Value::Integer(last_inc), &mut params);
                    format!("SELECT * FROM {from} WHERE {ts} < {bound} AND ({ts} > {a} OR ({ts} = {b} AND {inc} > {c})) ORDER BY {ts} ASC, {inc} ASC LIMIT {limit}")
                }
                _ => format!("SELECT * FROM {from} WHERE {ts} < {bound} ORDER BY {ts} ASC, {inc} ASC LIMIT {limit}"),
            },
        };
        let rows = self
            .db
            .query(&sql, &params)
            .map_err(|e| task_error(e, &format!("reading {what} with `{}`", brief(&sql))))?;
        let got = rows.rows.len();
        let full = self.s.mode != Mode::Bulk && got >= limit as usize;
        let mut rows = rows;

        // Timestamp mode: a full batch may end inside a group of rows with
        // one timestamp. Keep only whole groups; a group larger than a batch
        // is read whole with its own query.
        if self.s.mode == Mode::Timestamp && full {
            let col = position(&rows.columns, &self.s.timestamp, &what)?;
            let last = rows.rows.last().map(|r| r[col].clone());
            let last_text = last.as_ref().and_then(timestamp_text);
            let cut = rows
                .rows
                .iter()
                .rposition(|r| timestamp_text(&r[col]) != last_text)
                .map(|p| p + 1)
                .unwrap_or(0);
            if cut > 0 {
                rows.rows.truncate(cut);
            } else if let Some(last) = last {
                let mut params = Vec::new();
                let sql = format!("SELECT * FROM {from} WHERE {ts} = {}", p(last, &mut params));
                rows = self.db.query(&sql, &params).map_err(|e| {
                    task_error(e, &format!("reading {what} with `{}`", brief(&sql)))
                })?;
            }
        }
        self.queue(i, rows, &what)?;
        let src = &mut self.sources[i];
        src.due = if full {
            Instant::now()
        } else {
            Instant::now() + self.s.poll_interval
        };
        Ok(())
    }

    /// Turns rows into pending records, and moves the source's position.
    fn queue(
        &mut self,
        i: usize,
        rows: tributary_sdk::sql::Rows,
        what: &str,
    ) -> Result<(), TaskError> {
        if rows.rows.is_empty() {
            return Ok(());
        }
        let mode = self.s.mode;
        let cols = &rows.columns;
        let inc_col = if mode.incrementing() {
            Some(position(cols, &self.s.incrementing, what)?)
        } else {
            None
        };
        let ts_col = if mode.timestamp() {
            Some(position(cols, &self.s.timestamp, what)?)
        } else {
            None
        };
        let src = &mut self.sources[i];
        let key_cols: Vec<usize> = src
            .key_columns
            .iter()
            .flatten()
            .filter_map(|k| cols.iter().position(|c| c.name.eq_ignore_ascii_case(k)))
            .collect();
        let n = rows.rows.len();
        for (r, row) in rows.rows.iter().enumerate() {
            let key = (!key_cols.is_empty())
                .then(|| object(key_cols.iter().map(|&c| (&cols[c].name, &row[c]))));
            let value = object(cols.iter().map(|c| &c.name).zip(row.iter()));
            if let Some(c) = inc_col {
                match &row[c] {
                    Value::Integer(v) => src.incrementing = Some(*v),
                    other => {
                        return Err(TaskError::Fatal(format!(
                            "{what}: incrementing column `{}` holds {other:?}, not an integer",
                            self.s.incrementing
                        )))
                    }
                }
            }
            let mut group_ends = true;
            if let Some(c) = ts_col {
                match timestamp_text(&row[c]) {
                    Some(t) => src.timestamp = Some(t),
                    None => {
                        return Err(TaskError::Fatal(format!(
                            "{what}: timestamp column `{}` holds {:?}, not a timestamp",
                            self.s.timestamp, row[c]
                        )))
                    }
                }
                // In timestamp mode only the last row of a group may commit.
                if mode == Mode::Timestamp {
                    group_ends = r + 1 == n
                        || timestamp_text(&rows.rows[r + 1][c]) != timestamp_text(&row[c]);
                }
            }
            let offset = match mode {
                Mode::Bulk => None,
                _ if !group_ends => None,
                _ => {
                    let mut o = Vec::new();
                    if let Some(v) = src.incrementing.filter(|_| mode.incrementing()) {
                        o.push((INCREMENTING.to_owned(), Scalar::Integer(v)));
                    }
                    if let Some(t) = src.timestamp.clone().filter(|_| mode.timestamp()) {
                        o.push((TIMESTAMP.to_owned(), Scalar::Text(t)));
                    }
                    Some(o)
                }
            };
            src.pending.push_back(Pending { key, value, offset });
        }
        Ok(())
    }
}

/// The index of column `name` in a result, or a fatal error naming it.
fn position(
    cols: &[tributary_sdk::sql::Column],
    name: &str,
    what: &str,
) -> Result<usize, TaskError> {
    cols.iter()
        .position(|c| c.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            let have: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
            TaskError::Fatal(format!(
                "{what} has no column `{name}` (columns: {})",
                have.join(", ")
            ))
        })
}

/// A timestamp cell as the text kept in the offset.
fn timestamp_text(v: &Value) -> Option<String> {
    match v {
        Value::Timestamp(s) | Value::Timestamptz(s) | Value::Text(s) | Value::Date(s) => {
            Some(s.clone())
        }
        _ => None,
    }
}

/// An offset's timestamp text as a parameter of the type it came from:
/// `…Z` a zoned timestamp, `…T…` a plain one, anything else text (SQLite
/// keeps timestamps as text).
fn ts_value(s: &str) -> Value {
    if s.ends_with('Z') {
        Value::Timestamptz(s.to_owned())
    } else if s.len() >= 19 && s.as_bytes()[10] == b'T' {
        Value::Timestamp(s.to_owned())
    } else {
        Value::Text(s.to_owned())
    }
}

/// A JSON object of columns, in column order.
fn object<'a>(fields: impl Iterator<Item = (&'a String, &'a Value)>) -> Vec<u8> {
    let mut out = String::from("{");
    for (i, (name, value)) in fields.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::Value::String(name.clone()).to_string());
        out.push(':');
        out.push_str(&to_json(value).to_string());
    }
    out.push('}');
    out.into_bytes()
}
