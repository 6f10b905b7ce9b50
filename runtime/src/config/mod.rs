//! Configuration: the worker's YAML, connectors' YAML, and the problems found
//! in them.
//!
//! Every problem names the file, the line and the key, and all problems are
//! collected before anything starts: a user fixes a config in one pass, not
//! one error per run. Values of secret keys never appear in a problem.

mod connection;
mod connector;
mod keys;
mod placeholders;
mod problem;
mod store;
mod worker;
pub mod yaml;

pub use connection::{
    dialect_of_scheme, redacted_connection_value, ConnectionSettings, Connections,
    CONNECTION_FIELDS,
};
pub use connector::{
    Catalog, ConnectorConfig, ErrorSettings, Grant, RuntimeKeys, CONNECTOR_RUNTIME_KEYS,
};
pub use keys::absolute;
pub use placeholders::{
    placeholders, ConfigProvider, EnvProvider, Placeholder, ProviderError, Providers,
};
pub use problem::{Problem, Problems};
pub use store::{StoreSettings, Stores, STORE_FIELDS};
pub use worker::{worker_keys, SecretsManagerSettings, WorkerConfig, PROVIDER_KEYS};
