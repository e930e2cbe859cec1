//! `GET /metrics` on the admin listener: the filter metrics registry in the
//! Prometheus text format, read through real sockets after real requests
//! went through a real filter (`tests/filters/host-apis`).

use std::collections::HashSet;

use http::Request;
use weir_proxy::body;
use weir_tests::{artifacts, client, proxy, server};

const CONFIG: &str = r#"
filters:
  - name: apis
    module: "{{apis}}"
    config: { key_prefix: "admin-metrics:" }
clusters:
  - name: app
    endpoints: ["{{app}}"]
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
      - forward: { cluster: app }
"#;

/// Checks the text is well-formed exposition format: every sample line is
/// `name{labels} value` with quoted label values, belongs to a family
/// declared by an earlier `# TYPE` line, and each family is declared once.
fn assert_well_formed(text: &str) {
    let mut declared: HashSet<String> = HashSet::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(declared.insert(name.to_owned()), "declared twice: {name}");
            current = Some((name.to_owned(), kind.to_owned()));
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample: series value");
        assert!(
            value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
            "value of {line}"
        );
        let (name, labels) = series
            .split_once('{')
            .unwrap_or_else(|| panic!("no labels: {line}"));
        let labels = labels.strip_suffix('}').expect("labels end with }");
        assert!(labels.starts_with("filter=\""), "{line}");
        for pair in labels.split("\",") {
            let (label, value) = pair.split_once("=\"").expect("label=\"value\"");
            assert!(!label.is_empty() && !value.contains('\n'), "{line}");
        }
        let (family, kind) = current.as_ref().expect("a sample before any # TYPE");
        let expected: Vec<String> = if kind == "histogram" {
            ["_bucket", "_sum", "_count"]
                .iter()
                .map(|suffix| format!("{family}{suffix}"))
                .collect()
        } else {
            vec![family.clone()]
        };
        assert!(
            expected.iter().any(|e| e == name),
            "{name} outside its family {family}"
        );
    }
}

fn assert_has_line(text: &str, line: &str) {
    assert!(
        text.lines().any(|l| l == line),
        "missing line {line:?} in:\n{text}"
    );
}

#[tokio::test]
async fn metrics_endpoint_renders_filter_metrics_for_prometheus() {
    let upstream = server::http1()
        .fallback(|_| async { server::text(200, "ok") })
        .run()
        .await;
    let builder = proxy::new()
        .filter_module("apis", artifacts::HOST_APIS)
        .upstream("app", &upstream)
        .config(CONFIG);
    let next_generation = builder.build_runtime().await.expect("second generation");
    let proxy = builder.run().await;
    let admin = proxy.admin_addr.expect("admin enabled");
    let client = client::http1();

    for path in ["/a", "/bb"] {
        assert_eq!(client.get(&proxy.url(path)).await.status, 200);
    }
    let post = Request::post(proxy.url("/ccc"))
        .body(body::empty())
        .expect("valid request");
    assert_eq!(client.send(post).await.status, 200);

    let metrics = client.get(&format!("http://{admin}/metrics")).await;
    assert_eq!(metrics.status, 200);
    assert_eq!(
        metrics.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = metrics.text();
    assert_well_formed(&text);
    // Recorded by the filter's request phase, so before each response.
    assert_has_line(&text, "# TYPE host_apis_requests_total counter");
    assert_has_line(
        &text,
        r#"host_apis_requests_total{filter="apis",method="GET"} 2"#,
    );
    assert_has_line(
        &text,
        r#"host_apis_requests_total{filter="apis",method="POST"} 1"#,
    );
    assert_has_line(&text, "# TYPE host_apis_last_path_len gauge");
    assert_has_line(&text, r#"host_apis_last_path_len{filter="apis"} 4"#);
    assert_has_line(&text, "# TYPE host_apis_header_count histogram");
    assert_has_line(
        &text,
        r#"host_apis_header_count_bucket{filter="apis",le="+Inf"} 3"#,
    );
    assert_has_line(&text, r#"host_apis_header_count_count{filter="apis"} 3"#);
    assert!(
        text.contains(r#"host_apis_header_count_sum{filter="apis"} "#),
        "{text}"
    );
    // The host's own per-filter counter.
    assert_has_line(&text, "# TYPE weir_filter_exchanges_total counter");
    assert_has_line(&text, r#"weir_filter_exchanges_total{filter="apis"} 3"#);

    // A new config generation reads the same process-wide registry: the
    // counts go on instead of starting over.
    proxy.handle.reload(next_generation);
    assert_eq!(client.get(&proxy.url("/dddd")).await.status, 200);
    let text = client.get(&format!("http://{admin}/metrics")).await.text();
    assert_well_formed(&text);
    assert_has_line(
        &text,
        r#"host_apis_requests_total{filter="apis",method="GET"} 3"#,
    );
    assert_has_line(&text, r#"host_apis_last_path_len{filter="apis"} 5"#);
    assert_has_line(&text, r#"weir_filter_exchanges_total{filter="apis"} 4"#);
}

#[tokio::test]
async fn metrics_endpoint_without_filters_is_empty_and_read_only() {
    let proxy = proxy::new()
        .config(
            r#"
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
      - direct_response: { status: 200, body: ok }
"#,
        )
        .run()
        .await;
    let admin = proxy.admin_addr.expect("admin enabled");
    let client = client::http1();
    let metrics = client.get(&format!("http://{admin}/metrics")).await;
    assert_eq!(
        (metrics.status.as_u16(), metrics.text()),
        (200, String::new())
    );

    let post = Request::post(format!("http://{admin}/metrics"))
        .body(body::empty())
        .expect("valid request");
    assert_eq!(client.send(post).await.status, 405);
}
