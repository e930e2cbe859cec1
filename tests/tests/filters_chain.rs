//! The Wasm filter chain end to end, through real sockets: header changes,
//! local replies, cluster choice and re-routing, chain order, per-route
//! changes, shared KV state and instance isolation.

use std::collections::HashSet;

use weir_tests::artifacts::{
    GUEST_STATE, HEADER_ECHO, KV_COUNTER, LOCAL_REPLY, ORDER_TAG, SET_CLUSTER,
};
use weir_tests::{client, proxy, server};

#[tokio::test]
async fn a_filter_changes_request_and_response_headers() {
    let upstream = server::echo().await;
    let proxy = proxy::new()
        .config(
            r#"
clusters:
  - { name: app, endpoints: ["{{app}}"] }
filters:
  - name: echo
    module: "{{echo}}"
    config:
      request_headers: { x-added-by-filter: "to-upstream" }
      response_headers: { x-response-from-filter: "to-client" }
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
      - forward: { cluster: app }
"#,
        )
        .upstream("app", &upstream)
        .filter_module("echo", HEADER_ECHO)
        .run()
        .await;

    let response = client::http1().get(&proxy.url("/x")).await;

    assert_eq!(response.status, 200);
    assert_eq!(
        response.json()["headers"]["x-added-by-filter"][0],
        "to-upstream"
    );
    assert_eq!(response.header("x-response-from-filter"), Some("to-client"));
}

#[tokio::test]
async fn a_local_reply_never_reaches_the_upstream() {
    let upstream = server::echo().await;
    let proxy = proxy::new()
        .config(
            r#"
clusters:
  - { name: app, endpoints: ["{{app}}"] }
filters:
  - name: reply
    module: "{{reply}}"
    config: { status: 418, body: "short and stout", headers: { x-local: "yes" } }
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
      - forward: { cluster: app }
"#,
        )
        .upstream("app", &upstream)
        .filter_module("reply", LOCAL_REPLY)
        .run()
        .await;

    for _ in 0..3 {
        let response = client::http1().get(&proxy.url("/teapot")).await;
        assert_eq!(response.status, 418);
        assert_eq!(response.text(), "short and stout");
        assert_eq!(response.header("x-local"), Some("yes"));
    }
    assert_eq!(upstream.requests(), 0);
}

const SET_CLUSTER_CONFIG: &str = r#"
clusters:
  - { name: main, endpoints: ["{{main}}"] }
  - { name: canary, endpoints: ["{{canary}}"] }
filters:
  - name: pick
    module: "{{pick}}"
    config: { header: x-cluster, path_header: x-path, clear_route_cache: true }
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
      - match: { prefix: /moved }
        direct_response: { status: 200, body: "moved route" }
      - forward: { cluster: main }
"#;

async fn named(name: &'static str) -> server::Listening {
    server::http1()
        .fallback(move |_req| async move { server::text(200, name) })
        .run()
        .await
}

#[tokio::test]
async fn a_filter_sends_the_request_to_another_cluster() {
    let main = named("main").await;
    let canary = named("canary").await;
    let proxy = proxy::new()
        .config(SET_CLUSTER_CONFIG)
        .upstream("main", &main)
        .upstream("canary", &canary)
        .filter_module("pick", SET_CLUSTER)
        .run()
        .await;
    let client = client::http1();

    let plain = client.get(&proxy.url("/x")).await;
    let moved = client
        .get_with(&proxy.url("/x"), &[("x-cluster", "canary")])
        .await;

    assert_eq!(plain.text(), "main");
    assert_eq!(plain.header("x-routed-cluster"), Some("main"));
    assert_eq!(moved.text(), "canary");
    assert_eq!(moved.header("x-routed-cluster"), Some("canary"));
    assert_eq!((main.requests(), canary.requests()), (1, 1));
}

#[tokio::test]
async fn clearing_the_route_cache_matches_the_rewritten_path_again() {
    let main = named("main").await;
    let canary = named("canary").await;
    let proxy = proxy::new()
        .config(SET_CLUSTER_CONFIG)
        .upstream("main", &main)
        .upstream("canary", &canary)
        .filter_module("pick", SET_CLUSTER)
        .run()
        .await;

    let response = client::http1()
        .get_with(&proxy.url("/x"), &[("x-path", "/moved/here")])
        .await;

    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "moved route");
    assert_eq!(main.requests(), 0);
}

#[tokio::test]
async fn request_phases_run_in_chain_order_and_response_phases_in_reverse() {
    let upstream = server::http1()
        .fallback(|req| async move {
            let seen = req
                .headers()
                .get("x-order")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            let mut response = server::text(200, &seen);
            response
                .headers_mut()
                .insert("x-order", "upstream".parse().unwrap());
            response
        })
        .run()
        .await;
    let proxy = proxy::new()
        .config(
            r#"
clusters:
  - { name: app, endpoints: ["{{app}}"] }
filters:
  - { name: a, module: "{{tag}}", config: { tag: a } }
  - { name: b, module: "{{tag}}", config: { tag: b } }
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
      - forward: { cluster: app }
"#,
        )
        .upstream("app", &upstream)
        .filter_module("tag", ORDER_TAG)
        .run()
        .await;

    let response = client::http1().get(&proxy.url("/")).await;

    assert_eq!(response.text(), "a,b", "order the upstream saw");
    assert_eq!(response.header("x-order"), Some("upstream,b,a"));
}

