//! A connector's status and target state: restart, pause, resume, stop,
//! and a failed task.

use crate::common::rest::{assert_error, running, shared, source, Shared};
use crate::common::{line_count, numbered_lines};
use serde_json::json;
use std::time::Duration;

#[test]
fn restart_pause_resume_and_stop_answer_with_kafka_connects_codes() {
    let Shared { site, api } = shared();
    site.write("life/in.txt", &numbered_lines(0, 10, 20));
    let (code, info) = api.call(
        "POST",
        "/connectors",
        Some(json!({"name": "life-in", "config": source(site, "life/in.txt", "life")})),
    );
    assert_eq!(code, 201, "{info}");
    api.wait_status("life-in", "RUNNING", running);

    // Restarts.
    assert_eq!(api.call("POST", "/connectors/life-in/restart", None).0, 204);
    let (code, s) = api.call(
        "POST",
        "/connectors/life-in/restart?includeTasks=true",
        None,
    );
    assert_eq!(code, 202, "{s}");
    assert_eq!(s["tasks"][0]["state"], "RESTARTING");
    let (code, s) = api.call(
        "POST",
        "/connectors/life-in/restart?includeTasks=true&onlyFailed=true",
        None,
    );
    assert_eq!(code, 202, "{s}");
    assert_error(
        &api.call(
            "POST",
            "/connectors/life-in/restart?includeTasks=maybe",
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
    api.wait_status("life-in", "RUNNING after restarts", running);

    // Target states.
    assert_eq!(api.call("PUT", "/connectors/life-in/pause", None).0, 202);
    let s = api.get("/connectors/life-in/status").1;
    assert_eq!(s["connector"]["state"], "PAUSED");
    assert_eq!(s["tasks"][0]["state"], "PAUSED");
    assert_eq!(api.call("PUT", "/connectors/life-in/resume", None).0, 202);
    api.wait_status("life-in", "RUNNING after resume", running);
    assert_eq!(api.call("PUT", "/connectors/life-in/stop", None).0, 204);
    let s = api.get("/connectors/life-in/status").1;
    assert_eq!(s["connector"]["state"], "STOPPED");
    assert_eq!(s["tasks"], json!([]));
    assert_eq!(api.get("/connectors/life-in").1["tasks"], json!([]));
    assert_error(
        &api.call("PUT", "/connectors/nope/pause", None),
        404,
        "Connector nope not found",
    );
    assert_eq!(api.call("DELETE", "/connectors/life-in", None).0, 204);
}

#[test]
fn pause_stops_records_moving_and_resume_starts_them_again() {
    let Shared { site, api } = shared();
    let input = site.path("pause/in.txt");
    site.write("pause/in.txt", &numbered_lines(0, 1_000, 30));
    let out = site.path("pause/out.txt");
    assert_eq!(
        api.call(
            "POST",
            "/connectors",
            Some(json!({"name": "pause-src", "config": source(site, "pause/in.txt", "pause")}))
        )
        .0,
        201
    );
    assert_eq!(api.call("POST", "/connectors", Some(json!({"name": "pause-dst", "config": {"connector.class": "file-sink", "file": out.display().to_string(), "topics": "pause"}}))).0, 201);
    api.wait_until("the first 1,000 lines", || line_count(&out) >= 1_000);

    assert_eq!(api.call("PUT", "/connectors/pause-src/pause", None).0, 202);
    let s = api.get("/connectors/pause-src/status").1;
    assert_eq!(s["tasks"][0]["state"], "PAUSED", "{s}");
    // The paused source has no running task: nothing reads the new lines.
    let text = api.metrics();
    assert!(
        !text.contains("tributary_task_records_polled_total{connector=\"pause-src\""),
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

    assert_eq!(api.call("PUT", "/connectors/pause-src/resume", None).0, 202);
    api.wait_until("the appended lines", || line_count(&out) >= 1_500);
    for name in ["pause-src", "pause-dst"] {
        assert_eq!(
            api.call("PUT", &format!("/connectors/{name}/stop"), None).0,
            204
        );
    }
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        std::fs::read_to_string(&input).unwrap(),
        "every line once, in order: pausing committed the offsets"
    );
    for name in ["pause-src", "pause-dst"] {
        assert_eq!(
            api.call("DELETE", &format!("/connectors/{name}"), None).0,
            204
        );
    }
}

#[test]
fn a_failed_task_shows_its_trace_and_restarts_alone() {
    let Shared { site, api } = shared();
    std::fs::create_dir_all(site.path("late")).unwrap();
    let (code, body) = api.call(
        "POST",
        "/connectors",
        Some(json!({"name": "late-file", "config": source(site, "late/later.txt", "late")})),
    );
    assert_eq!(code, 201, "{body}");
    let failed = api.wait_status("late-file", "a FAILED task", |s| {
        s["tasks"][0]["state"] == "FAILED"
    });
    let trace = failed["tasks"][0]["trace"].as_str().unwrap();
    assert!(
        trace.contains(&site.path("late/later.txt").display().to_string()),
        "{trace}"
    );
    assert_eq!(
        failed["connector"]["state"], "RUNNING",
        "the connector itself runs"
    );
    let (_, t0) = api.get("/connectors/late-file/tasks/0/status");
    assert_eq!(t0["state"], "FAILED");
    assert!(t0["trace"].is_string());
    let text = api.metrics();
    assert!(
        text.contains(
            "tributary_task_state{connector=\"late-file\",task=\"0\",state=\"FAILED\"} 1"
        ),
        "{text}"
    );

    site.write("late/later.txt", "now it is here\n");
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
    assert_eq!(api.call("DELETE", "/connectors/late-file", None).0, 204);
}
