//! One generation of the proxy's configuration, compiled and ready to serve.

use std::sync::Arc;

use crate::config::Config;
use crate::phases::{ExchangeHooks, HooksFactory};
use crate::routing::{RouteId, Router, RoutingError};
use crate::upstream::{UpstreamError, Upstreams};
use crate::wasm::{FilterLoadError, FilterSet, WasmRuntime};

use super::callouts::UpstreamCallouts;

/// Everything a request needs from the configuration: the config itself, the
/// compiled routes, the upstream clusters and the extension hooks.
///
/// The server keeps the live `Runtime` behind an atomically swappable pointer;
/// a request uses the generation it started with until it finishes.
///
/// [`Runtime::new`] builds the router and the clusters. When the hooks need
/// the clusters themselves (filter callouts), build the parts and assemble
/// the struct directly: `Runtime { config, router, upstreams, hooks }`.
pub struct Runtime {
    /// The configuration this generation was built from.
    pub config: Arc<Config>,
    /// Virtual hosts and routes.
    pub router: Router,
    /// Upstream clusters and their connection pools. Shared so that filter
    /// callouts can send through the same pools.
    pub upstreams: Arc<Upstreams>,
    /// Makes the per-exchange hooks (the filter chains).
    pub hooks: Arc<dyn HooksFactory>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("listeners", &self.config.listeners.len())
            .field("virtual_hosts", &self.config.virtual_hosts.len())
            .field("clusters", &self.config.clusters.len())
            .finish_non_exhaustive()
    }
}

/// A configuration could not be turned into a [`Runtime`].
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The routes did not compile.
    #[error("routes: {0}")]
    Routing(#[from] RoutingError),
    /// The clusters could not be set up.
    #[error("clusters: {0}")]
    Upstream(#[from] UpstreamError),
    /// A filter could not be loaded (bad module, contract mismatch, rejected config).
    #[error("filters: {0}")]
    Filters(#[from] FilterLoadError),
}

impl Runtime {
    /// Compile `config` with `hooks` as the extension point.
    /// Must run inside a tokio runtime (clusters start background tasks).
    pub fn new(config: Config, hooks: Arc<dyn HooksFactory>) -> Result<Self, RuntimeError> {
        let router = Router::new(&config)?;
        let upstreams = Arc::new(Upstreams::new(&config)?);
        Ok(Self {
            config: Arc::new(config),
            router,
            upstreams,
            hooks,
        })
    }

    /// Compile `config` with its Wasm filter chains: routes, clusters, and
    /// every filter compiled, checked against the contract and configured.
    /// Filter callouts go through this generation's clusters. Nothing is
    /// returned half-built: any failure leaves the caller's current runtime
    /// untouched. Must run inside a tokio runtime.
    pub async fn build(config: Config, wasm: &WasmRuntime) -> Result<Self, RuntimeError> {
        let router = Router::new(&config)?;
        let upstreams = Arc::new(Upstreams::new(&config)?);
        let callouts = Arc::new(UpstreamCallouts::new(Arc::clone(&upstreams)));
        let filters = FilterSet::load(wasm, &config, callouts).await?;
        Ok(Self {
            config: Arc::new(config),
            router,
            upstreams,
            hooks: Arc::new(filters),
        })
    }

    /// Compile `config` with no filters.
    pub fn without_filters(config: Config) -> Result<Self, RuntimeError> {
        Self::new(config, Arc::new(NoFilters))
    }
}

/// A [`HooksFactory`] that never adds hooks: the plain proxy.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFilters;

impl HooksFactory for NoFilters {
    fn start(&self, _route: RouteId) -> Option<Box<dyn ExchangeHooks>> {
        None
    }
}
