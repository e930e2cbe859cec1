//! Requests, responses and bodies for tests: build them, hand them to a
//! hook, then look at what the filter did.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::backend::native::exchange::{
    HostBody, HostRequest, HostResponse, RequestState, ResponseState, headers,
};

/// A request as the proxy would hand it to a filter.
///
/// Build it with [`Request::get`] & co. and the `with_*` methods; after a
/// hook ran, read it with the same getters the filter uses (`header`,
/// `path`, `property`, ...).
///
/// ```
/// use weir_sdk::testing::Request;
///
/// let req = Request::post("/upload?x=1").with_header("content-type", "text/plain");
/// assert_eq!(req.path(), "/upload");
/// assert_eq!(req.query().as_deref(), Some("x=1"));
/// assert_eq!(req.header("Content-Type").as_deref(), Some("text/plain"));
/// ```
#[derive(Debug)]
pub struct Request {
    pub(crate) host: HostRequest,
}

fn build_panic(what: &str, why: String) -> ! {
    panic!("testing::Request: {what}: {why}")
}

impl Request {
    /// A request with this method and path (with an optional `?query`).
    /// Defaults: authority `example.com`, scheme `http`, peer
    /// `127.0.0.1:40000`, id `test-request-1`, no headers, no cluster.
    ///
    /// Panics on an invalid method or path (it is test set-up).
    pub fn new(method: &str, path_and_query: &str) -> Self {
        if let Err(why) = crate::backend::native::exchange::check_token("method", method) {
            build_panic("method", why);
        }
        let (path, query) = crate::backend::native::exchange::split_path(path_and_query)
            .unwrap_or_else(|why| build_panic("path", why));
        let state = RequestState {
            id: "test-request-1".to_string(),
            method: method.to_string(),
            path,
            query,
            authority: "example.com".to_string(),
            scheme: "http".to_string(),
            peer_address: "127.0.0.1:40000".to_string(),
            peer_identity: None,
            headers: Vec::new(),
            cluster: None,
            route_cache_cleared: false,
            properties: BTreeMap::new(),
        };
        Self {
            host: HostRequest(RefCell::new(state)),
        }
    }

    /// A `GET` request.
    pub fn get(path_and_query: &str) -> Self {
        Self::new("GET", path_and_query)
    }

    /// A `POST` request.
    pub fn post(path_and_query: &str) -> Self {
        Self::new("POST", path_and_query)
    }

    /// A `PUT` request.
    pub fn put(path_and_query: &str) -> Self {
        Self::new("PUT", path_and_query)
    }

    /// A `DELETE` request.
    pub fn delete(path_and_query: &str) -> Self {
        Self::new("DELETE", path_and_query)
    }

    fn edit(self, f: impl FnOnce(&mut RequestState)) -> Self {
        f(&mut self.host.0.borrow_mut());
        self
    }

    /// Add a header field. Panics on an invalid name or value.
    pub fn with_header(self, name: &str, value: &str) -> Self {
        self.edit(|s| {
            headers::add(&mut s.headers, name, value)
                .unwrap_or_else(|why| build_panic("header", why))
        })
    }

    /// Set the authority (Host).
    pub fn with_authority(self, authority: &str) -> Self {
        self.edit(|s| s.authority = authority.to_string())
    }

    /// Set the scheme (`http` / `https`).
    pub fn with_scheme(self, scheme: &str) -> Self {
        self.edit(|s| s.scheme = scheme.to_string())
    }

    /// Set the client's address (`ip:port`).
    pub fn with_peer_address(self, address: &str) -> Self {
        self.edit(|s| s.peer_address = address.to_string())
    }

    /// Set the client's verified (mTLS) identity.
    pub fn with_peer_identity(self, identity: &str) -> Self {
        self.edit(|s| s.peer_identity = Some(identity.to_string()))
    }

