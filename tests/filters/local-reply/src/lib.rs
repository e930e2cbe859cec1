//! Test filter `local-reply`: answers every request itself; the upstream is
//! never called. With `"on": "response_headers"` it replaces the upstream's
//! response instead.
//!
//! ```json
//! { "status": 418, "body": "short and stout", "headers": {"x-local": "yes"} }
//! ```

use std::collections::BTreeMap;

use weir_sdk::prelude::*;

/// Which hook answers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum On {
    /// Before the upstream (default).
    #[default]
    RequestHeaders,
    /// After the upstream answered, replacing its response.
    ResponseHeaders,
}

/// Configuration.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Status of the local response.
    pub status: u16,
    /// Its body.
    #[serde(default)]
    pub body: String,
    /// Its headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Which hook answers.
    #[serde(default)]
    pub on: On,
}

/// The filter.
pub struct LocalReply {
    cfg: Config,
}

impl LocalReply {
    fn reply(&self) -> Action {
        let mut r = LocalResponse::new(self.cfg.status).body(self.cfg.body.as_str());
        for (name, value) in &self.cfg.headers {
            r = r.header(name.as_str(), value.as_str());
        }
        Action::Respond(r)
    }
}

#[weir_sdk::filter]
impl Filter for LocalReply {
    type Config = Config;

    fn new(cfg: Config) -> Result<Self> {
        if !(100..=999).contains(&cfg.status) {
            return Err(Error::config(format!(
                "`status` {} is not an HTTP status",
                cfg.status
            )));
        }
        Ok(LocalReply { cfg })
    }

    fn on_request_headers(&self, _req: &mut Request) -> Result<Action> {
        Ok(match self.cfg.on {
            On::RequestHeaders => self.reply(),
            On::ResponseHeaders => Action::Continue,
        })
    }

    fn on_response_headers(&self, _req: &mut Request, _resp: &mut Response) -> Result<Action> {
        Ok(match self.cfg.on {
            On::ResponseHeaders => self.reply(),
            On::RequestHeaders => Action::Continue,
        })
    }
}

#[cfg(test)]
mod tests {
    use weir_sdk::testing::{self, json};

    use super::*;

    #[test]
    fn answers_from_config() {
        let f = testing::load::<LocalReply>(
            json!({ "status": 418, "body": "teapot", "headers": {"x-local": "yes"} }),
        )
        .unwrap();

        let action = f.request_headers(&mut testing::Request::get("/")).unwrap();

        let expected = LocalResponse::new(418)
            .header("x-local", "yes")
            .body("teapot");
        assert_eq!(action, Action::Respond(expected));
    }

    #[test]
    fn can_answer_in_the_response_phase_instead() {
        let f = testing::load::<LocalReply>(json!({ "status": 503, "on": "response_headers" }))
            .unwrap();
        let mut req = testing::Request::get("/");

        assert_eq!(f.request_headers(&mut req).unwrap(), Action::Continue);
        let action = f
            .response_headers(&mut req, &mut testing::Response::new(200))
            .unwrap();
        assert_eq!(action, Action::Respond(LocalResponse::new(503)));
    }

    #[test]
    fn rejects_a_bad_status() {
        let err = testing::load::<LocalReply>(json!({ "status": 42 }))
            .err()
            .unwrap();
        assert!(err.to_string().contains("`status` 42"), "{err}");
    }
}
