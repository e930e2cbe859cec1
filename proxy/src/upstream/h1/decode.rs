//! The response side: the head (status line and fields) and the body's
//! framing, from bytes already read. Nothing here touches the socket.

use std::mem::MaybeUninit;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, Version};

use crate::proxy::headers::{connection_lists, list_tokens};

/// Most header fields in a response head or trailer block (hyper's default).
pub(super) const MAX_HEADERS: usize = 100;
/// Largest response head, and largest trailer block (hyper's default
/// buffer limit is about 400 KiB).
pub(super) const MAX_HEAD_BYTES: usize = 400 * 1024;
/// Longest chunk-size line (size and extensions).
const MAX_CHUNK_LINE: usize = 4096;
/// Header slots a response head's map gets beyond the fields it arrived
/// with: room for what the route's `response_headers` and filters add on the
/// way to the client without growing the map (two reallocations).
const RESPONSE_HEADER_ROOM: usize = 2;

/// How the response body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyKind {
    /// No body (HEAD, 1xx, 204, 304, or `Content-Length: 0`).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the upstream closes the connection.
    UntilClose,
}

/// A parsed final response head.
pub(super) struct Head {
    pub(super) response: Response<()>,
    pub(super) body: BodyKind,
    /// The connection may carry another request after this one.
    pub(super) keep_alive: bool,
}

/// Parse the final response head at the start of `buf`, skipping (and
/// consuming) informational `1xx` responses. `Ok(None)`: not all of it has
/// arrived yet. The head's bytes are consumed from `buf`.
pub(super) fn head(buf: &mut BytesMut, method: &Method) -> Result<Option<Head>, String> {
    loop {
        // Field slots are not initialised: httparse writes the ones it uses.
        let mut fields = [const { MaybeUninit::uninit() }; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut []);
        let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut parsed,
            buf,
            &mut fields,
        ) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD_BYTES => {
                return Err(format!(
                    "response head larger than {} KiB",
                    MAX_HEAD_BYTES / 1024
                ));
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(format!("response head with more than {MAX_HEADERS} fields"));
            }
            Err(e) => return Err(format!("invalid response head: {e}")),
        };
        let status = parsed
            .code
            .and_then(|code| StatusCode::from_u16(code).ok())
            .ok_or("invalid response status")?;
        if status.is_informational() {
            if status == StatusCode::SWITCHING_PROTOCOLS {
                return Err("101 Switching Protocols without an upgrade request".into());
            }
            buf.advance(len);
            continue;
        }
        let version = if parsed.version == Some(0) {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        let spans = FieldSpans::of(buf, parsed.headers);
        let headers = spans.split_off(buf, len, RESPONSE_HEADER_ROOM)?;

        let body = body_kind(status, method, &headers)?;
        let keep_alive = body != BodyKind::UntilClose
            && !(headers.contains_key(header::TRANSFER_ENCODING)
                && headers.contains_key(header::CONTENT_LENGTH))
            && match version {
                Version::HTTP_10 => connection_lists(&headers, "keep-alive"),
                _ => !connection_lists(&headers, "close"),
            };
        let mut response = Response::new(());
        *response.status_mut() = status;
        *response.version_mut() = version;
        *response.headers_mut() = headers;
        return Ok(Some(Head {
            response,
            body,
            keep_alive,
        }));
    }
}

/// Where one field's name and value lie in a head's or trailer block's
/// bytes: offsets, so the map can be built after the block is split off the
/// read buffer (httparse's fields borrow it).
#[derive(Clone, Copy, Default)]
struct FieldSpan {
    name: (u32, u32),
    value: (u32, u32),
}

/// The spans of the fields httparse found in a block.
struct FieldSpans {
    spans: [FieldSpan; MAX_HEADERS],
    count: usize,
}

