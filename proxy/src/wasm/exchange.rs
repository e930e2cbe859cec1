//! The per-exchange chain driver: [`WasmExchange`] implements
//! [`ExchangeHooks`] over one route's chain.
//!
//! Request phases run in chain order; response phases run in reverse over
//! the filters the request reached (a local `respond` in filter i skips
//! filters i+1.. and the upstream, but response phases of 0..=i still run).
//! A `respond` from a response phase replaces the response and ends the
//! response chain. Filters that failed open are skipped from then on.
//!
//! The exchange data a filter works on is one box per exchange, swapped into
//! the instance's store for each call and back out after it; if the pipeline
//! drops a hook future half-way, the head and context it lent are left
//! emptied (the exchange is being abandoned anyway).

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use http::header::CONTENT_LENGTH;

use crate::body::ProxyBody;
use crate::phases::{ExchangeCtx, ExchangeHooks, ExchangeSummary, Flow, HookError};
use crate::wasm::bindings::weir::filter::types::{Action, BodyMode, Phases, Summary};
use crate::wasm::body::{BodyDirection, BodyStage, PropertySink, wrap_body};
use crate::wasm::error::CallFailure;
use crate::wasm::filter_set::{ActiveFilter, MAX_DELAY, RouteChain};
use crate::wasm::host::http::local_response;
use crate::wasm::host::{CtxData, ExchangeData, Phase};
use crate::wasm::instance::{FilterHandle, PhaseCall};

/// One filter of the chain as this exchange calls it.
struct ChainMember {
    handle: FilterHandle,
    /// Failed (fail open) in an earlier phase: skipped from then on.
    failed: bool,
}

/// The chain driver for one exchange.
pub(crate) struct WasmExchange {
    chain: Arc<RouteChain>,
    /// In chain order, as `chain.filters`.
    members: Vec<ChainMember>,
    /// How many filters the request phase reached (response phases run over these).
    reached: usize,
    /// What the header phases work on: the request head (lent in
    /// request-headers, then the copy later phases see), the response head
    /// (lent in response-headers, then the copy response body phases see)
    /// and the context. One allocation for the exchange, swapped in and out
    /// of each instance's store.
    data: Box<ExchangeData>,
    /// Copy of the context for body phases (which get no `ExchangeCtx`).
    ctx: Option<CtxData>,
    /// Properties as the body phases left them, merged into later phases;
    /// made when the first body pipeline is.
    body_properties: Option<PropertySink>,
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
    pub(crate) fn new(chain: Arc<RouteChain>) -> Self {
        let members = chain
            .filters
            .iter()
            .map(|f| ChainMember {
                handle: FilterHandle::new(f.pool.clone()),
                failed: false,
            })
            .collect();
        WasmExchange {
            chain,
            members,
            reached: 0,
            data: Box::default(),
            ctx: None,
            body_properties: None,
        }
    }