#[tokio::test]
async fn a_local_reply_runs_the_response_phases_of_the_filters_before_it_only() {
    // a and b run before the reply, c after it: the reply skips c's request
    // phase and the upstream, and its response goes back through b then a
    // but never through c.
    let upstream = server::echo().await;
    let proxy = proxy::new()
        .config(
            r#"
clusters:
  - { name: app, endpoints: ["{{app}}"] }
filters:
  - { name: a, module: "{{tag}}", config: { tag: a } }
  - { name: b, module: "{{tag}}", config: { tag: b } }
  - name: reply
    module: "{{reply}}"
    config: { status: 418, body: "short and stout", headers: { x-order: local } }
  - { name: c, module: "{{tag}}", config: { tag: c } }
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
      - forward: { cluster: app }
"#,
        )
        .upstream("app", &upstream)
        .filter_module("tag", ORDER_TAG)
        .var("reply", LOCAL_REPLY)
        .run()
        .await;

    for client in [client::http1(), client::http2()] {
        let response = client.get(&proxy.url("/teapot")).await;

        assert_eq!(response.status, 418);
        assert_eq!(response.text(), "short and stout");
        assert_eq!(response.header("x-order"), Some("local,b,a"));
    }
    assert_eq!(upstream.requests(), 0);
}

#[tokio::test]
async fn routes_override_disable_and_add_filters() {
    let upstream = server::echo().await;
    let proxy = proxy::new()
        .config(
            r#"
clusters:
  - { name: app, endpoints: ["{{app}}"] }
filters:
  - name: echo
    module: "{{echo}}"
    config: { response_headers: { x-echo: default } }
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
      - match: { prefix: /override }
        forward: { cluster: app }
        filters:
          - { name: echo, config: { response_headers: { x-echo: overridden } } }
      - match: { prefix: /disabled }
        forward: { cluster: app }
        filters:
          - { name: echo, disabled: true }
      - match: { prefix: /added }
        forward: { cluster: app }
        filters:
          - { name: tag, module: "{{tag}}", config: { tag: added } }
      - forward: { cluster: app }
"#,
        )
        .upstream("app", &upstream)
        .filter_module("echo", HEADER_ECHO)
        .var("tag", ORDER_TAG)
        .run()
        .await;
    let client = client::http1();

    let plain = client.get(&proxy.url("/plain")).await;
    let overridden = client.get(&proxy.url("/override")).await;
    let disabled = client.get(&proxy.url("/disabled")).await;
    let added = client.get(&proxy.url("/added")).await;

    assert_eq!(plain.header("x-echo"), Some("default"));
    assert_eq!(plain.header("x-order"), None);
    assert_eq!(overridden.header("x-echo"), Some("overridden"));
    assert_eq!(disabled.header("x-echo"), None);
    assert_eq!(added.header("x-echo"), Some("default"));
    assert_eq!(added.header("x-order"), Some("added"));
    assert_eq!(added.json()["headers"]["x-order"][0], "added");
}

#[tokio::test]
async fn the_kv_counter_is_shared_by_every_instance() {
    let upstream = named("app").await;
    let proxy = proxy::new()
        .config(
            r#"
clusters:
  - { name: app, endpoints: ["{{app}}"] }
filters:
  - name: count
    module: "{{count}}"
    config: { key: "filters_chain:kv-shared", header: x-count }
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
      - forward: { cluster: app }
"#,
        )
        .upstream("app", &upstream)
        .filter_module("count", KV_COUNTER)
        .run()
        .await;

    let first = client::http1().get(&proxy.url("/")).await;
    assert_eq!(first.header("x-count"), Some("1"));

    // Concurrent requests lease several instances; the counts still come
    // out exact: each of 2..=51 exactly once.
    let url = proxy.url("/");
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                let response = client::http1().get(&url).await;
                response.header("x-count").unwrap().parse::<u64>().unwrap()
            })
        })
        .collect();
    let mut counts = HashSet::new();
    for task in tasks {
        assert!(counts.insert(task.await.unwrap()), "a count came twice");
    }
    assert_eq!(counts, (2..=51).collect::<HashSet<u64>>());
}

fn guest_state_config(isolation: &str) -> String {
    format!(
        r#"
clusters:
  - {{ name: app, endpoints: ["{{{{app}}}}"] }}
filters:
  - {{ name: state, module: "{{{{state}}}}", isolation: {isolation} }}
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
      - forward: {{ cluster: app }}
"#
    )
}

#[tokio::test]
async fn per_request_isolation_gives_every_request_a_fresh_guest() {
    let upstream = named("app").await;
    let proxy = proxy::new()
        .config(guest_state_config("per_request"))
        .upstream("app", &upstream)
        .filter_module("state", GUEST_STATE)
        .run()
        .await;

    for _ in 0..5 {
        let response = client::http1().get(&proxy.url("/")).await;
        assert_eq!(response.header("x-guest-calls"), Some("1"));
    }
}

#[tokio::test]
async fn pooled_instances_keep_guest_state_between_requests() {
    // The counterpart of the isolation test: the guest's static counter
    // does survive when one instance serves requests one after another.
    let upstream = named("app").await;
    let proxy = proxy::new()
        .config(guest_state_config("pooled"))
        .upstream("app", &upstream)
        .filter_module("state", GUEST_STATE)
        .run()
        .await;

    let mut last = 0;
    for _ in 0..5 {
        let response = client::http1().get(&proxy.url("/")).await;
        last = response.header("x-guest-calls").unwrap().parse().unwrap();
    }
    assert!(last > 1, "a pooled instance was not reused: {last}");
}
