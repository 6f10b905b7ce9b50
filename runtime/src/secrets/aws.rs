//! `${aws-secretsmanager:SECRET:KEY}`: a key of a JSON secret in AWS
//! Secrets Manager (`${aws-secretsmanager:SECRET}`: a plain-string secret).
//! SECRET is a name or an ARN.
//!
//! Values are cached with their version. Every refresh interval a
//! `DescribeSecret` per cached secret says which version is AWSCURRENT;
//! only when it changed is the value fetched again (`GetSecretValue`, always
//! asking for `VersionStage=AWSCURRENT`), the way AWS's own caching clients
//! do it. A host capability that meets an authentication failure forces a
//! fetch at once ([`ConfigProvider::refresh`]). Every change is announced to
//! subscribers by secret name. Errors keep the last good value; they are
//! logged with the secret's name and the service's error code, never a
//! value.

use crate::config::{ConfigProvider, ProviderError, SecretsManagerSettings};
use aws_sdk_secretsmanager::config::{BehaviorVersion, Region};
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use aws_sdk_secretsmanager::Client;
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

struct Cached {
    version: String,
    value: SecretString,
}

pub struct SecretsManager {
    runtime: tokio::runtime::Runtime,
    settings: SecretsManagerSettings,
    /// Made at the first placeholder: a worker without any needs no AWS
    /// configuration (and does not look for a region).
    client: tokio::sync::OnceCell<Client>,
    cache: Mutex<BTreeMap<String, Cached>>,
    /// When each secret was last fetched on demand (forced fetches are
    /// spaced, so a storm of auth failures asks once).
    forced: Mutex<BTreeMap<String, Instant>>,
    subscribers: Mutex<Vec<Sender<String>>>,
    counts: Mutex<BTreeMap<String, SecretCounts>>,
}

/// What happened to one secret since the worker started, for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SecretCounts {
    /// Reads of Secrets Manager: version checks and fetches.
    pub checks: u64,
    /// New AWSCURRENT values taken into use.
    pub rotations: u64,
    /// Checks or fetches that failed (the value in use stayed).
    pub failures: u64,
}

/// Forced fetches of one secret at most this often.
const FORCED_SPACING: Duration = Duration::from_secs(1);

/// The secret and the JSON key of a reference: `name[:key]` or
/// `arn:partition:secretsmanager:region:account:secret:name[:key]`.
pub fn parse(reference: &str) -> Result<(&str, Option<&str>), ProviderError> {
    let (secret, key) = if reference.starts_with("arn:") {
        // An ARN has seven colon-separated fields.
        let mut ends = reference.match_indices(':').map(|(i, _)| i);
        match ends.nth(6) {
            Some(i) => (&reference[..i], Some(&reference[i + 1..])),
            None => (reference, None),
        }
    } else {
        match reference.split_once(':') {
            Some((s, k)) => (s, Some(k)),
            None => (reference, None),
        }
    };
    if secret.is_empty() || key == Some("") {
        return Err(ProviderError::Invalid(
            "expects ${aws-secretsmanager:SECRET} or ${aws-secretsmanager:SECRET:KEY} (SECRET: a name or an ARN)".into(),
        ));
    }
    Ok((secret, key))
}

