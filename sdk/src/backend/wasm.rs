//! The real host: the component's WIT imports.

use super::bindings::weir::filter::{
    callout as wit_callout, clock, http, kv, log, metrics, random, types,
};
use crate::http::{CalloutError, IncomingResponse, OutgoingRequest};
use crate::log::Level;

/// Handles are the imported resources themselves, borrowed for one call.
pub(crate) type RequestRef<'a> = &'a http::Request;
pub(crate) type ResponseRef<'a> = &'a http::Response;
pub(crate) type BodyRef<'a> = &'a http::Body;

fn level(level: Level) -> types::LogLevel {
    match level {
        Level::Trace => types::LogLevel::Trace,
        Level::Debug => types::LogLevel::Debug,
        Level::Info => types::LogLevel::Info,
        Level::Warn => types::LogLevel::Warn,
        Level::Error => types::LogLevel::Error,
    }
}

pub(crate) fn log(l: Level, message: &str) {
    log::log(level(l), message)
}

pub(crate) fn log_enabled(l: Level) -> bool {
    log::enabled(level(l))
}

pub(crate) fn counter_add(name: &str, labels: &[(String, String)], delta: u64) {
    metrics::counter_add(name, labels, delta)
}

pub(crate) fn gauge_set(name: &str, labels: &[(String, String)], value: i64) {
    metrics::gauge_set(name, labels, value)
}

pub(crate) fn histogram_record(name: &str, labels: &[(String, String)], value: f64) {
    metrics::histogram_record(name, labels, value)
}

pub(crate) fn kv_get(key: &str) -> Option<crate::kv::Entry> {
    kv::get(key).map(|e| crate::kv::Entry {
        value: e.value,
        version: e.version,
    })
}

pub(crate) fn kv_set(key: &str, value: &[u8], ttl_ms: Option<u64>) -> u64 {
    kv::set(key, value, ttl_ms)
}

pub(crate) fn kv_compare_and_swap(
    key: &str,
    expected: Option<u64>,
    value: &[u8],
    ttl_ms: Option<u64>,
) -> Option<u64> {
    kv::compare_and_swap(key, expected, value, ttl_ms)
}

pub(crate) fn kv_increment(key: &str, delta: i64, ttl_ms: Option<u64>) -> i64 {
    kv::increment(key, delta, ttl_ms)
}

pub(crate) fn kv_delete(key: &str) -> bool {
    kv::delete(key)
}

pub(crate) fn callout(
    cluster: &str,
    req: OutgoingRequest,
) -> Result<IncomingResponse, CalloutError> {
    let timeout_ms = u32::try_from(req.timeout.as_millis()).unwrap_or(u32::MAX);
    let wit_req = wit_callout::OutgoingRequest {
        method: req.method,
        path: req.path,
        headers: req.headers,
        body: req.body,
        timeout_ms,
    };
    match wit_callout::call(cluster, &wit_req) {
        Ok(r) => Ok(IncomingResponse {
            status: r.status,
            headers: r.headers,
            body: r.body,
        }),
        Err(e) => Err(match e {
            wit_callout::CalloutError::UnknownCluster(c) => CalloutError::UnknownCluster(c),
            wit_callout::CalloutError::InvalidRequest(why) => CalloutError::InvalidRequest(why),
            wit_callout::CalloutError::Timeout => CalloutError::Timeout,
            wit_callout::CalloutError::Connect(why) => CalloutError::Connect(why),
            wit_callout::CalloutError::ResponseTooLarge => CalloutError::ResponseTooLarge,
        }),
    }
}

pub(crate) fn now_unix_ms() -> u64 {
    clock::now_unix_ms()
}

pub(crate) fn monotonic_ns() -> u64 {
    clock::monotonic_ns()
}

pub(crate) fn random_u64() -> u64 {
    random::random_u64()
}
