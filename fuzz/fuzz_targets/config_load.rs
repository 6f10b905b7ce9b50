//! Config documents, YAML or JSON, as a connector file or the worker's file
//! could hold them: through `config::yaml::parse_flat` (depth, key and alias
//! checks, flattening) and then the connector checks and the worker checks,
//! placeholders resolved by a provider set.
//!
//! The config module is compiled here from the runtime's own source files
//! (it needs neither Kafka nor WebAssembly), so the fuzzer does not build
//! the whole worker.
//!
//! A panic is a finding, as is an accepted document with a key twice or
//! more keys than the limit, or a refusal without a problem.

#![no_main]

#[allow(dead_code, unused_imports)]
#[path = "../../runtime/src/contract.rs"]
mod contract;

#[allow(dead_code, unused_imports)]
#[path = "../../runtime/src/config/mod.rs"]
mod config;

mod stubs;

use config::yaml::{parse_flat, MAX_KEYS};
use config::{ConnectorConfig, WorkerConfig};
use libfuzzer_sys::fuzz_target;
use std::collections::HashSet;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("fuzz.yaml");
    let entries = match parse_flat(file, text) {
        Ok(entries) => entries,
        Err(problems) => {
            assert!(!problems.0.is_empty(), "a refusal without a problem");
            return;
        }
    };
    assert!(entries.len() <= MAX_KEYS, "{} keys", entries.len());
    let mut seen = HashSet::new();
    for e in &entries {
        assert!(seen.insert(e.key.as_str()), "`{}` twice", e.key);
    }
    let providers = stubs::providers();
    let _ = WorkerConfig::from_entries(file, entries.clone(), &providers);
    stubs::check_outcome(ConnectorConfig::from_entries(
        file,
        entries,
        &providers,
        &stubs::FuzzCatalog,
    ));
});
