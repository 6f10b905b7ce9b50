//! Request bodies: JSON (as Kafka Connect's clients send them) or YAML
//! (`Content-Type: application/yaml`), flattened the way connector files
//! are (`producer: {linger.ms: 5}` is `producer.linger.ms`). Problems name
//! the line and the key.

use super::ApiError;
use crate::config::yaml::{parse_flat, Entry, Value};
use crate::herder::TargetState;
use std::collections::BTreeMap;
use std::path::Path;

/// `POST /connectors`: `{"name": …, "config": {…}, "initial_state": …}`.
pub struct CreateRequest {
    pub name: String,
    pub config: BTreeMap<String, String>,
    pub initial_state: TargetState,
}

/// Whether the request's `Content-Type` (`content_type`) says YAML.
fn is_yaml(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|v| v.contains("yaml"))
}

/// The body's keys, flattened. JSON is checked as JSON first, so its
/// errors read as JSON errors (line and column).
fn entries(content_type: Option<&str>, body: &[u8]) -> Result<Vec<Entry>, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("request body is not UTF-8 text"))?;
    if text.trim().is_empty() {
        return Err(ApiError::bad_request("request body is empty"));
    }
    if !is_yaml(content_type) {
        if let Err(e) = serde_json::from_str::<serde_json::Value>(text) {
            return Err(ApiError::bad_request(format!(
                "request body is not valid JSON: {e} (send YAML with Content-Type: application/yaml)"
            )));
        }
    }
    parse_flat(Path::new("body"), text).map_err(|problems| {
        let lines: Vec<String> = problems
            .0
            .iter()
            .map(|p| {
                let at = p.line.map(|l| format!("line {l}: ")).unwrap_or_default();
                let key = p
                    .key
                    .as_ref()
                    .map(|k| format!("`{k}`: "))
                    .unwrap_or_default();
                format!("{at}{key}{}", p.message)
            })
            .collect();
        ApiError::bad_request(format!("request body: {}", lines.join("; ")))
    })
}

/// A config map (`PUT …/config`, validate): every key's value as a string.
pub fn config_map(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<BTreeMap<String, String>, ApiError> {
    Ok(config_patch(content_type, body)?
        .into_iter()
        .filter_map(|(k, v)| Some((k, v?)))
        .collect())
}

/// A config patch: `null` removes a key.
pub fn config_patch(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<BTreeMap<String, Option<String>>, ApiError> {
    Ok(entries(content_type, body)?
        .into_iter()
        .map(|e| (e.key, e.value.to_config_string()))
        .collect())
}

pub fn create_request(content_type: Option<&str>, body: &[u8]) -> Result<CreateRequest, ApiError> {
    let mut name = None;
    let mut config = BTreeMap::new();
    let mut initial_state = TargetState::Running;
    let mut saw_config = false;
    for e in entries(content_type, body)? {
        if e.key == "name" {
            name = e.value.to_config_string();
        } else if e.key == "config" {
            saw_config = true;
        } else if let Some(k) = e.key.strip_prefix("config.") {
            saw_config = true;
            if let Some(v) = e.value.to_config_string() {
                config.insert(k.to_owned(), v);
            }
        } else if e.key == "initial_state" {
            let v = e.value.to_config_string().unwrap_or_default();
            initial_state = TargetState::parse(&v).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "`initial_state`: expects RUNNING, PAUSED or STOPPED, got {v:?}"
                ))
            })?;
        } else if matches!(e.value, Value::Null) {
            continue;
        } else {
            return Err(ApiError::bad_request(format!(
                "`{}`: unknown field; the body is {{\"name\": …, \"config\": {{…}}, \"initial_state\": …}}",
                e.key
            )));
        }
    }
    if !saw_config {
        return Err(ApiError::bad_request(
            "`config`: is required: {\"name\": …, \"config\": {\"connector.class\": …, …}}",
        ));
    }
    let name = match (name, config.get("name")) {
        (Some(n), Some(c)) if &n != c => {
            return Err(ApiError::bad_request(format!(
                "`config.name`: connector name configuration ({c}) doesn't match the request's name ({n})"
            )))
        }
        (Some(n), _) => n,
        (None, Some(c)) => c.clone(),
        (None, None) => return Err(ApiError::bad_request("`name`: is required")),
    };
    Ok(CreateRequest {
        name,
        config,
        initial_state,
    })
}

/// `PATCH …/offsets`: the `offsets` of `{"offsets": [{"partition": {…},
/// "offset": {…}}]}`, as JSON.
pub fn offsets(body: &[u8]) -> Result<serde_json::Value, ApiError> {
    let mut value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("request body is not valid JSON: {e}")))?;
    value
        .get_mut("offsets")
        .map(serde_json::Value::take)
        .ok_or_else(|| {
            ApiError::bad_request(
                "`offsets`: is required: {\"offsets\": [{\"partition\": {…}, \"offset\": {…}}]}",
            )
        })
}
