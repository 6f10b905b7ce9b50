//! The REST API over a real socket, with a real HTTP client, against the
//! real `tributary` binary: every endpoint with its status codes and error
//! bodies, pause and resume, stop and offsets reset, authentication, and (on
//! a real broker) configs and target states that survive a restart.

mod common;

use common::broker::Broker;
use common::{line_count, numbered_lines, Running, Site};
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const PLUGINS: &[&str] = &["tributary_connector_file", "tributary_testkit"];

/// A worker with its REST API on a free port.
struct Api {
    run: Running,
    base: String,
    client: Client,
    token: Option<String>,
}

impl Api {
    /// Starts `tributary run` and waits for the REST API's address.
    fn start(site: &Site, worker: &Path, connectors: &[&Path]) -> Api {
        let mut run = site.run(worker, connectors);
        run.wait_for("the REST API", Duration::from_secs(120), |log| {
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
            client: Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap(),
            token: None,
        }
    }

    fn req(&self, method: &str, path: &str) -> RequestBuilder {
        let r = self.client.request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{}{path}", self.base),
        );
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self.req(method, path);
        if let Some(b) = body {
            r = r.json(&b);
        }
        answer(r.send().unwrap())
    }

    fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None)
    }

    /// Sends a raw body with a content type.
    fn raw(&self, method: &str, path: &str, content_type: &str, body: &str) -> (u16, Value) {
        answer(
            self.req(method, path)
                .header("content-type", content_type)
                .body(body.to_owned())
                .send()
                .unwrap(),
        )
    }

    /// Waits until the connector's status satisfies `cond`.
    fn wait_status(&self, name: &str, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let (code, s) = self.get(&format!("/connectors/{name}/status"));
            if code == 200 && cond(&s) {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "{name} never got {what}: {s}\nlog:\n{}",
                self.run.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn answer(r: Response) -> (u16, Value) {
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
fn assert_error(got: &(u16, Value), code: u16, part: &str) {
    assert_eq!(got.0, code, "{}", got.1);
    assert_eq!(got.1["error_code"], json!(code), "{}", got.1);
    let message = got.1["message"].as_str().unwrap_or_default();
    assert!(message.contains(part), "{part:?} not in {message:?}");
}

fn running(s: &Value) -> bool {
    s["connector"]["state"] == "RUNNING"
        && s["tasks"]
            .as_array()
            .is_some_and(|t| !t.is_empty() && t.iter().all(|t| t["state"] == "RUNNING"))
}

fn rest_worker(site: &Site, extra: &str) -> PathBuf {
    site.worker_with_rest(&format!("listeners: http://127.0.0.1:0\n{extra}"))
}

fn source(site: &Site, file: &str, topic: &str) -> Value {
    json!({"connector.class": "file-source", "file": site.path(file).display().to_string(), "topic": topic})
}

#[test]
fn every_endpoint_answers_with_kafka_connects_bodies_and_codes() {
    let site = Site::new(PLUGINS);
    site.write("data/in.txt", &numbered_lines(0, 100, 20));
    let worker = rest_worker(&site, "");
    let mut api = Api::start(&site, &worker, &[]);

    let (code, root) = api.get("/");
    assert_eq!(code, 200);
    assert_eq!(root["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        root["kafka_cluster_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "{root}"
    );
    assert_eq!(api.get("/health").0, 200);
    assert_eq!(api.get("/connectors"), (200, json!([])));

    // Plugins.
    let (code, plugins) = api.get("/connector-plugins");
    assert_eq!(code, 200);
    let plugins = plugins.as_array().unwrap();
    assert!(
        plugins
            .iter()
            .any(|p| p["class"] == "file-source" && p["type"] == "source"),
        "{plugins:?}"
    );
    assert!(
        plugins
            .iter()
            .any(|p| p["class"] == "file-sink" && p["type"] == "sink"),
        "{plugins:?}"
    );
    let (code, keys) = api.get("/connector-plugins/file-source/config");
    assert_eq!(code, 200);
    let file_key = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "file")
        .unwrap();
    assert_eq!(file_key["required"], true);
    assert_eq!(file_key["type"], "STRING");
    let (_, keys) = api.get("/connector-plugins/testkit-source/config");
    let token = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "token")
        .unwrap();
    assert_eq!(token["type"], "PASSWORD");
    assert_error(
        &api.get("/connector-plugins/jdbc-source/config"),
        404,
        "jdbc-source",
    );

    // Validation: 200 with the errors per key.
    let (code, v) = api.call(
        "PUT",
        "/connector-plugins/file-source/config/validate",
        Some(json!({"connector.class": "file-source", "topic": "t", "batch.size": "many"})),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["name"], "file-source");
    assert_eq!(v["error_count"], 2, "{v}");
    let errors = |key: &str| -> Vec<String> {
        v["configs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["value"]["name"] == key)
            .map(|c| serde_json::from_value(c["value"]["errors"].clone()).unwrap())
            .unwrap_or_default()
    };
    assert!(errors("file")[0].contains("is required"), "{v}");
    assert!(
        errors("batch.size")[0].contains("expects an integer"),
        "{v}"
    );
    assert!(errors("topic").is_empty());
    assert_error(
        &api.call(
            "PUT",
            "/connector-plugins/file-source/config/validate",
            Some(json!({"connector.class": "file-sink"})),
        ),
        400,
        "does not match request type file-source",
    );

    // Bad input on create.
    assert_error(
        &api.raw(
            "POST",
            "/connectors",
            "application/json",
            "{\"name\": \"x\", ",
        ),
        400,
        "not valid JSON",
    );
    assert_error(
        &api.raw(
            "POST",
            "/connectors",
            "application/yaml",
            "name: x\nconfig: [1, 2\n",
        ),
        400,
        "not valid YAML",
    );
    assert_error(
        &api.call("POST", "/connectors", Some(json!({"name": "x"}))),
        400,
        "`config`",
    );
    assert_error(
        &api.call(
            "POST",
            "/connectors",
            Some(json!({"name": "x", "config": {"connector.class": "jdbc-source"}})),
        ),
        400,
        "`connector.class`: no plugin provides `jdbc-source`",
    );
    let missing = api.call("POST", "/connectors", Some(json!({"name": "x", "config": {"connector.class": "file-source", "topic": "t", "tpoic": "u"}})));
    assert_error(&missing, 400, "`file`: is required");
    assert_error(
        &missing,
        400,
        "`tpoic`: unknown key for connector `file-source`",
    );
    assert_error(
        &api.call(
            "POST",
            "/connectors",
            Some(json!({"name": "bad/name", "config": source(&site, "data/in.txt", "t")})),
        ),
        400,
        "`name`",
    );
    assert_eq!(
        api.get("/connectors"),
        (200, json!([])),
        "nothing was created"
    );

    // Create (JSON), conflict, create (YAML).
    let (code, info) = api.call(
        "POST",
        "/connectors",
        Some(json!({"name": "lines-in", "config": source(&site, "data/in.txt", "lines")})),
    );
    assert_eq!(code, 201, "{info}");
    assert_eq!(info["name"], "lines-in");
    assert_eq!(info["type"], "source");
    assert_eq!(info["config"]["name"], "lines-in");
    assert_eq!(info["config"]["topic"], "lines");
    assert_eq!(info["tasks"], json!([{"connector": "lines-in", "task": 0}]));
    assert_error(
        &api.call(
            "POST",
            "/connectors",
            Some(json!({"name": "lines-in", "config": source(&site, "data/in.txt", "lines")})),
        ),
        409,
        "Connector lines-in already exists",
    );
    let yaml = format!(
        "name: lines-out\nconfig:\n  connector.class: file-sink\n  file: {}\n  topics: lines\n  consumer:\n    override.fetch.min.bytes: 1\n",
        site.path("data/out.txt").display()
    );
    let (code, info) = api.raw("POST", "/connectors", "application/yaml", &yaml);
    assert_eq!(code, 201, "{info}");
    assert_eq!(
        info["config"]["consumer.override.fetch.min.bytes"], "1",
        "nested YAML keys flatten"
    );
    let out = site.path("data/out.txt");
    api.run
        .wait_for("100 lines through", Duration::from_secs(120), |_| {
            line_count(&out) >= 100
        });

    // Reads.
    assert_eq!(
        api.get("/connectors"),
        (200, json!(["lines-in", "lines-out"]))
    );
    let (code, expanded) = api.get("/connectors?expand=status&expand=info");
    assert_eq!(code, 200);
    assert_eq!(expanded["lines-in"]["info"]["type"], "source");
    assert_eq!(expanded["lines-out"]["status"]["name"], "lines-out");
    assert!(
        expanded["lines-in"]["status"]["connector"]["state"].is_string(),
        "{expanded}"
    );
    assert_error(&api.get("/connectors?expand=everything"), 400, "`expand`");
    assert_eq!(api.get("/connectors/lines-in").0, 200);
    assert_eq!(
        api.get("/connectors/nope"),
        (
            404,
            json!({"error_code": 404, "message": "Connector nope not found"})
        )
    );
    let (code, config) = api.get("/connectors/lines-in/config");
    assert_eq!(code, 200);
    assert_eq!(config["connector.class"], "file-source");
    let status = api.wait_status("lines-in", "RUNNING", running);
    assert_eq!(status["type"], "source");
    assert!(status["connector"]["worker_id"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    assert_eq!(status["tasks"][0]["id"], 0);
    let (code, tasks) = api.get("/connectors/lines-in/tasks");
    assert_eq!(code, 200);
    assert_eq!(tasks[0]["id"], json!({"connector": "lines-in", "task": 0}));
    assert_eq!(tasks[0]["config"]["topic"], "lines");
    let (code, t0) = api.get("/connectors/lines-in/tasks/0/status");
    assert_eq!(
        (code, &t0["state"], &t0["id"]),
        (200, &json!("RUNNING"), &json!(0))
    );
    assert_error(
        &api.get("/connectors/lines-in/tasks/7/status"),
        404,
        "lines-in-7",
    );
    assert_error(
        &api.get("/connectors/nope/tasks"),
        404,
        "Connector nope not found",
    );

    // Config changes.
    let mut new = source(&site, "data/in.txt", "lines");
    new["batch.size"] = json!("50");
    let (code, info) = api.call("PUT", "/connectors/lines-in/config", Some(new.clone()));
    assert_eq!(code, 200, "{info}");
    assert_eq!(info["config"]["batch.size"], "50");
    assert_error(
        &api.call("PUT", "/connectors/lines-in/config", Some(json!({"connector.class": "file-source", "topic": "t", "file": "/nonexistent-dir/x"}))),
        400,
        "`file`: directory /nonexistent-dir does not exist",
    );
    assert_eq!(
        api.get("/connectors/lines-in/config").1["batch.size"],
        "50",
        "a refused config changes nothing"
    );
    let (code, info) = api.call(
        "PATCH",
        "/connectors/lines-in/config",
        Some(json!({"batch.size": null, "tasks.max": "1"})),
    );
    assert_eq!(code, 200, "{info}");
    assert!(info["config"].get("batch.size").is_none(), "{info}");
    assert_eq!(info["config"]["tasks.max"], "1");
    assert_error(
        &api.call("PATCH", "/connectors/nope/config", Some(json!({"a": "b"}))),
        404,
        "Connector nope not found",
    );
    assert_error(
        &api.call(
            "PUT",
            "/connectors/other/config",
            Some(json!({"name": "lines-in", "connector.class": "file-source"})),
        ),
        400,
        "doesn't match connector name in the URL",
    );
    let (code, _) = api.call(
        "PUT",
        "/connectors/second/config",
        Some(source(&site, "data/in.txt", "second")),
    );
    assert_eq!(code, 201, "PUT creates");
    api.wait_status("lines-in", "RUNNING again", running);

    // Restarts.
    assert_eq!(
        api.call("POST", "/connectors/lines-in/restart", None).0,
        204
    );
    let (code, s) = api.call(
        "POST",
        "/connectors/lines-in/restart?includeTasks=true",
        None,
    );
    assert_eq!(code, 202, "{s}");
    assert_eq!(s["tasks"][0]["state"], "RESTARTING");
    let (code, s) = api.call(
        "POST",
        "/connectors/lines-in/restart?includeTasks=true&onlyFailed=true",
        None,
    );
    assert_eq!(code, 202, "{s}");
    assert_error(
        &api.call(
            "POST",
            "/connectors/lines-in/restart?includeTasks=maybe",
            None,
        ),
        400,
        "`includeTasks`",
    );
    assert_error(
        &api.call("POST", "/connectors/nope/restart", None),
        404,
        "Connector nope not found",
    );
    assert_eq!(
        api.call("POST", "/connectors/lines-in/tasks/0/restart", None)
            .0,
        204
    );
    assert_error(
        &api.call("POST", "/connectors/lines-in/tasks/3/restart", None),
        404,
        "lines-in-3",
    );
    api.wait_status("lines-in", "RUNNING after restarts", running);

    // Offsets of a running connector can be read, not changed.
    let (code, offsets) = api.get("/connectors/lines-in/offsets");
    assert_eq!(code, 200, "{offsets}");
    assert!(offsets["offsets"].is_array());
    assert_error(
        &api.call(
            "PATCH",
            "/connectors/lines-in/offsets",
            Some(json!({"offsets": [{"partition": {"filename": "x"}, "offset": null}]})),
        ),
        400,
        "Connectors must be in the STOPPED state",
    );
    assert_error(
        &api.call("DELETE", "/connectors/lines-in/offsets", None),
        400,
        "STOPPED",
    );
    let (code, sink_offsets) = api.get("/connectors/lines-out/offsets");
    assert_eq!(code, 200, "{sink_offsets}");
    assert!(sink_offsets["offsets"].is_array(), "{sink_offsets}");

    // Target states.
    assert_eq!(api.call("PUT", "/connectors/lines-in/pause", None).0, 202);
    let s = api.get("/connectors/lines-in/status").1;
    assert_eq!(s["connector"]["state"], "PAUSED");
    assert_eq!(s["tasks"][0]["state"], "PAUSED");
    assert_eq!(api.call("PUT", "/connectors/lines-in/resume", None).0, 202);
    api.wait_status("lines-in", "RUNNING after resume", running);
    assert_eq!(api.call("PUT", "/connectors/lines-in/stop", None).0, 204);
    let s = api.get("/connectors/lines-in/status").1;
    assert_eq!(s["connector"]["state"], "STOPPED");
    assert_eq!(s["tasks"], json!([]));
    assert_eq!(api.get("/connectors/lines-in").1["tasks"], json!([]));
    assert_error(
        &api.call("PUT", "/connectors/nope/pause", None),
        404,
        "Connector nope not found",
    );
    assert_error(
        &api.call(
            "PATCH",
            "/connectors/lines-in/offsets",
            Some(json!({"offsets": [{"partition": "x"}]})),
        ),
        400,
        "`offsets[0].partition`",
    );
    assert_error(
        &api.call(
            "PATCH",
            "/connectors/lines-in/offsets",
            Some(json!({"nothing": []})),
        ),
        400,
        "`offsets`",
    );

    // Metrics.
    let text = api.req("GET", "/metrics").send().unwrap().text().unwrap();
    assert!(
        text.contains("tributary_task_records_written_total{connector=\"lines-out\",task=\"0\"}"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE tributary_task_plugin_call_seconds histogram"),
        "{text}"
    );
    assert!(
        text.contains("tributary_task_consumer_lag{connector=\"lines-out\",task=\"0\"}"),
        "{text}"
    );
    assert!(
        text.contains("tributary_task_batch_records_count{connector=\"lines-out\",task=\"0\"}"),
        "{text}"
    );
    assert!(
        text.contains("tributary_connector_state{connector=\"lines-in\",state=\"STOPPED\"} 1"),
        "{text}"
    );

    // Unknown paths and methods.
    assert_eq!(
        api.get("/nothing-here"),
        (
            404,
            json!({"error_code": 404, "message": "HTTP 404 Not Found"})
        )
    );
    assert_error(
        &api.call("DELETE", "/connector-plugins", None),
        405,
        "Method Not Allowed",
    );
    assert_error(
        &api.get("/connectors/lines-in/tasks/x/status"),
        404,
        "Not Found",
    );

    // Delete.
    assert_eq!(api.call("DELETE", "/connectors/second", None).0, 204);
    assert_error(
        &api.call("DELETE", "/connectors/second", None),
        404,
        "Connector second not found",
    );
    assert_eq!(
        api.get("/connectors"),
        (200, json!(["lines-in", "lines-out"]))
    );

    let (code, log) = api.run.stop();
    assert_eq!(code, 0, "{log}");
}

#[test]
fn every_route_is_served_and_in_the_openapi_document() {
    let site = Site::new(PLUGINS);
    let worker = rest_worker(&site, "");
    let api = Api::start(&site, &worker, &[]);
    let (code, doc) = api.get("/openapi.json");
    assert_eq!(code, 200);
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    documented.sort();
    let mut routes: Vec<(String, String)> = tributary::rest::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    routes.sort();
    assert_eq!(documented, routes, "openapi.json and the routes differ");
    // Every route is served: with no such connector it answers the
    // connector's 404 (or its own answer), never the unknown-route 404 or 405.
    for (method, path) in tributary::rest::ROUTES {
        let concrete = path
            .replace("{name}", "nope")
            .replace("{task}", "0")
            .replace("{plugin}", "file-source");
        let body = match *method {
            "POST" | "PUT" | "PATCH" => Some(json!({})),
            _ => None,
        };
        let (code, body) = api.call(method, &concrete, body);
        assert_ne!(code, 405, "{method} {path}: {body}");
        assert!(
            !(code == 404 && body["message"] == "HTTP 404 Not Found"),
            "{method} {path} is not routed"
        );
    }
    api.run.stop();
}

#[test]
fn pause_stops_records_moving_and_resume_starts_them_again() {
    let site = Site::new(PLUGINS);
    let input = site.path("data/in.txt");
    site.write("data/in.txt", &numbered_lines(0, 1_000, 30));
    let worker = rest_worker(&site, "");
    let mut api = Api::start(&site, &worker, &[]);
    let out = site.path("data/out.txt");
    assert_eq!(
        api.call(
            "POST",
            "/connectors",
            Some(json!({"name": "src", "config": source(&site, "data/in.txt", "moving")}))
        )
        .0,
        201
    );
    assert_eq!(api.call("POST", "/connectors", Some(json!({"name": "dst", "config": {"connector.class": "file-sink", "file": out.display().to_string(), "topics": "moving"}}))).0, 201);
    api.run
        .wait_for("the first 1,000 lines", Duration::from_secs(120), |_| {
            line_count(&out) >= 1_000
        });

    assert_eq!(api.call("PUT", "/connectors/src/pause", None).0, 202);
    let s = api.get("/connectors/src/status").1;
    assert_eq!(s["tasks"][0]["state"], "PAUSED", "{s}");
    // The paused source has no running task: nothing reads the new lines.
    let text = api.req("GET", "/metrics").send().unwrap().text().unwrap();
    assert!(
        !text.contains("tributary_task_records_polled_total{connector=\"src\""),
        "{text}"
    );
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&input)
        .unwrap()
        .write_all(numbered_lines(1_000, 500, 30).as_bytes())
        .unwrap();
    // Longer than a few poll and flush cycles (200 ms): were the source
    // running, the new lines would be through by now.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        line_count(&out),
        1_000,
        "no record moves while the source is paused"
    );

    assert_eq!(api.call("PUT", "/connectors/src/resume", None).0, 202);
    api.run
        .wait_for("the appended lines", Duration::from_secs(120), |_| {
            line_count(&out) >= 1_500
        });
    let (code, log) = api.run.stop();
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        std::fs::read_to_string(&input).unwrap(),
        "every line once, in order: pausing committed the offsets"
    );
}

#[test]
fn resetting_a_stopped_file_sources_offsets_makes_it_read_its_file_again() {
    let site = Site::new(PLUGINS);
    let text = numbered_lines(0, 400, 30);
    site.write("data/in.txt", &text);
    let worker = rest_worker(&site, "");
    let mut api = Api::start(&site, &worker, &[]);
    let out = site.path("data/out.txt");
    let input = site.path("data/in.txt").display().to_string();
    assert_eq!(
        api.call(
            "POST",
            "/connectors",
            Some(json!({"name": "src", "config": source(&site, "data/in.txt", "again")}))
        )
        .0,
        201
    );
    assert_eq!(api.call("POST", "/connectors", Some(json!({"name": "dst", "config": {"connector.class": "file-sink", "file": out.display().to_string(), "topics": "again"}}))).0, 201);
    api.run
        .wait_for("400 lines", Duration::from_secs(120), |_| {
            line_count(&out) >= 400
        });

    assert_eq!(api.call("PUT", "/connectors/src/stop", None).0, 204);
    let (code, offsets) = api.get("/connectors/src/offsets");
    assert_eq!(code, 200);
    assert_eq!(
        offsets,
        json!({"offsets": [{"partition": {"filename": input}, "offset": {"position": text.len()}}]}),
        "stopping committed the position at the end of the file"
    );
    let (code, body) = api.call("DELETE", "/connectors/src/offsets", None);
    assert_eq!(
        (code, &body["message"]),
        (
            200,
            &json!("The offsets for this connector have been reset successfully")
        )
    );
    assert_eq!(api.get("/connectors/src/offsets").1, json!({"offsets": []}));
    assert_eq!(api.call("PUT", "/connectors/src/resume", None).0, 202);
    api.run
        .wait_for("the file read again", Duration::from_secs(120), |_| {
            line_count(&out) >= 800
        });

    // An offset set by hand: from the 300th line on.
    assert_eq!(api.call("PUT", "/connectors/src/stop", None).0, 204);
    let at = numbered_lines(0, 300, 30).len();
    let (code, body) = api.call(
        "PATCH",
        "/connectors/src/offsets",
        Some(json!({"offsets": [{"partition": {"filename": input}, "offset": {"position": at}}]})),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body["message"],
        "The offsets for this connector have been altered successfully"
    );
    assert_eq!(api.call("PUT", "/connectors/src/resume", None).0, 202);
    api.run
        .wait_for("the last 100 lines again", Duration::from_secs(120), |_| {
            line_count(&out) >= 900
        });
    let (code, log) = api.run.stop();
    assert_eq!(code, 0, "{log}");
    let expected = format!("{text}{text}{}", numbered_lines(300, 100, 30));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), expected);
}

#[test]
fn a_bearer_token_guards_every_endpoint_but_health_and_secrets_stay_hidden() {
    let site = Site::new(PLUGINS);
    let var = "TRIBUTARY_REST_TEST_TOKEN";
    std::env::set_var(var, "s3cret-token-value");
    std::env::set_var("TRIBUTARY_REST_TEST_TOPIC", "resolved-topic-name");
    let worker = rest_worker(&site, &format!("rest.auth.token: ${{env:{var}}}\n"));
    let mut api = Api::start(&site, &worker, &[]);
    assert_eq!(api.get("/health").0, 200, "health needs no token");
    assert_error(&api.get("/connectors"), 401, "Authorization: Bearer");
    api.token = Some("wrong".into());
    assert_error(&api.get("/connectors"), 401, "not valid");
    assert_error(&api.get("/metrics"), 401, "not valid");
    api.token = Some("s3cret-token-value".into());
    assert_eq!(api.get("/connectors"), (200, json!([])));

    // A secret key's literal value is hidden; a placeholder shows as written.
    let (code, info) = api.call("POST", "/connectors", Some(json!({"name": "gen", "initial_state": "STOPPED", "config": {"connector.class": "testkit-source", "mode": "generate", "token": "hunter2"}})));
    assert_eq!(code, 201, "{info}");
    assert_eq!(info["config"]["token"], "[hidden]");
    assert_eq!(
        api.get("/connectors/gen/status").1["connector"]["state"],
        "STOPPED",
        "initial_state"
    );
    let (code, info) = api.call(
        "PATCH",
        "/connectors/gen/config",
        Some(json!({"token": format!("${{env:{var}}}")})),
    );
    assert_eq!(code, 200, "{info}");
    assert_eq!(info["config"]["token"], format!("${{env:{var}}}"));
    // Task configs show placeholders as submitted, too.
    let (code, info) = api.call(
        "POST",
        "/connectors",
        Some(json!({"name": "gen2", "initial_state": "PAUSED", "config": {"connector.class": "testkit-source", "mode": "generate", "topic": "${env:TRIBUTARY_REST_TEST_TOPIC}"}})),
    );
    assert_eq!(code, 201, "{info}");
    let (code, tasks) = api.get("/connectors/gen2/tasks");
    assert_eq!(code, 200);
    assert_eq!(
        tasks[0]["config"]["topic"],
        "${env:TRIBUTARY_REST_TEST_TOPIC}"
    );
    assert!(
        !tasks.to_string().contains("resolved-topic-name"),
        "{tasks}"
    );
    let (_, v) = api.call(
        "PUT",
        "/connector-plugins/testkit-source/config/validate",
        Some(json!({"mode": "generate", "token": "hunter2"})),
    );
    assert!(!v.to_string().contains("hunter2"), "{v}");
    let (code, log) = api.run.stop();
    assert_eq!(code, 0, "{log}");
    assert!(
        !log.contains("s3cret-token-value") && !log.contains("hunter2"),
        "{log}"
    );
}

#[test]
fn configs_and_target_states_survive_a_restart_in_compacted_topics() {
    let broker = Broker::memory();
    let site = Site::new(PLUGINS);
    site.write("data/in.txt", &numbered_lines(0, 10, 20));
    let worker = rest_worker(
        &site,
        &format!("bootstrap.servers: {}\n", broker.bootstrap()),
    );
    let file = site.write(
        "from-file.yaml",
        &format!(
            "name: from-file\nconfig:\n  connector.class: file-source\n  file: {}\n  topic: f\n",
            site.path("data/in.txt").display()
        ),
    );
    let api = Api::start(&site, &worker, &[&file]);
    for (name, topic) in [
        ("keeps-running", "a"),
        ("gets-paused", "b"),
        ("gets-stopped", "c"),
        ("gets-deleted", "d"),
    ] {
        let (code, body) = api.call(
            "POST",
            "/connectors",
            Some(json!({"name": name, "config": source(&site, "data/in.txt", topic)})),
        );
        assert_eq!(code, 201, "{body}");
    }
    let (code, body) = api.call(
        "POST",
        "/connectors",
        Some(json!({"name": "plugin-goes", "initial_state": "STOPPED", "config": {"connector.class": "testkit-source", "mode": "generate"}})),
    );
    assert_eq!(code, 201, "{body}");
    assert_eq!(
        api.call("PUT", "/connectors/gets-paused/pause", None).0,
        202
    );
    assert_eq!(
        api.call("PUT", "/connectors/gets-stopped/stop", None).0,
        204
    );
    assert_eq!(api.call("DELETE", "/connectors/gets-deleted", None).0, 204);
    let (code, _) = api.call(
        "PATCH",
        "/connectors/keeps-running/config",
        Some(json!({"batch.size": "7"})),
    );
    assert_eq!(code, 200);
    // A file-given connector edited through REST, and paused.
    assert_eq!(
        api.call(
            "PATCH",
            "/connectors/from-file/config",
            Some(json!({"topic": "edited"}))
        )
        .0,
        200
    );
    assert_eq!(api.call("PUT", "/connectors/from-file/pause", None).0, 202);
    api.wait_status("keeps-running", "RUNNING", running);
    let (code, log) = api.run.stop();
    assert_eq!(code, 0, "{log}");

    let configs = broker.consume_all("tributary-configs");
    let keys: Vec<String> = configs
        .iter()
        .map(|r| String::from_utf8(r.key.clone().unwrap()).unwrap())
        .collect();
    assert!(
        keys.contains(&"connector-keeps-running".to_owned()),
        "{keys:?}"
    );
    assert!(
        keys.contains(&"target-state-gets-paused".to_owned()),
        "{keys:?}"
    );
    let statuses = broker.consume_all("tributary-status");
    assert!(
        statuses.iter().any(|r| r.key.as_deref()
            == Some(b"status-task-keeps-running-0".as_slice())
            && r.value
                .as_deref()
                .is_some_and(|v| String::from_utf8_lossy(v).contains("\"RUNNING\""))),
        "the status topic holds task statuses"
    );

    // A record no worker wrote is skipped, not fatal.
    broker.produce(
        "tributary-configs",
        Some(b"connector-junk"),
        Some(b"not json"),
    );

    // The same worker again, with the same file, without the testkit plugin.
    std::fs::remove_file(site.path("plugins/tributary_testkit.wasm")).unwrap();
    let api = Api::start(&site, &worker, &[&file]);
    assert_eq!(
        api.get("/connectors").1,
        json!([
            "from-file",
            "gets-paused",
            "gets-stopped",
            "keeps-running",
            "plugin-goes"
        ])
    );
    let gone = api.get("/connectors/plugin-goes/status").1;
    assert_eq!(gone["connector"]["state"], "FAILED", "{gone}");
    assert!(
        gone["connector"]["trace"]
            .as_str()
            .unwrap()
            .contains("`connector.class`: no plugin provides `testkit-source`"),
        "{gone}"
    );
    assert_eq!(api.call("DELETE", "/connectors/plugin-goes", None).0, 204);
    assert!(
        api.run.log().contains("skipping a config record"),
        "{}",
        api.run.log()
    );
    assert_error(
        &api.get("/connectors/junk"),
        404,
        "Connector junk not found",
    );
    assert_eq!(
        api.get("/connectors/keeps-running/config").1["batch.size"],
        "7"
    );
    api.wait_status("keeps-running", "RUNNING", running);
    let paused = api.get("/connectors/gets-paused/status").1;
    assert_eq!(paused["connector"]["state"], "PAUSED", "{paused}");
    assert_eq!(paused["tasks"][0]["state"], "PAUSED", "{paused}");
    assert_eq!(
        api.get("/connectors/gets-stopped/status").1["connector"]["state"],
        "STOPPED"
    );
    assert_error(
        &api.get("/connectors/gets-deleted"),
        404,
        "Connector gets-deleted not found",
    );
    // The file's config wins at start; the target state set through REST stays.
    let from_file = api.get("/connectors/from-file/status").1;
    assert_eq!(from_file["connector"]["state"], "PAUSED", "{from_file}");
    assert_eq!(api.get("/connectors/from-file/config").1["topic"], "f");
    let (code, log) = api.run.stop();
    assert_eq!(code, 0, "{log}");
}

#[test]
fn logs_are_json_lines_with_a_flag() {
    let site = Site::new(PLUGINS);
    let worker = site.worker("");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .current_dir(site.dir.path())
        .env(
            "TRIBUTARY_LOG",
            "debug,cranelift_codegen=warn,wasmtime=warn",
        )
        .args(["--log-format", "json", "plugins", "-w"])
        .arg(&worker)
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "the plugin registry logs at debug");
    for line in lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
    }
}

