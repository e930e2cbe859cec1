//! WebSocket peers: an echo handler for test servers (upgraded through
//! hyper, like a real application server) and a client helper.

use futures_util::{SinkExt, StreamExt};
use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::{WebSocketStream, client_async};
use weir_proxy::body::{self, ProxyBody};

/// A WebSocket connection on a plain TCP stream.
pub type Socket = WebSocketStream<TcpStream>;

/// Accept a WebSocket upgrade and echo every text and binary message back
/// (use as a route handler of an HTTP/1.1 test server).
pub async fn echo(mut request: Request<Incoming>) -> Response<ProxyBody> {
    let Some(key) = request.headers().get(header::SEC_WEBSOCKET_KEY).cloned() else {
        return crate::server::text(400, "not a websocket upgrade");
    };
    let upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let mut socket =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        while let Some(Ok(message)) = socket.next().await {
            if message.is_close() {
                break;
            }
            if (message.is_text() || message.is_binary()) && socket.send(message).await.is_err() {
                break;
            }
        }
    });
    let accept = derive_accept_key(key.as_bytes());
    let mut response = Response::new(body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        accept.parse().expect("base64 is a header value"),
    );
    response
}

/// Open a WebSocket to `ws://{addr}{path}`.
pub async fn connect(addr: std::net::SocketAddr, path: &str) -> Socket {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (socket, response) = client_async(format!("ws://{addr}{path}"), stream)
        .await
        .expect("websocket handshake through the proxy");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    socket
}
