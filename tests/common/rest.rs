//! A REST client for a running worker, Kafka Connect's error body checks,
//! and one worker that the tests of a binary share.
//!
//! Tests on the shared worker keep to their own connector names, topics and
//! files (each test's own prefix), so they can run at the same time; a test
//! that changes the worker itself (authentication, TLS, a broker, a
//! restart) starts its own with [`Api::start`].

use super::{Running, Site};
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The plugins the REST tests use.
pub const PLUGINS: &[&str] = &["tributary_connector_file", "tributary_testkit"];

/// How long a test waits for records to move or a status to change.
pub const WAIT: Duration = Duration::from_secs(120);

/// A worker with its REST API on a free port.
pub struct Api {
    pub run: Running,
    pub base: String,
    pub client: Client,
    pub token: Option<String>,
}

impl Api {
    /// Starts `tributary run` and waits for the REST API's address.
    pub fn start(site: &Site, worker: &Path, connectors: &[&Path]) -> Api {
        Api::listening(site.run(worker, connectors))
    }

    /// Waits for the REST API of a started worker.
    pub fn listening(mut run: Running) -> Api {
        run.wait_for("the REST API", WAIT, |log| {
            log.contains("REST API listening on ")
        });
        let log = run.log();
        let base = log
            .lines()
            .find_map(|l| l.split("REST API listening on ").nth(1))
            .unwrap()
            .trim()
            .to_owned();
        Api {
            run,
            base,
            client: Client::builder().timeout(WAIT).build().unwrap(),
            token: None,
        }
    }

    pub fn req(&self, method: &str, path: &str) -> RequestBuilder {
        let r = self.client.request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{}{path}", self.base),
        );
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self.req(method, path);
        if let Some(b) = body {
            r = r.json(&b);
        }
        answer(r.send().unwrap())
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None)
    }

    /// Sends a raw body with a content type.
    pub fn raw(&self, method: &str, path: &str, content_type: &str, body: &str) -> (u16, Value) {
        answer(
            self.req(method, path)
                .header("content-type", content_type)
                .body(body.to_owned())
                .send()
                .unwrap(),
        )
    }

    /// The text of `GET /metrics`.
    pub fn metrics(&self) -> String {
        self.req("GET", "/metrics").send().unwrap().text().unwrap()
    }

    /// The names `GET /connectors` lists that start with `prefix`, in the
    /// order listed: what a test on the shared worker sees of its own.
    pub fn names(&self, prefix: &str) -> Vec<String> {
        let (code, all) = self.get("/connectors");
        assert_eq!(code, 200, "{all}");
        let all: Vec<String> = serde_json::from_value(all).unwrap();
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(all, sorted, "GET /connectors lists names in order");
        all.into_iter().filter(|n| n.starts_with(prefix)).collect()
    }

    /// Waits until the connector's status satisfies `cond`.
    pub fn wait_status(&self, name: &str, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let (code, s) = self.get(&format!("/connectors/{name}/status"));
            if code == 200 && cond(&s) {
                return s;
            }
            assert!(
                start.elapsed() < WAIT,
                "{name} never got {what}: {s}\nlog:\n{}",
                self.run.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `cond` holds, or panics after [`WAIT`] with the log.
    pub fn wait_until(&self, what: &str, mut cond: impl FnMut() -> bool) {
        let start = Instant::now();
        while !cond() {
            assert!(
                start.elapsed() < WAIT,
                "no {what} within {WAIT:?}; log:\n{}",
                self.run.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

pub fn answer(r: Response) -> (u16, Value) {
    let code = r.status().as_u16();
    let text = r.text().unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (code, body)
}

/// Kafka Connect's error body, with its code and a message holding `part`.
pub fn assert_error(got: &(u16, Value), code: u16, part: &str) {
    assert_eq!(got.0, code, "{}", got.1);
    assert_eq!(got.1["error_code"], json!(code), "{}", got.1);
    let message = got.1["message"].as_str().unwrap_or_default();
    assert!(message.contains(part), "{part:?} not in {message:?}");
}

/// The connector and every one of its (at least one) tasks run.
pub fn running(s: &Value) -> bool {
    s["connector"]["state"] == "RUNNING"
        && s["tasks"]
            .as_array()
            .is_some_and(|t| !t.is_empty() && t.iter().all(|t| t["state"] == "RUNNING"))
}

/// A worker config with the REST API on a free port, whose connectors
/// created over REST may be granted the site's files, plus `extra` lines.
pub fn rest_worker(site: &Site, extra: &str) -> PathBuf {
    site.worker_with_rest(&format!(
        "listeners: http://127.0.0.1:0\nfile.allowed.paths: {}\n{extra}",
        site.path(".").display()
    ))
}

/// A `file-source` config reading `file` (relative to `site`) into `topic`.
pub fn source(site: &Site, file: &str, topic: &str) -> Value {
    json!({"connector.class": "file-source", "file": site.path(file).display().to_string(), "topic": topic})
}

/// The worker the tests of this binary share, and its site.
pub struct Shared {
    pub site: Site,
    pub api: Api,
}

/// Starts the shared worker on first use. It stops when the test process
/// ends, however it ends (see [`Site::run_while_parent_lives`]).
pub fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let site = Site::new(PLUGINS);
        let worker = rest_worker(&site, "");
        let api = Api::listening(site.run_while_parent_lives(&worker));
        Shared { site, api }
    })
}