    /// Set the request id.
    pub fn with_id(self, id: &str) -> Self {
        self.edit(|s| s.id = id.to_string())
    }

    /// Set the cluster the route chose.
    pub fn with_cluster(self, cluster: &str) -> Self {
        self.edit(|s| s.cluster = Some(cluster.to_string()))
    }

    /// Set a property, as an earlier filter would have.
    pub fn with_property(self, key: &str, value: &str) -> Self {
        self.edit(|s| {
            s.properties.insert(key.to_string(), value.to_string());
        })
    }

    /// The request id.
    pub fn id(&self) -> String {
        self.host.id()
    }
    /// The method.
    pub fn method(&self) -> String {
        self.host.method()
    }
    /// The path, without the query.
    pub fn path(&self) -> String {
        self.host.path()
    }
    /// The query, without `?`.
    pub fn query(&self) -> Option<String> {
        self.host.query()
    }
    /// The authority.
    pub fn authority(&self) -> String {
        self.host.authority()
    }
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<String> {
        self.host.header(name)
    }
    /// All values of a header.
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.host.header_all(name)
    }
    /// All header fields, in order (names in lower case).
    pub fn headers(&self) -> Vec<(String, String)> {
        self.host.headers()
    }
    /// The cluster chosen (by the route or the filter).
    pub fn cluster(&self) -> Option<String> {
        self.host.cluster()
    }
    /// Whether the filter asked to match routes again.
    pub fn route_cache_cleared(&self) -> bool {
        self.host.0.borrow().route_cache_cleared
    }
    /// A property.
    pub fn property(&self, key: &str) -> Option<String> {
        self.host.property(key)
    }
    /// All properties.
    pub fn properties(&self) -> BTreeMap<String, String> {
        self.host.0.borrow().properties.clone()
    }
}

/// A response head, as the proxy would hand it to a filter.
///
/// ```
/// use weir_sdk::testing::Response;
///
/// let resp = Response::new(200).with_header("content-type", "text/html");
/// assert_eq!(resp.status(), 200);
/// ```
#[derive(Debug)]
pub struct Response {
    pub(crate) host: HostResponse,
}

impl Response {
    /// A response with this status and no headers.
    pub fn new(status: u16) -> Self {
        Self {
            host: HostResponse(RefCell::new(ResponseState {
                status,
                headers: Vec::new(),
            })),
        }
    }

    /// Add a header field. Panics on an invalid name or value.
    pub fn with_header(self, name: &str, value: &str) -> Self {
        headers::add(&mut self.host.0.borrow_mut().headers, name, value)
            .unwrap_or_else(|why| panic!("testing::Response: header: {why}"));
        self
    }

    /// The status.
    pub fn status(&self) -> u16 {
        self.host.status()
    }
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<String> {
        self.host.header(name)
    }
    /// All values of a header.
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.host.header_all(name)
    }
    /// All header fields, in order (names in lower case).
    pub fn headers(&self) -> Vec<(String, String)> {
        self.host.headers()
    }
}

/// A body chunk or whole body handed to a body hook.
///
/// ```
/// use weir_sdk::testing::Body;
///
/// let body = Body::from("hello");
/// assert_eq!(body.text(), "hello");
/// ```
#[derive(Debug)]
pub struct Body {
    pub(crate) host: HostBody,
}

impl Body {
    /// A body with these bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            host: HostBody(RefCell::new(bytes.into())),
        }
    }

    /// The bytes (as the filter left them).
    pub fn bytes(&self) -> Vec<u8> {
        self.host.bytes()
    }

    /// The bytes as text (lossy UTF-8, for assertions).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.host.0.borrow()).into_owned()
    }
}

impl From<&str> for Body {
    fn from(s: &str) -> Self {
        Body::new(s)
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Self {
        Body::new(v)
    }
}

impl From<&[u8]> for Body {
    fn from(v: &[u8]) -> Self {
        Body::new(v)
    }
}
