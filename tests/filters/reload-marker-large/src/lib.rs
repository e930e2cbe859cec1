//! Test filter `reload-marker-large`: what `reload-marker` does (stamps
//! every response with `x-marker`, the 16 bytes after `weir-reload-marker:`
//! in the component's data), plus a path deny-list of regular expressions
//! (full Unicode, every matching engine of the `regex` crate), which makes
//! the component about 1 MB: the large module of the reload benchmark.
//!
//! ```json
//! { "deny": ["^/admin(/|$)", "\\p{Greek}"] }
//! ```
//! A request whose path matches a `deny` pattern gets 403 `denied`.

use regex::RegexSet;
use weir_sdk::prelude::*;

/// The marker: a prefix found once in the component, then 16 patchable bytes.
static MARKER: [u8; 35] = *b"weir-reload-marker:0000000000000000";

/// The 16 bytes after the prefix, read from memory at run time.
fn marker() -> String {
    let marker: &[u8; 35] = std::hint::black_box(&MARKER);
    String::from_utf8_lossy(&marker[19..]).into_owned()
}

/// Configuration.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Regular expressions; a path matching any is refused with 403.
    #[serde(default)]
    pub deny: Vec<String>,
}

/// The filter.
pub struct ReloadMarkerLarge {
    deny: RegexSet,
}

#[weir_sdk::filter]
impl Filter for ReloadMarkerLarge {
    type Config = Config;

    fn new(cfg: Config) -> Result<Self> {
        let deny = RegexSet::new(&cfg.deny).map_err(|e| Error::config(format!("deny: {e}")))?;
        Ok(ReloadMarkerLarge { deny })
    }

    fn on_request_headers(&self, req: &mut Request) -> Result<Action> {
        if self.deny.is_match(&req.path()) {
            return Ok(Action::respond(403, "denied"));
        }
        Ok(Action::Continue)
    }

    fn on_response_headers(&self, _req: &mut Request, resp: &mut Response) -> Result<Action> {
        resp.set_header("x-marker", &marker())?;
        Ok(Action::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_pattern_is_a_config_error() {
        let cfg = Config {
            deny: vec!["(".into()],
        };
        assert!(ReloadMarkerLarge::new(cfg).is_err());
        assert_eq!(marker(), "0000000000000000");
    }
}
