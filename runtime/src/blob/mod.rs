//! The blob capability: S3 clients the worker owns on behalf of connectors,
//! and the object calls guests make through them.
//!
//! A connector's config names stores (`store.*` keys, [`StoreSettings`]);
//! the worker turns each into a [`Store`]: a bucket and an aws-sdk-s3
//! client, built at the first call and shared by the connector's tasks. A
//! guest refers to a store by name and lists, gets, puts and deletes
//! objects by key. Credentials stay here: never logged, never in an error,
//! never handed to a guest.
//!
//! This module knows aws-sdk-s3 and nothing of wasmtime or Kafka: the
//! plugin host converts the contract's types to and from the ones below.
//!
//! Calls block the calling task thread on a small shared tokio runtime.

mod errors;

use crate::config::StoreSettings;
use crate::retry::Renew;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use errors::classify;
use secrecy::ExposeSecret;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};

/// Why a call failed (the contract's `blob-error`). Messages name the
/// store, bucket and key and carry the service's code and text.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum BlobError {
    #[error("access denied: {0}")]
    AccessDenied(String),
    #[error("invalid credentials: {0}")]
    InvalidCredentials(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("no such bucket: {0}")]
    NoSuchBucket(String),
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Other(String),
}

/// One object of a listing.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
}

/// One page of a listing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Listing {
    pub objects: Vec<ObjectInfo>,
    pub next_token: Option<String>,
}

/// The tokio runtime every client runs on: two threads are plenty, the
/// work is waiting on sockets.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("blob")
            .enable_all()
            .build()
            .expect("cannot start the blob runtime")
    })
}

/// One named store of a connector: a bucket and a client made on first use.
///
/// When its credentials come from secrets, the client is rebuilt with the
/// new values after a rotation ([`Store::renew`]), and a call refused for
/// its credentials renews them and runs again.
pub struct Store {
    name: String,
    pub bucket: String,
    settings: Mutex<StoreSettings>,
    /// The client, and the generation of the settings it was built from
    /// (a client built from settings a renewal has since replaced is not
    /// kept).
    client: Mutex<(u64, Option<Client>)>,
    renew: Option<Renew<StoreSettings>>,
}

/// Whether two settings of one store sign requests the same way.
fn same_credentials(a: &StoreSettings, b: &StoreSettings) -> bool {
    let secret =
        |s: &Option<secrecy::SecretString>| s.as_ref().map(|v| v.expose_secret().to_owned());
    a.access_key_id == b.access_key_id
        && secret(&a.secret_access_key) == secret(&b.secret_access_key)
        && secret(&a.session_token) == secret(&b.session_token)
        && a.region == b.region
        && a.endpoint == b.endpoint
}

impl Store {
    /// A store for `settings`; the client is built at the first call.
    /// `renew`, when the settings hold placeholders, re-resolves them.
    pub fn new(
        settings: &StoreSettings,
        renew: Option<Renew<StoreSettings>>,
    ) -> Result<Store, String> {
        let bucket = settings
            .bucket
            .clone()
            .ok_or_else(|| format!("store `{}` has no bucket", settings.name))?;
        Ok(Store {
            name: settings.name.clone(),
            bucket,
            settings: Mutex::new(settings.clone()),
            client: Mutex::new((0, None)),
            renew,
        })
    }

    /// `s3://bucket/key` of store `name`, for messages.
    fn at(&self, key: &str) -> String {
        format!("store `{}`, s3://{}/{key}", self.name, self.bucket)
    }

