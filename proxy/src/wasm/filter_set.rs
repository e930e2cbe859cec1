//! The loaded filters of one config generation: [`FilterSet`], the
//! pipeline's [`HooksFactory`], with each route's chain precomputed.
//!
//! A failing filter (trap, CPU deadline, `Err` from a phase, no instance)
//! is either fatal for the exchange (`fail_closed` → [`HookError::FilterFailed`])
//! or skipped for the rest of the exchange (`fail_open`). Either way it is
//! counted, and logged and reported (rate-limited) by `failure_report`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, FailureMode};
use crate::phases::{ExchangeHooks, HookError, HooksFactory};
use crate::routing::RouteId;
use crate::wasm::bindings::weir::filter::types::{BodyMode, Phases};
use crate::wasm::chain;
use crate::wasm::error::{CallFailure, FilterLoadError};
use crate::wasm::exchange::WasmExchange;
use crate::wasm::failure_report::failure_mode_str;
use crate::wasm::host::Phase;
use crate::wasm::host::callout::CalloutClient;
use crate::wasm::host::metrics::{CounterHandle, FILTER_EXCHANGES, MetricsSnapshot};
use crate::wasm::instance::{FilterTemplate, InstanceError, InstancePool};
use crate::wasm::runtime::{RuntimeShared, WasmRuntime};

/// Longest `delay` a filter may ask for; longer delays are cut to this.
pub const MAX_DELAY: Duration = Duration::from_secs(60);

/// A filter with its effective settings, ready to run.
pub(crate) struct ActiveFilter {
    pub(crate) name: Arc<str>,
    pub(crate) failure_mode: FailureMode,
    pub(crate) pool: Arc<InstancePool>,
    pub(crate) phases: Phases,
    pub(crate) request_body: BodyMode,
    pub(crate) response_body: BodyMode,
    /// Exchanges that entered a chain holding this filter (host metric
    /// [`FILTER_EXCHANGES`]; process-wide per filter name, so it outlives
    /// config generations).
    pub(crate) exchanges: CounterHandle,
}

impl ActiveFilter {
    /// Count and report a failure (see `failure_report` for the rate limit
    /// on logs and events); `Err` when it must fail the exchange.
    pub(crate) fn failed(&self, phase: Phase, failure: &CallFailure) -> Result<(), HookError> {
        let shared = &self.pool.shared;
        if failure.kind().is_trap() {
            shared.metrics.record_trap(&self.name, phase.as_str());
        }
        shared.metrics.record_failure(
            &self.name,
            phase.as_str(),
            failure_mode_str(self.failure_mode),
        );
        shared
            .failures
            .failed(&self.name, phase.as_str(), failure, self.failure_mode);
        match self.failure_mode {
            FailureMode::FailClosed => Err(HookError::FilterFailed {
                filter: self.name.to_string(),
                reason: failure.to_string(),
            }),
            FailureMode::FailOpen => Ok(()),
        }
    }

    /// The most bytes this filter may buffer in `mode`.
    pub(crate) fn buffer_limit(&self, requested: u32) -> usize {
        requested.min(self.pool.template.limits.max_buffered_body) as usize
    }
}

/// One route's chain, with what it needs precomputed.
pub(crate) struct RouteChain {
    pub(crate) filters: Vec<Arc<ActiveFilter>>,
    /// Some filter has a phase after request-headers: keep a copy of the request head.
    pub(crate) keeps_request: bool,
}

/// All filters of one config generation; the pipeline's [`HooksFactory`].
pub struct FilterSet {
    routes: Vec<Option<Arc<RouteChain>>>,
    /// The runtime's shared state, for its metrics registry.
    shared: Arc<RuntimeShared>,
}

impl std::fmt::Debug for FilterSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilterSet")
            .field("routes", &self.routes.len())
            .finish()
    }
}

impl FilterSet {
    /// Load every filter of `config` (module paths relative to the current
    /// directory): compile, link, check the contract and call `configure`.
    pub async fn load(
        rt: &WasmRuntime,
        config: &Config,
        callouts: Arc<dyn CalloutClient>,
    ) -> Result<FilterSet, FilterLoadError> {
        Self::load_relative_to(rt, config, Path::new(""), callouts).await
    }

