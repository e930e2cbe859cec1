//! Bodies a filter buffers whole: the pipeline holds the head back until the
//! buffered body phase ran, so the head goes out with the final length
//! instead of falling back to chunked framing.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};

use crate::body::{self, BoxError, ProxyBody};

/// A body read to its end, ready to be sent again.
pub(super) struct Buffered {
    /// The same data (and trailers) as a body.
    pub(super) body: ProxyBody,
    /// Its exact length, when it can go out with `content-length` (no trailers).
    pub(super) length: Option<u64>,
}

/// Read `body` (already wrapped by the hooks) to its end. An error is the
/// body's own: a filter failure, a buffer overflow, or the peer's.
pub(super) async fn collect(body: ProxyBody) -> Result<Buffered, BoxError> {
    let collected = body.collect().await?;
    let trailers = collected.trailers().cloned();
    let data = collected.to_bytes();
    Ok(match trailers {
        None => Buffered {
            length: Some(data.len() as u64),
            body: body::full(data),
        },
        Some(trailers) => Buffered {
            length: None,
            body: with_trailers(data, trailers),
        },
    })
}

fn with_trailers(data: Bytes, trailers: HeaderMap) -> ProxyBody {
    let frames: Vec<Result<Frame<Bytes>, BoxError>> =
        vec![Ok(Frame::data(data)), Ok(Frame::trailers(trailers))];
    body::boxed(StreamBody::new(futures_util::stream::iter(frames)))
}

/// Frame a buffered body by its length: `content-length` replaces any
/// `transfer-encoding`. With no length (trailers) the head is left chunked.
pub(super) fn set_length(headers: &mut HeaderMap, length: Option<u64>) {
    if let Some(length) = length {
        headers.remove(header::TRANSFER_ENCODING);
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
}
