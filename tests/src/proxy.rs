//! The proxy under test, in-process, through the library: the real config
//! loader, the real server, ephemeral ports.
//!
//! ```no_run
//! # async fn demo(upstream: weir_tests::server::Listening) {
//! let proxy = weir_tests::proxy::new()
//!     .upstream("app", &upstream)
//!     .config(r#"
//! clusters:
//!   - name: app
//!     endpoints: ["{{app}}"]
//! virtual_hosts:
//!   - name: all
//!     domains: ["*"]
//!     routes:
//!       - forward: { cluster: app }
//! "#)
//!     .run()
//!     .await;
//! # }
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use weir_proxy::config::{self, Config};
use weir_proxy::phases::HooksFactory;
use weir_proxy::proxy::{NoFilters, Runtime, RuntimeError};
use weir_proxy::server::{self, ServerHandle};
use weir_proxy::wasm::{RuntimeOptions, WasmRuntime};

use crate::server::Listening;

/// Describe a proxy to start.
pub fn new() -> ProxyBuilder {
    ProxyBuilder {
        yaml: String::new(),
        placeholders: BTreeMap::new(),
        hooks: Arc::new(NoFilters),
        config_dir: None,
        wasm: None,
    }
}

/// One Wasm runtime for the whole test process (engine, epoch ticker, KV
/// store, compiled-module cache), like the `weir` binary has one per process.
/// Tests that share it must use distinct KV keys.
pub fn shared_wasm() -> Arc<WasmRuntime> {
    static WASM: std::sync::OnceLock<Arc<WasmRuntime>> = std::sync::OnceLock::new();
    WASM.get_or_init(|| {
        Arc::new(WasmRuntime::new(RuntimeOptions::default()).expect("the Wasm runtime"))
    })
    .clone()
}

/// A proxy being described; [`ProxyBuilder::run`] starts it.
pub struct ProxyBuilder {
    yaml: String,
    placeholders: BTreeMap<String, String>,
    hooks: Arc<dyn HooksFactory>,
    config_dir: Option<PathBuf>,
    wasm: Option<Arc<WasmRuntime>>,
}

impl ProxyBuilder {
    /// The config, as YAML. `{{name}}` placeholders are replaced with the
    /// values given to [`Self::upstream`] / [`Self::var`]. When the YAML has
    /// no `listeners:` one listener on 127.0.0.1:0 is added, and when it has
    /// no `admin:` the admin listener goes on 127.0.0.1:0 too.
    pub fn config(mut self, yaml: impl Into<String>) -> Self {
        self.yaml = yaml.into();
        self
    }

    /// Replace `{{name}}` with the upstream's address (`127.0.0.1:PORT`).
    pub fn upstream(self, name: &str, upstream: &Listening) -> Self {
        self.var(name, upstream.addr.to_string())
    }

    /// Replace `{{name}}` with `value`.
    pub fn var(mut self, name: &str, value: impl Into<String>) -> Self {
        self.placeholders.insert(name.to_string(), value.into());
        self
    }

    /// Use these extension hooks instead of none.
    pub fn hooks(mut self, hooks: Arc<dyn HooksFactory>) -> Self {
        self.hooks = hooks;
        self
    }

    /// Run the config's Wasm filter chains (`filters:` and per-route
    /// `filters:`), loaded through [`Runtime::build`] with the process-wide
    /// [`shared_wasm`] runtime. Give module paths with placeholders:
    /// `.filter_module("echo", weir_tests::artifacts::HEADER_ECHO)` and
    /// `module: "{{echo}}"` in the YAML.
    pub fn with_filters(self) -> Self {
        self.wasm_runtime(shared_wasm())
    }

    /// Like [`Self::with_filters`], with this Wasm runtime.
    pub fn wasm_runtime(mut self, wasm: Arc<WasmRuntime>) -> Self {
        self.wasm = Some(wasm);
        self
    }

    /// Replace `{{name}}` with the path of a filter artifact, and run the
    /// config's filters (see [`Self::with_filters`]).
    pub fn filter_module(self, name: &str, path: &str) -> Self {
        let this = if self.wasm.is_some() {
            self
        } else {
            self.with_filters()
        };
        this.var(name, path)
    }

    /// Write the config file into `dir` (relative module paths resolve from there).
    pub fn config_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config_dir = Some(dir.into());
        self
    }

    /// The final YAML text: placeholders filled, listeners added.
    pub fn render(&self) -> String {
        let mut yaml = self.yaml.clone();
        for (name, value) in &self.placeholders {
            yaml = yaml.replace(&format!("{{{{{name}}}}}"), value);
        }
        assert!(
            !yaml.contains("{{"),
            "unfilled placeholder in test config:\n{yaml}"
        );
        let mut prefix = String::new();
        if !has_top_level_key(&yaml, "listeners") {
            prefix.push_str("listeners:\n  - name: test\n    address: 127.0.0.1:0\n");
        }
        if !has_top_level_key(&yaml, "admin") {
            prefix.push_str("admin:\n  address: 127.0.0.1:0\n");
        }
        format!("{prefix}{yaml}")
    }

    /// Load the config through the real loader (from a file, like the CLI).
    pub fn load(&self) -> Config {
        let dir = match &self.config_dir {
            Some(dir) => tempfile::Builder::new()
                .prefix("weir-test-")
                .tempdir_in(dir),
            None => tempfile::tempdir(),
        }
        .expect("temp dir for the config");
        let path = dir.path().join("weir.yaml");
        std::fs::write(&path, self.render()).expect("write the test config");
        match config::load(&path) {
            Ok(config) => config,
            Err(err) => panic!("test config does not load:\n{err}\n---\n{}", self.render()),
        }
    }

    /// Build the runtime the proxy would serve: with filters (see
    /// [`Self::with_filters`]) through [`Runtime::build`], else with the
    /// given hooks. The error is what a bad filter or config gives.
    pub async fn build_runtime(&self) -> Result<Runtime, RuntimeError> {
        crate::init_tracing();
        let config = self.load();
        match &self.wasm {
            Some(wasm) => Runtime::build(config, wasm).await,
            None => Runtime::new(config, Arc::clone(&self.hooks)),
        }
    }

    /// Start the proxy. Returns once every listener is bound.
    pub async fn run(self) -> RunningProxy {
        let runtime = match self.build_runtime().await {
            Ok(runtime) => runtime,
            Err(err) => panic!("runtime from config: {err}\n---\n{}", self.render()),
        };
        let handle = server::start(runtime).await.expect("start the proxy");
        RunningProxy {
            addr: handle.local_addrs()[0],
            admin_addr: handle.admin_addr(),
            handle,
            wasm: self.wasm,
        }
    }
}

fn has_top_level_key(yaml: &str, key: &str) -> bool {
    yaml.lines()
        .any(|line| line.starts_with(key) && line[key.len()..].starts_with(':'))
}

/// A proxy serving in this process.
#[derive(Debug, Clone)]
pub struct RunningProxy {
    /// The first listener's address.
    pub addr: SocketAddr,
    /// The admin listener's address, if enabled.
    pub admin_addr: Option<SocketAddr>,
    /// Controls the server (reload, shutdown).
    pub handle: ServerHandle,
    /// The Wasm runtime the filters run in, when the proxy runs filters.
    pub wasm: Option<Arc<WasmRuntime>>,
}

impl RunningProxy {
    /// `http://ADDR{path}` for the first listener.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}
