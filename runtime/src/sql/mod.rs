//! The SQL capability: database pools the worker owns on behalf of
//! connectors, and statements guests run through them.
//!
//! A connector's config names connections (`connection.*` keys,
//! [`ConnectionSettings`]); the worker turns each into a lazily connecting
//! pool ([`Database`]) shared by the connector's tasks. A guest refers to a
//! connection by name and sends SQL text with typed parameters
//! ([`SqlValue`]); it gets typed rows back. Credentials stay here: they are
//! never logged, never in an error, never handed to a guest.
//!
//! This module knows sqlx and nothing of wasmtime or Kafka: the plugin host
//! converts the contract's values to and from the types below.
//!
//! Calls block the calling task thread on a small shared tokio runtime; the
//! pool, its connections and their prepared-statement caches live there.

mod copy;
mod errors;
mod values;

pub use copy::CopyWriter;

pub use errors::classify;

use crate::config::ConnectionSettings;
use crate::retry::Renew;
use secrecy::ExposeSecret;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions, MySqlSslMode};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

/// The SQL dialect of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Mysql,
    Sqlite,
}

/// A parameter or a result cell (the contract's `sql.value`).
#[derive(Clone, Debug, PartialEq)]
pub enum SqlValue {
    Null,
    Boolean(bool),
    Integer(i64),
    Float(f64),
    Text(String),
    Bytes(Vec<u8>),
    Decimal(String),
    Date(String),
    Time(String),
    Timestamp(String),
    Timestamptz(String),
    Json(String),
}

/// A result column.
#[derive(Clone, Debug, PartialEq)]
pub struct SqlColumn {
    pub name: String,
    pub type_name: String,
}

/// What a query returned.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SqlRows {
    pub columns: Vec<SqlColumn>,
    pub rows: Vec<Vec<SqlValue>>,
}

/// A bulk load (the contract's `copy-load`): `before`, `COPY … FROM STDIN`
/// with the rows a [`CopyWriter`] is given, then `after`, in one
/// transaction.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CopyLoad {
    pub before: Vec<String>,
    pub copy: String,
    pub after: Vec<String>,
}

/// Why a statement failed (the contract's `sql-error`). Messages carry the
/// database's words and code, the connection's name and where it points,
/// never a credential.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SqlError {
    #[error("authentication failed: {0}")]
    Authentication(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("statement failed: {0}")]
    Statement(String),
    #[error("data rejected: {0}")]
    Data(String),
    #[error("{0}")]
    UnknownConnection(String),
}

/// Applies `host`, `port`, `database`, `user` and `password` to
/// PostgreSQL's or MySQL's connect options (same setters, different types).
macro_rules! with_address {
    ($o:expr, $s:expr) => {{
        let mut o = $o;
        if let Some(h) = &$s.host {
            o = o.host(h);
        }
        if let Some(p) = $s.port {
            o = o.port(p);
        }
        if let Some(d) = &$s.database {
            o = o.database(d);
        }
        if let Some(u) = &$s.user {
            o = o.username(u);
        }
        if let Some(p) = &$s.password {
            o = o.password(p.expose_secret());
        }
        o
    }};
}

/// The tokio runtime every pool runs on: two threads are plenty, the work
/// is waiting on sockets.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sql")
            .enable_all()
            .build()
            .expect("cannot start the SQL runtime")
    })
}

#[derive(Clone)]
enum Pool {
    Postgres(PgPool),
    Mysql(MySqlPool),
    Sqlite(SqlitePool),
}

/// One named connection of a connector: a pool that connects lazily.
///
/// When its credentials come from secrets, the pool is rebuilt with the new
/// values after a rotation ([`Database::renew`]) and a statement that fails
/// authentication renews them and runs again: tasks never notice.
pub struct Database {
    name: String,
    /// Where it points, without credentials, for messages:
    /// `postgres://127.0.0.1:5432/test`; follows a renewed url.
    location: RwLock<String>,
    pub dialect: Dialect,
    pool: RwLock<Pool>,
    settings: Mutex<ConnectionSettings>,
    renew: Option<Renew<ConnectionSettings>>,
}

