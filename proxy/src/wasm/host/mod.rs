//! The host side of a filter's imports, and the per-instance store data
//! they work on.
//!
//! Each instance has its own `Store<HostState>`. For a phase call the
//! exchange data the phase needs ([`ExchangeData`]) is moved into the store,
//! the guest reads and changes it through the `http` resources, and the host
//! moves it back out after the call.

pub(crate) mod callout;
pub(crate) mod clock;
pub(crate) mod http;
pub(crate) mod kv;
pub(crate) mod log;
pub(crate) mod metrics;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::phases::ExchangeCtx;
use crate::wasm::bindings::weir::filter::types;
use crate::wasm::runtime::RuntimeShared;
use callout::CalloutClient;

/// Which phase a call is in; some request methods only make sense in some.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Phase {
    /// `configure`, or between calls.
    #[default]
    Idle,
    /// `on-request-headers`: the only phase that may choose the cluster.
    RequestHeaders,
    /// `on-request-body`.
    RequestBody,
    /// `on-response-headers`.
    ResponseHeaders,
    /// `on-response-body`.
    ResponseBody,
    /// `on-done`.
    Done,
}

impl Phase {
    /// The name used in logs and metrics.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Phase::Idle => "configure",
            Phase::RequestHeaders => "request_headers",
            Phase::RequestBody => "request_body",
            Phase::ResponseHeaders => "response_headers",
            Phase::ResponseBody => "response_body",
            Phase::Done => "done",
        }
    }
}

/// The parts of [`ExchangeCtx`] a filter can see or change.
#[derive(Debug, Default, Clone)]
pub(crate) struct CtxData {
    pub(crate) request_id: String,
    pub(crate) peer: Option<SocketAddr>,
    pub(crate) scheme: &'static str,
    pub(crate) peer_identity: Option<String>,
    pub(crate) cluster: Option<String>,
    pub(crate) cluster_overridden: bool,
    pub(crate) reroute: bool,
    pub(crate) properties: HashMap<String, String>,
}

impl CtxData {
    /// Move the filter-visible parts out of `ctx` (small strings are cloned,
    /// the property map is moved). Give them back with [`CtxData::restore`].
    pub(crate) fn take(ctx: &mut ExchangeCtx) -> Self {
        CtxData {
            request_id: ctx.request_id.clone(),
            peer: Some(ctx.peer),
            scheme: ctx.scheme,
            peer_identity: ctx.peer_identity.clone(),
            cluster: ctx.cluster.take(),
            cluster_overridden: ctx.cluster_overridden,
            reroute: ctx.reroute,
            properties: std::mem::take(&mut ctx.properties),
        }
    }

    /// Put what the filters changed back into `ctx`.
    pub(crate) fn restore(self, ctx: &mut ExchangeCtx) {
        ctx.cluster = self.cluster;
        ctx.cluster_overridden = self.cluster_overridden;
        ctx.reroute = self.reroute;
        ctx.properties = self.properties;
    }
}

/// The exchange data moved into a store for one phase call.
#[derive(Debug, Default)]
pub(crate) struct ExchangeData {
    /// The request head (live in `request-headers`, a copy in later phases).
    pub(crate) request: Option<::http::request::Parts>,
    /// The response head, in response phases.
    pub(crate) response: Option<::http::response::Parts>,
    /// The body chunk (or whole body), in body phases.
    pub(crate) body: Option<bytes::Bytes>,
    /// Context shared by the exchange's filters.
    pub(crate) ctx: CtxData,
    /// The phase being called.
    pub(crate) phase: Phase,
}

/// CPU time accounting for the current call, from the thread's CPU clock.
///
/// A call runs on a fiber; while the fiber runs it owns its thread, so the
/// thread's CPU clock advances only for the guest (and the host functions it
/// calls). The meter is paused whenever the guest gives its thread away — an
/// async host call (a callout) or a periodic yield to other tasks — and it
/// resumes on whichever thread picks the fiber up again. Time the thread
/// spends preempted on a loaded machine is not counted: a healthy filter is
/// never failed because the machine is busy. The epoch ticker only decides
/// how often the meter is looked at.
#[derive(Debug, Clone)]
pub(crate) struct CpuMeter {
    pub(crate) limit: Duration,
    /// CPU time used in segments that have ended.
    used_before: Duration,
    /// The thread CPU clock when the current segment started; `None` while
    /// the guest is not running.
    segment_start: Option<Duration>,
    /// The thread CPU clock (ns) when the guest resumed after a yield, set by
    /// the yield future (which cannot reach the store); `NOT_RESUMED` if none.
    resumed_at_ns: Arc<AtomicU64>,
}

const NOT_RESUMED: u64 = u64::MAX;

/// This thread's CPU clock.
fn thread_cpu_now() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(now.tv_sec).unwrap_or(0),
        u32::try_from(now.tv_nsec).unwrap_or(0),
    )
}

