//! Test filter `guest-state`: counts `on_request_headers` calls in the
//! guest's own memory (a static, not the proxy's KV store) and reports the
//! count in the `x-guest-calls` response header. With pooled instances a
//! reused instance shows counts above 1; with `isolation: per_request` every
//! request starts from a fresh instance and always sees 1.

use std::sync::atomic::{AtomicU64, Ordering};

use weir_sdk::prelude::*;

/// Calls seen by this instance.
static CALLS: AtomicU64 = AtomicU64::new(0);

const SEEN: &str = "guest-state.calls";

/// Configuration: none.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {}

/// The filter.
pub struct GuestState;

#[weir_sdk::filter]
impl Filter for GuestState {
    type Config = Config;

    fn new(_cfg: Config) -> Result<Self> {
        Ok(GuestState)
    }

    fn on_request_headers(&self, req: &mut Request) -> Result<Action> {
        let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
        req.set_property(SEEN, &calls.to_string());
        Ok(Action::Continue)
    }

    fn on_response_headers(&self, req: &mut Request, resp: &mut Response) -> Result<Action> {
        if let Some(calls) = req.property(SEEN) {
            resp.set_header("x-guest-calls", &calls)?;
        }
        Ok(Action::Continue)
    }
}
