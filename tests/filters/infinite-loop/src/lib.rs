//! Test filter `infinite-loop`: never returns from `on_request_headers` (or
//! `on_response_headers` with `"phase": "response"`) when the request path
//! starts with `path` (default `/loop`). The proxy's CPU deadline must stop
//! it. Other paths pass through.

use weir_sdk::prelude::*;

fn default_path() -> String {
    "/loop".to_string()
}

/// Where the loop happens.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// In `on_request_headers` (default).
    #[default]
    Request,
    /// In `on_response_headers`.
    Response,
}

/// Configuration.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Requests whose path starts with this loop forever.
    #[serde(default = "default_path")]
    pub path: String,
    /// The phase that loops.
    #[serde(default)]
    pub phase: Phase,
}

/// The filter.
pub struct InfiniteLoop {
    cfg: Config,
}

impl InfiniteLoop {
    fn maybe_spin(&self, req: &Request, phase: Phase) {
        if phase == self.cfg.phase && req.path().starts_with(&self.cfg.path) {
            spin();
        }
    }
}

/// Burn CPU forever (`black_box` keeps the loop from being optimised into
/// anything else).
fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

#[weir_sdk::filter]
impl Filter for InfiniteLoop {
    type Config = Config;

    fn new(cfg: Config) -> Result<Self> {
        Ok(InfiniteLoop { cfg })
    }

    fn on_request_headers(&self, req: &mut Request) -> Result<Action> {
        self.maybe_spin(req, Phase::Request);
        Ok(Action::Continue)
    }

    fn on_response_headers(&self, req: &mut Request, _resp: &mut Response) -> Result<Action> {
        self.maybe_spin(req, Phase::Response);
        Ok(Action::Continue)
    }
}

#[cfg(test)]
mod tests {
    use weir_sdk::testing::{self, json};

    use super::*;

    #[test]
    fn other_paths_pass() {
        let f = testing::load::<InfiniteLoop>(json!({})).unwrap();
        let mut req = testing::Request::get("/fine");
        assert_eq!(f.request_headers(&mut req).unwrap(), Action::Continue);
        let mut resp = testing::Response::new(200);
        assert_eq!(
            f.response_headers(&mut req, &mut resp).unwrap(),
            Action::Continue
        );
    }

    #[test]
    fn the_response_phase_option_leaves_the_request_phase_alone() {
        let f = testing::load::<InfiniteLoop>(json!({ "phase": "response" })).unwrap();
        assert_eq!(
            f.request_headers(&mut testing::Request::get("/loop"))
                .unwrap(),
            Action::Continue
        );
    }
}
