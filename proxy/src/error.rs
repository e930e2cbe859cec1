//! Errors that become HTTP responses — all of them, in this one module.
//!
//! Every failure the pipeline answers for is a [`ProxyError`]: it knows which
//! side caused it ([`ErrorSource`]), what happened ([`ErrorKind`]), whether
//! trying again could help ([`ProxyError::retryable`]) and which response the
//! client gets ([`ProxyError::into_response`]). The client sees a status and a
//! one-line reason such as `upstream connect failed`; the details (addresses,
//! I/O errors, filter traps) go to the log only.

use std::fmt;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use crate::body::{BoxError, ProxyBody};
use crate::phases::HookError;
use crate::upstream::{UpstreamError, UpstreamErrorKind};

/// Which side of the exchange caused an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    /// The client sent something we will not forward.
    Downstream,
    /// The upstream could not be reached or misbehaved.
    Upstream,
    /// A filter (extension hook) failed.
    Filter,
    /// A bug or an impossible state inside the proxy.
    Internal,
}

impl fmt::Display for ErrorSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Downstream => "downstream",
            Self::Upstream => "upstream",
            Self::Filter => "filter",
            Self::Internal => "internal",
        })
    }
}

/// What went wrong, precisely enough to choose the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// A malformed or ambiguous request (400). The text says what is wrong
    /// with it and is shown to the client.
    BadRequest(&'static str),
    /// No route matches the request (404).
    NoRoute,
    /// More request header fields than `limits.max_request_headers` (431).
    TooManyHeaders,
    /// A body larger than a filter may buffer (413).
    BodyTooLarge {
        /// The filter that asked for buffering.
        filter: String,
    },
    /// The chosen cluster does not exist (503).
    UnknownCluster,
    /// The cluster has no endpoint to send to (503).
    NoHealthyUpstream,
    /// Connecting to the upstream failed (502).
    UpstreamConnect,
    /// Connecting to the upstream took longer than the cluster allows (504).
    UpstreamConnectTimeout,
    /// The upstream broke the protocol or the connection (502).
    UpstreamProtocol,
    /// The upstream's response head did not arrive in time (504).
    UpstreamTimeout,
    /// A fail-closed filter failed (503 naming the filter).
    FilterFailed {
        /// The filter's configured name.
        filter: String,
    },
    /// Something inside the proxy went wrong (500).
    Internal,
}

impl ErrorKind {
    /// The side that caused an error of this kind.
    pub fn source(&self) -> ErrorSource {
        match self {
            Self::BadRequest(_) | Self::NoRoute | Self::TooManyHeaders => ErrorSource::Downstream,
            Self::UnknownCluster
            | Self::NoHealthyUpstream
            | Self::UpstreamConnect
            | Self::UpstreamConnectTimeout
            | Self::UpstreamProtocol
            | Self::UpstreamTimeout => ErrorSource::Upstream,
            Self::BodyTooLarge { .. } | Self::FilterFailed { .. } => ErrorSource::Filter,
            Self::Internal => ErrorSource::Internal,
        }
    }

    /// The status the client gets.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NoRoute => StatusCode::NOT_FOUND,
            Self::TooManyHeaders => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnknownCluster | Self::NoHealthyUpstream | Self::FilterFailed { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::UpstreamConnect | Self::UpstreamProtocol => StatusCode::BAD_GATEWAY,
            Self::UpstreamConnectTimeout | Self::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The short reason shown to the client (also the start of the log line).
impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadRequest(why) => write!(f, "bad request: {why}"),
            Self::NoRoute => f.write_str("no route matched"),
            Self::TooManyHeaders => f.write_str("too many request headers"),
            Self::BodyTooLarge { filter } => {
                write!(f, "request body too large for filter \"{filter}\"")
            }
            Self::UnknownCluster => f.write_str("unknown upstream cluster"),
            Self::NoHealthyUpstream => f.write_str("no healthy upstream"),
            Self::UpstreamConnect => f.write_str("upstream connect failed"),
            Self::UpstreamConnectTimeout => f.write_str("upstream connect timeout"),
            Self::UpstreamProtocol => f.write_str("upstream protocol error"),
            Self::UpstreamTimeout => f.write_str("upstream timeout"),
            Self::FilterFailed { filter } => write!(f, "filter \"{filter}\" failed"),
            Self::Internal => f.write_str("internal error"),
        }
    }
}

