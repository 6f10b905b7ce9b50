//! `/connectors/{name}/offsets` of source connectors (their source
//! offsets): read while running, altered and reset while stopped. A
//! sink's offsets are its consumer group's (see `consumer_groups`).

use crate::common::rest::{assert_error, running, shared, source, Shared};
use crate::common::{line_count, numbered_lines};
use serde_json::json;

#[test]
fn a_running_connectors_offsets_can_be_read_not_changed() {
    let Shared { site, api } = shared();
    site.write("off/in.txt", &numbered_lines(0, 100, 20));
    let out = site.path("off/out.txt");
    let (code, info) = api.call(
        "POST",
        "/connectors",
        Some(json!({"name": "off-in", "config": source(site, "off/in.txt", "off")})),
    );
    assert_eq!(code, 201, "{info}");
    let sink =
        json!({"connector.class": "file-sink", "file": out.display().to_string(), "topics": "off"});
    let (code, info) = api.call(
        "POST",
        "/connectors",
        Some(json!({"name": "off-out", "config": sink})),
    );
    assert_eq!(code, 201, "{info}");
    api.wait_status("off-in", "RUNNING", running);
    api.wait_status("off-out", "RUNNING", running);

    let (code, offsets) = api.get("/connectors/off-in/offsets");
    assert_eq!(code, 200, "{offsets}");
    assert!(offsets["offsets"].is_array());
    assert_error(
        &api.call(
            "PATCH",
            "/connectors/off-in/offsets",
            Some(json!({"offsets": [{"partition": {"filename": "x"}, "offset": null}]})),
        ),
        400,
        "Connectors must be in the STOPPED state",
    );
    assert_error(
        &api.call("DELETE", "/connectors/off-in/offsets", None),
        400,
        "STOPPED",
    );
    let (code, sink_offsets) = api.get("/connectors/off-out/offsets");
    assert_eq!(code, 200, "{sink_offsets}");
    assert!(sink_offsets["offsets"].is_array(), "{sink_offsets}");

    // Stopped: a body that is not offsets is refused.
    assert_eq!(api.call("PUT", "/connectors/off-in/stop", None).0, 204);
    assert_error(
        &api.call(
            "PATCH",
            "/connectors/off-in/offsets",
            Some(json!({"offsets": [{"partition": "x"}]})),
        ),
        400,
        "`offsets[0].partition`",
    );
    assert_error(
        &api.call(
            "PATCH",
            "/connectors/off-in/offsets",
            Some(json!({"nothing": []})),
        ),
        400,
        "`offsets`",
    );
    for name in ["off-in", "off-out"] {
        assert_eq!(
            api.call("DELETE", &format!("/connectors/{name}"), None).0,
            204
        );
    }
}

#[test]
fn resetting_a_stopped_file_sources_offsets_makes_it_read_its_file_again() {
    let Shared { site, api } = shared();
    let text = numbered_lines(0, 400, 30);
    site.write("again/in.txt", &text);
    let out = site.path("again/out.txt");
    let input = site.path("again/in.txt").display().to_string();
    assert_eq!(
        api.call(
            "POST",
            "/connectors",
            Some(json!({"name": "again-src", "config": source(site, "again/in.txt", "again")}))
        )
        .0,
        201
    );
    assert_eq!(api.call("POST", "/connectors", Some(json!({"name": "again-dst", "config": {"connector.class": "file-sink", "file": out.display().to_string(), "topics": "again"}}))).0, 201);
    api.wait_until("400 lines", || line_count(&out) >= 400);

    assert_eq!(api.call("PUT", "/connectors/again-src/stop", None).0, 204);
    let (code, offsets) = api.get("/connectors/again-src/offsets");
    assert_eq!(code, 200);
    assert_eq!(
        offsets,
        json!({"offsets": [{"partition": {"filename": input}, "offset": {"position": text.len()}}]}),
        "stopping committed the position at the end of the file"
    );
    let (code, body) = api.call("DELETE", "/connectors/again-src/offsets", None);
    assert_eq!(
        (code, &body["message"]),
        (
            200,
            &json!("The offsets for this connector have been reset successfully")
        )
    );
    assert_eq!(
        api.get("/connectors/again-src/offsets").1,
        json!({"offsets": []})
    );
    assert_eq!(api.call("PUT", "/connectors/again-src/resume", None).0, 202);
    api.wait_until("the file read again", || line_count(&out) >= 800);

    // An offset set by hand: from the 300th line on.
    assert_eq!(api.call("PUT", "/connectors/again-src/stop", None).0, 204);
    let at = numbered_lines(0, 300, 30).len();
    let (code, body) = api.call(
        "PATCH",
        "/connectors/again-src/offsets",
        Some(json!({"offsets": [{"partition": {"filename": input}, "offset": {"position": at}}]})),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body["message"],
        "The offsets for this connector have been altered successfully"
    );
    assert_eq!(api.call("PUT", "/connectors/again-src/resume", None).0, 202);
    api.wait_until("the last 100 lines again", || line_count(&out) >= 900);
    assert_eq!(api.call("PUT", "/connectors/again-dst/stop", None).0, 204);
    let expected = format!("{text}{text}{}", numbered_lines(300, 100, 30));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), expected);
    for name in ["again-src", "again-dst"] {
        assert_eq!(
            api.call("DELETE", &format!("/connectors/{name}"), None).0,
            204
        );
    }
}
