//! The SDK's error type.

use std::fmt;

use crate::http::CalloutError;

/// What can go wrong in a filter, as one type for `?`.
///
/// A hook that returns an error makes the proxy apply the filter's failure
/// mode (fail closed: 503; fail open: skip the filter). `Filter::new`
/// returning an error rejects the configuration, and the proxy refuses to
/// load it with this error's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is unusable (bad JSON, a missing field, a bad value).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The proxy refused a call, e.g. `set_header` with an invalid name.
    #[error("{call} failed: {message}")]
    Host {
        /// The SDK call that failed, e.g. `set_header`.
        call: &'static str,
        /// The proxy's reason.
        message: String,
    },
    /// An HTTP callout failed.
    #[error("callout failed: {0}")]
    Callout(#[from] CalloutError),
    /// Anything else, with the filter's own message.
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// A configuration error: `Error::config("`limit` must be positive")`.
    pub fn config(message: impl fmt::Display) -> Self {
        Error::Config(message.to_string())
    }

    /// A filter failure with a message: `Error::msg("no tenant for this key")`.
    /// Also handy with `map_err`: `.map_err(Error::msg)?`.
    pub fn msg(message: impl fmt::Display) -> Self {
        Error::Other(message.to_string())
    }

    pub(crate) fn host(call: &'static str, message: String) -> Self {
        Error::Host { call, message }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Other(format!("JSON: {e}"))
    }
}

impl From<std::string::FromUtf8Error> for Error {
    fn from(e: std::string::FromUtf8Error) -> Self {
        Error::Other(format!("not UTF-8: {e}"))
    }
}

impl From<std::str::Utf8Error> for Error {
    fn from(e: std::str::Utf8Error) -> Self {
        Error::Other(format!("not UTF-8: {e}"))
    }
}

/// `Result` with the SDK's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Turns a host call's `result<_, string>` into the SDK's error.
pub(crate) fn host<T>(call: &'static str, r: std::result::Result<T, String>) -> Result<T> {
    r.map_err(|message| Error::host(call, message))
}
