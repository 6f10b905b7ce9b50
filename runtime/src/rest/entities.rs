//! Kafka Connect's REST entities as JSON: ConnectorInfo,
//! ConnectorStateInfo, ConfigKeyInfo, ConfigInfos, ConnectorOffsets.

use crate::contract::{json_map_to_value, ConnectorKind, KeySpec, KeyType, PartitionOffset};
use crate::herder::{ConnectorInfo, ConnectorState, ConnectorStatus, Validation};
use serde_json::{json, Value};

fn kind(k: Option<ConnectorKind>) -> &'static str {
    match k {
        Some(ConnectorKind::Source) => "source",
        Some(ConnectorKind::Sink) => "sink",
        None => "unknown",
    }
}

pub fn info(i: &ConnectorInfo) -> Value {
    json!({
        "name": i.name,
        "config": i.config,
        "tasks": i.tasks.iter().map(|t| json!({"connector": i.name, "task": t})).collect::<Vec<_>>(),
        "type": kind(i.kind),
    })
}

fn state(s: &ConnectorState, worker_id: &str) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("state".into(), json!(s.name()));
    m.insert("worker_id".into(), json!(worker_id));
    if let Some(t) = s.trace() {
        m.insert("trace".into(), json!(t));
    }
    m
}

pub fn task_state(id: u32, s: &ConnectorState, worker_id: &str) -> Value {
    let mut m = state(s, worker_id);
    m.insert("id".into(), json!(id));
    Value::Object(m)
}

pub fn status(s: &ConnectorStatus, worker_id: &str) -> Value {
    json!({
        "name": s.name,
        "connector": Value::Object(state(&s.connector, worker_id)),
        "tasks": s.tasks.iter().map(|(id, t)| task_state(*id, t, worker_id)).collect::<Vec<_>>(),
        "type": kind(s.kind),
    })
}

/// Kafka Connect's type names.
fn type_name(t: KeyType) -> &'static str {
    match t {
        KeyType::String
        | KeyType::FileRead
        | KeyType::FileWrite
        | KeyType::DirRead
        | KeyType::DirWrite => "STRING",
        KeyType::Integer => "LONG",
        KeyType::Float => "DOUBLE",
        KeyType::Boolean => "BOOLEAN",
        KeyType::List => "LIST",
    }
}

/// ConfigKeyInfo. Secret keys are Kafka Connect's PASSWORD type; their
/// defaults are not shown.
pub fn key_definition(k: &KeySpec) -> Value {
    json!({
        "name": k.name,
        "type": if k.secret { "PASSWORD" } else { type_name(k.ty) },
        "required": k.default.is_none(),
        "default_value": if k.secret { None } else { k.default.clone() },
        "importance": if k.default.is_none() { "HIGH" } else { "MEDIUM" },
        "documentation": k.doc,
        "group": null,
        "width": "NONE",
        "display_name": k.name,
        "dependents": [],
        "order": -1,
        "tributary_type": k.ty.name(),
    })
}

/// ConfigInfos.
pub fn validation(v: &Validation) -> Value {
    let configs: Vec<Value> = v
        .keys
        .iter()
        .map(|k| {
            let definition = match &k.spec {
                Some(spec) => key_definition(spec),
                None => json!({"name": k.name, "type": "STRING", "required": false, "default_value": null, "importance": "LOW", "documentation": "", "group": null, "width": "NONE", "display_name": k.name, "dependents": [], "order": -1}),
            };
            json!({
                "definition": definition,
                "value": {
                    "name": k.name,
                    "value": k.value,
                    "recommended_values": [],
                    "errors": k.errors,
                    "visible": true,
                },
            })
        })
        .collect();
    json!({
        "name": v.plugin,
        "error_count": v.error_count,
        "groups": [],
        "configs": configs,
    })
}

/// ConnectorOffsets: `{"offsets": [{"partition": {…}, "offset": {…}}]}`.
pub fn offsets(list: &[PartitionOffset]) -> Value {
    json!({
        "offsets": list.iter().map(|po| json!({
            "partition": json_map_to_value(&po.partition),
            "offset": json_map_to_value(&po.offset),
        })).collect::<Vec<_>>()
    })
}