#[test]
fn a_stopped_sinks_offsets_are_its_consumer_groups_and_can_be_moved() {
    let site = Site::new(PLUGINS);
    let text = numbered_lines(0, 300, 30);
    site.write("data/in.txt", &text);
    let worker = rest_worker(&site, "");
    let mut api = Api::start(&site, &worker, &[]);
    let out = site.path("data/out.txt");
    let sink = json!({"connector.class": "file-sink", "file": out.display().to_string(), "topics": "sunk"});
    assert_eq!(
        api.call(
            "POST",
            "/connectors",
            Some(json!({"name": "src", "config": source(&site, "data/in.txt", "sunk")}))
        )
        .0,
        201
    );
    assert_eq!(
        api.call(
            "POST",
            "/connectors",
            Some(json!({"name": "dst", "config": sink}))
        )
        .0,
        201
    );
    api.run
        .wait_for("300 lines", Duration::from_secs(120), |_| {
            line_count(&out) >= 300
        });

    assert_eq!(api.call("PUT", "/connectors/dst/stop", None).0, 204);
    let at = |n: i64| json!({"offsets": [{"partition": {"kafka_topic": "sunk", "kafka_partition": 0}, "offset": {"kafka_offset": n}}]});
    assert_eq!(
        api.get("/connectors/dst/offsets"),
        (200, at(300)),
        "stopping committed what was written"
    );
    assert_error(
        &api.call("PATCH", "/connectors/dst/offsets", Some(json!({"offsets": [{"partition": {"kafka_topic": "sunk"}, "offset": {"kafka_offset": 1}}]}))),
        400,
        "`offsets[0].partition`",
    );
    let (code, body) = api.call("PATCH", "/connectors/dst/offsets", Some(at(100)));
    assert_eq!(code, 200, "{body}");
    assert_eq!(api.get("/connectors/dst/offsets"), (200, at(100)));
    assert_eq!(api.call("PUT", "/connectors/dst/resume", None).0, 202);
    api.run
        .wait_for("lines 100 to 299 again", Duration::from_secs(120), |_| {
            line_count(&out) >= 500
        });

    assert_eq!(api.call("PUT", "/connectors/dst/stop", None).0, 204);
    assert_eq!(api.call("DELETE", "/connectors/dst/offsets", None).0, 200);
    assert_eq!(api.get("/connectors/dst/offsets"), (200, at(0)));
    assert_eq!(api.call("PUT", "/connectors/dst/resume", None).0, 202);
    api.run
        .wait_for("every line again", Duration::from_secs(120), |_| {
            line_count(&out) >= 800
        });
    let (code, log) = api.run.stop();
    assert_eq!(code, 0, "{log}");
    let expected = format!("{text}{}{text}", numbered_lines(100, 200, 30));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), expected);
}

