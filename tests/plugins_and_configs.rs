//! What a user sees from `tributary plugins` and `tributary validate`:
//! found plugins, refused files with their reasons, and every config
//! problem at once with file, line and key.

mod common;

use common::Site;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn plugins_lists_connectors_and_refuses_bad_files_with_reasons() {
    let site = Site::new(&["tributary_connector_file", "tributary_future_contract"]);
    site.write("plugins/core-module.wasm", "\0asm\x01\0\0\0");
    site.write("plugins/notes.wasm", "just text");
    let worker = site.worker("");
    let out = site.cli(&["plugins", "-w", worker.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("file-source 0.1.0 (source)"), "{text}");
    assert!(text.contains("file-sink 0.1.0 (sink)"), "{text}");
    assert!(
        text.contains("file-write required"),
        "config keys with type and default:\n{text}"
    );
    assert!(
        text.contains("tributary_future_contract.wasm: implements contract tributary:connector@0.3.0; this worker speaks tributary:connector@0.2.0"),
        "{text}"
    );
    assert!(
        text.contains("core-module.wasm: is a core WebAssembly module, not a component"),
        "{text}"
    );
    assert!(
        text.contains("notes.wasm: is not a WebAssembly component"),
        "{text}"
    );
}

#[test]
fn a_missing_plugin_is_named_with_the_plugins_that_are_there() {
    let site = Site::new(&["tributary_connector_file"]);
    let worker = site.worker("");
    let c = site.write("jdbc.json", "{\"name\": \"db\", \"config\": {\"connector.class\": \"jdbc-source\", \"tasks.max\": \"1\"}}");
    let out = site.cli(&[
        "validate",
        "-w",
        worker.to_str().unwrap(),
        c.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("jdbc.json:1: `connector.class`: no plugin provides `jdbc-source`; found: file-sink 0.1.0 (sink), file-source 0.1.0 (source)"),
        "{err}"
    );
}

#[test]
fn validate_lists_every_problem_with_file_line_and_key() {
    let site = Site::new(&["tributary_connector_file"]);
    let worker = site.write(
        "worker.yaml",
        &format!(
            "plugin.path: {}\nplugin.cahce.dir: x\ntask.memory.max.mb: lots\nproducer.lingr.ms: 5\n",
            site.path("plugins").display()
        ),
    );
    let src = site.write(
        "source.yaml",
        "name: in\nconfig:\n  connector.class: file-source\n  file: nowhere/in.txt\n  batch.size: ten\n  topik: t\n",
    );
    let sink = site.write(
        "sink.yaml",
        "name: out\nconfig:\n  connector.class: file-sink\n  file: out.txt\n",
    );
    let good = site.write(
        "good.yaml",
        "name: good\nconfig:\n  connector.class: file-sink\n  file: out2.txt\n  topics: t\n  consumer.override.auto.offset.reset: sideways\n",
    );
    let out = site.cli(&[
        "validate",
        "-w",
        worker.to_str().unwrap(),
        src.to_str().unwrap(),
        sink.to_str().unwrap(),
        good.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    for expected in [
        "worker.yaml:2: `plugin.cahce.dir`: unknown worker key (did you mean `plugin.cache.dir`?)",
        "worker.yaml:3: `task.memory.max.mb`: expects an integer, got \"lots\"",
        "source.yaml:4: `file`: directory",
        "source.yaml:5: `batch.size`: expects an integer, got \"ten\"",
        "source.yaml:6: `topik`: unknown key for connector `file-source` 0.1.0 (did you mean `topic`?)",
        "source.yaml:3: `topic`: is required by `file-source`",
        "sink.yaml:3: `topics`: a sink needs `topics` or `topics.regex`",
        "worker.yaml:4: `producer.lingr.ms`: librdkafka refuses it: No such configuration property",
        "good.yaml:6: `consumer.override.auto.offset.reset`: librdkafka refuses it: Invalid value",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    assert!(err.contains("9 config problems"), "{err}");
}

#[test]
fn a_valid_set_validates_and_the_compile_cache_is_used() {
    let site = Site::new(&["tributary_connector_file"]);
    std::fs::create_dir(site.path("data")).unwrap();
    let cache = site.path("cache");
    let worker = site.write(
        "worker.yaml",
        &format!(
            "plugin.path: {}\nplugin.cache.dir: {}\n",
            site.path("plugins").display(),
            cache.display()
        ),
    );
    let src = site.write(
        "s.yaml",
        "name: in\nconfig:\n  connector.class: file-source\n  file: data/in.txt\n  topic: t\n",
    );
    let out = site.cli(&[
        "validate",
        "-w",
        worker.to_str().unwrap(),
        src.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("s.yaml: ok (source file-source 0.1.0, tasks.max 1)"));
    let cached: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(cached.len(), 1, "one compiled component cached: {cached:?}");
    assert!(cached[0].ends_with(".cwasm"));
    assert!(
        stderr(&out).contains("cached=false"),
        "compiled the first time: {}",
        stderr(&out)
    );
    // A restart loads the compiled code instead of compiling again.
    let again = site.cli(&[
        "validate",
        "-w",
        worker.to_str().unwrap(),
        src.to_str().unwrap(),
    ]);
    assert!(again.status.success());
    assert!(stderr(&again).contains("cached=true"), "{}", stderr(&again));
}

#[test]
fn every_example_connector_config_validates() {
    let site = Site::new(&[
        "tributary_connector_file",
        "tributary_connector_database",
        "tributary_connector_s3",
    ]);
    let worker = site.worker("");
    let examples = common::root().join("configs");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("worker") {
            continue;
        }
        files.push(path);
    }
    files.sort();
    assert!(files.len() >= 9, "{files:?}");
    // Relative paths in the examples (demo-data/, data/) resolve in the site.
    std::fs::create_dir_all(site.path("demo-data")).unwrap();
    std::fs::create_dir_all(site.path("data")).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tributary"));
    cmd.current_dir(site.dir.path())
        .env("PG_PASSWORD", "example")
        .env("MARIADB_PASSWORD", "example")
        .env("S3_ACCESS_KEY_ID", "example")
        .env("S3_SECRET_ACCESS_KEY", "example")
        .arg("validate")
        .arg("-w")
        .arg(&worker)
        .args(&files);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains(&format!("{} connector config(s) valid", files.len())),
        "{}",
        stdout(&out)
    );
}
