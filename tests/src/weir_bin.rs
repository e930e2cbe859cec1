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

/// Run `weir ARGS` to completion.
pub fn run(args: &[&str]) -> Output {
    command().args(args).output().expect("run weir")
}
