//! Why a request could not be sent upstream (or a cluster not built).

use std::fmt;
use std::net::SocketAddr;

/// What kind of failure an [`UpstreamError`] is; the pipeline maps it to a
/// status (see each variant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpstreamErrorKind {
    /// No cluster by that name (a config or filter mistake): 500.
    UnknownCluster,
    /// Every endpoint is ejected, or DNS gave no address: 503.
    NoHealthyEndpoint,
    /// The TCP connection (or the protocol handshake) failed: 502.
    Connect,
    /// The TCP connection did not complete within `connect_timeout`: 504.
    ConnectTimeout,
    /// The connection broke, was reset, or the upstream sent an invalid
    /// response before its head arrived: 502.
    Protocol,
    /// The cluster config is invalid (from [`Upstreams::new`](super::Upstreams::new) only).
    InvalidConfig,
}

impl fmt::Display for UpstreamErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UpstreamErrorKind::UnknownCluster => "unknown cluster",
            UpstreamErrorKind::NoHealthyEndpoint => "no healthy endpoint",
            UpstreamErrorKind::Connect => "connect failed",
            UpstreamErrorKind::ConnectTimeout => "connect timed out",
            UpstreamErrorKind::Protocol => "upstream connection failed",
            UpstreamErrorKind::InvalidConfig => "invalid cluster config",
        })
    }
}

/// A request could not be sent upstream, or a cluster could not be built.
///
/// The message names the cluster, the endpoint when known, and the cause.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct UpstreamError {
    kind: UpstreamErrorKind,
    cluster: String,
    endpoint: Option<SocketAddr>,
    message: String,
}

impl UpstreamError {
    pub(crate) fn new(
        kind: UpstreamErrorKind,
        cluster: &str,
        endpoint: Option<SocketAddr>,
        cause: impl fmt::Display,
    ) -> Self {
        let mut message = format!("cluster `{cluster}`: {kind}");
        if let Some(endpoint) = endpoint {
            message.push_str(&format!(" ({endpoint})"));
        }
        let cause = cause.to_string();
        if !cause.is_empty() {
            message.push_str(": ");
            message.push_str(&cause);
        }
        Self {
            kind,
            cluster: cluster.to_string(),
            endpoint,
            message,
        }
    }

    pub(crate) fn invalid_config(cluster: &str, field: &str, reason: impl fmt::Display) -> Self {
        Self::new(
            UpstreamErrorKind::InvalidConfig,
            cluster,
            None,
            format!("{field}: {reason}"),
        )
    }

    /// What went wrong.
    pub fn kind(&self) -> UpstreamErrorKind {
        self.kind
    }

    /// True when the request was certainly not sent (the connection could not
    /// be made), so trying again — on another endpoint — cannot repeat it.
    pub fn retryable(&self) -> bool {
        matches!(
            self.kind,
            UpstreamErrorKind::Connect | UpstreamErrorKind::ConnectTimeout
        )
    }

    /// The cluster's name.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The endpoint involved, when one had been picked.
    pub fn endpoint(&self) -> Option<SocketAddr> {
        self.endpoint
    }
}

/// Text of an error and its sources, `a: b: c`, for messages.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_cluster_endpoint_and_cause() {
        let addr: SocketAddr = "10.0.0.1:80".parse().unwrap();
        let e = UpstreamError::new(
            UpstreamErrorKind::Connect,
            "api",
            Some(addr),
            "connection refused",
        );
        assert_eq!(
            e.to_string(),
            "cluster `api`: connect failed (10.0.0.1:80): connection refused"
        );
        assert!(e.retryable());
        assert_eq!(e.endpoint(), Some(addr));
        assert_eq!(e.cluster(), "api");
        let e = UpstreamError::new(UpstreamErrorKind::NoHealthyEndpoint, "api", None, "");
        assert_eq!(e.to_string(), "cluster `api`: no healthy endpoint");
        assert!(!e.retryable());
        let e = UpstreamError::new(UpstreamErrorKind::Protocol, "api", Some(addr), "reset");
        assert!(!e.retryable());
    }
}
