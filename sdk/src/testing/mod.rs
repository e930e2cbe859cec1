//! Unit-test filters with plain `cargo test`: no Wasm, no proxy.
//!
//! On native targets the SDK talks to an in-memory proxy instead of the real
//! one. [`load`] configures a filter exactly as the proxy does (same JSON
//! parsing, same errors, same phase detection); [`Loaded`] then calls its
//! hooks on test [`Request`]s, [`Response`]s and [`Body`]s. The services
//! ([`crate::kv`], [`crate::metrics`], [`crate::log`](mod@crate::log), [`crate::http::call`],
//! [`crate::time`], [`crate::random`]) work too, and this module lets a test
//! set them up and inspect them: [`kv()`], [`metrics()`], [`logs()`],
//! [`mock_callout`], [`set_time`], [`seed_random`].
//!
//! ```
//! use weir_sdk::prelude::*;
//! use weir_sdk::testing::{self, json};
//!
//! #[derive(serde::Deserialize)]
//! struct Config { header: String }
//!
//! struct Tag { header: String }
//!
//! #[weir_sdk::filter]
//! impl Filter for Tag {
//!     type Config = Config;
//!     fn new(c: Config) -> Result<Self> { Ok(Tag { header: c.header }) }
//!     fn on_request_headers(&self, req: &mut Request) -> Result<Action> {
//!         req.set_header(&self.header, "1")?;
//!         Ok(Action::Continue)
//!     }
//! }
//!
//! let f = testing::load::<Tag>(json!({ "header": "x-tag" })).unwrap();
//! let mut req = testing::Request::get("/");
//! assert_eq!(f.request_headers(&mut req).unwrap(), Action::Continue);
//! assert_eq!(req.header("x-tag").as_deref(), Some("1"));
//!
//! let err = testing::load::<Tag>(json!({})).err().unwrap();
//! assert!(err.to_string().contains("missing field `header`"));
//! ```
//!
//! The simulated services keep their state per thread; `cargo test` runs each
//! test on its own thread, so tests are isolated. (With `--test-threads=1`
//! tests share the main thread: call [`reset`] at the start of a test that
//! depends on a clean slate.)

mod exchange;
mod host;

pub use exchange::{Body, Request, Response};
pub use host::{
    LogRecord, Metrics, advance_time, callouts, kv, logs, metrics, mock_callout, reset,
    seed_random, set_clusters, set_log_level, set_time,
};
/// `json!` from `serde_json`, for configurations.
pub use serde_json::json;

use crate::configure::configure;
use crate::{Action, BodyMode, Error, Filter, FilterInfo, LocalResponse, Phases, Result, Summary};

/// Configure `F` with `config`, as the proxy would (`configure` with this
/// JSON). Errors are the ones the proxy would report when loading it.
pub fn load<F: Filter>(config: serde_json::Value) -> Result<Loaded<F>> {
    load_str(&config.to_string())
}

/// [`load`] from JSON text (to test what happens with malformed JSON).
pub fn load_str<F: Filter>(config_json: &str) -> Result<Loaded<F>> {
    let (filter, info) = configure::<F>(config_json)?;
    Ok(Loaded { filter, info })
}

/// A configured filter, ready to run phases.
pub struct Loaded<F> {
    filter: F,
    info: FilterInfo,
}

/// The outcome of feeding a whole body to a body hook, see
/// [`Loaded::run_request_body`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyRun {
    /// The body as it leaves the filter (all chunks, concatenated).
    pub body: Vec<u8>,
    /// The action of every call, in order. Stops after a `Respond`.
    pub actions: Vec<Action>,
}

impl BodyRun {
    /// The body as text (lossy UTF-8, for assertions).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The local response, if a call answered.
    pub fn local_response(&self) -> Option<&LocalResponse> {
        self.actions.iter().find_map(|a| match a {
            Action::Respond(r) => Some(r),
            _ => None,
        })
    }
}

impl<F: Filter> Loaded<F> {
    /// The filter value `F::new` built.
    pub fn filter(&self) -> &F {
        &self.filter
    }

    /// What `configure` told the proxy: phases and body modes.
    pub fn info(&self) -> FilterInfo {
        self.info
    }

