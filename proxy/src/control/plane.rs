//! The seam between the control API and the proxy's runtime.
//!
//! The gRPC server ([`super::server`]) only translates requests into calls on
//! a [`ControlPlane`]; the runtime manager implements it (validate, build the
//! new runtime, swap it in) and publishes what happens on an
//! [`EventBus`](super::events::EventBus).

use std::path::PathBuf;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use tokio::sync::broadcast;

use super::events::Event;
use super::types::{ApplySummary, FilterInfo, Status};

/// What the control API asks of the running proxy.
///
/// Every method either fully succeeds or changes nothing. Failures carry the
/// reason for the operator verbatim (see [`ControlError`]).
pub trait ControlPlane: Send + Sync + 'static {
    /// The filters of the default chain, in chain order.
    fn list_filters(&self) -> BoxFuture<'_, Result<Vec<FilterInfo>, ControlError>>;

    /// Compile, configure and insert a filter.
    fn load_filter(&self, req: LoadFilter) -> BoxFuture<'_, Result<FilterInfo, ControlError>>;

    /// Replace a filter's module, keeping its place and config; `None` reads
    /// the current source again. The replaced version becomes the rollback target.
    fn reload_filter(
        &self,
        name: String,
        source: Option<ModuleSource>,
    ) -> BoxFuture<'_, Result<FilterInfo, ControlError>>;

    /// Remove a filter from the chain.
    fn unload_filter(&self, name: String) -> BoxFuture<'_, Result<(), ControlError>>;

    /// Go back to the version the filter ran before its last reload.
    fn rollback_filter(&self, name: String) -> BoxFuture<'_, Result<FilterInfo, ControlError>>;

    /// Validate a whole configuration and swap it in atomically.
    fn apply_config(&self, req: ApplyConfig) -> BoxFuture<'_, Result<ApplySummary, ControlError>>;

    /// Version, uptime, listeners, clusters with endpoint health, filters.
    fn status(&self) -> BoxFuture<'_, Result<Status, ControlError>>;

    /// A receiver of every event published from now on.
    fn events(&self) -> broadcast::Receiver<Event>;

    /// The most recent events, oldest first (at most `limit`). Implementations
    /// backed by an [`EventBus`](super::events::EventBus) return its history.
    fn recent_events(&self, limit: usize) -> Vec<Event>;
}

/// A request to load a filter.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadFilter {
    /// Unique name for the new filter.
    pub name: String,
    /// The component.
    pub source: ModuleSource,
    /// Configuration handed to the filter's `configure`.
    pub config: serde_json::Value,
    /// Where in the default chain.
    pub position: Position,
}

/// A request to apply a configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplyConfig {
    /// The whole configuration file.
    pub text: String,
    /// How it is written.
    pub format: ConfigFormat,
    /// A name for the text in error messages, usually the file's path.
    pub origin: String,
}

/// Where a filter's WebAssembly component comes from.
#[derive(Clone, PartialEq)]
pub enum ModuleSource {
    /// A path on the proxy's machine.
    Path(PathBuf),
    /// The component's bytes, uploaded.
    Bytes(Bytes),
}

impl std::fmt::Debug for ModuleSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Path(path) => f.debug_tuple("Path").field(path).finish(),
            Self::Bytes(bytes) => write!(f, "Bytes({} bytes)", bytes.len()),
        }
    }
}

/// Where a new filter goes in the default chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Position {
    /// After every other filter.
    #[default]
    End,
    /// Immediately before the named filter.
    Before(String),
    /// Immediately after the named filter.
    After(String),
}

/// How a configuration text is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ConfigFormat {
    /// YAML (which accepts JSON too).
    #[default]
    Yaml,
    /// JSON.
    Json,
}

impl ConfigFormat {
    /// The format a file's extension implies: `.json` is JSON, anything else YAML.
    pub fn from_path(path: &std::path::Path) -> Self {
        match path.extension().and_then(|ext| ext.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("json") => Self::Json,
            _ => Self::Yaml,
        }
    }
}

/// Why a control operation did not happen. The message reaches the operator
/// verbatim, so it should say what was wrong and, where it helps, what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// The request is malformed (bad name, bad JSON, unknown anchor...).
    #[error("{0}")]
    InvalidArgument(String),
    /// The named filter does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A filter with that name is already loaded.
    #[error("{0}")]
    AlreadyExists(String),
    /// The proxy refused the change: the module does not compile or
    /// instantiate, the filter rejects its config, the config does not
    /// validate, there is nothing to roll back to.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A bug or an I/O failure on the proxy's side.
    #[error("{0}")]
    Internal(String),
}

impl ControlError {
    /// The message, without the kind.
    pub fn message(&self) -> &str {
        match self {
            Self::InvalidArgument(m)
            | Self::NotFound(m)
            | Self::AlreadyExists(m)
            | Self::FailedPrecondition(m)
            | Self::Internal(m) => m,
        }
    }
}
