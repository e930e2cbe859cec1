//! What the manager reports: filters with versions and counters, status.

use crate::control::types::{
    ClusterStatus, EndpointHealth, EndpointStatus, ListenerStatus, ModuleCacheStatus,
};
use crate::control::{ControlError, FilterCounters, FilterInfo, Status};
use crate::wasm::{FILTER_EXCHANGES, FILTER_FAILURES, FILTER_TRAPS, MetricsSnapshot, WasmRuntime};

use super::{FilterRecord, Manager, State};

/// A filter's host counters since the process started (all versions, all
/// labels), read from the WebAssembly runtime's metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    /// Exchanges that entered a chain holding the filter.
    exchanges: u64,
    /// Calls that trapped.
    traps: u64,
    /// Failed calls of every kind, traps included.
    failures: u64,
}

impl Totals {
    /// The totals of `filter` now.
    pub(crate) fn of(wasm: &WasmRuntime, filter: &str) -> Self {
        Self::in_snapshot(&wasm.metrics(), filter)
    }

    fn in_snapshot(metrics: &MetricsSnapshot, filter: &str) -> Self {
        let sum = |name: &str| -> u64 {
            metrics
                .counters
                .iter()
                .filter(|(key, _)| key.filter == filter && key.name == name)
                .map(|(_, value)| *value)
                .sum()
        };
        Self {
            exchanges: sum(FILTER_EXCHANGES),
            traps: sum(FILTER_TRAPS),
            failures: sum(FILTER_FAILURES),
        }
    }

    /// What happened between `base` and `self`, as the control API reports
    /// it: traps apart from the other failures.
    fn since(self, base: Totals) -> FilterCounters {
        let traps = self.traps.saturating_sub(base.traps);
        FilterCounters {
            calls: self.exchanges.saturating_sub(base.exchanges),
            traps,
            failures: self
                .failures
                .saturating_sub(base.failures)
                .saturating_sub(traps),
        }
    }
}

impl Manager {
    /// `record` as the control API shows it, its counters read from `metrics`.
    fn info_from(
        &self,
        state: &State,
        record: &FilterRecord,
        metrics: &MetricsSnapshot,
    ) -> FilterInfo {
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
            counters: Totals::in_snapshot(metrics, &record.name).since(record.base),
        }
    }

    pub(crate) fn info(&self, state: &State, record: &FilterRecord) -> FilterInfo {
        self.info_from(state, record, &self.wasm.metrics())
    }

    pub(crate) async fn filter_infos(&self) -> Vec<FilterInfo> {
        let state = self.state.lock().await;
        let metrics = self.wasm.metrics();
        // In chain order.
        state
            .declared
            .filters
            .iter()
            .filter_map(|f| state.record(&f.name))
            .map(|r| self.info_from(&state, r, &metrics))
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
        let compile = self.wasm.compile_counts();
        Ok(Status {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime: self.started.elapsed(),
            listeners,
            clusters,
            filters,
            module_cache: ModuleCacheStatus {
                compiled: compile.compiled,
                cached: compile.cached,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wasm::MetricKey;

    fn snapshot(counters: &[(&str, &str, u64)]) -> MetricsSnapshot {
        MetricsSnapshot {
            counters: counters
                .iter()
                .map(|(filter, name, value)| {
                    let key = MetricKey {
                        filter: (*filter).to_owned(),
                        name: (*name).to_owned(),
                        labels: vec![],
                    };
                    (key, *value)
                })
                .collect(),
            ..MetricsSnapshot::default()
        }
    }

    #[test]
    fn counters_since_a_base_report_traps_apart_from_other_failures() {
        let base = Totals::in_snapshot(
            &snapshot(&[
                ("auth", FILTER_EXCHANGES, 10),
                ("auth", FILTER_FAILURES, 3),
                ("auth", FILTER_TRAPS, 1),
            ]),
            "auth",
        );
        let now = Totals::in_snapshot(
            &snapshot(&[
                ("auth", FILTER_EXCHANGES, 15),
                ("auth", FILTER_FAILURES, 6),
                ("auth", FILTER_FAILURES, 1),
                ("auth", FILTER_TRAPS, 3),
                ("other", FILTER_EXCHANGES, 100),
                ("auth", "guest_metric", 7),
            ]),
            "auth",
        );
        assert_eq!(
            now.since(base),
            FilterCounters {
                calls: 5,
                traps: 2,
                failures: 2,
            }
        );
        assert_eq!(now.since(now), FilterCounters::default());
    }
}
