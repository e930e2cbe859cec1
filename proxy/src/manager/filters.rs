//! Filter operations: load, reload, unload, rollback. Each computes the next
//! [`State`] and hands it to [`Manager::swap`]; nothing changes on failure.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::config::{self, Config, FilterConfig};
use crate::control::{ControlError, EventKind, FilterInfo, LoadFilter, ModuleSource, Position};
use crate::wasm::WasmRuntime;

use super::store::ModuleStore;
use super::{FilterRecord, Manager, ModuleVersion, State};

/// The label shown for a module that was uploaded rather than read from a path.
pub(crate) const UPLOAD: &str = "upload";

/// Reads `path` and copies it into the store.
async fn store_file(store: &ModuleStore, path: &Path) -> Result<(String, PathBuf), String> {
    let owned = path.to_owned();
    let bytes = tokio::task::spawn_blocking(move || std::fs::read(owned))
        .await
        .map_err(|e| format!("reading the module failed: {e}"))?
        .map_err(|e| format!("cannot read module {}: {e}", path.display()))?;
    store_bytes(store, bytes).await
}

async fn store_bytes(store: &ModuleStore, bytes: Vec<u8>) -> Result<(String, PathBuf), String> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || store.put(&bytes))
        .await
        .map_err(|e| format!("storing the module failed: {e}"))?
        .map_err(|e| format!("cannot write the module store: {e}"))
}

/// The versions of `config`'s default-chain filters: a filter whose bytes
/// did not change keeps its record; a changed one gets a new version with
/// the old one as its rollback target.
pub(crate) async fn records_for(
    store: &ModuleStore,
    config: &Config,
    old: &[FilterRecord],
    now: SystemTime,
    wasm: &WasmRuntime,
) -> Result<Vec<FilterRecord>, String> {
    let mut records = Vec::with_capacity(config.filters.len());
    for filter in &config.filters {
        let path = Path::new(&filter.module);
        let (sha, stored) = store_file(store, path)
            .await
            .map_err(|e| format!("filter `{}`: {e}", filter.name))?;
        let label = if store.contains(path) {
            UPLOAD.to_owned()
        } else {
            filter.module.clone()
        };
        let previous = old.iter().find(|r| r.name == filter.name);
        match previous {
            Some(record) if record.current.version.sha256 == sha => {
                let mut kept = record.clone();
                kept.current.label = label;
                kept.current.declared = filter.module.clone();
                records.push(kept);
            }
            _ => records.push(FilterRecord {
                name: filter.name.clone(),
                current: ModuleVersion {
                    label,
                    declared: filter.module.clone(),
                    stored,
                    version: crate::control::FilterVersion {
                        sha256: sha,
                        loaded_at: now,
                    },
                },
                previous: previous.map(|r| r.current.clone()),
                base: super::status::Totals::of(wasm, &filter.name),
            }),
        }
    }
    Ok(records)
}

fn check(config: &Config) -> Result<(), ControlError> {
    config::validate(config).map_err(|issues| {
        let reasons: Vec<String> = issues.iter().map(ToString::to_string).collect();
        ControlError::InvalidArgument(reasons.join("; "))
    })
}

impl Manager {
    /// Stores the module of `source`: (label, declared module, stored path, sha).
    async fn take_module(
        &self,
        source: &ModuleSource,
    ) -> Result<(String, String, PathBuf, String), ControlError> {
        match source {
            ModuleSource::Path(path) => {
                let path = std::path::absolute(path).map_err(|e| {
                    ControlError::InvalidArgument(format!("module path {}: {e}", path.display()))
                })?;
                let (sha, stored) = store_file(&self.store, &path)
                    .await
                    .map_err(ControlError::FailedPrecondition)?;
                let shown = path.to_string_lossy().into_owned();
                Ok((shown.clone(), shown, stored, sha))
            }
            ModuleSource::Bytes(bytes) => {
                let (sha, stored) = store_bytes(&self.store, bytes.to_vec())
                    .await
                    .map_err(ControlError::Internal)?;
                let declared = stored.to_string_lossy().into_owned();
                Ok((UPLOAD.to_owned(), declared, stored, sha))
            }
        }
    }

    /// Swaps in `next`, publishing `kind` for `filter` on success and
    /// `filter_load_failed` (and a log line) on failure.
    async fn swap_filter(
        &self,
        state: &mut State,
        next: State,
        filter: &str,
        kind: EventKind,
        message: String,
    ) -> Result<FilterInfo, ControlError> {
        if let Err(reason) = self.swap(state, next).await {
            tracing::warn!(
                filter,
                "filter change refused, the running version keeps serving: {reason}"
            );
            self.events
                .publish(EventKind::FilterLoadFailed, Some(filter), reason.clone());
            return Err(ControlError::FailedPrecondition(reason));
        }
        tracing::info!(filter, "{message}");
        self.events.publish(kind, Some(filter), message);
        self.events.publish(
            EventKind::RuntimeReloaded,
            None,
            format!("new runtime serving after {} of {filter}", kind.as_str()),
        );
        let record = state
            .record(filter)
            .expect("the filter was just swapped in");
        Ok(self.info(state, record))
    }