impl SecretsManager {
    /// A provider for `settings`, with its refresh thread running.
    pub fn start(settings: &SecretsManagerSettings) -> Result<Arc<SecretsManager>, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("secrets")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the Secrets Manager runtime: {e}"))?;
        let manager = Arc::new(SecretsManager {
            runtime,
            settings: settings.clone(),
            client: tokio::sync::OnceCell::new(),
            cache: Mutex::default(),
            forced: Mutex::default(),
            subscribers: Mutex::default(),
            counts: Mutex::default(),
        });
        let weak = Arc::downgrade(&manager);
        let interval = settings.refresh_interval;
        std::thread::Builder::new()
            .name("secrets-refresh".into())
            .spawn(move || refresh_loop(weak, interval))
            .map_err(|e| format!("cannot start the secrets refresh thread: {e}"))?;
        Ok(manager)
    }

    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| async {
                let mut loader = aws_config::defaults(BehaviorVersion::latest());
                if let Some(region) = &self.settings.region {
                    loader = loader.region(Region::new(region.clone()));
                }
                let shared = loader.load().await;
                // A call that hangs must not hold a connector's start or a
                // renewal: after 10 s it fails (and the value in use stays).
                let mut config = aws_sdk_secretsmanager::config::Builder::from(&shared)
                    .timeout_config(
                        aws_sdk_secretsmanager::config::timeout::TimeoutConfig::builder()
                            .operation_timeout(std::time::Duration::from_secs(10))
                            .build(),
                    );
                if shared.region().is_none() {
                    config = config.region(Region::new("us-east-1"));
                }
                if let Some(endpoint) = &self.settings.endpoint {
                    config = config.endpoint_url(endpoint.clone());
                }
                Client::from_conf(config.build())
            })
            .await
    }

    /// Counts per secret name, for `/metrics`.
    pub fn counts(&self) -> BTreeMap<String, SecretCounts> {
        self.counts.lock().unwrap().clone()
    }

    fn count(&self, secret: &str, f: impl FnOnce(&mut SecretCounts)) {
        f(self
            .counts
            .lock()
            .unwrap()
            .entry(secret.to_owned())
            .or_default());
    }

    /// Receives the name of every secret whose value changed.
    pub fn subscribe(&self, to: Sender<String>) {
        self.subscribers.lock().unwrap().push(to);
    }

    fn announce(&self, secret: &str) {
        self.subscribers
            .lock()
            .unwrap()
            .retain(|s| s.send(secret.to_owned()).is_ok());
    }

    /// Fetches the AWSCURRENT value of `secret`: (version, value).
    fn fetch(&self, secret: &str) -> Result<(String, SecretString), ProviderError> {
        let outcome = self.fetch_once(secret);
        self.count(secret, |c| {
            c.checks += 1;
            c.failures += u64::from(outcome.is_err());
        });
        outcome
    }

    fn fetch_once(&self, secret: &str) -> Result<(String, SecretString), ProviderError> {
        self.runtime.block_on(async {
            let out = self
                .client()
                .await
                .get_secret_value()
                .secret_id(secret)
                .version_stage("AWSCURRENT")
                .send()
                .await
                .map_err(|e| unavailable(secret, e.code(), &e))?;
            let value = match (out.secret_string(), out.secret_binary()) {
                (Some(s), _) => SecretString::from(s.to_owned()),
                (None, Some(b)) => match std::str::from_utf8(b.as_ref()) {
                    Ok(s) => SecretString::from(s.to_owned()),
                    Err(_) => {
                        return Err(ProviderError::Invalid(format!(
                            "secret `{secret}` is binary, not text"
                        )))
                    }
                },
                (None, None) => {
                    return Err(ProviderError::Unavailable(format!(
                        "secret `{secret}` has no value"
                    )))
                }
            };
            Ok((out.version_id().unwrap_or_default().to_owned(), value))
        })
    }

    /// The version AWSCURRENT points at now.
    fn current_version(&self, secret: &str) -> Result<String, ProviderError> {
        let outcome = self.current_version_once(secret);
        self.count(secret, |c| {
            c.checks += 1;
            c.failures += u64::from(outcome.is_err());
        });
        outcome
    }

    fn current_version_once(&self, secret: &str) -> Result<String, ProviderError> {
        self.runtime.block_on(async {
            let out = self
                .client()
                .await
                .describe_secret()
                .secret_id(secret)
                .send()
                .await
                .map_err(|e| unavailable(secret, e.code(), &e))?;
            Ok(out
                .version_ids_to_stages()
                .and_then(|m| {
                    m.iter()
                        .find(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT"))
                        .map(|(v, _)| v.clone())
                })
                .unwrap_or_default())
        })
    }

    /// Stores a fetched value; true (and announced) when it differs from
    /// the cached one.
    fn store(&self, secret: &str, version: String, value: SecretString) -> bool {
        self.store_when(secret, version, value, false)
    }

    /// [`SecretsManager::store`], unless the secret was forgotten since a
    /// refresh round began.
    fn store_if_cached(&self, secret: &str, version: String, value: SecretString) -> bool {
        self.store_when(secret, version, value, true)
    }

    fn store_when(
        &self,
        secret: &str,
        version: String,
        value: SecretString,
        only_if_cached: bool,
    ) -> bool {
        let changed = {
            let mut cache = self.cache.lock().unwrap();
            if only_if_cached && !cache.contains_key(secret) {
                return false;
            }
            let changed = cache.get(secret).is_some_and(|c| {
                c.version != version || c.value.expose_secret() != value.expose_secret()
            });
            cache.insert(
                secret.to_owned(),
                Cached {
                    version: version.clone(),
                    value,
                },
            );
            changed
        };
        if changed {
            self.count(secret, |c| c.rotations += 1);
            tracing::info!(secret, version = %version, "a new version of the secret is AWSCURRENT");
            self.announce(secret);
        }
        changed
    }

    /// One refresh round: a new AWSCURRENT version of a cached secret is
    /// fetched. Returns how many secrets could not be checked.
    fn check_all(&self) -> usize {
        let known: Vec<(String, String)> = self
            .cache
            .lock()
            .unwrap()
            .iter()
            .map(|(s, c)| (s.clone(), c.version.clone()))
            .collect();
        let mut failed = 0;
        for (secret, version) in known {
            let outcome = self.current_version(&secret).and_then(|current| {
                if current != version {
                    let (v, value) = self.fetch(&secret)?;
                    self.store_if_cached(&secret, v, value);
                }
                Ok(())
            });
            // Forgotten meanwhile (its last connector deleted): not
            // counted either.
            if !self.cache.lock().unwrap().contains_key(&secret) {
                self.counts.lock().unwrap().remove(&secret);
                continue;
            }
            if let Err(e) = outcome {
                failed += 1;
                tracing::warn!(secret = %secret, "checking the secret for a new version failed; the value in use stays: {e}");
            }
        }
        failed
    }

    fn value(&self, secret: &str) -> Result<SecretString, ProviderError> {
        if let Some(c) = self.cache.lock().unwrap().get(secret) {
            return Ok(c.value.clone());
        }
        let (version, value) = self.fetch(secret)?;
        self.store(secret, version, value.clone());
        Ok(value)
    }
}