    fn settings(&self) -> StoreSettings {
        self.settings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Resolves the settings again (`force`: past the secrets' cache) and
    /// makes a new client when the credentials changed; true when they did.
    pub fn renew(&self, force: bool) -> Result<bool, String> {
        let Some(renew) = &self.renew else {
            return Ok(false);
        };
        let fresh = renew(force)?;
        let mut settings = self.settings.lock().unwrap_or_else(|p| p.into_inner());
        if same_credentials(&settings, &fresh) {
            return Ok(false);
        }
        *settings = fresh;
        // The next call builds a client with them.
        let mut client = self.client.lock().unwrap_or_else(|p| p.into_inner());
        *client = (client.0 + 1, None);
        tracing::info!(store = %self.name, bucket = %self.bucket, "client rebuilt with renewed credentials");
        Ok(true)
    }

    /// Runs `op`; a call refused for its credentials renews them and runs
    /// again (see `retry::retry_on_auth_failure`) until `stop`, the calling
    /// task's stop flag, is set.
    fn renewing<T>(
        &self,
        stop: &AtomicBool,
        op: impl FnMut() -> Result<T, BlobError>,
    ) -> Result<T, BlobError> {
        let mut op = op;
        if self.renew.is_none() {
            return op();
        }
        crate::retry::retry_on_auth_failure(
            &format!("store `{}` (s3://{})", self.name, self.bucket),
            stop,
            op,
            |e| {
                matches!(
                    e,
                    BlobError::InvalidCredentials(_) | BlobError::AccessDenied(_)
                )
                .then(|| e.to_string())
            },
            || self.renew(true),
        )
    }

    async fn client(&self) -> Client {
        let (generation, s) = {
            // Both under the settings lock (then the client's, the order
            // `renew` takes them in), so the generation is the settings'.
            let settings = self.settings.lock().unwrap_or_else(|p| p.into_inner());
            let client = self.client.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = &client.1 {
                return c.clone();
            }
            (client.0, settings.clone())
        };
        let client = {
            {
                let mut loader = aws_config::defaults(BehaviorVersion::latest());
                if let Some(region) = &s.region {
                    loader = loader.region(Region::new(region.clone()));
                }
                if let (Some(id), Some(secret)) = (&s.access_key_id, &s.secret_access_key) {
                    loader = loader.credentials_provider(Credentials::new(
                        id.clone(),
                        secret.expose_secret().to_owned(),
                        s.session_token
                            .as_ref()
                            .map(|t| t.expose_secret().to_owned()),
                        None,
                        "tributary-connector-config",
                    ));
                }
                let shared = loader.load().await;
                let mut config =
                    aws_sdk_s3::config::Builder::from(&shared).force_path_style(s.path_style);
                if shared.region().is_none() {
                    config = config.region(Region::new("us-east-1"));
                }
                if let Some(endpoint) = &s.endpoint {
                    config = config.endpoint_url(endpoint.clone());
                }
                Client::from_conf(config.build())
            }
        };
        let mut kept = self.client.lock().unwrap_or_else(|p| p.into_inner());
        if kept.0 == generation {
            kept.1 = Some(client.clone());
        }
        client
    }

    /// One page of keys under `prefix`, in key order.
    pub fn list(
        &self,
        prefix: &str,
        start_after: Option<String>,
        continuation: Option<String>,
        max_keys: u32,
        stop: &AtomicBool,
    ) -> Result<Listing, BlobError> {
        let at = self.at(&format!("{prefix}*"));
        self.renewing(stop, || {
            runtime().block_on(async {
                let out = self
                    .client()
                    .await
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(prefix)
                    .set_start_after(start_after.clone().filter(|s| !s.is_empty()))
                    .set_continuation_token(continuation.clone())
                    .max_keys(max_keys.clamp(1, 1000) as i32)
                    .send()
                    .await
                    .map_err(|e| classify(e, "list", &at))?;
                Ok(Listing {
                    objects: out
                        .contents()
                        .iter()
                        .filter_map(|o| {
                            Some(ObjectInfo {
                                key: o.key()?.to_owned(),
                                size: o.size().unwrap_or(0).max(0) as u64,
                            })
                        })
                        .collect(),
                    next_token: out
                        .next_continuation_token()
                        .filter(|_| out.is_truncated().unwrap_or(false))
                        .map(str::to_owned),
                })
            })
        })
    }

    /// An object's bytes: whole, or `length` bytes (to the end: `None`)
    /// from `start`. A range starting at or past the end gives nothing.
    pub fn get(
        &self,
        key: &str,
        range: Option<(u64, Option<u64>)>,
        stop: &AtomicBool,
    ) -> Result<Vec<u8>, BlobError> {
        let at = self.at(key);
        let header = match range {
            None | Some((0, None)) => None,
            Some((_, Some(0))) => return Ok(Vec::new()),
            Some((start, None)) => Some(format!("bytes={start}-")),
            Some((start, Some(len))) => Some(format!("bytes={start}-{}", start + len - 1)),
        };
        self.renewing(stop, || {
            runtime().block_on(async {
                let out = match self
                    .client()
                    .await
                    .get_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .set_range(header.clone())
                    .send()
                    .await
                {
                    Ok(out) => out,
                    Err(e) if errors::status(&e) == Some(416) => return Ok(Vec::new()),
                    Err(e) => return Err(classify(e, "get", &at)),
                };
                let body = out.body.collect().await.map_err(|e| {
                    BlobError::Unavailable(format!("get {at}: reading the body failed: {e}"))
                })?;
                Ok(body.into_bytes().to_vec())
            })
        })
    }

    /// Writes an object; above the part size as a multipart upload, which
    /// is aborted when a part fails.
    pub fn put(&self, key: &str, data: Vec<u8>, stop: &AtomicBool) -> Result<(), BlobError> {
        let at = self.at(key);
        let part_size = self.settings().part_size;
        // Shared, not copied, by a retry.
        let data = bytes::Bytes::from(data);
        self.renewing(stop, || runtime().block_on(async {
            let client = self.client().await;
            if data.len() <= part_size {
                client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .body(ByteStream::from(data.clone()))
                    .send()
                    .await
                    .map_err(|e| classify(e, "put", &at))?;
                return Ok(());
            }
            let upload = client
                .create_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| classify(e, "start multipart upload of", &at))?;
            let id = upload
                .upload_id()
                .ok_or_else(|| BlobError::Other(format!("put {at}: no upload id in the answer")))?
                .to_owned();
            let outcome = async {
                let mut parts = Vec::new();
                for (i, chunk) in data.chunks(part_size).enumerate() {
                    let n = i as i32 + 1;
                    let part = client
                        .upload_part()
                        .bucket(&self.bucket)
                        .key(key)
                        .upload_id(&id)
                        .part_number(n)
                        .body(ByteStream::from(data.slice_ref(chunk)))
                        .send()
                        .await
                        .map_err(|e| classify(e, &format!("upload part {n} of"), &at))?;
                    parts.push(
                        CompletedPart::builder()
                            .set_e_tag(part.e_tag().map(str::to_owned))
                            .part_number(n)
                            .build(),
                    );
                }
                client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts))
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| classify(e, "complete multipart upload of", &at))?;
                Ok(())
            }
            .await;
            if outcome.is_err() {
                let aborted = client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&id)
                    .send()
                    .await;
                if let Err(e) = aborted {
                    tracing::warn!(error = %classify(e, "abort multipart upload of", &at), "multipart upload left behind");
                }
            }
            outcome
        }))
    }

    /// Deletes an object; a missing one is not an error.
    pub fn delete(&self, key: &str, stop: &AtomicBool) -> Result<(), BlobError> {
        let at = self.at(key);
        self.renewing(stop, || {
            runtime().block_on(async {
                self.client()
                    .await
                    .delete_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(|e| classify(e, "delete", &at))?;
                Ok(())
            })
        })
    }
}