#[test]
fn the_api_serves_https_with_the_configured_certificate() {
    let site = Site::new(PLUGINS);
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert_file = site.write("tls/cert.pem", &cert.cert.pem());
    let key_file = site.write("tls/key.pem", &cert.key_pair.serialize_pem());
    let worker = site.worker_with_rest(&format!(
        "listeners: https://127.0.0.1:0\nrest.tls.certificate.file: {}\nrest.tls.key.file: {}\nrest.auth.token: t0ken\n",
        cert_file.display(),
        key_file.display()
    ));
    let mut api = Api::start(&site, &worker, &[]);
    assert!(api.base.starts_with("https://127.0.0.1:"), "{}", api.base);
    api.client = Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    assert_eq!(api.get("/health").0, 200);
    assert_error(&api.get("/connectors"), 401, "Bearer");
    api.token = Some("t0ken".into());
    assert_eq!(api.get("/connectors"), (200, json!([])));
    // Plain HTTP on the TLS port gets no answer.
    let plain = api.base.replace("https://", "http://");
    assert!(Client::new().get(format!("{plain}/health")).send().is_err());
    // A client that does not trust the certificate is refused.
    assert!(Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .build()
        .unwrap()
        .get(format!("{}/health", api.base))
        .send()
        .is_err());
    let (code, log) = api.run.stop();
    assert_eq!(code, 0, "{log}");
}

