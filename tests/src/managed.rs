//! The proxy under its runtime manager (what `weir run` does), in-process:
//! a config file in a temp dir, the real loader, the real manager.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use weir_proxy::config;
use weir_proxy::control::{ApplyConfig, ConfigFormat, ControlError, ControlPlane};
use weir_proxy::manager::{Manager, ManagerOptions};
use weir_proxy::wasm::{RuntimeOptions, WasmRuntime};

/// A small engine for tests (the default reserves slots for 4096 instances).
pub fn wasm_options(cache_dir: Option<PathBuf>) -> RuntimeOptions {
    RuntimeOptions {
        max_instances: 128,
        cache_dir,
        ..RuntimeOptions::default()
    }
}

/// A managed proxy and its config directory.
pub struct Managed {
    /// The manager (also the control plane).
    pub manager: Arc<Manager>,
    /// The config file.
    pub config_path: PathBuf,
    /// The first listener's address as `http://ADDR`.
    pub base: String,
}

impl Managed {
    /// Writes `yaml` to `dir/weir.yaml` and starts it under a manager.
    pub async fn start(dir: &Path, yaml: &str, cache_dir: Option<PathBuf>) -> Managed {
        crate::init_tracing();
        let config_path = dir.join("weir.yaml");
        std::fs::write(&config_path, yaml).expect("write the config");
        let config = config::load(&config_path).unwrap_or_else(|e| panic!("config: {e}"));
        let wasm = Arc::new(WasmRuntime::new(wasm_options(cache_dir)).expect("wasm runtime"));
        let manager = Manager::start(
            config,
            wasm,
            ManagerOptions {
                config_path: config_path.clone(),
                store_dir: dir.join("store"),
            },
        )
        .await
        .expect("start the managed proxy");
        let base = format!("http://{}", manager.server().local_addrs()[0]);
        Managed {
            manager,
            config_path,
            base,
        }
    }

    /// `weir config apply` of `yaml`, in-process.
    pub async fn apply(
        &self,
        yaml: &str,
    ) -> Result<weir_proxy::control::ApplySummary, ControlError> {
        self.manager
            .apply_config(ApplyConfig {
                text: yaml.to_owned(),
                format: ConfigFormat::Yaml,
                origin: self.config_path.to_string_lossy().into_owned(),
            })
            .await
    }
}

/// `bytes` (a component) with a custom section appended: the same
/// behaviour, a different SHA-256 — a new version of a module.
pub fn with_custom_section(bytes: &[u8], tag: &str) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let name = b"weir-test-version";
    let mut content = Vec::new();
    leb(name.len(), &mut content);
    content.extend_from_slice(name);
    content.extend_from_slice(tag.as_bytes());
    let mut out = bytes.to_vec();
    out.push(0);
    leb(content.len(), &mut out);
    out.extend_from_slice(&content);
    out
}