/// Whether two settings of one connection would log in the same way.
fn same_login(a: &ConnectionSettings, b: &ConnectionSettings) -> bool {
    let url = |s: &ConnectionSettings| s.url.as_ref().map(|u| u.expose_secret().to_owned());
    let password =
        |s: &ConnectionSettings| s.password.as_ref().map(|p| p.expose_secret().to_owned());
    url(a) == url(b)
        && password(a) == password(b)
        && a.user == b.user
        && a.host == b.host
        && a.port == b.port
        && a.database == b.database
}

impl Database {
    /// Builds the pool for `settings`; connects at the first statement.
    /// `renew`, when the settings hold placeholders, re-resolves them.
    pub fn open(
        settings: &ConnectionSettings,
        renew: Option<Renew<ConnectionSettings>>,
    ) -> Result<Database, String> {
        let (pool, location) = Database::pool_for(settings)?;
        Ok(Database {
            name: settings.name.clone(),
            location: RwLock::new(location),
            dialect: match &pool {
                Pool::Postgres(_) => Dialect::Postgres,
                Pool::Mysql(_) => Dialect::Mysql,
                Pool::Sqlite(_) => Dialect::Sqlite,
            },
            pool: RwLock::new(pool),
            settings: Mutex::new(settings.clone()),
            renew,
        })
    }

    /// Resolves the settings again (`force`: past the secrets' cache) and
    /// rebuilds the pool when the login changed; true when it did.
    /// Statements running on the old pool finish there.
    pub fn renew(&self, force: bool) -> Result<bool, String> {
        let Some(renew) = &self.renew else {
            return Ok(false);
        };
        // Resolved under the lock: a slower renewal cannot put an older
        // login back.
        let mut settings = self.settings.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = renew(force)?;
        if same_login(&settings, &fresh) {
            return Ok(false);
        }
        let (pool, location) = Database::pool_for(&fresh)?;
        let old = std::mem::replace(
            &mut *self.pool.write().unwrap_or_else(|p| p.into_inner()),
            pool,
        );
        *self.location.write().unwrap_or_else(|p| p.into_inner()) = location;
        *settings = fresh;
        // Statements that already took the old pool finish on it; its
        // connections close when the last of them lets go.
        drop(old);
        tracing::info!(connection = %self.name, location = %self.location(), "connection rebuilt with renewed credentials");
        Ok(true)
    }

