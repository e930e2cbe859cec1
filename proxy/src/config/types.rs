//! The configuration file's data model: typed, documented, strict.
//!
//! Every struct denies unknown fields, so a typo is an error rather than a
//! silently ignored setting. Durations are written as `"30s"`, `"250ms"`,
//! `"1m 30s"` (humantime). The reference in `docs/config.md` is kept in sync
//! with the doc comments here (a test checks that every field is documented).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the proxy accepts traffic. At least one.
    pub listeners: Vec<ListenerConfig>,
    /// The operator endpoint (`/ready`, `/config`). On by default at 127.0.0.1:9901.
    #[serde(default)]
    pub admin: AdminConfig,
    /// Connection and request limits applied to every listener.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Settings for the WebAssembly runtime shared by all filters.
    #[serde(default)]
    pub wasm: WasmConfig,
    /// The default filter chain, run in this order on every request
    /// (response phases in reverse). Routes may override, disable or add filters.
    #[serde(default)]
    pub filters: Vec<FilterConfig>,
    /// Virtual hosts, matched by Host / :authority. The first match wins.
    pub virtual_hosts: Vec<VirtualHostConfig>,
    /// Upstream clusters that routes and filters send requests to.
    #[serde(default)]
    pub clusters: Vec<ClusterConfig>,
    /// The control API (filters, config apply, status, events) and file
    /// watching. On by default at 127.0.0.1:9902.
    #[serde(default)]
    pub control: crate::control::ControlSettings,
}

/// One listening socket.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// A name for logs and status. Defaults to the address.
    #[serde(default)]
    pub name: Option<String>,
    /// `ip:port` to bind, e.g. `0.0.0.0:8080` or `[::1]:8080`. Port 0 picks a free port.
    pub address: String,
    /// Connections the kernel may hold for the proxy to accept (the
    /// `listen(2)` backlog; Linux caps it at `net.core.somaxconn`). 1 to
    /// 65535, default 4096: a burst of new connections waits in the queue
    /// instead of having SYNs dropped (each drop costs the client a 1 s
    /// retransmit).
    #[serde(default = "defaults::listen_backlog")]
    pub backlog: u32,
}

/// The admin listener.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// `ip:port` to bind. Keep it on loopback: it exposes the effective config.
    #[serde(default = "defaults::admin_address")]
    pub address: String,
    /// Set to false to run without an admin listener.
    #[serde(default = "defaults::yes")]
    pub enabled: bool,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            address: defaults::admin_address(),
            enabled: true,
        }
    }
}

/// Limits protecting the proxy from slow or oversized clients.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Time a client has from the first byte of a request head to its end
    /// (HTTP/1.1); then the connection is closed. Default 30s.
    #[serde(default = "defaults::header_read_timeout", with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Largest request head in bytes; larger gets 431. Default 61440 (60 KiB).
    #[serde(default = "defaults::max_request_header_bytes")]
    pub max_request_header_bytes: usize,
    /// Most request header fields; more gets 431. Default 100.
    #[serde(default = "defaults::max_request_headers")]
    pub max_request_headers: usize,
    /// Concurrent streams per HTTP/2 connection. Default 100.
    #[serde(default = "defaults::http2_max_concurrent_streams")]
    pub http2_max_concurrent_streams: u32,
    /// Close a client connection idle this long. Default 60s.
    #[serde(default = "defaults::idle_timeout", with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// On shutdown, how long in-flight requests may take to finish. Default 30s.
    #[serde(default = "defaults::drain_timeout", with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// Default per-request timeout (until the upstream's response head) when
    /// a route sets none. Default 15s.
    #[serde(default = "defaults::request_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            header_read_timeout: defaults::header_read_timeout(),
            max_request_header_bytes: defaults::max_request_header_bytes(),
            max_request_headers: defaults::max_request_headers(),
            http2_max_concurrent_streams: defaults::http2_max_concurrent_streams(),
            idle_timeout: defaults::idle_timeout(),
            drain_timeout: defaults::drain_timeout(),
            request_timeout: defaults::request_timeout(),
        }
    }
}