    /// Call `on_request_headers`.
    pub fn request_headers(&self, req: &mut Request) -> Result<Action> {
        self.filter
            .on_request_headers(&mut crate::Request::new(&req.host))
    }

    /// Call `on_request_body` once with `body`.
    pub fn request_body(
        &self,
        req: &mut Request,
        body: &mut Body,
        end_of_stream: bool,
    ) -> Result<Action> {
        self.filter.on_request_body(
            &mut crate::Request::new(&req.host),
            &mut crate::Body::new(&body.host),
            end_of_stream,
        )
    }

    /// Call `on_response_headers`.
    pub fn response_headers(&self, req: &mut Request, resp: &mut Response) -> Result<Action> {
        self.filter.on_response_headers(
            &mut crate::Request::new(&req.host),
            &mut crate::Response::new(&resp.host),
        )
    }

    /// Call `on_response_body` once with `body`.
    pub fn response_body(
        &self,
        req: &mut Request,
        resp: &mut Response,
        body: &mut Body,
        end_of_stream: bool,
    ) -> Result<Action> {
        self.filter.on_response_body(
            &mut crate::Request::new(&req.host),
            &mut crate::Response::new(&resp.host),
            &mut crate::Body::new(&body.host),
            end_of_stream,
        )
    }

    /// Call `on_done`.
    pub fn done(&self, req: &Request, summary: &Summary) {
        self.filter
            .on_done(&crate::Request::new(&req.host), summary)
    }

    /// Feed a request body arriving in `chunks` the way the proxy would: not
    /// at all if the filter has no `on_request_body`; chunk by chunk in
    /// stream mode; all at once in buffer mode (an error if larger than the
    /// buffer, where the proxy answers 413).
    pub fn run_request_body<C: AsRef<[u8]>>(
        &self,
        req: &mut Request,
        chunks: &[C],
    ) -> Result<BodyRun> {
        let phase = Phases::REQUEST_BODY;
        self.run_body(phase, self.info.request_body, chunks, |body, eos| {
            self.request_body(req, body, eos)
        })
    }

    /// [`Loaded::run_request_body`] for the response body (the proxy answers
    /// 502 when a buffered response body is too large).
    pub fn run_response_body<C: AsRef<[u8]>>(
        &self,
        req: &mut Request,
        resp: &mut Response,
        chunks: &[C],
    ) -> Result<BodyRun> {
        let phase = Phases::RESPONSE_BODY;
        self.run_body(phase, self.info.response_body, chunks, |body, eos| {
            self.response_body(req, resp, body, eos)
        })
    }

    fn run_body<C: AsRef<[u8]>>(
        &self,
        phase: Phases,
        mode: BodyMode,
        chunks: &[C],
        mut hook: impl FnMut(&mut Body, bool) -> Result<Action>,
    ) -> Result<BodyRun> {
        let whole: Vec<u8> = chunks
            .iter()
            .flat_map(|c| c.as_ref().iter().copied())
            .collect();
        if !self.info.phases.contains(phase) || chunks.is_empty() {
            return Ok(BodyRun {
                body: whole,
                actions: Vec::new(),
            });
        }
        let calls: Vec<Vec<u8>> = match mode {
            BodyMode::Stream => chunks.iter().map(|c| c.as_ref().to_vec()).collect(),
            BodyMode::Buffer(max) if whole.len() as u64 > u64::from(max) => {
                return Err(Error::msg(format!(
                    "body of {} bytes exceeds the filter's buffer of {max} bytes",
                    whole.len()
                )));
            }
            BodyMode::Buffer(_) => vec![whole],
        };
        let mut run = BodyRun {
            body: Vec::new(),
            actions: Vec::new(),
        };
        let last = calls.len() - 1;
        for (i, chunk) in calls.into_iter().enumerate() {
            let mut body = Body::new(chunk);
            let action = hook(&mut body, i == last)?;
            run.body.extend_from_slice(&body.bytes());
            let answered = matches!(action, Action::Respond(_));
            run.actions.push(action);
            if answered {
                break;
            }
        }
        Ok(run)
    }
}
