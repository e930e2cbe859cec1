//! The metrics registry behind the `metrics` interface, and the host's own
//! per-filter metrics (failures).
//!
//! Series are keyed by filter name + metric name + sorted labels. Guest
//! metric names must be Prometheus-valid and must not start with `weir_`
//! (reserved for the host's metrics); label names likewise. Each filter may
//! create at most [`MAX_SERIES_PER_FILTER`] series, so a filter with
//! unbounded labels cannot exhaust memory. Bad input is dropped (and logged
//! at debug), never a trap: metrics must not break a request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use super::HostState;
use crate::wasm::bindings::weir::filter::metrics as wit;

/// Most series one filter may create.
pub const MAX_SERIES_PER_FILTER: usize = 2000;
/// Most labels on one series.
pub const MAX_LABELS: usize = 16;
/// Histogram bucket upper bounds (Prometheus' defaults), `+Inf` implied.
pub const HISTOGRAM_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Prefix reserved for the host's own metrics.
pub const HOST_PREFIX: &str = "weir_";
/// Host counter: exchanges that entered a chain holding the filter.
pub const FILTER_EXCHANGES: &str = "weir_filter_exchanges_total";
/// Host counter: the filter's failed calls of every kind (traps included),
/// labelled `phase` and `mode`.
pub const FILTER_FAILURES: &str = "weir_filter_failures_total";
/// Host counter: the filter's calls that trapped (a subset of
/// [`FILTER_FAILURES`]), labelled `phase`.
pub const FILTER_TRAPS: &str = "weir_filter_traps_total";

/// Identifies one series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetricKey {
    /// The filter that owns the series.
    pub filter: String,
    /// The metric name.
    pub name: String,
    /// Label pairs, sorted by name.
    pub labels: Vec<(String, String)>,
}

/// A histogram's state at snapshot time.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// Cumulative counts per bucket upper bound ([`HISTOGRAM_BUCKETS`]).
    pub buckets: Vec<(f64, u64)>,
    /// Sum of all observations.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

/// All series at one point in time, sorted by key (for the Prometheus export).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsSnapshot {
    /// Counters.
    pub counters: Vec<(MetricKey, u64)>,
    /// Gauges.
    pub gauges: Vec<(MetricKey, i64)>,
    /// Histograms.
    pub histograms: Vec<(MetricKey, HistogramSnapshot)>,
}

