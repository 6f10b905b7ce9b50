//! Helpers for end-to-end tests: build the guest plugins, lay out a
//! worker's files in a temporary directory, run the real `tributary`
//! binary and watch what it does.
#![allow(dead_code)]

pub mod broker;
pub mod db;
pub mod moto;
pub mod rest;
pub mod secure;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Builds every guest crate for wasm32-wasip2 (once per test process) and
/// returns the directory holding the `.wasm` files. Uses its own target
/// directory, so it never waits on the cargo that runs the tests.
pub fn guest_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let target = root().join("target").join("guests");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(root())
            .env("CARGO_TARGET_DIR", &target)
            .args(["build", "--quiet", "--profile", "guest", "--target", "wasm32-wasip2"])
            .args(["-p", "tributary-connector-file", "-p", "tributary-connector-database", "-p", "tributary-connector-s3", "-p", "tributary-testkit", "-p", "tributary-future-contract"])
            .status()
            .expect("run cargo to build the guest plugins");
        assert!(status.success(), "building the guest plugins failed (is the wasm32-wasip2 target installed? `rustup target add wasm32-wasip2`)");
        target.join("wasm32-wasip2").join("guest")
    })
}

/// The `.wasm` file of a guest crate (`tributary_connector_file`).
pub fn guest(name: &str) -> PathBuf {
    let path = guest_dir().join(format!("{name}.wasm"));
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// A worker's files in a temporary directory.
pub struct Site {
    pub dir: tempfile::TempDir,
}

impl Site {
    /// A directory with `plugins/` holding the named guests.
    pub fn new(guests: &[&str]) -> Site {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("plugins")).unwrap();
        for g in guests {
            std::fs::copy(
                guest(g),
                dir.path().join("plugins").join(format!("{g}.wasm")),
            )
            .unwrap();
        }
        Site { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a file and returns its path.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, text).unwrap();
        p
    }

    /// A worker config: embedded Kafka, this site's plugins, a shared
    /// compile cache, fast flushes, no REST API, plus `extra` lines.
    pub fn worker(&self, extra: &str) -> PathBuf {
        self.worker_with_rest(&format!("listeners: ''\n{extra}"))
    }

    /// Like [`Site::worker`], but `extra` decides `listeners` (the REST
    /// API listens on port 8083 when it does not).
    pub fn worker_with_rest(&self, extra: &str) -> PathBuf {
        let cache = root().join("target").join("test-plugin-cache");
        self.write(
            "worker.yaml",
            &format!(
                "plugin.path: {}\nplugin.cache.dir: {}\noffset.flush.interval.ms: 200\nmetrics.log.interval.ms: 0\n{extra}",
                self.path("plugins").display(),
                cache.display()
            ),
        )
    }

    /// Runs `tributary` with `args` in this site and waits for it.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_tributary"))
            .current_dir(self.dir.path())
            .env("TRIBUTARY_LOG", "warn,tributary::plugin=debug")
            .env("NO_COLOR", "1")
            .args(args)
            .output()
            .unwrap()
    }

    /// Starts `tributary run` with a worker config and connector files.
    pub fn run(&self, worker: &Path, connectors: &[&Path]) -> Running {
        self.run_with_env(worker, connectors, &[])
    }

    /// [`Site::run`] with more environment variables.
    pub fn run_with_env(
        &self,
        worker: &Path,
        connectors: &[&Path],
        env: &[(String, String)],
    ) -> Running {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tributary"));
        cmd.current_dir(self.dir.path())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .arg("run")
            .arg("-w")
            .arg(worker)
            .args(connectors);
        Running::spawn(&mut cmd)
    }

    /// Starts `tributary run` with a worker config and no connector files,
    /// for as long as this test process lives: a shell waits on a pipe from
    /// it, and when the process ends, however it ends, the pipe closes and
    /// the shell stops the worker (SIGTERM) and then removes this site's
    /// directory. For a worker kept in a `static`, which is never dropped.
    pub fn run_while_parent_lives(&self, worker: &Path) -> Running {
        let script = r#"bin=$1; dir=$2; shift 2
"$bin" "$@" </dev/null & pid=$!
read -r line
kill -TERM "$pid"; wait "$pid"; code=$?
rm -rf "$dir"; exit "$code""#;
        let mut cmd = Command::new("sh");
        cmd.current_dir(self.dir.path())
            .args(["-c", script, "sh", env!("CARGO_BIN_EXE_tributary")])
            .arg(self.dir.path())
            .arg("run")
            .arg("-w")
            .arg(worker)
            .stdin(Stdio::piped());
        Running::spawn(&mut cmd)
    }
}