    /// Like [`FilterSet::load`], with relative module paths resolved against
    /// `base_dir` (the config file's directory).
    pub async fn load_relative_to(
        rt: &WasmRuntime,
        config: &Config,
        base_dir: &Path,
        callouts: Arc<dyn CalloutClient>,
    ) -> Result<FilterSet, FilterLoadError> {
        rt.prune_modules();
        let plan = chain::plan(config)?;
        let max_instances = config.wasm.max_instances_per_filter;
        let mut pools: Vec<(FilterTemplate, String, Arc<InstancePool>)> = Vec::new();
        let mut active = Vec::with_capacity(plan.filters.len());
        for planned in &plan.filters {
            let name = planned.name.as_str();
            check_limits(rt, name, &planned.limits)?;
            let config_json =
                serde_json::to_string(&planned.config).map_err(|e| FilterLoadError::Config {
                    filter: name.to_owned(),
                    reason: e.to_string(),
                })?;
            let template = FilterTemplate {
                name: Arc::from(name),
                config_json,
                limits: planned.limits.clone(),
                isolation: planned.isolation,
                execution: planned.execution,
                max_instances,
            };
            let existing = pools.iter().find(|(t, module, _)| {
                *module == planned.module
                    && t.name == template.name
                    && t.config_json == template.config_json
                    && t.limits == template.limits
                    && t.isolation == template.isolation
                    && t.execution == template.execution
            });
            let pool = match existing {
                Some((_, _, pool)) => pool.clone(),
                None => {
                    let path = base_dir.join(&planned.module);
                    let module = rt.compile(name, &path, planned.execution).await?;
                    let created = InstancePool::create(
                        rt.engine.clone(),
                        module,
                        template.clone(),
                        rt.shared.clone(),
                        callouts.clone(),
                    )
                    .await;
                    let pool = created.map_err(|e| match e {
                        InstanceError::Instantiate(reason) => FilterLoadError::Instantiate {
                            filter: name.to_owned(),
                            reason,
                        },
                        InstanceError::Contract(reason) => FilterLoadError::Contract {
                            filter: name.to_owned(),
                            path,
                            reason,
                        },
                        InstanceError::Rejected(message) => FilterLoadError::ConfigRejected {
                            filter: name.to_owned(),
                            message,
                        },
                        InstanceError::Failed(reason) => FilterLoadError::ConfigureFailed {
                            filter: name.to_owned(),
                            reason,
                        },
                    })?;
                    pools.push((template, planned.module.clone(), pool.clone()));
                    pool
                }
            };
            let info = pool.info;
            active.push(Arc::new(ActiveFilter {
                name: Arc::from(name),
                failure_mode: planned.failure_mode,
                pool,
                phases: info.phases,
                request_body: info.request_body,
                response_body: info.response_body,
                exchanges: rt.shared.metrics.counter_handle(name, FILTER_EXCHANGES),
            }));
        }
        let later =
            Phases::REQUEST_BODY | Phases::RESPONSE_HEADERS | Phases::RESPONSE_BODY | Phases::DONE;
        let routes = plan
            .routes
            .iter()
            .map(|indices| {
                let filters: Vec<_> = indices.iter().map(|&i| active[i].clone()).collect();
                let keeps_request = filters.iter().any(|f| f.phases.intersects(later));
                (!filters.is_empty()).then(|| {
                    Arc::new(RouteChain {
                        filters,
                        keeps_request,
                    })
                })
            })
            .collect();
        Ok(FilterSet {
            routes,
            shared: rt.shared.clone(),
        })
    }

    /// The names of the filters that run on `route`, in order.
    pub fn route_filters(&self, route: RouteId) -> Vec<String> {
        match self.routes.get(route.0 as usize) {
            Some(Some(chain)) => chain.filters.iter().map(|f| f.name.to_string()).collect(),
            _ => Vec::new(),
        }
    }
}

fn check_limits(
    rt: &WasmRuntime,
    filter: &str,
    limits: &crate::config::FilterLimits,
) -> Result<(), FilterLoadError> {
    let invalid = |reason: String| FilterLoadError::InvalidLimits {
        filter: filter.to_owned(),
        reason,
    };
    let max = rt.options().max_memory_mib;
    if limits.memory_mib == 0 || limits.memory_mib > max {
        return Err(invalid(format!(
            "limits.memory_mib must be between 1 and {max} (the running engine's \
             wasm.max_memory_mib; a raised one takes effect at the next restart), not {}",
            limits.memory_mib
        )));
    }
    if limits.cpu_per_call.is_zero() {
        return Err(invalid(
            "limits.cpu_per_call must be more than 0".to_owned(),
        ));
    }
    Ok(())
}

impl HooksFactory for FilterSet {
    fn start(&self, route: RouteId) -> Option<Box<dyn ExchangeHooks>> {
        let chain = self.routes.get(route.0 as usize)?.as_ref()?.clone();
        for filter in &chain.filters {
            filter.exchanges.increment();
        }
        Some(Box::new(WasmExchange::new(chain)))
    }

    /// Every filter's metrics in the runtime's registry (process-wide, so
    /// they outlive config generations), the host's own included.
    fn metrics(&self) -> Option<MetricsSnapshot> {
        Some(self.shared.metrics.snapshot())
    }
}
