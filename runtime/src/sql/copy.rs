//! PostgreSQL bulk loads (`COPY … FROM STDIN`), written in pieces.
//!
//! A load runs on a thread of its own, on the SQL runtime, and holds its
//! pooled connection and transaction: it runs the statements before,
//! starts the `COPY`, sends each piece the caller writes on to the
//! database, and at the end finishes the `COPY`, runs the statements after
//! and commits. The caller (a task thread, for its guest) hands over a
//! piece and goes on preparing the next while the database parses this
//! one. (A thread rather than a spawned task: sqlx's executor futures
//! cannot be shown `Send` for every lifetime, which spawning needs; a
//! load is one `put`, so one thread each costs nothing that shows.)

use super::{classify, in_context, is_auth, runtime, CopyLoad, Database, Dialect, Pool, SqlError};
use sqlx::postgres::{PgConnection, PgPool};
use std::thread::JoinHandle;
use tokio::sync::{mpsc, oneshot};

/// Pieces a writer may be ahead of the database (pieces are what the guest
/// writes at once: tens of KiB).
const AHEAD: usize = 4;

/// What a writer sends its load.
enum Piece {
    Data(Vec<u8>),
    Finish,
}

/// A bulk load under way (the contract's `copy-writer`). Dropped without
/// [`CopyWriter::finish`], the load is rolled back.
pub struct CopyWriter {
    /// The connection, for messages.
    at: String,
    pieces: mpsc::Sender<Piece>,
    /// The load's thread, until its outcome is taken.
    load: Option<JoinHandle<Result<u64, SqlError>>>,
    /// The load's error, once it is known.
    failed: Option<SqlError>,
}

impl Database {
    /// Starts a bulk load on PostgreSQL: in one transaction, `before`, then
    /// the `COPY`, whose rows (in its text format) the returned writer
    /// takes. Other dialects have no `COPY`: a statement error says so.
    pub fn copy_begin(
        &self,
        load: CopyLoad,
        stop: &std::sync::atomic::AtomicBool,
    ) -> Result<CopyWriter, SqlError> {
        let is_copy = load
            .copy
            .trim_start()
            .get(..5)
            .is_some_and(|w| w.eq_ignore_ascii_case("copy "));
        if !is_copy {
            return Err(self.context(SqlError::Statement(format!(
                "copy-begin runs `COPY … FROM STDIN`, not: {}",
                load.copy.chars().take(80).collect::<String>()
            ))));
        }
        self.renewing(
            stop,
            &load,
            |pool, l| self.copy_begin_once(pool, l),
            is_auth,
        )
    }

    fn copy_begin_once(&self, pool: &Pool, load: &CopyLoad) -> Result<CopyWriter, SqlError> {
        let Pool::Postgres(pool) = pool else {
            return Err(self.context(SqlError::Statement(format!(
                "copy-begin needs PostgreSQL; this connection is {:?}",
                self.dialect
            ))));
        };
        let (pieces, received) = mpsc::channel(AHEAD);
        let (started, has_started) = oneshot::channel();
        let (pool, owned) = (pool.clone(), load.clone());
        let task = std::thread::Builder::new()
            .name("sql-copy".into())
            .spawn(move || runtime().block_on(run(pool, owned, received, started)))
            .map_err(|e| SqlError::Unavailable(format!("cannot start a load: {e}")))?;
        // Until the `COPY` runs: an error before it (credentials, a missing
        // table) is `copy-begin`'s, so credentials can be renewed for it.
        match has_started.blocking_recv() {
            Ok(Ok(())) => Ok(CopyWriter {
                at: self.at(),
                pieces,
                load: Some(task),
                failed: None,
            }),
            Ok(Err(e)) => Err(self.context(e)),
            // The load ended without a word: it panicked.
            Err(_) => Err(self.context(
                outcome(task.join())
                    .err()
                    .unwrap_or_else(|| SqlError::Unavailable("the load did not start".into())),
            )),
        }
    }
}

