//! Writing groups of rows: the statements each dialect takes fastest
//! (`COPY`, multi-row `INSERT`, `execute-batch`), and the fall-backs that
//! find the records the database rejects.

use std::collections::HashSet;

use tributary_sdk::log::counter_add;
use tributary_sdk::sql::{copy_text_row, CopyWrite, Dialect, SqlCapability, SqlError, Value};
use tributary_sdk::{debug, PutResult, TaskError};

use super::statement::Statement;
use super::{
    task_error, Copying, DatabaseSinkTask, Failure, Group, Op, OpenCopy, Outcome, Prepared, Row,
    MAX_PARAMS, MAX_ROWS, PIECE,
};
use crate::dialect::ColumnInfo;
use crate::json;

impl<D: SqlCapability> DatabaseSinkTask<D> {
    /// Writes a group. Records the database rejects become bad records;
    /// a statement error reads the table's columns again once and retries
    /// what was not written, then fails the task.
    pub(super) fn write(
        &mut self,
        mut group: Group<D::Writer>,
        out: &mut Outcome,
    ) -> Result<(), TaskError> {
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
    pub(super) fn statement<'a>(
        &self,
        group: &'a Group<D::Writer>,
        columns: &'a [ColumnInfo],
    ) -> Statement<'a> {
        Statement {
            dialect: self.dialect,
            table: &group.table,
            columns,
            key: key_positions(group),
        }
    }

    /// The columns for `names`, matched exactly or else ignoring case; the
    /// catalog is read again once if one is missing. `None`: still missing.
    pub(super) fn columns_of(
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
    pub(super) fn no_column(&self, group: &Group<D::Writer>, rows: &[Row], out: &mut Outcome) {
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
    pub(super) fn execute(
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
    pub(super) fn copy(
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
    pub(super) fn copied(
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
    pub(super) fn copy_some(&mut self, group: &mut Group<D::Writer>, out: &mut Outcome) {
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
    pub(super) fn open_copy(&mut self, group: &Group<D::Writer>) -> Option<OpenCopy<D::Writer>> {
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
    pub(super) fn finish_copy(
        &self,
        group: &Group<D::Writer>,
        c: OpenCopy<D::Writer>,
        out: &mut Outcome,
    ) -> Result<(), Failure> {
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
    pub(super) fn insert_multi_row(
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
    pub(super) fn insert_one_by_one(
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
    pub(super) fn run_batch(
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
pub(super) fn send_rows<'a, W: CopyWrite>(
    writer: &mut W,
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
pub(super) fn end_load<W: CopyWrite>(mut writer: W, text: &[u8]) -> Result<u64, SqlError> {
    if !text.is_empty() {
        writer.write(text)?;
    }
    writer.finish()
}

/// The column called `name`: exactly, or else ignoring case.
pub(super) fn find_column<'a>(columns: &'a [ColumnInfo], name: &str) -> Option<&'a ColumnInfo> {
    columns
        .iter()
        .find(|c| c.name == name)
        .or_else(|| columns.iter().find(|c| c.name.eq_ignore_ascii_case(name)))
}

/// The positions of the key fields among the group's fields.
pub(super) fn key_positions<W>(group: &Group<W>) -> Vec<usize> {
    group
        .key
        .iter()
        .filter_map(|k| group.names.iter().position(|n| n == k))
        .collect()
}

/// Converts rows to SQL values for `columns`; a field that does not fit its
/// column makes its record bad.
pub(super) fn convert(
    table: &str,
    columns: &[ColumnInfo],
    rows: &[Row],
    out: &mut Outcome,
) -> Vec<Prepared> {
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
pub(super) fn last_per_key(rows: &[Prepared], key: &[usize]) -> Vec<usize> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::At;
    use std::rc::Rc;

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
}
