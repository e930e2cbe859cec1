//! Opening a connection to an endpoint: TCP (with `TCP_NODELAY`) within the
//! connect timeout; for hyper's clients (upgrades, HTTP/2 prior knowledge)
//! then the handshake, whose connection task is spawned and ends when the
//! connection closes. Weir's own HTTP/1 client ([`super::h1`]) takes the
//! socket as it is.

use std::net::SocketAddr;
use std::time::Duration;

use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use super::error::chain;
use crate::body::ProxyBody;

/// Why a connection could not be made.
#[derive(Debug)]
pub(crate) enum ConnectError {
    /// Nothing within the connect timeout.
    Timeout(Duration),
    /// Refused, unreachable, or the handshake failed.
    Failed(String),
}

/// A TCP connection with `TCP_NODELAY` set.
pub(crate) async fn tcp(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, ConnectError> {
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Err(_elapsed) => return Err(ConnectError::Timeout(timeout)),
        Ok(Err(e)) => return Err(ConnectError::Failed(e.to_string())),
        Ok(Ok(stream)) => stream,
    };
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%addr, error = %e, "could not set TCP_NODELAY");
    }
    Ok(stream)
}

/// A new hyper HTTP/1.1 connection, for a request that asks for an upgrade
/// (`101`).
pub(crate) async fn http1(
    addr: SocketAddr,
    timeout: Duration,
) -> Result<http1::SendRequest<ProxyBody>, ConnectError> {
    let io = TokioIo::new(tcp(addr, timeout).await?);
    let (sender, connection) = http1::Builder::new()
        .handshake::<_, ProxyBody>(io)
        .await
        .map_err(|e| ConnectError::Failed(chain(&e)))?;
    tokio::spawn(async move {
        if let Err(e) = connection.with_upgrades().await {
            tracing::debug!(%addr, error = %chain(&e), "upstream HTTP/1 connection ended with an error");
        }
    });
    Ok(sender)
}

/// A new HTTP/2 cleartext connection (prior knowledge). The handshake
/// (client preface) counts against the connect timeout.
pub(crate) async fn http2(
    addr: SocketAddr,
    timeout: Duration,
) -> Result<http2::SendRequest<ProxyBody>, ConnectError> {
    let started = tokio::time::Instant::now();
    let io = TokioIo::new(tcp(addr, timeout).await?);
    let handshake = http2::Builder::new(TokioExecutor::new()).handshake::<_, ProxyBody>(io);
    let remaining = timeout.saturating_sub(started.elapsed());
    let (sender, connection) = match tokio::time::timeout(remaining, handshake).await {
        Err(_elapsed) => return Err(ConnectError::Timeout(timeout)),
        Ok(Err(e)) => return Err(ConnectError::Failed(chain(&e))),
        Ok(Ok(parts)) => parts,
    };
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(%addr, error = %chain(&e), "upstream HTTP/2 connection ended with an error");
        }
    });
    Ok(sender)
}
