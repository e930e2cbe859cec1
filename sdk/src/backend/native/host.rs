//! The simulated proxy services (log, metrics, KV, callouts, clock, random)
//! for native builds. State is per thread: every `#[test]` runs on its own
//! thread, so tests do not see each other's KV entries or metrics.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::http::{CalloutError, IncomingResponse, OutgoingRequest};
use crate::kv::Entry;
use crate::log::Level;

use super::exchange::{check_header_value, check_token};

/// A metric's identity: name plus labels sorted by key.
pub(crate) type MetricKey = (String, Vec<(String, String)>);

pub(crate) fn metric_key(name: &str, labels: &[(String, String)]) -> MetricKey {
    let mut labels = labels.to_vec();
    labels.sort();
    (name.to_string(), labels)
}

/// A mocked cluster: answers callouts.
pub(crate) type CalloutMock =
    Rc<dyn Fn(&OutgoingRequest) -> Result<IncomingResponse, CalloutError>>;

pub(crate) struct KvSlot {
    pub entry: Entry,
    /// Wall-clock expiry in Unix nanoseconds (harness clock).
    pub expires_at_ns: Option<u128>,
}

pub(crate) enum Clock {
    /// The machine's clocks, shifted by `advance_time`.
    Real { origin: Instant, offset: Duration },
    /// Set by `set_time`; moves only with `advance_time`.
    Frozen { unix_ns: u128, mono_ns: u128 },
}

/// One proxy, as far as a filter can observe it.
pub(crate) struct SimHost {
    pub min_log_level: Level,
    pub logs: Vec<(Level, String)>,
    pub counters: BTreeMap<MetricKey, u64>,
    pub gauges: BTreeMap<MetricKey, i64>,
    pub histograms: BTreeMap<MetricKey, Vec<f64>>,
    pub kv: BTreeMap<String, KvSlot>,
    pub kv_last_version: u64,
    pub clock: Clock,
    pub rng_state: u64,
    pub mocks: HashMap<String, CalloutMock>,
    pub callouts: Vec<(String, OutgoingRequest)>,
    /// `None`: any cluster name is accepted by `set_cluster`.
    pub clusters: Option<BTreeSet<String>>,
}

/// The default random seed: fixed, so test runs are reproducible.
pub(crate) const DEFAULT_SEED: u64 = 0x5745_4952_5345_4544;

impl Default for SimHost {
    fn default() -> Self {
        Self {
            min_log_level: Level::Trace,
            logs: Vec::new(),
            counters: BTreeMap::new(),
            gauges: BTreeMap::new(),
            histograms: BTreeMap::new(),
            kv: BTreeMap::new(),
            kv_last_version: 0,
            clock: Clock::Real {
                origin: Instant::now(),
                offset: Duration::ZERO,
            },
            rng_state: DEFAULT_SEED,
            mocks: HashMap::new(),
            callouts: Vec::new(),
            clusters: None,
        }
    }
}

impl SimHost {
    pub fn unix_ns(&self) -> u128 {
        match &self.clock {
            Clock::Real { offset, .. } => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                (now + *offset).as_nanos()
            }
            Clock::Frozen { unix_ns, .. } => *unix_ns,
        }
    }

    pub fn mono_ns(&self) -> u128 {
        match &self.clock {
            Clock::Real { origin, offset } => (origin.elapsed() + *offset).as_nanos(),
            Clock::Frozen { mono_ns, .. } => *mono_ns,
        }
    }

    /// The live (unexpired) slot under `key`; drops an expired one.
    fn live(&mut self, key: &str) -> Option<&mut KvSlot> {
        let now = self.unix_ns();
        if self
            .kv
            .get(key)
            .is_some_and(|s| s.expires_at_ns.is_some_and(|t| t <= now))
        {
            self.kv.remove(key);
        }
        self.kv.get_mut(key)
    }

    fn write(&mut self, key: &str, value: Vec<u8>, ttl_ms: Option<u64>) -> u64 {
        self.kv_last_version += 1;
        let version = self.kv_last_version;
        let expires_at_ns = ttl_ms.map(|ms| self.unix_ns() + u128::from(ms) * 1_000_000);
        self.kv.insert(
            key.to_string(),
            KvSlot {
                entry: Entry { value, version },
                expires_at_ns,
            },
        );
        version
    }

    /// Live entries, for inspection.
    pub fn kv_snapshot(&mut self) -> BTreeMap<String, Entry> {
        let keys: Vec<String> = self.kv.keys().cloned().collect();
        keys.iter()
            .filter_map(|k| self.live(k).map(|s| (k.clone(), s.entry.clone())))
            .collect()
    }

    fn next_random(&mut self) -> u64 {
        // SplitMix64: tiny, fast, and good enough for tests.
        self.rng_state = self.rng_state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng_state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

thread_local! {
    static HOST: RefCell<SimHost> = RefCell::new(SimHost::default());
}

/// Run `f` on this thread's simulated host.
pub(crate) fn with_host<T>(f: impl FnOnce(&mut SimHost) -> T) -> T {
    HOST.with(|h| f(&mut h.borrow_mut()))
}

pub(crate) fn check_cluster(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty cluster name".to_string());
    }
    with_host(|h| match &h.clusters {
        Some(known) if !known.contains(name) => Err(format!("unknown cluster `{name}`")),
        _ => Ok(()),
    })
}

