//! Test support: small builders for upstream servers, the proxy and clients,
//! and the paths of the Wasm filters `build.rs` compiled.
//!
//! - [`server`]: HTTP/1.1, h2c and auto upstreams with per-path handlers.
//! - [`proxy`]: the proxy in-process, from YAML with `{{placeholders}}`.
//! - [`builtin`]: the same with the config's Wasm filter chains loaded.
//! - [`client`]: HTTP/1.1 and h2c clients, streamed bodies, raw sockets.
//! - [`grpc`], [`websocket`]: peers for those protocols.
//! - [`pattern`]: checkable data for large streamed bodies.
//! - [`one_filter`]: a proxy whose chain is one filter, and failure checks.
//! - [`marker`]: new versions of the `reload-marker` filters, told apart by responses.
//! - [`managed`]: the proxy under its runtime manager, file watching, the control API.
//! - [`weir_bin`]: the real `weir` binary for CLI tests.

pub mod artifacts;
pub mod builtin;
pub mod client;
pub mod grpc;
pub mod managed;
pub mod marker;
pub mod one_filter;
pub mod pattern;
pub mod proxy;
pub mod server;
pub mod websocket;
pub mod weir_bin;

/// Send the proxy's logs to the test output (shown for failing tests).
/// `RUST_LOG` picks the level; default `warn`. Safe to call repeatedly.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}
