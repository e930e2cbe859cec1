//! The response body: read from the connection as the client takes it,
//! while the rest of the request body (if any) is still sent. The
//! connection goes back to the pool the moment the body is complete.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use tokio::net::TcpStream;

use super::decode::{BodyKind, Chunked, Step};
use super::encode::{Upload, UploadError};
use crate::body::BoxError;
use crate::upstream::pool::{H1Conn, Pool};

/// Bytes asked of the socket per read when a body starts to stream...
const BODY_READ_MIN: usize = 16 * 1024;
/// ...doubled after every read that fills it, up to this (hyper grows its
/// reads the same way): a large body moves in few system calls, a small one
/// costs no large buffer.
const BODY_READ_MAX: usize = 256 * 1024;

/// Read more of the response into `buf`, with room for at least `chunk`
/// bytes. `Ready(Ok(0))`: the upstream closed the connection.
///
/// Through `AsyncRead`, not `try_read`: a read that leaves room in the
/// buffer shows the socket was drained, and tokio then marks it not
/// readable. So the pool's liveness probe of an idle connection
/// (`pool::still_open`) costs no system call until the upstream sends
/// something (its FIN, say); with `try_read` the socket stayed marked
/// readable, and every reuse paid a `recvfrom` that returned `EAGAIN`.
pub(super) fn poll_read(
    cx: &mut Context<'_>,
    io: &mut TcpStream,
    buf: &mut BytesMut,
    chunk: usize,
) -> Poll<io::Result<usize>> {
    if buf.capacity() - buf.len() < chunk {
        buf.reserve(chunk);
    }
    tokio_util::io::poll_read_buf(Pin::new(io), cx, buf)
}

/// The body of a response read by Weir's HTTP/1 client.
pub struct ResponseBody {
    /// `None` once the body has ended (or failed). Boxed: the response is
    /// moved through several futures, the connection state need not be.
    exchange: Option<Box<Exchange>>,
}

/// The connection while the body is being read.
struct Exchange {
    io: TcpStream,
    /// Bytes read and not yet handed out.
    buf: BytesMut,
    kind: BodyKind,
    /// Data bytes still to come (`BodyKind::Length`).
    remaining: u64,
    chunked: Chunked,
    /// Bytes to ask for on the next read (see [`BODY_READ_MAX`]).
    read_size: usize,
    /// The rest of the request body, if it is still being sent.
    upload: Option<Upload>,
    keep_alive: bool,
    /// Where the connection goes once the exchange is complete.
    pool: Option<Arc<Pool>>,
}

enum Next {
    Data(Bytes),
    End(Option<HeaderMap>),
}

impl ResponseBody {
    pub(super) fn new(
        io: TcpStream,
        buf: BytesMut,
        kind: BodyKind,
        keep_alive: bool,
        upload: Option<Upload>,
        pool: Option<Arc<Pool>>,
    ) -> Self {
        let mut body = ResponseBody {
            exchange: Some(Box::new(Exchange {
                io,
                buf,
                kind,
                remaining: match kind {
                    BodyKind::Length(len) => len,
                    _ => 0,
                },
                chunked: Chunked::Size,
                read_size: BODY_READ_MIN,
                upload,
                keep_alive,
                pool,
            })),
        };
        if kind == BodyKind::Empty {
            // Nothing to read: the connection may serve the next request now,
            // whether or not anyone polls this body.
            body.end();
        }
        body
    }

    /// The body is complete: pool the connection if it can carry another
    /// request, else close it.
    fn end(&mut self) {
        if let Some(exchange) = self.exchange.take() {
            exchange.recycle();
        }
    }
}

impl Exchange {
    fn recycle(self: Box<Self>) {
        let reusable = self.keep_alive
            && self.buf.is_empty()
            && self.upload.as_ref().is_none_or(Upload::is_done);
        if reusable && let Some(pool) = self.pool {
            let Exchange { io, buf, .. } = *self;
            pool.put_h1(H1Conn { io, buf });
        }
    }

    /// Keep the upload going. An upstream that stops reading has answered
    /// already: its answer is still read, but the connection is not reused.
    fn drive_upload(&mut self, cx: &mut Context<'_>) -> Result<(), String> {
        if let Some(upload) = self.upload.as_mut() {
            match upload.poll_send(cx, &self.io) {
                Poll::Ready(Ok(())) => self.upload = None,
                Poll::Ready(Err(UploadError::Io(_))) => {
                    self.upload = None;
                    self.keep_alive = false;
                }
                Poll::Ready(Err(e)) => return Err(e.to_string()),
                Poll::Pending => {}
            }
        }
        Ok(())
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Result<Next, String>> {
        loop {
            self.drive_upload(cx)?;
            match self.kind {
                BodyKind::Empty => return Poll::Ready(Ok(Next::End(None))),
                BodyKind::Length(_) if self.remaining == 0 => {
                    return Poll::Ready(Ok(Next::End(None)));
                }
                BodyKind::Length(_) if !self.buf.is_empty() => {
                    let take = usize::try_from(self.remaining)
                        .unwrap_or(usize::MAX)
                        .min(self.buf.len());
                    self.remaining -= take as u64;
                    return Poll::Ready(Ok(Next::Data(self.buf.split_to(take).freeze())));
                }
                BodyKind::Chunked => match self.chunked.step(&mut self.buf)? {
                    Step::Data(data) => return Poll::Ready(Ok(Next::Data(data))),
                    Step::End(trailers) => return Poll::Ready(Ok(Next::End(trailers))),
                    Step::NeedMore => {}
                },
                BodyKind::UntilClose if !self.buf.is_empty() => {
                    return Poll::Ready(Ok(Next::Data(self.buf.split().freeze())));
                }
                BodyKind::Length(_) | BodyKind::UntilClose => {}
            }
            let read = ready!(poll_read(cx, &mut self.io, &mut self.buf, self.read_size));
            if let Ok(n) = read
                && n >= self.read_size
            {
                self.read_size = (self.read_size * 2).min(BODY_READ_MAX);
            }
            match read {
                Ok(0) if self.kind == BodyKind::UntilClose => {
                    self.keep_alive = false;
                    return Poll::Ready(Ok(Next::End(None)));
                }
                Ok(0) => {
                    return Poll::Ready(Err(
                        "the upstream closed the connection before the response body ended".into(),
                    ));
                }
                Ok(_) => {}
                Err(e) => return Poll::Ready(Err(format!("reading the response body: {e}"))),
            }
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
        let this = self.get_mut();
        let Some(exchange) = this.exchange.as_mut() else {
            return Poll::Ready(None);
        };
        match ready!(exchange.poll_next(cx)) {
            Ok(Next::Data(data)) => {
                if matches!(exchange.kind, BodyKind::Length(_)) && exchange.remaining == 0 {
                    // The last bytes of a sized body: the connection is free
                    // now (a client that knows the body ended polls no more).
                    this.end();
                }
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Ok(Next::End(trailers)) => {
                this.end();
                Poll::Ready(trailers.map(|t| Ok(Frame::trailers(t))))
            }
            Err(message) => {
                this.exchange = None;
                Poll::Ready(Some(Err(message.into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.exchange.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match &self.exchange {
            None => SizeHint::with_exact(0),
            Some(exchange) => match exchange.kind {
                BodyKind::Empty => SizeHint::with_exact(0),
                BodyKind::Length(_) => SizeHint::with_exact(exchange.remaining),
                BodyKind::Chunked | BodyKind::UntilClose => SizeHint::default(),
            },
        }
    }
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("ended", &self.exchange.is_none())
            .finish()
    }
}