/// A failure the pipeline answers for with an error response.
#[derive(Debug)]
pub struct ProxyError {
    kind: ErrorKind,
    retryable: bool,
    cause: Option<BoxError>,
}

impl ProxyError {
    /// An error of `kind` with no further detail; not retryable.
    pub fn new(kind: ErrorKind) -> Self {
        Self {
            kind,
            retryable: false,
            cause: None,
        }
    }

    /// A 400 naming what is wrong with the request.
    pub fn bad_request(why: &'static str) -> Self {
        Self::new(ErrorKind::BadRequest(why))
    }

    /// Attach the underlying error (logged, never shown to the client).
    pub fn with_cause(mut self, cause: impl Into<BoxError>) -> Self {
        self.cause = Some(cause.into());
        self
    }

    /// Mark whether sending the request again (elsewhere) could succeed.
    pub fn with_retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// Which side caused it.
    pub fn source_side(&self) -> ErrorSource {
        self.kind.source()
    }

    /// True when the request never reached an upstream application and may be
    /// sent again (for example: connection refused by one endpoint).
    pub fn retryable(&self) -> bool {
        self.retryable
    }

    /// The status the client gets.
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// Find the [`HookError`] a filter put into a body stream, if `err` (or
    /// anything in its source chain) is one. Body hooks report failures as
    /// body errors; this recovers them so they get the right status.
    pub fn find_hook_error<'a>(
        err: &'a (dyn std::error::Error + 'static),
    ) -> Option<&'a HookError> {
        let mut current = Some(err);
        while let Some(e) = current {
            if let Some(hook) = e.downcast_ref::<HookError>() {
                return Some(hook);
            }
            current = e.source();
        }
        None
    }

    /// Log the error (with its detail) and turn it into the client's response:
    /// the status and a plain-text body with the short reason.
    pub fn into_response(self) -> Response<ProxyBody> {
        self.log();
        self.response_bytes().map(crate::body::full)
    }

    /// The response for this error with its body as bytes. Does not log.
    pub fn response_bytes(&self) -> Response<Bytes> {
        let mut response = Response::new(Bytes::from(format!("{}\n", self.kind)));
        *response.status_mut() = self.kind.status();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }

    fn log(&self) {
        let status = self.kind.status().as_u16();
        match self.kind.source() {
            ErrorSource::Downstream => tracing::debug!(status, error = %self, "rejected request"),
            ErrorSource::Upstream | ErrorSource::Filter => {
                tracing::warn!(status, source = %self.kind.source(), error = %self, "request failed")
            }
            ErrorSource::Internal => tracing::error!(status, error = %self, "internal error"),
        }
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(cause) = &self.cause {
            write!(f, ": {cause}")?;
            let mut source = cause.source();
            while let Some(s) = source {
                write!(f, ": {s}")?;
                source = s.source();
            }
        }
        Ok(())
    }
}

impl std::error::Error for ProxyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<&HookError> for ErrorKind {
    fn from(err: &HookError) -> Self {
        match err {
            HookError::FilterFailed { filter, .. } => Self::FilterFailed {
                filter: filter.clone(),
            },
            HookError::BodyTooLarge { filter, .. } => Self::BodyTooLarge {
                filter: filter.clone(),
            },
        }
    }
}

impl From<HookError> for ProxyError {
    fn from(err: HookError) -> Self {
        Self::new(ErrorKind::from(&err)).with_cause(err)
    }
}

