//! Loading end to end: good files load complete, bad ones name file,
//! line:column, field path and reason.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

/// A directory holding a config file's neighbours (filter modules).
struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn with_modules(modules: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        for module in modules {
            let path = dir.path().join(module);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, b"\0asm").unwrap();
        }
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

const GOOD_YAML: &str = include_str!("testdata/good.yaml");
const GOOD_JSON: &str = include_str!("testdata/good.json");
const MODULES: &[&str] = &["filters/auth.wasm", "filters/extra.wasm"];

/// The single issue of a failed parse.
#[track_caller]
fn only_issue(result: Result<Config, ConfigError>) -> ConfigIssue {
    let error = result.expect_err("the configuration should be rejected");
    assert_eq!(error.issues().len(), 1, "{error}");
    error.into_issues().remove(0)
}

#[track_caller]
fn assert_at(issue: &ConfigIssue, line: usize, column: usize, path: &str, reason: &str) {
    assert_eq!(
        (issue.line, issue.column),
        (Some(line), Some(column)),
        "{issue}"
    );
    assert_eq!(issue.path.to_string(), path, "{issue}");
    assert!(
        issue.reason.contains(reason),
        "expected reason with {reason:?}: {issue}"
    );
}

fn yaml(text: &str) -> Result<Config, ConfigError> {
    parse_str(text, Format::Yaml, Path::new("weir.yaml"))
}

fn json(text: &str) -> Result<Config, ConfigError> {
    parse_str(text, Format::Json, Path::new("weir.json"))
}

const MINIMAL: &str = "\
listeners:
  - address: 127.0.0.1:8080
virtual_hosts:
  - name: all
    domains: ['*']
    routes:
      - direct_response: {status: 200}
";

#[test]
fn good_yaml_loads_with_paths_resolved_against_its_directory() {
    let dir = Dir::with_modules(MODULES);
    let file = dir.path("weir.yaml");
    fs::write(&file, GOOD_YAML).unwrap();
    let config = load(&file).unwrap_or_else(|error| panic!("{error}"));
    let base = dir.dir.path();
    assert_eq!(
        config.filters[0].module,
        base.join("filters/auth.wasm").to_str().unwrap()
    );
    let route_filter = &config.virtual_hosts[0].routes[0].filters[1];
    assert_eq!(
        route_filter.module.as_deref(),
        base.join("filters/extra.wasm").to_str()
    );
    assert_eq!(
        config.wasm.cache_dir.as_deref(),
        base.join("cache").to_str()
    );
    assert_eq!(
        config.virtual_hosts[0].domains,
        ["api.example.com", "*.api.example.com"]
    );
    assert_eq!(config.limits.idle_timeout, Duration::from_secs(90));
    assert_eq!(config.clusters[1].lb_policy, LbPolicy::RingHash);
}

#[test]
fn good_json_loads_and_equals_the_yaml() {
    let dir = Dir::with_modules(MODULES);
    let from_yaml = parse_str(GOOD_YAML, Format::Yaml, &dir.path("weir.yaml")).unwrap();
    let from_json = parse_str(GOOD_JSON, Format::Json, &dir.path("weir.json"));
    assert_eq!(
        from_json.unwrap_or_else(|error| panic!("{error}")),
        from_yaml
    );
}

#[test]
fn absolute_module_paths_are_kept() {
    let dir = Dir::with_modules(&["abs.wasm"]);
    let module = dir.path("abs.wasm");
    let text = format!(
        "{MINIMAL}filters:\n  - name: f\n    module: {}\n",
        module.display()
    );
    let config = parse_str(&text, Format::Yaml, Path::new("/elsewhere/weir.yaml")).unwrap();
    assert_eq!(config.filters[0].module, module.to_str().unwrap());
}

