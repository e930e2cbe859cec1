//! A proxy with exactly one Wasm filter in front of one upstream, and the
//! checks the failure tests make on it.
//!
//! ```no_run
//! # async fn demo(upstream: weir_tests::server::Listening) {
//! use weir_tests::{artifacts, client, one_filter};
//! let proxy = one_filter::proxy(&upstream, "looper", artifacts::INFINITE_LOOP, "").await;
//! let response = client::http1().get(&proxy.url("/loop")).await;
//! one_filter::assert_failed(&response, "looper");
//! # }
//! ```

use crate::{client, proxy, server};

/// Config with the filter `name` (module `{{module}}`) as the whole chain,
/// `extra` (YAML lines indented under the filter, e.g.
/// `"    execution: inline"`) added to its entry, and every request routed
/// to the cluster `app` (`{{app}}`).
pub fn config(name: &str, extra: &str) -> String {
    format!(
        r#"
clusters:
  - {{ name: app, endpoints: ["{{{{app}}}}"] }}
filters:
  - name: {name}
    module: "{{{{module}}}}"
{extra}
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
      - forward: {{ cluster: app }}
"#
    )
}

/// Run the proxy of [`config`] in front of `upstream`, `module` being the
/// filter's component.
pub async fn proxy(
    upstream: &server::Listening,
    name: &str,
    module: &str,
    extra: &str,
) -> proxy::RunningProxy {
    proxy::new()
        .config(config(name, extra))
        .upstream("app", upstream)
        .filter_module("module", module)
        .run()
        .await
}

/// The response is the 503 of a failed `fail_closed` filter, naming it.
pub fn assert_failed(response: &client::TestResponse, filter: &str) {
    assert_eq!(response.status, 503, "{}", response.text());
    assert!(
        response
            .text()
            .contains(&format!("filter \"{filter}\" failed")),
        "{}",
        response.text()
    );
}

/// The proxy still answers `/fine` with 200, three times in a row; returns
/// the last response.
pub async fn assert_still_serves(proxy: &proxy::RunningProxy) -> client::TestResponse {
    let mut last = None;
    for _ in 0..3 {
        let response = client::http1().get(&proxy.url("/fine")).await;
        assert_eq!(response.status, 200, "{}", response.text());
        last = Some(response);
    }
    last.expect("three responses")
}
