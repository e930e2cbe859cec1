//! One test per validation rule: each starts from a valid configuration,
//! breaks one thing, and expects the issue at the right path. Route rules
//! are in `routes.rs`.

use std::time::Duration;

mod routes;

use super::validate;
use crate::config::ValidationIssue;
use crate::config::types::*;

const BASE: &str = r#"
listeners:
  - name: public
    address: 0.0.0.0:8080
  - address: "[::1]:8081"
filters:
  - name: auth
    module: filters/auth.wasm
  - name: headers
    module: filters/headers.wasm
clusters:
  - name: backend
    endpoints: [127.0.0.1:9000, backend.internal:9000]
  - name: canary
    endpoints: ["[::1]:9001"]
    lb_policy: ring_hash
    hash_header: x-user
virtual_hosts:
  - name: api
    domains: [api.example.com, "*.api.example.com"]
    routes:
      - name: users
        match:
          prefix: /users
          methods: [GET, PURGE]
          headers: [{name: x-env, exact: prod}, {name: x-debug, present: false}]
          query: [{name: v, regex: "^[0-9]+$"}]
        forward:
          cluster: backend
          prefix_rewrite: /v2/users
          host_rewrite: users.internal:8080
          timeout: 3s
        request_headers:
          set: {x-route: users}
          remove: [x-internal]
        response_headers:
          add: {cache-control: no-store}
        filters:
          - {name: auth, config: {scope: users}}
          - {name: headers, disabled: true}
          - {name: extra, module: filters/extra.wasm}
      - match: {regex: "^/split/.*$"}
        forward:
          weighted_clusters: [{cluster: backend, weight: 90}, {cluster: canary, weight: 10}]
  - name: fallback
    domains: ["*"]
    routes:
      - match: {path: /old}
        redirect: {path: /new, status: 308}
      - direct_response:
          status: 404
          body: not here
          headers: {content-type: text/plain}
"#;

fn base() -> Config {
    serde_yaml_ng::from_str(BASE).expect("BASE deserializes")
}

fn issues_after(change: impl FnOnce(&mut Config)) -> Vec<ValidationIssue> {
    let mut config = base();
    change(&mut config);
    validate(&config).err().unwrap_or_default()
}

/// Asserts that `change` produces an issue at `path` whose reason contains `reason`.
#[track_caller]
pub(super) fn assert_issue(change: impl FnOnce(&mut Config), path: &str, reason: &str) {
    let issues = issues_after(change);
    assert!(
        issues
            .iter()
            .any(|issue| issue.path.to_string() == path && issue.reason.contains(reason)),
        "expected `{path}: ...{reason}...`, got: {issues:#?}"
    );
}

pub(super) fn route(config: &mut Config, host: usize, route: usize) -> &mut RouteConfig {
    &mut config.virtual_hosts[host].routes[route]
}

pub(super) fn forward(config: &mut Config) -> &mut ForwardAction {
    route(config, 0, 0)
        .forward
        .as_mut()
        .expect("route 0 forwards")
}

#[test]
fn the_base_configuration_is_valid() {
    assert_eq!(validate(&base()), Ok(()));
}

#[test]
fn all_issues_are_reported_not_just_the_first() {
    let issues = issues_after(|c| {
        c.listeners.clear();
        c.clusters[0].endpoints.clear();
        c.limits.max_request_headers = 0;
    });
    assert_eq!(issues.len(), 3, "{issues:#?}");
}

#[test]
fn at_least_one_listener() {
    assert_issue(
        |c| c.listeners.clear(),
        "listeners",
        "at least one listener",
    );
}

#[test]
fn listener_addresses_are_socket_addresses() {
    assert_issue(
        |c| c.listeners[0].address = "localhost:8080".into(),
        "listeners[0].address",
        "invalid address",
    );
    assert_issue(
        |c| c.listeners[1].address = "127.0.0.1".into(),
        "listeners[1].address",
        "IP address and port",
    );
}

#[test]
fn listener_backlog_is_between_1_and_65535() {
    assert_issue(
        |c| c.listeners[0].backlog = 0,
        "listeners[0].backlog",
        "between 1 and 65535",
    );
    assert_issue(
        |c| c.listeners[1].backlog = 70_000,
        "listeners[1].backlog",
        "between 1 and 65535",
    );
    assert!(issues_after(|c| c.listeners[0].backlog = 65_535).is_empty());
}

