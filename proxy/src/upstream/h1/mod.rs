//! Weir's HTTP/1.1 client for requests to upstreams.
//!
//! hyper's client keeps, for every connection, busy or idle, a task, a
//! request channel (two blocks of 32 slots, about 17 KiB), an 8 KiB write
//! buffer and an 8 KiB read buffer: about 33 KiB per pooled connection
//! (bench/NOTES.md). Here an idle connection is its socket. The head is
//! encoded into a buffer of its size, and the read buffer lives with the
//! response: allocated when the response is read, freed with its body (the
//! response's header values are slices of it, not copies).
//!
//! One request at a time per connection. The request body is sent while the
//! response is read, as hyper does: an upstream may answer before it has
//! read the whole body, or stream its answer as it reads. The connection
//! goes back to the pool when the response body has ended, the request body
//! was sent in full, nothing unexpected followed the response and neither
//! side asked to close. Upgrades (`101`, CONNECT) and HTTP/2 stay on hyper.
//!
//! Request framing follows hyper's client (see [`encode::framing`]);
//! response framing follows RFC 9112 §6.3 (see [`decode`]).

mod body;
mod decode;
mod encode;
#[cfg(test)]
mod tests;

use std::future::poll_fn;
use std::io;
use std::sync::Arc;
use std::task::Poll;

use http::{Method, Request, Response};

pub use body::ResponseBody;
use encode::{Framing, Upload, UploadError};

use super::pool::{H1Conn, Pool};
use crate::body::ProxyBody;

/// Room for a typical response head in one read.
const HEAD_READ: usize = 8 * 1024;

/// Why a request got no response head.
#[derive(Debug)]
pub(crate) enum SendError {
    /// A pooled connection turned out to be closed before the upstream could
    /// have acted on the request (idempotent, no body): here it is back, to
    /// send on another connection.
    Unsent(Box<Request<ProxyBody>>),
    /// Anything else; the cause, for the 502.
    Failed(String),
}

/// Send `req` on `io` and read the response head. `reused`: the connection
/// came from the pool (so a close before any answer may be the upstream's
/// keep-alive running out). A connection that can carry another request
/// afterwards goes to `pool`.
pub(crate) async fn send(
    conn: H1Conn,
    reused: bool,
    req: Request<ProxyBody>,
    pool: Option<Arc<Pool>>,
) -> Result<Response<ResponseBody>, SendError> {
    let (mut parts, body) = req.into_parts();
    let framing = encode::framing(&mut parts, &body);
    let head = encode::head(&parts);
    let mut upload = Upload::new(head, body, framing, &parts);
    let H1Conn { mut io, mut buf } = conn;
    // The upstream stopped reading; its answer may still come.
    let mut write_failed: Option<io::Error> = None;

    let parsed = poll_fn(|cx| {
        loop {
            if write_failed.is_none() && !upload.is_done() {
                match upload.poll_send(cx, &io) {
                    Poll::Ready(Err(UploadError::Io(e))) => write_failed = Some(e),
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(Failure::Abort(e.to_string()))),
                    Poll::Ready(Ok(())) | Poll::Pending => {}
                }
            }
            // Nothing read yet (the first turns): nothing to parse.
            if !buf.is_empty() {
                match decode::head(&mut buf, &parts.method) {
                    Ok(Some(head)) => return Poll::Ready(Ok(head)),
                    Ok(None) => {}
                    Err(reason) => return Poll::Ready(Err(Failure::Abort(reason))),
                }
            }
            match std::task::ready!(body::poll_read(cx, &mut io, &mut buf, HEAD_READ)) {
                Ok(0) => return Poll::Ready(Err(Failure::Closed(None))),
                Ok(_) => {}
                Err(e) => return Poll::Ready(Err(Failure::Closed(Some(e)))),
            }
        }
    })
    .await;

    let head = match parsed {
        Ok(head) => head,
        Err(Failure::Abort(reason)) => return Err(SendError::Failed(reason)),
        Err(Failure::Closed(error)) => {
            let nothing_back = buf.is_empty();
            if reused && nothing_back && framing == Framing::Empty && idempotent(&parts.method) {
                return Err(SendError::Unsent(Box::new(Request::from_parts(
                    parts,
                    crate::body::empty(),
                ))));
            }
            let cause = error.or(write_failed).map_or_else(
                || "the upstream closed the connection before the response head".to_string(),
                |e| format!("the connection failed before the response head: {e}"),
            );
            return Err(SendError::Failed(cause));
        }
    };
    let keep_alive = head.keep_alive && write_failed.is_none();
    let upload = (write_failed.is_none() && !upload.is_done()).then_some(upload);
    let body = ResponseBody::new(io, buf, head.body, keep_alive, upload, pool);
    Ok(head.response.map(|()| body))
}

/// Why no head was read.
enum Failure {
    /// The upstream closed or reset the connection.
    Closed(Option<io::Error>),
    /// The request body failed, or the response head is invalid.
    Abort(String),
}

/// Methods that may be sent again (RFC 9110 §9.2.2).
fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}
