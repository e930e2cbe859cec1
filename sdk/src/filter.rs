//! The `Filter` trait and the plain data it exchanges with the proxy.

use std::fmt;
use std::ops::BitOr;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::{Body, Request, Response, Result};

/// A Weir filter. Implement it on your type and put `#[weir_sdk::filter]` on
/// the impl block.
///
/// Every hook has a default that does nothing and continues; write only the
/// ones you need. The proxy calls a hook only if your impl block defines it,
/// so unused phases cost nothing.
///
/// Hooks take `&self`: the filter value is built once per instance by
/// [`Filter::new`] and then serves many requests, one at a time. Keep
/// per-request data in [`Request::property`] / [`Request::set_property`].
pub trait Filter: Sized + 'static {
    /// The configuration, parsed from the filter's `config:` (JSON) for you.
    /// A parse error rejects the configuration with a message naming the
    /// field. Use `serde_json::Value` to take anything, `()` for none.
    type Config: DeserializeOwned;

    /// Build the filter from its configuration. Return
    /// `Err(Error::config("..."))` to reject a configuration that parses but
    /// makes no sense; the proxy then refuses to load it, with your message.
    fn new(config: Self::Config) -> Result<Self>;

    /// How the request body is handed to [`Filter::on_request_body`].
    /// Called once, right after [`Filter::new`].
    fn request_body_mode(&self) -> BodyMode {
        BodyMode::Stream
    }

    /// How the response body is handed to [`Filter::on_response_body`].
    /// Called once, right after [`Filter::new`].
    fn response_body_mode(&self) -> BodyMode {
        BodyMode::Stream
    }

    /// The request head, after routing and before the upstream is picked.
    /// Change headers, path, method or cluster, or answer locally.
    fn on_request_headers(&self, req: &mut Request) -> Result<Action> {
        let _ = req;
        Ok(Action::Continue)
    }

    /// A request body chunk (stream mode) or the whole body (buffer mode).
    /// `end_of_stream` is true on the last call. A request without a body
    /// never reaches this hook.
    fn on_request_body(
        &self,
        req: &mut Request,
        body: &mut Body,
        end_of_stream: bool,
    ) -> Result<Action> {
        let _ = (req, body, end_of_stream);
        Ok(Action::Continue)
    }

    /// The response head on its way to the client: the upstream's, or a
    /// local response. Response hooks run in reverse chain order.
    fn on_response_headers(&self, req: &mut Request, resp: &mut Response) -> Result<Action> {
        let _ = (req, resp);
        Ok(Action::Continue)
    }

    /// A response body chunk (stream mode) or the whole body (buffer mode).
    fn on_response_body(
        &self,
        req: &mut Request,
        resp: &mut Response,
        body: &mut Body,
        end_of_stream: bool,
    ) -> Result<Action> {
        let _ = (req, resp, body, end_of_stream);
        Ok(Action::Continue)
    }

    /// The exchange is over (the response was sent, or the exchange failed).
    /// For logs and metrics; it cannot change anything.
    fn on_done(&self, req: &Request, summary: &Summary) {
        let _ = (req, summary);
    }

    /// The phases this impl defines. Set by `#[weir_sdk::filter]`; `None`
    /// means the attribute is missing.
    #[doc(hidden)]
    const __PHASES: Option<Phases> = None;
}

/// What the proxy does after a hook returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Go on: the next filter, then the upstream (request phases) or the
    /// client (response phases).
    Continue,
    /// Answer with this response. From a request phase, the rest of the
    /// request chain and the upstream are skipped; response phases of the
    /// filters that already ran still run.
    Respond(LocalResponse),
    /// Wait this many milliseconds, then continue. The proxy waits on a
    /// timer: no worker thread is blocked and no instance is held.
    Delay(u32),
}

impl Action {
    /// `Action::Respond` with a status and a body, e.g.
    /// `Action::respond(403, "forbidden")`.
    pub fn respond(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Action::Respond(LocalResponse::new(status).body(body))
    }