#[derive(Debug, Default)]
struct Histogram {
    /// Non-cumulative counts per bucket; the last is `+Inf`.
    counts: [u64; HISTOGRAM_BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

#[derive(Debug)]
enum Series {
    Counter(AtomicU64),
    Gauge(AtomicI64),
    Histogram(Mutex<Histogram>),
}

impl Series {
    fn kind(&self) -> &'static str {
        match self {
            Series::Counter(_) => "counter",
            Series::Gauge(_) => "gauge",
            Series::Histogram(_) => "histogram",
        }
    }
}

/// A counter series held for adding without a lookup (see
/// [`MetricsRegistry::counter_handle`]); a no-op when the series was refused.
#[derive(Debug, Clone)]
pub(crate) struct CounterHandle(Option<Arc<Series>>);

impl CounterHandle {
    /// Add one (a single relaxed atomic add).
    #[inline]
    pub(crate) fn increment(&self) {
        if let Some(series) = &self.0
            && let Series::Counter(value) = &**series
        {
            value.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Process-wide metrics of all filters.
#[derive(Debug, Default)]
pub struct MetricsRegistry {
    series: RwLock<HashMap<MetricKey, Arc<Series>>>,
    per_filter: Mutex<HashMap<String, usize>>,
}

fn valid_name(name: &str, colon: bool) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':'));
    first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
}

impl MetricsRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Find or create a series; `None` when refused (logged).
    fn series(
        &self,
        filter: &str,
        name: &str,
        labels: &[(String, String)],
        make: fn() -> Series,
    ) -> Option<Arc<Series>> {
        let mut sorted = labels.to_vec();
        sorted.sort();
        let key = MetricKey {
            filter: filter.to_owned(),
            name: name.to_owned(),
            labels: sorted,
        };
        if let Some(series) = self
            .series
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Some(series.clone());
        }
        let mut map = self.series.write().unwrap_or_else(|p| p.into_inner());
        if let Some(series) = map.get(&key) {
            return Some(series.clone());
        }
        let mut per_filter = self.per_filter.lock().unwrap_or_else(|p| p.into_inner());
        let count = per_filter.entry(filter.to_owned()).or_default();
        if *count >= MAX_SERIES_PER_FILTER {
            tracing::debug!(
                filter,
                metric = name,
                "metric dropped: series limit reached"
            );
            return None;
        }
        *count += 1;
        let series = Arc::new(make());
        map.insert(key, series.clone());
        Some(series)
    }

    /// Check a guest-supplied metric; `false` (logged) when unusable.
    fn guest_allowed(filter: &str, name: &str, labels: &[(String, String)]) -> bool {
        let ok = valid_name(name, true)
            && !name.starts_with(HOST_PREFIX)
            && labels.len() <= MAX_LABELS
            && labels
                .iter()
                .all(|(label, _)| valid_name(label, false) && label != "filter");
        if !ok {
            tracing::debug!(
                filter,
                metric = name,
                "metric dropped: invalid or reserved name or labels"
            );
        }
        ok
    }

    fn mismatch(filter: &str, name: &str, series: &Series, wanted: &str) {
        tracing::debug!(
            filter,
            metric = name,
            "metric dropped: it is a {}, not a {wanted}",
            series.kind()
        );
    }

    /// Add to a counter (creating it at 0).
    pub fn counter_add(&self, filter: &str, name: &str, labels: &[(String, String)], delta: u64) {
        if let Some(series) =
            self.series(filter, name, labels, || Series::Counter(AtomicU64::new(0)))
        {
            match &*series {
                Series::Counter(value) => {
                    value.fetch_add(delta, Ordering::Relaxed);
                }
                other => Self::mismatch(filter, name, other, "counter"),
            }
        }
    }

    /// Set a gauge.
    pub fn gauge_set(&self, filter: &str, name: &str, labels: &[(String, String)], value: i64) {
        if let Some(series) = self.series(filter, name, labels, || Series::Gauge(AtomicI64::new(0)))
        {
            match &*series {
                Series::Gauge(gauge) => gauge.store(value, Ordering::Relaxed),
                other => Self::mismatch(filter, name, other, "gauge"),
            }
        }
    }

    /// Record an observation in a histogram. NaN is ignored.
    pub fn histogram_record(
        &self,
        filter: &str,
        name: &str,
        labels: &[(String, String)],
        value: f64,
    ) {
        if value.is_nan() {
            return;
        }
        let make = || Series::Histogram(Mutex::new(Histogram::default()));
        if let Some(series) = self.series(filter, name, labels, make) {
            match &*series {
                Series::Histogram(hist) => {
                    let mut hist = hist.lock().unwrap_or_else(|p| p.into_inner());
                    let bucket = HISTOGRAM_BUCKETS
                        .iter()
                        .position(|&bound| value <= bound)
                        .unwrap_or(HISTOGRAM_BUCKETS.len());
                    hist.counts[bucket] += 1;
                    hist.sum += value;
                    hist.count += 1;
                }
                other => Self::mismatch(filter, name, other, "histogram"),
            }
        }
    }

    /// Count a filter failure (host metric [`FILTER_FAILURES`]).
    pub(crate) fn record_failure(&self, filter: &str, phase: &str, mode: &str) {
        let labels = [
            ("mode".to_owned(), mode.to_owned()),
            ("phase".to_owned(), phase.to_owned()),
        ];
        self.counter_add(filter, FILTER_FAILURES, &labels, 1);
    }

    /// Count a trap (host metric [`FILTER_TRAPS`]); the failure it also is
    /// goes through [`MetricsRegistry::record_failure`].
    pub(crate) fn record_trap(&self, filter: &str, phase: &str) {
        let labels = [("phase".to_owned(), phase.to_owned())];
        self.counter_add(filter, FILTER_TRAPS, &labels, 1);
    }

    /// The unlabelled counter `name` of `filter`, found (or created) once so
    /// that the request path adds to it without a lookup.
    pub(crate) fn counter_handle(&self, filter: &str, name: &str) -> CounterHandle {
        let series = self.series(filter, name, &[], || Series::Counter(AtomicU64::new(0)));
        CounterHandle(series.filter(|s| matches!(**s, Series::Counter(_))))
    }

    /// Every series, sorted by key.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let map = self.series.read().unwrap_or_else(|p| p.into_inner());
        let mut snapshot = MetricsSnapshot::default();
        for (key, series) in map.iter() {
            match &**series {
                Series::Counter(value) => snapshot
                    .counters
                    .push((key.clone(), value.load(Ordering::Relaxed))),
                Series::Gauge(value) => snapshot
                    .gauges
                    .push((key.clone(), value.load(Ordering::Relaxed))),
                Series::Histogram(hist) => {
                    let hist = hist.lock().unwrap_or_else(|p| p.into_inner());
                    let mut cumulative = 0;
                    let mut buckets = Vec::with_capacity(HISTOGRAM_BUCKETS.len() + 1);
                    for (i, count) in hist.counts.iter().enumerate() {
                        cumulative += count;
                        buckets.push((
                            HISTOGRAM_BUCKETS.get(i).copied().unwrap_or(f64::INFINITY),
                            cumulative,
                        ));
                    }
                    snapshot.histograms.push((
                        key.clone(),
                        HistogramSnapshot {
                            buckets,
                            sum: hist.sum,
                            count: hist.count,
                        },
                    ));
                }
            }
        }
        snapshot.counters.sort_by(|a, b| a.0.cmp(&b.0));
        snapshot.gauges.sort_by(|a, b| a.0.cmp(&b.0));
        snapshot.histograms.sort_by(|a, b| a.0.cmp(&b.0));
        snapshot
    }
}

