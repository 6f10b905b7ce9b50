//! Sorts a database error into the contract's kinds, by SQLSTATE (and
//! MySQL's error numbers, SQLite's result codes), so a guest can tell a bad
//! record from a bad statement from a database that is away.

use super::{Dialect, SqlError};

/// The contract kind of `e`, with the database's message and code.
pub fn classify(e: sqlx::Error, dialect: Dialect) -> SqlError {
    match e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let message = format!("{} (code {code})", db.message());
            let number = db
                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .map(|m| m.number());
            match dialect {
                Dialect::Postgres => postgres(&code, message),
                Dialect::Mysql => mysql(number.unwrap_or(0), &code, message),
                Dialect::Sqlite => sqlite(&code, message),
            }
        }
        sqlx::Error::Io(e) => SqlError::Unavailable(format!("cannot reach the database: {e}")),
        sqlx::Error::Tls(e) => SqlError::Unavailable(format!("TLS: {e}")),
        sqlx::Error::PoolTimedOut => SqlError::Unavailable(
            "no connection within pool.acquire.timeout.ms (is the database up?)".into(),
        ),
        sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
            SqlError::Unavailable("the connection pool is closed".into())
        }
        sqlx::Error::Protocol(m) => SqlError::Unavailable(format!("protocol error: {m}")),
        sqlx::Error::Encode(e) => SqlError::Data(format!("cannot encode a parameter: {e}")),
        sqlx::Error::ColumnDecode { index, source } => {
            SqlError::Statement(format!("cannot read column {index}: {source}"))
        }
        // Configuration errors may quote the URL: never pass their text on.
        sqlx::Error::Configuration(_) => {
            SqlError::Statement("the connection settings are not usable".into())
        }
        other => SqlError::Statement(other.to_string()),
    }
}

fn postgres(sqlstate: &str, message: String) -> SqlError {
    match sqlstate.get(..2).unwrap_or("") {
        "28" => SqlError::Authentication(message),
        // connection exception, insufficient resources, operator
        // intervention (shutdown), serialization failure / deadlock
        "08" | "53" | "57" | "40" => SqlError::Unavailable(message),
        // data exception, integrity constraint violation
        "22" | "23" => SqlError::Data(message),
        _ => SqlError::Statement(message),
    }
}

fn mysql(number: u16, sqlstate: &str, message: String) -> SqlError {
    match number {
        1045 | 1698 => SqlError::Authentication(message),
        1040 | 1053 | 1205 | 1213 | 1927 | 2002 | 2003 | 2006 | 2013 => {
            SqlError::Unavailable(message)
        }
        1048 | 1062 | 1136 | 1264 | 1265 | 1292 | 1366 | 1406 | 1451 | 1452 | 1690 | 3819
        | 4025 => SqlError::Data(message),
        _ => match sqlstate.get(..2).unwrap_or("") {
            "28" => SqlError::Authentication(message),
            "08" => SqlError::Unavailable(message),
            "22" | "23" => SqlError::Data(message),
            _ => SqlError::Statement(message),
        },
    }
}

fn sqlite(code: &str, message: String) -> SqlError {
    // The extended result code; its low byte is the primary code.
    match code.parse::<i32>().map(|c| c & 0xff).unwrap_or(0) {
        19 | 20 | 25 => SqlError::Data(message), // constraint, mismatch, range
        5 | 6 | 10 | 13 => SqlError::Unavailable(message), // busy, locked, I/O, full
        23 => SqlError::Authentication(message),
        _ => SqlError::Statement(message),
    }
}
