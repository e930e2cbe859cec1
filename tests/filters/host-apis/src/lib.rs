//! Test filter `host-apis`: calls every host service so host tests can check
//! the imports end to end.
//!
//! - request phase: logs one message per level (`"host-apis: <level> <path>"`),
//!   adds 1 to counter `host_apis_requests_total{method}`, sets gauge
//!   `host_apis_last_path_len`, records histogram `host_apis_header_count`;
//!   exercises KV under `{key_prefix}` (set, get, compare-and-swap, delete).
//! - response phase: headers `x-now-ms`, `x-monotonic-ns`, `x-random`,
//!   `x-kv: <get-value>,<cas-ok>,<cas-conflict>,<deleted>,<gone>` (expect
//!   `v1,true,true,true,true`) and `x-log-debug-enabled`.
//! - done: adds 1 to `host_apis_done_total{status}` and records
//!   `host_apis_duration_us`.

use weir_sdk::log::{self, Level};
use weir_sdk::prelude::*;
use weir_sdk::{kv, metrics, random, time};

fn default_key_prefix() -> String {
    "host-apis:".to_string()
}

/// Configuration.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Prefix of the KV keys the filter uses.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
}

/// The filter.
pub struct HostApis {
    cfg: Config,
}

const KV_RESULT: &str = "host-apis.kv";

impl HostApis {
    /// Set, read back, compare-and-swap (one success, one conflict), delete.
    fn exercise_kv(&self, req: &Request) -> String {
        let key = format!("{}{}", self.cfg.key_prefix, req.id());
        let version = kv::set(&key, "v1", None);
        let value = kv::get(&key)
            .and_then(|e| e.text().map(str::to_string))
            .unwrap_or_default();
        let swapped = kv::compare_and_swap(&key, Some(version), "v2", None).is_some();
        let conflict = kv::compare_and_swap(&key, Some(version), "v3", None).is_none();
        let deleted = kv::delete(&key);
        let gone = kv::get(&key).is_none();
        format!("{value},{swapped},{conflict},{deleted},{gone}")
    }
}

#[weir_sdk::filter]
impl Filter for HostApis {
    type Config = Config;

    fn new(cfg: Config) -> Result<Self> {
        Ok(HostApis { cfg })
    }

    fn on_request_headers(&self, req: &mut Request) -> Result<Action> {
        let path = req.path();
        for level in [
            Level::Trace,
            Level::Debug,
            Level::Info,
            Level::Warn,
            Level::Error,
        ] {
            log::log(
                level,
                &format!("host-apis: {level:?} {path}").to_lowercase(),
            );
        }
        weir_sdk::info!("host-apis: request {} {}", req.method(), path);
        metrics::counter_inc("host_apis_requests_total", &[("method", &req.method())]);
        metrics::gauge_set("host_apis_last_path_len", &[], path.len() as i64);
        metrics::histogram_record("host_apis_header_count", &[], req.headers().len() as f64);
        let kv_result = self.exercise_kv(req);
        req.set_property(KV_RESULT, &kv_result);
        Ok(Action::Continue)
    }

    fn on_response_headers(&self, req: &mut Request, resp: &mut Response) -> Result<Action> {
        resp.set_header("x-now-ms", &time::unix_ms().to_string())?;
        resp.set_header("x-monotonic-ns", &time::monotonic().as_nanos().to_string())?;
        resp.set_header("x-random", &random::u64().to_string())?;
        resp.set_header("x-kv", &req.property(KV_RESULT).unwrap_or_default())?;
        resp.set_header(
            "x-log-debug-enabled",
            &log::enabled(Level::Debug).to_string(),
        )?;
        Ok(Action::Continue)
    }

    fn on_done(&self, _req: &Request, summary: &Summary) {
        metrics::counter_inc(
            "host_apis_done_total",
            &[("status", &summary.status.to_string())],
        );
        metrics::histogram_record("host_apis_duration_us", &[], summary.duration_us as f64);
    }
}

#[cfg(test)]
mod tests {
    use weir_sdk::log::Level;
    use weir_sdk::testing::{self, json};

    use super::*;

    #[test]
    fn uses_every_service() {
        testing::set_time(1_700_000_000_000);
        testing::seed_random(7);
        testing::set_log_level(Level::Info);
        let f = testing::load::<HostApis>(json!({})).unwrap();
        let mut req = testing::Request::get("/abc").with_header("a", "1");
        let mut resp = testing::Response::new(200);

        f.request_headers(&mut req).unwrap();
        f.response_headers(&mut req, &mut resp).unwrap();
        f.done(
            &req,
            &Summary {
                status: 200,
                duration_us: 1500,
                ..Summary::default()
            },
        );

        assert_eq!(
            resp.header("x-kv").as_deref(),
            Some("v1,true,true,true,true")
        );
        assert_eq!(resp.header("x-now-ms").as_deref(), Some("1700000000000"));
        assert_eq!(resp.header("x-log-debug-enabled").as_deref(), Some("false"));
        testing::seed_random(7);
        assert_eq!(resp.header("x-random"), Some(random::u64().to_string()));

        let logged: Vec<String> = testing::logs().into_iter().map(|r| r.message).collect();
        assert_eq!(
            logged,
            [
                "host-apis: info /abc",
                "host-apis: warn /abc",
                "host-apis: error /abc",
                "host-apis: request GET /abc"
            ]
        );
        let m = testing::metrics();
        assert_eq!(
            m.counter("host_apis_requests_total", &[("method", "GET")]),
            1
        );
        assert_eq!(m.gauge("host_apis_last_path_len", &[]), Some(4));
        assert_eq!(m.histogram("host_apis_header_count", &[]), vec![1.0]);
        assert_eq!(m.counter("host_apis_done_total", &[("status", "200")]), 1);
        assert_eq!(m.histogram("host_apis_duration_us", &[]), vec![1500.0]);
        assert!(testing::kv().is_empty());
    }
}
