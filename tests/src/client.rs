//! Clients for the tests: pooled HTTP/1.1 and h2c clients, streaming request
//! bodies, and raw-socket requests for bytes hyper would never send.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, Version};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use weir_proxy::body::{self, BoxError, ProxyBody};

/// A pooled HTTP/1.1 client.
pub fn http1() -> Client {
    Client {
        inner: HyperClient::builder(TokioExecutor::new()).build_http(),
        version: Version::HTTP_11,
    }
}

/// An HTTP/2 client (h2c with prior knowledge).
pub fn http2() -> Client {
    let inner = HyperClient::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    Client {
        inner,
        version: Version::HTTP_2,
    }
}

/// An HTTP client for one protocol.
#[derive(Clone, Debug)]
pub struct Client {
    inner: HyperClient<HttpConnector, ProxyBody>,
    version: Version,
}

impl Client {
    /// Send `request` (its version is set to the client's) and return the
    /// response with the body still streaming.
    pub async fn request(
        &self,
        mut request: Request<ProxyBody>,
    ) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        *request.version_mut() = self.version;
        self.inner.request(request).await
    }

    /// Send `request` and read the whole response.
    pub async fn send(&self, request: Request<ProxyBody>) -> TestResponse {
        let uri = request.uri().clone();
        let response = self
            .request(request)
            .await
            .unwrap_or_else(|err| panic!("request to {uri} failed: {err:?}"));
        TestResponse::read(response).await
    }

    /// `GET url` and read the whole response.
    pub async fn get(&self, url: &str) -> TestResponse {
        self.send(
            Request::get(url)
                .body(body::empty())
                .expect("valid request"),
        )
        .await
    }

    /// `GET url` with extra headers.
    pub async fn get_with(&self, url: &str, headers: &[(&str, &str)]) -> TestResponse {
        let mut builder = Request::get(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        self.send(builder.body(body::empty()).expect("valid request"))
            .await
    }
}

/// One HTTP/1.1 connection, and nothing more: unlike the pooled [`http1`]
/// client, which may open a spare connection while an idle one is on its
/// way back to its pool, this opens exactly one TCP connection. For tests
/// that count connections.
pub async fn http1_connection(addr: std::net::SocketAddr) -> Connection {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP/1 handshake");
    tokio::spawn(conn);
    Connection { addr, sender }
}

/// An HTTP/1.1 connection from [`http1_connection`].
#[derive(Debug)]
pub struct Connection {
    addr: std::net::SocketAddr,
    sender: hyper::client::conn::http1::SendRequest<ProxyBody>,
}

impl Connection {
    /// `GET path` on this connection and read the whole response.
    pub async fn get(&mut self, path: &str) -> TestResponse {
        let request = Request::get(path)
            .header(http::header::HOST, self.addr.to_string())
            .body(body::empty())
            .expect("valid request");
        self.sender.ready().await.expect("the connection is open");
        let response = self
            .sender
            .send_request(request)
            .await
            .unwrap_or_else(|err| panic!("GET {path} on {} failed: {err:?}", self.addr));
        TestResponse::read(response).await
    }
}

/// A response read to its end.
#[derive(Debug)]
pub struct TestResponse {
    /// Status code.
    pub status: StatusCode,
    /// HTTP version the response came in.
    pub version: Version,
    /// Response headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
    /// Trailers, if any arrived.
    pub trailers: Option<HeaderMap>,
}

impl TestResponse {
    /// Read `response` to its end.
    pub async fn read(response: Response<Incoming>) -> Self {
        let (parts, incoming) = response.into_parts();
        let collected = incoming.collect().await.expect("read the response body");
        let trailers = collected.trailers().cloned();
        Self {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            body: collected.to_bytes(),
            trailers,
        }
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).expect("utf-8 body")
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|err| panic!("body is not JSON ({err}): {}", self.text()))
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("text header"))
    }
}

/// The sending half of a streamed request or response body.
#[derive(Debug, Clone)]
pub struct BodySender(mpsc::Sender<Result<Frame<Bytes>, BoxError>>);

impl BodySender {
    /// Send a data chunk; waits while the receiver applies backpressure.
    /// Returns false once the body's reader is gone.
    pub async fn data(&self, chunk: impl Into<Bytes>) -> bool {
        self.0.send(Ok(Frame::data(chunk.into()))).await.is_ok()
    }

    /// Send trailers (the body ends after them).
    pub async fn trailers(&self, trailers: HeaderMap) -> bool {
        self.0.send(Ok(Frame::trailers(trailers))).await.is_ok()
    }

    /// Fail the body with `error`.
    pub async fn abort(&self, error: &str) {
        let _ = self.0.send(Err(error.to_string().into())).await;
    }
}

/// A body fed through a small channel: the receiving side sees each chunk as
/// it is sent, and the sender waits when the receiver is not reading.
pub fn body_channel() -> (BodySender, ProxyBody) {
    let (tx, rx) = mpsc::channel(1);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (BodySender(tx), body::boxed(StreamBody::new(stream)))
}

/// Write `bytes` on a fresh connection to `addr` and read until the server
/// closes it (send `connection: close` unless the server closes anyway).
/// For requests hyper's client would refuse to send.
pub async fn raw(addr: std::net::SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(bytes)
        .await
        .expect("write the raw request");
    let mut out = Vec::new();
    let limit = Duration::from_secs(30);
    let read = tokio::time::timeout(limit, stream.read_to_end(&mut out)).await;
    match read {
        Ok(Ok(_)) => {}
        // A reset after the response still leaves the response in `out`.
        Ok(Err(_)) if !out.is_empty() => {}
        Ok(Err(err)) => panic!("raw read failed: {err}"),
        Err(_) => panic!(
            "no close within {limit:?}; got so far: {}",
            String::from_utf8_lossy(&out)
        ),
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The status code at the start of a raw HTTP/1 response.
pub fn raw_status(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"))
}
