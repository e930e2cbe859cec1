//! Filters that cannot load are rejected at load time with a clear error
//! naming the filter, and no runtime is built.

use weir_tests::artifacts::{BAD_CONFIG, NOT_A_FILTER};
use weir_tests::proxy;

fn config(filter_config: &str) -> String {
    format!(
        r#"
clusters:
  - {{ name: app, endpoints: ["127.0.0.1:9"] }}
filters:
  - name: picky
    module: "{{{{module}}}}"
    config: {filter_config}
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
      - forward: {{ cluster: app }}
"#
    )
}

async fn load_error(module: &str, filter_config: &str) -> String {
    let builder = proxy::new()
        .config(config(filter_config))
        .filter_module("module", module);
    match builder.build_runtime().await {
        Ok(_) => panic!("the filter loaded"),
        Err(err) => err.to_string(),
    }
}

#[tokio::test]
async fn a_rejected_config_fails_the_load_with_the_filters_message() {
    let missing = load_error(BAD_CONFIG, "{}").await;
    assert!(missing.contains("picky"), "{missing}");
    assert!(missing.contains("missing field `greeting`"), "{missing}");

    let zero = load_error(BAD_CONFIG, r#"{ "greeting": "hi", "limit": 0 }"#).await;
    assert!(zero.contains("`limit` must be greater than 0"), "{zero}");
}

#[tokio::test]
async fn a_valid_config_of_the_strict_filter_loads() {
    let builder = proxy::new()
        .config(config(r#"{ "greeting": "hi", "limit": 1 }"#))
        .filter_module("module", BAD_CONFIG);
    builder.build_runtime().await.expect("a valid config loads");
}

#[tokio::test]
async fn a_component_without_the_filter_export_is_rejected_naming_it() {
    let err = load_error(NOT_A_FILTER, "{}").await;
    assert!(err.contains("picky"), "{err}");
    assert!(err.contains("handler"), "names the missing export: {err}");
}

#[tokio::test]
async fn a_file_that_is_not_wasm_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-wasm.wasm");
    std::fs::write(&path, "this is not a component").unwrap();
    let err = load_error(path.to_str().unwrap(), "{}").await;
    assert!(err.contains("picky"), "{err}");
}
