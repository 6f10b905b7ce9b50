//! The SQL that differs between PostgreSQL, MySQL/MariaDB and SQLite:
//! catalog queries (tables, columns, primary keys), column type families,
//! and the "now minus a delay" bound of timestamp modes.
//!
//! Tables are looked up in the connection's current schema (PostgreSQL's
//! `search_path`, MySQL's database, SQLite's main database).

use tributary_sdk::sql::{Dialect, SqlCapability, SqlError, Value};

/// What family a column's type belongs to: decides how JSON is bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Int,
    Float,
    Decimal,
    Bool,
    Text,
    Bytes,
    Date,
    Time,
    Timestamp,
    Timestamptz,
    Json,
    /// Anything else (uuid, enums, …): bound as text, with a cast on
    /// PostgreSQL.
    Other,
}

/// A column of a table, from the catalog.
#[derive(Clone, Debug)]
pub struct ColumnInfo {
    pub name: String,
    /// The catalog's type name (PostgreSQL's `udt_name`, MySQL's
    /// `data_type`, SQLite's declared type).
    pub type_name: String,
    pub kind: Kind,
}

/// The first column of every row, as text.
fn texts(db: &impl SqlCapability, sql: &str, params: &[Value]) -> Result<Vec<String>, SqlError> {
    let rows = db.query(sql, params)?;
    Ok(rows
        .rows
        .into_iter()
        .filter_map(|r| match r.into_iter().next() {
            Some(Value::Text(s)) => Some(s),
            Some(Value::Bytes(b)) => String::from_utf8(b).ok(),
            _ => None,
        })
        .collect())
}

/// The base tables of the current schema, sorted.
pub fn list_tables(db: &impl SqlCapability) -> Result<Vec<String>, SqlError> {
    let sql = match db.dialect() {
        Dialect::Postgres => "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1",
        Dialect::Mysql => "SELECT CAST(table_name AS CHAR) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' ORDER BY 1",
        Dialect::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1",
    };
    texts(db, sql, &[])
}

/// The primary key columns of `table`, in key order (empty: none).
pub fn primary_key(db: &impl SqlCapability, table: &str) -> Result<Vec<String>, SqlError> {
    let t = [Value::Text(table.to_owned())];
    match db.dialect() {
        Dialect::Postgres => texts(db, "SELECT kcu.column_name::text FROM information_schema.table_constraints tc JOIN information_schema.key_column_usage kcu ON kcu.constraint_name = tc.constraint_name AND kcu.table_schema = tc.table_schema AND kcu.table_name = tc.table_name WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = current_schema() AND tc.table_name = $1 ORDER BY kcu.ordinal_position", &t),
        Dialect::Mysql => texts(db, "SELECT CAST(column_name AS CHAR) FROM information_schema.key_column_usage WHERE constraint_name = 'PRIMARY' AND table_schema = DATABASE() AND table_name = ? ORDER BY ordinal_position", &t),
        Dialect::Sqlite => texts(db, "SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk", &t),
    }
}

/// The columns of `table` in order; empty when there is no such table.
pub fn columns(db: &impl SqlCapability, table: &str) -> Result<Vec<ColumnInfo>, SqlError> {
    let dialect = db.dialect();
    let t = [Value::Text(table.to_owned())];
    let sql = match dialect {
        Dialect::Postgres => "SELECT column_name::text, udt_name::text FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
        Dialect::Mysql => "SELECT CAST(column_name AS CHAR), CAST(column_type AS CHAR) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? ORDER BY ordinal_position",
        Dialect::Sqlite => "SELECT name, type FROM pragma_table_info(?) ORDER BY cid",
    };
    let rows = db.query(sql, &t)?;
    Ok(rows
        .rows
        .into_iter()
        .filter_map(|r| {
            let mut it = r.into_iter().map(|v| match v {
                Value::Text(s) => s,
                Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
                _ => String::new(),
            });
            let name = it.next()?;
            let type_name = it.next().unwrap_or_default();
            let kind = kind_of(dialect, &type_name);
            Some(ColumnInfo {
                name,
                type_name,
                kind,
            })
        })
        .collect())
}

/// The family of a catalog type name.
pub fn kind_of(dialect: Dialect, type_name: &str) -> Kind {
    let t = type_name.to_ascii_lowercase();
    let base = t.split(['(', ' ']).next().unwrap_or("");
    match dialect {
        Dialect::Postgres => match base {
            "int2" | "int4" | "int8" | "oid" => Kind::Int,
            "float4" | "float8" => Kind::Float,
            "numeric" => Kind::Decimal,
            "bool" => Kind::Bool,
            "text" | "varchar" | "bpchar" | "name" | "citext" => Kind::Text,
            "bytea" => Kind::Bytes,
            "date" => Kind::Date,
            "time" => Kind::Time,
            "timestamp" => Kind::Timestamp,
            "timestamptz" => Kind::Timestamptz,
            "json" | "jsonb" => Kind::Json,
            _ => Kind::Other,
        },
        Dialect::Mysql => match base {
            "tinyint" if t.starts_with("tinyint(1)") => Kind::Bool,
            "bool" | "boolean" => Kind::Bool,
            "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "year" => {
                Kind::Int
            }
            "float" | "double" | "real" => Kind::Float,
            "decimal" | "numeric" => Kind::Decimal,
            "char" | "varchar" | "text" | "tinytext" | "mediumtext" | "longtext" | "enum"
            | "set" => Kind::Text,
            "binary" | "varbinary" | "blob" | "tinyblob" | "mediumblob" | "longblob" | "bit" => {
                Kind::Bytes
            }
            "date" => Kind::Date,
            "time" => Kind::Time,
            "datetime" => Kind::Timestamp,
            "timestamp" => Kind::Timestamptz,
            "json" => Kind::Json,
            _ => Kind::Other,
        },
        // SQLite's type affinity rules, roughly.
        // Dates and times are kept as ISO text, which bind as text.
        Dialect::Sqlite => {
            if t.contains("datetime") || t.contains("timestamp") {
                Kind::Timestamp
            } else if t.contains("date") {
                Kind::Date
            } else if t.contains("time") {
                Kind::Time
            } else if t.contains("int") {
                Kind::Int
            } else if t.contains("bool") {
                Kind::Bool
            } else if t.contains("real") || t.contains("floa") || t.contains("doub") {
                Kind::Float
            } else if t.contains("blob") || t.is_empty() {
                Kind::Bytes
            } else if t.contains("json") {
                Kind::Json
            } else {
                Kind::Text
            }
        }
    }
}

/// An SQL expression for "now minus `delay_ms`" on the database's clock,
/// comparable with timestamp columns.
pub fn now_minus(dialect: Dialect, delay_ms: u64) -> String {
    match dialect {
        Dialect::Postgres => format!("(CURRENT_TIMESTAMP - INTERVAL '{delay_ms} milliseconds')"),
        Dialect::Mysql => format!(
            "(CURRENT_TIMESTAMP(6) - INTERVAL {} MICROSECOND)",
            delay_ms * 1000
        ),
        // SQLite keeps timestamps as text: `YYYY-MM-DD HH:MM:SS[.SSS]`, UTC.
        Dialect::Sqlite => format!(
            "strftime('%Y-%m-%d %H:%M:%f', 'now', '-{}.{:03} seconds')",
            delay_ms / 1000,
            delay_ms % 1000
        ),
    }
}

/// A short form of a statement for messages.
pub fn brief(sql: &str) -> String {
    const MAX: usize = 240;
    if sql.len() <= MAX {
        return sql.to_owned();
    }
    let mut end = MAX;
    while !sql.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &sql[..end])
}