#[test]
fn a_bad_tls_key_file_stops_the_worker_at_start_with_its_name() {
    let site = Site::new(PLUGINS);
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert_file = site.write("tls/cert.pem", &cert.cert.pem());
    let key_file = site.write("tls/key.pem", "not a key\n");
    let worker = site.worker_with_rest(&format!(
        "listeners: https://127.0.0.1:0\nrest.tls.certificate.file: {}\nrest.tls.key.file: {}\n",
        cert_file.display(),
        key_file.display()
    ));
    let (code, log) = site.run(&worker, &[]).wait_exit(Duration::from_secs(60));
    assert_ne!(code, 0);
    assert!(
        log.contains("rest.tls.key.file") && log.contains("key.pem"),
        "{log}"
    );
}

#[test]
fn a_failed_task_shows_its_trace_and_restarts_alone() {
    let site = Site::new(PLUGINS);
    std::fs::create_dir_all(site.path("data")).unwrap();
    let worker = rest_worker(&site, "");
    let api = Api::start(&site, &worker, &[]);
    let (code, body) = api.call(
        "POST",
        "/connectors",
        Some(json!({"name": "late-file", "config": source(&site, "data/later.txt", "late")})),
    );
    assert_eq!(code, 201, "{body}");
    let failed = api.wait_status("late-file", "a FAILED task", |s| {
        s["tasks"][0]["state"] == "FAILED"
    });
    let trace = failed["tasks"][0]["trace"].as_str().unwrap();
    assert!(
        trace.contains(&site.path("data/later.txt").display().to_string()),
        "{trace}"
    );
    assert_eq!(
        failed["connector"]["state"], "RUNNING",
        "the connector itself runs"
    );
    let (_, t0) = api.get("/connectors/late-file/tasks/0/status");
    assert_eq!(t0["state"], "FAILED");
    assert!(t0["trace"].is_string());
    let text = api.req("GET", "/metrics").send().unwrap().text().unwrap();
    assert!(
        text.contains(
            "tributary_task_state{connector=\"late-file\",task=\"0\",state=\"FAILED\"} 1"
        ),
        "{text}"
    );

    site.write("data/later.txt", "now it is here\n");
    let (code, s) = api.call(
        "POST",
        "/connectors/late-file/restart?includeTasks=true&onlyFailed=true",
        None,
    );
    assert_eq!(code, 202, "{s}");
    assert_eq!(s["tasks"][0]["state"], "RESTARTING", "{s}");
    api.wait_status("late-file", "RUNNING after the restart", running);
    // Nothing failed now: onlyFailed restarts nothing.
    let (code, s) = api.call(
        "POST",
        "/connectors/late-file/restart?includeTasks=true&onlyFailed=true",
        None,
    );
    assert_eq!(code, 202);
    assert_eq!(s["tasks"][0]["state"], "RUNNING", "{s}");
    let (code, log) = api.run.stop();
    assert_eq!(code, 0, "{log}");
}