impl Running {
    /// Spawns `cmd` with the tests' log settings and collects its stderr.
    fn spawn(cmd: &mut Command) -> Running {
        cmd.env(
            "TRIBUTARY_LOG",
            std::env::var("TRIBUTARY_TEST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        Running { child, log }
    }
}

/// A running worker process and its log.
pub struct Running {
    pub child: Child,
    log: Arc<Mutex<String>>,
}

impl Running {
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until `cond` holds, or panics after `limit` with the log.
    pub fn wait_for(&mut self, what: &str, limit: Duration, mut cond: impl FnMut(&str) -> bool) {
        let start = Instant::now();
        loop {
            if cond(&self.log()) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "worker exited ({status}) before {what}; log:\n{}",
                    self.log()
                );
            }
            assert!(
                start.elapsed() < limit,
                "no {what} within {limit:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the worker to exit by itself; returns its code and log.
    pub fn wait_exit(mut self, limit: Duration) -> (i32, String) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(50));
                return (status.code().unwrap_or(-1), self.log());
            }
            assert!(
                start.elapsed() < limit,
                "worker still running after {limit:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the worker with SIGKILL, as a crash would.
    pub fn kill9(mut self) -> String {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.log()
    }

    /// `kill9`, then waits until the killed sinks' consumer-group members
    /// have expired (the tests' workers use a 6 s session; tansu also
    /// pauses 3 s before each rejoin), with room to spare, so a restarted
    /// worker joins a group without them.
    ///
    /// tansu 0.6.0's group coordinator can make a dead member (still within
    /// its session) the leader of the restarted sink's first generation;
    /// that leader never assigns partitions and tansu does not rebalance
    /// when it expires, so the new sink would wait forever. Kafka
    /// rebalances; against tansu the tests wait the session out.
    pub fn kill9_and_let_its_sessions_expire(self) -> String {
        let log = self.kill9();
        std::thread::sleep(Duration::from_secs(20));
        log
    }

    /// Sends SIGTERM and waits for the exit; returns its code.
    pub fn stop(mut self) -> (i32, String) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(50));
                return (status.code().unwrap_or(-1), self.log());
            }
            if start.elapsed() > Duration::from_secs(60) {
                let _ = self.child.kill();
                panic!(
                    "worker did not stop within 60 s of SIGTERM; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// Lines in a file (0 when it is missing).
pub fn line_count(path: &Path) -> usize {
    std::fs::read(path)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
}

/// `n` numbered lines, each `width` bytes before the newline.
pub fn numbered_lines(from: usize, n: usize, width: usize) -> String {
    let mut s = String::with_capacity(n * (width + 1));
    for i in from..from + n {
        let head = format!("line-{i:09}-");
        s.push_str(&head);
        for _ in head.len()..width {
            s.push('x');
        }
        s.push('\n');
    }
    s
}

/// The UTC seconds of the day a log line starts with.
pub fn line_time(line: &str) -> Option<f64> {
    let time = line
        .split_whitespace()
        .next()?
        .split('T')
        .nth(1)?
        .trim_end_matches('Z');
    let mut hms = time.split(':').map(|x| x.parse::<f64>().ok());
    Some(hms.next()?? * 3600.0 + hms.next()?? * 60.0 + hms.next()??)
}

/// What the worker's progress lines show moving through `field`: records
/// counted and seconds, from the first line counting more than zero to the
/// first line with the final count, by the log's timestamps. Leaves out
/// start-up, connecting and joining a consumer group, which are not
/// throughput (benchmarks time their bare loops the same way).
pub fn progress_span(log: &str, field: &str) -> (u64, f64) {
    let points: Vec<(f64, u64)> = progress_points(log, field)
        .into_iter()
        .filter(|&(_, count)| count > 0)
        .collect();
    let (t0, c0) = *points.first().expect("a progress line counting records");
    let last = points.iter().map(|&(_, c)| c).max().unwrap_or(c0);
    let (t1, c1) = *points.iter().find(|&&(_, c)| c == last).expect("max");
    assert!(c1 > c0, "progress over more than one line: {points:?}");
    // Across midnight (UTC), the clock of the last line starts again at 0.
    let secs = if t1 >= t0 {
        t1 - t0
    } else {
        t1 + 86_400.0 - t0
    };
    (c1 - c0, secs)
}

/// (time, count) of the worker's progress lines that count `field`.
pub fn progress_points(log: &str, field: &str) -> Vec<(f64, u64)> {
    let key = format!(" {field}=");
    let points: Vec<(f64, u64)> = log
        .lines()
        .filter_map(|l| {
            let count = l
                .split(&key)
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()?;
            Some((line_time(l)?, count))
        })
        .collect();
    assert!(!points.is_empty(), "no progress lines counting {field}");
    points
}

/// The peak resident memory of process `pid` in kB (`VmHWM`), `?` when it
/// cannot be read.
pub fn peak_rss_kb(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "?".into())
}
