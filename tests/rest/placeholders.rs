//! Values from placeholders and secret values in answers: a refused value
//! is named by its placeholder, never by what it resolved to, on every
//! route that takes a config; secret values are hidden whatever their
//! origin. Each test starts its own worker with its own environment.

use crate::common::rest::{rest_worker, Api, PLUGINS};
use crate::common::Site;
use serde_json::{json, Value};
use tributary::config::{Apply, RUNTIME_KEYS};

/// What every value these tests put in the worker's environment holds.
const MARKER: &str = "m4rker-7e1f";

const ALLOW: &str = "config.providers.env.allowlist.pattern: TRIBUTARY_PH_.*\nconnector.client.config.override.policy: All\n";

/// A connector config of `class` in `site`, with `key: value` added
/// (none when `key` is empty).
fn config(site: &Site, class: &str, key: &str, value: &str) -> Value {
    let mut c =
        json!({"connector.class": class, "file": site.path("ph/data.txt").display().to_string()});
    if class == "file-source" {
        c["topic"] = json!("ph-topic");
    } else {
        c["topics"] = json!("ph-topic");
    }
    if key == "topics.regex" {
        c.as_object_mut().unwrap().remove("topics");
    }
    if !key.is_empty() {
        c[key] = json!(value);
    }
    c
}

