//! Tests of the control API over real sockets on 127.0.0.1 (and a unix
//! socket), with an in-memory plane behind the server.

mod cli;
mod plane;
mod server;

use std::sync::Arc;

use tokio::sync::oneshot;

use super::address::ControlAddress;
use super::auth::BearerToken;
use super::client::ControlClient;
use super::server::{ControlServerConfig, RunningControlServer, serve_with};
use plane::MemoryPlane;

const TOKEN: &str = "0123456789abcdef-test-token";

/// A control server on an ephemeral loopback port; dropping `stop` shuts it down.
struct TestServer {
    plane: Arc<MemoryPlane>,
    server: RunningControlServer,
    stop: oneshot::Sender<()>,
}

impl TestServer {
    async fn start(token: Option<&str>, max_upload_bytes: Option<usize>) -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), token, max_upload_bytes).await
    }

    async fn start_on(
        bind: ControlAddress,
        token: Option<&str>,
        max_upload_bytes: Option<usize>,
    ) -> Self {
        let plane = Arc::new(MemoryPlane::new());
        let mut config = ControlServerConfig::new(bind);
        config.token = token.map(|t| BearerToken::new(t, "test").unwrap());
        if let Some(limit) = max_upload_bytes {
            config.max_upload_bytes = limit;
        }
        let (stop, stopped) = oneshot::channel::<()>();
        let server = serve_with(plane.clone(), config, async move {
            let _ = stopped.await;
        })
        .await
        .expect("control server starts");
        Self {
            plane,
            server,
            stop,
        }
    }

    fn address(&self) -> ControlAddress {
        self.server.address().clone()
    }

    async fn client(&self, token: Option<&str>) -> ControlClient {
        let token = token.map(|t| BearerToken::new(t, "test").unwrap());
        ControlClient::connect(&self.address(), token)
            .await
            .expect("client connects")
    }
}

/// Bytes that pass the in-memory plane's check (the wasm magic and version).
fn wasm_bytes(tag: &str) -> bytes::Bytes {
    let mut bytes = b"\0asm\x0d\0\x01\0".to_vec();
    bytes.extend_from_slice(tag.as_bytes());
    bytes.into()
}
