//! # tributary: a connector runtime for Kafka
//!
//! A worker loads source and sink connectors as WebAssembly components and
//! moves records between them and Kafka. The modules, each with one job:
//!
//! - [`config`]: YAML worker and connector configs, checked up front with
//!   file, line and key for every problem.
//! - [`contract`]: the plugin contract's types on the host side.
//! - [`plugin`]: the WebAssembly host (wasmtime): loading, caching and
//!   sandboxing plugins, calling their tasks. Knows nothing of Kafka.
//! - [`kafka`]: producers, consumers and the embedded Kafka (rdkafka).
//!   Knows nothing of WebAssembly.
//! - [`sql`]: database pools (sqlx) the worker owns for connectors; guests
//!   reach them through the contract's `sql` interface and never see a
//!   credential.
//! - [`blob`]: S3 clients (aws-sdk-s3) the worker owns for connectors;
//!   guests reach them through the contract's `blob` interface.
//! - [`secrets`]: config providers that read secrets (files, AWS Secrets
//!   Manager) and notice when a secret rotates.
//! - [`retry`]: backoff with jitter, retrying until a timeout, renewing
//!   credentials before retrying a call they were refused for.
//! - [`store`]: where connector configs, statuses and source offsets are
//!   kept, in Kafka Connect's record formats (memory and file stores; the
//!   compacted topics are in `kafka`).
//! - [`metrics`]: the counters and histograms of a task.
//! - [`worker`]: runs connectors' tasks, moving batches between `plugin` and
//!   `kafka` with at-least-once delivery.
//! - [`herder`]: the connectors of a running worker: configs and target
//!   states (kept in a store), lifecycle, statuses, offsets.
//! - [`rest`]: the HTTP API (Kafka Connect's), on top of `herder`.
//! - [`app`]: the composition root: loads a worker's configs and plugins,
//!   wires the parts together, runs and stops it (the `tributary` binary
//!   and in-process tests start workers through it).
//!
//! A module imports only modules below it, never one above (a test keeps
//! this order):
//!
//! ```text
//! contract, retry, metrics
//!   → config, store, secrets
//!   → sql, blob, kafka, plugin
//!   → worker → herder → rest → app
//! ```
//!
//! Modules on one line may import each other as long as no cycle forms.

pub mod app;
pub mod blob;
pub mod config;
pub mod contract;
pub mod herder;
pub mod kafka;
pub mod metrics;
pub mod plugin;
pub mod rest;
pub mod retry;
pub mod secrets;
pub mod sql;
pub mod store;
pub mod worker;

/// The order of the modules (see the top of this file), checked against
/// the sources: every `crate::<module>` path in code, and every rustdoc
/// link to one, must point to the module's own tier or one below, and the
/// imports within a tier must not form a cycle.
#[cfg(test)]
mod module_order {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    /// From the bottom up. A new module goes into one of these tiers.
    const TIERS: &[&[&str]] = &[
        &["contract", "retry", "metrics"],
        &["config", "store", "secrets"],
        &["sql", "blob", "kafka", "plugin"],
        &["worker"],
        &["herder"],
        &["rest"],
        &["app"],
    ];

    fn tier(module: &str) -> Option<usize> {
        TIERS.iter().position(|t| t.contains(&module))
    }

    fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
        if path.is_dir() {
            for entry in std::fs::read_dir(path).unwrap() {
                rust_files(&entry.unwrap().path(), out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path.to_path_buf());
        }
    }

