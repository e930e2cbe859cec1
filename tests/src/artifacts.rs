//! Paths of the Wasm filter components `build.rs` compiled (release,
//! `wasm32-wasip2`), one constant per filter crate, named after the crate in
//! SCREAMING_SNAKE_CASE:
//!
//! - `HELLO_FILTER`: `examples/hello-filter`
//! - every crate in `tests/filters/` (`HEADER_ECHO`, `LOCAL_REPLY`,
//!   `SET_CLUSTER`, `BODY_REWRITE`, `CALLOUT`, `KV_COUNTER`, `TRAP`,
//!   `INFINITE_LOOP`, `MEMORY_BOMB`, `DEEP_RECURSION`, `BAD_CONFIG`, `DELAY`,
//!   `ORDER_TAG`, `HOST_APIS`, `NOT_A_FILTER`, `GUEST_STATE`, `RELOAD_MARKER`,
//!   `RELOAD_MARKER_LARGE`, `VERSIONED_V1`, `VERSIONED_V2`); each crate's docs
//!   describe its configuration and behaviour
//! - every crate in `filters/` (e.g. `weir-filter-authz` → `WEIR_FILTER_AUTHZ`)
//!
//! [`ALL`] lists them all as (crate name, path). The paths are absolute and
//! the files exist when the tests run.

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_artifact_is_a_wasm_component() {
        assert!(
            ALL.len() >= 16,
            "expected the example and the test filters, got {ALL:?}"
        );
        for (name, path) in ALL {
            let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{name}: {path}: {e}"));
            // `\0asm`, then the component-model layer (a core module has version 1, layer 0).
            assert_eq!(&bytes[..4], b"\0asm", "{name} is not Wasm");
            assert_eq!(
                &bytes[4..8],
                &[0x0d, 0x00, 0x01, 0x00],
                "{name} is not a component"
            );
        }
    }
}