#[test]
fn no_answer_holds_a_value_resolved_for_a_refused_key() {
    let site = Site::new(PLUGINS);
    site.write("ph/data.txt", "one\n");
    // Every key the worker reads (but the plugin's choice, tried on its
    // own below), the file connectors' own keys, librdkafka properties.
    let mut cases: Vec<(&str, String)> = RUNTIME_KEYS
        .iter()
        .filter(|k| !matches!(k.apply, Apply::ChoosesPlugin))
        // A sink's pattern, tried on a sink below (a source refuses any).
        .filter(|k| k.name != "topics.regex")
        .map(|k| ("file-source", k.name.to_owned()))
        .collect();
    for key in [
        "connector.class",
        "connector.plugin.version",
        "batch.size",
        "file",
        "producer.override.linger.ms",
        "producer.override.compression.type",
    ] {
        cases.push(("file-source", key.to_owned()));
    }
    cases.push(("file-sink", "topics.regex".to_owned()));
    cases.push(("file-sink", "consumer.override.fetch.min.bytes".to_owned()));
    cases.push(("file-sink", "consumer.override.max.poll.records".to_owned()));
    // Each key's variable: a value it refuses (not a number, a boolean, a
    // URL, a regular expression, a plugin or a librdkafka value; for
    // `file`, a path under a directory that does not exist).
    let env: Vec<(String, String)> = cases
        .iter()
        .enumerate()
        .map(|(i, (_, key))| {
            let value = if key == "file" {
                site.path(&format!("{MARKER}/in.txt")).display().to_string()
            } else {
                format!("x-{MARKER}(")
            };
            (format!("TRIBUTARY_PH_{i}"), value)
        })
        .collect();
    // Placeholders and client overrides reach the checks under test: the
    // worker lets REST connectors read these variables and set overrides.
    let worker = rest_worker(&site, ALLOW);
    let api = Api::listening(site.run_with_env(&worker, &[], &env));
    let mut answers: Vec<(String, u16, Value)> = Vec::new();
    let mut call = |what: String, method: &str, path: &str, body: Value| {
        let (code, answer) = api.call(method, path, Some(body));
        assert!(
            !answer.to_string().contains(MARKER),
            "{what}: {method} {path} answers with a resolved value: {answer}"
        );
        answers.push((what, code, answer));
    };
    for (class, base) in [("file-source", "ph-source"), ("file-sink", "ph-sink")] {
        let body = json!({"name": base, "initial_state": "STOPPED", "config": config(&site, class, "", "")});
        let (code, answer) = api.call("POST", "/connectors", Some(body));
        assert_eq!(code, 201, "{answer}");
    }
    for (i, (class, key)) in cases.iter().enumerate() {
        let placeholder = format!("${{env:TRIBUTARY_PH_{i}}}");
        let with = config(&site, class, key, &placeholder);
        let base = if *class == "file-source" {
            "ph-source"
        } else {
            "ph-sink"
        };
        let what = |route: &str| format!("#{i} `{key}` ({route})");
        call(
            what("POST"),
            "POST",
            "/connectors",
            json!({"name": format!("ph-new-{i}"), "initial_state": "STOPPED", "config": with}),
        );
        call(
            what("PUT"),
            "PUT",
            &format!("/connectors/{base}/config"),
            with.clone(),
        );
        let mut patch = json!({});
        patch[key.as_str()] = json!(placeholder);
        if key == "topics.regex" {
            // A sink reads `topics` or `topics.regex`: the patch swaps them.
            patch["topics"] = Value::Null;
        }
        call(
            what("PATCH"),
            "PATCH",
            &format!("/connectors/{base}/config"),
            patch,
        );
        call(
            what("validate"),
            "PUT",
            &format!("/connector-plugins/{class}/config/validate"),
            with,
        );
        // A patch the worker took stays: the next cases start from a
        // valid config again.
        let restore = config(&site, class, "", "");
        let (code, answer) = api.call("PUT", &format!("/connectors/{base}/config"), Some(restore));
        assert_eq!(code, 200, "{answer}");
    }
    for path in [
        "/connectors?expand=info&expand=status",
        "/connectors/ph-source/status",
    ] {
        let (_, answer) = api.get(path);
        assert!(!answer.to_string().contains(MARKER), "{path}: {answer}");
    }
    // Keys whose check names the value refuse it, naming the placeholder.
    for (i, (_, key)) in cases.iter().enumerate() {
        let placeholder = format!("${{env:TRIBUTARY_PH_{i}}}");
        let must_refuse = [
            "tasks.max",
            "topics.regex",
            "errors.tolerance",
            "errors.retry.timeout",
            "errors.log.enable",
            "connection.url",
            "store.endpoint",
            "connector.class",
            "connector.plugin.version",
            "batch.size",
            "file",
            "producer.override.linger.ms",
            "producer.override.compression.type",
            "consumer.override.fetch.min.bytes",
            "consumer.override.max.poll.records",
        ];
        if !must_refuse.contains(&key.as_str()) {
            continue;
        }
        for (what, code, answer) in answers
            .iter()
            .filter(|a| a.0.starts_with(&format!("#{i} `")))
        {
            let text = answer.to_string();
            if what.ends_with("(validate)") {
                // The plugin's choice that does not match the route is
                // refused before validation.
                let refused = *code == 400 && key.starts_with("connector.");
                assert!(
                    refused || (*code == 200 && answer["error_count"].as_u64() > Some(0)),
                    "{what}: {answer}"
                );
            } else {
                assert_eq!(*code, 400, "{what}: {answer}");
            }
            // librdkafka names no value for a number it refuses.
            let names_no_value = key.ends_with("linger.ms") || key.ends_with("fetch.min.bytes");
            assert!(
                names_no_value || text.contains(&placeholder),
                "{what}: {placeholder} not in {answer}"
            );
        }
    }
    let log = api.run.log();
    assert!(
        !log.contains(MARKER),
        "the log holds a resolved value:\n{log}"
    );
}