    /// `Action::Delay` from a [`Duration`] (saturating at `u32::MAX` ms).
    pub fn delay(duration: Duration) -> Self {
        Action::Delay(u32::try_from(duration.as_millis()).unwrap_or(u32::MAX))
    }
}

/// A response made by the filter instead of the upstream's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalResponse {
    /// Status code.
    pub status: u16,
    /// Header fields, in order.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl LocalResponse {
    /// An empty response with this status.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Add a header field.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Set the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
}

/// How the proxy hands a body to a body hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyMode {
    /// Each chunk as it arrives, `end_of_stream` on the last call. The proxy
    /// drops `content-length` (the filter may change the length).
    #[default]
    Stream,
    /// The whole body in one call, buffered by the proxy up to this many
    /// bytes (also capped by the filter's `limits.max_buffered_body`). A
    /// larger body gets 413 (request) or 502 (response). The proxy sets
    /// `content-length` to the final length.
    Buffer(u32),
}

/// A set of phases (the hooks a filter implements).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Phases(u8);

impl Phases {
    /// No phase.
    pub const NONE: Phases = Phases(0);
    /// [`Filter::on_request_headers`].
    pub const REQUEST_HEADERS: Phases = Phases(1);
    /// [`Filter::on_request_body`].
    pub const REQUEST_BODY: Phases = Phases(1 << 1);
    /// [`Filter::on_response_headers`].
    pub const RESPONSE_HEADERS: Phases = Phases(1 << 2);
    /// [`Filter::on_response_body`].
    pub const RESPONSE_BODY: Phases = Phases(1 << 3);
    /// [`Filter::on_done`].
    pub const DONE: Phases = Phases(1 << 4);
    /// Every phase.
    pub const ALL: Phases = Phases(0b1_1111);

    const NAMES: [(Phases, &'static str); 5] = [
        (Phases::REQUEST_HEADERS, "request_headers"),
        (Phases::REQUEST_BODY, "request_body"),
        (Phases::RESPONSE_HEADERS, "response_headers"),
        (Phases::RESPONSE_BODY, "response_body"),
        (Phases::DONE, "done"),
    ];

    /// Both sets together (usable in `const` context).
    pub const fn union(self, other: Phases) -> Phases {
        Phases(self.0 | other.0)
    }

    /// Whether every phase in `other` is in `self`.
    pub const fn contains(self, other: Phases) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The bits, in the order of the WIT `phases` flags.
    pub const fn bits(self) -> u8 {
        self.0
    }
}

impl BitOr for Phases {
    type Output = Phases;
    fn bitor(self, rhs: Phases) -> Phases {
        self.union(rhs)
    }
}

impl fmt::Debug for Phases {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = Self::NAMES
            .iter()
            .filter(|(p, _)| self.contains(*p))
            .map(|(_, n)| n);
        f.debug_set().entries(names).finish()
    }
}

/// What a configured filter tells the proxy (the result of `configure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilterInfo {
    /// The hooks the filter implements.
    pub phases: Phases,
    /// How the request body is delivered.
    pub request_body: BodyMode,
    /// How the response body is delivered.
    pub response_body: BodyMode,
}

/// The end of an exchange, given to [`Filter::on_done`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    /// Status sent to the client.
    pub status: u16,
    /// Time from the request's arrival to the end of the response, in microseconds.
    pub duration_us: u64,
    /// Request body bytes received from the client.
    pub request_bytes: u64,
    /// Response body bytes sent to the client.
    pub response_bytes: u64,
    /// The cluster the request went to, if it went upstream.
    pub upstream_cluster: Option<String>,
    /// True when a filter or the route answered without the upstream.
    pub local_response: bool,
}

impl Summary {
    /// [`Summary::duration_us`] as a [`Duration`].
    pub fn duration(&self) -> Duration {
        Duration::from_micros(self.duration_us)
    }
}