    /// The modules a line refers to through `crate::`: in code, every
    /// path (`crate::a::B`, `crate::{a, b::C}`); in doc comments, only
    /// rustdoc links (`[`crate::a`]`, `[x](crate::a)`).
    fn referenced(line: &str) -> Vec<String> {
        let trimmed = line.trim_start();
        let doc = trimmed.starts_with("///") || trimmed.starts_with("//!");
        if trimmed.starts_with("//") && !doc {
            return Vec::new();
        }
        let mut out = Vec::new();
        for (at, _) in line.match_indices("crate::") {
            if doc {
                let before = line[..at].trim_end_matches('`');
                if !(before.ends_with('[') || before.ends_with("](")) {
                    continue;
                }
            }
            let rest = &line[at + "crate::".len()..];
            if let Some(list) = rest.strip_prefix('{') {
                let mut depth = 0;
                let mut segment_start = true;
                for (i, c) in list.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => segment_start = true,
                        c if segment_start && (c.is_ascii_alphabetic() || c == '_') => {
                            let name: String = list[i..]
                                .chars()
                                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                                .collect();
                            out.push(name);
                            segment_start = false;
                        }
                        c if c.is_whitespace() => {}
                        _ => segment_start = false,
                    }
                }
            } else {
                out.push(
                    rest.chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect(),
                );
            }
        }
        out
    }

    /// The lines of `text` (numbered from 0), with a `crate::{` list that
    /// rustfmt spread over several lines joined into its first line.
    fn joined_lines(text: &str) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        let mut lines = text.lines().enumerate();
        while let Some((n, line)) = lines.next() {
            let mut joined = line.to_owned();
            if let Some(at) = line.find("crate::{") {
                let open = |s: &str| s.matches('{').count() as i64 - s.matches('}').count() as i64;
                let mut depth = open(&line[at..]);
                while depth > 0 {
                    let Some((_, next)) = lines.next() else { break };
                    depth += open(next);
                    joined.push(' ');
                    joined.push_str(next.trim());
                }
            }
            out.push((n, joined));
        }
        out
    }

    #[test]
    fn references_are_found_in_code_and_doc_links_only() {
        assert_eq!(referenced("use crate::store::OffsetStore;"), ["store"]);
        assert_eq!(
            referenced("use crate::{config::Problems, store::{Record, StatusKey}, retry};"),
            ["config", "store", "retry"]
        );
        assert_eq!(
            referenced("    let d = crate::retry::backoff(1, cap);"),
            ["retry"]
        );
        assert_eq!(referenced("/// See [`crate::herder::Herder`]."), ["herder"]);
        assert_eq!(
            referenced("//! Kept by [the herder](crate::herder)."),
            ["herder"]
        );
        assert!(referenced("//! The placeholders live in `crate::config`.").is_empty());
        assert!(referenced("// crate::rest is above").is_empty());
    }

    /// Every module's files: (path under `src/`, text).
    type Sources = BTreeMap<String, Vec<(String, String)>>;

    /// What breaks the order: references to a module above, modules in no
    /// tier, cycles. Also gives the imports found (module → modules).
    fn check(modules: &Sources) -> (Vec<String>, BTreeMap<String, BTreeSet<String>>) {
        let mut problems = Vec::new();
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (module, files) in modules {
            let Some(own) = tier(module) else {
                problems.push(format!(
                    "module `{module}` is in no tier of lib.rs's module order: place it"
                ));
                continue;
            };
            for (file, text) in files {
                for (n, line) in joined_lines(text) {
                    for target in referenced(&line) {
                        if target == *module || !modules.contains_key(&target) {
                            continue;
                        }
                        match tier(&target) {
                            Some(t) if t > own => problems.push(format!(
                                "{file}:{}: `{module}` refers to `{target}`, which is above it",
                                n + 1
                            )),
                            _ => {
                                edges.entry(module.clone()).or_default().insert(target);
                            }
                        }
                    }
                }
            }
        }
        // A cycle among modules of one tier: depth-first, reporting the path.
        fn visit(
            m: &str,
            edges: &BTreeMap<String, BTreeSet<String>>,
            path: &mut Vec<String>,
            done: &mut BTreeSet<String>,
            problems: &mut Vec<String>,
        ) {
            if let Some(i) = path.iter().position(|p| p == m) {
                problems.push(format!("import cycle: {} → {m}", path[i..].join(" → ")));
                return;
            }
            if !done.insert(m.to_owned()) {
                return;
            }
            path.push(m.to_owned());
            for next in edges.get(m).into_iter().flatten() {
                visit(next, edges, path, done, problems);
            }
            path.pop();
        }
        let mut done = BTreeSet::new();
        for m in modules.keys() {
            visit(m, &edges, &mut Vec::new(), &mut done, &mut problems);
        }
        (problems, edges)
    }

    #[test]
    fn the_check_finds_an_import_from_above_a_cycle_and_an_unplaced_module() {
        let file =
            |m: &str, text: &str| (m.to_owned(), vec![(format!("{m}/mod.rs"), text.to_owned())]);
        let modules: Sources = [
            file(
                "kafka",
                "use crate::store::Record;\nuse crate::herder::Herder;\nuse crate::{\n    contract::Scalar,\n    worker::Worker,\n};",
            ),
            file("store", "use crate::secrets::Secret;"),
            file("secrets", "use crate::{config::Providers};"),
            file("config", "/// [`crate::store::Record`]\nfn f() {}"),
            file("herder", "//! Talks to `crate::rest` in prose only."),
            file("rest", ""),
            file("worker", ""),
            file("gadgets", ""),
        ]
        .into_iter()
        .collect();
        let (problems, edges) = check(&modules);
        assert_eq!(
            problems,
            [
                "module `gadgets` is in no tier of lib.rs's module order: place it",
                "kafka/mod.rs:2: `kafka` refers to `herder`, which is above it",
                "kafka/mod.rs:3: `kafka` refers to `worker`, which is above it",
                "import cycle: config → store → secrets → config",
            ]
        );
        assert!(!edges.contains_key("herder"), "prose is no import");
    }

    #[test]
    fn modules_import_only_their_tier_and_below_without_cycles() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut modules: Sources = BTreeMap::new();
        for entry in std::fs::read_dir(&src).unwrap() {
            let path = entry.unwrap().path();
            let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            // The crate root and the binary are not modules of the library.
            if name == "lib"
                || name == "main"
                || !(path.is_dir() || path.extension().is_some_and(|e| e == "rs"))
            {
                continue;
            }
            let mut files = Vec::new();
            rust_files(&path, &mut files);
            let files = files
                .iter()
                .map(|f| {
                    let shown = f.strip_prefix(&src).unwrap().display().to_string();
                    (shown, std::fs::read_to_string(f).unwrap())
                })
                .collect();
            modules.insert(name.to_owned(), files);
        }
        let (problems, edges) = check(&modules);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
        assert!(
            edges.get("kafka").is_some_and(|e| e.contains("store")),
            "the check sees imports"
        );
    }
}