impl wit::Host for HostState {
    fn counter_add(
        &mut self,
        name: String,
        labels: wit::Labels,
        delta: u64,
    ) -> wasmtime::Result<()> {
        if MetricsRegistry::guest_allowed(&self.filter, &name, &labels) {
            self.shared
                .metrics
                .counter_add(&self.filter, &name, &labels, delta);
        }
        Ok(())
    }

    fn gauge_set(&mut self, name: String, labels: wit::Labels, value: i64) -> wasmtime::Result<()> {
        if MetricsRegistry::guest_allowed(&self.filter, &name, &labels) {
            self.shared
                .metrics
                .gauge_set(&self.filter, &name, &labels, value);
        }
        Ok(())
    }

    fn histogram_record(
        &mut self,
        name: String,
        labels: wit::Labels,
        value: f64,
    ) -> wasmtime::Result<()> {
        if MetricsRegistry::guest_allowed(&self.filter, &name, &labels) {
            self.shared
                .metrics
                .histogram_record(&self.filter, &name, &labels, value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn counters_add_per_label_set_regardless_of_label_order() {
        let reg = MetricsRegistry::new();
        reg.counter_add("f", "hits", &labels(&[("a", "1"), ("b", "2")]), 2);
        reg.counter_add("f", "hits", &labels(&[("b", "2"), ("a", "1")]), 3);
        reg.counter_add("f", "hits", &labels(&[("a", "other")]), 1);
        reg.counter_add("g", "hits", &[], 7);
        let snap = reg.snapshot();
        let values: Vec<_> = snap
            .counters
            .iter()
            .map(|(k, v)| (k.filter.as_str(), k.labels.len(), *v))
            .collect();
        assert_eq!(values, vec![("f", 2, 5), ("f", 1, 1), ("g", 0, 7)]);
    }

    #[test]
    fn gauges_keep_the_last_value() {
        let reg = MetricsRegistry::new();
        reg.gauge_set("f", "queue", &[], 10);
        reg.gauge_set("f", "queue", &[], -3);
        assert_eq!(reg.snapshot().gauges[0].1, -3);
    }

    #[test]
    fn histograms_are_cumulative() {
        let reg = MetricsRegistry::new();
        for v in [0.001, 0.02, 0.02, 3.0, 100.0, f64::NAN] {
            reg.histogram_record("f", "latency", &[], v);
        }
        let (_, hist) = &reg.snapshot().histograms[0];
        assert_eq!(hist.count, 5, "NaN ignored");
        assert!((hist.sum - 103.041).abs() < 1e-9);
        let at = |bound: f64| hist.buckets.iter().find(|(b, _)| *b == bound).unwrap().1;
        assert_eq!(at(0.005), 1);
        assert_eq!(at(0.025), 3);
        assert_eq!(at(5.0), 4);
        assert_eq!(at(f64::INFINITY), 5);
    }

    #[test]
    fn a_name_keeps_its_first_kind() {
        let reg = MetricsRegistry::new();
        reg.counter_add("f", "m", &[], 1);
        reg.gauge_set("f", "m", &[], 9);
        let snap = reg.snapshot();
        assert_eq!(snap.counters.len(), 1);
        assert!(snap.gauges.is_empty());
    }

    #[test]
    fn guest_names_are_validated() {
        assert!(MetricsRegistry::guest_allowed(
            "f",
            "requests_total",
            &labels(&[("code", "200")])
        ));
        assert!(MetricsRegistry::guest_allowed("f", "ns:requests", &[]));
        assert!(!MetricsRegistry::guest_allowed("f", "9lives", &[]));
        assert!(!MetricsRegistry::guest_allowed("f", "has space", &[]));
        assert!(
            !MetricsRegistry::guest_allowed("f", "weir_filter_failures_total", &[]),
            "reserved prefix"
        );
        assert!(!MetricsRegistry::guest_allowed(
            "f",
            "ok",
            &labels(&[("bad-label", "x")])
        ));
        assert!(
            !MetricsRegistry::guest_allowed("f", "ok", &labels(&[("filter", "x")])),
            "reserved label"
        );
    }

    #[test]
    fn series_per_filter_are_capped() {
        let reg = MetricsRegistry::new();
        for i in 0..MAX_SERIES_PER_FILTER + 10 {
            reg.counter_add("greedy", "c", &labels(&[("id", &i.to_string())]), 1);
        }
        reg.counter_add("modest", "c", &[], 1);
        let snap = reg.snapshot();
        assert_eq!(
            snap.counters
                .iter()
                .filter(|(k, _)| k.filter == "greedy")
                .count(),
            MAX_SERIES_PER_FILTER
        );
        assert_eq!(
            snap.counters
                .iter()
                .filter(|(k, _)| k.filter == "modest")
                .count(),
            1
        );
    }

    #[test]
    fn failures_are_counted_as_host_metrics() {
        let reg = MetricsRegistry::new();
        reg.record_failure("auth", "request_headers", "fail_open");
        reg.record_failure("auth", "request_headers", "fail_open");
        let snap = reg.snapshot();
        assert_eq!(snap.counters[0].0.name, "weir_filter_failures_total");
        assert_eq!(snap.counters[0].1, 2);
    }

    #[test]
    fn a_counter_handle_adds_to_the_registered_series() {
        let reg = MetricsRegistry::new();
        let handle = reg.counter_handle("auth", FILTER_EXCHANGES);
        handle.increment();
        handle.clone().increment();
        // The same series as a lookup by name finds.
        reg.counter_add("auth", FILTER_EXCHANGES, &[], 1);
        let snap = reg.snapshot();
        assert_eq!(snap.counters.len(), 1);
        assert_eq!(snap.counters[0].0.name, FILTER_EXCHANGES);
        assert_eq!(snap.counters[0].1, 3);

        // A name already used by another kind of series: a no-op handle.
        reg.gauge_set("auth", "g", &[], 1);
        reg.counter_handle("auth", "g").increment();
        assert_eq!(reg.snapshot().gauges[0].1, 1);
    }
}
