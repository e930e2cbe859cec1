//! The body of an upstream response, from whichever client read it.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::h1;
use crate::body::BoxError;

/// An upstream response body: read by Weir's HTTP/1 client, or by hyper's
/// (HTTP/2, and HTTP/1 upgrades).
#[derive(Debug)]
pub struct UpstreamBody(Inner);

#[derive(Debug)]
enum Inner {
    Own(h1::ResponseBody),
    Hyper(Incoming),
}

impl UpstreamBody {
    pub(crate) fn own(body: h1::ResponseBody) -> Self {
        UpstreamBody(Inner::Own(body))
    }

    pub(crate) fn hyper(body: Incoming) -> Self {
        UpstreamBody(Inner::Hyper(body))
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().0 {
            Inner::Own(body) => Pin::new(body).poll_frame(cx),
            Inner::Hyper(body) => Pin::new(body)
                .poll_frame(cx)
                .map(|frame| frame.map(|result| result.map_err(Into::into))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Inner::Own(body) => body.is_end_stream(),
            Inner::Hyper(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Inner::Own(body) => body.size_hint(),
            Inner::Hyper(body) => body.size_hint(),
        }
    }
}
