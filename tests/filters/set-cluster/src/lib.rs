//! Test filter `set-cluster`: sends the request to the cluster named in a
//! request header (default `x-cluster`), optionally rewrites the path from
//! another header and asks the proxy to match routes again. The response
//! gets `x-routed-cluster` with the cluster the request ended up with.
//!
//! ```json
//! { "header": "x-cluster", "path_header": "x-path", "clear_route_cache": true }
//! ```

use weir_sdk::prelude::*;

fn default_header() -> String {
    "x-cluster".to_string()
}

/// Configuration.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The request header naming the cluster.
    #[serde(default = "default_header")]
    pub header: String,
    /// A request header holding a new path-and-query, if any.
    #[serde(default)]
    pub path_header: Option<String>,
    /// Ask the proxy to match routes again after this filter.
    #[serde(default)]
    pub clear_route_cache: bool,
}

/// The filter.
pub struct SetCluster {
    cfg: Config,
}

#[weir_sdk::filter]
impl Filter for SetCluster {
    type Config = Config;

    fn new(cfg: Config) -> Result<Self> {
        Ok(SetCluster { cfg })
    }

    fn on_request_headers(&self, req: &mut Request) -> Result<Action> {
        if let Some(cluster) = req.header(&self.cfg.header) {
            req.set_cluster(&cluster)?;
        }
        if let Some(path) = self.cfg.path_header.as_deref().and_then(|h| req.header(h)) {
            req.set_path(&path)?;
        }
        if self.cfg.clear_route_cache {
            req.clear_route_cache();
        }
        Ok(Action::Continue)
    }

    fn on_response_headers(&self, req: &mut Request, resp: &mut Response) -> Result<Action> {
        if let Some(cluster) = req.cluster() {
            resp.set_header("x-routed-cluster", &cluster)?;
        }
        Ok(Action::Continue)
    }
}

#[cfg(test)]
mod tests {
    use weir_sdk::testing::{self, json};

    use super::*;

    #[test]
    fn sets_the_cluster_and_path_from_headers() {
        let f = testing::load::<SetCluster>(
            json!({ "path_header": "x-path", "clear_route_cache": true }),
        )
        .unwrap();
        let mut req = testing::Request::get("/old")
            .with_cluster("default")
            .with_header("x-cluster", "canary")
            .with_header("x-path", "/new?v=2");

        f.request_headers(&mut req).unwrap();

        assert_eq!(req.cluster().as_deref(), Some("canary"));
        assert_eq!(req.path(), "/new");
        assert_eq!(req.query().as_deref(), Some("v=2"));
        assert!(req.route_cache_cleared());
        let mut resp = testing::Response::new(200);
        f.response_headers(&mut req, &mut resp).unwrap();
        assert_eq!(resp.header("x-routed-cluster").as_deref(), Some("canary"));
    }

    #[test]
    fn an_unknown_cluster_is_a_filter_error() {
        testing::set_clusters(&["a"]);
        let f = testing::load::<SetCluster>(json!({})).unwrap();
        let mut req = testing::Request::get("/").with_header("x-cluster", "nope");

        let err = f.request_headers(&mut req).unwrap_err();
        assert!(err.to_string().contains("unknown cluster `nope`"), "{err}");
        assert!(!req.route_cache_cleared());
    }
}
