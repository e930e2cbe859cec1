//! One upstream address: its load, its passive health and its connections.

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::pool::{Pool, PoolSettings};

/// Consecutive connect failures that eject an endpoint.
pub(crate) const EJECT_AFTER_FAILURES: u32 = 5;
/// How long an ejected endpoint is skipped before it is tried again.
pub(crate) const EJECTION_PERIOD: Duration = Duration::from_secs(10);

/// An endpoint of a cluster. Shared (`Arc`) between the cluster's current
/// endpoint set, requests in flight and connection tasks; DNS refreshes keep
/// the same value for an address that stays, so its pool and health survive.
#[derive(Debug)]
pub(crate) struct Endpoint {
    pub(crate) addr: SocketAddr,
    pub(crate) pool: Arc<Pool>,
    in_flight: AtomicUsize,
    consecutive_failures: AtomicU32,
    /// [`Clock`] time until which the endpoint is ejected; 0: never ejected.
    ejected_until: AtomicU64,
}

impl Endpoint {
    pub(crate) fn new(addr: SocketAddr, pool: PoolSettings) -> Self {
        Self {
            addr,
            pool: Arc::new(Pool::new(pool)),
            in_flight: AtomicUsize::new(0),
            consecutive_failures: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
        }
    }

    /// Requests picked for this endpoint whose response head has not arrived.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Count a request as in flight until the guard is dropped.
    pub(crate) fn start_request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    /// Not ejected at `clock`'s time (reads the clock only if it ever was).
    pub(crate) fn is_healthy(&self, clock: &Clock) -> bool {
        let until = self.ejected_until.load(Ordering::Relaxed);
        until == 0 || clock.now() >= until
    }

    /// A connection attempt failed. Returns true when this failure ejected
    /// the endpoint (every failure from the [`EJECT_AFTER_FAILURES`]th on
    /// ejects it again, so an endpoint that fails its retry is skipped for
    /// another period).
    pub(crate) fn record_connect_failure(&self, clock: &Clock) -> bool {
        let failures = self
            .consecutive_failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        if failures >= EJECT_AFTER_FAILURES {
            let until = clock
                .now()
                .saturating_add(EJECTION_PERIOD.as_nanos() as u64);
            self.ejected_until.store(until, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    /// A connection was made: the endpoint is healthy again.
    pub(crate) fn record_connect_success(&self) {
        if self.consecutive_failures.load(Ordering::Relaxed) != 0 {
            self.consecutive_failures.store(0, Ordering::Relaxed);
        }
        if self.ejected_until.load(Ordering::Relaxed) != 0 {
            self.ejected_until.store(0, Ordering::Relaxed);
        }
    }
}

/// A request in flight to an endpoint; dropping it ends the count.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Endpoint>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Monotonic nanoseconds (≥ 1) for ejection deadlines, read at most once per
/// use: most picks never need the time at all.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    now: Cell<Option<u64>>,
}

impl Clock {
    /// A clock fixed at `nanos` (tests).
    #[cfg(test)]
    pub(crate) fn at(nanos: u64) -> Self {
        Self {
            now: Cell::new(Some(nanos)),
        }
    }

    pub(crate) fn now(&self) -> u64 {
        if let Some(now) = self.now.get() {
            return now;
        }
        static BASE: OnceLock<Instant> = OnceLock::new();
        let base = *BASE.get_or_init(Instant::now);
        let now = (base.elapsed().as_nanos() as u64).saturating_add(1);
        self.now.set(Some(now));
        now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> Endpoint {
        Endpoint::new("127.0.0.1:1".parse().unwrap(), PoolSettings::default())
    }

    #[test]
    fn ejected_after_consecutive_failures_then_retried() {
        let e = endpoint();
        let start = Clock::at(1_000);
        for _ in 1..EJECT_AFTER_FAILURES {
            assert!(!e.record_connect_failure(&start));
            assert!(e.is_healthy(&start));
        }
        assert!(e.record_connect_failure(&start));
        assert!(!e.is_healthy(&start));
        let period = EJECTION_PERIOD.as_nanos() as u64;
        assert!(!e.is_healthy(&Clock::at(1_000 + period - 1)));
        let later = Clock::at(1_000 + period);
        assert!(e.is_healthy(&later));
        // The retry fails: ejected again at once.
        assert!(e.record_connect_failure(&later));
        assert!(!e.is_healthy(&Clock::at(1_000 + period + 1)));
        // A success clears everything.
        e.record_connect_success();
        assert!(e.is_healthy(&Clock::at(1_000 + period + 1)));
        assert!(!e.record_connect_failure(&later));
    }

    #[test]
    fn success_resets_the_count() {
        let e = endpoint();
        let clock = Clock::at(5);
        for _ in 0..10 {
            for _ in 1..EJECT_AFTER_FAILURES {
                assert!(!e.record_connect_failure(&clock));
            }
            e.record_connect_success();
        }
        assert!(e.is_healthy(&clock));
    }

    #[test]
    fn in_flight_counts_until_dropped() {
        let e = Arc::new(endpoint());
        let a = e.start_request();
        let b = e.start_request();
        assert_eq!(e.in_flight(), 2);
        drop(a);
        assert_eq!(e.in_flight(), 1);
        drop(b);
        assert_eq!(e.in_flight(), 0);
    }

    #[test]
    fn real_clock_is_monotonic_and_cached() {
        let clock = Clock::default();
        let first = clock.now();
        assert!(first >= 1);
        assert_eq!(clock.now(), first);
        assert!(Clock::default().now() >= first);
    }
}
