//! `weir validate` on configs with filters: the filters are compiled and
//! configured as `weir run` would, through the real binary.

use weir_tests::{artifacts, weir_bin};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A config with the hello filter configured with `filter_config`, and the
/// compiled-module cache in `cache_dir`.
fn config(filter_config: &str, cache_dir: &std::path::Path) -> String {
    format!(
        "\
listeners:
  - address: 127.0.0.1:0
wasm:
  cache_dir: {cache}
filters:
  - name: hello
    module: {module}
    config: {filter_config}
clusters:
  - name: app
    endpoints: [\"127.0.0.1:9\"]
virtual_hosts:
  - name: all
    domains: [\"*\"]
    routes:
      - forward: {{ cluster: app }}
",
        cache = cache_dir.display(),
        module = artifacts::HELLO_FILTER,
    )
}

fn validate(dir: &tempfile::TempDir, yaml: &str) -> std::process::Output {
    let path = dir.path().join("weir.yaml");
    std::fs::write(&path, yaml).unwrap();
    weir_bin::run(&["validate", "--config", path.to_str().unwrap()])
}

#[test]
fn validate_compiles_the_filters_into_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = config(
        r#"{ header: "x-hello", value: "weir" }"#,
        &dir.path().join("cache"),
    );

    let first = validate(&dir, &yaml);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert_eq!(
        text(&first.stdout).trim(),
        "config OK: 1 listeners, 1 routes, 1 clusters, 1 filters; \
         filters loaded (1 compiled, 0 from the cache)"
    );

    let second = validate(&dir, &yaml);
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert!(
        text(&second.stdout).contains("(0 compiled, 1 from the cache)"),
        "the second run loads the module compiled by the first:\n{}",
        text(&second.stdout)
    );
}

#[test]
fn validate_reports_a_config_the_filter_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = config(
        r#"{ header: "", value: "weir" }"#,
        &dir.path().join("cache"),
    );
    let output = validate(&dir, &yaml);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty(), "nothing on stdout for a failure");
    let errors = text(&output.stderr);
    assert!(errors.contains("weir.yaml"), "names the file:\n{errors}");
    assert!(errors.contains("hello"), "names the filter:\n{errors}");
    assert!(
        errors.contains("`header` must not be empty"),
        "carries the filter's own message:\n{errors}"
    );
    assert_eq!(
        errors.matches("`header` must not be empty").count(),
        1,
        "says it once:\n{errors}"
    );
}

#[test]
fn run_reports_a_filter_failure_once() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = config(
        r#"{ header: "", value: "weir" }"#,
        &dir.path().join("cache"),
    )
    .replace(
        "wasm:\n",
        "admin: { enabled: false }\ncontrol: { enabled: false }\nwasm:\n",
    );
    let path = dir.path().join("weir.yaml");
    std::fs::write(&path, yaml).unwrap();

    let output = weir_bin::run(&["run", "--config", path.to_str().unwrap()]);

    assert!(!output.status.success());
    let errors = text(&output.stderr);
    assert_eq!(
        errors.matches("`header` must not be empty").count(),
        1,
        "says it once:\n{errors}"
    );
}

#[test]
fn validate_refuses_inline_execution_for_a_filter_that_calls_out() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = config("{}", &dir.path().join("cache"))
        .replace(artifacts::HELLO_FILTER, artifacts::CALLOUT)
        .replace("    config: {}\n", "    execution: inline\n");
    assert!(yaml.contains("execution: inline"), "{yaml}");

    let output = validate(&dir, &yaml);

    assert_eq!(output.status.code(), Some(1));
    let errors = text(&output.stderr);
    assert!(errors.contains("weir.yaml"), "names the file:\n{errors}");
    assert!(
        errors.contains("filter `hello`: `execution: inline` is not possible"),
        "names the filter and the field:\n{errors}"
    );
    assert!(
        errors.contains("weir:filter/callout@"),
        "names the import:\n{errors}"
    );
    assert!(
        errors.contains("use `execution: yielding`"),
        "says what to do:\n{errors}"
    );
    assert_eq!(errors.matches("is not possible").count(), 1, "{errors}");
}
