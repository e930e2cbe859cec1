//! Semantic checks: everything serde cannot see (references between
//! sections, exclusive options, value syntax, sane limits). All problems are
//! collected, not just the first.

mod routes;
mod syntax;

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use super::engine_layout;
use super::error::{FieldPath, ValidationIssue};
use super::types::{ClusterConfig, Config, FilterLimits, LbPolicy};

/// Checks a parsed configuration; returns every problem found, each with the
/// path of the offending field. Module files are not looked at here (that is
/// part of [`load`](super::load), after relative paths are resolved).
pub fn validate(config: &Config) -> Result<(), Vec<ValidationIssue>> {
    let mut checker = Checker::new(config);
    checker.listeners_and_admin();
    checker.limits();
    checker.wasm();
    checker.filters();
    checker.clusters();
    checker.virtual_hosts();
    if checker.issues.is_empty() {
        Ok(())
    } else {
        Err(checker.issues)
    }
}

/// Smallest CPU budget a filter phase call may be given.
const MIN_CPU_PER_CALL: Duration = Duration::from_millis(1);
/// Largest `wasm.max_memory_mib`: all a wasm32 memory can address.
const MAX_MEMORY_MIB: u32 = 4096;
/// Most address space the engine's instance slots may reserve: half of
/// x86-64's 128 TiB user address space.
const MAX_ENGINE_RESERVATION: u64 = 64 << 40;
/// Allowed `wasm.max_stack_kib`. The guest stack lives inside wasmtime's
/// 2 MiB async stack, and host functions need the rest of it.
const STACK_KIB: std::ops::RangeInclusive<u32> = 64..=1024;
/// Smallest `limits.max_request_header_bytes`.
const MIN_REQUEST_HEADER_BYTES: usize = 1024;

/// Walks the configuration and collects issues.
struct Checker<'c> {
    config: &'c Config,
    root: FieldPath,
    issues: Vec<ValidationIssue>,
}

impl<'c> Checker<'c> {
    fn new(config: &'c Config) -> Self {
        Self {
            config,
            root: FieldPath::root(),
            issues: Vec::new(),
        }
    }

    fn report(&mut self, path: FieldPath, reason: impl Into<String>) {
        self.issues.push(ValidationIssue::new(path, reason));
    }

    /// Reports `path` if `problem` is Some.
    fn check(&mut self, path: FieldPath, problem: Option<String>) {
        if let Some(problem) = problem {
            self.report(path, problem);
        }
    }

    fn positive(&mut self, path: FieldPath, duration: Duration) {
        if duration.is_zero() {
            self.report(path, "must be greater than zero");
        }
    }

    /// Reports empty names and names already used by an earlier item
    /// (`what` says what they name, for the message).
    fn unique_names<'n>(
        &mut self,
        what: &str,
        names: impl IntoIterator<Item = (FieldPath, &'n str)>,
    ) {
        let mut seen: HashMap<&str, FieldPath> = HashMap::new();
        for (path, name) in names {
            if name.trim().is_empty() {
                self.report(path, format!("{what} name must not be empty"));
            } else if let Some(first) = seen.get(name) {
                let reason = format!("duplicate {what} name {name:?} (first used at {first})");
                self.report(path, reason);
            } else {
                seen.insert(name, path);
            }
        }
    }

    fn listeners_and_admin(&mut self) {
        let config = self.config;
        let listeners = self.root.key("listeners");
        if config.listeners.is_empty() {
            self.report(listeners.clone(), "at least one listener is required");
        }
        let mut bound: HashMap<SocketAddr, FieldPath> = HashMap::new();
        for (index, listener) in config.listeners.iter().enumerate() {
            if !(1..=65535).contains(&listener.backlog) {
                let path = listeners.index(index).key("backlog");
                self.report(path, "must be between 1 and 65535");
            }
            let path = listeners.index(index).key("address");
            if let Some(address) = self.socket_address(path.clone(), &listener.address) {
                if let Some(first) = bound.get(&address).filter(|_| address.port() != 0) {
                    let reason = format!("address {address} is already used by {first}");
                    self.report(path, reason);
                } else {
                    bound.insert(address, path);
                }
            }
        }
        let named = config
            .listeners
            .iter()
            .enumerate()
            .filter_map(|(index, listener)| {
                let name = listener.name.as_deref()?;
                Some((listeners.index(index).key("name"), name))
            });
        self.unique_names("listener", named);

        let admin = self.root.key("admin").key("address");
        if let Some(address) = self.socket_address(admin.clone(), &config.admin.address)
            && config.admin.enabled
            && address.port() != 0
            && let Some(listener) = bound.get(&address)
        {
            self.report(
                admin,
                format!("address {address} is already used by {listener}"),
            );
        }
    }

    fn socket_address(&mut self, path: FieldPath, address: &str) -> Option<SocketAddr> {
        let parsed = address.parse::<SocketAddr>();
        if parsed.is_err() {
            let reason = format!(
                "invalid address {address:?}: expected an IP address and port, \
                 such as 0.0.0.0:8080 or [::1]:8080"
            );
            self.report(path, reason);
        }
        parsed.ok()
    }

    fn limits(&mut self) {
        let limits = &self.config.limits;
        let path = self.root.key("limits");
        self.positive(path.key("header_read_timeout"), limits.header_read_timeout);
        self.positive(path.key("idle_timeout"), limits.idle_timeout);
        self.positive(path.key("request_timeout"), limits.request_timeout);
        if limits.max_request_header_bytes < MIN_REQUEST_HEADER_BYTES {
            let reason = format!("must be at least {MIN_REQUEST_HEADER_BYTES}");
            self.report(path.key("max_request_header_bytes"), reason);
        }
        if limits.max_request_headers < 1 {
            self.report(path.key("max_request_headers"), "must be at least 1");
        }
        if limits.http2_max_concurrent_streams < 1 {
            self.report(
                path.key("http2_max_concurrent_streams"),
                "must be at least 1",
            );
        }
    }

