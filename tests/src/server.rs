//! Upstream test servers: real hyper servers on ephemeral loopback ports.
//!
//! ```no_run
//! # async fn demo() {
//! use weir_tests::server;
//! let upstream = server::http1()
//!     .route("/hello", |_req| async { server::text(200, "hi") })
//!     .run()
//!     .await;
//! println!("listening on {}", upstream.addr);
//! # }
//! ```

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use weir_proxy::body::{self, ProxyBody};

/// What a route handler returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Response<ProxyBody>> + Send>>;
type Handler = Arc<dyn Fn(Request<Incoming>) -> HandlerFuture + Send + Sync>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    Http1,
    Http2,
    Auto,
}

/// An HTTP/1.1 upstream that answers every request with [`echo_head`].
pub async fn echo() -> Listening {
    http1().echoing().run().await
}

/// An HTTP/1.1 server.
pub fn http1() -> Server {
    Server::new(Protocol::Http1)
}

/// An HTTP/2 (h2c prior knowledge) server.
pub fn http2() -> Server {
    Server::new(Protocol::Http2)
}

/// A server that speaks both (detected per connection).
pub fn auto() -> Server {
    Server::new(Protocol::Auto)
}

/// A test server being described; [`Server::run`] starts it.
pub struct Server {
    protocol: Protocol,
    routes: HashMap<String, Handler>,
    fallback: Option<Handler>,
    name: Option<String>,
}

impl Server {
    fn new(protocol: Protocol) -> Self {
        Self {
            protocol,
            routes: HashMap::new(),
            fallback: None,
            name: None,
        }
    }

    /// Answer requests for exactly `path` with `handler`.
    pub fn route<F, Fut>(mut self, path: &str, handler: F) -> Self
    where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<ProxyBody>> + Send + 'static,
    {
        self.routes.insert(path.to_string(), boxed_handler(handler));
        self
    }

    /// Answer every request no route matches with `handler` (default: 404).
    pub fn fallback<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<ProxyBody>> + Send + 'static,
    {
        self.fallback = Some(boxed_handler(handler));
        self
    }

    /// Answer every request no route matches with [`echo_head`]: the
    /// request's method, path and headers as JSON.
    pub fn echoing(self) -> Self {
        self.fallback(|req| async move { echo_head(&req) })
    }

    /// Add `x-upstream: NAME` to every response (tells test upstreams apart).
    pub fn named(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// Bind 127.0.0.1:0 and serve in the background until the returned
    /// [`Listening`] is dropped.
    pub async fn run(self) -> Listening {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a test server");
        let addr = listener.local_addr().expect("local addr");
        let requests = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(accept_loop(
            listener,
            Arc::new(self),
            Arc::clone(&requests),
            Arc::clone(&connections),
            stopped,
        ));
        Listening {
            addr,
            requests,
            connections,
            _stop: stop,
        }
    }

    async fn dispatch(&self, request: Request<Incoming>) -> Response<ProxyBody> {
        let handler = self
            .routes
            .get(request.uri().path())
            .or(self.fallback.as_ref())
            .cloned();
        let mut response = match handler {
            Some(handler) => handler(request).await,
            None => text(404, "no such test route"),
        };
        if let Some(name) = &self.name {
            let value = HeaderValue::from_str(name).expect("server name is a header value");
            response.headers_mut().insert("x-upstream", value);
        }
        response
    }
}

fn boxed_handler<F, Fut>(handler: F) -> Handler
where
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<ProxyBody>> + Send + 'static,
{
    Arc::new(move |request| Box::pin(handler(request)) as HandlerFuture)
}

async fn accept_loop(
    listener: TcpListener,
    server: Arc<Server>,
    requests: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
    mut stopped: oneshot::Receiver<()>,
) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            _ = &mut stopped => return,
        };
        connections.fetch_add(1, Ordering::SeqCst);
        let server = Arc::clone(&server);
        let requests = Arc::clone(&requests);
        tokio::spawn(async move {
            let protocol = server.protocol;
            let service = service_fn(move |request| {
                requests.fetch_add(1, Ordering::SeqCst);
                let server = Arc::clone(&server);
                async move { Ok::<_, Infallible>(server.dispatch(request).await) }
            });
            let io = TokioIo::new(stream);
            // Errors here are the test's client or the proxy going away.
            match protocol {
                Protocol::Http1 => {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .serve_connection(io, service)
                        .with_upgrades()
                        .await;
                }
                Protocol::Http2 => {
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .timer(TokioTimer::new())
                        .serve_connection(io, service)
                        .await;
                }
                Protocol::Auto => {
                    let mut builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    builder.http1().timer(TokioTimer::new());
                    builder.http2().timer(TokioTimer::new());
                    let _ = builder.serve_connection_with_upgrades(io, service).await;
                }
            }
        });
    }
}

/// A running test server. Stops accepting when dropped.
#[derive(Debug)]
pub struct Listening {
    /// Where it listens.
    pub addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
    _stop: oneshot::Sender<()>,
}

impl Listening {
    /// Requests served so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// A response with `status` and a plain-text body.
pub fn text(status: u16, body: &str) -> Response<ProxyBody> {
    let mut response = Response::new(body::full(body.to_string()));
    *response.status_mut() = StatusCode::from_u16(status).expect("valid status");
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("text/plain"));
    response
}

/// A 200 response with `bytes` as the body.
pub fn bytes(data: impl Into<Bytes>) -> Response<ProxyBody> {
    Response::new(body::full(data.into()))
}

/// A 200 response whose JSON body lists the request's method, path and
/// headers (`{"method": .., "path": .., "headers": {name: [values]}}`).
pub fn echo_head(request: &Request<Incoming>) -> Response<ProxyBody> {
    let mut headers = serde_json::Map::new();
    for name in request.headers().keys() {
        let values: Vec<serde_json::Value> = request
            .headers()
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned().into())
            .collect();
        headers.insert(name.as_str().to_string(), values.into());
    }
    let json = serde_json::json!({
        "method": request.method().as_str(),
        "path": request.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/"),
        "version": format!("{:?}", request.version()),
        "headers": headers,
    });
    let mut response = Response::new(body::full(json.to_string()));
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
}
