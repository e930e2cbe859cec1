//! The runtime manager: owns the running proxy's configuration and filter
//! versions, and changes them without dropping anything.
//!
//! Every change (a filter loaded, reloaded, unloaded or rolled back, a
//! configuration applied, a watched file changed) goes the same way:
//!
//! 1. compute the new declared [`Config`] and the filters' versions (module
//!    bytes are copied into the content-addressed [`ModuleStore`] first, so a
//!    version is exactly what gets compiled and a rollback has its bytes);
//! 2. build a complete new [`Runtime`] off the request path: routes,
//!    clusters, every filter compiled (or found in the per-process / disk
//!    cache), checked against the contract and configured;
//! 3. only then swap it in with [`ServerHandle::reload`]: new requests use
//!    it, requests in flight finish on the generation they started with, so
//!    no request ever sees a mix of versions, and connections stay open.
//!
//! A failure at any step changes nothing: the running version keeps
//! serving, and the reason goes back to the caller verbatim, to the event
//! bus and to the log. Changes are serialised by one lock.
//!
//! Filter failures while handling requests (traps, CPU deadlines, ...) are
//! published too, rate-limited: `failures` wires the runtime's failure
//! reports to the event bus.
//!
//! - [`store`]: the module store. `filters`: filter operations. `apply`:
//!   configuration apply. `status`: status and counters. `plane`: the
//!   [`ControlPlane`](crate::control::ControlPlane) implementation.
//!   [`watch`]: file watching.

mod apply;
mod failures;
mod filters;
mod plane;
mod status;
pub mod store;
pub mod watch;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::sync::Mutex;

use crate::config::Config;
use crate::control::{EventBus, FilterVersion};
use crate::proxy::{Runtime, RuntimeError};
use crate::server::{self, ServerError, ServerHandle};
use crate::wasm::WasmRuntime;

pub use store::ModuleStore;

/// How the manager is set up.
#[derive(Debug, Clone)]
pub struct ManagerOptions {
    /// The configuration file: relative paths in applied configurations are
    /// resolved against its directory, and a watched change re-reads it.
    pub config_path: PathBuf,
    /// Where module bytes are kept (`<sha256>.wasm`).
    pub store_dir: PathBuf,
}

/// Why the manager could not start.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// The module store could not be created.
    #[error("module store {}: {source}", path.display())]
    Store {
        /// The store directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A filter's module could not be read or stored.
    #[error("{0}")]
    Module(String),
    /// The configuration could not be built into a runtime.
    #[error("building the proxy from the config: {0}")]
    Build(#[from] RuntimeError),
    /// The listeners could not be started.
    #[error(transparent)]
    Server(#[from] ServerError),
}

/// One version of a filter's module.
#[derive(Debug, Clone)]
pub(crate) struct ModuleVersion {
    /// What the operator sees as the module: its path, or `upload`.
    pub(crate) label: String,
    /// The `module` written in the declared configuration.
    pub(crate) declared: String,
    /// The module's bytes in the store.
    pub(crate) stored: PathBuf,
    /// SHA-256 and load time.
    pub(crate) version: FilterVersion,
}

/// A filter of the default chain with its running and previous versions.
#[derive(Debug, Clone)]
pub(crate) struct FilterRecord {
    pub(crate) name: String,
    pub(crate) current: ModuleVersion,
    pub(crate) previous: Option<ModuleVersion>,
    /// The filter's process-wide counters when the current version was
    /// loaded, so the counters shown belong to the running version.
    pub(crate) base: status::Totals,
}

/// What is running: the configuration as declared (module paths as the
/// operator gave them) and the version of each default-chain filter.
#[derive(Debug, Clone)]
pub(crate) struct State {
    pub(crate) declared: Config,
    pub(crate) filters: Vec<FilterRecord>,
}

impl State {
    pub(crate) fn record(&self, name: &str) -> Option<&FilterRecord> {
        self.filters.iter().find(|f| f.name == name)
    }

    /// The configuration the runtime is built from: the declared one with
    /// each default-chain filter's module replaced by its stored bytes.
    pub(crate) fn effective(&self) -> Config {
        let mut config = self.declared.clone();
        for filter in &mut config.filters {
            if let Some(record) = self.filters.iter().find(|r| r.name == filter.name) {
                filter.module = record.current.stored.to_string_lossy().into_owned();
            }
        }
        config
    }
}

/// The runtime manager of one running proxy.
pub struct Manager {
    wasm: Arc<WasmRuntime>,
    server: ServerHandle,
    events: Arc<EventBus>,
    store: ModuleStore,
    config_path: PathBuf,
    started: Instant,
    state: Mutex<State>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("server", &self.server)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Manager {
    /// Builds `config` (as loaded from `options.config_path`), starts the
    /// listeners, and returns the manager of the running proxy.
    pub async fn start(
        config: Config,
        wasm: Arc<WasmRuntime>,
        options: ManagerOptions,
    ) -> Result<Arc<Self>, ManagerError> {
        let store =
            ModuleStore::open(&options.store_dir).map_err(|source| ManagerError::Store {
                path: options.store_dir.clone(),
                source,
            })?;
        let filters = filters::records_for(&store, &config, &[], SystemTime::now(), &wasm)
            .await
            .map_err(ManagerError::Module)?;
        let state = State {
            declared: config,
            filters,
        };
        let events = Arc::new(EventBus::default());
        // Before the first request: filter failures at run time become events.
        wasm.set_failure_sink(Arc::new(failures::FailureEvents::new(events.clone())));
        let runtime = Runtime::build(state.effective(), &wasm).await?;
        let server = server::start(runtime).await?;
        Ok(Arc::new(Self {
            wasm,
            server,
            events,
            store,
            config_path: options.config_path,
            started: Instant::now(),
            state: Mutex::new(state),
        }))
    }

    /// The running server (addresses, shutdown).
    pub fn server(&self) -> &ServerHandle {
        &self.server
    }

    /// The event bus every change is published on.
    pub fn event_bus(&self) -> &EventBus {
        &self.events
    }

    /// The WebAssembly runtime.
    pub fn wasm(&self) -> &WasmRuntime {
        &self.wasm
    }

    /// The configuration file this proxy was started with.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The module files of the declared default chain and route filters
    /// (what file watching watches, with the config file).
    pub async fn module_paths(&self) -> Vec<PathBuf> {
        let state = self.state.lock().await;
        let mut paths: Vec<PathBuf> = state
            .declared
            .filters
            .iter()
            .map(|f| PathBuf::from(&f.module))
            .chain(
                state
                    .declared
                    .virtual_hosts
                    .iter()
                    .flat_map(|vh| &vh.routes)
                    .flat_map(|r| &r.filters)
                    .filter_map(|f| f.module.as_ref().map(PathBuf::from)),
            )
            .filter(|p| !self.store.contains(p))
            .collect();
        paths.sort();
        paths.dedup();
        paths
    }

    /// Builds the runtime of `next` and swaps it in; on success `next`
    /// becomes the state. Holds no request: runs while the old runtime serves.
    async fn swap(&self, state: &mut State, next: State) -> Result<(), String> {
        let runtime = Runtime::build(next.effective(), &self.wasm)
            .await
            .map_err(|e| e.to_string())?;
        self.server.reload(runtime);
        *state = next;
        Ok(())
    }
}
