//! Test filter `bad-config`: strict about its configuration, so host tests
//! can check that a rejected configuration fails the load with a message
//! naming the field. Requires `greeting` (a string) and `limit` (> 0):
//!
//! - `{}` → "missing field `greeting`"
//! - `{"greeting": "hi", "limit": "x"}` → "`limit`: invalid type: string ..."
//! - `{"greeting": "hi", "limit": 0}` → "`limit` must be greater than 0"
//!
//! A valid configuration loads, and the filter sets `x-greeting` on requests.

use weir_sdk::prelude::*;

/// Configuration.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Required.
    pub greeting: String,
    /// Required, positive.
    pub limit: u32,
}

/// The filter.
pub struct BadConfig {
    greeting: String,
}

#[weir_sdk::filter]
impl Filter for BadConfig {
    type Config = Config;

    fn new(cfg: Config) -> Result<Self> {
        if cfg.limit == 0 {
            return Err(Error::config("`limit` must be greater than 0"));
        }
        Ok(BadConfig {
            greeting: cfg.greeting,
        })
    }

    fn on_request_headers(&self, req: &mut Request) -> Result<Action> {
        req.set_header("x-greeting", &self.greeting)?;
        Ok(Action::Continue)
    }
}

#[cfg(test)]
mod tests {
    use weir_sdk::testing::{self, json};

    use super::*;

    fn error(config: weir_sdk::serde_json::Value) -> String {
        testing::load::<BadConfig>(config)
            .err()
            .expect("config should be rejected")
            .to_string()
    }

    #[test]
    fn names_the_missing_field() {
        assert!(error(json!({ "limit": 1 })).contains("missing field `greeting`"));
    }

    #[test]
    fn names_the_field_of_the_wrong_type() {
        let e = error(json!({ "greeting": "hi", "limit": "x" }));
        assert!(
            e.starts_with("invalid configuration: `limit`: invalid type: string"),
            "{e}"
        );
    }

    #[test]
    fn names_an_unknown_field() {
        assert!(
            error(json!({ "greeting": "hi", "limit": 1, "limt": 2 }))
                .contains("unknown field `limt`")
        );
    }

    #[test]
    fn rejects_a_bad_value() {
        assert_eq!(
            error(json!({ "greeting": "hi", "limit": 0 })),
            "invalid configuration: `limit` must be greater than 0"
        );
    }

    #[test]
    fn rejects_malformed_json() {
        let e = testing::load_str::<BadConfig>("{\"greeting\": ")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("EOF"), "{e}");
    }

    #[test]
    fn a_valid_config_loads() {
        let f = testing::load::<BadConfig>(json!({ "greeting": "hi", "limit": 3 })).unwrap();
        let mut req = testing::Request::get("/");
        f.request_headers(&mut req).unwrap();
        assert_eq!(req.header("x-greeting").as_deref(), Some("hi"));
    }
}
