//! Test filter `memory-bomb`: when the request path starts with `path`
//! (default `/bomb`), allocates and touches `chunk_kib` KiB blocks (default
//! 1024) and keeps them until an allocation fails, which traps. The proxy's
//! memory limit must stop it. Other paths pass through.

use weir_sdk::prelude::*;

fn default_path() -> String {
    "/bomb".to_string()
}
fn default_chunk_kib() -> usize {
    1024
}

/// Configuration.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Requests whose path starts with this blow up.
    #[serde(default = "default_path")]
    pub path: String,
    /// Size of each allocation in KiB.
    #[serde(default = "default_chunk_kib")]
    pub chunk_kib: usize,
}

/// The filter.
pub struct MemoryBomb {
    cfg: Config,
}

/// Allocate until the allocator gives up (which aborts: a trap in Wasm).
fn explode(chunk: usize) -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        // Non-zero fill so every page is really written.
        hoard.push(vec![0xA5; chunk]);
        std::hint::black_box(&hoard);
    }
}

#[weir_sdk::filter]
impl Filter for MemoryBomb {
    type Config = Config;

    fn new(cfg: Config) -> Result<Self> {
        if cfg.chunk_kib == 0 {
            return Err(Error::config("`chunk_kib` must be positive"));
        }
        Ok(MemoryBomb { cfg })
    }

    fn on_request_headers(&self, req: &mut Request) -> Result<Action> {
        if req.path().starts_with(&self.cfg.path) {
            explode(self.cfg.chunk_kib * 1024);
        }
        Ok(Action::Continue)
    }
}

#[cfg(test)]
mod tests {
    use weir_sdk::testing::{self, json};

    use super::*;

    #[test]
    fn other_paths_pass() {
        let f = testing::load::<MemoryBomb>(json!({})).unwrap();
        assert_eq!(
            f.request_headers(&mut testing::Request::get("/ok"))
                .unwrap(),
            Action::Continue
        );
    }

    #[test]
    fn rejects_zero_sized_chunks() {
        assert!(testing::load::<MemoryBomb>(json!({ "chunk_kib": 0 })).is_err());
    }
}
