//! `/connector-plugins`: the plugins, their keys, and validation.

use crate::common::rest::{assert_error, shared, Shared};
use serde_json::json;

#[test]
fn plugins_list_their_keys_and_validate_a_config() {
    let Shared { api, .. } = shared();
    let (code, plugins) = api.get("/connector-plugins");
    assert_eq!(code, 200);
    let plugins = plugins.as_array().unwrap();
    assert!(
        plugins
            .iter()
            .any(|p| p["class"] == "file-source" && p["type"] == "source"),
        "{plugins:?}"
    );
    assert!(
        plugins
            .iter()
            .any(|p| p["class"] == "file-sink" && p["type"] == "sink"),
        "{plugins:?}"
    );
    let (code, keys) = api.get("/connector-plugins/file-source/config");
    assert_eq!(code, 200);
    let file_key = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "file")
        .unwrap();
    assert_eq!(file_key["required"], true);
    assert_eq!(file_key["type"], "STRING");
    let (_, keys) = api.get("/connector-plugins/testkit-source/config");
    let token = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "token")
        .unwrap();
    assert_eq!(token["type"], "PASSWORD");
    assert_error(
        &api.get("/connector-plugins/jdbc-source/config"),
        404,
        "jdbc-source",
    );

    // Validation: 200 with the errors per key.
    let (code, v) = api.call(
        "PUT",
        "/connector-plugins/file-source/config/validate",
        Some(json!({"connector.class": "file-source", "topic": "t", "batch.size": "many"})),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["name"], "file-source");
    assert_eq!(v["error_count"], 2, "{v}");
    let errors = |key: &str| -> Vec<String> {
        v["configs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["value"]["name"] == key)
            .map(|c| serde_json::from_value(c["value"]["errors"].clone()).unwrap())
            .unwrap_or_default()
    };
    assert!(errors("file")[0].contains("is required"), "{v}");
    assert!(
        errors("batch.size")[0].contains("expects an integer"),
        "{v}"
    );
    assert!(errors("topic").is_empty());
    assert_error(
        &api.call(
            "PUT",
            "/connector-plugins/file-source/config/validate",
            Some(json!({"connector.class": "file-sink"})),
        ),
        400,
        "does not match request type file-source",
    );
}
