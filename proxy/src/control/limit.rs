//! The upload limit, as RESOURCE_EXHAUSTED whatever the size.
//!
//! tonic refuses a message over its decoding limit before our handlers see
//! it, with OUT_OF_RANGE and a generic text. The control service's limit is
//! set to the upload limit plus room for the other fields: uploads up to
//! that are checked by the handlers (which name the exact size), and this
//! wrapper turns tonic's refusal of anything larger into the same
//! RESOURCE_EXHAUSTED. The control service never answers OUT_OF_RANGE itself,
//! so the mapping cannot hide anything else.

use std::convert::Infallible;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use tonic::body::Body;
use tonic::server::NamedService;
use tower_service::Service;

use super::service::upload_too_large;

/// Room for the non-upload fields of a request (name, config JSON, origin).
pub(crate) const ENVELOPE_BYTES: usize = 1024 * 1024;

/// Wraps the control service: decoding-limit refusals become RESOURCE_EXHAUSTED.
#[derive(Clone)]
pub(crate) struct UploadLimit<S> {
    inner: S,
    limit: usize,
}

impl<S> UploadLimit<S> {
    pub(crate) fn new(inner: S, limit: usize) -> Self {
        Self { inner, limit }
    }
}

impl<S: NamedService> NamedService for UploadLimit<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for UploadLimit<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let limit = self.limit;
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            let out_of_range = response
                .headers()
                .get("grpc-status")
                .is_some_and(|code| code.as_bytes() == b"11");
            if out_of_range {
                return Ok(upload_too_large("request", None, limit).into_http());
            }
            Ok(response)
        })
    }
}
