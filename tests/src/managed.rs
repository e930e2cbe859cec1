//! The proxy under its runtime manager (what `weir run` does), in-process:
//! a config file in a temp dir, the real loader, the real manager.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use weir_proxy::config;
use weir_proxy::control::client::ControlClient;
use weir_proxy::control::{
    ApplyConfig, BearerToken, ConfigFormat, ControlAddress, ControlError, ControlPlane,
    ControlServerConfig, RunningControlServer, ServeError, serve_with,
};
use weir_proxy::manager::watch::{self, FileWatcher};
use weir_proxy::manager::{Manager, ManagerOptions};
use weir_proxy::wasm::{RuntimeOptions, WasmRuntime};

/// The config of a managed proxy under test: one listener on an ephemeral
/// port, no admin listener and no control API, a generous CPU limit (debug
/// builds on a busy CI machine; these tests are not about CPU limits), the
/// given `filters:` entries, and every request forwarded to `upstream` or,
/// without one, answered `200 ok` by the route itself.
pub fn managed_config(filters: &str, upstream: Option<&str>) -> String {
    let (clusters, action) = match upstream {
        Some(upstream) => (
            format!("clusters:\n  - name: app\n    endpoints: [\"{upstream}\"]\n"),
            "forward: { cluster: app }",
        ),
        None => (
            String::new(),
            "direct_response: { status: 200, body: \"ok\" }",
        ),
    };
    format!(
        r#"listeners:
  - name: main
    address: 127.0.0.1:0
admin:
  enabled: false
control:
  enabled: false
wasm:
  default_limits: {{ cpu_per_call: 2s }}
filters:
{filters}{clusters}virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
      - {action}
"#
    )
}
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

impl Managed {
    /// Starts watching the config file and the module files, as `weir run`
    /// does by default. Changes made after this returns are seen.
    pub async fn watch(&self) -> FileWatcher {
        watch::spawn(self.manager.clone())
            .await
            .expect("watch the config and module files")
    }

    /// Serves this proxy's control API (the real tonic server, the manager
    /// as its plane) with `config`; it stops when the result is dropped.
    pub async fn serve_control(
        &self,
        config: ControlServerConfig,
    ) -> Result<ServedControl, ServeError> {
        let plane: Arc<dyn ControlPlane> = self.manager.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = serve_with(plane, config, async move {
            let _ = stopped.await;
        })
        .await?;
        Ok(ServedControl {
            server,
            _stop: stop,
        })
    }

    /// [`Managed::serve_control`] on an ephemeral 127.0.0.1 port, no token.
    pub async fn serve_control_on_loopback(&self) -> ServedControl {
        let bind = "127.0.0.1:0".parse().expect("a socket address");
        self.serve_control(ControlServerConfig::new(bind))
            .await
            .expect("serve the control API")
    }
}

/// A running control API server; shuts down when dropped.
pub struct ServedControl {
    server: RunningControlServer,
    _stop: oneshot::Sender<()>,
}

impl ServedControl {
    /// Where it listens (the real port).
    pub fn address(&self) -> &ControlAddress {
        self.server.address()
    }

    /// A client sending `token` (if any) with every call.
    pub async fn client(&self, token: Option<&str>) -> ControlClient {
        let token = token.map(|t| BearerToken::new(t, "test").expect("a valid token"));
        ControlClient::connect(self.address(), token)
            .await
            .expect("connect to the control API")
    }
}

/// Polls `probe` until it returns `Some`, or panics after `deadline`
/// (naming `what`). For waiting on something asynchronous (a watched file
/// applied) without sleeping a fixed time: the probe itself is the pace
/// (each is a request or a call).
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            start.elapsed() < deadline,
            "{what}: not seen within {deadline:?}"
        );
        tokio::task::yield_now().await;
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
