//! Protocol switches (WebSocket and other `Upgrade`s): once the upstream has
//! answered 101, the two connections become one byte tunnel.

use std::sync::Arc;

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use crate::server::{DrainGuard, ShutdownSignal};

/// Bridge the client and upstream connections after a 101 response: wait for
/// both sides to hand over their sockets, then copy bytes both ways until
/// either side closes or the server stops. A shutdown's drain waits for the
/// tunnel (it holds `drain`) up to the drain timeout.
pub fn bridge(
    client: OnUpgrade,
    upstream: OnUpgrade,
    mut shutdown: ShutdownSignal,
    drain: Arc<DrainGuard>,
    request_id: super::headers::RequestId,
) {
    tokio::spawn(async move {
        let _drain = drain;
        let (client, upstream) = match tokio::try_join!(client, upstream) {
            Ok(pair) => pair,
            Err(err) => {
                tracing::debug!(%request_id, error = %err, "upgrade did not complete");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut upstream = TokioIo::new(upstream);
        tokio::select! {
            copied = tokio::io::copy_bidirectional(&mut client, &mut upstream) => match copied {
                Ok((up, down)) => tracing::debug!(%request_id, up, down, "tunnel closed"),
                Err(err) => tracing::debug!(%request_id, error = %err, "tunnel failed"),
            },
            _ = shutdown.stopped() => tracing::debug!(%request_id, "tunnel closed by shutdown"),
        }
    });
}
