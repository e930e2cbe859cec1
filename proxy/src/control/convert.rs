//! Conversions between the gRPC messages ([`super::pb`]) and the domain types.
//!
//! Requests: client builds messages from domain values, server turns them
//! back (rejecting malformed ones with `InvalidArgument`). Responses: the
//! other way round. Errors: [`ControlError`] to and from `tonic::Status`.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::events::{Event, EventKind, FilterFailure};
use super::pb;
use super::plane::{ApplyConfig, ConfigFormat, ControlError, LoadFilter, ModuleSource, Position};
use super::types::{
    ApplySummary, ChangeKind, ClusterStatus, ConfigChange, EndpointHealth, EndpointStatus,
    FilterCounters, FilterInfo, FilterVersion, ListenerStatus, ModuleCacheStatus, Status,
};

// ---- errors ---------------------------------------------------------------

impl From<ControlError> for tonic::Status {
    fn from(err: ControlError) -> Self {
        match err {
            ControlError::InvalidArgument(m) => tonic::Status::invalid_argument(m),
            ControlError::NotFound(m) => tonic::Status::not_found(m),
            ControlError::AlreadyExists(m) => tonic::Status::already_exists(m),
            ControlError::FailedPrecondition(m) => tonic::Status::failed_precondition(m),
            ControlError::Internal(m) => tonic::Status::internal(m),
        }
    }
}

fn invalid(message: impl Into<String>) -> ControlError {
    ControlError::InvalidArgument(message.into())
}

// ---- time -----------------------------------------------------------------

fn timestamp(time: SystemTime) -> prost_types::Timestamp {
    prost_types::Timestamp::from(time)
}

fn system_time(ts: Option<prost_types::Timestamp>) -> SystemTime {
    ts.and_then(|ts| SystemTime::try_from(ts).ok())
        .unwrap_or(UNIX_EPOCH)
}

// ---- requests: domain -> message (client) ----------------------------------

impl From<ModuleSource> for pb::ModuleSource {
    fn from(source: ModuleSource) -> Self {
        let source = match source {
            ModuleSource::Path(path) => {
                pb::module_source::Source::Path(path.to_string_lossy().into_owned())
            }
            ModuleSource::Bytes(bytes) => pb::module_source::Source::Wasm(bytes),
        };
        Self {
            source: Some(source),
        }
    }
}

impl From<Position> for Option<pb::Position> {
    fn from(position: Position) -> Self {
        let anchor = match position {
            Position::End => return None,
            Position::Before(name) => pb::position::Anchor::Before(name),
            Position::After(name) => pb::position::Anchor::After(name),
        };
        Some(pb::Position {
            anchor: Some(anchor),
        })
    }
}

impl From<LoadFilter> for pb::LoadFilterRequest {
    fn from(req: LoadFilter) -> Self {
        Self {
            name: req.name,
            module: Some(req.source.into()),
            config_json: req.config.to_string(),
            position: req.position.into(),
        }
    }
}

impl From<ConfigFormat> for pb::ConfigFormat {
    fn from(format: ConfigFormat) -> Self {
        match format {
            ConfigFormat::Yaml => pb::ConfigFormat::Yaml,
            ConfigFormat::Json => pb::ConfigFormat::Json,
        }
    }
}

impl From<ApplyConfig> for pb::ApplyConfigRequest {
    fn from(req: ApplyConfig) -> Self {
        Self {
            text: req.text,
            format: pb::ConfigFormat::from(req.format).into(),
            origin: req.origin,
        }
    }
}

// ---- requests: message -> domain (server) ----------------------------------

/// A filter name from a request: not empty.
pub(crate) fn filter_name(name: String) -> Result<String, ControlError> {
    if name.trim().is_empty() {
        return Err(invalid("filter name must not be empty"));
    }
    Ok(name)
}

impl TryFrom<pb::ModuleSource> for ModuleSource {
    type Error = ControlError;
    fn try_from(source: pb::ModuleSource) -> Result<Self, ControlError> {
        match source.source {
            Some(pb::module_source::Source::Path(path)) if !path.is_empty() => {
                Ok(ModuleSource::Path(PathBuf::from(path)))
            }
            Some(pb::module_source::Source::Path(_)) => {
                Err(invalid("module path must not be empty"))
            }
            Some(pb::module_source::Source::Wasm(bytes)) if !bytes.is_empty() => {
                Ok(ModuleSource::Bytes(bytes))
            }
            Some(pb::module_source::Source::Wasm(_)) => Err(invalid("uploaded module is empty")),
            None => Err(invalid("module source must give a path or the wasm bytes")),
        }
    }
}

