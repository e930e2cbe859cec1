//! The in-memory host used on native targets (unit tests with
//! [`crate::testing`]).

pub(crate) mod exchange;
pub(crate) mod host;

pub(crate) use exchange::{BodyRef, RequestRef, ResponseRef};
pub(crate) use host::{
    callout, counter_add, gauge_set, histogram_record, kv_compare_and_swap, kv_delete, kv_get,
    kv_increment, kv_set, log, log_enabled, monotonic_ns, now_unix_ms, random_u64,
};
