//! The loaded filter set of one config generation ([`FilterSet`], the
//! pipeline's [`HooksFactory`]) and the per-exchange chain driver
//! ([`ExchangeHooks`]).
//!
//! Request phases run in chain order; response phases run in reverse over
//! the filters the request reached (a local `respond` in filter i skips
//! filters i+1.. and the upstream, but response phases of 0..=i still run).
//! A failing filter (trap, CPU deadline, `Err` from a phase, no instance)
//! is either fatal for the exchange (`fail_closed` → [`HookError::FilterFailed`])
//! or logged, counted and skipped for the rest of the exchange (`fail_open`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use http::header::CONTENT_LENGTH;

use crate::body::ProxyBody;
use crate::config::{Config, FailureMode};
use crate::phases::{ExchangeCtx, ExchangeHooks, ExchangeSummary, Flow, HookError, HooksFactory};
use crate::routing::RouteId;
use crate::wasm::bindings::weir::filter::types::{Action, BodyMode, Phases, Summary};
use crate::wasm::body::{BodyDirection, BodyStage, wrap_body};
use crate::wasm::chain;
use crate::wasm::error::{CallFailure, FilterLoadError};
use crate::wasm::host::callout::CalloutClient;
use crate::wasm::host::http::local_response;
use crate::wasm::host::{CtxData, ExchangeData, Phase};
use crate::wasm::instance::{FilterHandle, FilterTemplate, InstanceError, InstancePool, PhaseCall};
use crate::wasm::runtime::WasmRuntime;

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
}

impl ActiveFilter {
    /// Log and count a failure; `Err` when it must fail the exchange.
    pub(crate) fn failed(&self, phase: Phase, failure: &CallFailure) -> Result<(), HookError> {
        let metrics = &self.pool.shared.metrics;
        match self.failure_mode {
            FailureMode::FailClosed => {
                metrics.record_failure(&self.name, phase.as_str(), "fail_closed");
                tracing::warn!(filter = %self.name, phase = phase.as_str(), "filter failed (fail closed): {failure}");
                Err(HookError::FilterFailed {
                    filter: self.name.to_string(),
                    reason: failure.to_string(),
                })
            }
            FailureMode::FailOpen => {
                metrics.record_failure(&self.name, phase.as_str(), "fail_open");
                tracing::warn!(filter = %self.name, phase = phase.as_str(), "filter failed (fail open, skipped): {failure}");
                Ok(())
            }
        }
    }

    /// The most bytes this filter may buffer in `mode`.
    pub(crate) fn buffer_limit(&self, requested: u32) -> usize {
        requested.min(self.pool.template.limits.max_buffered_body) as usize
    }
}

/// One route's chain, with what it needs precomputed.
pub(crate) struct RouteChain {
    filters: Vec<Arc<ActiveFilter>>,
    /// Some filter has a phase after request-headers: keep a copy of the request head.
    keeps_request: bool,
}

/// All filters of one config generation; the pipeline's [`HooksFactory`].
pub struct FilterSet {
    routes: Vec<Option<Arc<RouteChain>>>,
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
                max_instances,
            };
            let existing = pools.iter().find(|(t, module, _)| {
                *module == planned.module
                    && t.name == template.name
                    && t.config_json == template.config_json
                    && t.limits == template.limits
                    && t.isolation == template.isolation
            });
            let pool = match existing {
                Some((_, _, pool)) => pool.clone(),
                None => {
                    let path = base_dir.join(&planned.module);
                    let module = rt.compile(name, &path).await?;
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
        Ok(FilterSet { routes })
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
            "limits.memory_mib must be between 1 and {max}, not {}",
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
        let handles = chain
            .filters
            .iter()
            .map(|f| FilterHandle::new(f.pool.clone()))
            .collect();
        let failed = vec![false; chain.filters.len()];
        Some(Box::new(WasmExchange {
            chain,
            handles,
            reached: 0,
            failed,
            request: None,
            response: None,
            ctx: None,
        }))
    }
}

/// The chain driver for one exchange.
struct WasmExchange {
    chain: Arc<RouteChain>,
    handles: Vec<FilterHandle>,
    /// How many filters the request phase reached (response phases run over these).
    reached: usize,
    /// Filters that failed (fail open) and are skipped from then on.
    failed: Vec<bool>,
    /// Copy of the request head for later phases.
    request: Option<http::request::Parts>,
    /// Copy of the response head for response body phases.
    response: Option<http::response::Parts>,
    /// Copy of the context for body phases (which get no `ExchangeCtx`).
    ctx: Option<CtxData>,
}