pub(crate) fn log(level: Level, message: &str) {
    with_host(|h| {
        if level >= h.min_log_level {
            // Shown by `cargo test` for failing tests (and with `--nocapture`).
            eprintln!("[filter {level:?}] {message}");
            h.logs.push((level, message.to_string()));
        }
    })
}

pub(crate) fn log_enabled(level: Level) -> bool {
    with_host(|h| level >= h.min_log_level)
}

pub(crate) fn counter_add(name: &str, labels: &[(String, String)], delta: u64) {
    with_host(|h| {
        let c = h.counters.entry(metric_key(name, labels)).or_default();
        *c = c.saturating_add(delta);
    })
}

pub(crate) fn gauge_set(name: &str, labels: &[(String, String)], value: i64) {
    with_host(|h| {
        h.gauges.insert(metric_key(name, labels), value);
    })
}

pub(crate) fn histogram_record(name: &str, labels: &[(String, String)], value: f64) {
    with_host(|h| {
        h.histograms
            .entry(metric_key(name, labels))
            .or_default()
            .push(value)
    })
}

pub(crate) fn kv_get(key: &str) -> Option<Entry> {
    with_host(|h| h.live(key).map(|s| s.entry.clone()))
}

pub(crate) fn kv_set(key: &str, value: &[u8], ttl_ms: Option<u64>) -> u64 {
    with_host(|h| h.write(key, value.to_vec(), ttl_ms))
}

pub(crate) fn kv_compare_and_swap(
    key: &str,
    expected: Option<u64>,
    value: &[u8],
    ttl_ms: Option<u64>,
) -> Option<u64> {
    with_host(|h| {
        let current = h.live(key).map(|s| s.entry.version);
        (current == expected).then(|| h.write(key, value.to_vec(), ttl_ms))
    })
}

pub(crate) fn kv_increment(key: &str, delta: i64, ttl_ms: Option<u64>) -> i64 {
    with_host(|h| {
        let (old, expires_at_ns) = match h.live(key) {
            // A value that is not a decimal integer counts as 0.
            Some(s) => {
                let old = std::str::from_utf8(&s.entry.value)
                    .ok()
                    .and_then(|t| t.parse::<i64>().ok())
                    .unwrap_or(0);
                (old, s.expires_at_ns)
            }
            None => (0, ttl_ms.map(|ms| h.unix_ns() + u128::from(ms) * 1_000_000)),
        };
        let new = old.saturating_add(delta);
        h.kv_last_version += 1;
        let entry = Entry {
            value: new.to_string().into_bytes(),
            version: h.kv_last_version,
        };
        h.kv.insert(
            key.to_string(),
            KvSlot {
                entry,
                expires_at_ns,
            },
        );
        new
    })
}

pub(crate) fn kv_delete(key: &str) -> bool {
    with_host(|h| h.live(key).is_some() && h.kv.remove(key).is_some())
}

fn check_outgoing(req: &OutgoingRequest) -> Result<(), CalloutError> {
    let invalid = CalloutError::InvalidRequest;
    check_token("method", &req.method).map_err(invalid)?;
    super::exchange::split_path(&req.path).map_err(invalid)?;
    for (name, value) in &req.headers {
        check_token("header name", name).map_err(invalid)?;
        check_header_value(value).map_err(invalid)?;
    }
    Ok(())
}

pub(crate) fn callout(
    cluster: &str,
    req: OutgoingRequest,
) -> Result<IncomingResponse, CalloutError> {
    check_outgoing(&req)?;
    let mock = with_host(|h| {
        h.callouts.push((cluster.to_string(), req.clone()));
        h.mocks.get(cluster).cloned()
    });
    // Call the mock outside the borrow: it may use the KV store, log, ...
    match mock {
        Some(mock) => mock(&req),
        None => Err(CalloutError::UnknownCluster(cluster.to_string())),
    }
}

pub(crate) fn now_unix_ms() -> u64 {
    with_host(|h| u64::try_from(h.unix_ns() / 1_000_000).unwrap_or(u64::MAX))
}

pub(crate) fn monotonic_ns() -> u64 {
    with_host(|h| u64::try_from(h.mono_ns()).unwrap_or(u64::MAX))
}

pub(crate) fn random_u64() -> u64 {
    with_host(|h| h.next_random())
}
