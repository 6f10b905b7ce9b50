//! The contract's `blob` interface, served from the connector's stores
//! (`crate::blob`). This file only converts between the contract's types
//! and the stores' own; the stores do the work.

use super::bindings::tributary::connector::blob as wit;
use super::state::TaskState;
use crate::blob::{BlobError, Listing, Store};
use std::sync::Arc;
use wasmtime::component::Resource;

/// What a guest's `store` handle refers to.
pub struct BlobStore {
    store: Arc<Store>,
}

fn error_out(e: BlobError) -> wit::BlobError {
    match e {
        BlobError::AccessDenied(m) => wit::BlobError::AccessDenied(m),
        BlobError::InvalidCredentials(m) => wit::BlobError::InvalidCredentials(m),
        BlobError::NotFound(m) => wit::BlobError::NotFound(m),
        BlobError::NoSuchBucket(m) => wit::BlobError::NoSuchBucket(m),
        BlobError::Unavailable(m) => wit::BlobError::Unavailable(m),
        BlobError::Other(m) => wit::BlobError::Other(m),
    }
}

fn listing_out(l: Listing) -> wit::Listing {
    wit::Listing {
        objects: l
            .objects
            .into_iter()
            .map(|o| wit::ObjectInfo {
                key: o.key,
                size: o.size,
            })
            .collect(),
        next_token: l.next_token,
    }
}

impl TaskState {
    fn blob_store(&self, handle: &Resource<BlobStore>) -> Arc<Store> {
        // A handle the guest holds was made by `open` below, so it is in
        // the table; a stale one traps in the binding layer before here.
        self.table
            .get(handle)
            .map(|s| s.store.clone())
            .expect("store handle in the resource table")
    }
}

impl wit::Host for TaskState {}

impl wit::HostStore for TaskState {
    fn open(&mut self, name: String) -> Result<Resource<BlobStore>, wit::BlobError> {
        let store = self.stores.get(&name).map_err(error_out)?;
        self.table
            .push(BlobStore { store })
            .map_err(|e| wit::BlobError::Other(format!("too many open stores: {e}")))
    }

    fn bucket(&mut self, handle: Resource<BlobStore>) -> String {
        self.blob_store(&handle).bucket.clone()
    }

    fn list(
        &mut self,
        handle: Resource<BlobStore>,
        prefix: String,
        start_after: Option<String>,
        continuation: Option<String>,
        max_keys: u32,
    ) -> Result<wit::Listing, wit::BlobError> {
        let store = self.blob_store(&handle);
        let stop = self.stop.clone();
        self.waiting(|| store.list(&prefix, start_after, continuation, max_keys, &stop))
            .map(listing_out)
            .map_err(error_out)
    }

    fn get(
        &mut self,
        handle: Resource<BlobStore>,
        key: String,
        range: Option<wit::ByteRange>,
    ) -> Result<Vec<u8>, wit::BlobError> {
        let store = self.blob_store(&handle);
        let range = range.map(|r| (r.start, r.length));
        let stop = self.stop.clone();
        self.waiting(|| store.get(&key, range, &stop))
            .map_err(error_out)
    }

    fn put(
        &mut self,
        handle: Resource<BlobStore>,
        key: String,
        data: Vec<u8>,
    ) -> Result<(), wit::BlobError> {
        let store = self.blob_store(&handle);
        let stop = self.stop.clone();
        self.waiting(|| store.put(&key, data, &stop))
            .map_err(error_out)
    }

    fn delete(&mut self, handle: Resource<BlobStore>, key: String) -> Result<(), wit::BlobError> {
        let store = self.blob_store(&handle);
        let stop = self.stop.clone();
        self.waiting(|| store.delete(&key, &stop))
            .map_err(error_out)
    }

    fn drop(&mut self, handle: Resource<BlobStore>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        Ok(())
    }
}
