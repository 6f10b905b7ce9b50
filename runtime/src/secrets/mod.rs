//! Config providers that read secrets: files and AWS Secrets Manager.
//!
//! The placeholder syntax and the `env` provider are in `crate::config`;
//! this module knows where secret values come from and when they change.
//! A changed value reaches the running connectors through the herder (see
//! `Herder::secret_changed`) and the host capabilities' renewal hooks
//! (`crate::sql`, `crate::blob`, with `crate::retry` renewing and
//! retrying a call refused for its credentials), never through a task
//! restart when the value is a credential. It only provides values: it
//! knows no task, pool or client.

mod aws;
mod file;

pub use aws::{SecretCounts, SecretsManager};
pub use file::FileProvider;

use crate::config::{Providers, WorkerConfig};
use std::sync::Arc;

/// Name of the AWS Secrets Manager provider in placeholders.
pub const AWS_SECRETS_MANAGER: &str = "aws-secretsmanager";

/// The providers a worker config sets up: `env`, `file` and
/// `aws-secretsmanager` (whose client is made here; it connects at the
/// first placeholder).
pub fn providers(worker: &WorkerConfig) -> Result<(Providers, Arc<SecretsManager>), String> {
    let mut providers = Providers::default();
    providers.register(
        "file",
        Arc::new(FileProvider::new(&worker.file_provider_paths)),
    );
    let aws = SecretsManager::start(&worker.secrets_manager)?;
    providers.register(AWS_SECRETS_MANAGER, aws.clone());
    Ok((providers, aws))
}
