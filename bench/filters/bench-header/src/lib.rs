//! The Weir side of the benchmark's header work: every request gets
//! `x-bench-req-<id>: 1` on its way upstream and every response
//! `x-bench-resp-<id>: 1` on its way back — the same work as the Envoy
//! `proxy-wasm-header` filter, so the two proxies are compared like for like.
//!
//! ```yaml
//! filters:
//!   - name: bench-header-1
//!     module: bench_header.wasm
//!     config: { id: "1" }
//! ```
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p bench-header`
//! (from `bench/`) → `target/wasm32-wasip2/release/bench_header.wasm`.

use weir_sdk::prelude::*;

/// The filter's configuration.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Suffix of the two header names: letters, digits, `-` or `_`.
    pub id: String,
}

/// The configured filter: header names are built once, at configure time.
pub struct BenchHeader {
    request: String,
    response: String,
}

#[weir_sdk::filter]
impl Filter for BenchHeader {
    type Config = Config;

    fn new(config: Config) -> Result<Self> {
        let valid = !config.id.is_empty()
            && config
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(Error::config(format!(
                "`id` must be non-empty letters, digits, '-' or '_', got {:?}",
                config.id
            )));
        }
        Ok(BenchHeader {
            request: format!("x-bench-req-{}", config.id.to_ascii_lowercase()),
            response: format!("x-bench-resp-{}", config.id.to_ascii_lowercase()),
        })
    }

    fn on_request_headers(&self, req: &mut Request) -> Result<Action> {
        req.add_header(&self.request, "1")?;
        Ok(Action::Continue)
    }

    fn on_response_headers(&self, _req: &mut Request, resp: &mut Response) -> Result<Action> {
        resp.add_header(&self.response, "1")?;
        Ok(Action::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_sdk::Phases;
    use weir_sdk::testing::{self, json};

    #[test]
    fn adds_one_request_and_one_response_header() {
        let filter = testing::load::<BenchHeader>(json!({ "id": "3" })).unwrap();
        let mut req = testing::Request::get("/");
        assert_eq!(filter.request_headers(&mut req).unwrap(), Action::Continue);
        assert_eq!(req.header("x-bench-req-3").as_deref(), Some("1"));

        let mut resp = testing::Response::new(200);
        assert_eq!(
            filter.response_headers(&mut req, &mut resp).unwrap(),
            Action::Continue
        );
        assert_eq!(resp.header("x-bench-resp-3").as_deref(), Some("1"));
        assert_eq!(resp.headers().len(), 1, "only the one header is added");
    }

    #[test]
    fn asks_only_for_the_header_phases() {
        let filter = testing::load::<BenchHeader>(json!({ "id": "1" })).unwrap();
        assert_eq!(
            filter.info().phases,
            Phases::REQUEST_HEADERS | Phases::RESPONSE_HEADERS
        );
    }

    #[test]
    fn rejects_an_id_that_is_not_a_header_name_part() {
        let err = testing::load::<BenchHeader>(json!({ "id": "a b" }))
            .err()
            .unwrap();
        assert!(err.to_string().contains("`id`"), "{err}");
        assert!(testing::load::<BenchHeader>(json!({})).is_err());
    }
}
