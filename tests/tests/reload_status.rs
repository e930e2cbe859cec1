//! `GetStatus` through the real control API of a managed proxy: per-filter
//! counters (exchanges, traps, other failures) of the running version, and
//! how the compiled-module cache served the filters (a warm restart
//! compiles nothing).

use bytes::Bytes;
use weir_proxy::control::{FilterCounters, ModuleSource, Status};
use weir_tests::artifacts::TRAP;
use weir_tests::client;
use weir_tests::managed::{Managed, managed_config, with_custom_section};

fn config() -> String {
    let filters = format!("  - name: trap\n    module: {TRAP}\n    config: {{}}\n");
    managed_config(&filters, None)
}

fn trap_counters(status: &Status) -> FilterCounters {
    let filter = status
        .filters
        .iter()
        .find(|f| f.name == "trap")
        .expect("the trap filter is listed");
    filter.counters
}

#[tokio::test]
async fn status_counts_exchanges_traps_and_failures_of_the_running_version() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = Managed::start(dir.path(), &config(), Some(dir.path().join("cache"))).await;
    let control = proxy.serve_control_on_loopback().await;
    let mut api = control.client(None).await;

    let status = api.status().await.unwrap();
    assert_eq!(trap_counters(&status), FilterCounters::default());

    let http = client::http1();
    for _ in 0..5 {
        let response = http.get(&format!("{}/fine", proxy.base)).await;
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.header("x-trap"), Some("passed"));
    }
    let trapped = http.get(&format!("{}/trap/panic", proxy.base)).await;
    assert!(
        trapped.status.is_server_error(),
        "a trap fails closed: {}",
        trapped.status
    );
    let failed = http.get(&format!("{}/trap/error", proxy.base)).await;
    assert!(
        failed.status.is_server_error(),
        "an error fails closed: {}",
        failed.status
    );

    let status = api.status().await.unwrap();
    assert_eq!(
        trap_counters(&status),
        FilterCounters {
            calls: 7,
            traps: 1,
            failures: 1,
        }
    );
    // `weir filter list` shows the same counters.
    let listed = api.list_filters().await.unwrap();
    assert_eq!(listed[0].counters, trap_counters(&status));

    // A new version starts from zero.
    let v2 = with_custom_section(&std::fs::read(TRAP).unwrap(), "2");
    api.reload_filter("trap".into(), Some(ModuleSource::Bytes(Bytes::from(v2))))
        .await
        .expect("reload");
    let status = api.status().await.unwrap();
    assert_eq!(trap_counters(&status), FilterCounters::default());
    for _ in 0..2 {
        http.get(&format!("{}/fine", proxy.base)).await;
    }
    let status = api.status().await.unwrap();
    assert_eq!(trap_counters(&status).calls, 2);
    assert_eq!(trap_counters(&status).traps, 0);
}

#[tokio::test]
async fn status_shows_a_warm_restart_loading_from_the_module_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");

    let cold = Managed::start(dir.path(), &config(), Some(cache.clone())).await;
    let control = cold.serve_control_on_loopback().await;
    let status = control.client(None).await.status().await.unwrap();
    assert_eq!(
        (status.module_cache.compiled, status.module_cache.cached),
        (1, 0),
        "a cold cache compiles"
    );
    drop(control);
    cold.manager.server().shutdown().await;
    drop(cold);

    // A new process-wide runtime (what a restart gets), same cache dir.
    let warm = Managed::start(dir.path(), &config(), Some(cache)).await;
    let control = warm.serve_control_on_loopback().await;
    let status = control.client(None).await.status().await.unwrap();
    assert_eq!(status.module_cache.compiled, 0, "{:?}", status.module_cache);
    assert!(status.module_cache.cached > 0, "{:?}", status.module_cache);
    let response = client::http1().get(&format!("{}/fine", warm.base)).await;
    assert_eq!(response.header("x-trap"), Some("passed"));
}
