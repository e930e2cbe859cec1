//! Upstream tests against real hyper servers on 127.0.0.1 ephemeral ports.

mod balance;
mod failures;
mod send;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::header::{CONNECTION, HOST, UPGRADE};
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use super::*;
use crate::body::{self, ProxyBody};
use crate::config::{ClusterConfig, LbPolicy, UpstreamProtocol, defaults};

/// What a test upstream has seen.
pub(super) struct ServerState {
    pub(super) id: String,
    /// TCP connections accepted.
    pub(super) accepted: AtomicUsize,
    /// Signalled when a `/hang` request arrives.
    pub(super) hang_received: Notify,
}

/// A hyper server (HTTP/1.1 and h2c) answering:
/// - `/hang`: never answers (signals `hang_received`);
/// - `/upgrade`: `101`, then reads 4 bytes and writes `pong` + them;
/// - `/echo`: the request body;
/// - anything else: `id=.. version=.. host=.. target=..` (host = URI authority, else `Host`).
pub(super) struct TestUpstream {
    pub(super) addr: SocketAddr,
    pub(super) state: Arc<ServerState>,
    accept_loop: tokio::task::JoinHandle<()>,
}

impl Drop for TestUpstream {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

impl TestUpstream {
    pub(super) async fn start(id: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        Self::serve(id, listener)
    }

    pub(super) fn serve(id: &str, listener: TcpListener) -> Self {
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ServerState {
            id: id.to_string(),
            accepted: AtomicUsize::new(0),
            hang_received: Notify::new(),
        });
        let accept_state = Arc::clone(&state);
        let accept_loop = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                accept_state.accepted.fetch_add(1, Ordering::SeqCst);
                let state = Arc::clone(&accept_state);
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(Arc::clone(&state), req));
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            state,
            accept_loop,
        }
    }

    pub(super) fn accepted(&self) -> usize {
        self.state.accepted.load(Ordering::SeqCst)
    }
}

async fn handle(
    state: Arc<ServerState>,
    mut req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    match req.uri().path() {
        "/hang" => {
            state.hang_received.notify_one();
            std::future::pending::<()>().await;
            unreachable!("pending never completes")
        }
        "/upgrade" => {
            let on_upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                let mut io = TokioIo::new(on_upgrade.await.expect("server side upgrade"));
                let mut ping = [0u8; 4];
                io.read_exact(&mut ping).await.expect("read from client");
                io.write_all(b"pong").await.expect("write to client");
                io.write_all(&ping).await.expect("write to client");
                io.flush().await.expect("flush");
            });
            let response = Response::builder()
                .status(StatusCode::SWITCHING_PROTOCOLS)
                .header(CONNECTION, "upgrade")
                .header(UPGRADE, "weir-test")
                .body(Full::new(Bytes::new()))
                .unwrap();
            Ok(response)
        }
        "/echo" => {
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            Ok(Response::new(Full::new(body)))
        }
        _ => {
            let host = match req.uri().authority() {
                Some(authority) => authority.to_string(),
                None => req
                    .headers()
                    .get(HOST)
                    .map(|h| h.to_str().unwrap().to_string())
                    .unwrap_or_default(),
            };
            let text = format!(
                "id={} version={:?} host={} target={}",
                state.id,
                req.version(),
                host,
                req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("")
            );
            Ok(Response::new(Full::new(Bytes::from(text))))
        }
    }
}

/// A cluster config with the defaults of the config file.
pub(super) fn cluster(name: &str, endpoints: &[String]) -> ClusterConfig {
    ClusterConfig {
        name: name.to_string(),
        endpoints: endpoints.to_vec(),
        lb_policy: LbPolicy::RoundRobin,
        hash_header: None,
        protocol: UpstreamProtocol::Auto,
        connect_timeout: defaults::connect_timeout(),
        dns_refresh: defaults::dns_refresh(),
        pool_idle_timeout: defaults::pool_idle_timeout(),
        pool_max_idle_per_endpoint: defaults::pool_max_idle(),
    }
}

pub(super) fn upstreams(clusters: Vec<ClusterConfig>) -> Upstreams {
    let mut config: Config =
        serde_yaml_ng::from_str("listeners: [{address: '127.0.0.1:0'}]\nvirtual_hosts: []")
            .expect("base config");
    config.clusters = clusters;
    Upstreams::new(&config).expect("valid clusters")
}

pub(super) fn addrs(servers: &[&TestUpstream]) -> Vec<String> {
    servers.iter().map(|s| s.addr.to_string()).collect()
}

/// An HTTP/1.1 request as a client sends it (origin-form + Host).
pub(super) fn get(target: &str, host: &str) -> Request<ProxyBody> {
    Request::builder()
        .uri(target)
        .header(HOST, host)
        .body(body::empty())
        .unwrap()
}

/// An HTTP/2 request as hyper's server hands it over (absolute URI, no Host).
pub(super) fn get_h2(uri: &str) -> Request<ProxyBody> {
    Request::builder()
        .version(Version::HTTP_2)
        .uri(uri)
        .body(body::empty())
        .unwrap()
}

pub(super) async fn text(response: Response<crate::upstream::UpstreamBody>) -> String {
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("response body")
        .to_bytes();
    String::from_utf8(bytes.to_vec()).expect("utf-8 body")
}

/// The `id=` of a test upstream's answer.
pub(super) async fn send_id(
    upstreams: &Upstreams,
    cluster: &str,
    req: Request<ProxyBody>,
) -> String {
    let body = text(upstreams.send(cluster, req).await.expect("send")).await;
    body.split_whitespace()
        .next()
        .and_then(|f| f.strip_prefix("id="))
        .expect("id field")
        .to_string()
}

/// Wait (yielding to other tasks, never sleeping) until `condition` holds;
/// used for effects of background tasks such as a connection going idle.
pub(super) async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..100_000 {
        if condition() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("gave up waiting: {what}");
}

pub(super) fn idle_connections(upstreams: &Upstreams) -> usize {
    upstreams
        .status()
        .iter()
        .flat_map(|c| &c.endpoints)
        .map(|e| e.idle_connections)
        .sum()
}
