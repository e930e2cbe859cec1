//! The host side of a filter's imports, and the per-instance store data
//! they work on.
//!
//! Each instance has its own `Store<HostState>`. For a phase call the
//! exchange data the phase needs ([`ExchangeData`]) is moved into the store,
//! the guest reads and changes it through the `http` resources, and the host
//! moves it back out after the call.

pub(crate) mod callout;
pub(crate) mod clock;
mod cpu_meter;
pub(crate) mod http;
pub(crate) mod kv;
pub(crate) mod log;
mod memory_cap;
pub(crate) mod metrics;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::phases::ExchangeCtx;
use crate::wasm::bindings::weir::filter::types;
use crate::wasm::runtime::RuntimeShared;
use callout::CalloutClient;
pub(crate) use cpu_meter::CpuMeter;
pub(crate) use memory_cap::{MemoryCap, MemoryLimitExceeded};

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
    pub(crate) request_id: crate::proxy::headers::RequestId,
    pub(crate) peer: Option<SocketAddr>,
    pub(crate) scheme: &'static str,
    pub(crate) peer_identity: Option<String>,
    pub(crate) cluster: Option<Arc<str>>,
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

/// Everything a filter instance's host functions can reach.
pub(crate) struct HostState {
    /// The filter's configured name (for logs and metrics).
    pub(crate) filter: Arc<str>,
    /// Process-wide KV store, metrics, clocks.
    pub(crate) shared: Arc<RuntimeShared>,
    /// Where `callout.call` goes.
    pub(crate) callouts: Arc<dyn CalloutClient>,
    /// The exchange being worked on (boxed: a call swaps it in and out).
    pub(crate) exchange: Box<ExchangeData>,
    /// CPU time accounting for the current call.
    pub(crate) cpu: CpuMeter,
    /// Memory and instance limits.
    pub(crate) limits: MemoryCap,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl HostState {
    /// Fresh state for a new instance of `filter`.
    pub(crate) fn new(
        filter: Arc<str>,
        shared: Arc<RuntimeShared>,
        callouts: Arc<dyn CalloutClient>,
        limits: MemoryCap,
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
            exchange: Box::default(),
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