    fn pool(&self) -> Pool {
        self.pool.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Runs `op` on the pool; an authentication failure renews the
    /// credentials and runs it again (see `retry::retry_on_auth_failure`)
    /// until `stop`, the calling task's stop flag, is set.
    /// `input` is moved into a single run, and copied for each run only
    /// when the connection can renew its credentials.
    fn renewing<A: Clone, T, E>(
        &self,
        stop: &AtomicBool,
        input: A,
        op: impl Fn(&Pool, A) -> Result<T, E>,
        auth_failure: impl Fn(&E) -> Option<String>,
    ) -> Result<T, E> {
        if self.renew.is_none() {
            return op(&self.pool(), input);
        }
        crate::retry::retry_on_auth_failure(
            &self.at(),
            stop,
            || op(&self.pool(), input.clone()),
            auth_failure,
            || self.renew(true),
        )
    }

    fn pool_for(settings: &ConnectionSettings) -> Result<(Pool, String), String> {
        let dialect = match (&settings.url, &settings.dialect) {
            (Some(url), _) => {
                let scheme = url.expose_secret().split("://").next().unwrap_or("");
                crate::config::dialect_of_scheme(scheme)
            }
            (None, Some(d)) => crate::config::dialect_of_scheme(d),
            (None, None) => None,
        }
        .ok_or_else(|| format!("connection `{}` has no usable url", settings.name))?;
        let _in_runtime = runtime().enter();
        let bad_url = |e: sqlx::Error| {
            // sqlx's message may quote the URL: say only what kind of problem.
            let kind = match e {
                sqlx::Error::Configuration(_) => "malformed",
                _ => "unusable",
            };
            format!("connection `{}`: the url is {kind}", settings.name)
        };
        let (pool, location) = match dialect {
            "postgres" => {
                let mut o = match &settings.url {
                    Some(url) => {
                        PgConnectOptions::from_str(url.expose_secret()).map_err(bad_url)?
                    }
                    None => PgConnectOptions::new_without_pgpass(),
                };
                o = with_address!(o, settings);
                if let Some(m) = &settings.ssl_mode {
                    o = o.ssl_mode(match m.as_str() {
                        "disable" => PgSslMode::Disable,
                        "require" => PgSslMode::Require,
                        "verify-ca" => PgSslMode::VerifyCa,
                        "verify-full" => PgSslMode::VerifyFull,
                        _ => PgSslMode::Prefer,
                    });
                }
                if let Some(c) = &settings.ssl_root_cert {
                    o = o.ssl_root_cert(c);
                }
                o = o
                    .statement_cache_capacity(settings.statement_cache_capacity)
                    .application_name("tributary");
                let location = format!(
                    "postgres://{}:{}/{}",
                    o.get_host(),
                    o.get_port(),
                    o.get_database().unwrap_or("")
                );
                let pool = PgPoolOptions::new()
                    .max_connections(settings.pool_max_size)
                    .acquire_timeout(settings.acquire_timeout)
                    .connect_lazy_with(o);
                (Pool::Postgres(pool), location)
            }
            "mysql" => {
                let mut o = match &settings.url {
                    Some(url) => {
                        let url = url.expose_secret().replacen("mariadb://", "mysql://", 1);
                        MySqlConnectOptions::from_str(&url).map_err(bad_url)?
                    }
                    None => MySqlConnectOptions::new(),
                };
                o = with_address!(o, settings);
                if let Some(m) = &settings.ssl_mode {
                    o = o.ssl_mode(match m.as_str() {
                        "disable" => MySqlSslMode::Disabled,
                        "require" => MySqlSslMode::Required,
                        "verify-ca" => MySqlSslMode::VerifyCa,
                        "verify-full" => MySqlSslMode::VerifyIdentity,
                        _ => MySqlSslMode::Preferred,
                    });
                }
                if let Some(c) = &settings.ssl_root_cert {
                    o = o.ssl_ca(c);
                }
                o = o.statement_cache_capacity(settings.statement_cache_capacity);
                let location = format!(
                    "mysql://{}:{}/{}",
                    o.get_host(),
                    o.get_port(),
                    o.get_database().unwrap_or("")
                );
                let pool = MySqlPoolOptions::new()
                    .max_connections(settings.pool_max_size)
                    .acquire_timeout(settings.acquire_timeout)
                    .connect_lazy_with(o);
                (Pool::Mysql(pool), location)
            }
            _ => {
                let o = match (&settings.url, &settings.database) {
                    (Some(url), _) => {
                        SqliteConnectOptions::from_str(url.expose_secret()).map_err(bad_url)?
                    }
                    (None, Some(file)) => SqliteConnectOptions::new().filename(file),
                    (None, None) => {
                        return Err(format!(
                            "connection `{}` names no sqlite file",
                            settings.name
                        ))
                    }
                };
                let o = o
                    .create_if_missing(true)
                    .busy_timeout(settings.acquire_timeout)
                    .statement_cache_capacity(settings.statement_cache_capacity);
                let location = format!("sqlite://{}", o.get_filename().display());
                let pool = SqlitePoolOptions::new()
                    .max_connections(settings.pool_max_size)
                    .acquire_timeout(settings.acquire_timeout)
                    .connect_lazy_with(o);
                (Pool::Sqlite(pool), location)
            }
        };
        Ok((pool, location))
    }

    /// Prefixes an error with the connection it came from.
    fn context(&self, e: SqlError) -> SqlError {
        in_context(&self.at(), e)
    }

    /// The connection, for messages: its name and where it points.
    fn at(&self) -> String {
        format!("connection `{}` ({})", self.name, self.location())
    }

    /// Where it points, without credentials, for messages:
    /// `postgres://127.0.0.1:5432/test` (after a rotation that changed the
    /// url, the new one).
    pub fn location(&self) -> String {
        self.location
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Runs a query and returns every row. `stop`: the calling task's stop
    /// flag (it ends a wait for renewed credentials), as for every call.
    pub fn query(
        &self,
        sql: &str,
        params: Vec<SqlValue>,
        stop: &AtomicBool,
    ) -> Result<SqlRows, SqlError> {
        self.renewing(
            stop,
            params,
            |pool, p| self.query_once(pool, sql, p),
            is_auth,
        )
    }

    fn query_once(
        &self,
        pool: &Pool,
        sql: &str,
        params: Vec<SqlValue>,
    ) -> Result<SqlRows, SqlError> {
        let d = self.dialect;
        runtime()
            .block_on(async {
                match pool {
                    Pool::Postgres(p) => {
                        let q = values::bind_pg(sqlx::query(sql), params)?;
                        let rows = q.fetch_all(p).await.map_err(|e| classify(e, d))?;
                        values::decode_pg(&rows)
                    }
                    Pool::Mysql(p) => {
                        let q = values::bind_mysql(sqlx::query(sql), params)?;
                        let rows = q.fetch_all(p).await.map_err(|e| classify(e, d))?;
                        values::decode_mysql(&rows)
                    }
                    Pool::Sqlite(p) => {
                        let q = values::bind_sqlite(sqlx::query(sql), params);
                        let rows = q.fetch_all(p).await.map_err(|e| classify(e, d))?;
                        values::decode_sqlite(&rows)
                    }
                }
            })
            .map_err(|e| self.context(e))
    }

    /// Runs one statement; returns the rows it affected.
    pub fn execute(
        &self,
        sql: &str,
        params: Vec<SqlValue>,
        stop: &AtomicBool,
    ) -> Result<u64, SqlError> {
        self.renewing(
            stop,
            params,
            |pool, p| self.execute_once(pool, sql, p),
            is_auth,
        )
    }

    fn execute_once(&self, pool: &Pool, sql: &str, params: Vec<SqlValue>) -> Result<u64, SqlError> {
        let d = self.dialect;
        runtime()
            .block_on(async {
                Ok(match pool {
                    Pool::Postgres(p) => values::bind_pg(sqlx::query(sql), params)?
                        .execute(p)
                        .await
                        .map_err(|e| classify(e, d))?
                        .rows_affected(),
                    Pool::Mysql(p) => values::bind_mysql(sqlx::query(sql), params)?
                        .execute(p)
                        .await
                        .map_err(|e| classify(e, d))?
                        .rows_affected(),
                    Pool::Sqlite(p) => values::bind_sqlite(sqlx::query(sql), params)
                        .execute(p)
                        .await
                        .map_err(|e| classify(e, d))?
                        .rows_affected(),
                })
            })
            .map_err(|e| self.context(e))
    }

    /// Runs `sql` once per parameter list in one transaction; on failure
    /// nothing is kept and the index of the failing list is returned.
    pub fn execute_batch(
        &self,
        sql: &str,
        batch: Vec<Vec<SqlValue>>,
        stop: &AtomicBool,
    ) -> Result<u64, (u32, SqlError)> {
        self.renewing(
            stop,
            batch,
            |pool, b| self.execute_batch_once(pool, sql, b),
            |(_, e)| is_auth(e),
        )
    }

    fn execute_batch_once(
        &self,
        pool: &Pool,
        sql: &str,
        batch: Vec<Vec<SqlValue>>,
    ) -> Result<u64, (u32, SqlError)> {
        let d = self.dialect;
        let at_start = |e: sqlx::Error| (0u32, classify(e, d));
        runtime()
            .block_on(async {
                let mut total = 0;
                macro_rules! run {
                    ($pool:expr, $bind:expr) => {{
                        let mut tx = $pool.begin().await.map_err(at_start)?;
                        for (i, params) in batch.into_iter().enumerate() {
                            let q = $bind(sqlx::query(sql), params).map_err(|e| (i as u32, e))?;
                            total += q
                                .execute(&mut *tx)
                                .await
                                .map_err(|e| (i as u32, classify(e, d)))?
                                .rows_affected();
                        }
                        tx.commit().await.map_err(at_start)?;
                    }};
                }
                match pool {
                    Pool::Postgres(p) => run!(p, values::bind_pg),
                    Pool::Mysql(p) => run!(p, values::bind_mysql),
                    Pool::Sqlite(p) => run!(p, |q, params| Ok::<_, SqlError>(values::bind_sqlite(
                        q, params
                    ))),
                }
                Ok(total)
            })
            .map_err(|(i, e)| (i, self.context(e)))
    }
}

fn is_auth(e: &SqlError) -> Option<String> {
    matches!(e, SqlError::Authentication(_)).then(|| e.to_string())
}

/// `e`, saying which connection (`at`) it came from.
fn in_context(at: &str, e: SqlError) -> SqlError {
    match e {
        SqlError::Authentication(m) => SqlError::Authentication(format!("{at}: {m}")),
        SqlError::Unavailable(m) => SqlError::Unavailable(format!("{at}: {m}")),
        SqlError::Statement(m) => SqlError::Statement(format!("{at}: {m}")),
        SqlError::Data(m) => SqlError::Data(format!("{at}: {m}")),
        e @ SqlError::UnknownConnection(_) => e,
    }
}

/// The connections of one connector, by name; its tasks share them.
#[derive(Default)]
pub struct Databases {
    by_name: BTreeMap<String, Arc<Database>>,
}

impl std::fmt::Debug for Databases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(
                self.by_name
                    .values()
                    .map(|d| format!("{}: {}", d.name, d.location())),
            )
            .finish()
    }
}

