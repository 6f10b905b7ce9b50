//! The contract's `sql` interface, served from the connector's pools
//! (`crate::sql`). This file only converts between the contract's types and
//! the pools' own; the pools do the work.

use super::bindings::tributary::connector::sql as wit;
use super::engine::PluginEngine;
use super::state::TaskState;
use crate::sql::{CopyLoad, CopyWriter, Database, Dialect, SqlError, SqlRows, SqlValue};
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::Resource;

/// What a guest's `connection` handle refers to.
pub struct SqlConnection {
    db: Arc<Database>,
}

/// What a guest's `copy-writer` handle refers to: a bulk load under way.
pub struct SqlCopyWriter(CopyWriter);

fn value_in(v: wit::Value) -> SqlValue {
    match v {
        wit::Value::Null => SqlValue::Null,
        wit::Value::Boolean(b) => SqlValue::Boolean(b),
        wit::Value::Integer(n) => SqlValue::Integer(n),
        wit::Value::Float(f) => SqlValue::Float(f),
        wit::Value::Text(s) => SqlValue::Text(s),
        wit::Value::Bytes(b) => SqlValue::Bytes(b),
        wit::Value::Decimal(s) => SqlValue::Decimal(s),
        wit::Value::Date(s) => SqlValue::Date(s),
        wit::Value::Time(s) => SqlValue::Time(s),
        wit::Value::Timestamp(s) => SqlValue::Timestamp(s),
        wit::Value::Timestamptz(s) => SqlValue::Timestamptz(s),
        wit::Value::Json(s) => SqlValue::Json(s),
    }
}

fn value_out(v: SqlValue) -> wit::Value {
    match v {
        SqlValue::Null => wit::Value::Null,
        SqlValue::Boolean(b) => wit::Value::Boolean(b),
        SqlValue::Integer(n) => wit::Value::Integer(n),
        SqlValue::Float(f) => wit::Value::Float(f),
        SqlValue::Text(s) => wit::Value::Text(s),
        SqlValue::Bytes(b) => wit::Value::Bytes(b),
        SqlValue::Decimal(s) => wit::Value::Decimal(s),
        SqlValue::Date(s) => wit::Value::Date(s),
        SqlValue::Time(s) => wit::Value::Time(s),
        SqlValue::Timestamp(s) => wit::Value::Timestamp(s),
        SqlValue::Timestamptz(s) => wit::Value::Timestamptz(s),
        SqlValue::Json(s) => wit::Value::Json(s),
    }
}

fn rows_out(r: SqlRows) -> wit::Rows {
    wit::Rows {
        columns: r
            .columns
            .into_iter()
            .map(|c| wit::Column {
                name: c.name,
                type_name: c.type_name,
            })
            .collect(),
        rows: r
            .rows
            .into_iter()
            .map(|row| row.into_iter().map(value_out).collect())
            .collect(),
    }
}

fn error_out(e: SqlError) -> wit::SqlError {
    match e {
        SqlError::Authentication(m) => wit::SqlError::Authentication(m),
        SqlError::Unavailable(m) => wit::SqlError::Unavailable(m),
        SqlError::Statement(m) => wit::SqlError::Statement(m),
        SqlError::Data(m) => wit::SqlError::Data(m),
        SqlError::UnknownConnection(m) => wit::SqlError::UnknownConnection(m),
    }
}

impl TaskState {
    fn database(&self, handle: &Resource<SqlConnection>) -> Arc<Database> {
        // A handle the guest holds was made by `open` below, so it is in
        // the table; a stale one traps in the binding layer before here.
        self.table
            .get(handle)
            .map(|c| c.db.clone())
            .expect("connection handle in the resource table")
    }

    /// Runs `f`, and gives the guest back the time it spent waiting on the
    /// database: host time does not count against the call deadline.
    pub(super) fn waiting<R>(&mut self, f: impl FnOnce() -> R) -> R {
        waiting(&mut self.host_wait_ticks, f)
    }
}

