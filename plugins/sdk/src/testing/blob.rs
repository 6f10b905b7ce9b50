//! [`FakeBlob`]: the `blob` capability as an in-memory bucket.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use crate::blob::{BlobCapability, BlobError, ByteRange, Listing, ObjectInfo};

/// One call a connector made on a [`FakeBlob`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobCall {
    List {
        prefix: String,
        start_after: Option<String>,
        continuation: Option<String>,
        max_keys: u32,
    },
    Get {
        key: String,
        /// Start and length of the range asked for, if any.
        range: Option<(u64, Option<u64>)>,
    },
    Put {
        key: String,
        size: usize,
    },
    Delete {
        key: String,
    },
}

impl BlobCall {
    /// The key (or prefix, for a listing) the call is about.
    pub fn key(&self) -> &str {
        match self {
            BlobCall::List { prefix, .. } => prefix,
            BlobCall::Get { key, .. } | BlobCall::Put { key, .. } | BlobCall::Delete { key } => key,
        }
    }
}

type Failure = Box<dyn FnMut(&BlobCall) -> Option<BlobError>>;

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Vec<u8>>,
    calls: Vec<BlobCall>,
    failures: Vec<Failure>,
}

/// An object store bucket in memory that records every call and fails the
/// calls a scripted rule picks ([`FakeBlob::fail`]). Clones share the
/// bucket, so a test keeps one while the task under test owns another.
#[derive(Clone)]
pub struct FakeBlob {
    bucket: String,
    state: Rc<RefCell<State>>,
}

impl FakeBlob {
    /// An empty bucket called `bucket`.
    pub fn new(bucket: &str) -> FakeBlob {
        FakeBlob {
            bucket: bucket.to_owned(),
            state: Rc::default(),
        }
    }

    /// Makes `BlobCapability::open(name)` on this thread return this fake
    /// (a clone sharing its bucket): a task under test opens its store by
    /// name, as it does in the worker.
    pub fn install(&self, name: &str) {
        INSTALLED.with(|m| m.borrow_mut().insert(name.to_owned(), self.clone()));
    }

    /// Puts an object in the bucket (not recorded as a call).
    pub fn insert(&self, key: &str, data: impl AsRef<[u8]>) {
        let data = data.as_ref().to_vec();
        self.state.borrow_mut().objects.insert(key.to_owned(), data);
    }

    /// Every object, by key.
    pub fn objects(&self) -> BTreeMap<String, Vec<u8>> {
        self.state.borrow().objects.clone()
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<BlobCall> {
        self.state.borrow().calls.clone()
    }

    /// Adds a rule: a call for which a rule returns an error fails with it
    /// (and changes nothing).
    pub fn fail(&self, rule: impl FnMut(&BlobCall) -> Option<BlobError> + 'static) {
        self.state.borrow_mut().failures.push(Box::new(rule));
    }

    /// Records `call`; the error of the first rule that fails it.
    fn call(&self, call: BlobCall) -> Result<(), BlobError> {
        let mut state = self.state.borrow_mut();
        let failure = state.failures.iter_mut().find_map(|rule| rule(&call));
        state.calls.push(call);
        failure.map_or(Ok(()), Err)
    }
}

thread_local! {
    /// The fakes [`FakeBlob::install`]ed on this thread, by store name.
    static INSTALLED: RefCell<HashMap<String, FakeBlob>> = RefCell::default();
}

impl BlobCapability for FakeBlob {
    fn open(name: &str) -> Result<FakeBlob, BlobError> {
        INSTALLED
            .with(|m| m.borrow().get(name).cloned())
            .ok_or_else(|| {
                BlobError::Other(format!(
                    "no FakeBlob installed as store `{name}` on this thread (FakeBlob::install)"
                ))
            })
    }

    fn bucket(&self) -> String {
        self.bucket.clone()
    }

    fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        continuation: Option<&str>,
        max_keys: u32,
    ) -> Result<Listing, BlobError> {
        self.call(BlobCall::List {
            prefix: prefix.to_owned(),
            start_after: start_after.map(str::to_owned),
            continuation: continuation.map(str::to_owned),
            max_keys,
        })?;
        let state = self.state.borrow();
        // The continuation token is the last key of the page before.
        let after = continuation.or(start_after).unwrap_or("");
        let mut matching = state
            .objects
            .iter()
            .filter(|(k, _)| k.starts_with(prefix) && k.as_str() > after);
        let objects: Vec<ObjectInfo> = matching
            .by_ref()
            .take(max_keys.clamp(1, 1000) as usize)
            .map(|(k, v)| ObjectInfo {
                key: k.clone(),
                size: v.len() as u64,
            })
            .collect();
        let next_token = match matching.next() {
            Some(_) => objects.last().map(|o| o.key.clone()),
            None => None,
        };
        Ok(Listing {
            objects,
            next_token,
        })
    }

    fn get(&self, key: &str, range: Option<ByteRange>) -> Result<Vec<u8>, BlobError> {
        let asked = range.as_ref().map(|r| (r.start, r.length));
        self.call(BlobCall::Get {
            key: key.to_owned(),
            range: asked,
        })?;
        let state = self.state.borrow();
        let data = state.objects.get(key).ok_or_else(|| {
            BlobError::NotFound(format!("get s3://{}/{key}: NoSuchKey", self.bucket))
        })?;
        let (start, length) = asked.unwrap_or((0, None));
        let start = (start as usize).min(data.len());
        let end = match length {
            Some(n) => start.saturating_add(n as usize).min(data.len()),
            None => data.len(),
        };
        Ok(data[start..end].to_vec())
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<(), BlobError> {
        self.call(BlobCall::Put {
            key: key.to_owned(),
            size: data.len(),
        })?;
        self.insert(key, data);
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.call(BlobCall::Delete {
            key: key.to_owned(),
        })?;
        self.state.borrow_mut().objects.remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fake_bucket_lists_in_pages_and_fails_as_scripted() {
        let store = FakeBlob::new("b");
        for k in ["a/1", "a/2", "a/3", "b/1"] {
            store.put(k, k.as_bytes()).unwrap();
        }
        let page = store.list("a/", None, None, 2).unwrap();
        assert_eq!(page.objects.len(), 2);
        let rest = store
            .list("a/", None, page.next_token.as_deref(), 2)
            .unwrap();
        assert_eq!(rest.objects[0].key, "a/3");
        assert!(rest.next_token.is_none());
        let range = ByteRange {
            start: 1,
            length: Some(1),
        };
        assert_eq!(store.get("a/2", Some(range)).unwrap(), b"/");
        store.fail(|c| (c.key() == "a/1").then(|| BlobError::Unavailable("down".into())));
        assert!(store.get("a/1", None).unwrap_err().is_transient());
        assert!(matches!(store.get("zz", None), Err(BlobError::NotFound(_))));
        store.delete("a/3").unwrap();
        assert_eq!(store.objects().len(), 3);
    }
}