fn empty_request() -> http::request::Parts {
    http::Request::new(()).into_parts().0
}

fn empty_response() -> http::response::Parts {
    http::Response::new(()).into_parts().0
}

fn copy_request(head: &http::request::Parts) -> http::request::Parts {
    let mut copy = empty_request();
    copy.method = head.method.clone();
    copy.uri = head.uri.clone();
    copy.version = head.version;
    copy.headers = head.headers.clone();
    copy
}

fn copy_response(head: &http::response::Parts) -> http::response::Parts {
    let mut copy = empty_response();
    copy.status = head.status;
    copy.version = head.version;
    copy.headers = head.headers.clone();
    copy
}

impl WasmExchange {
    /// Indices of reached, healthy filters listing `phase`, in chain order.
    fn active(&self, phase: Phases) -> impl DoubleEndedIterator<Item = usize> + '_ {
        (0..self.reached)
            .filter(move |&i| !self.failed[i] && self.chain.filters[i].phases.contains(phase))
    }

    /// Handle one phase result; `Ok(Some(flow))` ends the loop.
    async fn outcome(
        &mut self,
        i: usize,
        phase: Phase,
        result: Result<Option<Action>, CallFailure>,
    ) -> Result<Option<Flow>, HookError> {
        let filter = self.chain.filters[i].clone();
        let failure = match result {
            Ok(None | Some(Action::Continue)) => return Ok(None),
            Ok(Some(Action::Delay(ms))) => {
                tokio::time::sleep(Duration::from_millis(u64::from(ms)).min(MAX_DELAY)).await;
                return Ok(None);
            }
            Ok(Some(Action::Respond(local))) => {
                match local_response(local.status, local.headers, local.body) {
                    Ok(response) => return Ok(Some(Flow::Respond(response))),
                    Err(why) => CallFailure::Invalid(format!("invalid local response: {why}")),
                }
            }
            Err(failure) => failure,
        };
        self.failed[i] = true;
        filter.failed(phase, &failure).map(|()| None)
    }

    async fn run_request_headers(&mut self, data: &mut ExchangeData) -> Result<Flow, HookError> {
        for i in 0..self.chain.filters.len() {
            self.reached = i + 1;
            if !self.chain.filters[i]
                .phases
                .contains(Phases::REQUEST_HEADERS)
            {
                continue;
            }
            let result = self.handles[i].run(PhaseCall::RequestHeaders, data).await;
            if let Some(flow) = self.outcome(i, Phase::RequestHeaders, result).await? {
                return Ok(flow);
            }
        }
        Ok(Flow::Continue)
    }

    async fn run_response_headers(&mut self, data: &mut ExchangeData) -> Result<Flow, HookError> {
        let order: Vec<usize> = self.active(Phases::RESPONSE_HEADERS).rev().collect();
        for i in order {
            let result = self.handles[i].run(PhaseCall::ResponseHeaders, data).await;
            if let Some(flow) = self.outcome(i, Phase::ResponseHeaders, result).await? {
                return Ok(flow);
            }
        }
        Ok(Flow::Continue)
    }

    fn body_stages(&self, direction: BodyDirection) -> Vec<BodyStage> {
        let indices: Vec<usize> = match direction {
            BodyDirection::Request => self.active(Phases::REQUEST_BODY).collect(),
            BodyDirection::Response => self.active(Phases::RESPONSE_BODY).rev().collect(),
        };
        indices
            .into_iter()
            .map(|i| {
                let filter = self.chain.filters[i].clone();
                let mode = match direction {
                    BodyDirection::Request => filter.request_body,
                    BodyDirection::Response => filter.response_body,
                };
                BodyStage::new(self.handles[i].clone(), filter, mode)
            })
            .collect()
    }

    fn has_phase(&self, phase: Phases) -> bool {
        self.active(phase).next().is_some()
    }

    fn has_body_phase(&self) -> bool {
        self.has_phase(Phases::REQUEST_BODY) || self.has_phase(Phases::RESPONSE_BODY)
    }
}