impl CpuMeter {
    fn new() -> Self {
        CpuMeter {
            limit: Duration::ZERO,
            used_before: Duration::ZERO,
            segment_start: None,
            resumed_at_ns: Arc::new(AtomicU64::new(NOT_RESUMED)),
        }
    }

    /// Start metering a call allowed `limit` of CPU time.
    pub(crate) fn start(&mut self, limit: Duration) {
        self.limit = limit;
        self.used_before = Duration::ZERO;
        self.segment_start = Some(thread_cpu_now());
        self.resumed_at_ns.store(NOT_RESUMED, Ordering::Relaxed);
    }

    /// The guest is about to give its thread away: stop counting.
    pub(crate) fn suspend(&mut self) {
        if let Some(start) = self.segment_start.take() {
            self.used_before += thread_cpu_now().saturating_sub(start);
        }
    }

    /// The guest runs again, possibly on another thread: count from here.
    pub(crate) fn resume(&mut self) {
        self.segment_start = Some(thread_cpu_now());
    }

    /// CPU time used by this call so far.
    pub(crate) fn used(&mut self) -> Duration {
        if self.segment_start.is_none() {
            let resumed = self.resumed_at_ns.swap(NOT_RESUMED, Ordering::Relaxed);
            if resumed != NOT_RESUMED {
                self.segment_start = Some(Duration::from_nanos(resumed));
            }
        }
        let running = self
            .segment_start
            .map(|start| thread_cpu_now().saturating_sub(start))
            .unwrap_or_default();
        self.used_before + running
    }

    /// CPU time left, or `None` when the limit is used up.
    pub(crate) fn remaining(&mut self) -> Option<Duration> {
        let used = self.used();
        self.limit.checked_sub(used).filter(|left| !left.is_zero())
    }

    /// Give the thread to other tasks once. The meter stops now and starts
    /// again, on the thread the guest resumes on, when the future completes
    /// (wasmtime resumes the fiber in the same poll).
    pub(crate) fn yield_now(&mut self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.suspend();
        let resumed_at_ns = Arc::clone(&self.resumed_at_ns);
        async move {
            tokio::task::yield_now().await;
            let now = u64::try_from(thread_cpu_now().as_nanos()).unwrap_or(NOT_RESUMED - 1);
            resumed_at_ns.store(now, Ordering::Relaxed);
        }
    }
}

/// Everything a filter instance's host functions can reach.
pub(crate) struct HostState {
    /// The filter's configured name (for logs and metrics).
    pub(crate) filter: Arc<str>,
    /// Process-wide KV store, metrics, clocks.
    pub(crate) shared: Arc<RuntimeShared>,
    /// Where `callout.call` goes.
    pub(crate) callouts: Arc<dyn CalloutClient>,
    /// The exchange being worked on.
    pub(crate) exchange: ExchangeData,
    /// CPU time accounting for the current call.
    pub(crate) cpu: CpuMeter,
    /// Memory and instance limits.
    pub(crate) limits: StoreLimits,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl HostState {
    /// Fresh state for a new instance of `filter`.
    pub(crate) fn new(
        filter: Arc<str>,
        shared: Arc<RuntimeShared>,
        callouts: Arc<dyn CalloutClient>,
        limits: StoreLimits,
    ) -> Self {
        let wasi = WasiCtx::builder()
            .stderr(log::GuestStderr::new(filter.clone()))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        HostState {
            filter,
            shared,
            callouts,
            exchange: ExchangeData::default(),
            cpu: CpuMeter::new(),
            limits,
            wasi,
            table: ResourceTable::new(),
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for HostState {}

#[cfg(test)]
mod cpu_meter_tests {
    use super::*;

    /// Burn CPU on this thread until its CPU clock advanced by `amount`.
    fn spin_for(amount: Duration) {
        let start = thread_cpu_now();
        let mut x = 0u64;
        while thread_cpu_now().saturating_sub(start) < amount {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }

    #[test]
    fn a_busy_call_runs_out_of_cpu() {
        let mut meter = CpuMeter::new();
        meter.start(Duration::from_millis(5));
        assert!(meter.remaining().is_some());
        spin_for(Duration::from_millis(6));
        assert_eq!(meter.remaining(), None);
    }

    #[test]
    fn time_suspended_is_not_cpu_time() {
        let mut meter = CpuMeter::new();
        meter.start(Duration::from_millis(20));
        spin_for(Duration::from_millis(2));
        meter.suspend();
        let frozen = meter.used();
        // CPU burnt by this thread for other work while the guest waits.
        spin_for(Duration::from_millis(30));
        assert_eq!(meter.used(), frozen, "a suspended meter does not move");
        meter.resume();
        assert!(
            meter.remaining().is_some(),
            "other work was not charged to the guest"
        );
    }

    #[test]
    fn sleeping_is_not_cpu_time() {
        let mut meter = CpuMeter::new();
        meter.start(Duration::from_millis(5));
        // Wall time passes (as when the machine is loaded), CPU does not.
        std::thread::sleep(Duration::from_millis(20));
        assert!(meter.remaining().is_some());
    }
}
