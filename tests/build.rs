//! Builds every guest filter of the workspace to a `wasm32-wasip2` component
//! and tells the integration tests where they are.
//!
//! Filters are the workspace members in `examples/hello-filter`,
//! `tests/filters/*` and `filters/*`. They are built in one nested
//! `cargo build --profile filter --target wasm32-wasip2` into a target directory of
//! their own (`<target>/wasm-filters/<workspace-id>`), so the nested cargo
//! never waits on the lock the outer build holds, and two checkouts sharing
//! a target directory never overwrite each other's components.
//!
//! `OUT_DIR/artifacts.rs` then gets, per crate, `pub const NAME: &str` (the
//! crate name in SCREAMING_SNAKE_CASE) holding the component's absolute
//! path, plus `pub const ALL: &[(&str, &str)]` of (crate name, path).
//! (Model: wasmtime's `crates/test-programs/artifacts/build.rs`.)

use std::collections::BTreeSet;
use std::env;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

const WASM_TARGET: &str = "wasm32-wasip2";
/// The cargo profile guests are built with (root Cargo.toml: small, stripped, optimised).
const GUEST_PROFILE: &str = "filter";

/// Directories whose crates are filters: exact crate dirs and parents of crate dirs.
const FILTER_CRATE_DIRS: &[&str] = &["examples/hello-filter"];
const FILTER_PARENT_DIRS: &[&str] = &["tests/filters", "filters"];

/// What the guests are built from, besides their own directories.
const SHARED_INPUTS: &[&str] = &["sdk", "wit", "Cargo.toml", "Cargo.lock"];

/// Environment that would leak the outer build's settings into the nested
/// one: host-only flags (a `-C target-cpu=native` breaks Wasm), the outer
/// target directory and target, and clippy as a rustc wrapper.
const STRIPPED_ENV: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_BUILD_DIR",
    "CARGO_BUILD_TARGET",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_PRIMARY_PACKAGE",
    "__CARGO_DEFAULT_LIB_METADATA",
];

/// One filter crate to build.
struct FilterCrate {
    /// The package name, e.g. `hello-filter`.
    package: String,
    /// The library target's name, e.g. `hello_filter` (the `.wasm` file stem).
    lib_name: String,
    /// Its directory.
    dir: PathBuf,
}

fn main() -> Result<()> {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR")?);
    let root = manifest_dir
        .parent()
        .context("tests/ has no parent directory")?
        .to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").context("OUT_DIR")?);
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());

    for input in SHARED_INPUTS.iter().chain(FILTER_PARENT_DIRS) {
        watch(&root.join(input));
    }
    check_wasm_target_installed()?;

    let filters = discover_filters(&cargo, &root)?;
    for f in &filters {
        watch(&f.dir);
    }
    let target_dir = wasm_target_dir(&out_dir, &root)?;
    build(&cargo, &root, &target_dir, &filters)?;

    let release_dir = target_dir.join(WASM_TARGET).join(GUEST_PROFILE);
    let code = artifacts_rs(&filters, &release_dir)?;
    fs::write(out_dir.join("artifacts.rs"), code).context("writing artifacts.rs")?;
    Ok(())
}

