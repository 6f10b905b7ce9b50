//! `/connectors` and `/connectors/{name}[/config]`: create, read, change
//! and delete.

use crate::common::numbered_lines;
use crate::common::rest::{assert_error, running, shared, source, Shared};
use serde_json::json;

#[test]
fn a_create_with_a_problem_answers_400_and_creates_nothing() {
    let Shared { site, api } = shared();
    site.write("refused/in.txt", &numbered_lines(0, 10, 20));
    assert_error(
        &api.raw(
            "POST",
            "/connectors",
            "application/json",
            "{\"name\": \"refused\", ",
        ),
        400,
        "not valid JSON",
    );
    assert_error(
        &api.raw(
            "POST",
            "/connectors",
            "application/yaml",
            "name: refused\nconfig: [1, 2\n",
        ),
        400,
        "not valid YAML",
    );
    assert_error(
        &api.call("POST", "/connectors", Some(json!({"name": "refused"}))),
        400,
        "`config`",
    );
    assert_error(
        &api.call(
            "POST",
            "/connectors",
            Some(json!({"name": "refused", "config": {"connector.class": "jdbc-source"}})),
        ),
        400,
        "`connector.class`: no plugin provides `jdbc-source`",
    );
    let missing = api.call("POST", "/connectors", Some(json!({"name": "refused", "config": {"connector.class": "file-source", "topic": "t", "tpoic": "u"}})));
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
            Some(json!({"name": "refused/name", "config": source(site, "refused/in.txt", "t")})),
        ),
        400,
        "`name`",
    );
    assert!(api.names("refused").is_empty(), "nothing was created");
    assert_error(
        &api.get("/connectors/refused"),
        404,
        "Connector refused not found",
    );
}

#[test]
fn a_connector_is_created_read_changed_and_deleted() {
    let Shared { site, api } = shared();
    site.write("crud/in.txt", &numbered_lines(0, 100, 20));

    // Create (JSON), conflict, create (YAML).
    let (code, info) = api.call(
        "POST",
        "/connectors",
        Some(json!({"name": "crud-in", "config": source(site, "crud/in.txt", "crud")})),
    );
    assert_eq!(code, 201, "{info}");
    assert_eq!(info["name"], "crud-in");
    assert_eq!(info["type"], "source");
    assert_eq!(info["config"]["name"], "crud-in");
    assert_eq!(info["config"]["topic"], "crud");
    assert_eq!(info["tasks"], json!([{"connector": "crud-in", "task": 0}]));
    assert_error(
        &api.call(
            "POST",
            "/connectors",
            Some(json!({"name": "crud-in", "config": source(site, "crud/in.txt", "crud")})),
        ),
        409,
        "Connector crud-in already exists",
    );
    let yaml = format!(
        "name: crud-out\nconfig:\n  connector.class: file-sink\n  file: {}\n  topics: crud\n  errors:\n    retry.timeout: 1000\n",
        site.path("crud/out.txt").display()
    );
    let (code, info) = api.raw("POST", "/connectors", "application/yaml", &yaml);
    assert_eq!(code, 201, "{info}");
    assert_eq!(
        info["config"]["errors.retry.timeout"], "1000",
        "nested YAML keys flatten"
    );

    // Reads.
    assert_eq!(api.names("crud-"), ["crud-in", "crud-out"]);
    let (code, expanded) = api.get("/connectors?expand=status&expand=info");
    assert_eq!(code, 200);
    assert_eq!(expanded["crud-in"]["info"]["type"], "source");
    assert_eq!(expanded["crud-out"]["status"]["name"], "crud-out");
    assert!(
        expanded["crud-in"]["status"]["connector"]["state"].is_string(),
        "{expanded}"
    );
    assert_error(&api.get("/connectors?expand=everything"), 400, "`expand`");
    assert_eq!(api.get("/connectors/crud-in").0, 200);
    assert_eq!(
        api.get("/connectors/nope"),
        (
            404,
            json!({"error_code": 404, "message": "Connector nope not found"})
        )
    );
    let (code, config) = api.get("/connectors/crud-in/config");
    assert_eq!(code, 200);
    assert_eq!(config["connector.class"], "file-source");

    // Config changes.
    let mut new = source(site, "crud/in.txt", "crud");
    new["batch.size"] = json!("50");
    let (code, info) = api.call("PUT", "/connectors/crud-in/config", Some(new.clone()));
    assert_eq!(code, 200, "{info}");
    assert_eq!(info["config"]["batch.size"], "50");
    assert_error(
        &api.call("PUT", "/connectors/crud-in/config", Some(json!({"connector.class": "file-source", "topic": "t", "file": "/nonexistent-dir/x"}))),
        400,
        "`file`: directory /nonexistent-dir does not exist",
    );
    assert_eq!(
        api.get("/connectors/crud-in/config").1["batch.size"],
        "50",
        "a refused config changes nothing"
    );
    let (code, info) = api.call(
        "PATCH",
        "/connectors/crud-in/config",
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
            "/connectors/crud-other/config",
            Some(json!({"name": "crud-in", "connector.class": "file-source"})),
        ),
        400,
        "doesn't match connector name in the URL",
    );
    let (code, _) = api.call(
        "PUT",
        "/connectors/crud-second/config",
        Some(source(site, "crud/in.txt", "crud-second")),
    );
    assert_eq!(code, 201, "PUT creates");
    api.wait_status("crud-in", "RUNNING again", running);

    // Delete.
    assert_eq!(api.call("DELETE", "/connectors/crud-second", None).0, 204);
    assert_error(
        &api.call("DELETE", "/connectors/crud-second", None),
        404,
        "Connector crud-second not found",
    );
    assert_eq!(api.names("crud-"), ["crud-in", "crud-out"]);
    for name in ["crud-in", "crud-out"] {
        assert_eq!(
            api.call("DELETE", &format!("/connectors/{name}"), None).0,
            204
        );
    }
    assert!(api.names("crud-").is_empty());
}