fn unavailable(
    secret: &str,
    code: Option<&str>,
    e: &(dyn std::error::Error + 'static),
) -> ProviderError {
    let why = match code {
        Some("ResourceNotFoundException") => "does not exist (or has no AWSCURRENT version)".into(),
        Some(
            c @ ("AccessDeniedException"
            | "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "ExpiredTokenException"),
        ) => format!("access denied ({c})"),
        Some(c) => format!("cannot be read ({c})"),
        None => format!(
            "cannot be read: Secrets Manager did not answer ({})",
            aws_sdk_secretsmanager::error::DisplayErrorContext(e)
        ),
    };
    ProviderError::Unavailable(format!("secret `{secret}` {why}"))
}

fn refresh_loop(manager: Weak<SecretsManager>, interval: Duration) {
    let mut failures = 0u32;
    loop {
        // After a failed round: back off (exponentially, with jitter), never
        // waiting longer than the interval.
        let wait = if failures == 0 {
            interval
        } else {
            crate::retry::backoff(failures, interval)
        };
        std::thread::sleep(wait);
        let Some(m) = manager.upgrade() else { return };
        if m.check_all() > 0 {
            failures += 1;
        } else {
            failures = 0;
        }
    }
}

impl ConfigProvider for SecretsManager {
    fn resolve(&self, reference: &str) -> Result<String, ProviderError> {
        let (secret, key) = parse(reference)?;
        let value = self.value(secret)?;
        let Some(key) = key else {
            return Ok(value.expose_secret().to_owned());
        };
        // serde's messages would not quote the value, but say only what.
        let doc: serde_json::Value = serde_json::from_str(value.expose_secret()).map_err(|_| {
            ProviderError::Invalid(format!(
                "secret `{secret}` is not JSON, so it has no key `{key}` (leave the key out for a plain-string secret)"
            ))
        })?;
        let Some(object) = doc.as_object() else {
            return Err(ProviderError::Invalid(format!(
                "secret `{secret}` is not a JSON object, so it has no key `{key}`"
            )));
        };
        match object.get(key) {
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            Some(other) => Ok(other.to_string()),
            None => Err(ProviderError::Unavailable(format!(
                "secret `{secret}` has no key `{key}`"
            ))),
        }
    }

    fn refresh(&self, reference: &str) -> Result<bool, ProviderError> {
        let (secret, _) = parse(reference)?;
        {
            let mut forced = self.forced.lock().unwrap();
            if forced
                .get(secret)
                .is_some_and(|at| at.elapsed() < FORCED_SPACING)
            {
                return Ok(false);
            }
            forced.insert(secret.to_owned(), Instant::now());
        }
        let (version, value) = self.fetch(secret)?;
        Ok(self.store(secret, version, value))
    }

    fn reads(&self, reference: &str, id: &str) -> bool {
        parse(reference).is_ok_and(|(secret, _)| secret == id)
    }

    /// A secret no connector reads any more is no longer cached, checked
    /// for new versions or counted.
    fn forget_unread(&self, still_read: &dyn Fn(&str) -> bool) {
        let mut forgotten = Vec::new();
        self.cache.lock().unwrap().retain(|secret, _| {
            let keep = still_read(secret);
            if !keep {
                forgotten.push(secret.clone());
            }
            keep
        });
        self.forced
            .lock()
            .unwrap()
            .retain(|secret, _| still_read(secret));
        self.counts
            .lock()
            .unwrap()
            .retain(|secret, _| still_read(secret));
        for secret in forgotten {
            tracing::info!(secret, "no connector reads the secret any more: forgotten");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_name_a_secret_and_maybe_a_key() {
        assert_eq!(parse("prod/db").unwrap(), ("prod/db", None));
        assert_eq!(
            parse("prod/db:password").unwrap(),
            ("prod/db", Some("password"))
        );
        let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf";
        assert_eq!(parse(arn).unwrap(), (arn, None));
        assert_eq!(
            parse(&format!("{arn}:password")).unwrap(),
            (arn, Some("password"))
        );
        assert!(parse("").is_err());
        assert!(parse("prod/db:").is_err());
    }

    #[test]
    fn secrets_no_connector_reads_are_forgotten() {
        let manager = SecretsManager::start(&SecretsManagerSettings {
            region: Some("us-east-1".into()),
            endpoint: Some("http://127.0.0.1:9".into()),
            refresh_interval: Duration::from_secs(3600),
        })
        .unwrap();
        for secret in ["kept", "gone"] {
            manager.store(
                secret,
                "v1".into(),
                SecretString::from(format!("{secret}-value")),
            );
            manager.count(secret, |c| c.checks += 1);
        }
        let mut providers = crate::config::Providers::default();
        providers.register(crate::secrets::AWS_SECRETS_MANAGER, manager.clone());
        providers.forget_unread(&["postgres://u:${aws-secretsmanager:kept:password}@h/db"]);
        let cached: Vec<String> = manager.cache.lock().unwrap().keys().cloned().collect();
        assert_eq!(cached, vec!["kept".to_owned()]);
        assert_eq!(
            manager.counts().into_keys().collect::<Vec<_>>(),
            vec!["kept".to_owned()]
        );
        // The kept one still comes from the cache (the endpoint answers nothing).
        assert_eq!(manager.resolve("kept").unwrap(), "kept-value");
    }
}
