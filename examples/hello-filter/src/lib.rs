//! The example Weir filter, and the template to copy for a new one.
//!
//! It adds a header named in its configuration to every request (so the
//! upstream sees it) and, if configured, another one to every response.
//!
//! ```yaml
//! filters:
//!   - name: hello
//!     module: hello_filter.wasm
//!     config:
//!       header: x-hello
//!       value: world
//!       response_header: x-hello-filter   # optional
//! ```
//!
//! Build (in this workspace): `cargo build --profile filter --target wasm32-wasip2 -p hello-filter`
//! → `target/wasm32-wasip2/filter/hello_filter.wasm`.

use weir_sdk::prelude::*;

/// The filter's configuration, parsed from the `config:` block.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The request header to set.
    pub header: String,
    /// Its value.
    pub value: String,
    /// A response header to set to the same value, if any.
    #[serde(default)]
    pub response_header: Option<String>,
}

/// The filter: its configuration, checked once when the proxy loads it.
pub struct Hello {
    cfg: Config,
}

#[weir_sdk::filter]
impl Filter for Hello {
    type Config = Config;

    fn new(config: Config) -> Result<Self> {
        if config.header.is_empty() {
            return Err(Error::config("`header` must not be empty"));
        }
        Ok(Hello { cfg: config })
    }

    fn on_request_headers(&self, req: &mut Request) -> Result<Action> {
        req.set_header(&self.cfg.header, &self.cfg.value)?;
        Ok(Action::Continue)
    }

    fn on_response_headers(&self, _req: &mut Request, resp: &mut Response) -> Result<Action> {
        if let Some(name) = &self.cfg.response_header {
            resp.set_header(name, &self.cfg.value)?;
        }
        Ok(Action::Continue)
    }
}

#[cfg(test)]
mod tests {
    use weir_sdk::Phases;
    use weir_sdk::testing::{self, json};

    use super::*;

    #[test]
    fn adds_the_configured_request_header() {
        let f = testing::load::<Hello>(json!({ "header": "x-hello", "value": "world" })).unwrap();
        let mut req = testing::Request::get("/greet").with_header("accept", "*/*");

        assert_eq!(f.request_headers(&mut req).unwrap(), Action::Continue);

        assert_eq!(req.header("x-hello").as_deref(), Some("world"));
        assert_eq!(req.header("accept").as_deref(), Some("*/*"));
    }

    #[test]
    fn replaces_a_header_the_client_sent() {
        let f = testing::load::<Hello>(json!({ "header": "x-hello", "value": "world" })).unwrap();
        let mut req = testing::Request::get("/").with_header("x-hello", "spoofed");

        f.request_headers(&mut req).unwrap();

        assert_eq!(req.header_all("x-hello"), vec!["world".to_string()]);
    }

    #[test]
    fn sets_the_response_header_only_when_configured() {
        let plain = testing::load::<Hello>(json!({ "header": "x-hello", "value": "w" })).unwrap();
        let with_resp = testing::load::<Hello>(
            json!({ "header": "x-hello", "value": "w", "response_header": "x-hello-filter" }),
        )
        .unwrap();
        let mut req = testing::Request::get("/");

        let mut resp = testing::Response::new(200);
        plain.response_headers(&mut req, &mut resp).unwrap();
        assert_eq!(resp.header("x-hello-filter"), None);

        let mut resp = testing::Response::new(200);
        with_resp.response_headers(&mut req, &mut resp).unwrap();
        assert_eq!(resp.header("x-hello-filter").as_deref(), Some("w"));
    }

    #[test]
    fn asks_only_for_the_phases_it_implements() {
        let f = testing::load::<Hello>(json!({ "header": "x-hello", "value": "w" })).unwrap();
        assert_eq!(
            f.info().phases,
            Phases::REQUEST_HEADERS | Phases::RESPONSE_HEADERS
        );
    }

    #[test]
    fn rejects_a_config_without_header_naming_the_field() {
        let err = testing::load::<Hello>(json!({ "value": "w" }))
            .err()
            .unwrap();
        assert!(err.to_string().contains("missing field `header`"), "{err}");
    }

    #[test]
    fn rejects_an_empty_header_name() {
        let err = testing::load::<Hello>(json!({ "header": "", "value": "w" }))
            .err()
            .unwrap();
        assert_eq!(err, Error::config("`header` must not be empty"));
    }

    #[test]
    fn an_invalid_header_name_is_a_filter_error_not_a_panic() {
        let f = testing::load::<Hello>(json!({ "header": "bad header", "value": "w" })).unwrap();
        let err = f
            .request_headers(&mut testing::Request::get("/"))
            .unwrap_err();
        assert!(err.to_string().contains("set_header failed"), "{err}");
    }
}
