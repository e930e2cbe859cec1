//! Test filter `reload-marker`: stamps every response with `x-marker`, the
//! 16 bytes that follow `weir-reload-marker:` in the component's data
//! (`0000000000000000` as built). A test or benchmark makes a new version of
//! the module by overwriting those 16 bytes in the `.wasm` file (see
//! `weir_tests::marker`): a new SHA-256 the compiled-module cache has never
//! seen, and responses that say which version served them.
//!
//! Configuration: none (`{}`).

use weir_sdk::prelude::*;

/// The marker: a prefix found once in the component, then 16 patchable bytes.
static MARKER: [u8; 35] = *b"weir-reload-marker:0000000000000000";

/// The 16 bytes after the prefix, read from memory at run time (never
/// folded into the code, so patching the data changes what is sent).
fn marker() -> String {
    let marker: &[u8; 35] = std::hint::black_box(&MARKER);
    String::from_utf8_lossy(&marker[19..]).into_owned()
}

/// Configuration: none.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {}

/// The filter.
pub struct ReloadMarker;

#[weir_sdk::filter]
impl Filter for ReloadMarker {
    type Config = Config;

    fn new(_cfg: Config) -> Result<Self> {
        Ok(ReloadMarker)
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
    fn the_marker_is_the_sixteen_bytes_after_the_prefix() {
        assert_eq!(&MARKER[..19], b"weir-reload-marker:");
        assert_eq!(marker(), "0000000000000000");
    }
}
