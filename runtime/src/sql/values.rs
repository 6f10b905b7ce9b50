//! Values in and out of each database: parameters bound with the type
//! their variant names, result cells read by their column's type.
//!
//! Decimals, dates and times travel as text in fixed formats (ISO 8601;
//! timestamps with a `T`; UTC ones with a `Z`), parsed here when bound, so
//! nothing is rounded on the way.

use super::{SqlColumn, SqlError, SqlRows, SqlValue};
use sqlx::mysql::{MySql, MySqlArguments, MySqlRow};
use sqlx::postgres::{PgArguments, PgRow, PgTypeInfo, Postgres};
use sqlx::query::Query;
use sqlx::sqlite::{Sqlite, SqliteArguments, SqliteRow};
use sqlx::types::chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use sqlx::types::{BigDecimal, Json, JsonValue, Uuid};
use sqlx::{Column, Row, TypeInfo, ValueRef};
use std::str::FromStr;

type PgQuery<'q> = Query<'q, Postgres, PgArguments>;
type MySqlQuery<'q> = Query<'q, MySql, MySqlArguments>;
type SqliteQuery<'q> = Query<'q, Sqlite, SqliteArguments<'q>>;

const DATE: &str = "%Y-%m-%d";
const TIME: &str = "%H:%M:%S%.f";
const TIMESTAMP: &str = "%Y-%m-%dT%H:%M:%S%.f";
const TIMESTAMPTZ: &str = "%Y-%m-%dT%H:%M:%S%.fZ";

/// A NULL whose type PostgreSQL infers from where it is used (a typed NULL
/// would be refused by a column of another type).
struct UntypedNull;

impl sqlx::Type<Postgres> for UntypedNull {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(sqlx::postgres::types::Oid(0))
    }
}

impl sqlx::Encode<'_, Postgres> for UntypedNull {
    fn encode_by_ref(
        &self,
        _buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        Ok(sqlx::encode::IsNull::Yes)
    }
}

fn bad(i: usize, what: &str, text: &str) -> SqlError {
    SqlError::Data(format!("parameter {}: {text:?} is not {what}", i + 1))
}

fn decimal(i: usize, s: &str) -> Result<BigDecimal, SqlError> {
    BigDecimal::from_str(s.trim()).map_err(|_| bad(i, "a decimal number", s))
}

fn date(i: usize, s: &str) -> Result<NaiveDate, SqlError> {
    NaiveDate::parse_from_str(s.trim(), DATE).map_err(|_| bad(i, "a date (YYYY-MM-DD)", s))
}

fn time(i: usize, s: &str) -> Result<NaiveTime, SqlError> {
    NaiveTime::parse_from_str(s.trim(), TIME).map_err(|_| bad(i, "a time (HH:MM:SS)", s))
}

fn timestamp(i: usize, s: &str) -> Result<NaiveDateTime, SqlError> {
    let s = s.trim().replacen(' ', "T", 1);
    NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), TIMESTAMP)
        .map_err(|_| bad(i, "a timestamp (YYYY-MM-DDTHH:MM:SS)", &s))
}

fn timestamptz(i: usize, s: &str) -> Result<DateTime<Utc>, SqlError> {
    let t = s.trim().replacen(' ', "T", 1);
    match DateTime::parse_from_rfc3339(&t) {
        Ok(d) => Ok(d.with_timezone(&Utc)),
        // No zone given: UTC.
        Err(_) => timestamp(i, s)
            .map(|n| n.and_utc())
            .map_err(|_| bad(i, "a timestamp with a zone (RFC 3339)", s)),
    }
}

fn json(i: usize, s: &str) -> Result<JsonValue, SqlError> {
    serde_json::from_str(s)
        .map_err(|e| SqlError::Data(format!("parameter {}: not JSON: {e}", i + 1)))
}

/// Binds every parameter with the type its variant names; `$null` is how
/// the database takes a NULL of any type. PostgreSQL and MySQL share it.
macro_rules! bind_typed {
    ($q:expr, $params:expr, $null:expr) => {{
        let mut q = $q;
        for (i, p) in $params.into_iter().enumerate() {
            q = match p {
                SqlValue::Null => q.bind($null),
                SqlValue::Boolean(b) => q.bind(b),
                SqlValue::Integer(n) => q.bind(n),
                SqlValue::Float(f) => q.bind(f),
                SqlValue::Text(s) => q.bind(s),
                SqlValue::Bytes(b) => q.bind(b),
                SqlValue::Decimal(s) => q.bind(decimal(i, &s)?),
                SqlValue::Date(s) => q.bind(date(i, &s)?),
                SqlValue::Time(s) => q.bind(time(i, &s)?),
                SqlValue::Timestamp(s) => q.bind(timestamp(i, &s)?),
                SqlValue::Timestamptz(s) => q.bind(timestamptz(i, &s)?),
                SqlValue::Json(s) => q.bind(Json(json(i, &s)?)),
            };
        }
        Ok(q)
    }};
}