#[test]
fn listener_addresses_are_not_bound_twice() {
    assert_issue(
        |c| c.listeners[1].address = "0.0.0.0:8080".into(),
        "listeners[1].address",
        "already used by listeners[0].address",
    );
    assert_issue(
        |c| c.admin.address = "0.0.0.0:8080".into(),
        "admin.address",
        "already used",
    );
    assert!(
        issues_after(|c| {
            c.listeners[0].address = "127.0.0.1:0".into();
            c.listeners[1].address = "127.0.0.1:0".into();
        })
        .is_empty()
    );
}

#[test]
fn admin_address_is_a_socket_address() {
    assert_issue(
        |c| c.admin.address = "admin:9901".into(),
        "admin.address",
        "invalid address",
    );
}

#[test]
fn listener_names_are_unique_and_not_empty() {
    assert_issue(
        |c| c.listeners[1].name = Some("public".into()),
        "listeners[1].name",
        "duplicate listener name \"public\"",
    );
    assert_issue(
        |c| c.listeners[1].name = Some(" ".into()),
        "listeners[1].name",
        "must not be empty",
    );
}

#[test]
fn filter_names_are_unique_and_not_empty() {
    assert_issue(
        |c| c.filters[1].name = "auth".into(),
        "filters[1].name",
        "duplicate filter name",
    );
    assert_issue(
        |c| c.filters[0].name = String::new(),
        "filters[0].name",
        "must not be empty",
    );
}

#[test]
fn filter_modules_are_not_empty() {
    assert_issue(
        |c| c.filters[0].module = String::new(),
        "filters[0].module",
        ".wasm",
    );
}

#[test]
fn cluster_names_are_unique_and_not_empty() {
    assert_issue(
        |c| c.clusters[1].name = "backend".into(),
        "clusters[1].name",
        "duplicate cluster name",
    );
    assert_issue(
        |c| c.clusters[0].name = String::new(),
        "clusters[0].name",
        "must not be empty",
    );
}

#[test]
fn virtual_host_names_are_unique_and_not_empty() {
    assert_issue(
        |c| c.virtual_hosts[1].name = "api".into(),
        "virtual_hosts[1].name",
        "duplicate virtual host name",
    );
    assert_issue(
        |c| c.virtual_hosts[1].name = String::new(),
        "virtual_hosts[1].name",
        "must not be empty",
    );
}

#[test]
fn clusters_have_valid_endpoints() {
    assert_issue(
        |c| c.clusters[0].endpoints.clear(),
        "clusters[0].endpoints",
        "at least one endpoint",
    );
    assert_issue(
        |c| c.clusters[0].endpoints[1] = "backend.internal".into(),
        "clusters[0].endpoints[1]",
        "expected host:port",
    );
    assert_issue(
        |c| c.clusters[0].endpoints[0] = "127.0.0.1:0".into(),
        "clusters[0].endpoints[0]",
        "1 to 65535",
    );
    assert_issue(
        |c| c.clusters[0].endpoints[0] = "bad_host!:80".into(),
        "clusters[0].endpoints[0]",
        "invalid endpoint",
    );
}

#[test]
fn ring_hash_requires_hash_header() {
    assert_issue(
        |c| c.clusters[1].hash_header = None,
        "clusters[1].lb_policy",
        "requires `hash_header`",
    );
    assert_issue(
        |c| c.clusters[1].lb_policy = LbPolicy::Random,
        "clusters[1].hash_header",
        "only used by",
    );
    assert_issue(
        |c| c.clusters[1].hash_header = Some("x user".into()),
        "clusters[1].hash_header",
        "invalid header name",
    );
}

#[test]
fn cluster_durations_are_positive() {
    assert_issue(
        |c| c.clusters[0].connect_timeout = Duration::ZERO,
        "clusters[0].connect_timeout",
        "greater than zero",
    );
    assert_issue(
        |c| c.clusters[0].dns_refresh = Duration::ZERO,
        "clusters[0].dns_refresh",
        "greater than zero",
    );
    assert_issue(
        |c| c.clusters[0].pool_idle_timeout = Duration::ZERO,
        "clusters[0].pool_idle_timeout",
        "greater than zero",
    );
}

#[test]
fn limit_durations_are_positive() {
    assert_issue(
        |c| c.limits.header_read_timeout = Duration::ZERO,
        "limits.header_read_timeout",
        "greater than zero",
    );
    assert_issue(
        |c| c.limits.idle_timeout = Duration::ZERO,
        "limits.idle_timeout",
        "greater than zero",
    );
    assert_issue(
        |c| c.limits.request_timeout = Duration::ZERO,
        "limits.request_timeout",
        "greater than zero",
    );
    // No drain period is a legitimate choice.
    assert!(issues_after(|c| c.limits.drain_timeout = Duration::ZERO).is_empty());
}