#[test]
fn defaults_are_applied() {
    let config = yaml(MINIMAL).unwrap();
    assert_eq!(
        config.admin,
        AdminConfig {
            address: "127.0.0.1:9901".into(),
            enabled: true
        }
    );
    assert_eq!(config.limits, LimitsConfig::default());
    assert_eq!(config.limits.header_read_timeout, Duration::from_secs(30));
    assert_eq!(config.limits.max_request_header_bytes, 61440);
    assert_eq!(
        config.wasm.default_limits.cpu_per_call,
        Duration::from_millis(10)
    );
    assert_eq!(config.wasm.max_instances_per_filter, 1024);
    assert_eq!(config.wasm.max_instances, 4096);
    assert_eq!(config.wasm.max_memory_mib, 256);
    assert_eq!(config.wasm.max_stack_kib, 512);
    let direct = config.virtual_hosts[0].routes[0]
        .direct_response
        .as_ref()
        .unwrap();
    assert_eq!(direct.body, "");
    let text = format!("{MINIMAL}clusters:\n  - name: c\n    endpoints: [127.0.0.1:1]\n");
    let cluster = &yaml(&text).unwrap().clusters[0];
    assert_eq!(cluster.lb_policy, LbPolicy::RoundRobin);
    assert_eq!(cluster.protocol, UpstreamProtocol::Auto);
    assert_eq!(cluster.connect_timeout, Duration::from_secs(5));
    assert_eq!(cluster.pool_max_idle_per_endpoint, 1024);
    assert_eq!(config.listeners[0].backlog, 4096);
    let redirect = yaml(&MINIMAL.replace(
        "direct_response: {status: 200}",
        "redirect: {scheme: https}",
    ))
    .unwrap();
    assert_eq!(
        redirect.virtual_hosts[0].routes[0]
            .redirect
            .as_ref()
            .unwrap()
            .status,
        301
    );
}

#[test]
fn an_unknown_field_names_the_path_position_and_expected_fields() {
    let text = MINIMAL.replace(
        "direct_response: {status: 200}",
        "forward:\n          timout: 3s",
    );
    let issue = only_issue(yaml(&text));
    assert_at(
        &issue,
        8,
        11,
        "virtual_hosts[0].routes[0].forward.timout",
        "unknown field `timout`, expected one of `cluster`",
    );
    assert!(issue.reason.ends_with("did you mean `timeout`?"), "{issue}");
    assert!(
        issue.to_string().starts_with(
            "weir.yaml:8:11: virtual_hosts[0].routes[0].forward.timout: unknown field"
        )
    );
}

#[test]
fn a_type_error_names_the_path_and_position() {
    let issue = only_issue(yaml(&MINIMAL.replace("status: 200", "status: ok")));
    assert_at(
        &issue,
        7,
        35,
        "virtual_hosts[0].routes[0].direct_response.status",
        "invalid type: string \"ok\", expected u16",
    );
    let issue = only_issue(yaml(&format!(
        "{MINIMAL}limits: {{idle_timeout: 5 parsecs}}\n"
    )));
    assert_at(
        &issue,
        8,
        24,
        "limits.idle_timeout",
        "invalid duration \"5 parsecs\": unknown time unit \"parsecs\"",
    );
    let issue = only_issue(yaml(&format!("{MINIMAL}limits: {{idle_timeout: 30}}\n")));
    assert_at(
        &issue,
        8,
        24,
        "limits.idle_timeout",
        "invalid duration \"30\": time unit needed",
    );
    let issue = only_issue(yaml(&format!(
        "{MINIMAL}clusters: [{{name: c, endpoints: [a:1], lb_policy: roundrobin}}]\n"
    )));
    assert_at(
        &issue,
        8,
        51,
        "clusters[0].lb_policy",
        "did you mean `round_robin`?",
    );
}

#[test]
fn a_stack_limit_out_of_range_names_the_field() {
    let issue = only_issue(yaml(&format!("{MINIMAL}wasm:\n  max_stack_kib: 4096\n")));
    assert_at(
        &issue,
        9,
        3,
        "wasm.max_stack_kib",
        "must be from 64 to 1024 (KiB), not 4096",
    );
    let config = yaml(&format!("{MINIMAL}wasm:\n  max_stack_kib: 1024\n")).unwrap();
    assert_eq!(config.wasm.max_stack_kib, 1024);
}

#[test]
fn a_missing_field_is_reported_at_its_parent() {
    let issue = only_issue(yaml("listeners:\n  - address: 127.0.0.1:1\n"));
    assert_at(&issue, 1, 1, "", "missing field `virtual_hosts`");
    let issue = only_issue(yaml(&MINIMAL.replace("    domains: ['*']\n", "")));
    assert_at(&issue, 4, 5, "virtual_hosts[0]", "missing field `domains`");
}

