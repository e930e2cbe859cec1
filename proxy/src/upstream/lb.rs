//! Load balancing: which endpoint of a cluster takes a request.
//!
//! Only healthy (not ejected) endpoints are picked. While every endpoint is
//! healthy — the common case — picking allocates nothing and does not read
//! the clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::{HeaderMap, HeaderName};
use rand::Rng;

use super::endpoint::{Clock, Endpoint};
use super::ring_hash::{self, Ring};
use crate::config::LbPolicy;

/// A cluster's current endpoints (replaced as a whole on DNS changes).
#[derive(Debug, Default)]
pub(crate) struct EndpointSet {
    pub(crate) endpoints: Vec<Arc<Endpoint>>,
    ring: Option<Ring>,
}

impl EndpointSet {
    /// `with_ring`: build the consistent-hash ring (ring_hash clusters).
    pub(crate) fn new(endpoints: Vec<Arc<Endpoint>>, with_ring: bool) -> Self {
        let ring =
            with_ring.then(|| Ring::new(&endpoints.iter().map(|e| e.addr).collect::<Vec<_>>()));
        Self { endpoints, ring }
    }
}

/// A cluster's policy and its state.
#[derive(Debug)]
pub(crate) enum Balancer {
    /// Each healthy endpoint in turn.
    RoundRobin { next: AtomicUsize },
    /// Of two distinct random healthy endpoints, the one with fewer requests
    /// in flight (the first on a tie).
    LeastRequest,
    /// Uniformly random among healthy endpoints.
    Random,
    /// The ring owner of the header's (first) value, skipping unhealthy
    /// endpoints; random when the request lacks the header.
    RingHash { header: HeaderName },
}

/// The endpoints that may be picked.
enum Candidates {
    /// All `n` endpoints are healthy.
    All(usize),
    /// Indices of the healthy ones.
    Healthy(Vec<usize>),
}

impl Candidates {
    fn of(set: &EndpointSet, clock: &Clock) -> Self {
        let endpoints = &set.endpoints;
        if endpoints.iter().all(|e| e.is_healthy(clock)) {
            Candidates::All(endpoints.len())
        } else {
            Candidates::Healthy(
                (0..endpoints.len())
                    .filter(|&i| endpoints[i].is_healthy(clock))
                    .collect(),
            )
        }
    }

    fn len(&self) -> usize {
        match self {
            Candidates::All(n) => *n,
            Candidates::Healthy(indices) => indices.len(),
        }
    }

    fn get(&self, i: usize) -> usize {
        match self {
            Candidates::All(_) => i,
            Candidates::Healthy(indices) => indices[i],
        }
    }
}

impl Balancer {
    pub(crate) fn new(policy: LbPolicy, hash_header: Option<HeaderName>) -> Option<Self> {
        Some(match policy {
            LbPolicy::RoundRobin => Balancer::RoundRobin {
                next: AtomicUsize::new(0),
            },
            LbPolicy::LeastRequest => Balancer::LeastRequest,
            LbPolicy::Random => Balancer::Random,
            LbPolicy::RingHash => Balancer::RingHash {
                header: hash_header?,
            },
        })
    }

    pub(crate) fn needs_ring(&self) -> bool {
        matches!(self, Balancer::RingHash { .. })
    }