pub fn bind_pg(q: PgQuery<'_>, params: Vec<SqlValue>) -> Result<PgQuery<'_>, SqlError> {
    bind_typed!(q, params, UntypedNull)
}

pub fn bind_mysql(q: MySqlQuery<'_>, params: Vec<SqlValue>) -> Result<MySqlQuery<'_>, SqlError> {
    bind_typed!(q, params, None::<String>)
}

/// SQLite has no date, time or decimal types: those stay text.
pub fn bind_sqlite(mut q: SqliteQuery<'_>, params: Vec<SqlValue>) -> SqliteQuery<'_> {
    for p in params {
        q = match p {
            SqlValue::Null => q.bind(None::<String>),
            SqlValue::Boolean(b) => q.bind(b),
            SqlValue::Integer(n) => q.bind(n),
            SqlValue::Float(f) => q.bind(f),
            SqlValue::Bytes(b) => q.bind(b),
            SqlValue::Text(s)
            | SqlValue::Decimal(s)
            | SqlValue::Date(s)
            | SqlValue::Time(s)
            | SqlValue::Timestamp(s)
            | SqlValue::Timestamptz(s)
            | SqlValue::Json(s) => q.bind(s),
        };
    }
    q
}

/// How a column's cells are read.
#[derive(Clone, Copy, Debug)]
enum Read {
    Bool,
    Int,
    Unsigned,
    Float4,
    Float8,
    Decimal,
    Text,
    Bytes,
    Date,
    Time,
    Timestamp,
    Timestamptz,
    Json,
    JsonText,
    Uuid,
    Unsupported,
}

fn pg_read(type_name: &str) -> Read {
    match type_name {
        "BOOL" => Read::Bool,
        "INT2" | "INT4" | "INT8" | "OID" => Read::Int,
        "FLOAT4" => Read::Float4,
        "FLOAT8" => Read::Float8,
        "NUMERIC" => Read::Decimal,
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CITEXT" | "\"CHAR\"" | "CHAR" => Read::Text,
        "BYTEA" => Read::Bytes,
        "DATE" => Read::Date,
        "TIME" => Read::Time,
        "TIMESTAMP" => Read::Timestamp,
        "TIMESTAMPTZ" => Read::Timestamptz,
        "JSON" | "JSONB" => Read::Json,
        "UUID" => Read::Uuid,
        _ => Read::Unsupported,
    }
}

fn mysql_read(type_name: &str) -> Read {
    match type_name {
        "BOOLEAN" => Read::Bool,
        "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT" | "YEAR" => Read::Int,
        t if t.ends_with(" UNSIGNED") => Read::Unsigned,
        "FLOAT" => Read::Float4,
        "DOUBLE" => Read::Float8,
        "DECIMAL" => Read::Decimal,
        "CHAR" | "VARCHAR" | "TEXT" | "TINYTEXT" | "MEDIUMTEXT" | "LONGTEXT" | "ENUM" | "SET" => {
            Read::Text
        }
        "BINARY" | "VARBINARY" | "BLOB" | "TINYBLOB" | "MEDIUMBLOB" | "LONGBLOB" | "BIT" => {
            Read::Bytes
        }
        "DATE" => Read::Date,
        "TIME" => Read::Time,
        "DATETIME" => Read::Timestamp,
        "TIMESTAMP" => Read::Timestamptz,
        "JSON" => Read::JsonText,
        _ => Read::Unsupported,
    }
}

fn columns<R: Row>(rows: &[R]) -> (Vec<SqlColumn>, Vec<String>) {
    let Some(first) = rows.first() else {
        return (Vec::new(), Vec::new());
    };
    let cols: Vec<SqlColumn> = first
        .columns()
        .iter()
        .map(|c| SqlColumn {
            name: c.name().to_owned(),
            type_name: c.type_info().name().to_owned(),
        })
        .collect();
    let names = cols.iter().map(|c| c.type_name.clone()).collect();
    (cols, names)
}

fn unreadable(column: &SqlColumn, e: impl std::fmt::Display) -> SqlError {
    SqlError::Statement(format!(
        "cannot read column `{}` of type {}: {e}",
        column.name, column.type_name
    ))
}

fn unsupported(column: &SqlColumn) -> SqlError {
    SqlError::Statement(format!(
        "column `{}` has type {}, which has no mapping yet; cast it in the query (to text, say)",
        column.name, column.type_name
    ))
}

/// One decoder body for PostgreSQL and MySQL: read a cell by its `Read`.
macro_rules! decode_rows {
    ($rows:expr, $read_of:expr) => {{
        let rows = $rows;
        let (columns, type_names) = columns(rows);
        let reads: Vec<Read> = type_names.iter().map(|t| $read_of(t.as_str())).collect();
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut cells = Vec::with_capacity(reads.len());
            for (i, read) in reads.iter().enumerate() {
                let col = &columns[i];
                let raw = row.try_get_raw(i).map_err(|e| unreadable(col, e))?;
                if raw.is_null() {
                    cells.push(SqlValue::Null);
                    continue;
                }
                let e = |e: sqlx::Error| unreadable(col, e);
                cells.push(match read {
                    Read::Bool => SqlValue::Boolean(match row.try_get_unchecked::<bool, _>(i) {
                        Ok(b) => b,
                        Err(_) => row.try_get_unchecked::<i64, _>(i).map_err(e)? != 0,
                    }),
                    Read::Int => SqlValue::Integer(int(row, i).map_err(e)?),
                    Read::Unsigned => {
                        let n: u64 = row.unsigned(i).map_err(e)?;
                        match i64::try_from(n) {
                            Ok(n) => SqlValue::Integer(n),
                            Err(_) => SqlValue::Decimal(n.to_string()),
                        }
                    }
                    Read::Float4 => {
                        SqlValue::Float(row.try_get_unchecked::<f32, _>(i).map_err(e)? as f64)
                    }
                    Read::Float8 => SqlValue::Float(row.try_get_unchecked(i).map_err(e)?),
                    Read::Decimal => SqlValue::Decimal(row.decimal(i).map_err(e)?),
                    Read::Text => SqlValue::Text(row.try_get_unchecked(i).map_err(e)?),
                    Read::Bytes => SqlValue::Bytes(row.try_get_unchecked(i).map_err(e)?),
                    Read::Date => SqlValue::Date(
                        row.try_get_unchecked::<NaiveDate, _>(i)
                            .map_err(e)?
                            .format(DATE)
                            .to_string(),
                    ),
                    Read::Time => SqlValue::Time(
                        row.try_get_unchecked::<NaiveTime, _>(i)
                            .map_err(e)?
                            .format(TIME)
                            .to_string(),
                    ),
                    Read::Timestamp => SqlValue::Timestamp(
                        row.try_get_unchecked::<NaiveDateTime, _>(i)
                            .map_err(e)?
                            .format(TIMESTAMP)
                            .to_string(),
                    ),
                    Read::Timestamptz => SqlValue::Timestamptz(
                        row.try_get_unchecked::<DateTime<Utc>, _>(i)
                            .map_err(e)?
                            .format(TIMESTAMPTZ)
                            .to_string(),
                    ),
                    Read::Json => SqlValue::Json(
                        row.try_get_unchecked::<JsonValue, _>(i)
                            .map_err(e)?
                            .to_string(),
                    ),
                    Read::JsonText => SqlValue::Json(row.try_get_unchecked(i).map_err(e)?),
                    Read::Uuid => {
                        SqlValue::Text(row.try_get_unchecked::<Uuid, _>(i).map_err(e)?.to_string())
                    }
                    Read::Unsupported => return Err(unsupported(col)),
                });
            }
            out.push(cells);
        }
        Ok(SqlRows { columns, rows: out })
    }};
}

/// PostgreSQL's integers come in three widths; MySQL's decoder takes any.
trait AnyInt {
    fn int(&self, i: usize) -> Result<i64, sqlx::Error>;
    fn unsigned(&self, i: usize) -> Result<u64, sqlx::Error>;
    /// A decimal as text with the column's own scale (`1234.50`).
    fn decimal(&self, i: usize) -> Result<String, sqlx::Error>;
}

impl AnyInt for PgRow {
    fn int(&self, i: usize) -> Result<i64, sqlx::Error> {
        match self.columns()[i].type_info().name() {
            "INT2" => self.try_get_unchecked::<i16, _>(i).map(i64::from),
            "INT4" => self.try_get_unchecked::<i32, _>(i).map(i64::from),
            "OID" => self
                .try_get_unchecked::<sqlx::postgres::types::Oid, _>(i)
                .map(|o| i64::from(o.0)),
            _ => self.try_get_unchecked::<i64, _>(i),
        }
    }

    /// PostgreSQL has no unsigned types; never asked.
    fn unsigned(&self, i: usize) -> Result<u64, sqlx::Error> {
        self.int(i).map(|n| n as u64)
    }

    /// The binary NUMERIC carries its display scale (bytes 6..8) which the
    /// decoded BigDecimal loses (it rounds the scale up to groups of four
    /// digits): put it back.
    fn decimal(&self, i: usize) -> Result<String, sqlx::Error> {
        use sqlx::postgres::PgValueFormat;
        let d = self.try_get_unchecked::<BigDecimal, _>(i)?;
        let raw = self.try_get_raw(i)?;
        let scale = match raw.format() {
            PgValueFormat::Binary => raw
                .as_bytes()
                .ok()
                .and_then(|b| b.get(6..8))
                .map(|s| u16::from_be_bytes([s[0], s[1]]) as i64),
            PgValueFormat::Text => None,
        };
        Ok(match scale {
            Some(scale) => d.with_scale(scale).to_plain_string(),
            None => d.to_plain_string(),
        })
    }
}

impl AnyInt for MySqlRow {
    fn int(&self, i: usize) -> Result<i64, sqlx::Error> {
        self.try_get_unchecked::<i64, _>(i)
    }

    fn unsigned(&self, i: usize) -> Result<u64, sqlx::Error> {
        self.try_get_unchecked::<u64, _>(i)
    }

    /// MySQL sends decimals as text, scale included.
    fn decimal(&self, i: usize) -> Result<String, sqlx::Error> {
        self.try_get_unchecked::<BigDecimal, _>(i)
            .map(|d| d.to_plain_string())
    }
}

fn int<R: AnyInt>(row: &R, i: usize) -> Result<i64, sqlx::Error> {
    row.int(i)
}

pub fn decode_pg(rows: &[PgRow]) -> Result<SqlRows, SqlError> {
    decode_rows!(rows, pg_read)
}

pub fn decode_mysql(rows: &[MySqlRow]) -> Result<SqlRows, SqlError> {
    decode_rows!(rows, mysql_read)
}

/// SQLite types values, not columns: each cell is read by its own storage
/// class; a column declared BOOLEAN reads as booleans.
pub fn decode_sqlite(rows: &[SqliteRow]) -> Result<SqlRows, SqlError> {
    let (columns, type_names) = columns(rows);
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut cells = Vec::with_capacity(columns.len());
        for (i, col) in columns.iter().enumerate() {
            let raw = row.try_get_raw(i).map_err(|e| unreadable(col, e))?;
            if raw.is_null() {
                cells.push(SqlValue::Null);
                continue;
            }
            let class = raw.type_info().name().to_owned();
            let e = |e: sqlx::Error| unreadable(col, e);
            cells.push(match class.as_str() {
                "INTEGER" | "BOOLEAN" | "INT8" => {
                    let n: i64 = row.try_get_unchecked(i).map_err(e)?;
                    if type_names[i].eq_ignore_ascii_case("BOOLEAN") {
                        SqlValue::Boolean(n != 0)
                    } else {
                        SqlValue::Integer(n)
                    }
                }
                "REAL" => SqlValue::Float(row.try_get_unchecked(i).map_err(e)?),
                "BLOB" => SqlValue::Bytes(row.try_get_unchecked(i).map_err(e)?),
                _ => SqlValue::Text(row.try_get_unchecked(i).map_err(e)?),
            });
        }
        out.push(cells);
    }
    Ok(SqlRows { columns, rows: out })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_formats_parse_both_ways() {
        assert_eq!(
            timestamp(0, "2024-05-01 13:45:00.25")
                .unwrap()
                .format(TIMESTAMP)
                .to_string(),
            "2024-05-01T13:45:00.250"
        );
        assert_eq!(
            timestamptz(0, "2024-05-01T13:45:00+02:00")
                .unwrap()
                .format(TIMESTAMPTZ)
                .to_string(),
            "2024-05-01T11:45:00Z"
        );
        assert!(date(0, "2024-13-01").is_err());
        let e = decimal(2, "12,5").unwrap_err();
        assert_eq!(
            e,
            SqlError::Data("parameter 3: \"12,5\" is not a decimal number".into())
        );
        assert_eq!(decimal(0, "1e3").unwrap().to_plain_string(), "1000");
    }
}
