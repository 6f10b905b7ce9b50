//! Database access through the worker.
//!
//! The connector config names connections (`connection.url`,
//! `connection.user`, `connection.password` for the one called `default`;
//! `connection.<name>.url`, … for others). The worker pools them and keeps
//! their credentials; a task opens one by name and sends SQL:
//!
//! ```ignore
//! use tributary_sdk::sql::{Connection, Value};
//! let db = Connection::open("default")?;
//! let rows = db.query("SELECT id, name FROM users WHERE id > $1", &[Value::Integer(10)])?;
//! ```

pub use crate::bindings::source::tributary::connector::sql::{
    Column, Connection, CopyLoad, Dialect, Rows, SqlError, Value,
};

impl SqlError {
    /// The database's message, whatever the kind.
    pub fn message(&self) -> &str {
        match self {
            SqlError::Authentication(m)
            | SqlError::Unavailable(m)
            | SqlError::Statement(m)
            | SqlError::Data(m)
            | SqlError::UnknownConnection(m) => m,
        }
    }

    /// Whether the same call may work later: the database could not be
    /// reached. Refused credentials are not transient: the worker has
    /// already fetched them again from their provider before it reports
    /// `authentication`.
    pub fn is_transient(&self) -> bool {
        matches!(self, SqlError::Unavailable(_))
    }
}

impl Dialect {
    /// The placeholder for the `n`th parameter (1-based).
    pub fn placeholder(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("${n}"),
            Dialect::Mysql | Dialect::Sqlite => "?".to_owned(),
        }
    }

    /// `name` quoted as an identifier.
    pub fn quote(self, name: &str) -> String {
        match self {
            Dialect::Mysql => format!("`{}`", name.replace('`', "``")),
            Dialect::Postgres | Dialect::Sqlite => format!("\"{}\"", name.replace('"', "\"\"")),
        }
    }
}
