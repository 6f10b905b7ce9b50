//! REST request bodies, as any client could send them, through the
//! functions the handlers call: `rest/body.rs` (JSON or YAML by content
//! type, flattened as connector files are) and then the connector checks
//! the herder runs on a create, a config change or a validation, with
//! placeholders resolved by a provider set.
//!
//! The body parser and the config module are compiled here from the
//! runtime's own source files (neither needs Kafka nor WebAssembly), so
//! the fuzzer does not build the whole worker; the router around them only
//! moves bytes and runs them off the async threads.
//!
//! A panic is a finding, as is an accepted body of more keys than the
//! limit.

#![no_main]

#[allow(dead_code, unused_imports)]
#[path = "../../runtime/src/contract.rs"]
mod contract;

#[allow(dead_code, unused_imports)]
#[path = "../../runtime/src/config/mod.rs"]
mod config;

mod stubs;

/// What `rest/body.rs` takes from the herder: the target state a create
/// may ask for (the herder's own type lives with the Kafka config store).
mod herder {
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum TargetState {
        Running,
        Paused,
        Stopped,
    }

    impl TargetState {
        pub fn parse(s: &str) -> Option<TargetState> {
            match s.trim().to_ascii_uppercase().as_str() {
                "RUNNING" | "STARTED" => Some(TargetState::Running),
                "PAUSED" => Some(TargetState::Paused),
                "STOPPED" => Some(TargetState::Stopped),
                _ => None,
            }
        }
    }
}

/// The part of the API's error that `body` makes: a 400 with a message.
#[derive(Debug)]
pub struct ApiError {
    pub message: String,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            message: message.into(),
        }
    }
}

/// `rest/body.rs`, whose `super` (the API's module) is this crate's root.
#[allow(dead_code)]
#[path = "../../runtime/src/rest/body.rs"]
mod body;

use config::yaml::MAX_KEYS;
use config::ConnectorConfig;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::path::Path;

/// Checks a config as the herder does for `name`.
fn check(name: &str, config: &BTreeMap<String, String>) {
    stubs::check_outcome(ConnectorConfig::from_map(
        Path::new("config"),
        name,
        config,
        &stubs::providers(),
        &stubs::FuzzCatalog,
    ));
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, bytes)) = data.split_first() else {
        return;
    };
    let content_type = match choice & 3 {
        0 => None,
        1 => Some("application/json"),
        2 => Some("application/yaml"),
        _ => Some("text/yaml; charset=utf-8"),
    };
    match (choice >> 2) & 3 {
        // POST /connectors
        0 => {
            if let Ok(r) = body::create_request(content_type, bytes) {
                assert!(r.config.len() <= MAX_KEYS, "{} keys", r.config.len());
                check(&r.name, &r.config);
            }
        }
        // PUT …/config, PUT …/config/validate
        1 => {
            if let Ok(config) = body::config_map(content_type, bytes) {
                assert!(config.len() <= MAX_KEYS, "{} keys", config.len());
                check("fz", &config);
            }
        }
        // PATCH …/config, onto a config that passes
        2 => {
            if let Ok(patch) = body::config_patch(content_type, bytes) {
                let mut config = BTreeMap::from([
                    ("connector.class".to_owned(), "fz-source".to_owned()),
                    ("s".to_owned(), "x".to_owned()),
                ]);
                for (k, v) in patch {
                    match v {
                        Some(v) => config.insert(k, v),
                        None => config.remove(&k),
                    };
                }
                check("fz", &config);
            }
        }
        // PATCH …/offsets
        _ => {
            let _ = body::offsets(bytes);
        }
    }
});
