//! What the API refuses of a request, and how: bodies over the size limit,
//! configs over the key limit, YAML anchors and aliases, and the framework's
//! own errors, each with Kafka Connect's `{"error_code", "message"}` body;
//! `/health` answers while large bodies are being read.

use crate::common::rest::{answer, assert_error, shared, Shared};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A create body of `n` keys under `config`, in JSON (under 2 MB for
/// 80,000 keys).
fn many_keys(name: &str, n: usize) -> String {
    let keys: Vec<String> = (0..n).map(|i| format!("\"k{i}\":1")).collect();
    format!(
        "{{\"name\":\"{name}\",\"config\":{{\"connector.class\":\"file-source\",{}}}}}",
        keys.join(",")
    )
}

#[test]
fn a_config_of_more_keys_than_the_limit_is_refused_naming_it() {
    let Shared { api, .. } = shared();
    let body = many_keys("limits-many", 80_000);
    assert!(body.len() < 2 * 1024 * 1024);
    for (method, path) in [
        ("POST", "/connectors"),
        ("PUT", "/connectors/limits-many/config"),
        ("PATCH", "/connectors/limits-many/config"),
        ("PUT", "/connector-plugins/file-source/config/validate"),
    ] {
        assert_error(
            &api.raw(method, path, "application/json", &body),
            400,
            "holds more than 10000 keys (the limit for a config document)",
        );
    }
    assert!(api.names("limits-many").is_empty());
}

#[test]
fn yaml_anchors_and_aliases_are_refused_with_their_line() {
    let Shared { api, .. } = shared();
    let body = "name: limits-alias\nconfig:\n  connector.class: file-source\n  topic: &t lines\n  file: *t\n";
    assert_error(
        &api.raw("POST", "/connectors", "application/yaml", body),
        400,
        "request body: line 4: holds a YAML anchor (`&name`); anchors and aliases are not allowed",
    );
    let body = "{\"connector.class\": \"file-source\",\n \"topic\": *t}";
    let got = api.raw(
        "PUT",
        "/connector-plugins/file-source/config/validate",
        "application/yaml",
        body,
    );
    assert_eq!(got.0, 400, "{}", got.1);
    assert!(api.names("limits-alias").is_empty());
}

#[test]
fn framework_errors_answer_kafka_connects_json_body() {
    let Shared { api, .. } = shared();
    // Over the body limit: 413.
    let big = format!(
        "{{\"name\": \"limits-big\", \"pad\": \"{}\"}}",
        "x".repeat(3 << 20)
    );
    // The worker answers before it has read the whole body and closes
    // the connection: it is not one to reuse.
    let r = api
        .req("POST", "/connectors")
        .header("content-type", "application/json")
        .header("connection", "close")
        .body(big)
        .send()
        .unwrap();
    assert_error(
        &answer(r),
        413,
        "request body is larger than 2097152 bytes (the limit for a request)",
    );
    // A path that does not decode to text.
    assert_error(&api.get("/connectors/%FF%FE/status"), 400, "");
    // Unknown paths and methods, as Kafka Connect answers them.
    assert_error(&api.get("/connectors/x/nothing"), 404, "HTTP 404 Not Found");
    let r = api.req("POST", "/health").send().unwrap();
    assert!(r.headers().contains_key("allow"), "{:?}", r.headers());
    assert_error(&answer(r), 405, "HTTP 405 Method Not Allowed");
}

/// Sends a whole request on a connection of its own, without reading the
/// answer yet.
fn send(addr: &str, method: &str, path: &str, body: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    s.flush().unwrap();
    s
}

#[test]
fn health_answers_while_large_bodies_are_read() {
    let Shared { api, .. } = shared();
    let addr = api.base.trim_start_matches("http://").to_owned();
    let body = many_keys("limits-health", 80_000);
    // More large requests than the API has threads, every byte sent.
    let pending: Vec<TcpStream> = (0..6)
        .map(|_| {
            send(
                &addr,
                "PUT",
                "/connector-plugins/file-source/config/validate",
                &body,
            )
        })
        .collect();
    let started = Instant::now();
    let health = api
        .client
        .get(format!("{}/health", api.base))
        .timeout(Duration::from_secs(20))
        .send()
        .unwrap_or_else(|e| panic!("no /health answer while large bodies were read: {e}"));
    assert_eq!(health.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(20));
    for mut s in pending {
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(answer.contains("more than 10000 keys"), "{answer}");
    }
}
