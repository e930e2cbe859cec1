//! Binding a listening socket with an explicit accept-queue length.
//!
//! `TcpListener::bind` listens with a backlog of 128. When a burst of new
//! connections arrives faster than the accept loop takes them (a client
//! fleet reconnecting, a load balancer opening its pool), the kernel drops
//! the SYNs that do not fit and each of those clients waits a 1 s
//! retransmit. So the backlog is configured per listener
//! (`listeners[].backlog`, Linux caps it at `net.core.somaxconn`).

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

use super::ServerError;

/// Listen on `address` (`ip:port`) with room for `backlog` connections the
/// proxy has not accepted yet.
pub(super) fn bind(name: &str, address: &str, backlog: u32) -> Result<TcpListener, ServerError> {
    let addr: SocketAddr = address.parse().map_err(|_| ServerError::InvalidAddress {
        name: name.to_string(),
        address: address.to_string(),
    })?;
    let bind_error = |source| ServerError::Bind {
        name: name.to_string(),
        address: addr,
        source,
    };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(bind_error)?;
    // As `TcpListener::bind` does: a restarted proxy can bind at once while
    // its previous connections are still in TIME_WAIT.
    socket.set_reuseaddr(true).map_err(bind_error)?;
    socket.bind(addr).map_err(bind_error)?;
    socket.listen(backlog).map_err(bind_error)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::future::join_all;
    use tokio::net::TcpStream;

    use super::*;

    /// Connections the kernel completes without the proxy accepting any:
    /// all of them fit in the queue. With `TcpListener::bind`'s 128 the
    /// connects past 129 would wait on SYN retransmits and time out.
    #[tokio::test]
    async fn a_burst_larger_than_128_fits_in_the_accept_queue() {
        let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(4096);
        assert!(
            somaxconn >= 200,
            "net.core.somaxconn is {somaxconn}, below this test's 200"
        );
        let listener = bind("burst", "127.0.0.1:0", 200).expect("bind");
        let addr = listener.local_addr().unwrap();
        // 160: past 128, and few enough descriptors for a default `ulimit -n`
        // of 1024 with another test running beside this one.
        let connects = (0..160).map(|_| TcpStream::connect(addr));
        // Generous: without room the stragglers would wait 1 s, 3 s, 7 s, ...
        let streams = tokio::time::timeout(Duration::from_secs(20), join_all(connects))
            .await
            .expect("every connect completed without an accept");
        assert!(streams.iter().all(Result::is_ok));
    }

    #[tokio::test]
    async fn bad_addresses_are_named_errors() {
        let err = bind("web", "localhost:80", 16).unwrap_err();
        assert!(matches!(err, ServerError::InvalidAddress { .. }), "{err}");
        let taken = bind("first", "127.0.0.1:0", 16).unwrap();
        let addr = taken.local_addr().unwrap().to_string();
        let err = bind("second", &addr, 16).unwrap_err();
        assert!(
            err.to_string().contains("listener \"second\": cannot bind"),
            "{err}"
        );
    }
}
