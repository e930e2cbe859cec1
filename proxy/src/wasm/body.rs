//! Body phases: a body wrapper that feeds chunks through the filters' body
//! phases on their way upstream (request) or to the client (response).
//!
//! `stream` mode calls the filter per chunk with `end-of-stream` on the last
//! call (possibly with an empty chunk when the end is only known after the
//! last data). `buffer(n)` mode collects the whole body, up to the smaller of
//! `n` and the filter's `limits.max_buffered_body`, and calls once. Several
//! body filters form a pipeline: a buffering filter passes nothing on until
//! the end. Trailers pass through unchanged after the last data.
//!
//! A failure ends the body with a [`FilterBodyError`] (fail closed, or a
//! buffer overflow whatever the mode); with fail open the filter is skipped
//! for the rest of the body and the data it was given passes on unchanged.
//! `respond` is not possible in a body phase (the head is already on its
//! way) and counts as a failure.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, StreamBody};

use crate::body::{BoxError, ProxyBody};
use crate::phases::HookError;
use crate::wasm::bindings::weir::filter::types::{Action, BodyMode};
use crate::wasm::error::CallFailure;
use crate::wasm::filter_set::{ActiveFilter, MAX_DELAY};
use crate::wasm::host::{ExchangeData, Phase};
use crate::wasm::instance::{FilterHandle, PhaseCall};

/// Which body a [`FilterBodyError`] happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyDirection {
    /// The request body, on its way upstream.
    Request,
    /// The response body, on its way to the client.
    Response,
}

impl std::fmt::Display for BodyDirection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BodyDirection::Request => "request",
            BodyDirection::Response => "response",
        })
    }
}

/// The error a filtered body fails with. The pipeline finds it by
/// downcasting the body's [`BoxError`]: [`HookError::BodyTooLarge`] maps to
/// 413 for a request body (502 for a response body, if the head was not yet
/// sent), [`HookError::FilterFailed`] to 503 naming the filter, for a request
/// body and for a response body whose head was not yet sent (a buffered one);
/// once a response head is sent, the stream is simply aborted.
#[derive(Debug, thiserror::Error)]
#[error("{direction} body: {error}")]
pub struct FilterBodyError {
    /// Request or response body.
    pub direction: BodyDirection,
    /// What went wrong, naming the filter.
    #[source]
    pub error: HookError,
}

/// One filter in a body pipeline.
pub(crate) struct BodyStage {
    handle: FilterHandle,
    filter: Arc<ActiveFilter>,
    mode: BodyMode,
    limit: usize,
    buffer: BytesMut,
    skipped: bool,
}

impl BodyStage {
    pub(crate) fn new(handle: FilterHandle, filter: Arc<ActiveFilter>, mode: BodyMode) -> Self {
        let limit = match mode {
            BodyMode::Stream => 0,
            BodyMode::Buffer(requested) => filter.buffer_limit(requested),
        };
        BodyStage {
            handle,
            filter,
            mode,
            limit,
            buffer: BytesMut::new(),
            skipped: false,
        }
    }
}

/// Where a body pipeline leaves the exchange properties as its filters left
/// them, so later phases (response headers, done) see what body phases set.
pub(crate) type PropertySink = Arc<Mutex<Option<HashMap<String, String>>>>;

struct BodyPipeline {
    inner: ProxyBody,
    properties: PropertySink,
    stages: Vec<BodyStage>,
    direction: BodyDirection,
    data: Box<ExchangeData>,
    queue: VecDeque<Frame<Bytes>>,
    finished: bool,
}

/// Wrap `body` so its data goes through `stages` in order.
pub(crate) fn wrap_body(
    body: ProxyBody,
    stages: Vec<BodyStage>,
    direction: BodyDirection,
    data: Box<ExchangeData>,
    properties: PropertySink,
) -> ProxyBody {
    let pipeline = BodyPipeline {
        inner: body,
        properties,
        stages,
        direction,
        data,
        queue: VecDeque::new(),
        finished: false,
    };
    let stream = futures_util::stream::unfold(pipeline, |mut pipeline| async move {
        let item = pipeline.next_frame().await?;
        Some((item, pipeline))
    });
    StreamBody::new(stream).boxed_unsync()
}

