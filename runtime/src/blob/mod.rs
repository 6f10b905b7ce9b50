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
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use errors::classify;
use secrecy::ExposeSecret;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

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
pub struct Store {
    settings: StoreSettings,
    pub bucket: String,
    client: tokio::sync::OnceCell<Client>,
}

impl Store {
    /// A store for `settings`; the client is built at the first call.
    pub fn new(settings: &StoreSettings) -> Result<Store, String> {
        let bucket = settings
            .bucket
            .clone()
            .ok_or_else(|| format!("store `{}` has no bucket", settings.name))?;
        Ok(Store {
            settings: settings.clone(),
            bucket,
            client: tokio::sync::OnceCell::new(),
        })
    }

    /// `s3://bucket/key` of store `name`, for messages.
    fn at(&self, key: &str) -> String {
        format!("store `{}`, s3://{}/{key}", self.settings.name, self.bucket)
    }

    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| async {
                let s = &self.settings;
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
            })
            .await
    }

    /// One page of keys under `prefix`, in key order.
    pub fn list(
        &self,
        prefix: &str,
        start_after: Option<String>,
        continuation: Option<String>,
        max_keys: u32,
    ) -> Result<Listing, BlobError> {
        let at = self.at(&format!("{prefix}*"));
        runtime().block_on(async {
            let out = self
                .client()
                .await
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_start_after(start_after.filter(|s| !s.is_empty()))
                .set_continuation_token(continuation)
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
    }

    /// An object's bytes: whole, or `length` bytes (to the end: `None`)
    /// from `start`. A range starting at or past the end gives nothing.
    pub fn get(&self, key: &str, range: Option<(u64, Option<u64>)>) -> Result<Vec<u8>, BlobError> {
        let at = self.at(key);
        let header = match range {
            None | Some((0, None)) => None,
            Some((_, Some(0))) => return Ok(Vec::new()),
            Some((start, None)) => Some(format!("bytes={start}-")),
            Some((start, Some(len))) => Some(format!("bytes={start}-{}", start + len - 1)),
        };
        runtime().block_on(async {
            let out = match self
                .client()
                .await
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .set_range(header)
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
    }

    /// Writes an object; above the part size as a multipart upload, which
    /// is aborted when a part fails.
    pub fn put(&self, key: &str, data: Vec<u8>) -> Result<(), BlobError> {
        let at = self.at(key);
        runtime().block_on(async {
            let client = self.client().await;
            let part_size = self.settings.part_size;
            if data.len() <= part_size {
                client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .body(ByteStream::from(data))
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
                        .body(ByteStream::from(chunk.to_vec()))
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
        })
    }

    /// Deletes an object; a missing one is not an error.
    pub fn delete(&self, key: &str) -> Result<(), BlobError> {
        let at = self.at(key);
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
                    .map(|s| format!("{}: s3://{}", s.settings.name, s.bucket)),
            )
            .finish()
    }
}

impl Stores {
    /// A store for every one the connector names.
    pub fn open(settings: &crate::config::Stores) -> Result<Stores, String> {
        let mut by_name = BTreeMap::new();
        for (name, s) in &settings.0 {
            by_name.insert(name.clone(), Arc::new(Store::new(s)?));
        }
        Ok(Stores { by_name })
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
