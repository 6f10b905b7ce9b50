//! Config providers that read secrets: files and AWS Secrets Manager.
//!
//! The placeholder syntax and the `env` provider are in `crate::config`;
//! this module knows where secret values come from and when they change.
//! A changed value reaches the running connectors through the herder (see
//! `Herder::secret_changed`) and the host capabilities' renewal hooks
//! (`crate::sql`, `crate::blob`), never through a task restart when the
//! value is a credential.

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

/// A host capability's way to get a resource's settings again with every
/// placeholder re-resolved (`true`: read the secrets past their cache, as
/// after an authentication failure). Made by the worker, which knows the
/// connector's config and the providers; `crate::sql` and `crate::blob`
/// only call it.
pub type Renew<S> = Arc<dyn Fn(bool) -> Result<S, String> + Send + Sync>;

/// How long an operation that fails authentication keeps renewing its
/// credentials and retrying before the failure stands. It covers the
/// window of an AWS rotation in which the database already has the new
/// password and AWSCURRENT still holds the old one.
pub const AUTH_RENEWAL_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs `op`; while it fails with an authentication error (`auth_failure`
/// gives its message), renews the credentials (`renew`: true when they
/// changed) and runs it again, for up to [`AUTH_RENEWAL_PATIENCE`]. `what`
/// names the resource in the log.
pub fn retry_on_auth_failure<T, E>(
    what: &str,
    mut op: impl FnMut() -> Result<T, E>,
    auth_failure: impl Fn(&E) -> Option<String>,
    mut renew: impl FnMut() -> Result<bool, String>,
) -> Result<T, E> {
    let start = std::time::Instant::now();
    let mut attempt = 0;
    loop {
        let outcome = op();
        let failure = outcome.as_ref().err().and_then(&auth_failure);
        match failure {
            None if attempt > 0 && outcome.is_ok() => {
                tracing::info!(
                    "{what}: succeeded with renewed credentials (attempt {})",
                    attempt + 1
                );
                return outcome;
            }
            Some(e) if start.elapsed() < AUTH_RENEWAL_PATIENCE => {
                if attempt == 0 {
                    tracing::warn!("{what}: {e}; renewing the credentials from their secrets");
                }
            }
            _ => return outcome,
        }
        attempt += 1;
        // Renewed here, or (false) perhaps just now by a rotation noticed
        // elsewhere: either way the next attempt uses the newest login;
        // without news, wait a little first.
        match renew() {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => tracing::warn!("{what}: renewing the credentials failed: {e}"),
        }
        std::thread::sleep(crate::worker::backoff(
            attempt,
            std::time::Duration::from_secs(5),
        ));
    }
}
