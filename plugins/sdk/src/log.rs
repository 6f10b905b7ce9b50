//! Logging into the worker's log, tagged with connector and task, and
//! connector-specific counters.
//!
//! In a guest both go to the worker. Compiled for the host (a connector's
//! unit tests), they go to the test's thread instead, where
//! `testing::logs` and `testing::counter` read them back.

#[cfg(target_arch = "wasm32")]
use crate::bindings::source::tributary::connector::host;
pub use crate::bindings::source::tributary::connector::host::LogLevel as Level;

/// Writes `message` to the worker's log at `level`.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    host::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    crate::testing::record_log(level, message);
}

/// Adds `delta` to this task's counter `name` (lowercase with `_`).
pub fn counter_add(name: &str, delta: u64) {
    #[cfg(target_arch = "wasm32")]
    host::counter_add(name, delta);
    #[cfg(not(target_arch = "wasm32"))]
    crate::testing::record_counter(name, delta);
}

/// `info!("read {} lines", n)`: formats and logs at info level.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Info, &format!($($arg)*)) };
}

/// Formats and logs at warn level.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Warn, &format!($($arg)*)) };
}

/// Formats and logs at error level.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Error, &format!($($arg)*)) };
}

/// Formats and logs at debug level.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Debug, &format!($($arg)*)) };
}
