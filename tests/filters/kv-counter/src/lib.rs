//! Test filter `kv-counter`: increments a counter in the proxy's KV store on
//! every request and returns the new count in a response header. The KV
//! store is shared by all instances, so the count is exact across pooled
//! instances and concurrent requests.
//!
//! ```json
//! { "key": "requests", "header": "x-count", "ttl_ms": 60000 }
//! ```

use std::time::Duration;

use weir_sdk::kv;
use weir_sdk::prelude::*;

fn default_key() -> String {
    "kv-counter:requests".to_string()
}
fn default_header() -> String {
    "x-count".to_string()
}

/// Configuration.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The KV key of the counter.
    #[serde(default = "default_key")]
    pub key: String,
    /// The response header that carries the count.
    #[serde(default = "default_header")]
    pub header: String,
    /// Expire the counter this long after it is created.
    #[serde(default)]
    pub ttl_ms: Option<u64>,
}

/// The filter.
pub struct KvCounter {
    cfg: Config,
}

const COUNT: &str = "kv-counter.count";

#[weir_sdk::filter]
impl Filter for KvCounter {
    type Config = Config;

    fn new(cfg: Config) -> Result<Self> {
        Ok(KvCounter { cfg })
    }

    fn on_request_headers(&self, req: &mut Request) -> Result<Action> {
        let count = kv::increment(&self.cfg.key, 1, self.cfg.ttl_ms.map(Duration::from_millis));
        req.set_property(COUNT, &count.to_string());
        Ok(Action::Continue)
    }

    fn on_response_headers(&self, req: &mut Request, resp: &mut Response) -> Result<Action> {
        if let Some(count) = req.property(COUNT) {
            resp.set_header(&self.cfg.header, &count)?;
        }
        Ok(Action::Continue)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use weir_sdk::testing::{self, json};

    use super::*;

    fn exchange(f: &testing::Loaded<KvCounter>) -> Option<String> {
        let mut req = testing::Request::get("/");
        let mut resp = testing::Response::new(200);
        f.request_headers(&mut req).unwrap();
        f.response_headers(&mut req, &mut resp).unwrap();
        resp.header("x-count")
    }

    #[test]
    fn counts_requests() {
        let f = testing::load::<KvCounter>(json!({ "key": "hits" })).unwrap();
        assert_eq!(exchange(&f).as_deref(), Some("1"));
        assert_eq!(exchange(&f).as_deref(), Some("2"));
        assert_eq!(testing::kv()["hits"].value, b"2");
    }

    #[test]
    fn the_count_expires_with_its_ttl() {
        testing::set_time(1_000_000);
        let f = testing::load::<KvCounter>(json!({ "ttl_ms": 1000 })).unwrap();
        assert_eq!(exchange(&f).as_deref(), Some("1"));
        assert_eq!(exchange(&f).as_deref(), Some("2"));
        testing::advance_time(Duration::from_millis(1000));
        assert_eq!(exchange(&f).as_deref(), Some("1"));
    }
}
