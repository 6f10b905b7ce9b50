//! Configuration: the worker's YAML, connectors' YAML, and the problems found
//! in them.
//!
//! Every problem names the file, the line and the key, and all problems are
//! collected before anything starts: a user fixes a config in one pass, not
//! one error per run. Values of secret keys never appear in a problem, and a
//! value that came from a placeholder appears as the placeholder
//! ([`Resolved`]).

mod connection;
mod connector;
mod keys;
mod placeholders;
mod problem;
mod reach;
mod resolved;
mod runtime_keys;
mod store;
mod worker;
pub mod yaml;

pub use connection::{dialect_of_scheme, ConnectionSettings, Connections, CONNECTION_FIELDS};
pub use connector::{Catalog, ConnectorConfig, Grant};
pub use keys::absolute;
pub use placeholders::{
    placeholders, ConfigProvider, EnvProvider, Placeholder, ProviderError, Providers,
};
pub use problem::{Problem, Problems};
pub use reach::{AllowedPaths, OverridePolicy, Reach, FILE_ALLOWED_PATHS};
pub use resolved::{is_worker_secret, shown_config_value, Resolved, HIDDEN};
pub use runtime_keys::{
    Apply, ErrorSettings, RuntimeKey, RuntimeKeys, CONNECTOR_RUNTIME_KEYS, RUNTIME_KEYS,
};
pub use store::{StoreSettings, Stores, STORE_FIELDS};
pub use worker::{worker_keys, SecretsManagerSettings, WorkerConfig, PROVIDER_KEYS};

#[cfg(test)]
mod tests {
    //! The configuration reference (docs/config.md and the connector pages
    //! it links to) against the key tables, so neither drifts from the
    //! other.

    use super::{worker_keys, CONNECTION_FIELDS, RUNTIME_KEYS, STORE_FIELDS};

    fn doc(rel: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(rel);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The part of `text` under the heading `heading`, to the next heading.
    fn section<'a>(text: &'a str, heading: &str) -> &'a str {
        let start = text
            .find(&format!("\n{heading}\n"))
            .unwrap_or_else(|| panic!("no heading {heading:?}"));
        let rest = &text[start + heading.len() + 2..];
        &rest[..rest.find("\n#").unwrap_or(rest.len())]
    }

    /// The table rows of `text` that name `` `key` ``, split into cells.
    fn rows<'a>(text: &'a str, key: &str) -> Vec<Vec<&'a str>> {
        let named = format!("`{key}`");
        text.lines()
            .filter(|l| l.starts_with('|'))
            .map(|l| {
                l.split(" | ")
                    .map(|c| c.trim_matches(['|', ' ']))
                    .collect::<Vec<_>>()
            })
            .filter(|cells| cells[0].split(", ").any(|k| k == named))
            .collect()
    }

    #[test]
    fn every_worker_key_is_documented_with_its_type_and_default() {
        let text = doc("docs/config.md");
        let text = section(&text, "### Worker keys");
        for spec in worker_keys() {
            let rows = rows(text, &spec.name);
            assert_eq!(
                rows.len(),
                1,
                "docs/config.md: one row for worker key `{}`",
                spec.name
            );
            let row = &rows[0];
            let ty = if spec.secret {
                format!("{}, secret", spec.ty.name())
            } else {
                spec.ty.name().to_owned()
            };
            assert_eq!(row[1], ty, "docs/config.md: type of `{}`", spec.name);
            let default = match spec.default.as_deref() {
                None => "required".to_owned(),
                Some("") => "empty".to_owned(),
                Some(d) => format!("`{d}`"),
            };
            assert_eq!(
                row[2], default,
                "docs/config.md: default of `{}`",
                spec.name
            );
        }
    }

    #[test]
    fn every_connector_runtime_key_is_documented() {
        let text = doc("docs/config.md");
        let text = section(&text, "### Keys the worker reads");
        for key in RUNTIME_KEYS {
            assert_eq!(
                rows(text, key.name).len(),
                1,
                "docs/config.md: one row for connector key `{}`",
                key.name
            );
        }
        for (field, _) in CONNECTION_FIELDS {
            let key = format!("connection.{field}");
            let page = doc("docs/connectors/database.md");
            assert_eq!(
                rows(&page, &key).len(),
                1,
                "docs/connectors/database.md: `{key}`"
            );
        }
        for (field, _) in STORE_FIELDS {
            let key = format!("store.{field}");
            let page = doc("docs/connectors/s3.md");
            assert_eq!(rows(&page, &key).len(), 1, "docs/connectors/s3.md: `{key}`");
        }
    }
}
