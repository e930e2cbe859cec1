//! What the manager reports: filters with versions and counters, status.

use crate::control::types::{ClusterStatus, EndpointHealth, EndpointStatus, ListenerStatus};
use crate::control::{ControlError, FilterCounters, FilterInfo, Status};
use crate::wasm::WasmRuntime;

use super::{FilterRecord, Manager, State};

/// The host metric counting a filter's failed calls.
const FAILURES: &str = "weir_filter_failures_total";

/// Failures (traps, deadlines, errors) counted for `filter` since the process started.
pub(crate) fn failures_of(wasm: &WasmRuntime, filter: &str) -> u64 {
    wasm.metrics()
        .counters
        .iter()
        .filter(|(key, _)| key.filter == filter && key.name == FAILURES)
        .map(|(_, value)| *value)
        .sum()
}

impl Manager {
    pub(crate) fn info(&self, state: &State, record: &FilterRecord) -> FilterInfo {
        let config = state
            .declared
            .filters
            .iter()
            .find(|f| f.name == record.name)
            .map(|f| f.config.clone())
            .unwrap_or_default();
        FilterInfo {
            name: record.name.clone(),
            module: record.current.label.clone(),
            config,
            version: record.current.version.clone(),
            previous: record.previous.as_ref().map(|p| p.version.clone()),
            counters: FilterCounters {
                calls: 0,
                traps: 0,
                failures: failures_of(&self.wasm, &record.name)
                    .saturating_sub(record.failures_base),
            },
        }
    }

    pub(crate) async fn filter_infos(&self) -> Vec<FilterInfo> {
        let state = self.state.lock().await;
        // In chain order.
        state
            .declared
            .filters
            .iter()
            .filter_map(|f| state.record(&f.name))
            .map(|r| self.info(&state, r))
            .collect()
    }

    pub(crate) async fn status_now(&self) -> Result<Status, ControlError> {
        let filters = self.filter_infos().await;
        let runtime = self.server.runtime();
        let listeners = runtime
            .config
            .listeners
            .iter()
            .zip(self.server.local_addrs())
            .map(|(listener, addr)| ListenerStatus {
                name: listener
                    .name
                    .clone()
                    .unwrap_or_else(|| listener.address.clone()),
                address: addr.to_string(),
            })
            .collect();
        let clusters = runtime
            .upstreams
            .status()
            .into_iter()
            .map(|cluster| ClusterStatus {
                name: cluster.name,
                endpoints: cluster
                    .endpoints
                    .into_iter()
                    .map(|endpoint| EndpointStatus {
                        address: endpoint.address.to_string(),
                        health: if endpoint.healthy {
                            EndpointHealth::Healthy
                        } else {
                            EndpointHealth::Unhealthy
                        },
                    })
                    .collect(),
            })
            .collect();
        Ok(Status {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime: self.started.elapsed(),
            listeners,
            clusters,
            filters,
        })
    }
}
