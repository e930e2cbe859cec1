//! A restart with a warm compiled-module cache loads filters without compiling.

use weir_tests::artifacts::HEADER_ECHO;
use weir_tests::client;
use weir_tests::managed::{Managed, managed_config};

fn config() -> String {
    let filters = format!(
        "  - name: stamp\n    module: {HEADER_ECHO}\n    config: {{ response_headers: {{ x-stamp: \"yes\" }} }}\n"
    );
    managed_config(&filters, None)
}

#[tokio::test]
async fn a_restart_with_a_warm_cache_skips_compilation() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");

    let cold = Managed::start(dir.path(), &config(), Some(cache.clone())).await;
    let counts = cold.manager.wasm().compile_counts();
    assert_eq!((counts.compiled, counts.cached), (1, 0));
    let response = client::http1().get(&format!("{}/", cold.base)).await;
    assert_eq!(response.header("x-stamp"), Some("yes"));
    cold.manager.server().shutdown().await;
    drop(cold);

    // A new process-wide runtime (what a restart gets), same cache dir.
    let warm = Managed::start(dir.path(), &config(), Some(cache)).await;
    let counts = warm.manager.wasm().compile_counts();
    assert_eq!((counts.compiled, counts.cached), (0, 1));
    let response = client::http1().get(&format!("{}/", warm.base)).await;
    assert_eq!(response.header("x-stamp"), Some("yes"));
}
