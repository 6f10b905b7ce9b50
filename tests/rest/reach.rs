//! What a connector created over REST may reach on the worker's host: its
//! files (`file.allowed.paths`), environment variables
//! (`config.providers.env.allowlist.pattern`), client overrides
//! (`connector.client.config.override.policy`), and how many connectors and
//! tasks the worker runs (`connectors.max`, `tasks.max.total`). A connector
//! file given at start is the operator's and reaches what it names.

use crate::common::numbered_lines;
use crate::common::rest::{assert_error, running, shared, source, Api, Shared, PLUGINS};
use crate::common::Site;
use serde_json::{json, Value};

/// The messages of a validation's errors, over every key.
fn validation_errors(v: &Value) -> Vec<String> {
    v["configs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["value"]["errors"].as_array().cloned().unwrap_or_default())
        .map(|e| e.as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn file_connectors_created_over_rest_reach_only_the_allowed_paths() {
    let Shared { site, api } = shared();
    // The shared worker allows the site's directory alone.
    let create = |name: &str, config: Value| {
        api.call(
            "POST",
            "/connectors",
            Some(json!({"name": name, "config": config})),
        )
    };
    let shadow = create(
        "reach-shadow",
        json!({"connector.class": "file-source", "file": "/etc/passwd", "topic": "reach"}),
    );
    assert_error(
        &shadow,
        400,
        "`file`: /etc is outside the directories the worker's `file.allowed.paths` allows",
    );
    let escape = site.path("reach/../../reach-escape.txt");
    std::fs::create_dir_all(site.path("reach")).unwrap();
    assert_error(
        &create(
            "reach-escape",
            json!({"connector.class": "file-sink", "file": escape.display().to_string(), "topics": "reach"}),
        ),
        400,
        "`file.allowed.paths`",
    );
    // A link inside the allowed directory that leads out of it.
    std::os::unix::fs::symlink("/etc", site.path("reach/etc")).unwrap();
    let linked = create(
        "reach-linked",
        json!({"connector.class": "file-source", "file": site.path("reach/etc/passwd").display().to_string(), "topic": "reach"}),
    );
    assert_error(&linked, 400, "(that is /etc) is outside the directories");
    // Validation refuses the same.
    let (code, v) = api.call(
        "PUT",
        "/connector-plugins/file-source/config/validate",
        Some(json!({"connector.class": "file-source", "file": "/etc/passwd", "topic": "reach"})),
    );
    assert_eq!(code, 200, "{v}");
    assert!(
        validation_errors(&v)
            .iter()
            .any(|e| e.contains("`file.allowed.paths`")),
        "{v}"
    );
    for name in ["reach-shadow", "reach-escape", "reach-linked"] {
        assert_eq!(api.get(&format!("/connectors/{name}")).0, 404, "{name}");
    }
    // Inside: created and running.
    site.write("reach/in.txt", &numbered_lines(0, 3, 10));
    let (code, body) = create("reach-inside", source(site, "reach/in.txt", "reach"));
    assert_eq!(code, 201, "{body}");
    api.wait_status("reach-inside", "RUNNING", running);
    assert_eq!(api.call("DELETE", "/connectors/reach-inside", None).0, 204);
}

#[test]
fn env_placeholders_over_rest_read_only_allowed_variables() {
    let Shared { site, api } = shared();
    site.write("reach-env/in.txt", &numbered_lines(0, 3, 10));
    let mut config = source(site, "reach-env/in.txt", "reach-env");
    config["topic"] = json!("${env:PATH}");
    let refused = api.call(
        "POST",
        "/connectors",
        Some(json!({"name": "reach-env", "config": config})),
    );
    assert_error(
        &refused,
        400,
        "the worker's `config.providers.env.allowlist.pattern` is empty",
    );
    let path = std::env::var("PATH").unwrap();
    assert!(!refused.1.to_string().contains(&path), "{}", refused.1);
    assert!(api.names("reach-env").is_empty());
}

#[test]
fn client_overrides_over_rest_follow_the_policy_and_never_load_code() {
    let Shared { site, api } = shared();
    site.write("reach-override/in.txt", &numbered_lines(0, 3, 10));
    let mut config = source(site, "reach-override/in.txt", "reach-override");
    config["producer.override.linger.ms"] = json!("5");
    // The shared worker keeps the default policy, `None`.
    assert_error(
        &api.call(
            "POST",
            "/connectors",
            Some(json!({"name": "reach-override", "config": config})),
        ),
        400,
        "`producer.override.linger.ms`: the worker's `connector.client.config.override.policy` is `None`",
    );
    // Validation names the same, and never hands a library to librdkafka.
    let lib = site.write("reach-override/evil.so", "not a library");
    let (code, v) = api.call(
        "PUT",
        "/connector-plugins/file-source/config/validate",
        Some(json!({"connector.class": "file-source", "file": site.path("reach-override/in.txt").display().to_string(), "topic": "t", "producer.override.plugin.library.paths": lib.display().to_string()})),
    );
    assert_eq!(code, 200, "{v}");
    let errors = validation_errors(&v);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("loads shared libraries into the worker")),
        "{v}"
    );
    assert!(api.names("reach-override").is_empty());
}

/// A worker of its own: overrides allowed (`All`), files only under
/// `allowed/`, at most 3 connectors and 3 tasks; and a connector file given
/// at start that reads outside `allowed/`, with an override.
#[test]
fn limits_refuse_more_connectors_and_tasks_and_files_given_at_start_are_trusted() {
    let site = Site::new(PLUGINS);
    site.write("data/in.txt", &numbered_lines(0, 3, 10));
    site.write("allowed/in.txt", &numbered_lines(0, 3, 10));
    site.write("data/ca.pem", "not a certificate\n");
    let worker = site.worker_with_rest(&format!(
        "listeners: http://127.0.0.1:0\nfile.allowed.paths: {}\nconnector.client.config.override.policy: All\nconnectors.max: 3\ntasks.max.total: 3\n",
        site.path("allowed").display()
    ));
    let trusted = site.write(
        "trusted.yaml",
        "name: trusted\nconfig:\n  connector.class: file-source\n  file: data/in.txt\n  topic: t\n  producer.override.linger.ms: 5\n",
    );
    let api = Api::start(&site, &worker, &[&trusted]);
    api.wait_status("trusted", "RUNNING", running);
    let create = |name: &str, config: Value| {
        api.call(
            "POST",
            "/connectors",
            Some(json!({"name": name, "config": config})),
        )
    };
    let inside = |tasks: u32| {
        let mut c = source(&site, "allowed/in.txt", "t");
        c["tasks.max"] = json!(tasks.to_string());
        c
    };
    // What the connector file reads is refused over REST.
    assert_error(
        &create("outside", source(&site, "data/in.txt", "t")),
        400,
        "`file.allowed.paths`",
    );
    // `All` allows tuning, never code or host files outside the allowed
    // directories.
    let mut tuned = inside(1);
    tuned["producer.override.linger.ms"] = json!("5");
    let (code, body) = create("a", tuned.clone());
    assert_eq!(code, 201, "{body}");
    let mut engine = inside(1);
    engine["producer.override.ssl.engine.location"] = json!(site.path("data/ca.pem"));
    assert_error(
        &create("b", engine),
        400,
        "`producer.override.ssl.engine.location`: loads an OpenSSL engine",
    );
    let mut ca = inside(1);
    ca["consumer.override.ssl.ca.location"] = json!(site.path("data/ca.pem"));
    assert_error(&create("b", ca), 400, "`consumer.override.ssl.ca.location`");
    // trusted (1 task) and a (1 task): one more task fits, two do not.
    assert_error(
        &create("b", inside(2)),
        400,
        "`tasks.max`: 2 tasks and the 2 of the other connectors make 4, more than the worker's `tasks.max.total` of 3",
    );
    let (code, body) = create("b", inside(1));
    assert_eq!(code, 201, "{body}");
    assert_error(
        &create("c", inside(1)),
        400,
        "the worker runs 3 connectors, as many as its `connectors.max` allows",
    );
    // A change that adds no task passes; one that adds some does not.
    let (code, body) = api.call("PUT", "/connectors/b/config", Some(inside(1)));
    assert_eq!(code, 200, "{body}");
    assert_error(
        &api.call("PUT", "/connectors/b/config", Some(inside(2))),
        400,
        "`tasks.max.total` of 3",
    );
    assert_eq!(api.call("DELETE", "/connectors/a", None).0, 204);
    let (code, body) = create("c", inside(1));
    assert_eq!(code, 201, "{body}");
    api.wait_status("c", "RUNNING", running);
}