/// The stores of one connector, by name; its tasks share them.
#[derive(Default)]
pub struct Stores {
    by_name: BTreeMap<String, Arc<Store>>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(
                self.by_name
                    .values()
                    .map(|s| format!("{}: s3://{}", s.name, s.bucket)),
            )
            .finish()
    }
}

impl Stores {
    /// A store for every one the connector names; `renew` gives a store's
    /// settings again by name (see [`Store::new`]).
    pub fn open(
        settings: &crate::config::Stores,
        renew: impl Fn(&str) -> Option<Renew<StoreSettings>>,
    ) -> Result<Stores, String> {
        let mut by_name = BTreeMap::new();
        for (name, s) in &settings.0 {
            by_name.insert(name.clone(), Arc::new(Store::new(s, renew(name))?));
        }
        Ok(Stores { by_name })
    }

    /// Renews every store from its secrets' cached values (after a
    /// rotation was noticed); the names of those rebuilt.
    pub fn renew_all(&self) -> Vec<String> {
        let mut renewed = Vec::new();
        for (name, store) in &self.by_name {
            match store.renew(false) {
                Ok(true) => renewed.push(name.clone()),
                Ok(false) => {}
                Err(e) => tracing::warn!(store = %name, "renewing the credentials failed: {e}"),
            }
        }
        renewed
    }

    /// The store called `name`.
    pub fn get(&self, name: &str) -> Result<Arc<Store>, BlobError> {
        self.by_name.get(name).cloned().ok_or_else(|| {
            let names: Vec<&str> = self.by_name.keys().map(String::as_str).collect();
            BlobError::Other(if names.is_empty() {
                format!("no store `{name}`: the connector config names none (set `store.bucket`)")
            } else {
                format!(
                    "no store `{name}`: the connector config names {}",
                    names.join(", ")
                )
            })
        })
    }
}
