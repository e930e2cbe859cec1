//! Test filter `body-rewrite`: upper-cases the request body (streamed, chunk
//! by chunk, unless `request_buffer` is set) and replaces text in the
//! response body (buffered whole, unless `response_buffer` is null).
//!
//! ```json
//! { "uppercase_request": true, "find": "upstream", "replace": "proxy",
//!   "append": "\n-- rewritten", "response_buffer": 65536 }
//! ```
//! The response also gets `x-request-body-calls`: how many times the request
//! body hook ran (streaming vs buffering is visible to tests).

use weir_sdk::prelude::*;

fn default_response_buffer() -> Option<u32> {
    Some(1024 * 1024)
}

/// Configuration.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Upper-case (ASCII) the request body.
    #[serde(default)]
    pub uppercase_request: bool,
    /// Buffer the request body up to this many bytes; absent: stream it.
    #[serde(default)]
    pub request_buffer: Option<u32>,
    /// Text to find in the response body.
    #[serde(default)]
    pub find: Option<String>,
    /// What replaces it.
    #[serde(default)]
    pub replace: String,
    /// Text appended at the end of the response body.
    #[serde(default)]
    pub append: Option<String>,
    /// Buffer the response body up to this many bytes (default 1 MiB); null: stream it.
    #[serde(default = "default_response_buffer")]
    pub response_buffer: Option<u32>,
}

/// The filter.
pub struct BodyRewrite {
    cfg: Config,
}

const CALLS: &str = "body-rewrite.request-body-calls";

/// Replace every `find` in `data` with `replace`.
fn replace_all(data: &[u8], find: &[u8], replace: &[u8]) -> Vec<u8> {
    if find.is_empty() {
        return data.to_vec();
    }
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(find) {
            out.extend_from_slice(replace);
            i += find.len();
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}

fn mode(buffer: Option<u32>) -> BodyMode {
    buffer.map_or(BodyMode::Stream, BodyMode::Buffer)
}

#[weir_sdk::filter]
impl Filter for BodyRewrite {
    type Config = Config;

    fn new(cfg: Config) -> Result<Self> {
        if cfg.find.as_deref() == Some("") {
            return Err(Error::config("`find` must not be empty"));
        }
        Ok(BodyRewrite { cfg })
    }

    fn request_body_mode(&self) -> BodyMode {
        mode(self.cfg.request_buffer)
    }

    fn response_body_mode(&self) -> BodyMode {
        mode(self.cfg.response_buffer)
    }

    fn on_request_body(
        &self,
        req: &mut Request,
        body: &mut Body,
        _end_of_stream: bool,
    ) -> Result<Action> {
        let calls = req
            .property(CALLS)
            .and_then(|c| c.parse::<u64>().ok())
            .unwrap_or(0);
        req.set_property(CALLS, &(calls + 1).to_string());
        if self.cfg.uppercase_request {
            body.replace(body.bytes().to_ascii_uppercase());
        }
        Ok(Action::Continue)
    }

    fn on_response_headers(&self, req: &mut Request, resp: &mut Response) -> Result<Action> {
        let calls = req.property(CALLS).unwrap_or_else(|| "0".to_string());
        resp.set_header("x-request-body-calls", &calls)?;
        Ok(Action::Continue)
    }

    fn on_response_body(
        &self,
        _req: &mut Request,
        _resp: &mut Response,
        body: &mut Body,
        end_of_stream: bool,
    ) -> Result<Action> {
        let mut data = body.bytes();
        if let Some(find) = &self.cfg.find {
            data = replace_all(&data, find.as_bytes(), self.cfg.replace.as_bytes());
        }
        if let (Some(tail), true) = (&self.cfg.append, end_of_stream) {
            data.extend_from_slice(tail.as_bytes());
        }
        body.replace(data);
        Ok(Action::Continue)
    }
}

#[cfg(test)]
mod tests {
    use weir_sdk::testing::{self, json};

    use super::*;

    #[test]
    fn upper_cases_a_streamed_request_body_chunk_by_chunk() {
        let f = testing::load::<BodyRewrite>(json!({ "uppercase_request": true })).unwrap();
        let mut req = testing::Request::post("/");

        let run = f.run_request_body(&mut req, &["hello ", "world"]).unwrap();

        assert_eq!(run.text(), "HELLO WORLD");
        assert_eq!(run.actions.len(), 2);
        let mut resp = testing::Response::new(200);
        f.response_headers(&mut req, &mut resp).unwrap();
        assert_eq!(resp.header("x-request-body-calls").as_deref(), Some("2"));
    }

    #[test]
    fn buffers_the_request_body_when_asked() {
        let f = testing::load::<BodyRewrite>(
            json!({ "uppercase_request": true, "request_buffer": 100 }),
        )
        .unwrap();
        let run = f
            .run_request_body(&mut testing::Request::post("/"), &["a", "b", "c"])
            .unwrap();
        assert_eq!((run.text().as_str(), run.actions.len()), ("ABC", 1));
    }

    #[test]
    fn replaces_text_in_the_whole_response_body() {
        let f = testing::load::<BodyRewrite>(
            json!({ "find": "upstream", "replace": "proxy", "append": "!" }),
        )
        .unwrap();
        assert_eq!(f.info().response_body, BodyMode::Buffer(1024 * 1024));
        let mut req = testing::Request::get("/");
        let mut resp = testing::Response::new(200);

        // Split mid-word: buffering makes the match work anyway.
        let run = f
            .run_response_body(&mut req, &mut resp, &["hello upst", "ream, bye upstream"])
            .unwrap();

        assert_eq!(run.text(), "hello proxy, bye proxy!");
    }

    #[test]
    fn a_too_large_buffered_body_is_refused() {
        let f = testing::load::<BodyRewrite>(json!({ "find": "x", "response_buffer": 4 })).unwrap();
        let mut req = testing::Request::get("/");
        let err = f
            .run_response_body(&mut req, &mut testing::Response::new(200), &["12345"])
            .unwrap_err();
        assert!(err.to_string().contains("exceeds"), "{err}");
    }

    #[test]
    fn appends_only_at_the_end_of_a_stream() {
        let f = testing::load::<BodyRewrite>(json!({ "append": "<end>", "response_buffer": null }))
            .unwrap();
        let mut req = testing::Request::get("/");
        let run = f
            .run_response_body(&mut req, &mut testing::Response::new(200), &["a", "b"])
            .unwrap();
        assert_eq!(run.text(), "ab<end>");
    }
}