/// Runtime settings shared by all filters.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WasmConfig {
    /// Directory for compiled modules, keyed by content hash. None: no cache.
    #[serde(default)]
    pub cache_dir: Option<String>,
    /// Default limits for filters that set none.
    #[serde(default)]
    pub default_limits: FilterLimits,
    /// Most instances kept alive (idle or busy) per filter. Default 1024.
    /// `max_instances` caps all filters together.
    #[serde(default = "defaults::max_instances_per_filter")]
    pub max_instances_per_filter: u32,
    /// Instance slots the engine reserves for all filters together (its
    /// pooling allocator's size). Default 4096. Engine-wide; read at start,
    /// so a change needs a restart.
    #[serde(default = "defaults::max_instances")]
    pub max_instances: u32,
    /// Largest linear memory any filter may be given (`limits.memory_mib`),
    /// in MiB, 1..=4096, default 256. Every instance slot reserves this much
    /// address space (not memory), so `max_instances` × 2 × this is the
    /// engine's reservation. Engine-wide; read at start.
    #[serde(default = "defaults::max_memory_mib")]
    pub max_memory_mib: u32,
    /// Guest stack limit in KiB, 64..=1024, default 512. Engine-wide: the
    /// same for every filter; read at start, so a change needs a restart.
    #[serde(default = "defaults::max_stack_kib")]
    pub max_stack_kib: u32,
}

impl Default for WasmConfig {
    fn default() -> Self {
        Self {
            cache_dir: None,
            default_limits: FilterLimits::default(),
            max_instances_per_filter: defaults::max_instances_per_filter(),
            max_instances: defaults::max_instances(),
            max_memory_mib: defaults::max_memory_mib(),
            max_stack_kib: defaults::max_stack_kib(),
        }
    }
}

/// A filter in a chain: a Wasm component plus its configuration.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// Unique name; routes refer to the filter by it.
    pub name: String,
    /// Path to the `.wasm` component, relative to the config file's directory.
    pub module: String,
    /// Configuration handed to the filter's `configure` as JSON. Default `{}`.
    #[serde(default = "defaults::empty_object")]
    pub config: serde_json::Value,
    /// What happens when the filter traps, times out or returns an error.
    #[serde(default)]
    pub failure_mode: FailureMode,
    /// Resource limits; defaults from `wasm.default_limits`.
    #[serde(default)]
    pub limits: Option<FilterLimits>,
    /// Instance reuse: `pooled` (default) reuses an instance across requests,
    /// keeping config-time state; `per_request` gives each request a fresh
    /// instance (strict isolation, slower).
    #[serde(default)]
    pub isolation: Isolation,
    /// How calls run: `yielding` (default) on a stack of their own, giving
    /// the worker thread back every millisecond; `inline` directly on the
    /// worker thread, which is faster but holds the thread until the call
    /// returns or hits `limits.cpu_per_call`, and rules out `callout` and
    /// waiting on WASI I/O.
    #[serde(default)]
    pub execution: Execution,
}

/// How a filter's calls run.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Execution {
    /// On a stack of the call's own (a fiber): a long call gives its worker
    /// thread back to other requests every epoch tick (1 ms) and resumes;
    /// `callout` and WASI waits suspend only this call.
    #[default]
    Yielding,
    /// Directly on the worker thread: no stack switch per call (about
    /// 0.4–0.5 µs less per filter per exchange in process). A call holds its
    /// thread until it returns or its CPU deadline ends it. The component
    /// must not import `callout`, checked at load; a WASI call that would
    /// wait (a sleep, say) fails the call.
    Inline,
}

/// A filter's failure mode.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    /// Answer 503 naming the filter (the safe default for authorization).
    #[default]
    FailClosed,
    /// Skip the filter, log and count the failure, and go on.
    FailOpen,
}

