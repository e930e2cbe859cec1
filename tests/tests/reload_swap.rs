//! Hot swaps under load: whole runtimes swapped atomically while HTTP/1.1
//! and HTTP/2 clients keep sending; nothing fails, nothing mixes.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Barrier;
use weir_tests::artifacts::HEADER_ECHO;
use weir_tests::client::{self, Client};
use weir_tests::managed::Managed;
use weir_tests::server;

/// Two filters that both stamp `version` on the response: a response that
/// mixed two generations would carry two different values.
fn config(upstream: &str, version: &str) -> String {
    format!(
        r#"listeners:
  - name: main
    address: 127.0.0.1:0
admin:
  enabled: false
control:
  enabled: false
wasm:
  # Generous: debug builds on a busy CI machine; this test is not about CPU limits.
  default_limits: {{ cpu_per_call: 2s }}
filters:
  - name: a
    module: {HEADER_ECHO}
    config: {{ response_headers: {{ x-ver-a: "{version}" }} }}
  - name: b
    module: {HEADER_ECHO}
    config: {{ response_headers: {{ x-ver-b: "{version}" }} }}
clusters:
  - name: app
    endpoints: ["{upstream}"]
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
      - forward: {{ cluster: app }}
"#
    )
}

/// Sends until `stop`, checking every response; returns the versions seen.
async fn load(
    client: Client,
    url: String,
    start: Arc<Barrier>,
    stop: Arc<AtomicBool>,
) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut first = true;
    loop {
        let response = client.get(&url).await;
        assert_eq!(response.status, 200, "{}", response.text());
        let a = response.header("x-ver-a").expect("filter a ran").to_owned();
        let b = response.header("x-ver-b").expect("filter b ran").to_owned();
        assert_eq!(a, b, "one response saw two generations of the chain");
        seen.insert(a);
        if first {
            first = false;
            start.wait().await;
        }
        if stop.load(Ordering::Relaxed) {
            return seen;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_swaps_under_http1_and_http2_load_drop_nothing_and_never_mix() {
    let upstream = server::auto()
        .fallback(|_| async { server::text(200, "ok") })
        .run()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let up = upstream.addr.to_string();
    let proxy = Managed::start(dir.path(), &config(&up, "v1"), None).await;

    const CLIENTS_PER_PROTOCOL: usize = 3;
    let start = Arc::new(Barrier::new(CLIENTS_PER_PROTOCOL * 2 + 1));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..CLIENTS_PER_PROTOCOL * 2 {
        // Each client has its own pool: its own keep-alive connection.
        let client = if i % 2 == 0 {
            client::http1()
        } else {
            client::http2()
        };
        tasks.push(tokio::spawn(load(
            client,
            format!("{}/load/{i}", proxy.base),
            start.clone(),
            stop.clone(),
        )));
    }
    // Every client has a response before the first swap.
    start.wait().await;

    let check = client::http1();
    for swap in 0..50 {
        let version = if swap % 2 == 0 { "v2" } else { "v1" };
        let summary = proxy
            .apply(&config(&up, version))
            .await
            .expect("swap applies");
        assert_eq!(summary.changes.len(), 2, "{summary:?}");
        // New requests use the new generation as soon as apply returns.
        let response = check.get(&format!("{}/check", proxy.base)).await;
        assert_eq!(response.header("x-ver-a"), Some(version));
        assert_eq!(response.header("x-ver-b"), Some(version));
    }
    stop.store(true, Ordering::Relaxed);

    let mut seen = BTreeSet::new();
    for task in tasks {
        seen.extend(task.await.expect("a load task failed"));
    }
    assert!(seen.contains("v1"), "{seen:?}");
    assert!(seen.iter().all(|v| v == "v1" || v == "v2"), "{seen:?}");
    // Load clients kept their connections: every request was served.
    proxy.manager.server().shutdown().await;
}