#[test]
fn a_yaml_syntax_error_has_a_position() {
    let issue = only_issue(yaml("listeners: []\nvirtual_hosts:\n\t- name: x\n"));
    assert_eq!((issue.line, issue.column), (Some(3), Some(1)), "{issue}");
    assert_eq!(
        issue.path.to_string(),
        "virtual_hosts",
        "the section being read"
    );
    assert!(issue.reason.contains("cannot start any token"), "{issue}");
    assert!(
        !issue.reason.contains(" at line 3"),
        "position is not repeated: {issue}"
    );
}

#[test]
fn a_json_syntax_error_has_a_position() {
    let issue = only_issue(json(
        "{\n  \"listeners\": [\n    {\"address\": \"127.0.0.1:1\",}\n  ]\n}",
    ));
    assert_eq!((issue.line, issue.column), (Some(3), Some(31)), "{issue}");
    assert!(issue.reason.starts_with("trailing comma"), "{issue}");
    let issue = only_issue(json("{\"listeners\": [], \"virtual_hosts\": []} x"));
    assert_at(&issue, 1, 40, "", "trailing characters");
}

#[test]
fn json_data_errors_are_located_at_the_field() {
    let text = "{\n  \"listeners\": [{\"address\": \"127.0.0.1:1\", \"nme\": \"x\"}],\n  \"virtual_hosts\": []\n}";
    let issue = only_issue(json(text));
    assert_at(&issue, 2, 44, "listeners[0].nme", "unknown field `nme`");
    assert!(issue.reason.ends_with("did you mean `name`?"), "{issue}");
}

#[test]
fn semantic_errors_are_located_in_yaml() {
    let text = format!(
        "{MINIMAL}      - forward:\n          cluster: backnd\nclusters:\n  - name: backend\n    endpoints: [127.0.0.1:1]\n"
    );
    let issue = only_issue(yaml(&text));
    assert_at(
        &issue,
        9,
        11,
        "virtual_hosts[0].routes[1].forward.cluster",
        "unknown cluster \"backnd\" (known: backend)",
    );
    assert_eq!(
        issue.to_string(),
        "weir.yaml:9:11: virtual_hosts[0].routes[1].forward.cluster: unknown cluster \"backnd\" (known: backend)"
    );
}

#[test]
fn semantic_errors_are_located_in_json() {
    let text = r#"{
  "listeners": [{"address": "127.0.0.1:1"}],
  "virtual_hosts": [{
    "name": "all",
    "domains": ["*"],
    "routes": [{"direct_response": {"status": 200}, "redirect": {"path": "/x"}}]
  }]
}"#;
    let issue = only_issue(json(text));
    assert_at(
        &issue,
        6,
        53,
        "virtual_hosts[0].routes[0].redirect",
        "exactly one action",
    );
}

#[test]
fn every_issue_is_listed_one_line_each_in_file_order() {
    let text = MINIMAL
        .replace("127.0.0.1:8080", "localhost:8080")
        .replace("status: 200", "status: 700")
        .replace("['*']", "['*', 'a:1']");
    let error = yaml(&text).unwrap_err();
    let lines: Vec<String> = error.to_string().lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 3, "{error}");
    assert!(
        lines[0].starts_with("weir.yaml:2:5: listeners[0].address: invalid address"),
        "{error}"
    );
    assert!(
        lines[1].starts_with("weir.yaml:5:20: virtual_hosts[0].domains[1]: invalid domain"),
        "{error}"
    );
    assert!(
        lines[2]
            .starts_with("weir.yaml:7:27: virtual_hosts[0].routes[0].direct_response.status: 700"),
        "{error}"
    );
}

