//! Control and inspect the simulated proxy services.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use crate::backend::native::host::{Clock, MetricKey, SimHost, metric_key, with_host};
use crate::http::{CalloutError, IncomingResponse, OutgoingRequest};
use crate::kv::Entry;
use crate::log::Level;

/// Forget everything: KV, metrics, logs, mocks, recorded callouts, known
/// clusters; back to the real clock, the default random seed and all log
/// levels enabled. Each test thread starts like this anyway; call it when
/// one test needs a clean slate halfway.
pub fn reset() {
    with_host(|h| *h = SimHost::default());
}

/// Freeze the clock at `unix_ms` (milliseconds since the Unix epoch).
/// [`crate::time`] then returns this time until [`advance_time`] moves it.
pub fn set_time(unix_ms: u64) {
    with_host(|h| {
        let mono_ns = h.mono_ns();
        h.clock = Clock::Frozen {
            unix_ns: u128::from(unix_ms) * 1_000_000,
            mono_ns,
        };
    })
}

/// Move both clocks (wall and monotonic) forward. KV entries whose TTL
/// passes expire.
pub fn advance_time(by: Duration) {
    with_host(|h| match &mut h.clock {
        Clock::Real { offset, .. } => *offset += by,
        Clock::Frozen { unix_ns, mono_ns } => {
            *unix_ns += by.as_nanos();
            *mono_ns += by.as_nanos();
        }
    })
}

/// Make [`crate::random`] produce a sequence determined by `seed`.
/// (Without it the sequence is fixed anyway, so tests are reproducible.)
pub fn seed_random(seed: u64) {
    with_host(|h| h.rng_state = seed)
}

/// Record (and report as enabled) only messages at `level` or above, like
/// a proxy running at that log level.
pub fn set_log_level(level: Level) {
    with_host(|h| h.min_log_level = level)
}

/// A message the filter logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Its level.
    pub level: Level,
    /// The text.
    pub message: String,
}

/// Everything the filter logged so far on this thread, oldest first.
pub fn logs() -> Vec<LogRecord> {
    with_host(|h| {
        h.logs
            .iter()
            .map(|(level, message)| LogRecord {
                level: *level,
                message: message.clone(),
            })
            .collect()
    })
}

/// The live KV entries (expired ones are gone), by key. To put entries in
/// before a test, use [`crate::kv`] itself.
pub fn kv() -> BTreeMap<String, Entry> {
    with_host(SimHost::kv_snapshot)
}

/// A copy of the metrics recorded so far.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    counters: BTreeMap<MetricKey, u64>,
    gauges: BTreeMap<MetricKey, i64>,
    histograms: BTreeMap<MetricKey, Vec<f64>>,
}

fn key(name: &str, labels: &[(&str, &str)]) -> MetricKey {
    let labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    metric_key(name, &labels)
}

impl Metrics {
    /// A counter's value (0 if never added to). Labels in any order.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.counters.get(&key(name, labels)).copied().unwrap_or(0)
    }

    /// A gauge's last value, if ever set.
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Option<i64> {
        self.gauges.get(&key(name, labels)).copied()
    }

    /// A histogram's observations, in order.
    pub fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        self.histograms
            .get(&key(name, labels))
            .cloned()
            .unwrap_or_default()
    }

    /// Every counter: ((name, sorted labels), value).
    pub fn counters(&self) -> impl Iterator<Item = (&MetricKey, &u64)> {
        self.counters.iter()
    }
}

/// The metrics recorded so far on this thread.
pub fn metrics() -> Metrics {
    with_host(|h| Metrics {
        counters: h.counters.clone(),
        gauges: h.gauges.clone(),
        histograms: h.histograms.clone(),
    })
}

/// Answer callouts to `cluster` with `answer`. Without a mock, a callout
/// fails with [`CalloutError::UnknownCluster`], as in a proxy without that
/// cluster.
///
/// ```
/// use weir_sdk::http::{self, IncomingResponse, OutgoingRequest};
/// use weir_sdk::testing;
///
/// testing::mock_callout("auth", |req| {
///     assert_eq!(req.path, "/check");
///     Ok(IncomingResponse::new(204))
/// });
/// let resp = http::call("auth", OutgoingRequest::get("/check")).unwrap();
/// assert_eq!(resp.status, 204);
/// ```
pub fn mock_callout(
    cluster: &str,
    answer: impl Fn(&OutgoingRequest) -> Result<IncomingResponse, CalloutError> + 'static,
) {
    with_host(|h| {
        h.mocks.insert(cluster.to_string(), Rc::new(answer));
    })
}

/// Every callout made so far on this thread: (cluster, request).
pub fn callouts() -> Vec<(String, OutgoingRequest)> {
    with_host(|h| h.callouts.clone())
}

/// Declare the proxy's clusters: `Request::set_cluster` then fails for any
/// other name, as the proxy does. Without it every name is accepted.
pub fn set_clusters(names: &[&str]) {
    with_host(|h| h.clusters = Some(names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>()))
}
