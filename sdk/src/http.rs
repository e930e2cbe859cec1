//! HTTP calls from a filter to a cluster the proxy knows (an auth service, a
//! rate-limit service, ...).
//!
//! [`call`] looks blocking, and for your code it is: it returns when the
//! response is complete. The proxy, however, suspends the filter while the
//! call is in flight and runs other requests on the same worker thread; no
//! thread is blocked. The filter's instance stays reserved for this request
//! until the hook returns.
//!
//! ```no_run
//! use std::time::Duration;
//! use weir_sdk::http::{self, OutgoingRequest};
//! use weir_sdk::prelude::*;
//!
//! fn check(token: &str) -> Result<bool> {
//!     let resp = http::call(
//!         "auth",
//!         OutgoingRequest::get("/check")
//!             .header("authorization", token)
//!             .timeout(Duration::from_millis(200)),
//!     )?;
//!     Ok(resp.status == 200)
//! }
//! ```

use std::fmt;
use std::time::Duration;

use crate::{Result, backend};

/// The timeout of an [`OutgoingRequest`] unless set (the proxy may cap it).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A request to send to a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRequest {
    /// The method, e.g. `GET`.
    pub method: String,
    /// Path and query, starting with `/`.
    pub path: String,
    /// Header fields.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
    /// Give up after this long.
    pub timeout: Duration,
}

impl OutgoingRequest {
    /// A request with this method and path, no headers, no body.
    pub fn new(method: impl Into<String>, path: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            path: path.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// A `GET` request.
    pub fn get(path: impl Into<String>) -> Self {
        Self::new("GET", path)
    }

    /// A `POST` request.
    pub fn post(path: impl Into<String>) -> Self {
        Self::new("POST", path)
    }

    /// Add a header field.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Set the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Set the timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// The response to an [`OutgoingRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IncomingResponse {
    /// Status code.
    pub status: u16,
    /// Header fields (lower-case names).
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
}

impl IncomingResponse {
    /// A response with this status and no headers or body (handy in tests).
    pub fn new(status: u16) -> Self {
        Self {
            status,
            ..Self::default()
        }
    }

    /// Add a header field (builder, handy in tests).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Set the body (builder, handy in tests).
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The first value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<&str> {
        Ok(std::str::from_utf8(&self.body)?)
    }
}

/// Why a callout failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CalloutError {
    /// No cluster of that name is configured.
    UnknownCluster(String),
    /// The request was malformed (bad method, path or header).
    InvalidRequest(String),
    /// The timeout passed before the response completed.
    Timeout,
    /// No connection could be made, or it broke.
    Connect(String),
    /// The response body was larger than the proxy allows.
    ResponseTooLarge,
}

impl fmt::Display for CalloutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CalloutError::UnknownCluster(c) => write!(f, "unknown cluster `{c}`"),
            CalloutError::InvalidRequest(why) => write!(f, "invalid request: {why}"),
            CalloutError::Timeout => f.write_str("timed out"),
            CalloutError::Connect(why) => write!(f, "connection failed: {why}"),
            CalloutError::ResponseTooLarge => f.write_str("response too large"),
        }
    }
}

impl std::error::Error for CalloutError {}

/// Send `request` to `cluster` and wait for the whole response.
///
/// The filter is suspended while the call is in flight; the proxy's worker
/// thread is not (see the [module docs](self)). Errors are
/// [`Error::Callout`](crate::Error::Callout); a response with any status,
/// including 5xx, is `Ok`.
pub fn call(cluster: &str, request: OutgoingRequest) -> Result<IncomingResponse> {
    Ok(backend::callout(cluster, request)?)
}
