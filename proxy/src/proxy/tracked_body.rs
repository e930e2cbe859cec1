//! Body wrappers that count bytes and notice when an exchange ends.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::body::{BoxError, ProxyBody};
use crate::error::{ErrorKind, ProxyError};
use crate::phases::{ExchangeCtx, ExchangeHooks, ExchangeSummary};
use crate::server::InFlight;

pin_project! {
    /// A request body that adds the size of each data frame to a counter.
    pub struct CountingBody<B> {
        #[pin]
        inner: B,
        counter: Arc<AtomicU64>,
    }
}

impl<B> CountingBody<B> {
    /// Count `inner`'s bytes into `counter`.
    pub fn new(inner: B, counter: Arc<AtomicU64>) -> Self {
        Self { inner, counter }
    }
}

impl<B: Body<Data = Bytes>> Body for CountingBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            this.counter.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Where [`HookErrorCapture`] leaves the first hook failure it saw.
pub type HookErrorSlot = Arc<std::sync::Mutex<Option<ErrorKind>>>;

pin_project! {
    /// Watches a hook-wrapped request body for a [`HookError`] (a filter
    /// refusing the body mid-stream) and records it, so the pipeline can
    /// answer for the filter (413, 503) rather than for the upstream send it
    /// broke. The error itself still ends the stream.
    pub struct HookErrorCapture<B> {
        #[pin]
        inner: B,
        slot: HookErrorSlot,
    }
}

impl<B> HookErrorCapture<B> {
    /// Watch `inner`, recording into `slot`.
    pub fn new(inner: B, slot: HookErrorSlot) -> Self {
        Self { inner, slot }
    }
}

impl<B> Body for HookErrorCapture<B>
where
    B: Body<Data = Bytes, Error = BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Poll::Ready(Some(Err(err))) = &polled
            && let Some(hook) = ProxyError::find_hook_error(err.as_ref())
        {
            let mut slot = this
                .slot
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            slot.get_or_insert_with(|| ErrorKind::from(hook));
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What is left to do when an exchange ends: call the `done` hook with the
/// summary, and stop counting the exchange as in flight. Runs on drop, so it
/// happens whether the body finished or the client went away.
pub struct Completion {
    hooks: Option<Box<dyn ExchangeHooks>>,
    ctx: Option<ExchangeCtx>,
    request_bytes: Arc<AtomicU64>,
    response_bytes: u64,
    status: u16,
    upstream_cluster: Option<Arc<str>>,
    local_response: bool,
    _in_flight: InFlight,
}

impl Completion {
    /// The end-of-exchange work for a response with `status`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        hooks: Option<Box<dyn ExchangeHooks>>,
        ctx: ExchangeCtx,
        request_bytes: Arc<AtomicU64>,
        status: u16,
        upstream_cluster: Option<Arc<str>>,
        local_response: bool,
        in_flight: InFlight,
    ) -> Self {
        Self {
            hooks,
            ctx: Some(ctx),
            request_bytes,
            response_bytes: 0,
            status,
            upstream_cluster,
            local_response,
            _in_flight: in_flight,
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        let Some(ctx) = self.ctx.take() else { return };
        let summary = ExchangeSummary {
            status: self.status,
            duration_us: u64::try_from(ctx.started.elapsed().as_micros()).unwrap_or(u64::MAX),
            request_bytes: self.request_bytes.load(Ordering::Relaxed),
            response_bytes: self.response_bytes,
            upstream_cluster: self.upstream_cluster.take(),
            local_response: self.local_response,
        };
        tracing::debug!(
            request_id = %ctx.request_id,
            status = summary.status,
            duration_us = summary.duration_us,
            request_bytes = summary.request_bytes,
            response_bytes = summary.response_bytes,
            cluster = summary.upstream_cluster.as_deref().unwrap_or("-"),
            "exchange done"
        );
        if let Some(hooks) = self.hooks.take() {
            hooks.done(ctx, summary);
        }
    }
}

pin_project! {
    /// The response body sent to the client: streams `inner`, counts its
    /// bytes and runs the [`Completion`] after the last frame (or on drop).
    pub struct ResponseBody {
        #[pin]
        inner: ProxyBody,
        completion: Option<Completion>,
    }
}

impl ResponseBody {
    /// Stream `inner`, then complete the exchange.
    pub fn new(inner: ProxyBody, completion: Completion) -> Self {
        Self {
            inner,
            completion: Some(completion),
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(completion)) = (frame.data_ref(), this.completion.as_mut())
                {
                    completion.response_bytes += data.len() as u64;
                }
            }
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => *this.completion = None,
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
