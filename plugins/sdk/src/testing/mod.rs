//! Unit-testing connectors on the host, without a worker: build the
//! batches the worker would hand a sink ([`sink_batch`]), read back what a
//! source's `poll` returned ([`polled`]), and stand in for the worker's
//! capabilities with recording fakes ([`FakeSql`], [`FakeBlob`]).
//!
//! A connector reaches these fakes when its task takes the capability
//! through its trait ([`SqlCapability`](crate::sql::SqlCapability),
//! [`BlobCapability`](crate::blob::BlobCapability)) rather than the
//! concrete resource:
//!
//! ```
//! use tributary_sdk::sql::{Dialect, SqlCapability, Value};
//! use tributary_sdk::testing::{Answer, FakeSql, SqlCall};
//!
//! fn count(db: &impl SqlCapability) -> usize {
//!     db.query("SELECT id FROM t", &[]).map(|r| r.rows.len()).unwrap_or(0)
//! }
//!
//! let db = FakeSql::new(Dialect::Postgres);
//! db.answer(|call| {
//!     call.statement().contains("FROM t").then(|| {
//!         Answer::Rows(tributary_sdk::testing::rows(&["id"], vec![vec![Value::Integer(1)]]))
//!     })
//! });
//! assert_eq!(count(&db), 1);
//! assert_eq!(db.statements(), ["SELECT id FROM t"]);
//! ```
//!
//! This module is compiled for the host only: it never runs in a guest.

mod batch;
mod blob;
mod sql;

pub use batch::{polled, sink_batch, values, Polled, Record};
pub use blob::{BlobCall, FakeBlob};
pub use sql::{rows, Answer, FakeSql, SqlCall};

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::log::Level;
use crate::Config;

thread_local! {
    static LOGS: RefCell<Vec<(Level, String)>> = RefCell::default();
    static COUNTERS: RefCell<BTreeMap<String, u64>> = RefCell::default();
}

pub(crate) fn record_log(level: Level, message: &str) {
    LOGS.with(|l| l.borrow_mut().push((level, message.to_owned())));
}

pub(crate) fn record_counter(name: &str, delta: u64) {
    COUNTERS.with(|c| *c.borrow_mut().entry(name.to_owned()).or_default() += delta);
}

/// The lines the code under test logged on this thread, in order.
pub fn logs() -> Vec<(Level, String)> {
    LOGS.with(|l| l.borrow().clone())
}

/// The value of counter `name` on this thread (0 if never added to).
pub fn counter(name: &str) -> u64 {
    COUNTERS.with(|c| c.borrow().get(name).copied().unwrap_or(0))
}

/// A config of `pairs`, read against `keys` (a description's
/// [`keys`](crate::Description::keys)) as the worker hands it to a task.
pub fn config(keys: &[crate::Key], pairs: &[(&str, &str)]) -> Config {
    let pairs = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::new(keys, pairs)
}