#[test]
fn limits_are_sane() {
    assert_issue(
        |c| c.limits.max_request_header_bytes = 1023,
        "limits.max_request_header_bytes",
        "at least 1024",
    );
    assert_issue(
        |c| c.limits.max_request_headers = 0,
        "limits.max_request_headers",
        "at least 1",
    );
    assert_issue(
        |c| c.limits.http2_max_concurrent_streams = 0,
        "limits.http2_max_concurrent_streams",
        "at least 1",
    );
    assert!(issues_after(|c| c.limits.max_request_header_bytes = 1024).is_empty());
}

#[test]
fn wasm_limits_are_sane() {
    assert_issue(
        |c| c.wasm.default_limits.memory_mib = 0,
        "wasm.default_limits.memory_mib",
        "must be at least 1 (MiB)",
    );
    assert_issue(
        |c| c.wasm.default_limits.memory_mib = 4097,
        "wasm.default_limits.memory_mib",
        "must be at most wasm.max_memory_mib (256 MiB), not 4097",
    );
    assert_issue(
        |c| c.wasm.default_limits.cpu_per_call = Duration::from_micros(999),
        "wasm.default_limits.cpu_per_call",
        "at least 1ms",
    );
    let per_filter = |c: &mut Config| {
        c.filters[1].limits = Some(FilterLimits {
            memory_mib: 5000,
            ..FilterLimits::default()
        })
    };
    assert_issue(
        per_filter,
        "filters[1].limits.memory_mib",
        "must be at most wasm.max_memory_mib (256 MiB), not 5000",
    );
    assert_issue(
        |c| c.wasm.max_instances_per_filter = 0,
        "wasm.max_instances_per_filter",
        "at least 1",
    );
    assert_issue(
        |c| c.wasm.cache_dir = Some(String::new()),
        "wasm.cache_dir",
        "must not be empty",
    );
    assert!(issues_after(|c| c.wasm.default_limits.memory_mib = 256).is_empty());
}

#[test]
fn filter_memory_stays_within_the_engines_largest_memory() {
    assert_issue(
        |c| c.wasm.default_limits.memory_mib = 257,
        "wasm.default_limits.memory_mib",
        "must be at most wasm.max_memory_mib (256 MiB), not 257",
    );
    assert_issue(
        |c| {
            c.wasm.max_memory_mib = 16;
            c.filters[0].limits = Some(FilterLimits {
                memory_mib: 17,
                ..FilterLimits::default()
            });
        },
        "filters[0].limits.memory_mib",
        "at most wasm.max_memory_mib (16 MiB), not 17",
    );
    assert!(
        issues_after(|c| {
            c.wasm.max_memory_mib = 4096;
            c.wasm.default_limits.memory_mib = 4096;
        })
        .is_empty()
    );
}

#[test]
fn the_engine_sizing_is_bounded() {
    assert_issue(
        |c| c.wasm.max_instances = 0,
        "wasm.max_instances",
        "must be at least 1",
    );
    assert_issue(
        |c| c.wasm.max_memory_mib = 0,
        "wasm.max_memory_mib",
        "must be from 1 to 4096 (MiB), not 0",
    );
    assert_issue(
        |c| c.wasm.max_memory_mib = 4097,
        "wasm.max_memory_mib",
        "must be from 1 to 4096 (MiB), not 4097",
    );
    // 65,536 slots of 4 GiB memories: 512 TiB of address space.
    assert_issue(
        |c| {
            c.wasm.max_instances = 65_536;
            c.wasm.max_memory_mib = 4096;
        },
        "wasm.max_instances",
        "would reserve 512.1 TiB of address space, more than the 64 TiB allowed",
    );
    for (instances, mib) in [(1, 1), (4096, 256), (65_536, 256), (8, 4096)] {
        assert!(
            issues_after(|c| {
                c.wasm.max_instances = instances;
                c.wasm.max_memory_mib = mib;
                c.wasm.default_limits.memory_mib = 1;
            })
            .is_empty(),
            "{instances} slots of {mib} MiB"
        );
    }
}

#[test]
fn the_stack_limit_is_within_what_the_engine_allows() {
    assert_issue(
        |c| c.wasm.max_stack_kib = 63,
        "wasm.max_stack_kib",
        "must be from 64 to 1024 (KiB), not 63",
    );
    assert_issue(
        |c| c.wasm.max_stack_kib = 1025,
        "wasm.max_stack_kib",
        "must be from 64 to 1024 (KiB), not 1025",
    );
    for kib in [64, 512, 1024] {
        assert!(issues_after(|c| c.wasm.max_stack_kib = kib).is_empty());
    }
}
