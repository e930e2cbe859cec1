//! `bench-upstream --listen ADDR [--threads N] [--body-bytes N]`: the static
//! upstream every benchmark target forwards to.
//!
//! It answers every request with the same small body, keeps connections
//! alive, speaks HTTP/1.1 and h2c (prior knowledge), and does no per-request
//! work beyond that, so that it is never the bottleneck of a measurement.
//!
//! One exception, used only by the harness's start-up check: a request that
//! carries `x-bench-verify` gets a response header `x-bench-seen` listing the
//! `x-bench-req-*` request headers that reached the upstream. That is how the
//! harness proves every proxy's filters really do their header work.
//!
//! On start it prints `listening on IP:PORT` (port 0 picks a free port).
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::error::Error;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

type BoxError = Box<dyn Error + Send + Sync>;

struct Args {
    listen: SocketAddr,
    threads: usize,
    body: Bytes,
}

fn parse_args() -> Result<Args, BoxError> {
    let mut listen: Option<SocketAddr> = None;
    let mut threads = 1usize;
    let mut body_bytes = 64usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--listen" => listen = Some(value("--listen")?.parse()?),
            "--threads" => threads = value("--threads")?.parse()?,
            "--body-bytes" => body_bytes = value("--body-bytes")?.parse()?,
            "-h" | "--help" => {
                println!(
                    "usage: bench-upstream --listen 127.0.0.1:0 [--threads 1] [--body-bytes 64]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)").into()),
        }
    }
    if threads == 0 {
        return Err("--threads must be at least 1".into());
    }
    let listen = listen.ok_or("--listen is required")?;
    // A fixed, printable body ending in a newline.
    let mut body = vec![b'x'; body_bytes];
    if let Some(last) = body.last_mut() {
        *last = b'\n';
    }
    Ok(Args {
        listen,
        threads,
        body: Bytes::from(body),
    })
}

fn respond(body: &Bytes, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.clone()));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    if req.headers().contains_key("x-bench-verify") {
        let mut seen: Vec<&str> = req
            .headers()
            .keys()
            .map(|name| name.as_str())
            .filter(|name| name.starts_with("x-bench-req-"))
            .collect();
        seen.sort_unstable();
        if let Ok(value) = HeaderValue::from_str(&seen.join(",")) {
            response.headers_mut().insert("x-bench-seen", value);
        }
    }
    response
}

async fn serve(listener: tokio::net::TcpListener, body: Bytes) -> Result<(), BoxError> {
    let body: &'static Bytes = Box::leak(Box::new(body));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of file descriptors or a reset during accept: keep serving.
            Err(err) => {
                eprintln!("accept failed: {err}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| async move {
                Ok::<_, Infallible>(respond(body, &req))
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn main() -> Result<(), BoxError> {
    let args = parse_args()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_io()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|err| format!("cannot listen on {}: {err}", args.listen))?;
        println!("listening on {}", listener.local_addr()?);
        serve(listener, args.body).await
    })
}