#[test]
fn a_config_topic_that_is_not_compacted_is_refused() {
    let broker = Broker::memory();
    broker.create_topic("tributary-configs", 1, &[("cleanup.policy", "delete")]);
    let site = Site::new(PLUGINS);
    let worker = rest_worker(
        &site,
        &format!("bootstrap.servers: {}\n", broker.bootstrap()),
    );
    let (code, log) = site.run(&worker, &[]).wait_exit(Duration::from_secs(60));
    assert_ne!(code, 0);
    assert!(
        log.contains(
            "config topic `tributary-configs` has cleanup.policy=delete; it must be compact"
        ),
        "{log}"
    );
}

#[test]
fn a_sinks_offsets_move_on_a_real_broker() {
    let broker = Broker::memory();
    let site = Site::new(PLUGINS);
    let text = numbered_lines(0, 50, 20);
    site.write("data/in.txt", &text);
    let worker = rest_worker(
        &site,
        &format!(
            "bootstrap.servers: {}\nconsumer.session.timeout.ms: 6000\nconsumer.heartbeat.interval.ms: 1000\n",
            broker.bootstrap()
        ),
    );
    let mut api = Api::start(&site, &worker, &[]);
    let out = site.path("data/out.txt");
    let sink = json!({"connector.class": "file-sink", "file": out.display().to_string(), "topics": "moved"});
    assert_eq!(
        api.call(
            "POST",
            "/connectors",
            Some(json!({"name": "src", "config": source(&site, "data/in.txt", "moved")}))
        )
        .0,
        201
    );
    assert_eq!(
        api.call(
            "POST",
            "/connectors",
            Some(json!({"name": "dst", "config": sink}))
        )
        .0,
        201
    );
    api.run.wait_for("50 lines", Duration::from_secs(120), |_| {
        line_count(&out) >= 50
    });
    assert_eq!(api.call("PUT", "/connectors/dst/stop", None).0, 204);
    let at = |n: i64| json!({"offsets": [{"partition": {"kafka_topic": "moved", "kafka_partition": 0}, "offset": {"kafka_offset": n}}]});
    assert_eq!(api.get("/connectors/dst/offsets"), (200, at(50)));
    let (code, body) = api.call("DELETE", "/connectors/dst/offsets", None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(api.get("/connectors/dst/offsets"), (200, at(0)));
    assert_eq!(api.call("PUT", "/connectors/dst/resume", None).0, 202);
    api.run
        .wait_for("the 50 lines again", Duration::from_secs(120), |_| {
            line_count(&out) >= 100
        });
    let (code, log) = api.run.stop();
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        format!("{text}{text}")
    );
}
