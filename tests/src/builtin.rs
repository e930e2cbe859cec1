//! The proxy with its real Wasm filter chains, as `weir run` builds it
//! (`Runtime::build` with a `WasmRuntime`), for tests of the built-in filters.
//!
//! The config's `{{authz_wasm}}`, `{{fault_wasm}}`, `{{canary_wasm}}` and
//! `{{hello_wasm}}` placeholders are filled with the built components' paths.
//!
//! ```no_run
//! # async fn demo(upstream: weir_tests::server::Listening) {
//! let proxy = weir_tests::builtin::start(
//!     weir_tests::proxy::new().upstream("app", &upstream).config(r#"
//! filters:
//!   - name: fault
//!     module: "{{fault_wasm}}"
//!     config: { abort: { percentage: 100, http_status: 503 } }
//! clusters:
//!   - name: app
//!     endpoints: ["{{app}}"]
//! virtual_hosts:
//!   - name: all
//!     domains: ["*"]
//!     routes:
//!       - forward: { cluster: app }
//! "#),
//! )
//! .await;
//! # }
//! ```

use std::sync::Arc;

use weir_proxy::config;
use weir_proxy::proxy::Runtime;
use weir_proxy::server;
use weir_proxy::wasm::{RuntimeOptions, WasmRuntime};

use crate::artifacts;
use crate::proxy::{ProxyBuilder, RunningProxy};

/// A proxy serving with Wasm filters, plus the Wasm runtime (its KV store
/// and metrics) the filters run in.
pub struct FilteredProxy {
    /// The running proxy.
    pub proxy: RunningProxy,
    /// The runtime the filters were loaded into.
    pub wasm: Arc<WasmRuntime>,
}

impl FilteredProxy {
    /// `http://ADDR{path}` for the first listener.
    pub fn url(&self, path: &str) -> String {
        self.proxy.url(path)
    }

    /// The sum of every series of the filter metric counter `name`
    /// (all filters, all labels).
    pub fn counter(&self, name: &str) -> u64 {
        self.wasm
            .metrics()
            .counters
            .iter()
            .filter(|(key, _)| key.name == name)
            .map(|(_, value)| value)
            .sum()
    }
}

/// Fill the built-in filters' module placeholders of `builder`.
pub fn with_builtin_modules(builder: ProxyBuilder) -> ProxyBuilder {
    builder
        .var("authz_wasm", artifacts::WEIR_FILTER_AUTHZ)
        .var("fault_wasm", artifacts::WEIR_FILTER_FAULT)
        .var("canary_wasm", artifacts::WEIR_FILTER_CANARY)
        .var("hello_wasm", artifacts::HELLO_FILTER)
}

/// Load the config of `builder` (module placeholders filled), build the
/// runtime with its filter chains and start serving. Filters run under the
/// default limits (10 ms of CPU per call): the deadline counts the guest's
/// CPU time, not wall-clock time, so a loaded machine does not fail them.
/// Returns once every listener is bound.
pub async fn start(builder: ProxyBuilder) -> FilteredProxy {
    crate::init_tracing();
    let yaml = with_builtin_modules(builder).render();
    let dir = tempfile::tempdir().expect("temp dir for the config");
    let path = dir.path().join("weir.yaml");
    std::fs::write(&path, &yaml).expect("write the test config");
    let config = match config::load(&path) {
        Ok(config) => config,
        Err(err) => panic!("test config does not load:\n{err}\n---\n{yaml}"),
    };
    let wasm = Arc::new(
        WasmRuntime::new(RuntimeOptions::from_config(&config.wasm)).expect("the Wasm runtime"),
    );
    let runtime = match Runtime::build(config, &wasm).await {
        Ok(runtime) => runtime,
        Err(err) => panic!("runtime with filters: {err}"),
    };
    let handle = server::start(runtime).await.expect("start the proxy");
    FilteredProxy {
        proxy: RunningProxy {
            addr: handle.local_addrs()[0],
            admin_addr: handle.admin_addr(),
            handle,
            wasm: Some(Arc::clone(&wasm)),
        },
        wasm,
    }
}