/// How instances are reused between requests.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// Reuse configured instances; a trapped instance is discarded.
    #[default]
    Pooled,
    /// A fresh instance for every request.
    PerRequest,
}

/// Hard limits on one filter.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FilterLimits {
    /// CPU deadline for one phase call. Default 10ms.
    #[serde(default = "defaults::cpu_per_call", with = "humantime_serde")]
    pub cpu_per_call: Duration,
    /// Linear memory cap in MiB. Default 32.
    #[serde(default = "defaults::memory_mib")]
    pub memory_mib: u32,
    /// Largest body a filter may ask the host to buffer, in bytes. Default 1 MiB.
    #[serde(default = "defaults::max_buffered_body")]
    pub max_buffered_body: u32,
}

impl Default for FilterLimits {
    fn default() -> Self {
        Self {
            cpu_per_call: defaults::cpu_per_call(),
            memory_mib: defaults::memory_mib(),
            max_buffered_body: defaults::max_buffered_body(),
        }
    }
}

/// A virtual host.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VirtualHostConfig {
    /// A name for logs.
    pub name: String,
    /// Host names served: exact (`api.example.com`), suffix wildcard
    /// (`*.example.com`) or `*` for any. Ports in the request's host are ignored.
    pub domains: Vec<String>,
    /// Routes, tried in order; the first match wins.
    pub routes: Vec<RouteConfig>,
}

/// A route: a match and exactly one action.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// A name for logs and metrics.
    #[serde(default)]
    pub name: Option<String>,
    /// What the request must look like. Empty matches everything.
    #[serde(default, rename = "match")]
    pub matcher: RouteMatch,
    /// Action: send the request upstream.
    #[serde(default)]
    pub forward: Option<ForwardAction>,
    /// Action: answer directly with this response.
    #[serde(default)]
    pub direct_response: Option<DirectResponse>,
    /// Action: answer with a redirect.
    #[serde(default)]
    pub redirect: Option<RedirectAction>,
    /// Headers to change on the request before it goes upstream.
    #[serde(default)]
    pub request_headers: HeaderMutations,
    /// Headers to change on the response before it goes to the client.
    #[serde(default)]
    pub response_headers: HeaderMutations,
    /// Per-route filter changes: override a chain filter's config or failure
    /// mode, disable it, or add a filter (with `module`) after the chain.
    #[serde(default)]
    pub filters: Vec<RouteFilterConfig>,
}

/// Route match conditions; all given conditions must hold.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteMatch {
    /// Path must equal this.
    #[serde(default)]
    pub path: Option<String>,
    /// Path must start with this.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Path must match this regular expression (the whole path).
    #[serde(default)]
    pub regex: Option<String>,
    /// Method must be one of these. Empty: any.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Header conditions.
    #[serde(default)]
    pub headers: Vec<HeaderMatch>,
    /// Query parameter conditions.
    #[serde(default)]
    pub query: Vec<QueryMatch>,
}

/// A condition on a header: give exactly one of `exact`, `regex`, `present`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HeaderMatch {
    /// Header name (case-insensitive).
    pub name: String,
    /// Some value equals this.
    #[serde(default)]
    pub exact: Option<String>,
    /// Some value matches this regular expression (whole value).
    #[serde(default)]
    pub regex: Option<String>,
    /// true: the header is present; false: it is absent.
    #[serde(default)]
    pub present: Option<bool>,
}

/// A condition on a query parameter: give exactly one of `exact`, `regex`, `present`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QueryMatch {
    /// Parameter name (case-sensitive, after percent-decoding).
    pub name: String,
    /// Some value equals this.
    #[serde(default)]
    pub exact: Option<String>,
    /// Some value matches this regular expression (whole value).
    #[serde(default)]
    pub regex: Option<String>,
    /// true: the parameter is present; false: it is absent.
    #[serde(default)]
    pub present: Option<bool>,
}

