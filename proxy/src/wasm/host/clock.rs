//! The `clock` and `random` interfaces.

use std::time::{SystemTime, UNIX_EPOCH};

use super::HostState;
use crate::wasm::bindings::weir::filter::{clock, random};

impl clock::Host for HostState {
    fn now_unix_ms(&mut self) -> wasmtime::Result<u64> {
        Ok(SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0))
    }

    fn monotonic_ns(&mut self) -> wasmtime::Result<u64> {
        Ok(self.shared.started.elapsed().as_nanos() as u64)
    }
}

impl random::Host for HostState {
    fn random_u64(&mut self) -> wasmtime::Result<u64> {
        Ok(rand::random())
    }
}
