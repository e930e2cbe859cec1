//! Test filter `header-echo`: sets the request and response headers and the
//! properties named in its config, and echoes back (as response headers)
//! what it saw of the request, so host tests can check every getter.
//!
//! ```json
//! { "request_headers": {"x-a": "1"}, "response_headers": {"x-b": "2"},
//!   "set_properties": {"tenant": "t1"}, "echo_properties": ["tenant"],
//!   "echo_headers": ["x-a"], "echo_request": true,
//!   "stderr": "a line for the log", "sleep_ms": 5 }
//! ```
//! Response headers written: `x-echo-property-<key>`, `x-echo-header-<name>`
//! and, with `echo_request`, `x-echo-{id,method,path,query,authority,scheme,peer,identity,cluster}`.

use std::collections::BTreeMap;

use weir_sdk::prelude::*;

/// Configuration.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Set on the request (upstream sees them).
    #[serde(default)]
    pub request_headers: BTreeMap<String, String>,
    /// Set on the response.
    #[serde(default)]
    pub response_headers: BTreeMap<String, String>,
    /// Properties set in the request phase.
    #[serde(default)]
    pub set_properties: BTreeMap<String, String>,
    /// Properties echoed as `x-echo-property-<key>` in the response phase.
    #[serde(default)]
    pub echo_properties: Vec<String>,
    /// Request headers (as seen in the request phase) echoed as `x-echo-header-<name>`.
    #[serde(default)]
    pub echo_headers: Vec<String>,
    /// Echo the request's id, method, path, ... as `x-echo-*`.
    #[serde(default)]
    pub echo_request: bool,
    /// Written as a line to stderr (WASI) in the request phase.
    #[serde(default)]
    pub stderr: Option<String>,
    /// Sleep this long (a WASI clock wait) in the request phase.
    #[serde(default)]
    pub sleep_ms: Option<u64>,
}

/// The filter.
pub struct HeaderEcho {
    cfg: Config,
}

/// The property that carries the echoed request headers from the request
/// phase to the response phase.
fn seen_key(name: &str) -> String {
    format!("header-echo.seen.{name}")
}

#[weir_sdk::filter]
impl Filter for HeaderEcho {
    type Config = Config;

    fn new(cfg: Config) -> Result<Self> {
        Ok(HeaderEcho { cfg })
    }

    fn on_request_headers(&self, req: &mut Request) -> Result<Action> {
        if let Some(line) = &self.cfg.stderr {
            eprintln!("{line}");
        }
        if let Some(ms) = self.cfg.sleep_ms {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        for name in &self.cfg.echo_headers {
            if let Some(v) = req.header(name) {
                req.set_property(&seen_key(name), &v);
            }
        }
        for (name, value) in &self.cfg.request_headers {
            req.set_header(name, value)?;
        }
        for (key, value) in &self.cfg.set_properties {
            req.set_property(key, value);
        }
        Ok(Action::Continue)
    }

    fn on_response_headers(&self, req: &mut Request, resp: &mut Response) -> Result<Action> {
        for (name, value) in &self.cfg.response_headers {
            resp.set_header(name, value)?;
        }
        for key in &self.cfg.echo_properties {
            if let Some(v) = req.property(key) {
                resp.set_header(&format!("x-echo-property-{key}"), &v)?;
            }
        }
        for name in &self.cfg.echo_headers {
            if let Some(v) = req.property(&seen_key(name)) {
                resp.set_header(&format!("x-echo-header-{name}"), &v)?;
            }
        }
        if self.cfg.echo_request {
            let optional = |v: Option<String>| v.unwrap_or_else(|| "-".to_string());
            let echoes = [
                ("id", req.id()),
                ("method", req.method()),
                ("path", req.path()),
                ("query", optional(req.query())),
                ("authority", req.authority()),
                ("scheme", req.scheme()),
                ("peer", req.peer_address()),
                ("identity", optional(req.peer_identity())),
                ("cluster", optional(req.cluster())),
            ];
            for (what, value) in echoes {
                resp.set_header(&format!("x-echo-{what}"), &value)?;
            }
        }
        Ok(Action::Continue)
    }
}

#[cfg(test)]
mod tests {
    use weir_sdk::testing::{self, json};

    use super::*;

    #[test]
    fn sets_headers_and_properties_and_echoes_them() {
        let f = testing::load::<HeaderEcho>(json!({
            "request_headers": {"x-a": "1"},
            "response_headers": {"x-b": "2"},
            "set_properties": {"tenant": "t1"},
            "echo_properties": ["tenant", "absent"],
            "echo_headers": ["user-agent"],
        }))
        .unwrap();
        let mut req = testing::Request::get("/").with_header("user-agent", "curl");
        let mut resp = testing::Response::new(200);

        f.request_headers(&mut req).unwrap();
        f.response_headers(&mut req, &mut resp).unwrap();

        assert_eq!(req.header("x-a").as_deref(), Some("1"));
        assert_eq!(resp.header("x-b").as_deref(), Some("2"));
        assert_eq!(resp.header("x-echo-property-tenant").as_deref(), Some("t1"));
        assert_eq!(resp.header("x-echo-property-absent"), None);
        assert_eq!(
            resp.header("x-echo-header-user-agent").as_deref(),
            Some("curl")
        );
    }

    #[test]
    fn echoes_the_request() {
        let f = testing::load::<HeaderEcho>(json!({ "echo_request": true })).unwrap();
        let mut req = testing::Request::post("/p?q=1")
            .with_id("abc")
            .with_cluster("backend");
        let mut resp = testing::Response::new(200);

        f.response_headers(&mut req, &mut resp).unwrap();

        assert_eq!(resp.header("x-echo-id").as_deref(), Some("abc"));
        assert_eq!(resp.header("x-echo-method").as_deref(), Some("POST"));
        assert_eq!(resp.header("x-echo-path").as_deref(), Some("/p"));
        assert_eq!(resp.header("x-echo-query").as_deref(), Some("q=1"));
        assert_eq!(resp.header("x-echo-identity").as_deref(), Some("-"));
        assert_eq!(resp.header("x-echo-cluster").as_deref(), Some("backend"));
    }
}
