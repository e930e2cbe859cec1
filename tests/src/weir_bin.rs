//! The real `weir` binary, for CLI tests.
//!
//! `CARGO_BIN_EXE_weir` exists only for tests of the `weir-proxy` package, so
//! this finds the target directory from the running test executable
//! (`<target>/<profile>/deps/<test>`), and builds `weir` there once per test
//! process with the same cargo, profile and target dir that built the test.
//! Building is a no-op when the binary is up to date, and guarantees it is
//! never stale.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The path of an up-to-date `weir` binary.
pub fn path() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(build)
}

fn build() -> PathBuf {
    let test_exe = std::env::current_exe().expect("current test executable");
    // <target>/<profile>/deps/<test-binary>
    let profile_dir = test_exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in <target>/<profile>/deps");
    let target_dir = profile_dir.parent().expect("<target>/<profile>");
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .expect("profile dir name");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        // `--workspace` resolves features the way `cargo test --workspace`
        // does, so the build reuses the test run's dependencies.
        .args(["build", "--quiet", "--workspace", "--bin", "weir"])
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    match profile {
        "debug" => {}
        "release" => {
            command.arg("--release");
        }
        other => {
            command.args(["--profile", other]);
        }
    }
    let status = command.status().expect("run cargo to build weir");
    assert!(status.success(), "building the weir binary failed");
    let binary = profile_dir.join(format!("weir{}", std::env::consts::EXE_SUFFIX));
    assert!(binary.is_file(), "no weir binary at {}", binary.display());
    binary
}

/// A `weir` command ready to take arguments.
pub fn command() -> Command {
    Command::new(path())
}

/// A `weir` command whose process may map at most `kib` KiB of address
/// space (`ulimit -v`, RLIMIT_AS), as in a constrained container. Arguments
/// added to it go to `weir`.
pub fn command_with_address_limit(kib: u64) -> Command {
    let mut command = Command::new("sh");
    command
        .args(["-c", r#"ulimit -v "$0" && exec "$@""#])
        .arg(kib.to_string())
        .arg(path());
    command
}

/// Run `weir ARGS` to completion.
pub fn run(args: &[&str]) -> Output {
    command().args(args).output().expect("run weir")
}

/// A `weir run` child logging JSON lines at info, read line by line from its
/// stderr; killed when dropped.
pub struct RunningWeir {
    child: std::process::Child,
    /// `None` once handed to [`RunningWeir::drain_log`].
    lines: Option<std::io::Lines<std::io::BufReader<std::process::ChildStderr>>>,
}

impl RunningWeir {
    /// `weir run --no-watch --config CONFIG` with `envs` added to, and
    /// `removed` taken out of, the environment.
    pub fn start(config: &Path, envs: &[(&str, &str)], removed: &[&str]) -> Self {
        let mut command = command();
        for (name, value) in envs {
            command.env(name, value);
        }
        for name in removed {
            command.env_remove(name);
        }
        Self::spawn(command, config)
    }

    /// `COMMAND run --no-watch --config CONFIG`, where `command` runs `weir`
    /// (e.g. [`command_with_address_limit`]).
    pub fn spawn(mut command: Command, config: &Path) -> Self {
        use std::io::BufRead;
        command
            .args(["run", "--no-watch", "--log-format", "json", "--log-level"])
            .args(["info", "--config"])
            .arg(config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let mut child = command.spawn().expect("start weir run");
        let stderr = child.stderr.take().expect("piped stderr");
        Self {
            child,
            lines: Some(std::io::BufReader::new(stderr).lines()),
        }
    }

    /// Reads log lines until one whose message is `message`, and returns it
    /// as JSON (fields at the top level). Panics if weir exits first.
    pub fn wait_for(&mut self, message: &str) -> serde_json::Value {
        let lines = self.lines.as_mut().expect("the log is being drained");
        for line in lines {
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

    /// Sends SIGTERM (a graceful shutdown) and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        // Our own child, by its pid.
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        assert!(status.expect("run kill").success());
        self.child.wait().expect("wait for weir")
    }

    /// Keeps reading (and dropping) the rest of the log in the background,
    /// so the proxy never blocks on a full pipe.
    pub fn drain_log(&mut self) {
        if let Some(lines) = self.lines.take() {
            std::thread::spawn(move || lines.for_each(drop));
        }
    }
}

impl Drop for RunningWeir {
    fn drop(&mut self) {
        // Our own child, by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
