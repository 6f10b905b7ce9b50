//! [`FakeSql`]: the `sql` capability as a recording fake.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::sql::{Column, CopyLoad, CopyWrite, Dialect, Rows, SqlCapability, SqlError, Value};

/// One call a connector made on a [`FakeSql`].
#[derive(Clone, Debug)]
pub enum SqlCall {
    Query {
        statement: String,
        params: Vec<Value>,
    },
    Execute {
        statement: String,
        params: Vec<Value>,
    },
    ExecuteBatch {
        statement: String,
        params: Vec<Vec<Value>>,
    },
    /// A bulk load begun (`copy-begin`).
    CopyBegin { load: CopyLoad },
    /// A bulk load ended (`finish`), with every byte written to it.
    Copy { load: CopyLoad, data: Vec<u8> },
}

impl SqlCall {
    /// The SQL text: a load's `COPY` statement for the copy calls.
    pub fn statement(&self) -> &str {
        match self {
            SqlCall::Query { statement, .. }
            | SqlCall::Execute { statement, .. }
            | SqlCall::ExecuteBatch { statement, .. } => statement,
            SqlCall::CopyBegin { load } | SqlCall::Copy { load, .. } => &load.copy,
        }
    }
}

/// What a scripted rule answers to a call.
#[derive(Clone, Debug)]
pub enum Answer {
    /// A query's rows.
    Rows(Rows),
    /// The rows a statement, batch or load affected.
    Affected(u64),
    /// The call fails with this error.
    Fail(SqlError),
    /// An `execute-batch` fails at this parameter list.
    FailAt(u32, SqlError),
}

type Rule = Box<dyn FnMut(&SqlCall) -> Option<Answer>>;

#[derive(Default)]
struct State {
    calls: Vec<SqlCall>,
    rules: Vec<Rule>,
}

/// A database connection that records every call and answers by scripted
/// rules ([`FakeSql::answer`]); without a rule that answers, a query
/// returns no rows, a statement affects one row, a batch one per
/// parameter list and a load one per line. Clones share the record and
/// the rules, so a test keeps one while the task under test owns another.
#[derive(Clone)]
pub struct FakeSql {
    dialect: Dialect,
    state: Rc<RefCell<State>>,
}

impl FakeSql {
    pub fn new(dialect: Dialect) -> FakeSql {
        FakeSql {
            dialect,
            state: Rc::default(),
        }
    }

    /// Makes `SqlCapability::open(name)` on this thread return this fake
    /// (a clone sharing its record and rules): a task under test opens its
    /// connection by name, as it does in the worker.
    pub fn install(&self, name: &str) {
        INSTALLED.with(|m| m.borrow_mut().insert(name.to_owned(), self.clone()));
    }

    /// Adds a rule: for each call, the rules are asked in the order they
    /// were added, and the first that returns an answer gives it.
    pub fn answer(&self, rule: impl FnMut(&SqlCall) -> Option<Answer> + 'static) {
        self.state.borrow_mut().rules.push(Box::new(rule));
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<SqlCall> {
        self.state.borrow().calls.clone()
    }

    /// The SQL text of every call so far, in order.
    pub fn statements(&self) -> Vec<String> {
        let state = self.state.borrow();
        state
            .calls
            .iter()
            .map(|c| c.statement().to_owned())
            .collect()
    }

    /// Forgets the calls so far (the rules stay).
    pub fn clear(&self) {
        self.state.borrow_mut().calls.clear();
    }

    /// Records `call` and asks the rules about it.
    fn call(&self, call: SqlCall) -> Option<Answer> {
        let mut state = self.state.borrow_mut();
        let answer = state.rules.iter_mut().find_map(|rule| rule(&call));
        state.calls.push(call);
        answer
    }
}

/// A statement's answer as a count, or its error.
fn affected(answer: Option<Answer>, default: u64) -> Result<u64, SqlError> {
    match answer {
        None => Ok(default),
        Some(Answer::Affected(n)) => Ok(n),
        Some(Answer::Rows(r)) => Ok(r.rows.len() as u64),
        Some(Answer::Fail(e) | Answer::FailAt(_, e)) => Err(e),
    }
}

thread_local! {
    /// The fakes [`FakeSql::install`]ed on this thread, by connection name.
    static INSTALLED: RefCell<HashMap<String, FakeSql>> = RefCell::default();
}

impl SqlCapability for FakeSql {
    type Writer = FakeCopy;

    fn open(name: &str) -> Result<FakeSql, SqlError> {
        INSTALLED
            .with(|m| m.borrow().get(name).cloned())
            .ok_or_else(|| {
                SqlError::UnknownConnection(format!(
                    "no FakeSql installed as connection `{name}` on this thread (FakeSql::install)"
                ))
            })
    }

