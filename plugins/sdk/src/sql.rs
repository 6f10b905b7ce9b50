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
//!
//! Connector code that takes the connection as an [`SqlCapability`] (not a
//! [`Connection`]) runs in unit tests on the host against
//! `testing::FakeSql`, which records the statements and answers as scripted.

pub use crate::bindings::source::tributary::connector::sql::{
    Column, Connection, CopyLoad, CopyWriter, Dialect, Rows, SqlError, Value,
};

/// The `sql` capability as a connector uses it: implemented by the
/// worker's [`Connection`] and, for unit tests on the host, by
/// `testing::FakeSql`. The methods are those of [`Connection`].
pub trait SqlCapability {
    /// A bulk load under way.
    type Writer: CopyWrite;

    /// The connection called `name` in the connector's config (`default`
    /// for `connection.url`, …).
    fn open(name: &str) -> Result<Self, SqlError>
    where
        Self: Sized;
    /// The dialect to write SQL in.
    fn dialect(&self) -> Dialect;
    /// Runs a query and returns all its rows.
    fn query(&self, statement: &str, params: &[Value]) -> Result<Rows, SqlError>;
    /// Runs one statement; the number of rows it affected.
    fn execute(&self, statement: &str, params: &[Value]) -> Result<u64, SqlError>;
    /// Runs `statement` once per parameter list in one transaction; on
    /// error, the index of the list that failed.
    fn execute_batch(&self, statement: &str, params: &[Vec<Value>])
        -> Result<u64, (u32, SqlError)>;
    /// Starts a bulk load (PostgreSQL's `COPY … FROM STDIN`).
    fn copy_begin(&self, load: &CopyLoad) -> Result<Self::Writer, SqlError>;
}

/// A bulk load under way: [`CopyWriter`], or a fake's.
pub trait CopyWrite {
    /// More rows, in COPY's text format.
    fn write(&mut self, data: &[u8]) -> Result<(), SqlError>;
    /// Ends the load and commits: the number of rows loaded.
    fn finish(self) -> Result<u64, SqlError>;
}

impl SqlCapability for Connection {
    type Writer = CopyWriter;

    fn open(name: &str) -> Result<Self, SqlError> {
        Connection::open(name)
    }
    fn dialect(&self) -> Dialect {
        Connection::dialect(self)
    }
    fn query(&self, statement: &str, params: &[Value]) -> Result<Rows, SqlError> {
        Connection::query(self, statement, params)
    }
    fn execute(&self, statement: &str, params: &[Value]) -> Result<u64, SqlError> {
        Connection::execute(self, statement, params)
    }
    fn execute_batch(
        &self,
        statement: &str,
        params: &[Vec<Value>],
    ) -> Result<u64, (u32, SqlError)> {
        Connection::execute_batch(self, statement, params)
    }
    fn copy_begin(&self, load: &CopyLoad) -> Result<CopyWriter, SqlError> {
        Connection::copy_begin(self, load)
    }
}

impl CopyWrite for CopyWriter {
    fn write(&mut self, data: &[u8]) -> Result<(), SqlError> {
        CopyWriter::write(self, data)
    }
    fn finish(self) -> Result<u64, SqlError> {
        CopyWriter::finish(self)
    }
}

/// Appends `row` to `buf` in the text format of PostgreSQL's `COPY` (what a
/// [`CopyWriter`] takes): values separated by tabs, a newline at the end,
/// `\N` for null, backslash escapes in text. The database parses each value
/// with its column type's input function, so decimals, dates and times go
/// as their text, booleans as `t`/`f`, bytes as `\x` and hex digits.
pub fn copy_text_row(buf: &mut Vec<u8>, row: &[Value]) {
    use std::io::Write;
    for (i, v) in row.iter().enumerate() {
        if i > 0 {
            buf.push(b'\t');
        }
        match v {
            Value::Null => buf.extend_from_slice(b"\\N"),
            Value::Boolean(b) => buf.push(if *b { b't' } else { b'f' }),
            Value::Integer(n) => {
                let _ = write!(buf, "{n}");
            }
            Value::Float(f) if f.is_nan() => buf.extend_from_slice(b"NaN"),
            Value::Float(f) if f.is_infinite() => {
                buf.extend_from_slice(if *f > 0.0 { b"Infinity" } else { b"-Infinity" })
            }
            Value::Float(f) => {
                let _ = write!(buf, "{f:?}");
            }
            Value::Bytes(b) => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                // `\x…`: the backslash of bytea's hex form, escaped.
                buf.extend_from_slice(b"\\\\x");
                for byte in b {
                    buf.push(HEX[(byte >> 4) as usize]);
                    buf.push(HEX[(byte & 15) as usize]);
                }
            }
            Value::Text(s)
            | Value::Decimal(s)
            | Value::Date(s)
            | Value::Time(s)
            | Value::Timestamp(s)
            | Value::Timestamptz(s)
            | Value::Json(s) => copy_text_escape(buf, s),
        }
    }
    buf.push(b'\n');
}

/// `s` with the characters COPY's text format gives a meaning escaped.
fn copy_text_escape(buf: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut from = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            _ => continue,
        };
        buf.extend_from_slice(&bytes[from..i]);
        buf.extend_from_slice(escaped);
        from = i + 1;
    }
    buf.extend_from_slice(&bytes[from..]);
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_rows_escape_what_the_format_gives_a_meaning() {
        let mut buf = Vec::new();
        copy_text_row(
            &mut buf,
            &[
                Value::Integer(-7),
                Value::Text("a\tb\nc\\d\re".into()),
                Value::Null,
                Value::Boolean(true),
                Value::Bytes(vec![0, 0xab, 0x10]),
                Value::Float(f64::NEG_INFINITY),
                Value::Float(0.1),
                Value::Decimal("12.50".into()),
            ],
        );
        copy_text_row(&mut buf, &[Value::Text(String::new())]);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "-7\ta\\tb\\nc\\\\d\\re\t\\N\tt\t\\\\x00ab10\t-Infinity\t0.1\t12.50\n\n"
        );
    }
}