/// [`TaskState::waiting`], for a call that also borrows another part of
/// the state (the resource table).
fn waiting<R>(host_wait_ticks: &mut u64, f: impl FnOnce() -> R) -> R {
    let start = Instant::now();
    let r = f();
    *host_wait_ticks += PluginEngine::ticks(start.elapsed());
    r
}

impl wit::Host for TaskState {}

impl wit::HostConnection for TaskState {
    fn open(&mut self, name: String) -> Result<Resource<SqlConnection>, wit::SqlError> {
        let db = self.databases.get(&name).map_err(error_out)?;
        self.table
            .push(SqlConnection { db })
            .map_err(|e| wit::SqlError::Unavailable(format!("too many open connections: {e}")))
    }

    fn dialect(&mut self, handle: Resource<SqlConnection>) -> wit::Dialect {
        match self.database(&handle).dialect {
            Dialect::Postgres => wit::Dialect::Postgres,
            Dialect::Mysql => wit::Dialect::Mysql,
            Dialect::Sqlite => wit::Dialect::Sqlite,
        }
    }

    fn query(
        &mut self,
        handle: Resource<SqlConnection>,
        statement: String,
        params: Vec<wit::Value>,
    ) -> Result<wit::Rows, wit::SqlError> {
        let db = self.database(&handle);
        let params = params.into_iter().map(value_in).collect();
        let stop = self.stop.clone();
        self.waiting(|| db.query(&statement, params, &stop))
            .map(rows_out)
            .map_err(error_out)
    }

    fn execute(
        &mut self,
        handle: Resource<SqlConnection>,
        statement: String,
        params: Vec<wit::Value>,
    ) -> Result<u64, wit::SqlError> {
        let db = self.database(&handle);
        let params = params.into_iter().map(value_in).collect();
        let stop = self.stop.clone();
        self.waiting(|| db.execute(&statement, params, &stop))
            .map_err(error_out)
    }

    fn execute_batch(
        &mut self,
        handle: Resource<SqlConnection>,
        statement: String,
        params: Vec<Vec<wit::Value>>,
    ) -> Result<u64, (u32, wit::SqlError)> {
        let db = self.database(&handle);
        let batch = params
            .into_iter()
            .map(|p| p.into_iter().map(value_in).collect())
            .collect();
        let stop = self.stop.clone();
        self.waiting(|| db.execute_batch(&statement, batch, &stop))
            .map_err(|(i, e)| (i, error_out(e)))
    }

    fn copy_begin(
        &mut self,
        handle: Resource<SqlConnection>,
        load: wit::CopyLoad,
    ) -> Result<Resource<SqlCopyWriter>, wit::SqlError> {
        let db = self.database(&handle);
        let load = CopyLoad {
            before: load.before,
            copy: load.copy,
            after: load.after,
        };
        let stop = self.stop.clone();
        let writer = self
            .waiting(|| db.copy_begin(load, &stop))
            .map_err(error_out)?;
        // Dropping the writer (here, or when the guest drops its handle)
        // rolls the load back.
        self.table
            .push(SqlCopyWriter(writer))
            .map_err(|e| wit::SqlError::Unavailable(format!("too many open loads: {e}")))
    }

    fn drop(&mut self, handle: Resource<SqlConnection>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        Ok(())
    }
}

impl wit::HostCopyWriter for TaskState {
    fn write(
        &mut self,
        handle: Resource<SqlCopyWriter>,
        data: Vec<u8>,
    ) -> Result<(), wit::SqlError> {
        // A handle the guest holds is in the table (see `database`).
        let writer = self
            .table
            .get_mut(&handle)
            .expect("copy-writer handle in the resource table");
        waiting(&mut self.host_wait_ticks, || writer.0.write(data)).map_err(error_out)
    }

    fn finish(&mut self, handle: Resource<SqlCopyWriter>) -> Result<u64, wit::SqlError> {
        let writer = self
            .table
            .delete(handle)
            .expect("copy-writer handle in the resource table");
        self.waiting(|| writer.0.finish()).map_err(error_out)
    }

    fn drop(&mut self, handle: Resource<SqlCopyWriter>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        Ok(())
    }
}
