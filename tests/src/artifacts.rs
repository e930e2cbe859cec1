//! Paths of the Wasm components built by `build.rs` (filled in by the SDK work).
