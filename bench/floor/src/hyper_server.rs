//! `--server hyper`: the same forwarding as the raw loop, but the client
//! side is hyper's HTTP/1 server (`hyper::server::conn::http1`; Weir goes
//! through `hyper_util`'s auto builder, which wraps it)
//! with a `HeaderMap` per request and per response. The difference from the
//! raw loop is what hyper's server side costs per request.

use std::cell::Cell;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::{invalid, read_response};

pub(crate) async fn run(listener: TcpListener, upstream: SocketAddr) -> io::Result<()> {
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async move {
            loop {
                let (stream, _) = listener.accept().await?;
                stream.set_nodelay(true)?;
                tokio::task::spawn_local(async move {
                    let up: Rc<Cell<Option<Upstream>>> = Rc::new(Cell::new(None));
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let up = Rc::clone(&up);
                        async move {
                            let response = match forward(&up, upstream, req).await {
                                Ok(response) => response,
                                Err(_) => {
                                    let mut r = Response::new(Full::new(Bytes::new()));
                                    *r.status_mut() = StatusCode::BAD_GATEWAY;
                                    r
                                }
                            };
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        })
        .await
}

/// The client connection's keep-alive upstream connection and its read
/// buffer, kept between requests as the raw loop keeps them.
type Upstream = (TcpStream, Vec<u8>);

async fn forward(
    slot: &Cell<Option<Upstream>>,
    upstream: SocketAddr,
    req: Request<Incoming>,
) -> io::Result<Response<Full<Bytes>>> {
    let (mut conn, mut buf) = match slot.take() {
        Some(up) => up,
        None => {
            let conn = TcpStream::connect(upstream).await?;
            conn.set_nodelay(true)?;
            (conn, Vec::with_capacity(4096))
        }
    };
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(req.method().as_str().as_bytes());
    out.push(b' ');
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in req.headers() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    conn.write_all(&out).await?;
    // The head goes into a HeaderMap, as a proxy built on hyper needs it.
    let (len, body, head) = read_response(&mut conn, &mut buf, |res| {
        let mut response = Response::new(());
        *response.status_mut() = StatusCode::from_u16(res.code.unwrap_or(200)).map_err(invalid)?;
        for h in res.headers.iter() {
            let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(invalid)?;
            let value = HeaderValue::from_bytes(h.value).map_err(invalid)?;
            response.headers_mut().append(name, value);
        }
        Ok(response)
    })
    .await?;
    let response_body = Full::new(Bytes::copy_from_slice(&buf[len..len + body]));
    buf.drain(..len + body);
    slot.set(Some((conn, buf)));
    Ok(head.map(|()| response_body))
}
