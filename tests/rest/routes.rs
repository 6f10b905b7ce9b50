//! The API as a whole: the root, health, every route in the OpenAPI
//! document, unknown paths and methods, and the log format.

use crate::common::rest::{assert_error, shared, Shared, PLUGINS};
use crate::common::Site;
use serde_json::{json, Value};

#[test]
fn the_root_names_the_version_and_the_cluster() {
    let Shared { api, .. } = shared();
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
}

#[test]
fn unknown_paths_and_methods_answer_kafka_connects_404_and_405() {
    let Shared { api, .. } = shared();
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
}

#[test]
fn every_route_is_served_and_in_the_openapi_document() {
    let Shared { api, .. } = shared();
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
