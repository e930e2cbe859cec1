//! The request side: how the body is framed, the head on the wire, and the
//! upload that sends head and body as the socket takes them.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, Method, request};
use http_body::Body;
use tokio::net::TcpStream;

use crate::body::{BoxError, ProxyBody};

/// How the request body goes on the wire (RFC 9112 §6), chosen as hyper's
/// client chooses it: the client's `Content-Length` if it sent one, else
/// the body's exact length, else chunked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// No body at all (the body was empty from the start).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
}

/// Decide the framing and set the matching header. `Transfer-Encoding` was
/// stripped as hop-by-hop before the request got here.
pub(super) fn framing(parts: &mut request::Parts, body: &ProxyBody) -> Framing {
    parts.headers.remove(header::TRANSFER_ENCODING);
    if body.is_end_stream() {
        return match content_length(&parts.headers) {
            Some(len) if len > 0 => Framing::Length(len),
            _ => Framing::Empty,
        };
    }
    if let Some(len) = content_length(&parts.headers) {
        return Framing::Length(len);
    }
    if let Some(len) = body.size_hint().exact() {
        parts
            .headers
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        return Framing::Length(len);
    }
    if matches!(parts.method, Method::GET | Method::HEAD | Method::CONNECT) {
        // hyper's rule as well: these carry no body of unknown length.
        return Framing::Empty;
    }
    parts.headers.insert(
        header::TRANSFER_ENCODING,
        HeaderValue::from_static("chunked"),
    );
    Framing::Chunked
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The request line and headers, in one buffer of about their size.
pub(super) fn head(parts: &request::Parts) -> Bytes {
    let target = parts
        .uri
        .path_and_query()
        .map_or("/", |target| target.as_str());
    let method = parts.method.as_str();
    let size = method.len()
        + target.len()
        + 13
        + parts
            .headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum::<usize>()
        + 2;
    let mut head = BytesMut::with_capacity(size);
    head.extend_from_slice(method.as_bytes());
    head.extend_from_slice(b" ");
    head.extend_from_slice(target.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    write_fields(&mut head, &parts.headers);
    head.extend_from_slice(b"\r\n");
    head.freeze()
}

fn write_fields(out: &mut BytesMut, headers: &HeaderMap) {
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// Why the upload stopped.
#[derive(Debug)]
pub(super) enum UploadError {
    /// The request body failed (the client went away, or a filter stopped it).
    Body(BoxError),
    /// The body did not match its `Content-Length`.
    Length(String),
    /// Writing to the upstream failed.
    Io(io::Error),
}

impl std::fmt::Display for UploadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UploadError::Body(e) => write!(f, "request body: {e}"),
            UploadError::Length(reason) => f.write_str(reason),
            UploadError::Io(e) => write!(f, "sending the request: {e}"),
        }
    }
}

/// Most bytes queued before writing; more body frames wait in the body.
const QUEUE_BYTES: usize = 64 * 1024;

/// The head, then the body, written as the socket accepts them. Frames the
/// body polls ready are queued behind the head, so a small request goes out
/// in one write.
pub(super) struct Upload {
    body: Option<ProxyBody>,
    framing: Framing,
    /// Body bytes still allowed (`Length`).
    remaining: u64,
    /// Trailer fields the request declared (`Trailer`); hyper sends only those.
    trailer_fields: Vec<HeaderName>,
    queue: VecDeque<Bytes>,
    queued: usize,
    /// True once the body was polled (a retry would have to resend it).
    pub(super) body_touched: bool,
}

impl Upload {
    pub(super) fn new(
        head: Bytes,
        body: ProxyBody,
        framing: Framing,
        parts: &request::Parts,
    ) -> Self {
        let trailer_fields = parts
            .headers
            .get_all(header::TRAILER)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .filter(valid_trailer_field)
            .collect();
        let queued = head.len();
        Self {
            body: (framing != Framing::Empty).then_some(body),
            framing,
            remaining: match framing {
                Framing::Length(len) => len,
                _ => 0,
            },
            trailer_fields,
            queue: VecDeque::from([head]),
            queued,
            body_touched: false,
        }
    }

    /// True when everything was written.
    pub(super) fn is_done(&self) -> bool {
        self.body.is_none() && self.queue.is_empty()
    }