impl TryFrom<Option<pb::Position>> for Position {
    type Error = ControlError;
    fn try_from(position: Option<pb::Position>) -> Result<Self, ControlError> {
        match position.and_then(|p| p.anchor) {
            None => Ok(Position::End),
            Some(pb::position::Anchor::Before(name)) => Ok(Position::Before(anchor_name(name)?)),
            Some(pb::position::Anchor::After(name)) => Ok(Position::After(anchor_name(name)?)),
        }
    }
}

fn anchor_name(name: String) -> Result<String, ControlError> {
    if name.is_empty() {
        return Err(invalid("position anchor must name a filter"));
    }
    Ok(name)
}

/// Parses a filter's JSON configuration; empty means `{}`.
pub(crate) fn filter_config(json: &str) -> Result<serde_json::Value, ControlError> {
    if json.trim().is_empty() {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    serde_json::from_str(json).map_err(|e| invalid(format!("filter config is not valid JSON: {e}")))
}

impl TryFrom<pb::LoadFilterRequest> for LoadFilter {
    type Error = ControlError;
    fn try_from(req: pb::LoadFilterRequest) -> Result<Self, ControlError> {
        let name = filter_name(req.name)?;
        let source = req
            .module
            .ok_or_else(|| invalid("LoadFilter needs a module (a path or the wasm bytes)"))?
            .try_into()?;
        Ok(LoadFilter {
            name,
            source,
            config: filter_config(&req.config_json)?,
            position: req.position.try_into()?,
        })
    }
}

impl From<pb::ApplyConfigRequest> for ApplyConfig {
    fn from(req: pb::ApplyConfigRequest) -> Self {
        let format = match req.format() {
            pb::ConfigFormat::Json => ConfigFormat::Json,
            pb::ConfigFormat::Yaml | pb::ConfigFormat::Unspecified => ConfigFormat::Yaml,
        };
        let origin = if req.origin.is_empty() {
            "<control API>".to_string()
        } else {
            req.origin
        };
        ApplyConfig {
            text: req.text,
            format,
            origin,
        }
    }
}

// ---- responses: domain -> message (server) ---------------------------------

impl From<FilterVersion> for pb::FilterVersion {
    fn from(v: FilterVersion) -> Self {
        Self {
            sha256: v.sha256,
            loaded_at: Some(timestamp(v.loaded_at)),
        }
    }
}

impl From<FilterInfo> for pb::FilterInfo {
    fn from(f: FilterInfo) -> Self {
        Self {
            name: f.name,
            module: f.module,
            config_json: f.config.to_string(),
            version: Some(f.version.into()),
            previous: f.previous.map(Into::into),
            counters: Some(pb::FilterCounters {
                calls: f.counters.calls,
                traps: f.counters.traps,
                failures: f.counters.failures,
            }),
        }
    }
}

impl From<Status> for pb::GetStatusResponse {
    fn from(s: Status) -> Self {
        Self {
            version: s.version,
            uptime: prost_types::Duration::try_from(s.uptime).ok(),
            listeners: s
                .listeners
                .into_iter()
                .map(|l| pb::ListenerStatus {
                    name: l.name,
                    address: l.address,
                })
                .collect(),
            clusters: s
                .clusters
                .into_iter()
                .map(|c| pb::ClusterStatus {
                    name: c.name,
                    endpoints: c
                        .endpoints
                        .into_iter()
                        .map(|e| pb::EndpointStatus {
                            address: e.address,
                            health: pb::EndpointHealth::from(e.health).into(),
                        })
                        .collect(),
                })
                .collect(),
            filters: s.filters.into_iter().map(Into::into).collect(),
            module_cache: Some(pb::ModuleCacheStatus {
                compiled: s.module_cache.compiled,
                cached: s.module_cache.cached,
            }),
        }
    }
}

impl From<EndpointHealth> for pb::EndpointHealth {
    fn from(h: EndpointHealth) -> Self {
        match h {
            EndpointHealth::Unknown => Self::Unknown,
            EndpointHealth::Healthy => Self::Healthy,
            EndpointHealth::Unhealthy => Self::Unhealthy,
        }
    }
}

impl From<ApplySummary> for pb::ApplyConfigResponse {
    fn from(summary: ApplySummary) -> Self {
        Self {
            changes: summary
                .changes
                .into_iter()
                .map(|c| pb::ConfigChange {
                    kind: pb::ChangeKind::from(c.kind).into(),
                    section: c.section,
                    name: c.name,
                })
                .collect(),
        }
    }
}

impl From<ChangeKind> for pb::ChangeKind {
    fn from(kind: ChangeKind) -> Self {
        match kind {
            ChangeKind::Added => Self::Added,
            ChangeKind::Removed => Self::Removed,
            ChangeKind::Modified => Self::Modified,
        }
    }
}

impl From<Event> for pb::Event {
    fn from(e: Event) -> Self {
        Self {
            seq: e.seq,
            kind: pb::EventKind::from(e.kind).into(),
            filter: e.filter.unwrap_or_default(),
            message: e.message,
            time: Some(timestamp(e.time)),
            failure: e.failure.map(|f| pb::FilterFailure {
                phase: f.phase,
                kind: f.kind,
                mode: f.mode,
                reason: f.reason,
                suppressed: f.suppressed,
            }),
        }
    }
}

impl From<EventKind> for pb::EventKind {
    fn from(kind: EventKind) -> Self {
        match kind {
            EventKind::FilterLoaded => Self::FilterLoaded,
            EventKind::FilterReloaded => Self::FilterReloaded,
            EventKind::FilterUnloaded => Self::FilterUnloaded,
            EventKind::FilterRolledBack => Self::FilterRolledBack,
            EventKind::FilterLoadFailed => Self::FilterLoadFailed,
            EventKind::FilterTrapped => Self::FilterTrapped,
            EventKind::FilterFailed => Self::FilterFailed,
            EventKind::ConfigApplied => Self::ConfigApplied,
            EventKind::ConfigRejected => Self::ConfigRejected,
            EventKind::RuntimeReloaded => Self::RuntimeReloaded,
            EventKind::EventsMissed => Self::EventsMissed,
        }
    }
}

// ---- responses: message -> domain (client) ---------------------------------

impl From<pb::FilterVersion> for FilterVersion {
    fn from(v: pb::FilterVersion) -> Self {
        Self {
            sha256: v.sha256,
            loaded_at: system_time(v.loaded_at),
        }
    }
}

impl From<pb::FilterInfo> for FilterInfo {
    fn from(f: pb::FilterInfo) -> Self {
        // A config the server sent that is not JSON is shown as the text it is.
        let config = serde_json::from_str(&f.config_json)
            .unwrap_or(serde_json::Value::String(f.config_json));
        let counters = f.counters.unwrap_or_default();
        Self {
            name: f.name,
            module: f.module,
            config,
            version: f.version.unwrap_or_default().into(),
            previous: f.previous.map(Into::into),
            counters: FilterCounters {
                calls: counters.calls,
                traps: counters.traps,
                failures: counters.failures,
            },
        }
    }
}

impl From<pb::GetStatusResponse> for Status {
    fn from(s: pb::GetStatusResponse) -> Self {
        let uptime = s
            .uptime
            .and_then(|d| Duration::try_from(d).ok())
            .unwrap_or_default();
        Self {
            version: s.version,
            uptime,
            listeners: s
                .listeners
                .into_iter()
                .map(|l| ListenerStatus {
                    name: l.name,
                    address: l.address,
                })
                .collect(),
            clusters: s
                .clusters
                .into_iter()
                .map(|c| ClusterStatus {
                    name: c.name,
                    endpoints: c
                        .endpoints
                        .into_iter()
                        .map(|e| {
                            let health = match e.health() {
                                pb::EndpointHealth::Unknown => EndpointHealth::Unknown,
                                pb::EndpointHealth::Healthy => EndpointHealth::Healthy,
                                pb::EndpointHealth::Unhealthy => EndpointHealth::Unhealthy,
                            };
                            EndpointStatus {
                                address: e.address,
                                health,
                            }
                        })
                        .collect(),
                })
                .collect(),
            filters: s.filters.into_iter().map(Into::into).collect(),
            module_cache: s
                .module_cache
                .map(|m| ModuleCacheStatus {
                    compiled: m.compiled,
                    cached: m.cached,
                })
                .unwrap_or_default(),
        }
    }
}

impl From<pb::ApplyConfigResponse> for ApplySummary {
    fn from(r: pb::ApplyConfigResponse) -> Self {
        let changes = r
            .changes
            .into_iter()
            .filter_map(|c| {
                let kind = match c.kind() {
                    pb::ChangeKind::Added => ChangeKind::Added,
                    pb::ChangeKind::Removed => ChangeKind::Removed,
                    pb::ChangeKind::Modified => ChangeKind::Modified,
                    pb::ChangeKind::Unspecified => return None,
                };
                Some(ConfigChange {
                    kind,
                    section: c.section,
                    name: c.name,
                })
            })
            .collect();
        Self { changes }
    }
}

impl From<pb::Event> for Event {
    fn from(e: pb::Event) -> Self {
        let kind = match e.kind() {
            pb::EventKind::FilterLoaded => EventKind::FilterLoaded,
            pb::EventKind::FilterReloaded => EventKind::FilterReloaded,
            pb::EventKind::FilterUnloaded => EventKind::FilterUnloaded,
            pb::EventKind::FilterRolledBack => EventKind::FilterRolledBack,
            pb::EventKind::FilterLoadFailed => EventKind::FilterLoadFailed,
            pb::EventKind::FilterTrapped => EventKind::FilterTrapped,
            pb::EventKind::FilterFailed => EventKind::FilterFailed,
            pb::EventKind::ConfigApplied => EventKind::ConfigApplied,
            pb::EventKind::ConfigRejected => EventKind::ConfigRejected,
            pb::EventKind::RuntimeReloaded => EventKind::RuntimeReloaded,
            // A kind from a newer server: still worth showing, as "missed".
            pb::EventKind::EventsMissed | pb::EventKind::Unspecified => EventKind::EventsMissed,
        };
        Self {
            seq: e.seq,
            kind,
            filter: (!e.filter.is_empty()).then_some(e.filter),
            time: system_time(e.time),
            message: e.message,
            failure: e.failure.map(|f| FilterFailure {
                phase: f.phase,
                kind: f.kind,
                mode: f.mode,
                reason: f.reason,
                suppressed: f.suppressed,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn load_filter_round_trips_through_the_message() {
        let req = LoadFilter {
            name: "auth".into(),
            source: ModuleSource::Bytes(Bytes::from_static(b"\0asm")),
            config: serde_json::json!({"realm": "x"}),
            position: Position::Before("log".into()),
        };
        let back = LoadFilter::try_from(pb::LoadFilterRequest::from(req.clone())).unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn malformed_load_requests_are_invalid_arguments() {
        let no_module = pb::LoadFilterRequest {
            name: "a".into(),
            ..Default::default()
        };
        assert!(matches!(
            LoadFilter::try_from(no_module),
            Err(ControlError::InvalidArgument(_))
        ));
        let bad_json = pb::LoadFilterRequest {
            name: "a".into(),
            module: Some(ModuleSource::Path("/x.wasm".into()).into()),
            config_json: "{not json".into(),
            ..Default::default()
        };
        let err = LoadFilter::try_from(bad_json).unwrap_err();
        assert!(
            err.message().starts_with("filter config is not valid JSON"),
            "{err}"
        );
    }

    #[test]
    fn control_errors_keep_their_message_as_status() {
        let status = tonic::Status::from(ControlError::FailedPrecondition("no export".into()));
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        assert_eq!(status.message(), "no export");
    }

    #[test]
    fn events_round_trip_through_the_message() {
        let event = Event {
            seq: 7,
            kind: EventKind::FilterTrapped,
            filter: Some("auth".into()),
            message: "unreachable".into(),
            time: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            failure: Some(FilterFailure {
                phase: "request_headers".into(),
                kind: "trap".into(),
                mode: "fail_open".into(),
                reason: "trapped: unreachable".into(),
                suppressed: 3,
            }),
        };
        assert_eq!(Event::from(pb::Event::from(event.clone())), event);
    }
}