impl ExchangeHooks for WasmExchange {
    fn request_headers<'a>(
        &'a mut self,
        head: &'a mut http::request::Parts,
        ctx: &'a mut ExchangeCtx,
    ) -> BoxFuture<'a, Result<Flow, HookError>> {
        Box::pin(async move {
            let request = std::mem::replace(head, empty_request());
            let mut data = ExchangeData {
                request: Some(request),
                ctx: CtxData::take(ctx),
                ..Default::default()
            };
            let result = self.run_request_headers(&mut data).await;
            *head = data.request.take().unwrap_or_else(empty_request);
            if self.has_body_phase() {
                self.ctx = Some(data.ctx.clone());
            }
            data.ctx.restore(ctx);
            if self.chain.keeps_request {
                self.request = Some(copy_request(head));
            }
            if self.has_phase(Phases::REQUEST_BODY) {
                // A body filter may change the length.
                head.headers.remove(CONTENT_LENGTH);
            }
            result
        })
    }

    fn request_body(&mut self, body: ProxyBody) -> ProxyBody {
        let stages = self.body_stages(BodyDirection::Request);
        if stages.is_empty() {
            return body;
        }
        let data = ExchangeData {
            request: Some(
                self.request
                    .as_ref()
                    .map(copy_request)
                    .unwrap_or_else(empty_request),
            ),
            ctx: self.ctx.clone().unwrap_or_default(),
            ..Default::default()
        };
        wrap_body(body, stages, BodyDirection::Request, data)
    }

    fn response_headers<'a>(
        &'a mut self,
        head: &'a mut http::response::Parts,
        ctx: &'a mut ExchangeCtx,
    ) -> BoxFuture<'a, Result<Flow, HookError>> {
        Box::pin(async move {
            if !self.has_phase(Phases::RESPONSE_HEADERS) && !self.has_phase(Phases::RESPONSE_BODY) {
                return Ok(Flow::Continue);
            }
            let response = std::mem::replace(head, empty_response());
            let mut data = ExchangeData {
                request: Some(self.request.take().unwrap_or_else(empty_request)),
                response: Some(response),
                ctx: CtxData::take(ctx),
                ..Default::default()
            };
            let result = self.run_response_headers(&mut data).await;
            self.request = data.request.take();
            *head = data.response.take().unwrap_or_else(empty_response);
            if self.has_body_phase() {
                self.ctx = Some(data.ctx.clone());
            }
            data.ctx.restore(ctx);
            if self.has_phase(Phases::RESPONSE_BODY) {
                head.headers.remove(CONTENT_LENGTH);
                self.response = Some(copy_response(head));
            }
            result
        })
    }

    fn response_body(&mut self, body: ProxyBody) -> ProxyBody {
        let stages = self.body_stages(BodyDirection::Response);
        if stages.is_empty() {
            return body;
        }
        let data = ExchangeData {
            request: Some(
                self.request
                    .as_ref()
                    .map(copy_request)
                    .unwrap_or_else(empty_request),
            ),
            response: Some(
                self.response
                    .as_ref()
                    .map(copy_response)
                    .unwrap_or_else(empty_response),
            ),
            ctx: self.ctx.clone().unwrap_or_default(),
            ..Default::default()
        };
        wrap_body(body, stages, BodyDirection::Response, data)
    }

    fn done(mut self: Box<Self>, mut ctx: ExchangeCtx, summary: ExchangeSummary) {
        let order: Vec<usize> = self.active(Phases::DONE).rev().collect();
        if order.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::debug!("no tokio runtime: on-done skipped");
            return;
        };
        let mut data = ExchangeData {
            request: Some(self.request.take().unwrap_or_else(empty_request)),
            ctx: CtxData::take(&mut ctx),
            ..Default::default()
        };
        let summary = Summary {
            status: summary.status,
            duration_us: summary.duration_us,
            request_bytes: summary.request_bytes,
            response_bytes: summary.response_bytes,
            upstream_cluster: summary.upstream_cluster,
            local_response: summary.local_response,
        };
        runtime.spawn(async move {
            for i in order {
                let result = self.handles[i]
                    .run(PhaseCall::Done(summary.clone()), &mut data)
                    .await;
                if let Err(failure) = result {
                    // Nothing left to fail: log and count whatever the mode.
                    let _ = self.chain.filters[i].failed(Phase::Done, &failure);
                }
            }
        });
    }
}
