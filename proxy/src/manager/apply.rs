//! Applying a whole configuration: validate fully, refuse what cannot change
//! without a restart, build, swap atomically.

use std::path::Path;
use std::time::SystemTime;

use crate::config::{self, Config, Format};
use crate::control::{ApplyConfig, ApplySummary, ConfigFormat, ControlError, EventKind};

use super::filters::records_for;
use super::{Manager, State};

/// Why the new configuration cannot be applied to a running proxy: the
/// settings fixed when it started (listener sockets, admin listener).
fn fixed_settings_changed(old: &Config, new: &Config) -> Option<String> {
    let sockets = |c: &Config| -> Vec<(Option<String>, String)> {
        c.listeners
            .iter()
            .map(|l| (l.name.clone(), l.address.clone()))
            .collect()
    };
    if sockets(old) != sockets(new) {
        return Some(
            "listeners cannot change while the proxy runs (their sockets are bound at start); \
             restart the proxy to change them"
                .to_owned(),
        );
    }
    if old.admin != new.admin {
        return Some(
            "admin cannot change while the proxy runs (its socket is bound at start); \
             restart the proxy to change it"
                .to_owned(),
        );
    }
    None
}

impl Manager {
    /// Parses, validates and applies `req`, answering with what changed.
    pub(crate) async fn apply(&self, req: ApplyConfig) -> Result<ApplySummary, ControlError> {
        let format = match req.format {
            ConfigFormat::Yaml => Format::Yaml,
            ConfigFormat::Json => Format::Json,
        };
        let origin = if req.origin.is_empty() {
            self.config_path.clone()
        } else {
            let origin = Path::new(&req.origin);
            match self.config_path.parent() {
                Some(dir) if origin.is_relative() => {
                    dir.join(origin.file_name().unwrap_or_default())
                }
                _ => origin.to_owned(),
            }
        };
        let result = match config::parse_str(&req.text, format, &origin) {
            Ok(new) => self.apply_parsed(new).await,
            Err(err) => Err(ControlError::FailedPrecondition(format!(
                "invalid configuration, nothing applied:\n{err}"
            ))),
        };
        if let Err(err) = &result {
            tracing::warn!(origin = %origin.display(), "configuration rejected, the running one keeps serving: {err}");
            self.events
                .publish(EventKind::ConfigRejected, None, err.message().to_owned());
        }
        result
    }

    /// Applies an already parsed and validated configuration.
    pub async fn apply_parsed(&self, new: Config) -> Result<ApplySummary, ControlError> {
        let mut state = self.state.lock().await;
        if let Some(reason) = fixed_settings_changed(&state.declared, &new) {
            return Err(ControlError::FailedPrecondition(reason));
        }
        if state.declared.control != new.control {
            tracing::warn!("control settings changed: they take effect at the next restart");
        }
        let engine = |c: &Config| {
            let w = &c.wasm;
            (w.max_stack_kib, w.max_instances, w.max_memory_mib)
        };
        if engine(&state.declared) != engine(&new) {
            tracing::warn!(
                "wasm.max_stack_kib, max_instances or max_memory_mib changed: \
                 the engine's sizing takes effect at the next restart"
            );
        }
        let summary = ApplySummary::between(&state.declared, &new);
        let filters = records_for(
            &self.store,
            &new,
            &state.filters,
            SystemTime::now(),
            &self.wasm,
        )
        .await
        .map_err(ControlError::FailedPrecondition)?;
        let changed_filters: Vec<(String, String)> = filters
            .iter()
            .filter(|r| {
                state
                    .record(&r.name)
                    .is_some_and(|old| old.current.version.sha256 != r.current.version.sha256)
            })
            .map(|r| (r.name.clone(), r.current.version.sha256.clone()))
            .collect();
        if summary.is_empty() && changed_filters.is_empty() {
            return Ok(summary);
        }
        let next = State {
            declared: new,
            filters,
        };
        self.swap(&mut state, next).await.map_err(|reason| {
            ControlError::FailedPrecondition(format!("configuration not applied: {reason}"))
        })?;
        for (name, sha) in &changed_filters {
            self.events.publish(
                EventKind::FilterReloaded,
                Some(name),
                format!("module changed: now version {sha}"),
            );
        }
        let message = format!(
            "{} changes{}",
            summary.changes.len(),
            if changed_filters.is_empty() {
                String::new()
            } else {
                format!(", {} filter modules changed", changed_filters.len())
            }
        );
        tracing::info!("configuration applied: {message}");
        self.events.publish(EventKind::ConfigApplied, None, message);
        self.events.publish(
            EventKind::RuntimeReloaded,
            None,
            "new runtime serving after config apply",
        );
        Ok(summary)
    }

    /// Re-reads the configuration file and applies it (what a watched
    /// change does). Failures are logged and published like any other.
    pub async fn reapply_config_file(&self) -> Result<ApplySummary, ControlError> {
        let text = std::fs::read_to_string(&self.config_path).map_err(|e| {
            ControlError::FailedPrecondition(format!(
                "cannot read {}: {e}",
                self.config_path.display()
            ))
        });
        let text = match text {
            Ok(text) => text,
            Err(err) => {
                self.events
                    .publish(EventKind::ConfigRejected, None, err.message().to_owned());
                return Err(err);
            }
        };
        let format = if Format::from_path(&self.config_path) == Some(Format::Json) {
            ConfigFormat::Json
        } else {
            ConfigFormat::Yaml
        };
        self.apply(ApplyConfig {
            text,
            format,
            origin: self.config_path.to_string_lossy().into_owned(),
        })
        .await
    }
}