impl FieldSpans {
    /// The spans of `fields`, which httparse found in `buf`.
    fn of(buf: &[u8], fields: &[httparse::Header<'_>]) -> Self {
        let base = buf.as_ptr() as usize;
        let range = |part: &[u8]| {
            // A block is at most MAX_HEAD_BYTES long, so offsets fit in u32.
            let start = (part.as_ptr() as usize - base) as u32;
            (start, start + part.len() as u32)
        };
        let mut spans = [FieldSpan::default(); MAX_HEADERS];
        for (span, field) in spans.iter_mut().zip(fields) {
            *span = FieldSpan {
                name: range(field.name.as_bytes()),
                value: range(field.value),
            };
        }
        FieldSpans {
            spans,
            count: fields.len(),
        }
    }

    /// Split the block (its first `len` bytes) off `buf` and build its
    /// header map. Values are slices of the block: no copy and no allocation
    /// per field. They keep the block's part of the read buffer alive only
    /// as long as the body bytes read with it do, which share it.
    /// The map has room for `room` more fields.
    fn split_off(&self, buf: &mut BytesMut, len: usize, room: usize) -> Result<HeaderMap, String> {
        let block = buf.split_to(len).freeze();
        let mut headers = HeaderMap::with_capacity(self.count + room);
        for span in &self.spans[..self.count] {
            let (name_start, name_end) = (span.name.0 as usize, span.name.1 as usize);
            let (value_start, value_end) = (span.value.0 as usize, span.value.1 as usize);
            let raw_name = &block[name_start..name_end];
            let name = HeaderName::from_bytes(raw_name).map_err(|_| {
                format!(
                    "invalid header name {:?}",
                    String::from_utf8_lossy(raw_name)
                )
            })?;
            let value = HeaderValue::from_maybe_shared(block.slice(value_start..value_end))
                .map_err(|_| format!("invalid value for header {:?}", name.as_str()))?;
            headers.append(name, value);
        }
        Ok(headers)
    }
}

fn body_kind(status: StatusCode, method: &Method, headers: &HeaderMap) -> Result<BodyKind, String> {
    if method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(BodyKind::Empty);
    }
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return Ok(
            match list_tokens(headers, header::TRANSFER_ENCODING).next_back() {
                Some(coding) if coding.eq_ignore_ascii_case("chunked") => BodyKind::Chunked,
                _ => BodyKind::UntilClose,
            },
        );
    }
    let mut length = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        let text = value.to_str().map_err(|_| "invalid content-length")?;
        for part in text.split(',') {
            let part = part.trim();
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("invalid content-length {text:?}"));
            }
            let parsed: u64 = part
                .parse()
                .map_err(|_| format!("invalid content-length {text:?}"))?;
            if length.is_some_and(|seen| seen != parsed) {
                return Err("conflicting content-length values".into());
            }
            length = Some(parsed);
        }
    }
    Ok(match length {
        Some(0) => BodyKind::Empty,
        Some(len) => BodyKind::Length(len),
        None => BodyKind::UntilClose,
    })
}

/// Where a chunked body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Chunked {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk: this many data bytes left.
    Data(u64),
    /// After a chunk's data: expecting CRLF.
    DataEnd,
    /// After the last chunk: trailer fields, then CRLF.
    Trailers,
}

/// One step of chunked decoding.
#[derive(Debug)]
pub(super) enum Step {
    /// Data for the client.
    Data(Bytes),
    /// The body ended, with trailers if the upstream sent any.
    End(Option<HeaderMap>),
    /// More bytes are needed.
    NeedMore,
}

impl Chunked {
    /// Decode from the front of `buf`, consuming what was decoded.
    pub(super) fn step(&mut self, buf: &mut BytesMut) -> Result<Step, String> {
        loop {
            match *self {
                Chunked::Size => {
                    let Some(end) = find_crlf(buf) else {
                        if buf.len() > MAX_CHUNK_LINE {
                            return Err("chunk-size line too long".into());
                        }
                        return Ok(Step::NeedMore);
                    };
                    let size = chunk_size(&buf[..end])?;
                    buf.advance(end + 2);
                    *self = if size == 0 {
                        Chunked::Trailers
                    } else {
                        Chunked::Data(size)
                    };
                }
                Chunked::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Step::NeedMore);
                    }
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                    let data = buf.split_to(take).freeze();
                    let left = left - take as u64;
                    *self = if left == 0 {
                        Chunked::DataEnd
                    } else {
                        Chunked::Data(left)
                    };
                    return Ok(Step::Data(data));
                }
                Chunked::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(Step::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err("chunk data not followed by CRLF".into());
                    }
                    buf.advance(2);
                    *self = Chunked::Size;
                }
                Chunked::Trailers => {
                    if buf.starts_with(b"\r\n") {
                        buf.advance(2);
                        return Ok(Step::End(None));
                    }
                    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
                    return match httparse::parse_headers(buf, &mut fields) {
                        Ok(httparse::Status::Complete((len, fields))) => {
                            let spans = FieldSpans::of(buf, fields);
                            Ok(Step::End(Some(spans.split_off(buf, len, 0)?)))
                        }
                        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD_BYTES => {
                            Err("trailer block too large".into())
                        }
                        Ok(httparse::Status::Partial) => Ok(Step::NeedMore),
                        Err(e) => Err(format!("invalid trailers: {e}")),
                    };
                }
            }
        }
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|pair| pair == b"\r\n")
}

/// The hex size before any chunk extension (`;name=value`).
fn chunk_size(line: &[u8]) -> Result<u64, String> {
    let digits = line
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    if digits.is_empty() || digits.len() > 16 {
        return Err("invalid chunk size".into());
    }
    let text = std::str::from_utf8(digits).map_err(|_| "invalid chunk size")?;
    u64::from_str_radix(text, 16).map_err(|_| "invalid chunk size".into())
}
