//! Compiles the control API (`proto/weir/control/v1/control.proto`) to Rust.
//!
//! `protox` parses the proto in pure Rust, so no system `protoc` is needed.
//! Two outputs land in OUT_DIR:
//! - `weir.control.v1.rs`: prost messages plus the tonic client and server;
//! - `weir_control_descriptor.bin`: the encoded FileDescriptorSet, with the
//!   well-known types it imports, served by gRPC reflection.

use std::error::Error;
use std::path::PathBuf;

const PROTO_ROOT: &str = "../proto";
const CONTROL_PROTO: &str = "weir/control/v1/control.proto";

fn main() -> Result<(), Box<dyn Error>> {
    // An absolute path: checkouts (git worktrees) sharing one target
    // directory share this build script's output too, and cargo resolves a
    // relative path against whichever checkout builds now. With a relative
    // path, a checkout whose proto is older than the last run (from another
    // checkout) would reuse that checkout's generated code; with absolute
    // paths the recorded path differs, so the script runs again.
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    println!(
        "cargo:rerun-if-changed={}",
        manifest_dir.join(PROTO_ROOT).display()
    );

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let mut compiler = protox::Compiler::new([PROTO_ROOT])?;
    compiler
        .include_source_info(true)
        .include_imports(true)
        .open_file(CONTROL_PROTO)
        .map_err(|e| format!("{CONTROL_PROTO}: {e}"))?;

    // Reflection needs the imports (Timestamp, Duration) to resolve every type.
    std::fs::write(
        out_dir.join("weir_control_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;

    // prost-build maps the well-known types to prost-types by itself, but
    // needs their descriptors in the set to analyse the messages using them.
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Uploaded modules are handed on without a copy.
        .bytes(".weir.control.v1.ModuleSource.wasm")
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
