//! Logging into the proxy's log, tagged with the filter's name.
//!
//! ```
//! # use weir_sdk::prelude::*;
//! # fn f(req: &Request) {
//! weir_sdk::info!("request {} for {}", req.id(), req.path());
//! if weir_sdk::log::enabled(weir_sdk::log::Level::Debug) {
//!     weir_sdk::debug!("headers: {:?}", req.headers());
//! }
//! # }
//! ```
//!
//! The macros ask the proxy whether the level is enabled before formatting,
//! so a disabled `debug!` costs one host call and no allocation.

use crate::backend;

/// How important a log message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that the filter handled.
    Warn,
    /// Something failed.
    Error,
}

/// Record `message` at `level`.
pub fn log(level: Level, message: &str) {
    backend::log(level, message)
}

/// Whether a message at `level` would be recorded (skip expensive formatting if not).
pub fn enabled(level: Level) -> bool {
    backend::log_enabled(level)
}

/// Log at a given level with `format!` arguments: `log!(Level::Info, "x = {x}")`.
#[macro_export]
macro_rules! log {
    ($level:expr, $($arg:tt)+) => {{
        let level: $crate::log::Level = $level;
        if $crate::log::enabled(level) {
            $crate::log::log(level, &::std::format!($($arg)+));
        }
    }};
}

/// Log at [`Level::Trace`] with `format!` arguments.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => { $crate::log!($crate::log::Level::Trace, $($arg)+) };
}

/// Log at [`Level::Debug`] with `format!` arguments.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::log!($crate::log::Level::Debug, $($arg)+) };
}

/// Log at [`Level::Info`] with `format!` arguments.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::log!($crate::log::Level::Info, $($arg)+) };
}

/// Log at [`Level::Warn`] with `format!` arguments.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::log!($crate::log::Level::Warn, $($arg)+) };
}

/// Log at [`Level::Error`] with `format!` arguments.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::log!($crate::log::Level::Error, $($arg)+) };
}