impl CopyWriter {
    /// Hands the load more rows; waits only while the load is `AHEAD`
    /// pieces behind. An error is the load's: it is over.
    pub fn write(&mut self, data: Vec<u8>) -> Result<(), SqlError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.pieces.blocking_send(Piece::Data(data)).is_ok() {
            return Ok(());
        }
        // The load ended early, and says why.
        match self.outcome() {
            Err(e) => Err(e),
            Ok(_) => Err(self.fail(SqlError::Unavailable(
                "the load ended before its rows did".into(),
            ))),
        }
    }

    /// Ends the `COPY`, runs the statements after it and commits; the rows
    /// the `COPY` loaded.
    pub fn finish(mut self) -> Result<u64, SqlError> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        // A load that ended early has hung up: its outcome says why.
        let _ = self.pieces.blocking_send(Piece::Finish);
        self.outcome()
    }

    /// Waits for the load's thread to end, and keeps its error.
    fn outcome(&mut self) -> Result<u64, SqlError> {
        let Some(task) = self.load.take() else {
            return Err(self
                .failed
                .clone()
                .unwrap_or_else(|| SqlError::Unavailable("the load has already ended".into())));
        };
        outcome(task.join()).map_err(|e| {
            let e = in_context(&self.at, e);
            self.fail(e)
        })
    }

    fn fail(&mut self, e: SqlError) -> SqlError {
        self.failed = Some(e.clone());
        e
    }
}

/// A load's result, or why its thread did not give one.
fn outcome(joined: std::thread::Result<Result<u64, SqlError>>) -> Result<u64, SqlError> {
    joined.unwrap_or_else(|_| Err(SqlError::Unavailable("the load's thread panicked".into())))
}

/// The load: signals `started` once the `COPY` runs (or with the error
/// that stopped it before), then sends the pieces it receives until it is
/// told to finish. A writer that hangs up unfinished rolls it back.
async fn run(
    pool: PgPool,
    load: CopyLoad,
    mut pieces: mpsc::Receiver<Piece>,
    started: oneshot::Sender<Result<(), SqlError>>,
) -> Result<u64, SqlError> {
    let mut started = Some(started);
    let result = copy(&pool, &load, &mut pieces, &mut started).await;
    if let (Some(s), Err(e)) = (started.take(), &result) {
        let _ = s.send(Err(e.clone()));
    }
    result
}

async fn copy(
    pool: &PgPool,
    load: &CopyLoad,
    pieces: &mut mpsc::Receiver<Piece>,
    started: &mut Option<oneshot::Sender<Result<(), SqlError>>>,
) -> Result<u64, SqlError> {
    let mut tx = pool.begin().await.map_err(pg)?;
    execute_all(&mut tx, &load.before).await?;
    let mut copy = tx.copy_in_raw(&load.copy).await.map_err(pg)?;
    if !copy.is_textual() {
        let _ = copy.abort("only the text format is written").await;
        return Err(SqlError::Statement(
            "copy-begin takes COPY's text format: leave out FORMAT binary".into(),
        ));
    }
    if let Some(s) = started.take() {
        let _ = s.send(Ok(()));
    }
    loop {
        match pieces.recv().await {
            Some(Piece::Data(data)) => {
                copy.send(data).await.map_err(pg)?;
            }
            Some(Piece::Finish) => break,
            None => {
                // Dropped: the transaction rolls back as it goes.
                let _ = copy.abort("the load was dropped unfinished").await;
                return Err(SqlError::Unavailable(
                    "the load was dropped unfinished".into(),
                ));
            }
        }
    }
    let loaded = copy.finish().await.map_err(pg)?;
    execute_all(&mut tx, &load.after).await?;
    tx.commit().await.map_err(pg)?;
    Ok(loaded)
}

/// Runs statements without parameters, one after the other.
async fn execute_all(conn: &mut PgConnection, statements: &[String]) -> Result<(), SqlError> {
    for s in statements {
        sqlx::raw_sql(s).execute(&mut *conn).await.map_err(pg)?;
    }
    Ok(())
}

fn pg(e: sqlx::Error) -> SqlError {
    classify(e, Dialect::Postgres)
}

#[cfg(test)]
mod tests {
    //! Against the machine's PostgreSQL (127.0.0.1:5432, database `test`).
    use super::*;
    use crate::config::Connections;
    use crate::sql::SqlValue;
    use std::sync::atomic::AtomicBool;

    /// A task that is not stopping.
    static RUNNING: AtomicBool = AtomicBool::new(false);

    fn postgres() -> Database {
        let mut c = Connections::default();
        c.set("url", &"postgres://postgres@127.0.0.1:5432/test".into())
            .unwrap();
        Database::open(&c.0["default"], None).unwrap()
    }

    fn ids(db: &Database, table: &str) -> Vec<Vec<SqlValue>> {
        db.query(
            &format!("SELECT id, name FROM {table} ORDER BY id"),
            vec![],
            &RUNNING,
        )
        .unwrap()
        .rows
    }

