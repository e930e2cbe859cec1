//! What the Wasm micro-benchmarks share: the runtime as `weir run` creates
//! it, and a config whose one route runs a chain of `hello` filters
//! (`examples/hello-filter`, built from source by `build.rs`).

use std::path::PathBuf;
use std::sync::Arc;

use weir_proxy::config::{self, Config, Format};
use weir_proxy::wasm::{FilterSet, NoClusters, RuntimeOptions, WasmRuntime};
use weir_tests::artifacts;

/// The allocator the `weir` binary ships with (see `proxy/src/main.rs`), so
/// allocation costs in these figures are the binary's, not glibc's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The Wasm runtime with the proxy's default sizing (pooling allocator,
/// epoch ticker), caching compiled modules in `cache_dir` if given.
pub fn wasm_runtime(cache_dir: Option<PathBuf>) -> WasmRuntime {
    WasmRuntime::new(RuntimeOptions {
        cache_dir,
        ..RuntimeOptions::default()
    })
    .expect("the Wasm runtime")
}

/// A tokio runtime to drive the async loading and hooks on.
pub fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A config whose only route (`RouteId(0)`) runs `filters` `hello` filters
/// with `isolation` (`pooled` or `per_request`) and `execution` (`yielding` or `inline`). Filter `i` sets request
/// header `x-bench-req-<i>: 1` and response header `x-bench-resp-<i>: 1`,
/// the work of the benchmark harness's `bench-header` filter.
pub fn hello_chain(filters: usize, isolation: &str, execution: &str) -> Config {
    let module = serde_json::to_string(artifacts::HELLO_FILTER).expect("a path as a string");
    let mut yaml = String::from(
        "listeners: [{ address: \"127.0.0.1:0\" }]\nadmin: { enabled: false }\nfilters:\n",
    );
    for i in 0..filters {
        yaml.push_str(&format!(
            "  - name: hello-{i}\n    module: {module}\n    isolation: {isolation}\n    \
             execution: {execution}\n    config: {{ header: x-bench-req-{i}, value: \"1\", response_header: x-bench-resp-{i} }}\n"
        ));
    }
    yaml.push_str(
        "clusters: [{ name: app, endpoints: [\"127.0.0.1:9\"] }]\n\
         virtual_hosts: [{ name: all, domains: [\"*\"], routes: [{ forward: { cluster: app } }] }]\n",
    );
    match config::parse_str(&yaml, Format::Yaml, std::path::Path::new("bench.yaml")) {
        Ok(config) => config,
        Err(error) => panic!("the bench config does not load:\n{error}\n---\n{yaml}"),
    }
}

/// Load the filters of `config` into `rt` as a config generation does:
/// compile (or find the compiled module), instantiate and `configure`.
pub async fn load(rt: &WasmRuntime, config: &Config) -> FilterSet {
    match FilterSet::load(rt, config, Arc::new(NoClusters)).await {
        Ok(set) => set,
        Err(error) => panic!("the bench filters do not load: {error}"),
    }
}
