//! `execution: inline` filters run on the worker thread without a fiber.
//! They change requests and responses like yielding filters, may write to
//! stderr, and are still bounded: a loop ends at the CPU deadline, a trap
//! fails the one request, a WASI wait fails the call instead of blocking
//! the thread, and a component that imports `callout` is refused at load.

use std::sync::{Arc, Mutex};

use weir_proxy::wasm::{FailureReport, FailureSink, RuntimeOptions, WasmRuntime};
use weir_tests::artifacts::{CALLOUT, HEADER_ECHO, INFINITE_LOOP, TRAP};
use weir_tests::one_filter::{
    assert_failed as assert_filter_failed, assert_still_serves as still_serves, config,
    proxy as proxy_for,
};
use weir_tests::{client, proxy, server};

/// Failure reports of a runtime, as its operator's event stream gets them.
#[derive(Default)]
struct Reports(Mutex<Vec<String>>);

impl Reports {
    fn reasons(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

impl FailureSink for Reports {
    fn report(&self, report: &FailureReport) {
        self.0.lock().unwrap().push(report.reason.clone());
    }
}

#[tokio::test]
async fn an_inline_filter_changes_request_and_response_headers() {
    let upstream = server::echo().await;
    let proxy = proxy_for(
        &upstream,
        "echo",
        HEADER_ECHO,
        r#"    execution: inline
    config:
      request_headers: { x-added-by-filter: "to-upstream" }
      response_headers: { x-response-from-filter: "to-client" }"#,
    )
    .await;

    for _ in 0..3 {
        let response = client::http1().get(&proxy.url("/x")).await;
        assert_eq!(response.status, 200);
        assert_eq!(
            response.json()["headers"]["x-added-by-filter"][0],
            "to-upstream"
        );
        assert_eq!(response.header("x-response-from-filter"), Some("to-client"));
    }
}

#[tokio::test]
async fn an_inline_filter_may_write_to_stderr() {
    // wasmtime-wasi's default stderr stream is written by a task the guest
    // waits for; an inline filter cannot wait, so this needs the logging
    // stream that completes every write at once.
    let upstream = server::echo().await;
    let proxy = proxy_for(
        &upstream,
        "echo",
        HEADER_ECHO,
        r#"    execution: inline
    config: { stderr: "a line from an inline filter", response_headers: { x-after: "stderr" } }"#,
    )
    .await;

    for _ in 0..3 {
        let response = client::http1().get(&proxy.url("/x")).await;
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.header("x-after"), Some("stderr"));
    }
}

#[tokio::test]
async fn a_wasi_wait_fails_an_inline_call_but_not_a_yielding_one() {
    let upstream = server::echo().await;
    let sleeper = |execution: &str, failure_mode: &str| {
        format!(
            "    execution: {execution}\n    failure_mode: {failure_mode}\n    config: {{ sleep_ms: 5, response_headers: {{ x-slept: \"yes\" }} }}"
        )
    };

    let yielding = proxy_for(
        &upstream,
        "sleeper",
        HEADER_ECHO,
        &sleeper("yielding", "fail_closed"),
    )
    .await;
    let slept = client::http1().get(&yielding.url("/x")).await;
    assert_eq!(slept.status, 200, "{}", slept.text());
    assert_eq!(slept.header("x-slept"), Some("yes"));

    // A runtime of its own, to see its failure reports.
    let wasm = Arc::new(WasmRuntime::new(RuntimeOptions::default()).expect("the Wasm runtime"));
    let reports = Arc::new(Reports::default());
    wasm.set_failure_sink(reports.clone());
    let inline = proxy::new()
        .config(config("sleeper", &sleeper("inline", "fail_closed")))
        .upstream("app", &upstream)
        .wasm_runtime(wasm)
        .filter_module("module", HEADER_ECHO)
        .run()
        .await;
    for _ in 0..2 {
        let refused = client::http1().get(&inline.url("/x")).await;
        assert_filter_failed(&refused, "sleeper");
    }
    let reasons = reports.reasons();
    assert!(
        reasons
            .first()
            .is_some_and(|reason| reason.contains("execution: yielding")),
        "the failure says what to change: {reasons:?}"
    );

    let fail_open = proxy_for(
        &upstream,
        "sleeper",
        HEADER_ECHO,
        &sleeper("inline", "fail_open"),
    )
    .await;
    let skipped = client::http1().get(&fail_open.url("/x")).await;
    assert_eq!(skipped.status, 200, "{}", skipped.text());
    assert_eq!(skipped.header("x-slept"), None);
}

#[tokio::test]
async fn an_endless_loop_in_an_inline_filter_ends_at_its_cpu_deadline() {
    let upstream = server::echo().await;
    let proxy = proxy_for(
        &upstream,
        "looper",
        INFINITE_LOOP,
        "    execution: inline\n    limits: { cpu_per_call: 50ms }",
    )
    .await;

    let response = client::http1().get(&proxy.url("/loop")).await;

    assert_filter_failed(&response, "looper");
    assert_eq!(upstream.requests(), 0);
    still_serves(&proxy).await;
}

#[tokio::test]
async fn a_trapping_inline_filter_fails_one_request_and_the_proxy_serves_on() {
    let upstream = server::echo().await;
    let proxy = proxy_for(&upstream, "trapper", TRAP, "    execution: inline").await;
    let client = client::http1();

    // A panic writes its message to stderr, then traps.
    for path in ["/trap/panic", "/trap/unreachable", "/trap/response-panic"] {
        let response = client.get(&proxy.url(path)).await;
        assert_filter_failed(&response, "trapper");
    }
    let passed = client.get(&proxy.url("/fine")).await;
    assert_eq!(passed.header("x-trap"), Some("passed"));
    still_serves(&proxy).await;
}

#[tokio::test]
async fn a_filter_that_imports_callout_cannot_run_inline() {
    let builder = proxy::new()
        .config(config("caller", "    execution: inline"))
        .var("app", "127.0.0.1:9")
        .filter_module("module", CALLOUT);
    let err = match builder.build_runtime().await {
        Ok(_) => panic!("a callout filter loaded with `execution: inline`"),
        Err(err) => err.to_string(),
    };

    assert!(err.contains("caller"), "{err}");
    assert!(err.contains("weir:filter/callout"), "{err}");
    assert!(err.contains("execution: yielding"), "{err}");
}

#[tokio::test]
async fn one_module_runs_inline_and_yielding_side_by_side_compiled_once() {
    let upstream = server::echo().await;
    // A runtime of its own: the shared one counts every test's compiles.
    let wasm = Arc::new(WasmRuntime::new(RuntimeOptions::default()).expect("the Wasm runtime"));
    let proxy = proxy::new()
        .wasm_runtime(wasm.clone())
        .config(
            r#"
clusters:
  - { name: app, endpoints: ["{{app}}"] }
filters:
  - name: fast
    module: "{{echo}}"
    execution: inline
    config: { response_headers: { x-fast: "1" } }
  - name: slow
    module: "{{echo}}"
    config: { response_headers: { x-slow: "1" } }
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

    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("x-fast"), Some("1"));
    assert_eq!(response.header("x-slow"), Some("1"));
    let counts = wasm.compile_counts();
    assert_eq!(counts.compiled + counts.cached, 1, "{counts:?}");
}
