//! Connector configs, target states, statuses and sink offsets kept in a
//! real broker's topics (tansu): each test runs its own worker against its
//! own broker.

use crate::common::broker::Broker;
use crate::common::rest::{assert_error, rest_worker, running, source, Api, PLUGINS};
use crate::common::{line_count, numbered_lines, Site};
use serde_json::json;
use std::time::Duration;

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
