//! What the config checks ask of the worker, stood in for: a plugin catalog
//! with a key of every type, and a provider set whose placeholders resolve,
//! fail, or point at something unavailable.

use crate::config::{Catalog, ConfigProvider, ProviderError, Providers};
use crate::contract::{ConfigIssue, ConnectorKind, Description, KeySpec, KeyType};
use std::sync::Arc;

/// `${fz:…}`: resolves to the reference reversed; `${fz:bad…}` is refused
/// and `${fz:gone…}` unavailable, as a missing secret is.
struct Reversing;

impl ConfigProvider for Reversing {
    fn resolve(&self, reference: &str) -> Result<String, ProviderError> {
        if reference.starts_with("bad") {
            Err(ProviderError::Invalid(format!("no `{reference}`")))
        } else if reference.starts_with("gone") {
            Err(ProviderError::Unavailable(format!(
                "`{reference}` is unavailable"
            )))
        } else {
            Ok(reference.chars().rev().collect())
        }
    }
}

/// The worker's providers (`env`) and `fz`.
pub fn providers() -> Providers {
    let mut p = Providers::default();
    p.register("fz", Arc::new(Reversing));
    p
}

fn key(name: &str, ty: KeyType, default: Option<&str>, secret: bool) -> KeySpec {
    KeySpec {
        name: name.into(),
        ty,
        default: default.map(str::to_owned),
        doc: format!("The {name}."),
        secret,
    }
}

/// Plugins `fz-source` and `fz-sink`, each with a key of every type;
/// `validate` reports an issue for each value holding `issue`.
pub struct FuzzCatalog;

impl Catalog for FuzzCatalog {
    fn describe(&self, class: &str, _version: Option<&str>) -> Result<Description, String> {
        let kind = match class {
            "fz-source" => ConnectorKind::Source,
            "fz-sink" => ConnectorKind::Sink,
            _ => {
                return Err(format!(
                    "no plugin provides `{class}`; found: fz-source, fz-sink"
                ))
            }
        };
        Ok(Description {
            name: class.into(),
            version: "0.1.0".into(),
            kind,
            summary: String::new(),
            reads_headers: false,
            keys: vec![
                key("s", KeyType::String, None, false),
                key("i", KeyType::Integer, Some("1"), false),
                key("f", KeyType::Float, Some("0.5"), false),
                key("b", KeyType::Boolean, Some("true"), false),
                key("l", KeyType::List, Some("a,b"), false),
                key("fr", KeyType::FileRead, Some("/tmp/in.txt"), false),
                key("fw", KeyType::FileWrite, Some("/tmp/out.txt"), false),
                key("dr", KeyType::DirRead, Some("/tmp"), false),
                key("dw", KeyType::DirWrite, Some("/tmp"), false),
                key("token", KeyType::String, Some(""), true),
            ],
        })
    }

    fn validate(
        &self,
        _class: &str,
        _version: Option<&str>,
        config: &Vec<(String, String)>,
    ) -> Result<Vec<ConfigIssue>, String> {
        Ok(config
            .iter()
            .filter(|(_, v)| v.contains("issue"))
            .map(|(k, _)| ConfigIssue {
                key: k.clone(),
                message: "holds an issue".into(),
            })
            .collect())
    }
}

/// Checks the outcome of a connector check: a refusal names at least one
/// problem; an accepted config never hands a secret key to the guest.
pub fn check_outcome(outcome: Result<crate::config::ConnectorConfig, crate::config::Problems>) {
    match outcome {
        Ok(c) => {
            assert!(
                !c.plugin_config.iter().any(|(k, _)| k == "token"),
                "a secret key reached the guest"
            );
            assert!(c.plugin_config.len() <= 10, "{:?}", c.plugin_config);
        }
        Err(p) => assert!(!p.0.is_empty(), "a refusal without a problem"),
    }
}
