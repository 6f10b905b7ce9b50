//! `/connectors/{name}/tasks[/{task}/status|/restart]`.

use crate::common::numbered_lines;
use crate::common::rest::{assert_error, running, shared, source, Shared};
use serde_json::json;

#[test]
fn a_connectors_tasks_show_their_configs_and_statuses_and_restart() {
    let Shared { site, api } = shared();
    site.write("tasks/in.txt", &numbered_lines(0, 10, 20));
    let (code, info) = api.call(
        "POST",
        "/connectors",
        Some(json!({"name": "tasks-in", "config": source(site, "tasks/in.txt", "tasks")})),
    );
    assert_eq!(code, 201, "{info}");
    let status = api.wait_status("tasks-in", "RUNNING", running);
    assert_eq!(status["type"], "source");
    assert!(status["connector"]["worker_id"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    assert_eq!(status["tasks"][0]["id"], 0);
    let (code, tasks) = api.get("/connectors/tasks-in/tasks");
    assert_eq!(code, 200);
    assert_eq!(tasks[0]["id"], json!({"connector": "tasks-in", "task": 0}));
    assert_eq!(tasks[0]["config"]["topic"], "tasks");
    let (code, t0) = api.get("/connectors/tasks-in/tasks/0/status");
    assert_eq!(
        (code, &t0["state"], &t0["id"]),
        (200, &json!("RUNNING"), &json!(0))
    );
    assert_error(
        &api.get("/connectors/tasks-in/tasks/7/status"),
        404,
        "tasks-in-7",
    );
    assert_error(
        &api.get("/connectors/tasks-in/tasks/x/status"),
        404,
        "Not Found",
    );
    assert_error(
        &api.get("/connectors/nope/tasks"),
        404,
        "Connector nope not found",
    );

    assert_eq!(
        api.call("POST", "/connectors/tasks-in/tasks/0/restart", None)
            .0,
        204
    );
    assert_error(
        &api.call("POST", "/connectors/tasks-in/tasks/3/restart", None),
        404,
        "tasks-in-3",
    );
    api.wait_status("tasks-in", "RUNNING after the restart", running);
    assert_eq!(api.call("DELETE", "/connectors/tasks-in", None).0, 204);
}