/// Rerun when `path` changes (cargo scans directories recursively). Paths
/// that do not exist are skipped: cargo would treat them as always stale.
fn watch(path: &Path) {
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// Fail early, with the fix, when the standard library for Wasm is missing.
fn check_wasm_target_installed() -> Result<()> {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .with_context(|| format!("running {} --print sysroot", rustc.to_string_lossy()))?;
    ensure!(out.status.success(), "`rustc --print sysroot` failed");
    let sysroot = PathBuf::from(String::from_utf8(out.stdout)?.trim());
    if !sysroot.join("lib/rustlib").join(WASM_TARGET).exists() {
        bail!(
            "the Rust target `{WASM_TARGET}` is not installed (needed to build the test filters); \
             run `rustup target add {WASM_TARGET}`"
        );
    }
    Ok(())
}

/// The workspace members that are filters, sorted by package name. A crate
/// directory in a filter location that is not a workspace member is an
/// error (it would silently never be built or tested).
fn discover_filters(cargo: &OsString, root: &Path) -> Result<Vec<FilterCrate>> {
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
        ])
        .arg(root.join("Cargo.toml"))
        .output()
        .context("running cargo metadata")?;
    ensure!(
        out.status.success(),
        "cargo metadata failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("parsing cargo metadata")?;

    let wanted_dirs: BTreeSet<PathBuf> = FILTER_CRATE_DIRS.iter().map(|d| root.join(d)).collect();
    let wanted_parents: Vec<PathBuf> = FILTER_PARENT_DIRS.iter().map(|d| root.join(d)).collect();
    let mut filters = Vec::new();
    for pkg in meta["packages"]
        .as_array()
        .context("metadata: no packages")?
    {
        let manifest = PathBuf::from(
            pkg["manifest_path"]
                .as_str()
                .context("metadata: manifest_path")?,
        );
        let dir = manifest
            .parent()
            .context("manifest without directory")?
            .to_path_buf();
        let in_parent = dir
            .parent()
            .is_some_and(|p| wanted_parents.iter().any(|w| w == p));
        if !wanted_dirs.contains(&dir) && !in_parent {
            continue;
        }
        let package = pkg["name"]
            .as_str()
            .context("metadata: package name")?
            .to_string();
        let lib_name = pkg["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "cdylib")))
            .and_then(|t| t["name"].as_str())
            .with_context(|| {
                format!("filter crate `{package}` has no cdylib target: add `[lib] crate-type = [\"cdylib\", \"rlib\"]`")
            })?
            .to_string();
        filters.push(FilterCrate {
            package,
            lib_name,
            dir,
        });
    }

    let members: BTreeSet<&Path> = filters.iter().map(|f| f.dir.as_path()).collect();
    for parent in &wanted_parents {
        let Ok(entries) = fs::read_dir(parent) else {
            continue;
        };
        for entry in entries {
            let dir = entry?.path();
            if dir.join("Cargo.toml").exists() && !members.contains(dir.as_path()) {
                bail!(
                    "{} is a crate but not a workspace member: add it to [workspace] members in {}",
                    dir.display(),
                    root.join("Cargo.toml").display()
                );
            }
        }
    }
    filters.sort_by(|a, b| a.package.cmp(&b.package));
    Ok(filters)
}

/// `<target>/wasm-filters/<workspace-id>`, where `<target>` is the outer
/// build's target directory, recovered from
/// `OUT_DIR = <target>[/<triple>]/<profile>/build/<pkg>-<hash>/out`.
fn wasm_target_dir(out_dir: &Path, root: &Path) -> Result<PathBuf> {
    let profile_dir = out_dir
        .ancestors()
        .nth(3)
        .context("unexpected OUT_DIR layout")?;
    let mut target = profile_dir.parent().context("unexpected OUT_DIR layout")?;
    if let Ok(triple) = env::var("TARGET")
        && target.file_name().is_some_and(|n| n == triple.as_str())
    {
        target = target.parent().context("unexpected OUT_DIR layout")?;
    }
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(target
        .join("wasm-filters")
        .join(format!("{name}-{:016x}", fnv1a(root))))
}

/// A stable hash of a path (FNV-1a), to tell checkouts apart.
fn fnv1a(path: &Path) -> u64 {
    path.to_string_lossy()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
}

fn build(cargo: &OsString, root: &Path, target_dir: &Path, filters: &[FilterCrate]) -> Result<()> {
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args([
            "build",
            "--profile",
            GUEST_PROFILE,
            "--target",
            WASM_TARGET,
            "--manifest-path",
        ])
        .arg(root.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    for f in filters {
        cmd.args(["-p", &f.package]);
    }
    for var in STRIPPED_ENV {
        cmd.env_remove(var);
    }
    eprintln!("running: {cmd:?}");
    let status = cmd.status().context("running the nested cargo build")?;
    ensure!(
        status.success(),
        "building the Wasm filters failed ({status}); see the cargo output above"
    );
    Ok(())
}

/// `hello-filter` → `HELLO_FILTER`.
fn const_name(package: &str) -> String {
    package
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

fn artifacts_rs(filters: &[FilterCrate], release_dir: &Path) -> Result<String> {
    let mut code = String::from("// Generated by tests/build.rs.\n\n");
    let mut all = String::new();
    for f in filters {
        let wasm = release_dir.join(format!("{}.wasm", f.lib_name));
        ensure!(
            wasm.exists(),
            "the build did not produce {}",
            wasm.display()
        );
        let name = const_name(&f.package);
        writeln!(
            code,
            "/// The `{}` component ({}).",
            f.package,
            f.dir.display()
        )?;
        writeln!(
            code,
            "pub const {name}: &str = {:?};",
            wasm.display().to_string()
        )?;
        writeln!(all, "    ({:?}, {name}),", f.package)?;
    }
    writeln!(code, "\n/// Every filter component: (crate name, path).")?;
    writeln!(code, "pub const ALL: &[(&str, &str)] = &[\n{all}];")?;
    Ok(code)
}
