//! Header rules every proxied message follows: hop-by-hop stripping
//! (RFC 9110 §7.6.1), `x-forwarded-*`, and `x-request-id`.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// `x-request-id`.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// `x-forwarded-for`.
pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `x-forwarded-proto`.
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// Headers that describe one connection, not the message:
/// [`strip_hop_by_hop`] removes them (with those `Connection` names), and
/// routes may not set them.
pub const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Is `name` one of [`HOP_BY_HOP`]? (Standard names compare as tags.)
fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::TE
        || name == header::TRAILER
        || name == header::TRANSFER_ENCODING
        || name == header::UPGRADE
        || name == KEEP_ALIVE
        || name == PROXY_CONNECTION
}

/// True when an HTTP/1.1 request asks to switch protocols: it has `Upgrade`
/// and its `Connection` header lists `upgrade`.
pub fn is_upgrade_request(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE) && connection_lists(headers, "upgrade")
}

/// Does any `Connection` value list `token`?
pub(crate) fn connection_lists(headers: &HeaderMap, token: &str) -> bool {
    connection_tokens(headers).any(|t| t.eq_ignore_ascii_case(token))
}

fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    list_tokens(headers, header::CONNECTION)
}

/// The elements of a comma-separated list header (`Connection`,
/// `Transfer-Encoding`, ...) over all its values, trimmed, empty ones
/// skipped, in order.
pub(crate) fn list_tokens(
    headers: &HeaderMap,
    name: HeaderName,
) -> impl DoubleEndedIterator<Item = &str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|token| !token.is_empty())
}

/// Remove the headers that describe one connection rather than the message:
/// `Connection` and every header it names, `Keep-Alive`, `Proxy-Connection`,
/// `TE` (except `te: trailers`, which gRPC needs end to end), `Trailer`,
/// `Transfer-Encoding` and `Upgrade`.
///
/// With `keep_upgrade` (a protocol switch in progress) `Upgrade` stays and
/// `Connection` is set to just `upgrade`. `Host` is never removed, even when
/// `Connection` names it.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // Most messages carry none: one pass over the names (a few comparisons
    // each) instead of a hashed lookup per hop-by-hop name.
    if !keep_upgrade && !headers.keys().any(is_hop_by_hop) {
        return;
    }
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = connection_tokens(headers)
            .filter_map(|token| HeaderName::from_bytes(token.as_bytes()).ok())
            .filter(|name| *name != header::HOST)
            .filter(|name| !(keep_upgrade && *name == header::UPGRADE))
            .collect();
        for name in named {
            headers.remove(name);
        }
        headers.remove(header::CONNECTION);
    }
    headers.remove(&KEEP_ALIVE);
    headers.remove(&PROXY_CONNECTION);
    headers.remove(header::TRAILER);
    headers.remove(header::TRANSFER_ENCODING);
    if headers.contains_key(header::TE) {
        let trailers = headers
            .get_all(header::TE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|token| {
                token
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .eq_ignore_ascii_case("trailers")
            });
        headers.remove(header::TE);
        if trailers {
            headers.insert(header::TE, HeaderValue::from_static("trailers"));
        }
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
}

/// The client's address as an `x-forwarded-for` entry; made once per
/// connection, so a request without `x-forwarded-for` costs no formatting.
pub fn client_address_value(client: IpAddr) -> HeaderValue {
    HeaderValue::try_from(client.to_string()).expect("an IP address is a valid header value")
}

/// Append the client's address (see [`client_address_value`]) to
/// `x-forwarded-for` and set `x-forwarded-proto` to the scheme the client
/// used (a client-sent value is replaced: the proxy knows better).
pub fn set_forwarded(headers: &mut HeaderMap, client: &HeaderValue, scheme: &'static str) {
    let value = if headers.contains_key(&X_FORWARDED_FOR) {
        let mut chain = Vec::new();
        // Entries that are not visible ASCII text are dropped.
        for text in headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            let text = text.trim();
            if !text.is_empty() {
                chain.extend_from_slice(text.as_bytes());
                chain.extend_from_slice(b", ");
            }
        }
        chain.extend_from_slice(client.as_bytes());
        HeaderValue::from_maybe_shared(bytes::Bytes::from(chain)).ok()
    } else {
        Some(client.clone())
    };
    if let Some(value) = value {
        headers.insert(X_FORWARDED_FOR.clone(), value);
    }
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(scheme));
}

/// An exchange's `x-request-id`: non-empty visible ASCII text, held as the
/// header value itself, so the pipeline, logs and filters share its bytes
/// rather than copy them.
#[derive(Clone, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

impl Default for RequestId {
    /// The empty id, for a context that belongs to no request.
    fn default() -> Self {
        Self(HeaderValue::from_static(""))
    }
}