/// Send the request to a cluster.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ForwardAction {
    /// The cluster. Give this or `weighted_clusters`.
    #[serde(default)]
    pub cluster: Option<String>,
    /// Split traffic by weight (weights need not sum to 100).
    #[serde(default)]
    pub weighted_clusters: Vec<WeightedCluster>,
    /// Replace the matched prefix (route `prefix`) with this.
    #[serde(default)]
    pub prefix_rewrite: Option<String>,
    /// Replace the Host / :authority sent upstream.
    #[serde(default)]
    pub host_rewrite: Option<String>,
    /// Time allowed until the upstream's response head. Default `limits.request_timeout`.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
}

/// One side of a weighted split.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WeightedCluster {
    /// The cluster.
    pub cluster: String,
    /// Its share, relative to the others.
    pub weight: u32,
}

/// A response the route gives itself.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DirectResponse {
    /// Status code.
    pub status: u16,
    /// Body text. Default empty.
    #[serde(default)]
    pub body: String,
    /// Response headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// A redirect. Parts not given are kept from the request.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RedirectAction {
    /// New scheme (`http` / `https`).
    #[serde(default)]
    pub scheme: Option<String>,
    /// New host (with optional port).
    #[serde(default)]
    pub host: Option<String>,
    /// New path (the query is kept unless `strip_query`).
    #[serde(default)]
    pub path: Option<String>,
    /// Drop the query string.
    #[serde(default)]
    pub strip_query: bool,
    /// 301, 302, 303, 307 or 308. Default 301.
    #[serde(default = "defaults::redirect_status")]
    pub status: u16,
}

/// Header changes, applied remove → set → add.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HeaderMutations {
    /// Append these values (keeping existing ones).
    #[serde(default)]
    pub add: BTreeMap<String, String>,
    /// Replace all values with this one.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// Remove these headers.
    #[serde(default)]
    pub remove: Vec<String>,
}

/// A per-route filter change.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteFilterConfig {
    /// The filter: one in the default chain, or a new one (then `module` is required).
    pub name: String,
    /// Skip this chain filter on this route.
    #[serde(default)]
    pub disabled: bool,
    /// For a new filter: its `.wasm` component.
    #[serde(default)]
    pub module: Option<String>,
    /// Replace the filter's configuration on this route.
    #[serde(default)]
    pub config: Option<serde_json::Value>,
    /// Replace the filter's failure mode on this route.
    #[serde(default)]
    pub failure_mode: Option<FailureMode>,
}

/// An upstream cluster.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Unique name.
    pub name: String,
    /// `host:port` endpoints. IP literals are used as-is; names are resolved
    /// asynchronously and re-resolved every `dns_refresh`.
    pub endpoints: Vec<String>,
    /// How an endpoint is picked.
    #[serde(default)]
    pub lb_policy: LbPolicy,
    /// For `ring_hash`: the request header hashed. Requests without it are spread randomly.
    #[serde(default)]
    pub hash_header: Option<String>,
    /// Protocol to the upstream.
    #[serde(default)]
    pub protocol: UpstreamProtocol,
    /// Time allowed to connect. Default 5s.
    #[serde(default = "defaults::connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// How often DNS names are re-resolved. Default 30s.
    #[serde(default = "defaults::dns_refresh", with = "humantime_serde")]
    pub dns_refresh: Duration,
    /// Close pooled connections idle this long. Default 90s.
    #[serde(default = "defaults::pool_idle_timeout", with = "humantime_serde")]
    pub pool_idle_timeout: Duration,
    /// Idle connections kept per endpoint, per worker thread. Default 1024:
    /// above the concurrency of a busy worker, so the connections a burst
    /// opened serve the next burst instead of being closed and reopened
    /// (each close leaves a `TIME_WAIT` socket and costs a connect later).
    /// Idle connections still close after `pool_idle_timeout`.
    #[serde(default = "defaults::pool_max_idle")]
    pub pool_max_idle_per_endpoint: usize,
}

