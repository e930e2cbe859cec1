//! The client socket as the server reads it: counts activity for the idle
//! timeout and follows HTTP/1 framing (see [`super::h1_framing`]), which
//! also tells the header read timeout when a request head is under way.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::h1_framing::H1Framing;

/// What the server knows about one client connection, shared between the
/// socket wrapper, the idle watchdog and the request handler.
#[derive(Debug, Default)]
pub struct ConnState {
    io_events: AtomicU64,
    in_flight: AtomicUsize,
    requests: AtomicU64,
    ambiguous_head: AtomicU64,
    partial_head: AtomicU64,
}

impl ConnState {
    /// A counter that changes whenever bytes move on the socket.
    pub(crate) fn io_events(&self) -> u64 {
        self.io_events.load(Ordering::Relaxed)
    }

    /// Exchanges whose response has not been fully sent yet.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The 1-based number of the HTTP/1 request head that has started to
    /// arrive but is not complete, or 0 while none is.
    pub(crate) fn partial_head(&self) -> u64 {
        self.partial_head.load(Ordering::Relaxed)
    }

    /// Mark an exchange as started; it ends when the guard drops.
    pub fn start_exchange(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    /// Count an HTTP/1 request and say whether its head carried both
    /// `Content-Length` and `Transfer-Encoding` (which hyper hides).
    pub fn next_h1_request_is_ambiguous(&self) -> bool {
        let number = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        self.ambiguous_head.load(Ordering::Relaxed) == number
    }
}

/// Keeps its exchange counted as in flight until dropped.
#[derive(Debug)]
pub struct InFlight(Arc<ConnState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

pin_project! {
    /// A socket that reports its activity to a [`ConnState`].
    pub(crate) struct TrackedIo<T> {
        #[pin]
        inner: T,
        state: Arc<ConnState>,
        framing: Option<H1Framing>,
    }
}

impl<T> TrackedIo<T> {
    pub(crate) fn new(inner: T, state: Arc<ConnState>, framing: H1Framing) -> Self {
        Self {
            inner,
            state,
            framing: Some(framing),
        }
    }
}

impl<T: AsyncRead> AsyncRead for TrackedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let result = this.inner.poll_read(cx, buf);
        let read = &buf.filled()[before..];
        if !read.is_empty() {
            this.state.io_events.fetch_add(1, Ordering::Relaxed);
            if let Some(framing) = this.framing {
                framing.feed(read);
                if let Some(head) = framing.ambiguous_head() {
                    this.state.ambiguous_head.store(head, Ordering::Relaxed);
                }
                let partial = framing.partial_head().unwrap_or(0);
                this.state.partial_head.store(partial, Ordering::Relaxed);
                if framing.is_off() {
                    *this.framing = None;
                }
            }
        }
        result
    }
}

impl<T: AsyncWrite> AsyncWrite for TrackedIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let result = this.inner.poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.state.io_events.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let result = this.inner.poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.state.io_events.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}
