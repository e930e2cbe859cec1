//! Test filter `trap`: fails in various ways depending on the request path
//! (`prefix` defaults to `/trap`); any other path passes through untouched
//! and gets `x-trap: passed` on the response.
//!
//! | path                            | what happens                                     |
//! |---------------------------------|--------------------------------------------------|
//! | `{prefix}/panic`                | panics in `on_request_headers` (a trap)          |
//! | `{prefix}/unreachable`          | executes `unreachable` (a trap)                  |
//! | `{prefix}/error`                | returns an error (a filter failure, no trap)     |
//! | `{prefix}/response-panic`       | panics in `on_response_headers`                  |
//! | `{prefix}/body-panic`           | panics in `on_request_body` (first call)         |
//! | `{prefix}/response-body-panic`  | panics in `on_response_body` at end of stream    |
//! | `{prefix}/done-panic`           | panics in `on_done`                              |
//!
//! Both bodies are streamed unless `request_buffer` / `response_buffer` give
//! a buffer size. Streamed, `response-body-panic` lets every chunk before the
//! end through, so the client has the head and some data when it fails:
//!
//! ```json
//! { "prefix": "/trap", "request_buffer": 65536, "response_buffer": 65536 }
//! ```

use weir_sdk::prelude::*;

fn default_prefix() -> String {
    "/trap".to_string()
}

/// Configuration.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Paths under this prefix misbehave.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Buffer the request body up to this many bytes; absent: stream it.
    #[serde(default)]
    pub request_buffer: Option<u32>,
    /// Buffer the response body up to this many bytes; absent: stream it.
    #[serde(default)]
    pub response_buffer: Option<u32>,
}

/// The filter.
pub struct Trap {
    cfg: Config,
}

impl Trap {
    fn is(&self, req: &Request, what: &str) -> bool {
        req.path().strip_prefix(self.cfg.prefix.as_str()) == Some(what)
    }
}

/// Trap the way a wasm `unreachable` instruction does (natively: abort the
/// test thread with a panic, since there is no trap to catch).
fn unreachable_instruction() -> ! {
    #[cfg(target_arch = "wasm32")]
    {
        core::arch::wasm32::unreachable()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        panic!("unreachable instruction")
    }
}

fn mode(buffer: Option<u32>) -> BodyMode {
    buffer.map_or(BodyMode::Stream, BodyMode::Buffer)
}

#[weir_sdk::filter]
impl Filter for Trap {
    type Config = Config;

    fn new(cfg: Config) -> Result<Self> {
        Ok(Trap { cfg })
    }

    fn request_body_mode(&self) -> BodyMode {
        mode(self.cfg.request_buffer)
    }

    fn response_body_mode(&self) -> BodyMode {
        mode(self.cfg.response_buffer)
    }

    fn on_request_headers(&self, req: &mut Request) -> Result<Action> {
        if self.is(req, "/panic") {
            panic!("trap filter: panic requested by {}", req.path());
        }
        if self.is(req, "/unreachable") {
            unreachable_instruction();
        }
        if self.is(req, "/error") {
            return Err(Error::msg("trap filter: error requested"));
        }
        Ok(Action::Continue)
    }

    fn on_request_body(
        &self,
        req: &mut Request,
        _body: &mut Body,
        _end_of_stream: bool,
    ) -> Result<Action> {
        if self.is(req, "/body-panic") {
            panic!("trap filter: panic in the request body");
        }
        Ok(Action::Continue)
    }

    fn on_response_headers(&self, req: &mut Request, resp: &mut Response) -> Result<Action> {
        if self.is(req, "/response-panic") {
            panic!("trap filter: panic in the response headers");
        }
        resp.set_header("x-trap", "passed")?;
        Ok(Action::Continue)
    }

    fn on_response_body(
        &self,
        req: &mut Request,
        _resp: &mut Response,
        _body: &mut Body,
        end_of_stream: bool,
    ) -> Result<Action> {
        if end_of_stream && self.is(req, "/response-body-panic") {
            panic!("trap filter: panic at the end of the response body");
        }
        Ok(Action::Continue)
    }

    fn on_done(&self, req: &Request, _summary: &Summary) {
        if self.is(req, "/done-panic") {
            panic!("trap filter: panic in done");
        }
    }
}

#[cfg(test)]
mod tests {
    use weir_sdk::testing::{self, json};

    use super::*;

    #[test]
    fn passes_other_paths() {
        let f = testing::load::<Trap>(json!({})).unwrap();
        let mut req = testing::Request::get("/trap/nothing");
        let mut resp = testing::Response::new(200);
        assert_eq!(f.request_headers(&mut req).unwrap(), Action::Continue);
        f.response_headers(&mut req, &mut resp).unwrap();
        assert_eq!(resp.header("x-trap").as_deref(), Some("passed"));
    }

    #[test]
    fn fails_with_an_error_on_request() {
        let f = testing::load::<Trap>(json!({})).unwrap();
        let err = f
            .request_headers(&mut testing::Request::get("/trap/error"))
            .unwrap_err();
        assert!(err.to_string().contains("error requested"));
    }

    #[test]
    fn body_modes_come_from_the_config() {
        let streamed = testing::load::<Trap>(json!({})).unwrap();
        let buffered =
            testing::load::<Trap>(json!({ "request_buffer": 10, "response_buffer": 20 })).unwrap();
        assert_eq!(streamed.info().request_body, BodyMode::Stream);
        assert_eq!(streamed.info().response_body, BodyMode::Stream);
        assert_eq!(buffered.info().request_body, BodyMode::Buffer(10));
        assert_eq!(buffered.info().response_body, BodyMode::Buffer(20));
    }

    #[test]
    fn a_streamed_response_body_passes_until_its_end() {
        let f = testing::load::<Trap>(json!({})).unwrap();
        let mut req = testing::Request::get("/trap/response-body-panic");
        let mut resp = testing::Response::new(200);
        let mut body = testing::Body::new(b"first".to_vec());
        let action = f.response_body(&mut req, &mut resp, &mut body, false);
        assert_eq!(action.unwrap(), Action::Continue);
    }

    #[test]
    #[should_panic(expected = "end of the response body")]
    fn panics_at_the_end_of_the_response_body() {
        let f = testing::load::<Trap>(json!({})).unwrap();
        let mut req = testing::Request::get("/trap/response-body-panic");
        let mut resp = testing::Response::new(200);
        let _ = f.run_response_body(&mut req, &mut resp, &["first", "last"]);
    }

    #[test]
    #[should_panic(expected = "panic requested")]
    fn panics_on_request() {
        let f = testing::load::<Trap>(json!({})).unwrap();
        let _ = f.request_headers(&mut testing::Request::get("/trap/panic"));
    }
}
