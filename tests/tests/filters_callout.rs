//! Async callouts from a filter to an in-test server: the answer, the error
//! path, and 1,000 exchanges paused on callouts at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;
use weir_tests::artifacts::CALLOUT;
use weir_tests::{client, proxy, server};

fn config(callout_cluster: &str, timeout_ms: u64) -> String {
    format!(
        r#"
wasm: {{ max_instances_per_filter: 1024 }}
clusters:
  - {{ name: app, endpoints: ["{{{{app}}}}"] }}
  - {{ name: auth, endpoints: ["{{{{auth}}}}"] }}
filters:
  - name: call
    module: "{{{{call}}}}"
    config: {{ cluster: {callout_cluster}, path: /check, forward_headers: [authorization], timeout_ms: {timeout_ms} }}
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
      - forward: {{ cluster: app }}
"#
    )
}

async fn app() -> server::Listening {
    server::http1()
        .fallback(|_req| async { server::text(200, "app") })
        .run()
        .await
}

#[tokio::test]
async fn a_callout_answer_reaches_the_filter() {
    let app = app().await;
    let auth = server::http1()
        .route("/check", |req| async move {
            let token = req
                .headers()
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            server::text(202, &format!("checked {token}"))
        })
        .run()
        .await;
    let proxy = proxy::new()
        .config(config("auth", 5000))
        .upstream("app", &app)
        .upstream("auth", &auth)
        .filter_module("call", CALLOUT)
        .run()
        .await;

    let response = client::http1()
        .get_with(&proxy.url("/"), &[("authorization", "Bearer t")])
        .await;

    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "app");
    assert_eq!(response.header("x-callout-status"), Some("202"));
    assert_eq!(response.header("x-callout-body"), Some("checked Bearer t"));
    assert_eq!(auth.requests(), 1);
}

#[tokio::test]
async fn a_callout_to_an_unknown_cluster_takes_the_filters_error_path() {
    let app = app().await;
    let auth = app_like_auth().await;
    let proxy = proxy::new()
        .config(config("nowhere", 5000))
        .upstream("app", &app)
        .upstream("auth", &auth)
        .filter_module("call", CALLOUT)
        .run()
        .await;

    let response = client::http1().get(&proxy.url("/")).await;

    assert_eq!(response.status, 200);
    let error = response.header("x-callout-error").expect("an error header");
    assert!(error.contains("nowhere"), "{error}");
    assert_eq!(response.header("x-callout-status"), None);
}

async fn app_like_auth() -> server::Listening {
    server::http1()
        .fallback(|_req| async { server::text(200, "auth") })
        .run()
        .await
}

// 1,000 exchanges, each holding a filter instance suspended in a callout,
// with every callout answer held back until all 1,000 have arrived: nothing
// completes unless no worker thread is blocked and the instance pool scales.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_exchanges_paused_on_callouts_all_complete() {
    const N: usize = 1000;
    let arrived = Arc::new(AtomicUsize::new(0));
    let all_here = Arc::new(Notify::new());
    let auth = {
        let arrived = arrived.clone();
        let all_here = all_here.clone();
        server::http1()
            .route("/check", move |_req| {
                let arrived = arrived.clone();
                let all_here = all_here.clone();
                async move {
                    // Hold every answer until all N callouts are in flight.
                    let notified = all_here.notified();
                    if arrived.fetch_add(1, Ordering::SeqCst) + 1 == N {
                        all_here.notify_waiters();
                    } else {
                        notified.await;
                    }
                    server::text(200, "ok")
                }
            })
            .run()
            .await
    };
    let app = app().await;
    let proxy = proxy::new()
        .config(config("auth", 60_000))
        .upstream("app", &app)
        .upstream("auth", &auth)
        .filter_module("call", CALLOUT)
        .run()
        .await;

    let tasks: Vec<_> = (0..N)
        .map(|_| {
            let url = proxy.url("/");
            tokio::spawn(async move { client::http1().get(&url).await })
        })
        .collect();
    for task in tasks {
        let response = task.await.unwrap();
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.header("x-callout-status"), Some("200"));
    }
    assert_eq!(arrived.load(Ordering::SeqCst), N);
}
