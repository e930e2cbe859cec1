//! An in-memory [`ControlPlane`] for testing the server and CLI layers: it
//! really keeps a filter chain (with versions and rollback), a parsed
//! configuration and an [`EventBus`], but compiles nothing. The runtime
//! manager is the real implementation.

use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::sync::broadcast;

use crate::config::Config;
use crate::control::events::{Event, EventBus, EventKind};
use crate::control::plane::{
    ApplyConfig, ConfigFormat, ControlError, ControlPlane, LoadFilter, ModuleSource, Position,
};
use crate::control::types::{
    ApplySummary, ClusterStatus, EndpointHealth, EndpointStatus, FilterCounters, FilterInfo,
    FilterVersion, ListenerStatus, ModuleCacheStatus, Status,
};

/// The configuration a fresh plane runs.
pub(super) const INITIAL_CONFIG: &str = r#"
listeners: [{ name: main, address: "127.0.0.1:8080" }]
virtual_hosts:
  - { name: default, domains: ["*"], routes: [{ forward: { cluster: api } }] }
clusters:
  - { name: api, endpoints: ["127.0.0.1:9000"] }
"#;

struct Loaded {
    info: FilterInfo,
    source: ModuleSource,
    previous: Option<(FilterVersion, Bytes)>,
    module: Bytes,
}

struct State {
    filters: Vec<Loaded>,
    config: Config,
}

pub(super) struct MemoryPlane {
    pub(super) bus: EventBus,
    state: Mutex<State>,
    started: Instant,
}

impl MemoryPlane {
    pub(super) fn new() -> Self {
        let config = serde_yaml_ng::from_str(INITIAL_CONFIG).expect("initial config parses");
        Self {
            bus: EventBus::new(64),
            state: Mutex::new(State {
                filters: Vec::new(),
                config,
            }),
            started: Instant::now(),
        }
    }

    pub(super) fn filter_names(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .filters
            .iter()
            .map(|f| f.info.name.clone())
            .collect()
    }

    pub(super) fn config(&self) -> Config {
        self.state.lock().unwrap().config.clone()
    }

    /// Reads the module and checks it is WebAssembly; a failure is
    /// published and returned with the same reason.
    fn module(&self, name: &str, source: &ModuleSource) -> Result<Bytes, ControlError> {
        let bytes = match source {
            ModuleSource::Bytes(bytes) => Ok(bytes.clone()),
            ModuleSource::Path(path) => std::fs::read(path).map(Bytes::from).map_err(|e| {
                format!(
                    "filter {name} failed to load: cannot read {}: {e}",
                    path.display()
                )
            }),
        };
        let checked = bytes.and_then(|bytes| {
            if bytes.starts_with(b"\0asm") {
                Ok(bytes)
            } else {
                Err(format!(
                    "filter {name} failed to load: not a WebAssembly component (bad magic)"
                ))
            }
        });
        checked.map_err(|reason| {
            self.bus
                .publish(EventKind::FilterLoadFailed, Some(name), reason.clone());
            ControlError::FailedPrecondition(reason)
        })
    }
}

fn not_found(name: &str) -> ControlError {
    ControlError::NotFound(format!("no filter named {name}"))
}

fn describe(source: &ModuleSource) -> String {
    match source {
        ModuleSource::Path(path) => path.display().to_string(),
        ModuleSource::Bytes(_) => "upload".to_string(),
    }
}

