//! Loading filter sets: the checks that need no compiled guest (those with
//! real filters live in the integration tests, which build guests from
//! source).

use std::path::Path;
use std::sync::Arc;

use crate::config::Config;
use crate::phases::HooksFactory;
use crate::routing::RouteId;
use crate::wasm::{FilterLoadError, FilterSet, NoClusters, RuntimeOptions, WasmRuntime};

fn runtime() -> WasmRuntime {
    WasmRuntime::new(RuntimeOptions {
        max_instances: 16,
        max_memory_mib: 64,
        ..Default::default()
    })
    .expect("runtime starts")
}

fn config(filters: &str) -> Config {
    let yaml = format!(
        "listeners: [{{address: '127.0.0.1:0'}}]\nfilters: {filters}\nvirtual_hosts:\n  - {{name: v, domains: ['*'], routes: [{{}}, {{}}]}}\n"
    );
    serde_yaml_ng::from_str(&yaml).expect("test config parses")
}

async fn load_module(dir: &Path, bytes: &[u8]) -> FilterLoadError {
    std::fs::write(dir.join("f.wasm"), bytes).unwrap();
    let rt = runtime();
    FilterSet::load_relative_to(
        &rt,
        &config("[{name: probe, module: f.wasm}]"),
        dir,
        Arc::new(NoClusters),
    )
    .await
    .expect_err("the module must be refused")
}

#[test]
fn the_runtime_starts_with_default_sizing_and_stops_cleanly() {
    let rt = WasmRuntime::new(RuntimeOptions::default()).expect("default pooling sizing fits");
    assert_eq!(rt.options().max_instances, 4096);
    drop(rt);
}

#[test]
fn the_configured_stack_limit_reaches_the_engine() {
    for kib in [64, 512, 1024] {
        let mut config = config("[]");
        config.wasm.max_stack_kib = kib;
        let rt = WasmRuntime::new(RuntimeOptions {
            max_instances: 16,
            max_memory_mib: 64,
            ..RuntimeOptions::from_config(&config.wasm)
        })
        .unwrap_or_else(|e| panic!("an engine with a {kib} KiB stack: {e}"));
        assert_eq!(rt.engine.get_max_wasm_stack(), kib as usize * 1024);
    }
}

#[test]
fn the_configured_engine_sizing_reaches_the_runtime() {
    let mut config = config("[]");
    config.wasm.max_instances = 8;
    config.wasm.max_memory_mib = 16;
    let rt = WasmRuntime::new(RuntimeOptions::from_config(&config.wasm))
        .expect("an engine of 8 slots of 16 MiB");
    assert_eq!(rt.options().max_instances, 8);
    assert_eq!(rt.options().max_memory_mib, 16);
}

#[tokio::test]
async fn no_filters_means_no_hooks() {
    let rt = runtime();
    let set = FilterSet::load(&rt, &config("[]"), Arc::new(NoClusters))
        .await
        .unwrap();
    assert!(set.start(RouteId(0)).is_none());
    assert!(set.start(RouteId(1)).is_none());
    assert!(set.route_filters(RouteId(0)).is_empty());
    let metrics = set.metrics().expect("a filter set reports the registry");
    assert!(metrics.counters.is_empty() && metrics.histograms.is_empty());
}

#[tokio::test]
async fn a_missing_module_names_filter_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let err = FilterSet::load_relative_to(
        &rt,
        &config("[{name: auth, module: nope.wasm}]"),
        dir.path(),
        Arc::new(NoClusters),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, FilterLoadError::ReadModule { filter, path, .. } if filter == "auth" && path == &dir.path().join("nope.wasm"))
    );
    assert!(err.to_string().contains("nope.wasm"), "{err}");
}

#[tokio::test]
async fn garbage_is_not_a_component() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_module(dir.path(), b"definitely not wasm").await;
    assert!(
        matches!(&err, FilterLoadError::Compile { filter, .. } if filter == "probe"),
        "{err}"
    );
    assert!(!err.to_string().contains('\n'), "one line: {err}");
}

#[tokio::test]
async fn a_core_module_is_not_a_component() {
    let dir = tempfile::tempdir().unwrap();
    // The smallest valid core module: magic + version 1.
    let err = load_module(dir.path(), b"\0asm\x01\0\0\0").await;
    assert!(matches!(err, FilterLoadError::Compile { .. }), "{err}");
}

#[tokio::test]
async fn a_component_without_the_handler_export_breaks_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    // The smallest valid component: magic + component version/layer.
    let err = load_module(dir.path(), b"\0asm\x0d\0\x01\0").await;
    assert!(matches!(err, FilterLoadError::Contract { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("does not export `weir:filter/handler@0.1.0`"),
        "{err}"
    );
}

#[tokio::test]
async fn limits_beyond_the_runtime_are_refused_before_compiling() {
    let rt = runtime();
    let cfg = config("[{name: big, module: unread.wasm, limits: {memory_mib: 65}}]");
    let err = FilterSet::load(&rt, &cfg, Arc::new(NoClusters))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, FilterLoadError::InvalidLimits { filter, .. } if filter == "big"),
        "{err}"
    );
    assert!(err.to_string().contains("between 1 and 64"), "{err}");
}

#[tokio::test]
async fn planning_errors_surface_from_load() {
    let rt = runtime();
    let cfg = config("[{name: a, module: a.wasm}, {name: a, module: b.wasm}]");
    let err = FilterSet::load(&rt, &cfg, Arc::new(NoClusters))
        .await
        .unwrap_err();
    assert!(
        matches!(err, FilterLoadError::DuplicateFilter { .. }),
        "{err}"
    );
}
