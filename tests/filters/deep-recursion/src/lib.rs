//! Test filter `deep-recursion`: when the request path starts with `path`
//! (default `/recurse`), recurses `depth` times (default: without end) with
//! a 1 KiB frame each, so the stack overflows and the instance traps. With a
//! finite depth it returns and sets `x-recursion-depth` on the response.

use weir_sdk::prelude::*;

fn default_path() -> String {
    "/recurse".to_string()
}

/// Configuration.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Requests whose path starts with this recurse.
    #[serde(default = "default_path")]
    pub path: String,
    /// How deep; absent: until the stack runs out.
    #[serde(default)]
    pub depth: Option<u64>,
}

/// The filter.
pub struct DeepRecursion {
    cfg: Config,
}

const DEPTH: &str = "deep-recursion.depth";

/// Recurse `left` more times. Each frame holds 1 KiB that stays alive
/// across the call (`black_box` after it), so it is no tail call and the
/// optimiser cannot shrink the frame.
#[inline(never)]
fn recurse(left: u64) -> u64 {
    let frame = std::hint::black_box([left as u8; 1024]);
    if left == 0 {
        return 0;
    }
    let below = recurse(left - 1);
    std::hint::black_box(&frame);
    below + 1
}

#[weir_sdk::filter]
impl Filter for DeepRecursion {
    type Config = Config;

    fn new(cfg: Config) -> Result<Self> {
        Ok(DeepRecursion { cfg })
    }

    fn on_request_headers(&self, req: &mut Request) -> Result<Action> {
        if req.path().starts_with(&self.cfg.path) {
            let depth = recurse(std::hint::black_box(self.cfg.depth.unwrap_or(u64::MAX)));
            req.set_property(DEPTH, &depth.to_string());
        }
        Ok(Action::Continue)
    }

    fn on_response_headers(&self, req: &mut Request, resp: &mut Response) -> Result<Action> {
        if let Some(depth) = req.property(DEPTH) {
            resp.set_header("x-recursion-depth", &depth)?;
        }
        Ok(Action::Continue)
    }
}

#[cfg(test)]
mod tests {
    use weir_sdk::testing::{self, json};

    use super::*;

    #[test]
    fn a_finite_depth_returns() {
        let f = testing::load::<DeepRecursion>(json!({ "depth": 50 })).unwrap();
        let mut req = testing::Request::get("/recurse");
        let mut resp = testing::Response::new(200);
        f.request_headers(&mut req).unwrap();
        f.response_headers(&mut req, &mut resp).unwrap();
        assert_eq!(resp.header("x-recursion-depth").as_deref(), Some("50"));
    }
}
