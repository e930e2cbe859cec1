//! Test filter `callout`: calls a cluster in the request phase. In `header`
//! mode the answer goes into response headers (`x-callout-status`,
//! `x-callout-body`, or `x-callout-error` when the call failed); in
//! `respond` mode the filter answers the client with the callout's response
//! (a failed call is then a filter error).
//!
//! ```json
//! { "cluster": "auth", "path": "/check", "mode": "header",
//!   "forward_headers": ["authorization"], "timeout_ms": 1000 }
//! ```

use std::time::Duration;

use weir_sdk::http::{self, OutgoingRequest};
use weir_sdk::prelude::*;

/// What to do with the answer.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Report it in response headers.
    #[default]
    Header,
    /// Answer the client with it.
    Respond,
}

fn default_path() -> String {
    "/".to_string()
}
fn default_method() -> String {
    "GET".to_string()
}
fn default_timeout_ms() -> u64 {
    1000
}

/// Configuration.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The cluster to call.
    pub cluster: String,
    /// Path and query to request.
    #[serde(default = "default_path")]
    pub path: String,
    /// Method.
    #[serde(default = "default_method")]
    pub method: String,
    /// What to do with the answer.
    #[serde(default)]
    pub mode: Mode,
    /// Request headers copied to the callout.
    #[serde(default)]
    pub forward_headers: Vec<String>,
    /// Callout timeout.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

/// The filter.
pub struct Callout {
    cfg: Config,
}

const STATUS: &str = "callout.status";
const BODY: &str = "callout.body";
const ERROR: &str = "callout.error";

/// Make arbitrary text fit in a header value: no control characters, short.
fn header_safe(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(256)
        .collect()
}

#[weir_sdk::filter]
impl Filter for Callout {
    type Config = Config;

    fn new(cfg: Config) -> Result<Self> {
        Ok(Callout { cfg })
    }

    fn on_request_headers(&self, req: &mut Request) -> Result<Action> {
        let mut out = OutgoingRequest::new(self.cfg.method.as_str(), self.cfg.path.as_str())
            .timeout(Duration::from_millis(self.cfg.timeout_ms));
        for name in &self.cfg.forward_headers {
            for value in req.header_all(name) {
                out = out.header(name.as_str(), value);
            }
        }
        let answer = http::call(&self.cfg.cluster, out);
        match (self.cfg.mode, answer) {
            (Mode::Respond, answer) => {
                let answer = answer?;
                let mut local = LocalResponse::new(answer.status).body(answer.body);
                for (name, value) in answer.headers {
                    if name == "content-type" || name.starts_with("x-") {
                        local = local.header(name, value);
                    }
                }
                Ok(Action::Respond(local))
            }
            (Mode::Header, Ok(answer)) => {
                req.set_property(STATUS, &answer.status.to_string());
                req.set_property(BODY, &header_safe(&String::from_utf8_lossy(&answer.body)));
                Ok(Action::Continue)
            }
            (Mode::Header, Err(e)) => {
                req.set_property(ERROR, &header_safe(&e.to_string()));
                Ok(Action::Continue)
            }
        }
    }

    fn on_response_headers(&self, req: &mut Request, resp: &mut Response) -> Result<Action> {
        for (key, header) in [
            (STATUS, "x-callout-status"),
            (BODY, "x-callout-body"),
            (ERROR, "x-callout-error"),
        ] {
            if let Some(v) = req.property(key) {
                resp.set_header(header, &v)?;
            }
        }
        Ok(Action::Continue)
    }
}

#[cfg(test)]
mod tests {
    use weir_sdk::http::{CalloutError, IncomingResponse};
    use weir_sdk::testing::{self, json};

    use super::*;

    #[test]
    fn reports_the_answer_in_headers() {
        testing::mock_callout("auth", |req| {
            assert_eq!(
                req.headers,
                vec![("authorization".to_string(), "Bearer t".to_string())]
            );
            Ok(IncomingResponse::new(200).with_body("ok\nfine"))
        });
        let f = testing::load::<Callout>(
            json!({ "cluster": "auth", "path": "/check", "forward_headers": ["authorization"] }),
        )
        .unwrap();
        let mut req = testing::Request::get("/").with_header("authorization", "Bearer t");
        let mut resp = testing::Response::new(200);

        assert_eq!(f.request_headers(&mut req).unwrap(), Action::Continue);
        f.response_headers(&mut req, &mut resp).unwrap();

        assert_eq!(resp.header("x-callout-status").as_deref(), Some("200"));
        assert_eq!(resp.header("x-callout-body").as_deref(), Some("ok fine"));
        let calls = testing::callouts();
        assert_eq!(
            (calls[0].0.as_str(), calls[0].1.path.as_str()),
            ("auth", "/check")
        );
    }

    #[test]
    fn reports_a_failed_call() {
        testing::mock_callout("auth", |_| Err(CalloutError::Timeout));
        let f = testing::load::<Callout>(json!({ "cluster": "auth" })).unwrap();
        let mut req = testing::Request::get("/");
        let mut resp = testing::Response::new(200);

        f.request_headers(&mut req).unwrap();
        f.response_headers(&mut req, &mut resp).unwrap();

        assert_eq!(
            resp.header("x-callout-error").as_deref(),
            Some("callout failed: timed out")
        );
    }

    #[test]
    fn answers_with_the_callout_response() {
        testing::mock_callout("auth", |_| {
            Ok(IncomingResponse::new(401)
                .with_header("x-reason", "expired")
                .with_header("date", "x")
                .with_body("no"))
        });
        let f = testing::load::<Callout>(json!({ "cluster": "auth", "mode": "respond" })).unwrap();

        let action = f.request_headers(&mut testing::Request::get("/")).unwrap();

        assert_eq!(
            action,
            Action::Respond(
                LocalResponse::new(401)
                    .header("x-reason", "expired")
                    .body("no")
            )
        );
    }

    #[test]
    fn in_respond_mode_a_failed_call_is_a_filter_error() {
        let f =
            testing::load::<Callout>(json!({ "cluster": "missing", "mode": "respond" })).unwrap();
        let err = f
            .request_headers(&mut testing::Request::get("/"))
            .unwrap_err();
        assert_eq!(
            err,
            Error::Callout(CalloutError::UnknownCluster("missing".to_string()))
        );
    }
}
