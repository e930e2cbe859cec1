//! The real `weir` binary: help, version, `validate` exit codes and error
//! messages, and `run` serving until SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use weir_tests::{client, weir_bin};

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn version_and_help() {
    let version = weir_bin::run(&["--version"]);
    assert!(version.status.success());
    assert_eq!(
        stdout(&version).trim(),
        format!("weir {}", env!("CARGO_PKG_VERSION"))
    );

    let help = weir_bin::run(&["--help"]);
    assert!(help.status.success());
    let text = stdout(&help);
    for expected in [
        "WebAssembly",
        "run",
        "validate",
        "Examples:",
        "weir validate --config",
    ] {
        assert!(
            text.contains(expected),
            "--help lacks {expected:?}:\n{text}"
        );
    }
    let run_help = stdout(&weir_bin::run(&["run", "--help"]));
    for expected in [
        "--config <FILE>",
        "--log-level <LEVEL>",
        "--log-format <FORMAT>",
        "json",
    ] {
        assert!(
            run_help.contains(expected),
            "run --help lacks {expected:?}:\n{run_help}"
        );
    }

    let no_command = weir_bin::run(&[]);
    assert!(!no_command.status.success(), "a command is required");
}

#[test]
fn validate_accepts_the_basic_example() {
    let path = examples_dir().join("basic.yaml");
    let output = weir_bin::run(&["validate", "--config", path.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output).trim(),
        "config OK: 1 listeners, 4 routes, 1 clusters, 0 filters"
    );
}

/// Write `yaml` to a file in a fresh directory and validate it.
fn validate_text(yaml: &str) -> (std::process::Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, yaml).unwrap();
    (
        weir_bin::run(&["validate", "--config", path.to_str().unwrap()]),
        dir,
    )
}

#[test]
fn validate_names_file_line_and_field() {
    let yaml = "\
listeners:
  - address: 127.0.0.1:0
limits:
  drain_timeuot: 5s
virtual_hosts: []
";
    let (output, _dir) = validate_text(yaml);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty(), "errors go to stderr only");
    let errors = stderr(&output);
    assert!(
        errors.contains("bad.yaml:4:"),
        "the line of the typo:\n{errors}"
    );
    assert!(
        errors.contains("drain_timeuot"),
        "the unknown field:\n{errors}"
    );

    let yaml = "\
listeners:
  - address: 127.0.0.1:0
virtual_hosts:
  - name: all
    domains: [\"*\"]
    routes:
      - forward: { cluster: missing }
";
    let (output, _dir) = validate_text(yaml);
    assert_eq!(output.status.code(), Some(1));
    let errors = stderr(&output);
    assert!(
        errors.contains("bad.yaml:7:"),
        "the line of the reference:\n{errors}"
    );
    assert!(
        errors.contains("virtual_hosts[0].routes[0].forward.cluster"),
        "the field path:\n{errors}"
    );
    assert!(
        errors.contains("missing"),
        "the reason names the cluster:\n{errors}"
    );
}

#[test]
fn validate_missing_file_fails() {
    let output = weir_bin::run(&["validate", "--config", "/nonexistent/weir.yaml"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("/nonexistent/weir.yaml"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn run_refuses_an_invalid_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, "listeners: nope\n").unwrap();
    let output = weir_bin::run(&["run", "--config", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("bad.yaml"), "{}", stderr(&output));
}

/// A `weir run` child whose stderr is read line by line.
struct Running {
    child: Child,
    lines: std::io::Lines<BufReader<std::process::ChildStderr>>,
}

impl Running {
    fn start(config: &Path) -> Self {
        let mut child = weir_bin::command()
            .args([
                "run",
                "--config",
                config.to_str().unwrap(),
                "--log-format",
                "json",
            ])
            .args(["--log-level", "info"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start weir");
        let lines = BufReader::new(child.stderr.take().unwrap()).lines();
        Self { child, lines }
    }

    /// Read log lines until one whose message is `message`; return it as JSON.
    fn wait_for(&mut self, message: &str) -> serde_json::Value {
        for line in self.lines.by_ref() {
            let line = line.expect("read weir's log");
            let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
                panic!("not a JSON log line: {line}");
            };
            if json["message"] == message {
                return json;
            }
        }
        panic!("weir exited before logging {message:?}");
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        // Our own child, by its pid.
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        assert!(status.expect("run kill").success());
        self.child.wait().expect("wait for weir")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_until_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("weir.yaml");
    std::fs::write(
        &config,
        r#"
listeners:
  - name: public
    address: 127.0.0.1:0
admin:
  address: 127.0.0.1:0
# No fixed ports in tests: the control API (default 127.0.0.1:9902) stays off.
control:
  enabled: false
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
      - direct_response: { status: 200, body: "served by the binary" }
"#,
    )
    .unwrap();
    let mut weir = tokio::task::spawn_blocking(move || {
        let mut weir = Running::start(&config);
        let listening = weir.wait_for("listening");
        assert_eq!(listening["listener"], "public");
        let address: std::net::SocketAddr = listening["address"].as_str().unwrap().parse().unwrap();
        (weir, address)
    })
    .await
    .unwrap();
    let address = weir.1;

    let response = client::http1().get(&format!("http://{address}/")).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "served by the binary");

    let status = tokio::task::spawn_blocking(move || {
        let status = weir.0.terminate();
        weir.0.wait_for("bye");
        status
    })
    .await
    .unwrap();
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");
}
