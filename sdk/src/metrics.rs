//! Metrics exported by the proxy, labelled with the filter's name.
//!
//! ```
//! weir_sdk::metrics::counter_add("requests_total", &[("route", "api")], 1);
//! weir_sdk::metrics::histogram_record("payload_bytes", &[], 512.0);
//! ```
//!
//! Keep label values few (no ids, no paths): every distinct combination is a
//! separate time series in the proxy.

use crate::backend;

fn owned(labels: &[(&str, &str)]) -> Vec<(String, String)> {
    labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Add `delta` to a counter.
pub fn counter_add(name: &str, labels: &[(&str, &str)], delta: u64) {
    backend::counter_add(name, &owned(labels), delta)
}

/// Add one to a counter.
pub fn counter_inc(name: &str, labels: &[(&str, &str)]) {
    counter_add(name, labels, 1)
}

/// Set a gauge.
pub fn gauge_set(name: &str, labels: &[(&str, &str)], value: i64) {
    backend::gauge_set(name, &owned(labels), value)
}

/// Record one observation in a histogram.
pub fn histogram_record(name: &str, labels: &[(&str, &str)], value: f64) {
    backend::histogram_record(name, &owned(labels), value)
}
