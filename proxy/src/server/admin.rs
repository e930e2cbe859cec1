//! The admin listener for operators: `GET /ready`, `GET /config` and
//! `GET /metrics` (filter metrics in the Prometheus text format).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::Shared;
use super::prometheus;
use super::shutdown::{Phase, ShutdownSignal};

/// Accept admin connections until the server stops.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>, signal: ShutdownSignal) {
    let mut stopped = signal.clone();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    super::accept_failed(&err).await;
                    continue;
                }
            },
            _ = stopped.stopped() => return,
        };
        let shared = Arc::clone(&shared);
        let mut conn_stopped = signal.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let response = answer(&shared, &request);
                async move { Ok::<_, Infallible>(response) }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).keep_alive(true);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                result = connection => if let Err(err) = result {
                    tracing::debug!(%peer, error = %err, "admin connection failed");
                },
                _ = conn_stopped.stopped() => {}
            }
        });
    }
}

fn answer(shared: &Shared, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    let known = matches!(path, "/ready" | "/config" | "/metrics");
    if known && request.method() != Method::GET && request.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    match path {
        "/ready" => match shared.phase() {
            Phase::Running => text(StatusCode::OK, "ready\n"),
            Phase::Draining | Phase::Stopped => text(StatusCode::SERVICE_UNAVAILABLE, "draining\n"),
        },
        "/config" => {
            let json = shared.runtime.load().config.to_json_pretty();
            let mut response = Response::new(Full::new(Bytes::from(json)));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        "/metrics" => {
            let metrics = shared.runtime.load().hooks.metrics().unwrap_or_default();
            let body = prometheus::render(&metrics);
            let mut response = Response::new(Full::new(Bytes::from(body)));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(prometheus::CONTENT_TYPE),
            );
            response
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        "text/plain; charset=utf-8".parse().expect("valid"),
    );
    response
}
