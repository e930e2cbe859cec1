//! The `callout` interface: HTTP calls from a filter to a named cluster,
//! through a [`CalloutClient`] the pipeline provides.
//!
//! The call suspends the guest (its fiber), not the worker thread, and the
//! time spent waiting does not count against the filter's CPU limit.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::header::{HeaderName, HeaderValue};
use http::{Method, Uri};

use super::HostState;
use crate::wasm::bindings::weir::filter::callout as wit;

/// Longest a callout may take, whatever the filter asks; also the timeout
/// used when the filter gives 0.
pub const MAX_CALLOUT_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest callout response body handed to a filter. A [`CalloutClient`]
/// should stop reading past this and return [`CalloutFailure::ResponseTooLarge`];
/// the host checks again.
pub const MAX_CALLOUT_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Why a callout failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CalloutFailure {
    /// No cluster of that name is configured.
    #[error("unknown cluster `{0}`")]
    UnknownCluster(String),
    /// The request cannot be sent as given.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The timeout passed before the response completed.
    #[error("timed out")]
    Timeout,
    /// No connection could be made, or it broke.
    #[error("connection failed: {0}")]
    Connect(String),
    /// The response body was larger than [`MAX_CALLOUT_RESPONSE_BYTES`].
    #[error("response larger than {MAX_CALLOUT_RESPONSE_BYTES} bytes")]
    ResponseTooLarge,
}

/// Sends filter callouts to upstream clusters; implemented by the pipeline.
pub trait CalloutClient: Send + Sync {
    /// Send `req` (a path-and-query URI, no authority) to a healthy endpoint
    /// of `cluster` and read the whole response, giving up after `timeout`.
    fn call(
        &self,
        cluster: &str,
        req: http::Request<Bytes>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<http::Response<Bytes>, CalloutFailure>>;

    /// Whether a cluster of this name exists (for `set-cluster` too).
    fn has_cluster(&self, cluster: &str) -> bool;
}

/// A client with no clusters: every callout fails with `unknown-cluster`.
/// For filter sets that are loaded without a pipeline (tools, tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoClusters;

impl CalloutClient for NoClusters {
    fn call(
        &self,
        cluster: &str,
        _req: http::Request<Bytes>,
        _timeout: Duration,
    ) -> BoxFuture<'static, Result<http::Response<Bytes>, CalloutFailure>> {
        let cluster = cluster.to_owned();
        Box::pin(async move { Err(CalloutFailure::UnknownCluster(cluster)) })
    }

    fn has_cluster(&self, _cluster: &str) -> bool {
        false
    }
}

/// Turn the guest's request into an `http::Request`, or say what is wrong.
fn build_request(request: wit::OutgoingRequest) -> Result<http::Request<Bytes>, String> {
    let method = Method::from_bytes(request.method.as_bytes())
        .map_err(|_| format!("invalid method `{}`", request.method))?;
    if !request.path.starts_with('/') {
        return Err(format!("path `{}` must start with `/`", request.path));
    }
    let uri: Uri = request
        .path
        .parse()
        .map_err(|e| format!("invalid path `{}`: {e}", request.path))?;
    let mut out = http::Request::new(Bytes::from(request.body));
    *out.method_mut() = method;
    *out.uri_mut() = uri;
    for (name, value) in request.headers {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("invalid header name `{name}`"))?;
        let value = HeaderValue::from_str(&value)
            .map_err(|_| format!("invalid value for header `{name}`"))?;
        out.headers_mut().append(header, value);
    }
    Ok(out)
}

fn timeout_for(requested_ms: u32) -> Duration {
    match requested_ms {
        0 => MAX_CALLOUT_TIMEOUT,
        ms => Duration::from_millis(u64::from(ms)).min(MAX_CALLOUT_TIMEOUT),
    }
}

impl From<CalloutFailure> for wit::CalloutError {
    fn from(failure: CalloutFailure) -> Self {
        match failure {
            CalloutFailure::UnknownCluster(name) => wit::CalloutError::UnknownCluster(name),
            CalloutFailure::InvalidRequest(why) => wit::CalloutError::InvalidRequest(why),
            CalloutFailure::Timeout => wit::CalloutError::Timeout,
            CalloutFailure::Connect(why) => wit::CalloutError::Connect(why),
            CalloutFailure::ResponseTooLarge => wit::CalloutError::ResponseTooLarge,
        }
    }
}

impl wit::Host for HostState {
    async fn call(
        &mut self,
        cluster: String,
        request: wit::OutgoingRequest,
    ) -> wasmtime::Result<Result<wit::IncomingResponse, wit::CalloutError>> {
        if !self.callouts.has_cluster(&cluster) {
            return Ok(Err(wit::CalloutError::UnknownCluster(cluster)));
        }
        let timeout = timeout_for(request.timeout_ms);
        let request = match build_request(request) {
            Ok(request) => request,
            Err(why) => return Ok(Err(wit::CalloutError::InvalidRequest(why))),
        };
        let waiting = Instant::now();
        let sent = self.callouts.call(&cluster, request, timeout);
        let result = match tokio::time::timeout(timeout, sent).await {
            Ok(result) => result,
            Err(_) => Err(CalloutFailure::Timeout),
        };
        // The guest was suspended: waiting is not CPU time.
        self.cpu.suspended += waiting.elapsed();
        let response = match result {
            Ok(response) => response,
            Err(failure) => return Ok(Err(failure.into())),
        };
        let (parts, body) = response.into_parts();
        if body.len() > MAX_CALLOUT_RESPONSE_BYTES {
            return Ok(Err(wit::CalloutError::ResponseTooLarge));
        }
        let headers = parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        Ok(Ok(wit::IncomingResponse {
            status: parts.status.as_u16(),
            headers,
            body: body.to_vec(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> wit::OutgoingRequest {
        wit::OutgoingRequest {
            method: method.into(),
            path: path.into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: b"payload".to_vec(),
            timeout_ms: 100,
        }
    }

    #[test]
    fn builds_a_valid_request() {
        let req =
            build_request(request("POST", "/check?x=1", &[("x-a", "1"), ("x-a", "2")])).unwrap();
        assert_eq!(req.method(), Method::POST);
        assert_eq!(req.uri().path_and_query().unwrap().as_str(), "/check?x=1");
        assert_eq!(req.headers().get_all("x-a").iter().count(), 2);
        assert_eq!(req.body().as_ref(), b"payload");
    }

    #[test]
    fn rejects_bad_requests_with_a_reason() {
        assert!(
            build_request(request("GE T", "/", &[]))
                .unwrap_err()
                .contains("method")
        );
        assert!(
            build_request(request("GET", "relative", &[]))
                .unwrap_err()
                .contains("must start with `/`")
        );
        assert!(
            build_request(request("GET", "/", &[("bad name", "v")]))
                .unwrap_err()
                .contains("header name")
        );
        assert!(
            build_request(request("GET", "/", &[("x", "line\nbreak")]))
                .unwrap_err()
                .contains("value")
        );
    }

    #[test]
    fn timeouts_are_capped() {
        assert_eq!(timeout_for(0), MAX_CALLOUT_TIMEOUT);
        assert_eq!(timeout_for(250), Duration::from_millis(250));
        assert_eq!(timeout_for(u32::MAX), MAX_CALLOUT_TIMEOUT);
    }
}
