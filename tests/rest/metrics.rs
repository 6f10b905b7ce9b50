//! `GET /metrics`: the host's per-task and per-connector metrics.

use crate::common::rest::{shared, source, Shared};
use crate::common::{line_count, numbered_lines};
use serde_json::json;

#[test]
fn metrics_count_each_tasks_records_and_show_each_connectors_state() {
    let Shared { site, api } = shared();
    site.write("metrics/in.txt", &numbered_lines(0, 100, 20));
    let out = site.path("metrics/out.txt");
    let (code, info) = api.call(
        "POST",
        "/connectors",
        Some(json!({"name": "metrics-in", "config": source(site, "metrics/in.txt", "metrics")})),
    );
    assert_eq!(code, 201, "{info}");
    let sink = json!({"connector.class": "file-sink", "file": out.display().to_string(), "topics": "metrics"});
    let (code, info) = api.call(
        "POST",
        "/connectors",
        Some(json!({"name": "metrics-out", "config": sink})),
    );
    assert_eq!(code, 201, "{info}");
    api.wait_until("100 lines through", || line_count(&out) >= 100);
    assert_eq!(api.call("PUT", "/connectors/metrics-in/stop", None).0, 204);

    let text = api.metrics();
    assert!(
        text.contains("tributary_task_records_written_total{connector=\"metrics-out\",task=\"0\"}"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE tributary_task_plugin_call_seconds histogram"),
        "{text}"
    );
    assert!(
        text.contains("tributary_task_consumer_lag{connector=\"metrics-out\",task=\"0\"}"),
        "{text}"
    );
    assert!(
        text.contains("tributary_task_batch_records_count{connector=\"metrics-out\",task=\"0\"}"),
        "{text}"
    );
    assert!(
        text.contains("tributary_connector_state{connector=\"metrics-in\",state=\"STOPPED\"} 1"),
        "{text}"
    );
    for name in ["metrics-in", "metrics-out"] {
        assert_eq!(
            api.call("DELETE", &format!("/connectors/{name}"), None).0,
            204
        );
    }
}