/// Load-balancing policy.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LbPolicy {
    /// Each endpoint in turn.
    #[default]
    RoundRobin,
    /// The less loaded of two random endpoints (power of two choices).
    LeastRequest,
    /// Uniformly random.
    Random,
    /// Consistent hashing of `hash_header`: the same value goes to the same endpoint.
    RingHash,
}

/// Upstream protocol.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamProtocol {
    /// HTTP/1.1.
    Http1,
    /// HTTP/2 cleartext with prior knowledge (h2c).
    Http2,
    /// The client's protocol: HTTP/2 requests (e.g. gRPC) go as h2c, others as HTTP/1.1.
    #[default]
    Auto,
}

/// Default values, named so serde and the docs can share them.
pub mod defaults {
    use std::time::Duration;

    /// `true`: for booleans that default to on.
    pub fn yes() -> bool {
        true
    }
    /// 4096 connections waiting to be accepted, per listener.
    pub fn listen_backlog() -> u32 {
        4096
    }
    /// `127.0.0.1:9901`: the admin listener stays on loopback.
    pub fn admin_address() -> String {
        "127.0.0.1:9901".to_string()
    }
    /// 30 seconds to send a complete request head.
    pub fn header_read_timeout() -> Duration {
        Duration::from_secs(30)
    }
    /// 60 KiB of request head.
    pub fn max_request_header_bytes() -> usize {
        60 * 1024
    }
    /// 100 request header fields.
    pub fn max_request_headers() -> usize {
        100
    }
    /// 100 concurrent streams per HTTP/2 connection.
    pub fn http2_max_concurrent_streams() -> u32 {
        100
    }
    /// 60 seconds before an idle client connection is closed.
    pub fn idle_timeout() -> Duration {
        Duration::from_secs(60)
    }
    /// 30 seconds for in-flight requests to finish on shutdown.
    pub fn drain_timeout() -> Duration {
        Duration::from_secs(30)
    }
    /// 15 seconds until the upstream's response head.
    pub fn request_timeout() -> Duration {
        Duration::from_secs(15)
    }
    /// 1024 instances per filter.
    pub fn max_instances_per_filter() -> u32 {
        1024
    }
    /// 4096 instance slots in the engine, over all filters.
    pub fn max_instances() -> u32 {
        4096
    }
    /// 256 MiB: the largest linear memory a filter may be given.
    pub fn max_memory_mib() -> u32 {
        256
    }
    /// 512 KiB of guest stack (wasmtime's default).
    pub fn max_stack_kib() -> u32 {
        512
    }
    /// `{}`: the filter configuration when none is given.
    pub fn empty_object() -> serde_json::Value {
        serde_json::Value::Object(Default::default())
    }
    /// 10 milliseconds of CPU per filter phase call.
    pub fn cpu_per_call() -> Duration {
        Duration::from_millis(10)
    }
    /// 32 MiB of linear memory per filter instance.
    pub fn memory_mib() -> u32 {
        32
    }
    /// 1 MiB of body a filter may ask the host to buffer.
    pub fn max_buffered_body() -> u32 {
        1024 * 1024
    }
    /// 301 (Moved Permanently).
    pub fn redirect_status() -> u16 {
        301
    }
    /// 5 seconds to connect to an upstream endpoint.
    pub fn connect_timeout() -> Duration {
        Duration::from_secs(5)
    }
    /// 30 seconds between DNS re-resolutions.
    pub fn dns_refresh() -> Duration {
        Duration::from_secs(30)
    }
    /// 90 seconds before a pooled upstream connection is closed.
    pub fn pool_idle_timeout() -> Duration {
        Duration::from_secs(90)
    }
    /// 1024 idle connections kept per upstream endpoint (per worker).
    pub fn pool_max_idle() -> usize {
        1024
    }
}