impl Databases {
    /// Builds a pool for every connection the connector names; `renew`
    /// gives a connection's settings again by name (see [`Database::open`]).
    pub fn open(
        settings: &crate::config::Connections,
        renew: impl Fn(&str) -> Option<Renew<ConnectionSettings>>,
    ) -> Result<Databases, String> {
        let mut by_name = BTreeMap::new();
        for (name, s) in &settings.0 {
            by_name.insert(name.clone(), Arc::new(Database::open(s, renew(name))?));
        }
        Ok(Databases { by_name })
    }

    /// Renews every connection from its secrets' cached values (after a
    /// rotation was noticed); the names of those rebuilt.
    pub fn renew_all(&self) -> Vec<String> {
        let mut renewed = Vec::new();
        for (name, db) in &self.by_name {
            match db.renew(false) {
                Ok(true) => renewed.push(name.clone()),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(connection = %name, "renewing the credentials failed: {e}")
                }
            }
        }
        renewed
    }

    /// The connection called `name`.
    pub fn get(&self, name: &str) -> Result<Arc<Database>, SqlError> {
        self.by_name.get(name).cloned().ok_or_else(|| {
            let names: Vec<&str> = self.by_name.keys().map(String::as_str).collect();
            SqlError::UnknownConnection(if names.is_empty() {
                format!("no connection `{name}`: the connector config names none (set `connection.url`)")
            } else {
                format!(
                    "no connection `{name}`: the connector config names {}",
                    names.join(", ")
                )
            })
        })
    }
}