    /// Indices of reached, healthy filters listing `phase`, in chain order.
    fn active(&self, phase: Phases) -> impl DoubleEndedIterator<Item = usize> + '_ {
        (0..self.reached).filter(move |&i| {
            !self.members[i].failed && self.chain.filters[i].phases.contains(phase)
        })
    }

    /// Handle one phase result; `Ok(Some(flow))` ends the loop.
    async fn outcome(
        &mut self,
        i: usize,
        phase: Phase,
        result: Result<Option<Action>, CallFailure>,
    ) -> Result<Option<Flow>, HookError> {
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
        self.members[i].failed = true;
        self.chain.filters[i].failed(phase, &failure).map(|()| None)
    }

    async fn run_request_headers(&mut self) -> Result<Flow, HookError> {
        for i in 0..self.chain.filters.len() {
            self.reached = i + 1;
            if !self.chain.filters[i]
                .phases
                .contains(Phases::REQUEST_HEADERS)
            {
                continue;
            }
            let result = self.members[i]
                .handle
                .run(PhaseCall::RequestHeaders, &mut self.data)
                .await;
            if let Some(flow) = self.outcome(i, Phase::RequestHeaders, result).await? {
                return Ok(flow);
            }
        }
        Ok(Flow::Continue)
    }

    async fn run_response_headers(&mut self) -> Result<Flow, HookError> {
        // Walked by index: the loop body needs `&mut self`. A filter that
        // fails open here is not revisited, so checking as we go is the same.
        for i in (0..self.reached).rev() {
            if self.members[i].failed
                || !self.chain.filters[i]
                    .phases
                    .contains(Phases::RESPONSE_HEADERS)
            {
                continue;
            }
            let result = self.members[i]
                .handle
                .run(PhaseCall::ResponseHeaders, &mut self.data)
                .await;
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
                BodyStage::new(self.members[i].handle.clone(), filter, mode)
            })
            .collect()
    }

    fn has_phase(&self, phase: Phases) -> bool {
        self.active(phase).next().is_some()
    }

    /// Some active body filter in `direction` buffers the body whole.
    fn buffers(&self, direction: BodyDirection) -> bool {
        let (phase, mode_of): (Phases, fn(&ActiveFilter) -> BodyMode) = match direction {
            BodyDirection::Request => (Phases::REQUEST_BODY, |f| f.request_body),
            BodyDirection::Response => (Phases::RESPONSE_BODY, |f| f.response_body),
        };
        self.active(phase)
            .any(|i| matches!(mode_of(&self.chain.filters[i]), BodyMode::Buffer(_)))
    }

    /// Bring in the properties body phases set since the last look.
    fn merge_body_properties(&self, ctx: &mut ExchangeCtx) {
        let Some(sink) = &self.body_properties else {
            return;
        };
        let taken = sink.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(properties) = taken {
            ctx.properties.extend(properties);
        }
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
            self.data.request = Some(std::mem::replace(head, empty_request()));
            self.data.ctx = CtxData::take(ctx);
            let result = self.run_request_headers().await;
            *head = self.data.request.take().unwrap_or_else(empty_request);
            if self.has_body_phase() {
                self.ctx = Some(self.data.ctx.clone());
            }
            std::mem::take(&mut self.data.ctx).restore(ctx);
            if self.chain.keeps_request {
                self.data.request = Some(copy_request(head));
            }
            if self.has_phase(Phases::REQUEST_BODY) {
                // A body filter may change the length.
                head.headers.remove(CONTENT_LENGTH);
            }
            result
        })
    }

    fn wraps_request_body(&self) -> bool {
        self.has_phase(Phases::REQUEST_BODY)
    }

    fn request_body(&mut self, body: ProxyBody) -> ProxyBody {
        let stages = self.body_stages(BodyDirection::Request);
        if stages.is_empty() {
            return body;
        }
        let data = Box::new(ExchangeData {
            request: Some(
                self.data
                    .request
                    .as_ref()
                    .map(copy_request)
                    .unwrap_or_else(empty_request),
            ),
            ctx: self.ctx.clone().unwrap_or_default(),
            ..Default::default()
        });
        let properties = self.body_properties.get_or_insert_default().clone();
        wrap_body(body, stages, BodyDirection::Request, data, properties)
    }

    fn buffers_request_body(&self) -> bool {
        self.buffers(BodyDirection::Request)
    }

    fn buffers_response_body(&self) -> bool {
        self.buffers(BodyDirection::Response)
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
            self.merge_body_properties(ctx);
            self.data.request.get_or_insert_with(empty_request);
            self.data.response = Some(std::mem::replace(head, empty_response()));
            self.data.ctx = CtxData::take(ctx);
            let result = self.run_response_headers().await;
            *head = self.data.response.take().unwrap_or_else(empty_response);
            if self.has_body_phase() {
                self.ctx = Some(self.data.ctx.clone());
            }
            std::mem::take(&mut self.data.ctx).restore(ctx);
            if self.has_phase(Phases::RESPONSE_BODY) {
                head.headers.remove(CONTENT_LENGTH);
                self.data.response = Some(copy_response(head));
            }
            result
        })
    }

    fn response_body(&mut self, body: ProxyBody) -> ProxyBody {
        let stages = self.body_stages(BodyDirection::Response);
        if stages.is_empty() {
            return body;
        }
        let data = Box::new(ExchangeData {
            request: Some(
                self.data
                    .request
                    .as_ref()
                    .map(copy_request)
                    .unwrap_or_else(empty_request),
            ),
            response: Some(
                self.data
                    .response
                    .as_ref()
                    .map(copy_response)
                    .unwrap_or_else(empty_response),
            ),
            ctx: self.ctx.clone().unwrap_or_default(),
            ..Default::default()
        });
        let properties = self.body_properties.get_or_insert_default().clone();
        wrap_body(body, stages, BodyDirection::Response, data, properties)
    }

    fn done(self: Box<Self>, mut ctx: ExchangeCtx, summary: ExchangeSummary) {
        let order: Vec<usize> = self.active(Phases::DONE).rev().collect();
        if order.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::debug!("no tokio runtime: on-done skipped");
            return;
        };
        self.merge_body_properties(&mut ctx);
        let WasmExchange {
            chain,
            members,
            mut data,
            ..
        } = *self;
        data.request.get_or_insert_with(empty_request);
        data.response = None;
        data.ctx = CtxData::take(&mut ctx);
        let summary = Summary {
            status: summary.status,
            duration_us: summary.duration_us,
            request_bytes: summary.request_bytes,
            response_bytes: summary.response_bytes,
            upstream_cluster: summary.upstream_cluster.map(|name| name.to_string()),
            local_response: summary.local_response,
        };
        runtime.spawn(async move {
            for i in order {
                let result = members[i]
                    .handle
                    .run(PhaseCall::Done(summary.clone()), &mut data)
                    .await;
                if let Err(failure) = result {
                    // Nothing left to fail: log and count whatever the mode.
                    let _ = chain.filters[i].failed(Phase::Done, &failure);
                }
            }
        });
    }
}
