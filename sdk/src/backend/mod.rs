//! Where SDK calls go: the proxy's WIT imports when compiled to `wasm32`, an
//! in-memory host (driven by `crate::testing`) everywhere else.
//!
//! Both backends offer the same functions and the same handle types
//! (`RequestRef`, `ResponseRef`, `BodyRef`) with the same methods, so the
//! public API in `exchange.rs`, `kv.rs`, ... is written once.

/// The bindings generated from `wit/filter.wit`: the only `generate!` of the
/// SDK. Compiled on every target so a native `cargo check` catches binding
/// mismatches too; on native targets the imports are never called.
#[allow(unsafe_code, missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "filter",
        pub_export_macro: true,
        export_macro_name: "export_filter",
        default_bindings_module: "::weir_sdk::__private::bindings",
        generate_all,
    });
}

#[cfg(target_arch = "wasm32")]
pub mod exports;
#[cfg(target_arch = "wasm32")]
mod wasm;
#[cfg(target_arch = "wasm32")]
pub(crate) use wasm::*;

#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod native;
#[cfg(not(target_arch = "wasm32"))]
pub(crate) use native::*;
