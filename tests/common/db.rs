//! Databases for end-to-end tests: the machine's PostgreSQL and MariaDB
//! (each test uses its own tables), SQLite files, and a private PostgreSQL
//! instance a test can stop and start (and that checks passwords).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
pub const MARIADB_URL: &str = "mysql://root@127.0.0.1:3306/test";

/// Runs a future to completion on a small runtime of its own.
pub fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Runs `sql` (one or more statements) against the database at `url`.
pub fn exec(url: &str, sql: &str) {
    block(async {
        let mut c = connect(url).await;
        sqlx::raw_sql(sql)
            .execute(&mut c)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    })
}

/// The rows of a query, every cell as text (NULL as `None`): the first
/// column of each row alone with `scalar_texts`.
pub fn texts(url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    use sqlx::{Column, Row, TypeInfo, ValueRef};
    block(async {
        let mut c = connect(url).await;
        let rows = sqlx::query(sql)
            .fetch_all(&mut c)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.iter()
            .map(|r| {
                (0..r.columns().len())
                    .map(|i| {
                        let raw = r.try_get_raw(i).unwrap();
                        if raw.is_null() {
                            return None;
                        }
                        let t = r.columns()[i].type_info().name().to_owned();
                        Some(match t.as_str() {
                            "INT2" | "INT4" | "INT8" | "INTEGER" | "BIGINT" | "INT" => {
                                r.try_get_unchecked::<i64, _>(i).unwrap().to_string()
                            }
                            _ => r.try_get_unchecked::<String, _>(i).unwrap(),
                        })
                    })
                    .collect()
            })
            .collect()
    })
}

async fn connect(url: &str) -> sqlx::AnyConnection {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match sqlx::AnyConnection::connect(url).await {
            Ok(c) => return c,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("cannot connect to {url}: {e}"),
        }
    }
}

/// A name no other test (or earlier run) uses: `prefix_<pid>_<n>`.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos % 100_000
    )
}

/// A PostgreSQL server of the test's own, in a temporary directory, on its
/// own port, owned by the `postgres` user (PostgreSQL refuses to run as
/// root). It checks passwords (scram-sha-256) on TCP for every role but
/// `postgres`, and can be stopped and started again.
pub struct PrivatePostgres {
    pub dir: tempfile::TempDir,
    pub port: u16,
    bin: PathBuf,
}

fn pg_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries (/usr/lib/postgresql/*/bin)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().expect("initdb")
}

fn as_postgres(program: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = if unsafe_is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    cmd.args(args).output().unwrap()
}

fn unsafe_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl PrivatePostgres {
    pub fn start() -> PrivatePostgres {
        let dir = tempfile::tempdir().unwrap();
        let bin = pg_bin();
        let data = dir.path().join("data");
        if unsafe_is_root() {
            Command::new("chown")
                .args(["-R", "postgres", dir.path().to_str().unwrap()])
                .status()
                .unwrap();
        }
        let out = as_postgres(
            &bin.join("initdb"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The `postgres` superuser may log in without a password over TCP
        // (the tests' own set-up); every other role must authenticate.
        let hba = data.join("pg_hba.conf");
        let mut rules = String::from("host all postgres 127.0.0.1/32 trust\n");
        rules.push_str(&std::fs::read_to_string(&hba).unwrap());
        std::fs::write(&hba, rules).unwrap();
        let port = free_port();
        let pg = PrivatePostgres { dir, port, bin };
        pg.up();
        pg
    }

    pub fn url(&self, user: &str, password: &str, db: &str) -> String {
        format!("postgres://{user}:{password}@127.0.0.1:{}/{db}", self.port)
    }

    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server and waits until it accepts connections.
    pub fn up(&self) {
        let data = self.dir.path().join("data");
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let out = as_postgres(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-o",
                &opts,
                "-l",
                self.dir.path().join("log").to_str().unwrap(),
                "-w",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server at once (`-m fast`: open connections are cut).
    pub fn down(&self) {
        let data = self.dir.path().join("data");
        let out = as_postgres(
            &self.bin.join("pg_ctl"),
            &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"],
        );
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = as_postgres(
            &self.bin.join("pg_ctl"),
            &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
    }
}

/// A TCP port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Rows in `table` on the machine's PostgreSQL.
pub fn count_rows(table: &str) -> usize {
    texts(PG_URL, &format!("SELECT count(*) FROM {table}"))[0][0]
        .as_deref()
        .unwrap_or("0")
        .parse()
        .unwrap()
}
