//! Test support: small builders for upstream servers, the proxy and clients,
//! and the paths of the Wasm filters `build.rs` compiled.

pub mod artifacts;
