//! Logging into the worker's log, tagged with connector and task, and
//! connector-specific counters.

use crate::bindings::source::tributary::connector::host;
pub use crate::bindings::source::tributary::connector::host::LogLevel as Level;

/// Writes `message` to the worker's log at `level`.
pub fn log(level: Level, message: &str) {
    host::log(level, message);
}

/// Adds `delta` to this task's counter `name` (lowercase with `_`).
pub fn counter_add(name: &str, delta: u64) {
    host::counter_add(name, delta);
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