impl ControlPlane for MemoryPlane {
    fn list_filters(&self) -> BoxFuture<'_, Result<Vec<FilterInfo>, ControlError>> {
        let filters = self
            .state
            .lock()
            .unwrap()
            .filters
            .iter()
            .map(|f| f.info.clone())
            .collect();
        async move { Ok(filters) }.boxed()
    }

    fn load_filter(&self, req: LoadFilter) -> BoxFuture<'_, Result<FilterInfo, ControlError>> {
        async move {
            if self.filter_names().contains(&req.name) {
                return Err(ControlError::AlreadyExists(format!(
                    "filter {} is already loaded",
                    req.name
                )));
            }
            let module = self.module(&req.name, &req.source)?;
            let mut state = self.state.lock().unwrap();
            let at = match &req.position {
                Position::End => state.filters.len(),
                Position::Before(anchor) | Position::After(anchor) => {
                    let index = state
                        .filters
                        .iter()
                        .position(|f| &f.info.name == anchor)
                        .ok_or_else(|| not_found(anchor))?;
                    if matches!(req.position, Position::After(_)) {
                        index + 1
                    } else {
                        index
                    }
                }
            };
            let info = FilterInfo {
                name: req.name.clone(),
                module: describe(&req.source),
                config: req.config,
                version: FilterVersion::of(&module, SystemTime::now()),
                previous: None,
                counters: FilterCounters::default(),
            };
            state.filters.insert(
                at,
                Loaded {
                    info: info.clone(),
                    source: req.source,
                    previous: None,
                    module,
                },
            );
            self.bus.publish(
                EventKind::FilterLoaded,
                Some(&req.name),
                format!("version {}", info.version.sha256),
            );
            Ok(info)
        }
        .boxed()
    }

    fn reload_filter(
        &self,
        name: String,
        source: Option<ModuleSource>,
    ) -> BoxFuture<'_, Result<FilterInfo, ControlError>> {
        async move {
            let current_source = {
                let state = self.state.lock().unwrap();
                let loaded = state
                    .filters
                    .iter()
                    .find(|f| f.info.name == name)
                    .ok_or_else(|| not_found(&name))?;
                loaded.source.clone()
            };
            let source = source.unwrap_or(current_source);
            let module = self.module(&name, &source)?;
            let mut state = self.state.lock().unwrap();
            let loaded = state
                .filters
                .iter_mut()
                .find(|f| f.info.name == name)
                .ok_or_else(|| not_found(&name))?;
            let old_module = std::mem::replace(&mut loaded.module, module);
            loaded.previous = Some((loaded.info.version.clone(), old_module));
            loaded.info.previous = Some(loaded.info.version.clone());
            loaded.info.version = FilterVersion::of(&loaded.module, SystemTime::now());
            loaded.info.module = describe(&source);
            loaded.info.counters = FilterCounters::default();
            loaded.source = source;
            let info = loaded.info.clone();
            self.bus.publish(
                EventKind::FilterReloaded,
                Some(&name),
                format!("version {}", info.version.sha256),
            );
            Ok(info)
        }
        .boxed()
    }

    fn unload_filter(&self, name: String) -> BoxFuture<'_, Result<(), ControlError>> {
        async move {
            let mut state = self.state.lock().unwrap();
            let index = state
                .filters
                .iter()
                .position(|f| f.info.name == name)
                .ok_or_else(|| not_found(&name))?;
            state.filters.remove(index);
            self.bus
                .publish(EventKind::FilterUnloaded, Some(&name), "unloaded");
            Ok(())
        }
        .boxed()
    }

    fn rollback_filter(&self, name: String) -> BoxFuture<'_, Result<FilterInfo, ControlError>> {
        async move {
            let mut state = self.state.lock().unwrap();
            let loaded = state
                .filters
                .iter_mut()
                .find(|f| f.info.name == name)
                .ok_or_else(|| not_found(&name))?;
            let Some((version, module)) = loaded.previous.take() else {
                return Err(ControlError::FailedPrecondition(format!(
                    "filter {name} has no previous version to roll back to"
                )));
            };
            loaded.module = module;
            loaded.info.previous = None;
            loaded.info.version = version;
            let info = loaded.info.clone();
            self.bus.publish(
                EventKind::FilterRolledBack,
                Some(&name),
                format!("version {}", info.version.sha256),
            );
            Ok(info)
        }
        .boxed()
    }

    fn apply_config(&self, req: ApplyConfig) -> BoxFuture<'_, Result<ApplySummary, ControlError>> {
        async move {
            let parsed: Result<Config, String> = match req.format {
                ConfigFormat::Yaml => serde_yaml_ng::from_str(&req.text).map_err(|e| e.to_string()),
                ConfigFormat::Json => serde_json::from_str(&req.text).map_err(|e| e.to_string()),
            };
            let new = parsed.map_err(|e| {
                let reason = format!("{}: {e}", req.origin);
                self.bus
                    .publish(EventKind::ConfigRejected, None, reason.clone());
                ControlError::FailedPrecondition(reason)
            })?;
            let mut state = self.state.lock().unwrap();
            let summary = ApplySummary::between(&state.config, &new);
            state.config = new;
            self.bus.publish(
                EventKind::ConfigApplied,
                None,
                format!("{} changes", summary.changes.len()),
            );
            Ok(summary)
        }
        .boxed()
    }

    fn status(&self) -> BoxFuture<'_, Result<Status, ControlError>> {
        let state = self.state.lock().unwrap();
        let status = Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime: self.started.elapsed(),
            listeners: state
                .config
                .listeners
                .iter()
                .map(|l| ListenerStatus {
                    name: l.name.clone().unwrap_or_else(|| l.address.clone()),
                    address: l.address.clone(),
                })
                .collect(),
            clusters: state
                .config
                .clusters
                .iter()
                .map(|c| ClusterStatus {
                    name: c.name.clone(),
                    endpoints: c
                        .endpoints
                        .iter()
                        .map(|e| EndpointStatus {
                            address: e.clone(),
                            health: EndpointHealth::Healthy,
                        })
                        .collect(),
                })
                .collect(),
            filters: state.filters.iter().map(|f| f.info.clone()).collect(),
            // Compiles nothing.
            module_cache: ModuleCacheStatus::default(),
        };
        async move { Ok(status) }.boxed()
    }

    fn events(&self) -> broadcast::Receiver<Event> {
        self.bus.subscribe()
    }

    fn recent_events(&self, limit: usize) -> Vec<Event> {
        self.bus.recent(limit)
    }
}
