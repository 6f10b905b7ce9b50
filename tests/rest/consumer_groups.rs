//! `/connectors/{name}/offsets` of a sink connector: its consumer group's
//! committed offsets, altered and reset while it is stopped.
//!
//! The test runs a worker of its own: changing a sink's offsets holds the
//! worker's other changes while the embedded Kafka rebalances the group
//! (about 5 s each time), which would hold up the tests on the shared
//! worker.

use crate::common::rest::{assert_error, rest_worker, source, Api, PLUGINS};
use crate::common::{line_count, numbered_lines, Site};
use serde_json::json;

#[test]
fn a_stopped_sinks_offsets_are_its_consumer_groups_and_can_be_moved() {
    let site = Site::new(PLUGINS);
    let text = numbered_lines(0, 300, 30);
    site.write("data/in.txt", &text);
    let worker = rest_worker(&site, "");
    let api = Api::start(&site, &worker, &[]);
    let out = site.path("data/out.txt");
    let sink = json!({"connector.class": "file-sink", "file": out.display().to_string(), "topics": "sunk"});
    assert_eq!(
        api.call(
            "POST",
            "/connectors",
            Some(json!({"name": "src", "config": source(&site, "data/in.txt", "sunk")}))
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
    api.wait_until("300 lines", || line_count(&out) >= 300);

    assert_eq!(api.call("PUT", "/connectors/dst/stop", None).0, 204);
    let at = |n: i64| json!({"offsets": [{"partition": {"kafka_topic": "sunk", "kafka_partition": 0}, "offset": {"kafka_offset": n}}]});
    assert_eq!(
        api.get("/connectors/dst/offsets"),
        (200, at(300)),
        "stopping committed what was written"
    );
    assert_error(
        &api.call("PATCH", "/connectors/dst/offsets", Some(json!({"offsets": [{"partition": {"kafka_topic": "sunk"}, "offset": {"kafka_offset": 1}}]}))),
        400,
        "`offsets[0].partition`",
    );
    let (code, body) = api.call("PATCH", "/connectors/dst/offsets", Some(at(100)));
    assert_eq!(code, 200, "{body}");
    assert_eq!(api.get("/connectors/dst/offsets"), (200, at(100)));
    assert_eq!(api.call("PUT", "/connectors/dst/resume", None).0, 202);
    api.wait_until("lines 100 to 299 again", || line_count(&out) >= 500);

    assert_eq!(api.call("PUT", "/connectors/dst/stop", None).0, 204);
    assert_eq!(api.call("DELETE", "/connectors/dst/offsets", None).0, 200);
    assert_eq!(api.get("/connectors/dst/offsets"), (200, at(0)));
    assert_eq!(api.call("PUT", "/connectors/dst/resume", None).0, 202);
    api.wait_until("every line again", || line_count(&out) >= 800);
    let (code, log) = api.run.stop();
    assert_eq!(code, 0, "{log}");
    let expected = format!("{text}{}{text}", numbered_lines(100, 200, 30));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), expected);
}
