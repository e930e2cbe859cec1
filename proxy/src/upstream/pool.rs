//! Keep-alive connections to one endpoint.
//!
//! HTTP/1: a LIFO list of idle sockets for Weir's own client
//! ([`super::h1`]). A connection leaves the list while it carries a request
//! and comes back only when the exchange is complete (the response body was
//! read to the end), so a connection is never shared. Upgrades use hyper's
//! client on a connection of their own that is never pooled. HTTP/2: one
//! shared hyper connection per endpoint (it multiplexes), replaced when it
//! closes.
//!
//! Idle connections are dropped after `pool_idle_timeout` (checked on every
//! checkout and by a periodic sweep), beyond `pool_max_idle_per_endpoint`,
//! and when the upstream has closed them (seen on checkout and by the sweep).
//!
//! Each worker runtime ([`crate::workers`]) has its own lists and its own
//! HTTP/2 connection: a connection's task runs on the worker that opened it,
//! and a request from another worker would cross threads twice per request.
//! So the limits above hold per worker.

use std::future::Future;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use hyper::client::conn::http2;
use tokio::net::TcpStream;

use crate::body::ProxyBody;
use crate::config::defaults;
use crate::workers;

/// Pool limits from the cluster config.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolSettings {
    pub(crate) max_idle: usize,
    pub(crate) idle_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_idle: defaults::pool_max_idle(),
            idle_timeout: defaults::pool_idle_timeout(),
        }
    }
}

impl PoolSettings {
    /// False when idle connections are not kept at all.
    pub(crate) fn enabled(&self) -> bool {
        self.max_idle > 0 && !self.idle_timeout.is_zero()
    }
}

#[derive(Debug)]
pub(crate) struct Pool {
    settings: PoolSettings,
    /// One per worker, indexed by [`workers::current`].
    shards: Box<[Shard]>,
}

/// One worker's connections to the endpoint.
#[derive(Debug, Default)]
struct Shard {
    idle: Mutex<Vec<IdleH1>>,
    h2: tokio::sync::Mutex<Option<SharedH2>>,
}