    pub(crate) async fn load(&self, req: LoadFilter) -> Result<FilterInfo, ControlError> {
        let mut state = self.state.lock().await;
        if state.record(&req.name).is_some() {
            return Err(ControlError::AlreadyExists(format!(
                "a filter named `{}` is loaded already (use reload to replace its module)",
                req.name
            )));
        }
        let anchor_index = |anchor: &str| {
            state
                .declared
                .filters
                .iter()
                .position(|f| f.name == anchor)
                .ok_or_else(|| {
                    ControlError::InvalidArgument(format!(
                        "no filter named `{anchor}` to insert next to"
                    ))
                })
        };
        let index = match &req.position {
            Position::End => state.declared.filters.len(),
            Position::Before(anchor) => anchor_index(anchor)?,
            Position::After(anchor) => anchor_index(anchor)? + 1,
        };
        let (label, declared, stored, sha) = self.take_module(&req.source).await?;
        let filter: FilterConfig = serde_json::from_value(serde_json::json!({
            "name": req.name,
            "module": declared,
            "config": req.config,
        }))
        .map_err(|e| ControlError::InvalidArgument(e.to_string()))?;
        let mut next = state.clone();
        next.declared.filters.insert(index, filter);
        check(&next.declared)?;
        next.filters.push(FilterRecord {
            name: req.name.clone(),
            current: ModuleVersion {
                label: label.clone(),
                declared,
                stored,
                version: crate::control::FilterVersion {
                    sha256: sha.clone(),
                    loaded_at: SystemTime::now(),
                },
            },
            previous: None,
            base: super::status::Totals::of(&self.wasm, &req.name),
        });
        let message = format!("loaded version {sha} from {label}");
        self.swap_filter(
            &mut state,
            next,
            &req.name,
            EventKind::FilterLoaded,
            message,
        )
        .await
    }

    pub(crate) async fn reload(
        &self,
        name: &str,
        source: Option<ModuleSource>,
    ) -> Result<FilterInfo, ControlError> {
        let mut state = self.state.lock().await;
        let record = state.record(name).ok_or_else(|| not_found(name))?.clone();
        let source =
            source.unwrap_or_else(|| ModuleSource::Path(record.current.declared.clone().into()));
        let (label, declared, stored, sha) = self.take_module(&source).await?;
        let label = if self.store.contains(Path::new(&declared)) {
            UPLOAD.to_owned()
        } else {
            label
        };
        let mut next = state.clone();
        set_module(&mut next.declared, name, &declared);
        let unchanged = sha == record.current.version.sha256;
        let entry = next
            .filters
            .iter_mut()
            .find(|r| r.name == name)
            .expect("checked above");
        let fresh = ModuleVersion {
            label: label.clone(),
            declared,
            stored,
            version: crate::control::FilterVersion {
                sha256: sha.clone(),
                loaded_at: SystemTime::now(),
            },
        };
        if !unchanged {
            entry.previous = Some(record.current.clone());
            entry.base = super::status::Totals::of(&self.wasm, name);
            entry.current = fresh;
        } else {
            entry.current.label = fresh.label;
            entry.current.declared = fresh.declared;
        }
        let message = if unchanged {
            format!("reloaded version {sha} from {label} (same bytes: reconfigured)")
        } else {
            format!(
                "reloaded: version {sha} from {label} replaces {}",
                record.current.version.sha256
            )
        };
        self.swap_filter(&mut state, next, name, EventKind::FilterReloaded, message)
            .await
    }

    pub(crate) async fn unload(&self, name: &str) -> Result<(), ControlError> {
        let mut state = self.state.lock().await;
        state.record(name).ok_or_else(|| not_found(name))?;
        let mut next = state.clone();
        next.declared.filters.retain(|f| f.name != name);
        next.filters.retain(|r| r.name != name);
        check(&next.declared)?;
        if let Err(reason) = self.swap(&mut state, next).await {
            tracing::warn!(filter = name, "unload refused: {reason}");
            self.events
                .publish(EventKind::FilterLoadFailed, Some(name), reason.clone());
            return Err(ControlError::FailedPrecondition(reason));
        }
        tracing::info!(filter = name, "filter unloaded");
        self.events
            .publish(EventKind::FilterUnloaded, Some(name), "unloaded");
        Ok(())
    }

    pub(crate) async fn rollback(&self, name: &str) -> Result<FilterInfo, ControlError> {
        let mut state = self.state.lock().await;
        let record = state.record(name).ok_or_else(|| not_found(name))?.clone();
        let Some(previous) = record.previous.clone() else {
            return Err(ControlError::FailedPrecondition(format!(
                "filter `{name}` has no previous version to roll back to"
            )));
        };
        let mut next = state.clone();
        set_module(&mut next.declared, name, &previous.declared);
        let entry = next
            .filters
            .iter_mut()
            .find(|r| r.name == name)
            .expect("checked above");
        entry.previous = Some(record.current.clone());
        entry.current = ModuleVersion {
            version: crate::control::FilterVersion {
                sha256: previous.version.sha256.clone(),
                loaded_at: SystemTime::now(),
            },
            ..previous
        };
        entry.base = super::status::Totals::of(&self.wasm, name);
        let message = format!(
            "rolled back to version {} (from {})",
            entry.current.version.sha256, record.current.version.sha256
        );
        self.swap_filter(&mut state, next, name, EventKind::FilterRolledBack, message)
            .await
    }
}

fn set_module(config: &mut Config, name: &str, module: &str) {
    if let Some(filter) = config.filters.iter_mut().find(|f| f.name == name) {
        filter.module = module.to_owned();
    }
}

fn not_found(name: &str) -> ControlError {
    ControlError::NotFound(format!("no filter named `{name}` is loaded"))
}