impl From<UpstreamError> for ProxyError {
    fn from(err: UpstreamError) -> Self {
        // A body hook that failed while the request streamed upstream shows
        // up as the upstream send failing; answer for the hook instead.
        if let Some(hook) = Self::find_hook_error(&err) {
            let kind = ErrorKind::from(hook);
            return Self::new(kind).with_cause(err);
        }
        let kind = match err.kind() {
            UpstreamErrorKind::UnknownCluster => ErrorKind::UnknownCluster,
            UpstreamErrorKind::NoHealthyEndpoint => ErrorKind::NoHealthyUpstream,
            UpstreamErrorKind::Connect => ErrorKind::UpstreamConnect,
            UpstreamErrorKind::ConnectTimeout => ErrorKind::UpstreamConnectTimeout,
            UpstreamErrorKind::Protocol => ErrorKind::UpstreamProtocol,
            // Only `Upstreams::new` reports this; a request never should.
            UpstreamErrorKind::InvalidConfig => ErrorKind::Internal,
        };
        let retryable = err.retryable();
        Self::new(kind).with_retryable(retryable).with_cause(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_text(err: ProxyError) -> (u16, String) {
        let response = err.response_bytes();
        (
            response.status().as_u16(),
            String::from_utf8(response.body().to_vec()).unwrap(),
        )
    }

    #[test]
    fn statuses_and_reasons() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "10.0.0.7:80 refused");
        let cases = [
            (
                ProxyError::bad_request("conflicting Host headers"),
                400,
                "bad request: conflicting Host headers\n",
            ),
            (
                ProxyError::new(ErrorKind::NoRoute),
                404,
                "no route matched\n",
            ),
            (
                ProxyError::new(ErrorKind::TooManyHeaders),
                431,
                "too many request headers\n",
            ),
            (
                ProxyError::new(ErrorKind::UpstreamConnect).with_cause(io),
                502,
                "upstream connect failed\n",
            ),
            (
                ProxyError::new(ErrorKind::NoHealthyUpstream),
                503,
                "no healthy upstream\n",
            ),
            (
                ProxyError::new(ErrorKind::UpstreamTimeout),
                504,
                "upstream timeout\n",
            ),
        ];
        for (err, status, text) in cases {
            assert_eq!(body_text(err), (status, text.to_string()));
        }
    }

    #[test]
    fn client_never_sees_the_cause() {
        let err = ProxyError::new(ErrorKind::UpstreamConnect)
            .with_cause(std::io::Error::other("10.1.2.3:8080: connection refused"));
        assert!(
            err.to_string().contains("10.1.2.3"),
            "the log line has the detail"
        );
        let (_, text) = body_text(err);
        assert!(!text.contains("10.1.2.3"));
    }

    #[test]
    fn hook_errors_name_the_filter() {
        let failed = ProxyError::from(HookError::FilterFailed {
            filter: "authz".into(),
            reason: "wasm trap: unreachable".into(),
        });
        assert_eq!(failed.source_side(), ErrorSource::Filter);
        assert_eq!(
            body_text(failed),
            (503, "filter \"authz\" failed\n".to_string())
        );

        let too_large = ProxyError::from(HookError::BodyTooLarge {
            filter: "scan".into(),
            limit: 10,
        });
        assert_eq!(too_large.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn finds_hook_error_in_a_source_chain() {
        let hook: BoxError = Box::new(HookError::BodyTooLarge {
            filter: "scan".into(),
            limit: 1,
        });
        let wrapped = ProxyError::new(ErrorKind::UpstreamProtocol).with_cause(hook);
        let found = ProxyError::find_hook_error(&wrapped).expect("found");
        assert!(matches!(found, HookError::BodyTooLarge { .. }));
        assert!(ProxyError::find_hook_error(&std::io::Error::other("x")).is_none());
    }
}