impl Shard {
    fn idle(&self) -> MutexGuard<'_, Vec<IdleH1>> {
        // The list holds no invariant a panic elsewhere could break.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An HTTP/1 connection to an upstream and its read buffer. The buffer
/// goes to the pool with the connection, so the next response on it is read
/// into the same memory: once the last response's bytes are dropped, a read
/// reclaims the allocation instead of making another one per request.
#[derive(Debug)]
pub(crate) struct H1Conn {
    pub(crate) io: TcpStream,
    /// Empty between exchanges.
    pub(crate) buf: BytesMut,
}

/// Largest read buffer kept with an idle connection; a larger one (after a
/// big streamed body) is dropped rather than held while idle.
const KEEP_BUFFER: usize = 16 * 1024;

impl From<TcpStream> for H1Conn {
    fn from(io: TcpStream) -> Self {
        H1Conn {
            io,
            buf: BytesMut::new(),
        }
    }
}

#[derive(Debug)]
struct IdleH1 {
    conn: H1Conn,
    since: Instant,
}

/// False if the upstream closed the idle connection (or sent something
/// unasked). Costs no system call unless the socket was reported readable.
fn still_open(io: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(io.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

#[derive(Debug)]
struct SharedH2 {
    sender: http2::SendRequest<ProxyBody>,
    last_used: Instant,
}

impl Pool {
    pub(crate) fn new(settings: PoolSettings) -> Self {
        Self {
            settings,
            shards: (0..workers::count()).map(|_| Shard::default()).collect(),
        }
    }

    /// The calling worker's connections.
    fn shard(&self) -> &Shard {
        &self.shards[workers::current() % self.shards.len()]
    }

    fn idle(&self) -> MutexGuard<'_, Vec<IdleH1>> {
        self.shard().idle()
    }

    /// The most recently used idle HTTP/1 connection that is still open.
    pub(crate) fn take_h1(&self) -> Option<H1Conn> {
        let mut idle = self.idle();
        while let Some(conn) = idle.pop() {
            if conn.since.elapsed() >= self.settings.idle_timeout {
                // The list is in idle order: everything below is older still.
                idle.clear();
                return None;
            }
            if still_open(&conn.conn.io) {
                return Some(conn.conn);
            }
        }
        None
    }

    /// File a connection that can take another request as idle (or close
    /// it, if the pool is full).
    pub(crate) fn put_h1(&self, mut conn: H1Conn) {
        debug_assert!(
            conn.buf.is_empty(),
            "a pooled connection has no unread bytes"
        );
        if conn.buf.capacity() > KEEP_BUFFER {
            conn.buf = BytesMut::new();
        }
        let mut idle = self.idle();
        if idle.len() < self.settings.max_idle {
            idle.push(IdleH1 {
                conn,
                since: Instant::now(),
            });
        }
    }

    /// The shared HTTP/2 connection, made with `connect()` if there is none
    /// or it has closed. Concurrent callers wait for one connect rather than
    /// each opening a connection. `connect` is called only when a connection
    /// is needed, so the caller's future does not carry an unused one.
    pub(crate) async fn h2<E, C, F>(&self, connect: C) -> Result<http2::SendRequest<ProxyBody>, E>
    where
        C: FnOnce() -> F,
        F: Future<Output = Result<http2::SendRequest<ProxyBody>, E>>,
    {
        let mut slot = self.shard().h2.lock().await;
        if let Some(shared) = slot.as_mut()
            && !shared.sender.is_closed()
        {
            shared.last_used = Instant::now();
            return Ok(shared.sender.clone());
        }
        *slot = None;
        // Boxed: a connect is rare, and its state would otherwise make every
        // request's future larger (moved, and copied, on each request).
        let sender = Box::pin(connect()).await?;
        *slot = Some(SharedH2 {
            sender: sender.clone(),
            last_used: Instant::now(),
        });
        Ok(sender)
    }

    /// Idle HTTP/1 connections, over all workers (for status and tests).
    pub(crate) fn idle_count(&self) -> usize {
        self.shards.iter().map(|shard| shard.idle().len()).sum()
    }

    /// Drop closed and expired idle connections; drop the shared HTTP/2
    /// connection if it closed or nothing used it for `idle_timeout`
    /// (`in_flight` = requests still waiting for a head on this endpoint;
    /// streams already answered keep the connection open until they end).
    pub(crate) fn sweep(&self, in_flight: usize) {
        let timeout = self.settings.idle_timeout;
        for shard in &self.shards {
            shard
                .idle()
                .retain(|idle| idle.since.elapsed() < timeout && still_open(&idle.conn.io));
            if let Ok(mut slot) = shard.h2.try_lock()
                && let Some(shared) = slot.as_ref()
                && (shared.sender.is_closed()
                    || (in_flight == 0 && shared.last_used.elapsed() >= timeout))
            {
                *slot = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    /// An open connection (the listener's backlog accepts it; nothing is sent).
    async fn ready_sender(listener: &TcpListener) -> TcpStream {
        TcpStream::connect(listener.local_addr().unwrap())
            .await
            .expect("connect")
    }

    #[tokio::test]
    async fn keeps_at_most_max_idle_and_hands_out_the_newest() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let pool = Pool::new(PoolSettings {
            max_idle: 2,
            idle_timeout: Duration::from_secs(3600),
        });
        for _ in 0..3 {
            pool.put_h1(ready_sender(&listener).await.into());
        }
        assert_eq!(pool.idle_count(), 2);
        assert!(pool.take_h1().is_some());
        assert!(pool.take_h1().is_some());
        assert!(pool.take_h1().is_none());
    }

    #[tokio::test]
    async fn a_small_read_buffer_stays_with_the_connection_a_large_one_does_not() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let pool = Pool::new(PoolSettings {
            max_idle: 4,
            idle_timeout: Duration::from_secs(3600),
        });
        for (capacity, kept) in [(8 * 1024, true), (KEEP_BUFFER + 1, false)] {
            let mut conn = H1Conn::from(ready_sender(&listener).await);
            conn.buf.reserve(capacity);
            pool.put_h1(conn);
            let back = pool.take_h1().expect("pooled");
            assert_eq!(back.buf.capacity() >= capacity, kept, "{capacity}");
        }
    }

    #[tokio::test]
    async fn expired_connections_are_dropped() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        // A zero timeout: every idle connection is already expired.
        let pool = Pool::new(PoolSettings {
            max_idle: 4,
            idle_timeout: Duration::ZERO,
        });
        pool.put_h1(ready_sender(&listener).await.into());
        pool.put_h1(ready_sender(&listener).await.into());
        assert_eq!(pool.idle_count(), 2);
        assert!(pool.take_h1().is_none());
        assert_eq!(pool.idle_count(), 0);
        pool.put_h1(ready_sender(&listener).await.into());
        pool.sweep(0);
        assert_eq!(pool.idle_count(), 0);
    }

    #[tokio::test]
    async fn closed_connections_are_skipped() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let pool = Pool::new(PoolSettings {
            max_idle: 4,
            idle_timeout: Duration::from_secs(3600),
        });
        pool.put_h1(ready_sender(&listener).await.into());
        // Accept the connection and close it from the server side.
        let (server_side, _) = listener.accept().await.unwrap();
        drop(server_side);
        // The runtime's reactor reports the EOF; yield until it has.
        let mut yields = 0;
        while pool.idle().iter().any(|idle| still_open(&idle.conn.io)) {
            assert!(yields < 100_000, "the close was never seen");
            yields += 1;
            tokio::task::yield_now().await;
        }
        assert_eq!(pool.idle_count(), 1);
        assert!(pool.take_h1().is_none());
        assert_eq!(pool.idle_count(), 0);
    }

    #[test]
    fn disabled_when_nothing_may_idle() {
        assert!(PoolSettings::default().enabled());
        assert!(
            !PoolSettings {
                max_idle: 0,
                idle_timeout: Duration::from_secs(1)
            }
            .enabled()
        );
        assert!(
            !PoolSettings {
                max_idle: 1,
                idle_timeout: Duration::ZERO
            }
            .enabled()
        );
    }
}
