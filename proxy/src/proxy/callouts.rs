//! Filter callouts sent through the proxy's own upstream clusters.
//!
//! A filter's `callout.call` goes out through the same [`Upstreams`] as
//! proxied traffic: same endpoints, load balancing, health and pools.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use http_body_util::BodyExt;

use crate::body;
use crate::upstream::{UpstreamErrorKind, Upstreams};
use crate::wasm::{CalloutClient, CalloutFailure, MAX_CALLOUT_RESPONSE_BYTES};

/// [`CalloutClient`] over the upstream clusters of one config generation.
#[derive(Debug, Clone)]
pub struct UpstreamCallouts {
    upstreams: Arc<Upstreams>,
}

impl UpstreamCallouts {
    /// Callouts through `upstreams`.
    pub fn new(upstreams: Arc<Upstreams>) -> Self {
        Self { upstreams }
    }
}

impl CalloutClient for UpstreamCallouts {
    fn call(
        &self,
        cluster: &str,
        req: http::Request<Bytes>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<http::Response<Bytes>, CalloutFailure>> {
        let upstreams = Arc::clone(&self.upstreams);
        let cluster = cluster.to_string();
        Box::pin(async move {
            if !upstreams.contains(&cluster) {
                return Err(CalloutFailure::UnknownCluster(cluster));
            }
            let exchange = async {
                let req = req.map(body::full);
                let resp = upstreams
                    .send(&cluster, req)
                    .await
                    .map_err(|err| match err.kind() {
                        UpstreamErrorKind::UnknownCluster => {
                            CalloutFailure::UnknownCluster(cluster.clone())
                        }
                        _ => CalloutFailure::Connect(err.to_string()),
                    })?;
                let (parts, mut incoming) = resp.into_parts();
                let mut collected = BytesMut::new();
                while let Some(frame) = incoming.frame().await {
                    let frame = frame.map_err(|err| CalloutFailure::Connect(err.to_string()))?;
                    if let Ok(data) = frame.into_data() {
                        if collected.len() + data.len() > MAX_CALLOUT_RESPONSE_BYTES {
                            return Err(CalloutFailure::ResponseTooLarge);
                        }
                        collected.extend_from_slice(&data);
                    }
                }
                Ok(http::Response::from_parts(parts, collected.freeze()))
            };
            match tokio::time::timeout(timeout, exchange).await {
                Ok(result) => result,
                Err(_) => Err(CalloutFailure::Timeout),
            }
        })
    }

    fn has_cluster(&self, cluster: &str) -> bool {
        self.upstreams.contains(cluster)
    }
}
