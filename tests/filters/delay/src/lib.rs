//! Test filter `delay`: returns `Action::Delay(ms)` from
//! `on_request_headers` (or `on_response_headers` with `"phase": "response"`).
//! The response gets `x-delay-ms` (the configured delay) and
//! `x-delay-observed-ms`: the proxy's monotonic clock between the request
//! phase and the response phase, which is at least the delay when the proxy
//! honoured a request-phase delay.
//!
//! ```json
//! { "ms": 50, "phase": "request" }
//! ```

use weir_sdk::prelude::*;
use weir_sdk::time;

/// Where the delay happens.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// After `on_request_headers` (default).
    #[default]
    Request,
    /// After `on_response_headers`.
    Response,
}

/// Configuration.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The delay in milliseconds.
    pub ms: u32,
    /// The phase that delays.
    #[serde(default)]
    pub phase: Phase,
}

/// The filter.
pub struct Delay {
    cfg: Config,
}

const STARTED: &str = "delay.started-ns";

#[weir_sdk::filter]
impl Filter for Delay {
    type Config = Config;

    fn new(cfg: Config) -> Result<Self> {
        Ok(Delay { cfg })
    }

    fn on_request_headers(&self, req: &mut Request) -> Result<Action> {
        req.set_property(STARTED, &time::monotonic().as_nanos().to_string());
        Ok(match self.cfg.phase {
            Phase::Request => Action::Delay(self.cfg.ms),
            Phase::Response => Action::Continue,
        })
    }

    fn on_response_headers(&self, req: &mut Request, resp: &mut Response) -> Result<Action> {
        resp.set_header("x-delay-ms", &self.cfg.ms.to_string())?;
        if let Some(started) = req.property(STARTED).and_then(|s| s.parse::<u128>().ok()) {
            let observed_ms = time::monotonic().as_nanos().saturating_sub(started) / 1_000_000;
            resp.set_header("x-delay-observed-ms", &observed_ms.to_string())?;
        }
        Ok(match self.cfg.phase {
            Phase::Response => Action::Delay(self.cfg.ms),
            Phase::Request => Action::Continue,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use weir_sdk::testing::{self, json};

    use super::*;

    #[test]
    fn delays_the_request_phase() {
        testing::set_time(0);
        let f = testing::load::<Delay>(json!({ "ms": 250 })).unwrap();
        let mut req = testing::Request::get("/");
        let mut resp = testing::Response::new(200);

        assert_eq!(f.request_headers(&mut req).unwrap(), Action::Delay(250));
        testing::advance_time(Duration::from_millis(250));
        assert_eq!(
            f.response_headers(&mut req, &mut resp).unwrap(),
            Action::Continue
        );

        assert_eq!(resp.header("x-delay-ms").as_deref(), Some("250"));
        assert_eq!(resp.header("x-delay-observed-ms").as_deref(), Some("250"));
    }

    #[test]
    fn can_delay_the_response_phase_instead() {
        let f = testing::load::<Delay>(json!({ "ms": 5, "phase": "response" })).unwrap();
        let mut req = testing::Request::get("/");
        assert_eq!(f.request_headers(&mut req).unwrap(), Action::Continue);
        let action = f
            .response_headers(&mut req, &mut testing::Response::new(200))
            .unwrap();
        assert_eq!(action, Action::Delay(5));
    }
}