impl RequestId {
    /// `value` as a request id, unless it is empty or not visible ASCII.
    pub fn new(value: &HeaderValue) -> Option<Self> {
        (!value.is_empty() && value.to_str().is_ok()).then(|| Self(value.clone()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // `new` admits only visible ASCII, which `to_str` accepts.
        self.0.to_str().unwrap_or_default()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

/// The request's `x-request-id`, generated (random 128-bit hex) when the
/// client sent none, an empty one or one that is not visible ASCII text.
/// A generated id costs one allocation, shared by the header and the id.
pub fn ensure_request_id(headers: &mut HeaderMap) -> RequestId {
    if let Some(id) = headers.get(&X_REQUEST_ID).and_then(RequestId::new) {
        return id;
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let random = rand::random::<u128>();
    let mut digits = [0u8; 32];
    for (i, digit) in digits.iter_mut().enumerate() {
        *digit = HEX[((random >> (124 - 4 * i)) & 0xf) as usize];
    }
    let value = HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(digits))
        .expect("hex digits are a valid header value");
    headers.insert(X_REQUEST_ID.clone(), value.clone());
    RequestId(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn names(map: &HeaderMap) -> Vec<&str> {
        let mut names: Vec<&str> = map.keys().map(|k| k.as_str()).collect();
        names.sort();
        names
    }

    #[test]
    fn strips_hop_by_hop_and_connection_named_headers() {
        let mut map = headers(&[
            ("host", "a"),
            ("connection", "keep-alive, x-secret"),
            ("connection", "Host"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("te", "gzip"),
            ("trailer", "x-checksum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("x-kept", "yes"),
        ]);
        strip_hop_by_hop(&mut map, false);
        assert_eq!(names(&map), ["host", "x-kept"]);
    }

    #[test]
    fn each_hop_by_hop_header_alone_is_stripped() {
        for &name in HOP_BY_HOP {
            let mut map = headers(&[("host", "a"), (name, "x")]);
            strip_hop_by_hop(&mut map, false);
            assert_eq!(names(&map), ["host"], "{name}");
        }
        let mut clean = headers(&[("host", "a"), ("x-kept", "1"), ("content-length", "2")]);
        strip_hop_by_hop(&mut clean, false);
        assert_eq!(names(&clean), ["content-length", "host", "x-kept"]);
    }

    #[test]
    fn keeps_te_trailers_only() {
        let mut map = headers(&[("te", "trailers, deflate;q=0.5")]);
        strip_hop_by_hop(&mut map, false);
        assert_eq!(map.get("te").unwrap(), "trailers");
    }

    #[test]
    fn keeps_upgrade_when_switching_protocols() {
        let mut map = headers(&[
            ("connection", "Upgrade, x-drop"),
            ("upgrade", "websocket"),
            ("x-drop", "1"),
            ("sec-websocket-key", "k"),
        ]);
        assert!(is_upgrade_request(&map));
        strip_hop_by_hop(&mut map, true);
        assert_eq!(names(&map), ["connection", "sec-websocket-key", "upgrade"]);
        assert_eq!(map.get("connection").unwrap(), "upgrade");
    }

    #[test]
    fn upgrade_needs_both_headers() {
        assert!(!is_upgrade_request(&headers(&[("upgrade", "websocket")])));
        assert!(!is_upgrade_request(&headers(&[("connection", "upgrade")])));
    }

    #[test]
    fn forwarded_headers_append_and_replace() {
        let mut map = headers(&[
            ("x-forwarded-for", "203.0.113.1"),
            ("x-forwarded-for", "198.51.100.2"),
            ("x-forwarded-proto", "https"),
        ]);
        let client = client_address_value("127.0.0.1".parse().unwrap());
        set_forwarded(&mut map, &client, "http");
        assert_eq!(
            map.get("x-forwarded-for").unwrap(),
            "203.0.113.1, 198.51.100.2, 127.0.0.1"
        );
        assert_eq!(map.get_all("x-forwarded-proto").iter().count(), 1);
        assert_eq!(map.get("x-forwarded-proto").unwrap(), "http");

        let mut fresh = HeaderMap::new();
        let v6 = client_address_value("2001:db8::1".parse().unwrap());
        set_forwarded(&mut fresh, &v6, "https");
        assert_eq!(fresh.get("x-forwarded-for").unwrap(), "2001:db8::1");
        assert_eq!(fresh.get("x-forwarded-proto").unwrap(), "https");

        let mut opaque = headers(&[("x-forwarded-for", "203.0.113.1")]);
        opaque.append(
            X_FORWARDED_FOR.clone(),
            HeaderValue::from_bytes(b"\xff-not-text").unwrap(),
        );
        set_forwarded(&mut opaque, &client, "http");
        assert_eq!(
            opaque.get("x-forwarded-for").unwrap(),
            "203.0.113.1, 127.0.0.1",
            "an entry that is not visible text is dropped"
        );
    }

    #[test]
    fn request_ids_are_kept_or_generated_unique() {
        let mut given = headers(&[("x-request-id", "abc")]);
        assert_eq!(ensure_request_id(&mut given).as_str(), "abc");
        let mut empty = headers(&[("x-request-id", "")]);
        let replaced = ensure_request_id(&mut empty);
        assert_eq!(replaced.as_str().len(), 32);
        assert_eq!(empty.get("x-request-id").unwrap(), replaced.as_str());
        let mut opaque = HeaderMap::new();
        opaque.insert(
            X_REQUEST_ID.clone(),
            HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
        );
        let replaced = ensure_request_id(&mut opaque);
        assert_eq!(
            replaced.as_str().len(),
            32,
            "an id that is not text is replaced"
        );
        assert_eq!(opaque.get("x-request-id").unwrap(), replaced.as_str());
        let mut a = HeaderMap::new();
        let mut b = HeaderMap::new();
        let (id_a, id_b) = (ensure_request_id(&mut a), ensure_request_id(&mut b));
        assert_eq!(id_a.as_str().len(), 32);
        assert!(id_a.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(id_a, id_b);
        assert_eq!(a.get("x-request-id").unwrap(), id_a.as_str());
        assert_eq!(format!("{id_a}"), id_a.as_str());
    }
}
