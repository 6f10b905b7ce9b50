//! Object storage (S3 and S3-compatible) through the worker.
//!
//! The connector config names stores (`store.bucket`, `store.region`,
//! `store.endpoint`, … for the one called `default`; `store.<name>.bucket`,
//! … for others). The worker builds the client and keeps its credentials;
//! a task opens a store by name and reads and writes objects by key:
//!
//! ```ignore
//! use tributary_sdk::blob::Store;
//! let store = Store::open("default")?;
//! store.put("topics/t/partition=0/t+0+0000000000.json", b"...")?;
//! let page = store.list("topics/t/", None, None, 1000)?;
//! ```
//!
//! Connector code that takes the store as a [`BlobCapability`] (not a
//! [`Store`]) runs in unit tests on the host against `testing::FakeBlob`,
//! an in-memory bucket that records the calls and fails as scripted.

pub use crate::bindings::source::tributary::connector::blob::{
    BlobError, ByteRange, Listing, ObjectInfo, Store,
};

/// The `blob` capability as a connector uses it: implemented by the
/// worker's [`Store`] and, for unit tests on the host, by
/// `testing::FakeBlob`. The methods are those of [`Store`].
pub trait BlobCapability {
    /// The store called `name` in the connector's config (`default` for
    /// `store.bucket`, …).
    fn open(name: &str) -> Result<Self, BlobError>
    where
        Self: Sized;
    /// The bucket's name, for messages.
    fn bucket(&self) -> String;
    /// One page of the objects whose key starts with `prefix`, in key order.
    fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        continuation: Option<&str>,
        max_keys: u32,
    ) -> Result<Listing, BlobError>;
    /// An object's bytes, whole or a range.
    fn get(&self, key: &str, range: Option<ByteRange>) -> Result<Vec<u8>, BlobError>;
    /// Writes an object, replacing any of the same key.
    fn put(&self, key: &str, data: &[u8]) -> Result<(), BlobError>;
    /// Deletes an object; a missing key is not an error.
    fn delete(&self, key: &str) -> Result<(), BlobError>;
}

impl BlobCapability for Store {
    fn open(name: &str) -> Result<Self, BlobError> {
        Store::open(name)
    }
    fn bucket(&self) -> String {
        Store::bucket(self)
    }
    fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        continuation: Option<&str>,
        max_keys: u32,
    ) -> Result<Listing, BlobError> {
        Store::list(self, prefix, start_after, continuation, max_keys)
    }
    fn get(&self, key: &str, range: Option<ByteRange>) -> Result<Vec<u8>, BlobError> {
        Store::get(self, key, range)
    }
    fn put(&self, key: &str, data: &[u8]) -> Result<(), BlobError> {
        Store::put(self, key, data)
    }
    fn delete(&self, key: &str) -> Result<(), BlobError> {
        Store::delete(self, key)
    }
}

impl BlobError {
    /// The service's message, whatever the kind.
    pub fn message(&self) -> &str {
        match self {
            BlobError::AccessDenied(m)
            | BlobError::InvalidCredentials(m)
            | BlobError::NotFound(m)
            | BlobError::NoSuchBucket(m)
            | BlobError::Unavailable(m)
            | BlobError::Other(m) => m,
        }
    }

    /// Whether the same call may work later: the store could not be
    /// reached or answered with a server error.
    pub fn is_transient(&self) -> bool {
        matches!(self, BlobError::Unavailable(_))
    }

    /// Kind and message, for a task error: `no such bucket: get …`.
    pub fn text(&self) -> String {
        format!("{}: {}", self.kind(), self.message())
    }

    /// The kind, in words, for messages (`access denied`).
    pub fn kind(&self) -> &'static str {
        match self {
            BlobError::AccessDenied(_) => "access denied",
            BlobError::InvalidCredentials(_) => "invalid credentials",
            BlobError::NotFound(_) => "not found",
            BlobError::NoSuchBucket(_) => "no such bucket",
            BlobError::Unavailable(_) => "store unavailable",
            BlobError::Other(_) => "store error",
        }
    }
}

impl From<BlobError> for crate::TaskError {
    /// Transient errors are retriable, the rest fatal.
    fn from(e: BlobError) -> crate::TaskError {
        if e.is_transient() {
            crate::TaskError::Retriable(e.text())
        } else {
            crate::TaskError::Fatal(e.text())
        }
    }
}