    /// Index into `set.endpoints` of the endpoint for a request with
    /// `headers`; `None` when no endpoint is healthy.
    pub(crate) fn pick(
        &self,
        set: &EndpointSet,
        headers: &HeaderMap,
        clock: &Clock,
        rng: &mut impl Rng,
    ) -> Option<usize> {
        if let Balancer::RingHash { header } = self
            && let Some(value) = headers.get(header)
            && let Some(ring) = &set.ring
        {
            let key = ring_hash::hash(value.as_bytes());
            return ring.lookup(key, |i| set.endpoints[i].is_healthy(clock));
        }
        let candidates = Candidates::of(set, clock);
        let n = candidates.len();
        if n == 0 {
            return None;
        }
        let chosen = match self {
            Balancer::RoundRobin { next } => next.fetch_add(1, Ordering::Relaxed) % n,
            Balancer::Random | Balancer::RingHash { .. } => rng.random_range(0..n),
            Balancer::LeastRequest if n == 1 => 0,
            Balancer::LeastRequest => {
                let first = rng.random_range(0..n);
                let mut second = rng.random_range(0..n - 1);
                if second >= first {
                    second += 1;
                }
                let load = |i: usize| set.endpoints[candidates.get(i)].in_flight();
                if load(second) < load(first) {
                    second
                } else {
                    first
                }
            }
        };
        Some(candidates.get(chosen))
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::upstream::endpoint::EJECT_AFTER_FAILURES;
    use crate::upstream::pool::PoolSettings;

    fn set(n: usize, with_ring: bool) -> EndpointSet {
        let endpoints = (0..n)
            .map(|i| {
                let addr = SocketAddr::from(([127, 0, 0, 1], 10_000 + i as u16));
                Arc::new(Endpoint::new(addr, PoolSettings::default()))
            })
            .collect();
        EndpointSet::new(endpoints, with_ring)
    }

    fn eject(endpoint: &Endpoint, clock: &Clock) {
        for _ in 0..EJECT_AFTER_FAILURES {
            endpoint.record_connect_failure(clock);
        }
    }

    fn counts(
        balancer: &Balancer,
        set: &EndpointSet,
        headers: &HeaderMap,
        picks: usize,
    ) -> Vec<usize> {
        let clock = Clock::at(1);
        let mut rng = StdRng::seed_from_u64(9);
        let mut counts = vec![0; set.endpoints.len()];
        for _ in 0..picks {
            counts[balancer
                .pick(set, headers, &clock, &mut rng)
                .expect("a healthy endpoint")] += 1;
        }
        counts
    }

    #[test]
    fn round_robin_is_exactly_fair_and_skips_ejected() {
        let set = set(3, false);
        let rr = Balancer::new(LbPolicy::RoundRobin, None).unwrap();
        assert_eq!(
            counts(&rr, &set, &HeaderMap::new(), 300),
            vec![100, 100, 100]
        );
        eject(&set.endpoints[1], &Clock::at(1));
        assert_eq!(counts(&rr, &set, &HeaderMap::new(), 300), vec![150, 0, 150]);
    }

    #[test]
    fn random_within_bounds() {
        let set = set(3, false);
        let random = Balancer::new(LbPolicy::Random, None).unwrap();
        let picks = 30_000.0;
        let sigma = f64::sqrt(picks * (1.0 / 3.0) * (2.0 / 3.0));
        for count in counts(&random, &set, &HeaderMap::new(), 30_000) {
            assert!((count as f64 - picks / 3.0).abs() <= 5.0 * sigma, "{count}");
        }
    }

    #[test]
    fn least_request_prefers_the_less_loaded() {
        let set = set(2, false);
        let lr = Balancer::new(LbPolicy::LeastRequest, None).unwrap();
        let _busy = [
            set.endpoints[0].start_request(),
            set.endpoints[0].start_request(),
        ];
        assert_eq!(counts(&lr, &set, &HeaderMap::new(), 100), vec![0, 100]);

        // With more endpoints, the busy one is only picked if drawn twice — never, since the draws are distinct.
        let set = set_with_load(&[0, 5, 0, 0]);
        let picked = counts(&lr, &set.0, &HeaderMap::new(), 1_000);
        assert_eq!(picked[1], 0);
        assert_eq!(picked.iter().sum::<usize>(), 1_000);
    }

    fn set_with_load(loads: &[usize]) -> (EndpointSet, Vec<crate::upstream::endpoint::InFlight>) {
        let set = set(loads.len(), false);
        let guards = loads
            .iter()
            .enumerate()
            .flat_map(|(i, &load)| (0..load).map(move |_| i))
            .map(|i| set.endpoints[i].start_request())
            .collect();
        (set, guards)
    }

    #[test]
    fn ring_hash_sticks_to_the_header_and_falls_back_to_random() {
        let set = set(4, true);
        let header = HeaderName::from_static("x-user");
        let ring = Balancer::new(LbPolicy::RingHash, Some(header)).unwrap();
        let clock = Clock::at(1);
        let mut rng = StdRng::seed_from_u64(3);
        let mut owners = std::collections::HashSet::new();
        for user in 0..200 {
            let mut headers = HeaderMap::new();
            headers.insert("x-user", format!("user-{user}").parse().unwrap());
            let first = ring.pick(&set, &headers, &clock, &mut rng).unwrap();
            for _ in 0..5 {
                assert_eq!(ring.pick(&set, &headers, &clock, &mut rng), Some(first));
            }
            owners.insert(first);
        }
        assert_eq!(owners.len(), 4, "200 users spread over all endpoints");
        // Without the header: spread over all endpoints.
        assert!(
            counts(&ring, &set, &HeaderMap::new(), 400)
                .iter()
                .all(|&c| c > 0)
        );
        // The owner ejected: another endpoint, consistently.
        let mut headers = HeaderMap::new();
        headers.insert("x-user", "user-1".parse().unwrap());
        let owner = ring.pick(&set, &headers, &clock, &mut rng).unwrap();
        eject(&set.endpoints[owner], &clock);
        let fallback = ring.pick(&set, &headers, &clock, &mut rng).unwrap();
        assert_ne!(fallback, owner);
        assert_eq!(ring.pick(&set, &headers, &clock, &mut rng), Some(fallback));
    }

    #[test]
    fn ring_hash_requires_a_header() {
        assert!(Balancer::new(LbPolicy::RingHash, None).is_none());
    }

    #[test]
    fn nothing_healthy_or_empty_gives_none() {
        let clock = Clock::at(1);
        let mut rng = StdRng::seed_from_u64(0);
        for policy in [
            LbPolicy::RoundRobin,
            LbPolicy::LeastRequest,
            LbPolicy::Random,
        ] {
            let balancer = Balancer::new(policy, None).unwrap();
            assert_eq!(
                balancer.pick(&EndpointSet::default(), &HeaderMap::new(), &clock, &mut rng),
                None
            );
            let set = set(2, false);
            eject(&set.endpoints[0], &clock);
            assert_eq!(
                balancer.pick(&set, &HeaderMap::new(), &clock, &mut rng),
                Some(1)
            );
            eject(&set.endpoints[1], &clock);
            assert_eq!(
                balancer.pick(&set, &HeaderMap::new(), &clock, &mut rng),
                None
            );
        }
    }
}