    /// Write what can be written; `Ready(Ok)` once head and body are out.
    pub(super) fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        io: &TcpStream,
    ) -> Poll<Result<(), UploadError>> {
        loop {
            let body_pending = self.fill(cx)?;
            if self.queue.is_empty() {
                return if self.body.is_none() {
                    Poll::Ready(Ok(()))
                } else {
                    debug_assert!(body_pending);
                    Poll::Pending
                };
            }
            ready!(self.poll_write(cx, io)).map_err(UploadError::Io)?;
        }
    }

    /// Queue body frames while the body has them ready. Returns true if
    /// the body is waiting for more.
    fn fill(&mut self, cx: &mut Context<'_>) -> Result<bool, UploadError> {
        while self.queued < QUEUE_BYTES {
            let Some(body) = self.body.as_mut() else {
                return Ok(false);
            };
            self.body_touched = true;
            match std::pin::Pin::new(body).poll_frame(cx) {
                Poll::Pending => return Ok(true),
                Poll::Ready(Some(Err(e))) => return Err(UploadError::Body(e)),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => self.queue_data(data)?,
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            self.finish(Some(trailers))?;
                        }
                    }
                },
                Poll::Ready(None) => self.finish(None)?,
            }
        }
        Ok(false)
    }

    fn push(&mut self, bytes: Bytes) {
        self.queued += bytes.len();
        self.queue.push_back(bytes);
    }

    fn queue_data(&mut self, data: Bytes) -> Result<(), UploadError> {
        if data.is_empty() {
            return Ok(());
        }
        match self.framing {
            Framing::Length(_) => {
                let len = data.len() as u64;
                if len > self.remaining {
                    return Err(UploadError::Length(format!(
                        "the request body is longer than its content-length ({} bytes too many)",
                        len - self.remaining
                    )));
                }
                self.remaining -= len;
                self.push(data);
            }
            Framing::Chunked => {
                self.push(Bytes::from(format!("{:x}\r\n", data.len())));
                self.push(data);
                self.push(Bytes::from_static(b"\r\n"));
            }
            Framing::Empty => {}
        }
        Ok(())
    }

    /// The body ended (with `trailers`, if any).
    fn finish(&mut self, trailers: Option<HeaderMap>) -> Result<(), UploadError> {
        self.body = None;
        match self.framing {
            Framing::Length(_) if self.remaining > 0 => Err(UploadError::Length(format!(
                "the request body ended {} bytes short of its content-length",
                self.remaining
            ))),
            Framing::Chunked => {
                let mut last = BytesMut::from(&b"0\r\n"[..]);
                if let Some(trailers) = trailers {
                    let mut allowed = HeaderMap::new();
                    for name in &self.trailer_fields {
                        for value in trailers.get_all(name) {
                            allowed.append(name.clone(), value.clone());
                        }
                    }
                    write_fields(&mut last, &allowed);
                }
                last.extend_from_slice(b"\r\n");
                self.push(last.freeze());
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, io: &TcpStream) -> Poll<io::Result<()>> {
        loop {
            // On the stack: this runs for every request.
            let mut slices = [IoSlice::new(&[]); 16];
            let mut count = 0;
            for (slice, bytes) in slices.iter_mut().zip(&self.queue) {
                *slice = IoSlice::new(bytes);
                count += 1;
            }
            match io.try_write_vectored(&slices[..count]) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(written) => {
                    self.advance(written);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(io.poll_write_ready(cx))?;
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn advance(&mut self, mut written: usize) {
        self.queued -= written;
        while written > 0 {
            let Some(front) = self.queue.front_mut() else {
                return;
            };
            if written >= front.len() {
                written -= front.len();
                self.queue.pop_front();
            } else {
                let _ = front.split_to(written);
                written = 0;
            }
        }
    }
}

/// hyper's list of fields a trailer must not carry.
fn valid_trailer_field(name: &HeaderName) -> bool {
    !matches!(
        *name,
        header::AUTHORIZATION
            | header::CACHE_CONTROL
            | header::CONTENT_ENCODING
            | header::CONTENT_LENGTH
            | header::CONTENT_RANGE
            | header::CONTENT_TYPE
            | header::HOST
            | header::MAX_FORWARDS
            | header::SET_COOKIE
            | header::TRAILER
            | header::TRANSFER_ENCODING
            | header::TE
    )
}
