//! What the control plane reports: filters, versions, status, config changes.
//!
//! These are the domain types both sides use; the gRPC messages are converted
//! to and from them in `convert.rs`. They serialize to the JSON that
//! `weir ... --output json` prints.

use std::time::{Duration, SystemTime};

use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};

/// A filter in the default chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilterInfo {
    /// The filter's unique name.
    pub name: String,
    /// Where the module came from: its path, or `upload`.
    pub module: String,
    /// The configuration handed to the filter.
    pub config: serde_json::Value,
    /// The running version.
    pub version: FilterVersion,
    /// The version a rollback would restore, if any.
    pub previous: Option<FilterVersion>,
    /// Counters of the running version.
    pub counters: FilterCounters,
}

/// One loaded version of a filter's module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FilterVersion {
    /// Lower-case hex SHA-256 of the component's bytes.
    pub sha256: String,
    /// When this version was loaded.
    #[serde(with = "humantime_serde")]
    pub loaded_at: SystemTime,
}

impl FilterVersion {
    /// The version of `module`, loaded at `loaded_at`.
    pub fn of(module: &[u8], loaded_at: SystemTime) -> Self {
        Self {
            sha256: sha256_hex(module),
            loaded_at,
        }
    }
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What a filter has done since its current version was loaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FilterCounters {
    /// Exchanges (requests) that entered a filter chain holding the filter,
    /// counted as the chain starts.
    pub calls: u64,
    /// Calls that trapped (the instance was discarded).
    pub traps: u64,
    /// Calls that failed otherwise (error returned, CPU deadline exceeded,
    /// no instance available).
    pub failures: u64,
}

/// How the filters' components were obtained since the proxy started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ModuleCacheStatus {
    /// Compiled from their bytes.
    pub compiled: u64,
    /// Loaded from the compiled-module disk cache without compiling.
    pub cached: u64,
}

/// The proxy's state, as `weir status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    /// The proxy's version.
    pub version: String,
    /// Time since the proxy started (whole seconds in JSON).
    #[serde(rename = "uptime_seconds", serialize_with = "whole_seconds")]
    pub uptime: Duration,
    /// Listening sockets.
    pub listeners: Vec<ListenerStatus>,
    /// Upstream clusters.
    pub clusters: Vec<ClusterStatus>,
    /// Filters of the default chain, in chain order.
    pub filters: Vec<FilterInfo>,
    /// Components compiled vs loaded from the compiled-module cache. A
    /// module already in memory (unchanged by a reload) counts as neither.
    pub module_cache: ModuleCacheStatus,
}

fn whole_seconds<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(duration.as_secs())
}

/// A listening socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListenerStatus {
    /// The listener's name.
    pub name: String,
    /// The address it is bound to.
    pub address: String,
}

/// An upstream cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterStatus {
    /// The cluster's name.
    pub name: String,
    /// Its endpoints.
    pub endpoints: Vec<EndpointStatus>,
}

/// One endpoint of a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointStatus {
    /// `host:port`.
    pub address: String,
    /// What the proxy knows about its health.
    pub health: EndpointHealth,
}

/// What the proxy knows about an endpoint's health.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointHealth {
    /// Not known (no traffic or checks yet).
    #[default]
    Unknown,
    /// Taking traffic.
    Healthy,
    /// Taken out of rotation.
    Unhealthy,
}

impl EndpointHealth {
    /// The word shown in tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
        }
    }
}

/// What applying a configuration changed. Empty: the new configuration
/// equals the running one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ApplySummary {
    /// Every change, grouped by section in file order.
    pub changes: Vec<ConfigChange>,
}

/// One changed part of the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigChange {
    /// Added, removed or modified.
    pub kind: ChangeKind,
    /// The section: `listener`, `cluster`, `filter`, `virtual_host`,
    /// `admin`, `limits`, `wasm`.
    pub section: String,
    /// The item's name within the section; empty for single-valued sections.
    pub name: String,
}

/// How one part of the configuration changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Present in the new configuration only.
    Added,
    /// Present in the old configuration only.
    Removed,
    /// Present in both, different.
    Modified,
}

impl ChangeKind {
    /// The sign shown before a change: `+`, `-`, `~`.
    pub fn sign(self) -> char {
        match self {
            Self::Added => '+',
            Self::Removed => '-',
            Self::Modified => '~',
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_is_lower_hex_of_the_bytes() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn status_json_has_uptime_in_whole_seconds() {
        let status = Status {
            version: "0.1.0".into(),
            uptime: Duration::from_millis(90_500),
            listeners: vec![],
            clusters: vec![],
            filters: vec![],
            module_cache: ModuleCacheStatus {
                compiled: 2,
                cached: 1,
            },
        };
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["uptime_seconds"], 90);
        assert_eq!(
            json["module_cache"],
            serde_json::json!({ "compiled": 2, "cached": 1 })
        );
    }
}