    fn wasm(&mut self) {
        let wasm = &self.config.wasm;
        let path = self.root.key("wasm");
        if wasm
            .cache_dir
            .as_deref()
            .is_some_and(|dir| dir.trim().is_empty())
        {
            self.report(
                path.key("cache_dir"),
                "must not be empty (leave it out for no cache)",
            );
        }
        self.engine_sizing(&path);
        self.filter_limits(path.key("default_limits"), &wasm.default_limits);
        if wasm.max_instances_per_filter < 1 {
            self.report(path.key("max_instances_per_filter"), "must be at least 1");
        }
        if !STACK_KIB.contains(&wasm.max_stack_kib) {
            let reason = format!(
                "must be from {} to {} (KiB), not {}",
                STACK_KIB.start(),
                STACK_KIB.end(),
                wasm.max_stack_kib
            );
            self.report(path.key("max_stack_kib"), reason);
        }
    }

    fn filter_limits(&mut self, path: FieldPath, limits: &FilterLimits) {
        if limits.cpu_per_call < MIN_CPU_PER_CALL {
            self.report(path.key("cpu_per_call"), "must be at least 1ms");
        }
        let engine_max = self.config.wasm.max_memory_mib;
        if limits.memory_mib < 1 {
            self.report(path.key("memory_mib"), "must be at least 1 (MiB)");
        } else if limits.memory_mib > engine_max && (1..=MAX_MEMORY_MIB).contains(&engine_max) {
            let reason = format!(
                "must be at most wasm.max_memory_mib ({engine_max} MiB), not {}; \
                 raise wasm.max_memory_mib to allow more",
                limits.memory_mib
            );
            self.report(path.key("memory_mib"), reason);
        }
    }

    /// The engine's sizing: instance slots, largest memory, and the address
    /// space they reserve together.
    fn engine_sizing(&mut self, path: &FieldPath) {
        let wasm = &self.config.wasm;
        if wasm.max_instances < 1 {
            self.report(path.key("max_instances"), "must be at least 1");
        }
        if !(1..=MAX_MEMORY_MIB).contains(&wasm.max_memory_mib) {
            let reason = format!(
                "must be from 1 to {MAX_MEMORY_MIB} (MiB), not {}",
                wasm.max_memory_mib
            );
            self.report(path.key("max_memory_mib"), reason);
            return;
        }
        let reserved = engine_layout::reservation_bytes(wasm.max_instances, wasm.max_memory_mib);
        if reserved > MAX_ENGINE_RESERVATION {
            let reason = format!(
                "{} instance slots with up to {} MiB of memory each would reserve {:.1} TiB \
                 of address space, more than the {} TiB allowed; lower wasm.max_instances \
                 or wasm.max_memory_mib",
                wasm.max_instances,
                wasm.max_memory_mib,
                reserved as f64 / (1u64 << 40) as f64,
                MAX_ENGINE_RESERVATION >> 40
            );
            self.report(path.key("max_instances"), reason);
        }
    }

    fn filters(&mut self) {
        let filters = self.root.key("filters");
        for (index, filter) in self.config.filters.iter().enumerate() {
            let path = filters.index(index);
            if filter.module.trim().is_empty() {
                self.report(path.key("module"), "must name a .wasm component file");
            }
            if let Some(limits) = &filter.limits {
                self.filter_limits(path.key("limits"), limits);
            }
        }
        let names = self.config.filters.iter().enumerate();
        let names =
            names.map(|(index, filter)| (filters.index(index).key("name"), filter.name.as_str()));
        self.unique_names("filter", names);
    }

    fn clusters(&mut self) {
        let clusters = self.root.key("clusters");
        for (index, cluster) in self.config.clusters.iter().enumerate() {
            self.cluster(clusters.index(index), cluster);
        }
        let names = self.config.clusters.iter().enumerate();
        let names = names
            .map(|(index, cluster)| (clusters.index(index).key("name"), cluster.name.as_str()));
        self.unique_names("cluster", names);
    }

    fn cluster(&mut self, path: FieldPath, cluster: &ClusterConfig) {
        if cluster.endpoints.is_empty() {
            self.report(
                path.key("endpoints"),
                "at least one endpoint (host:port) is required",
            );
        }
        for (index, endpoint) in cluster.endpoints.iter().enumerate() {
            self.check(
                path.key("endpoints").index(index),
                syntax::endpoint_problem(endpoint),
            );
        }
        match (&cluster.hash_header, cluster.lb_policy) {
            (None, LbPolicy::RingHash) => {
                self.report(path.key("lb_policy"), "`ring_hash` requires `hash_header`");
            }
            (Some(_), policy) if policy != LbPolicy::RingHash => {
                let reason = "`hash_header` is only used by `lb_policy: ring_hash`";
                self.report(path.key("hash_header"), reason);
            }
            (Some(header), _) => {
                self.check(path.key("hash_header"), syntax::header_name_problem(header));
            }
            (None, _) => {}
        }
        self.positive(path.key("connect_timeout"), cluster.connect_timeout);
        self.positive(path.key("dns_refresh"), cluster.dns_refresh);
        self.positive(path.key("pool_idle_timeout"), cluster.pool_idle_timeout);
    }

    /// Names of the defined clusters, for "unknown cluster" messages.
    fn cluster_names(&self) -> BTreeSet<&'c str> {
        self.config
            .clusters
            .iter()
            .map(|cluster| cluster.name.as_str())
            .collect()
    }
}