    fn dialect(&self) -> Dialect {
        self.dialect
    }

    fn query(&self, statement: &str, params: &[Value]) -> Result<Rows, SqlError> {
        let call = SqlCall::Query {
            statement: statement.to_owned(),
            params: params.to_vec(),
        };
        match self.call(call) {
            None | Some(Answer::Affected(_)) => Ok(rows(&[], Vec::new())),
            Some(Answer::Rows(r)) => Ok(r),
            Some(Answer::Fail(e) | Answer::FailAt(_, e)) => Err(e),
        }
    }

    fn execute(&self, statement: &str, params: &[Value]) -> Result<u64, SqlError> {
        let call = SqlCall::Execute {
            statement: statement.to_owned(),
            params: params.to_vec(),
        };
        affected(self.call(call), 1)
    }

    fn execute_batch(
        &self,
        statement: &str,
        params: &[Vec<Value>],
    ) -> Result<u64, (u32, SqlError)> {
        let call = SqlCall::ExecuteBatch {
            statement: statement.to_owned(),
            params: params.to_vec(),
        };
        match self.call(call) {
            Some(Answer::FailAt(i, e)) => Err((i, e)),
            answer => affected(answer, params.len() as u64).map_err(|e| (0, e)),
        }
    }

    fn copy_begin(&self, load: &CopyLoad) -> Result<FakeCopy, SqlError> {
        if self.dialect != Dialect::Postgres {
            return Err(SqlError::Statement(format!(
                "COPY is PostgreSQL's; this connection speaks {:?}",
                self.dialect
            )));
        }
        if let Some(Answer::Fail(e) | Answer::FailAt(_, e)) =
            self.call(SqlCall::CopyBegin { load: load.clone() })
        {
            return Err(e);
        }
        Ok(FakeCopy {
            db: self.clone(),
            load: load.clone(),
            data: Vec::new(),
        })
    }
}

/// A bulk load into a [`FakeSql`]: takes every piece; `finish` records
/// the load with its data and asks the rules.
pub struct FakeCopy {
    db: FakeSql,
    load: CopyLoad,
    data: Vec<u8>,
}

impl CopyWrite for FakeCopy {
    fn write(&mut self, data: &[u8]) -> Result<(), SqlError> {
        self.data.extend_from_slice(data);
        Ok(())
    }

    fn finish(self) -> Result<u64, SqlError> {
        let lines = self.data.iter().filter(|b| **b == b'\n').count() as u64;
        let call = SqlCall::Copy {
            load: self.load,
            data: self.data,
        };
        affected(self.db.call(call), lines)
    }
}

/// Rows of a query answer: columns named `columns` (type names empty).
pub fn rows(columns: &[&str], rows: Vec<Vec<Value>>) -> Rows {
    Rows {
        columns: columns
            .iter()
            .map(|c| Column {
                name: (*c).to_owned(),
                type_name: String::new(),
            })
            .collect(),
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_recorded_and_answered_by_the_first_rule_that_knows_them() {
        let db = FakeSql::new(Dialect::Postgres);
        db.answer(|c| match c {
            SqlCall::Execute { params, .. } if params.len() == 2 => {
                Some(Answer::Fail(SqlError::Data("too many".into())))
            }
            _ => None,
        });
        db.answer(|c| {
            c.statement()
                .starts_with("DELETE")
                .then_some(Answer::Affected(7))
        });
        assert_eq!(db.execute("DELETE FROM t", &[]), Ok(7));
        assert!(matches!(
            db.execute("INSERT", &[Value::Null, Value::Null]),
            Err(SqlError::Data(m)) if m == "too many"
        ));
        assert_eq!(db.execute("UPDATE t", &[Value::Null]), Ok(1));
        let mut load = db
            .copy_begin(&CopyLoad {
                before: vec![],
                copy: "COPY t FROM STDIN".into(),
                after: vec![],
            })
            .unwrap();
        load.write(b"1\n2").unwrap();
        load.write(b"\n").unwrap();
        assert_eq!(load.finish(), Ok(2));
        assert_eq!(
            db.statements(),
            [
                "DELETE FROM t",
                "INSERT",
                "UPDATE t",
                "COPY t FROM STDIN",
                "COPY t FROM STDIN"
            ]
        );
        assert!(matches!(&db.calls()[4], SqlCall::Copy { data, .. } if data == b"1\n2\n"));
        let mysql = FakeSql::new(Dialect::Mysql);
        let load = CopyLoad {
            before: vec![],
            copy: String::new(),
            after: vec![],
        };
        assert!(matches!(
            mysql.copy_begin(&load),
            Err(SqlError::Statement(_))
        ));
    }
}
