//! Tables: their columns from the catalog (read again when a statement
//! says they changed), and `CREATE TABLE` from a record under `auto.create`.

use serde_json::Value as Json;
use tributary_sdk::sql::{Dialect, SqlCapability};
use tributary_sdk::{debug, info, TaskError};

use super::decode::{scale_of, Decoded, DATE, DECIMAL, TIME, TIMESTAMP};
use super::{task_error, DatabaseSinkTask, Op, CONNECTION};
use crate::dialect::{self, ColumnInfo};

impl<D: SqlCapability> DatabaseSinkTask<D> {
    /// Makes sure the columns of `table` are known, creating the table from
    /// `record` under `auto.create`. `false`: the table is missing and the
    /// record is a delete, so there is nothing to do.
    pub(super) fn ensure_table(
        &mut self,
        table: &str,
        record: &Decoded,
    ) -> Result<bool, TaskError> {
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
    pub(super) fn load_columns(&self, table: &str) -> Result<Vec<ColumnInfo>, TaskError> {
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
    pub(super) fn reload(&mut self, table: &str) -> Result<bool, TaskError> {
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
    pub(super) fn create_table(&self, table: &str, record: &Decoded) -> Result<(), TaskError> {
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
pub(super) enum ColumnType {
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
    pub(super) fn of(schema: Option<&Json>, value: &Json) -> ColumnType {
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
    pub(super) fn infer(value: &Json) -> ColumnType {
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
    pub(super) fn sql(self, dialect: Dialect, key: bool) -> String {
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
