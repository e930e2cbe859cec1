//! Test filter `order-tag`: appends its `tag` to a comma-separated header
//! (default `x-order`) on the request and on the response. Two instances
//! `a` then `b` in a chain give the upstream `x-order: a,b` and the client
//! `x-order: <upstream's>,b,a` (response phases run in reverse).

use weir_sdk::prelude::*;

fn default_header() -> String {
    "x-order".to_string()
}

/// Configuration.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The tag to append.
    pub tag: String,
    /// The header to append it to.
    #[serde(default = "default_header")]
    pub header: String,
}

/// The filter.
pub struct OrderTag {
    cfg: Config,
}

fn appended(current: Option<String>, tag: &str) -> String {
    match current {
        Some(c) if !c.is_empty() => format!("{c},{tag}"),
        _ => tag.to_string(),
    }
}

#[weir_sdk::filter]
impl Filter for OrderTag {
    type Config = Config;

    fn new(cfg: Config) -> Result<Self> {
        Ok(OrderTag { cfg })
    }

    fn on_request_headers(&self, req: &mut Request) -> Result<Action> {
        let value = appended(req.header(&self.cfg.header), &self.cfg.tag);
        req.set_header(&self.cfg.header, &value)?;
        Ok(Action::Continue)
    }

    fn on_response_headers(&self, _req: &mut Request, resp: &mut Response) -> Result<Action> {
        let value = appended(resp.header(&self.cfg.header), &self.cfg.tag);
        resp.set_header(&self.cfg.header, &value)?;
        Ok(Action::Continue)
    }
}

#[cfg(test)]
mod tests {
    use weir_sdk::testing::{self, json};

    use super::*;

    #[test]
    fn a_chain_of_two_tags_both_ways() {
        let a = testing::load::<OrderTag>(json!({ "tag": "a" })).unwrap();
        let b = testing::load::<OrderTag>(json!({ "tag": "b" })).unwrap();
        let mut req = testing::Request::get("/");
        let mut resp = testing::Response::new(200).with_header("x-order", "upstream");

        a.request_headers(&mut req).unwrap();
        b.request_headers(&mut req).unwrap();
        b.response_headers(&mut req, &mut resp).unwrap();
        a.response_headers(&mut req, &mut resp).unwrap();

        assert_eq!(req.header("x-order").as_deref(), Some("a,b"));
        assert_eq!(resp.header("x-order").as_deref(), Some("upstream,b,a"));
    }
}
