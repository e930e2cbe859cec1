//! The WebAssembly filter host.