#[test]
fn missing_module_files_name_the_resolved_path() {
    let dir = Dir::with_modules(&["conf/filters/auth.wasm"]);
    let text = format!(
        "{MINIMAL}        filters: [{{name: new, module: ../missing.wasm}}]\nfilters:\n  - name: auth\n    module: filters/auth.wasm\n  - name: gone\n    module: filters/gone.wasm\n"
    );
    let error = parse_str(&text, Format::Yaml, &dir.path("conf/weir.yaml")).unwrap_err();
    let issues = error.issues();
    assert_eq!(issues.len(), 2, "{error}");
    let route_module = dir.path("conf").join("../missing.wasm");
    assert_at(
        &issues[0],
        8,
        31,
        "virtual_hosts[0].routes[0].filters[0].module",
        &format!("module file not found: {}", route_module.display()),
    );
    let chain_module = dir.path("conf").join("filters/gone.wasm");
    assert_at(
        &issues[1],
        13,
        5,
        "filters[1].module",
        &format!("module file not found: {}", chain_module.display()),
    );
    assert_eq!(issues[0].file, dir.path("conf/weir.yaml"));
}

#[test]
fn a_bare_file_name_resolves_against_the_working_directory() {
    let text = format!("{MINIMAL}filters: [{{name: f, module: weir-no-such-module.wasm}}]\n");
    let issue = only_issue(yaml(&text));
    let expected = std::env::current_dir()
        .unwrap()
        .join("weir-no-such-module.wasm");
    assert_at(
        &issue,
        8,
        21,
        "filters[0].module",
        &format!("module file not found: {}", expected.display()),
    );
}

#[test]
fn a_directory_is_not_a_module() {
    let dir = Dir::with_modules(&["filters/x.wasm"]);
    let text = format!("{MINIMAL}filters: [{{name: f, module: filters}}]\n");
    let issue = only_issue(parse_str(&text, Format::Yaml, &dir.path("weir.yaml")));
    assert!(issue.reason.contains("is not a file"), "{issue}");
}

#[test]
fn load_picks_the_format_by_extension() {
    let dir = Dir::with_modules(&[]);
    let as_json = dir.path("weir.JSON");
    fs::write(&as_json, yaml(MINIMAL).unwrap().to_json_pretty()).unwrap();
    assert!(load(&as_json).is_ok());
    let as_yml = dir.path("weir.yml");
    fs::write(&as_yml, MINIMAL).unwrap();
    assert!(load(&as_yml).is_ok());
    // YAML in a .json file is read as JSON, and fails as such.
    let wrong = dir.path("wrong.json");
    fs::write(&wrong, MINIMAL).unwrap();
    assert_eq!(only_issue(load(&wrong)).line, Some(1));
}

#[test]
fn load_reports_unsupported_and_unreadable_files() {
    let dir = Dir::with_modules(&[]);
    let toml = dir.path("weir.toml");
    let issue = only_issue(load(&toml));
    assert_eq!(issue.file, toml);
    assert!(issue.reason.contains(".yaml, .yml or .json"), "{issue}");
    let missing = dir.path("missing.yaml");
    let error = load(&missing).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with(&format!("{}: cannot read", missing.display())),
        "{error}"
    );
}

#[test]
fn an_empty_file_is_explained() {
    let issue = only_issue(yaml("# nothing yet\n"));
    assert!(issue.reason.contains("the file is empty"), "{issue}");
}

#[test]
fn the_effective_config_round_trips_through_json() {
    let dir = Dir::with_modules(MODULES);
    let config = parse_str(GOOD_YAML, Format::Yaml, &dir.path("weir.yaml")).unwrap();
    let effective = config.to_json_pretty();
    assert!(
        effective.contains("\"idle_timeout\": \"1m 30s\""),
        "{effective}"
    );
    assert!(
        effective.contains("\"max_request_headers\": 100"),
        "defaults are shown"
    );
    let again = parse_str(&effective, Format::Json, &dir.path("effective.json"));
    assert_eq!(again.unwrap_or_else(|error| panic!("{error}")), config);
}

#[test]
fn formats_follow_the_extension() {
    assert_eq!(Format::from_path(Path::new("a/b.yaml")), Some(Format::Yaml));
    assert_eq!(Format::from_path(Path::new("b.YML")), Some(Format::Yaml));
    assert_eq!(Format::from_path(Path::new("b.json")), Some(Format::Json));
    assert_eq!(Format::from_path(Path::new("b.toml")), None);
    assert_eq!(Format::from_path(Path::new("yaml")), None);
}