#[test]
fn secret_values_are_hidden_whatever_their_origin() {
    let site = Site::new(PLUGINS);
    let env = [
        ("TRIBUTARY_PH_TOKEN", format!("token-{MARKER}")),
        ("TRIBUTARY_PH_PASSWORD", format!("password-{MARKER}")),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    // Placeholders and client overrides reach the checks under test: the
    // worker lets REST connectors read these variables and set overrides.
    let worker = rest_worker(&site, ALLOW);
    let api = Api::listening(site.run_with_env(&worker, &[], &env));
    // Literal secrets, each also in a mixture with a placeholder.
    let literal = [
        "lit-token-5a0c",
        "lit-password-5a0c",
        "lit-url-password-5a0c",
    ];
    let cases = [
        (
            "ph-literal",
            json!({
                "token": "lit-token-5a0c",
                "connection.url": "postgres://app:lit-url-password-5a0c@db.invalid:5432/x",
                "connection.password": "lit-password-5a0c",
                "store.bucket": "b",
                "store.access.key.id": "AKID",
                "store.secret.access.key": "lit-password-5a0c",
            }),
        ),
        (
            "ph-mixture",
            json!({
                "token": "lit-token-5a0c${env:TRIBUTARY_PH_TOKEN}",
                "connection.url": "postgres://app:lit-url-password-5a0c${env:TRIBUTARY_PH_PASSWORD}@db.invalid/x",
                "connection.audit.url": "postgres://app:lit-url-password-5a0c@${env:TRIBUTARY_PH_TOKEN}/x",
                "connection.password": "${env:TRIBUTARY_PH_PASSWORD}lit-password-5a0c",
                "store.bucket": "b",
                "store.access.key.id": "AKID",
                "store.session.token": "lit-password-5a0c${env:TRIBUTARY_PH_TOKEN}",
                "store.secret.access.key": "${env:TRIBUTARY_PH_PASSWORD}-lit-password-5a0c",
            }),
        ),
        (
            "ph-placeholder",
            json!({
                "token": "${env:TRIBUTARY_PH_TOKEN}",
                "connection.url": "postgres://app:${env:TRIBUTARY_PH_PASSWORD}@db.invalid/x",
                "connection.password": "${env:TRIBUTARY_PH_PASSWORD}",
                "store.bucket": "b",
                "store.access.key.id": "AKID",
                "store.secret.access.key": "${env:TRIBUTARY_PH_PASSWORD}",
            }),
        ),
    ];
    for (name, secrets) in cases {
        let mut config =
            json!({"connector.class": "testkit-source", "mode": "generate", "topic": "ph-secrets"});
        for (k, v) in secrets.as_object().unwrap() {
            config[k] = v.clone();
        }
        let mut answers = Vec::new();
        let (code, created) = api.call(
            "POST",
            "/connectors",
            Some(json!({"name": name, "initial_state": "STOPPED", "config": config})),
        );
        assert_eq!(code, 201, "{created}");
        answers.push(("POST", created));
        for path in [
            format!("/connectors/{name}"),
            format!("/connectors/{name}/config"),
            "/connectors?expand=info".to_owned(),
        ] {
            let (code, answer) = api.get(&path);
            assert_eq!(code, 200, "{answer}");
            answers.push(("GET", answer));
        }
        let (code, validated) = api.call(
            "PUT",
            "/connector-plugins/testkit-source/config/validate",
            Some(config.clone()),
        );
        assert_eq!(code, 200, "{validated}");
        answers.push(("validate", validated.clone()));
        for (what, answer) in &answers {
            let text = answer.to_string();
            for secret in literal.iter().chain([&MARKER]) {
                assert!(
                    !text.contains(secret),
                    "{name}, {what}: {secret} in {answer}"
                );
            }
        }
        let (_, shown) = api.get(&format!("/connectors/{name}/config"));
        let value = |key: &str| -> Value {
            validated["configs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["value"]["name"] == key)
                .map(|c| c["value"]["value"].clone())
                .unwrap_or(Value::Null)
        };
        for key in ["token", "connection.password", "store.secret.access.key"] {
            let expected = if name == "ph-placeholder" {
                secrets[key].clone()
            } else {
                json!("[hidden]")
            };
            assert_eq!(shown[key], expected, "{name}: GET `{key}`");
            assert_eq!(value(key), expected, "{name}: validate `{key}`");
        }
        let url = match name {
            "ph-placeholder" => secrets["connection.url"].clone(),
            "ph-literal" => json!("postgres://app:[hidden]@db.invalid:5432/x"),
            _ => json!("postgres://app:[hidden]@db.invalid/x"),
        };
        assert_eq!(shown["connection.url"], url, "{name}: GET");
        assert_eq!(value("connection.url"), url, "{name}: validate");
    }
}

/// Refusals of what a REST connector may reach quote paths, and a task's
/// failure quotes what the connector tried: a path or database built from
/// a placeholder is named by the placeholder there too, also when the
/// text quotes only part of the value (a directory of a path).
#[test]
fn paths_from_placeholders_are_named_by_them_in_refusals_and_failures() {
    let site = Site::new(PLUGINS);
    site.write("ph/data.txt", "one\n");
    // A directory outside the allowed ones (the site's), whose name is
    // what a placeholder resolves to.
    let outside = tempfile::tempdir().unwrap();
    let outside_dir = outside.path().join(format!("{MARKER}-outside"));
    std::fs::create_dir(&outside_dir).unwrap();
    let env = [
        // Outside the allowed directories, whole and in part.
        (
            "TRIBUTARY_PH_OUTSIDE",
            outside_dir.join("out.txt").display().to_string(),
        ),
        ("TRIBUTARY_PH_PART", format!("{MARKER}-outside")),
        // Inside them, under a directory that does not exist.
        ("TRIBUTARY_PH_TAIL", format!("{MARKER}-tail")),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    let worker = rest_worker(&site, ALLOW);
    let api = Api::listening(site.run_with_env(&worker, &[], &env));
    let inside = site.path("ph").display().to_string();
    let cases = [
        ("file-sink", "${env:TRIBUTARY_PH_OUTSIDE}".to_owned()),
        (
            "file-sink",
            format!(
                "{}/${{env:TRIBUTARY_PH_PART}}/out.txt",
                outside.path().display()
            ),
        ),
        (
            "file-sink",
            "/etc/${env:TRIBUTARY_PH_PART}/out.txt".to_owned(),
        ),
        ("file-source", "/etc/${env:TRIBUTARY_PH_PART}".to_owned()),
        (
            "file-sink",
            format!("{inside}/${{env:TRIBUTARY_PH_TAIL}}/out.txt"),
        ),
    ];
    let mut created = Vec::new();
    for (i, (class, file)) in cases.iter().enumerate() {
        let mut config = config(&site, class, "file", file);
        config["tasks.max"] = json!("1");
        let name = format!("ph-path-{i}");
        let (code, answer) = api.call(
            "POST",
            "/connectors",
            Some(json!({"name": name, "config": config.clone()})),
        );
        assert!(
            !answer.to_string().contains(MARKER),
            "#{i} {file}: {answer}"
        );
        if code == 201 {
            created.push(name);
        } else {
            assert_eq!(code, 400, "#{i} {file}: {answer}");
        }
        let (_, answer) = api.call(
            "PUT",
            &format!("/connector-plugins/{class}/config/validate"),
            Some(config),
        );
        assert!(
            !answer.to_string().contains(MARKER),
            "#{i} validate: {answer}"
        );
    }
    // A connector that was taken runs its task until it fails or runs.
    for name in &created {
        let status = api.wait_status(name, "a settled task", |s| {
            s["tasks"].as_array().is_some_and(|t| {
                t.iter()
                    .any(|t| t["state"] == "FAILED" || t["state"] == "RUNNING")
            })
        });
        assert!(!status.to_string().contains(MARKER), "{name}: {status}");
        let (_, tasks) = api.get(&format!("/connectors/{name}/tasks"));
        assert!(!tasks.to_string().contains(MARKER), "{name}: {tasks}");
    }
    let log = api.run.log();
    assert!(
        !log.contains(MARKER),
        "the log holds a resolved value:\n{log}"
    );
}