    fn row(id: i64, name: Option<&str>) -> Vec<SqlValue> {
        vec![
            SqlValue::Integer(id),
            name.map_or(SqlValue::Null, |n| SqlValue::Text(n.into())),
        ]
    }

    #[test]
    fn a_load_in_pieces_commits_at_finish_rolls_back_when_dropped_and_names_bad_data() {
        let db = postgres();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let table = format!("copy_writer_{}_{nanos}", std::process::id());
        db.execute(
            &format!("CREATE TABLE {table} (id BIGINT PRIMARY KEY, name TEXT)"),
            vec![],
            &RUNNING,
        )
        .unwrap();
        let load = CopyLoad {
            before: vec![],
            copy: format!("COPY {table} (id, name) FROM STDIN"),
            after: vec![],
        };

        // Pieces that end inside a row; nothing shows before `finish`.
        let mut w = db.copy_begin(load.clone(), &RUNNING).unwrap();
        w.write(b"1\tone\n2\tt".to_vec()).unwrap();
        w.write(b"wo\n3\t\\N\n".to_vec()).unwrap();
        assert_eq!(ids(&db, &table), Vec::<Vec<SqlValue>>::new());
        assert_eq!(w.finish().unwrap(), 3);
        let loaded = vec![row(1, Some("one")), row(2, Some("two")), row(3, None)];
        assert_eq!(ids(&db, &table), loaded);

        // Dropped unfinished: rolled back. The table lock the load held is
        // free once its transaction has ended.
        let mut w = db.copy_begin(load.clone(), &RUNNING).unwrap();
        w.write(b"4\tfour\n".to_vec()).unwrap();
        drop(w);
        db.execute(
            &format!("DO $$ BEGIN SET LOCAL lock_timeout = '10s'; LOCK TABLE {table}; END $$"),
            vec![],
            &RUNNING,
        )
        .unwrap();
        assert_eq!(ids(&db, &table), loaded);

        // A value that does not parse fails the load with `data`, naming
        // the value and the connection; nothing of it is kept.
        let mut w = db.copy_begin(load, &RUNNING).unwrap();
        let written = w.write(b"5\tfive\nsix\tsix\n".to_vec());
        let e = written.and_then(|()| w.finish()).unwrap_err();
        let SqlError::Data(m) = &e else {
            panic!("not a data error: {e:?}")
        };
        assert!(
            m.contains("\"six\"") && m.contains("connection `default`"),
            "{m}"
        );
        assert_eq!(ids(&db, &table), loaded);

        // A missing table fails at the start, as a statement error.
        let e = db
            .copy_begin(
                CopyLoad {
                    copy: format!("COPY {table}_missing (id) FROM STDIN"),
                    ..CopyLoad::default()
                },
                &RUNNING,
            )
            .err()
            .unwrap();
        assert!(
            matches!(&e, SqlError::Statement(m) if m.contains("_missing")),
            "{e:?}"
        );
        // And a statement that is not a COPY is refused before it runs.
        let e = db
            .copy_begin(
                CopyLoad {
                    copy: format!("DELETE FROM {table}"),
                    ..CopyLoad::default()
                },
                &RUNNING,
            )
            .err()
            .unwrap();
        assert!(
            matches!(&e, SqlError::Statement(m) if m.contains("DELETE FROM")),
            "{e:?}"
        );
        assert_eq!(ids(&db, &table), loaded);
        db.execute(&format!("DROP TABLE {table}"), vec![], &RUNNING)
            .unwrap();
    }

    /// A rotation that changes the url moves the connection's location,
    /// which every message about it names.
    #[test]
    fn a_renewed_url_moves_the_location() {
        let mut c = Connections::default();
        c.set("url", &"postgres://postgres@127.0.0.1:5432/test".into())
            .unwrap();
        let first = c.0["default"].clone();
        let mut renewed = Connections::default();
        renewed
            .set("url", &"postgres://postgres@127.0.0.1:5432/postgres".into())
            .unwrap();
        let second = renewed.0["default"].clone();
        let db = Database::open(
            &first,
            Some(std::sync::Arc::new(move |_| Ok(second.clone()))),
        )
        .unwrap();
        assert_eq!(db.location(), "postgres://127.0.0.1:5432/test");
        assert!(db.renew(false).unwrap(), "the login changed");
        assert_eq!(db.location(), "postgres://127.0.0.1:5432/postgres");
        let e = db
            .query("SELECT * FROM no_such_table_here", vec![], &RUNNING)
            .unwrap_err();
        assert!(
            e.to_string().contains("127.0.0.1:5432/postgres"),
            "the message names the new location: {e}"
        );
    }
}
