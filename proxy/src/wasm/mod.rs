//! The WebAssembly filter host.
//!
//! Filters are WebAssembly components implementing the `filter` world of
//! `wit/filter.wit`. One [`WasmRuntime`] per process holds the engine, the
//! epoch ticker (CPU deadlines), the KV store, the metrics and the compiled
//! modules. A [`FilterSet`] is all filters of one config generation, loaded
//! and checked up front; it is the pipeline's [`crate::phases::HooksFactory`].
//!
//! Modules, one concern each:
//! - `runtime`: engine, epoch ticker, linkers, shared state.
//! - `module`: compile (cached by content hash), contract checks, the typed
//!   `handler` functions.
//! - `instance`: configured instances, phase calls, CPU and memory limits.
//! - `inline_io`: the WASI linker of `execution: inline` filters, whose
//!   `wasi:io` never waits.
//! - `pool`: the bounded pool of reusable instances.
//! - `chain`: planning each route's chain from the config.
//! - `filter_set`: [`FilterSet`]: loading a config generation's filters.
//! - `exchange`: the per-exchange chain driver.
//! - `failure_report`: rate-limited reports of failed filter calls, to the
//!   log and a [`FailureSink`] (the control API's event stream).
//! - `body`: body phases as a body wrapper.
//! - `host`: the host side of every import (`http`, `kv`, `metrics`, `log`,
//!   `callout`, `clock`, `random`).

pub(crate) mod bindings;
mod body;
mod chain;
mod disk_cache;
mod epoch;
mod error;
mod exchange;
mod failure_report;
mod filter_set;
pub(crate) mod host;
mod inline_io;
mod instance;
#[cfg(test)]
mod load_tests;
mod module;
mod pool;
mod runtime;

pub use body::{BodyDirection, FilterBodyError};
pub use epoch::EPOCH_TICK;
pub use error::{FilterLoadError, RuntimeError};
pub use failure_report::{
    FAILURE_REPORT_INTERVAL, FailureKind, FailureReport, FailureSink, failure_mode_str,
};
pub use filter_set::{FilterSet, MAX_DELAY};
pub use host::callout::{
    CalloutClient, CalloutFailure, MAX_CALLOUT_RESPONSE_BYTES, MAX_CALLOUT_TIMEOUT, NoClusters,
};
pub use host::kv::{
    KvClock, KvEntry, KvError, KvStore, MAX_ENTRIES, MAX_KEY_BYTES, MAX_VALUE_BYTES, MonotonicClock,
};
pub use host::log::TARGET as LOG_TARGET;
pub use host::metrics::{
    FILTER_EXCHANGES, FILTER_FAILURES, FILTER_TRAPS, HISTOGRAM_BUCKETS, HOST_PREFIX,
    HistogramSnapshot, MAX_LABELS, MAX_SERIES_PER_FILTER, MetricKey, MetricsRegistry,
    MetricsSnapshot,
};
pub use instance::{ACQUIRE_WAIT, CONFIGURE_CPU, RECYCLE_AFTER_USES};
pub use module::HANDLER_EXPORT;
pub use runtime::{CompileCounts, RuntimeOptions, RuntimeShared, WasmRuntime};
