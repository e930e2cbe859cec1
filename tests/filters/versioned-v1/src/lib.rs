//! Test filters `versioned-v1` and `versioned-v2`: one source built as two
//! crates (`versioned-v2` points its `[lib] path` here), so two distinct
//! components whose only difference is the version they stamp, taken from
//! the package name: `v1` or `v2`.
//!
//! - `on_request_headers` sets `x-filter-version: <version>` on the request
//!   (the upstream sees which version ran the request phase);
//! - `on_response_headers` sets `x-filter-version: <version>` on the
//!   response and `x-filter-version-request:` the version its request phase
//!   recorded in the exchange properties.
//!
//! A response whose three values (request phase, what the upstream saw,
//! response phase) disagree was served by a mix of two module versions.
//!
//! Configuration: none (`{}`).

use weir_sdk::prelude::*;

/// `v1` or `v2`: the package name's last `-` part.
fn version() -> &'static str {
    let package = env!("CARGO_PKG_NAME");
    package.rsplit('-').next().unwrap_or(package)
}

const HEADER: &str = "x-filter-version";
const PROPERTY: &str = "versioned.request-phase";

/// Configuration: none.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {}

/// The filter.
pub struct Versioned;

#[weir_sdk::filter]
impl Filter for Versioned {
    type Config = Config;

    fn new(_cfg: Config) -> Result<Self> {
        Ok(Versioned)
    }

    fn on_request_headers(&self, req: &mut Request) -> Result<Action> {
        req.set_header(HEADER, version())?;
        req.set_property(PROPERTY, version());
        Ok(Action::Continue)
    }

    fn on_response_headers(&self, req: &mut Request, resp: &mut Response) -> Result<Action> {
        let request_phase = req.property(PROPERTY).unwrap_or_else(|| "none".into());
        resp.set_header(HEADER, version())?;
        resp.set_header("x-filter-version-request", &request_phase)?;
        Ok(Action::Continue)
    }
}

#[cfg(test)]
mod tests {
    use weir_sdk::testing::{self, json};

    use super::*;

    #[test]
    fn stamps_the_package_version_both_ways() {
        let f = testing::load::<Versioned>(json!({})).unwrap();
        let mut req = testing::Request::get("/");
        let mut resp = testing::Response::new(200);

        f.request_headers(&mut req).unwrap();
        f.response_headers(&mut req, &mut resp).unwrap();

        let expected = match env!("CARGO_PKG_NAME") {
            "versioned-v1" => "v1",
            "versioned-v2" => "v2",
            other => panic!("unexpected package {other}"),
        };
        assert_eq!(req.header(HEADER).as_deref(), Some(expected));
        assert_eq!(resp.header(HEADER).as_deref(), Some(expected));
        assert_eq!(
            resp.header("x-filter-version-request").as_deref(),
            Some(expected)
        );
    }
}