impl BodyPipeline {
    fn error(&self, error: HookError) -> BoxError {
        Box::new(FilterBodyError {
            direction: self.direction,
            error,
        })
    }

    async fn next_frame(&mut self) -> Option<Result<Frame<Bytes>, BoxError>> {
        loop {
            if let Some(frame) = self.queue.pop_front() {
                return Some(Ok(frame));
            }
            if self.finished {
                return None;
            }
            let (chunk, end, trailers) = match self.inner.frame().await {
                None => (Bytes::new(), true, None),
                Some(Err(error)) => {
                    self.finished = true;
                    return Some(Err(error));
                }
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        let end = self.inner.is_end_stream();
                        (data, end, None)
                    }
                    Err(frame) => (Bytes::new(), true, Some(frame)),
                },
            };
            if end {
                self.finished = true;
            }
            match self.process(chunk, end).await {
                Ok(out) if !out.is_empty() => self.queue.push_back(Frame::data(out)),
                Ok(_) => {}
                Err(error) => {
                    self.finished = true;
                    self.queue.clear();
                    return Some(Err(error));
                }
            }
            if let Some(trailers) = trailers {
                self.queue.push_back(trailers);
            }
        }
    }

    /// Feed one chunk through every stage; returns what comes out the end.
    async fn process(&mut self, chunk: Bytes, end: bool) -> Result<Bytes, BoxError> {
        let mut current = chunk;
        for index in 0..self.stages.len() {
            let stage = &mut self.stages[index];
            if stage.skipped {
                continue;
            }
            let input = match stage.mode {
                BodyMode::Stream => {
                    if current.is_empty() && !end {
                        continue;
                    }
                    std::mem::take(&mut current)
                }
                BodyMode::Buffer(_) => {
                    stage.buffer.extend_from_slice(&current);
                    if stage.buffer.len() > stage.limit {
                        let error = HookError::BodyTooLarge {
                            filter: stage.filter.name.to_string(),
                            limit: stage.limit as u64,
                        };
                        return Err(self.error(error));
                    }
                    if !end {
                        current = Bytes::new();
                        continue;
                    }
                    stage.buffer.split().freeze()
                }
            };
            current = self.call(index, input, end).await?;
        }
        Ok(current)
    }

    /// One body phase call; returns the (possibly replaced) bytes.
    async fn call(&mut self, index: usize, input: Bytes, end: bool) -> Result<Bytes, BoxError> {
        let (call, phase) = match self.direction {
            BodyDirection::Request => (
                PhaseCall::RequestBody { end_of_stream: end },
                Phase::RequestBody,
            ),
            BodyDirection::Response => (
                PhaseCall::ResponseBody { end_of_stream: end },
                Phase::ResponseBody,
            ),
        };
        self.data.body = Some(input.clone());
        let stage = &mut self.stages[index];
        let result = stage.handle.run(call, &mut self.data).await;
        let output = self.data.body.take().unwrap_or_default();
        *self.properties.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(self.data.ctx.properties.clone());
        let failure = match result {
            Ok(None | Some(Action::Continue)) => return Ok(output),
            Ok(Some(Action::Delay(ms))) => {
                tokio::time::sleep(Duration::from_millis(u64::from(ms)).min(MAX_DELAY)).await;
                return Ok(output);
            }
            Ok(Some(Action::Respond(_))) => CallFailure::Invalid(
                "answered `respond` in a body phase, where the head is already sent".into(),
            ),
            Err(failure) => failure,
        };
        let stage = &mut self.stages[index];
        stage.skipped = true;
        match stage.filter.failed(phase, &failure) {
            Ok(()) => Ok(input),
            Err(error) => Err(self.error(error)),
        }
    }
}
