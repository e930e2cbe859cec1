//! Proxying basics through the real server and pipeline: HTTP/1.1 and h2c,
//! local responses, header rules.

use http::{Request, Version};
use weir_proxy::body;
use weir_tests::client::{self, TestResponse};
use weir_tests::{proxy, server};

const FORWARD_ALL: &str = r#"
clusters:
  - name: app
    endpoints: ["{{app}}"]
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
      - name: local
        match: { path: /local }
        direct_response:
          status: 203
          body: "made by the proxy"
          headers: { content-type: text/plain, x-local: "yes" }
      - name: moved
        match: { prefix: /old/ }
        redirect: { path: /new, status: 308 }
      - name: app
        match: { prefix: / }
        forward: { cluster: app }
        request_headers:
          set: { x-route: app }
        response_headers:
          add: { x-proxied: "1" }
"#;

async fn echo_upstream(builder: server::Server) -> server::Listening {
    builder.echoing().run().await
}

async fn proxy_to(upstream: &server::Listening) -> proxy::RunningProxy {
    proxy::new()
        .upstream("app", upstream)
        .config(FORWARD_ALL)
        .run()
        .await
}

fn seen_header(response: &TestResponse, name: &str) -> Option<Vec<String>> {
    let json = response.json();
    let values = json["headers"].get(name)?.as_array()?.clone();
    Some(
        values
            .into_iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect(),
    )
}

#[tokio::test]
async fn http1_client_to_http1_upstream() {
    let upstream = echo_upstream(server::http1()).await;
    let proxy = proxy_to(&upstream).await;
    let response = client::http1().get(&proxy.url("/some/path?q=1")).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.version, Version::HTTP_11);
    assert_eq!(response.header("x-proxied"), Some("1"));
    let json = response.json();
    assert_eq!(json["path"], "/some/path?q=1");
    assert_eq!(json["method"], "GET");
    assert_eq!(seen_header(&response, "x-route").unwrap(), ["app"]);
    assert_eq!(
        seen_header(&response, "host").unwrap(),
        [proxy.addr.to_string()]
    );
    assert_eq!(upstream.requests(), 1);
}

#[tokio::test]
async fn h2c_client_to_h2c_upstream() {
    let upstream = echo_upstream(server::http2()).await;
    let proxy = proxy::new()
        .upstream("app", &upstream)
        .config(FORWARD_ALL.replace(
            "endpoints: [\"{{app}}\"]",
            "endpoints: [\"{{app}}\"]\n    protocol: http2",
        ))
        .run()
        .await;
    let client = client::http2();
    for i in 0..3 {
        let response = client.get(&proxy.url(&format!("/h2/{i}"))).await;
        assert_eq!(response.status, 200);
        assert_eq!(response.version, Version::HTTP_2);
        let json = response.json();
        assert_eq!(json["path"], format!("/h2/{i}"));
        assert_eq!(json["version"], "HTTP/2.0");
    }
}

#[tokio::test]
async fn h2c_client_to_http1_upstream_and_back() {
    let upstream = echo_upstream(server::http1()).await;
    let proxy = proxy::new()
        .upstream("app", &upstream)
        .config(FORWARD_ALL.replace(
            "endpoints: [\"{{app}}\"]",
            "endpoints: [\"{{app}}\"]\n    protocol: http1",
        ))
        .run()
        .await;
    let response = client::http2().get(&proxy.url("/mixed")).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.version, Version::HTTP_2);
    let json = response.json();
    assert_eq!(json["version"], "HTTP/1.1");
    assert_eq!(
        seen_header(&response, "host").unwrap(),
        [proxy.addr.to_string()]
    );
}

#[tokio::test]
async fn both_protocols_share_one_port() {
    let upstream = echo_upstream(server::http1()).await;
    let proxy = proxy_to(&upstream).await;
    let h1 = client::http1().get(&proxy.url("/local")).await;
    let h2 = client::http2().get(&proxy.url("/local")).await;
    assert_eq!(
        (h1.version, h2.version),
        (Version::HTTP_11, Version::HTTP_2)
    );
    for response in [h1, h2] {
        assert_eq!(response.status, 203);
        assert_eq!(response.text(), "made by the proxy");
        assert_eq!(response.header("x-local"), Some("yes"));
    }
    assert_eq!(
        upstream.requests(),
        0,
        "a direct response never reaches the upstream"
    );
}

#[tokio::test]
async fn redirect_and_no_route() {
    let upstream = echo_upstream(server::http1()).await;
    let proxy = proxy::new()
        .upstream("app", &upstream)
        .config(FORWARD_ALL.replace("match: { prefix: / }", "match: { prefix: /app }"))
        .run()
        .await;
    let client = client::http1();
    let moved = client.get(&proxy.url("/old/page?x=1")).await;
    assert_eq!(moved.status, 308);
    let location = moved.header("location").expect("a location header");
    assert!(location.ends_with("/new?x=1"), "{location}");

    let missing = client.get(&proxy.url("/nothing-here")).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.text(), "no route matched\n");
    assert_eq!(upstream.requests(), 0);
}

#[tokio::test]
async fn request_id_and_forwarded_headers() {
    let upstream = echo_upstream(server::http1()).await;
    let proxy = proxy_to(&upstream).await;
    let client = client::http1();

    let generated = client.get(&proxy.url("/id")).await;
    let id = seen_header(&generated, "x-request-id").expect("an id is generated");
    assert_eq!(id.len(), 1);
    assert_eq!(id[0].len(), 32);
    assert!(id[0].chars().all(|c| c.is_ascii_hexdigit()));
    let other = client.get(&proxy.url("/id")).await;
    assert_ne!(
        seen_header(&other, "x-request-id").unwrap(),
        id,
        "ids are unique"
    );

    let kept = client
        .get_with(
            &proxy.url("/id"),
            &[
                ("x-request-id", "given-id"),
                ("x-forwarded-for", "203.0.113.9"),
                ("x-forwarded-proto", "https"),
            ],
        )
        .await;
    assert_eq!(seen_header(&kept, "x-request-id").unwrap(), ["given-id"]);
    assert_eq!(
        seen_header(&kept, "x-forwarded-for").unwrap(),
        ["203.0.113.9, 127.0.0.1"]
    );
    assert_eq!(seen_header(&kept, "x-forwarded-proto").unwrap(), ["http"]);
}

#[tokio::test]
async fn hop_by_hop_headers_are_stripped_both_ways() {
    let upstream = server::http1()
        .fallback(|req| async move {
            let mut response = server::echo_head(&req);
            let headers = response.headers_mut();
            headers.insert("connection", "x-upstream-private".parse().unwrap());
            headers.insert("x-upstream-private", "secret".parse().unwrap());
            headers.insert("keep-alive", "timeout=5".parse().unwrap());
            headers.insert("proxy-connection", "keep-alive".parse().unwrap());
            headers.insert("trailer", "x-checksum".parse().unwrap());
            headers.insert("upgrade", "h2c".parse().unwrap());
            headers.insert("x-upstream-public", "visible".parse().unwrap());
            response
        })
        .run()
        .await;
    let proxy = proxy_to(&upstream).await;
    let request = Request::get(proxy.url("/hop"))
        .header("connection", "x-client-private, keep-alive")
        .header("x-client-private", "secret")
        .header("keep-alive", "timeout=5")
        .header("proxy-connection", "keep-alive")
        .header("te", "gzip")
        .header("trailer", "x-checksum")
        .header("x-client-public", "visible")
        .body(body::empty())
        .unwrap();
    let response = client::http1().send(request).await;
    assert_eq!(response.status, 200);

    let json = response.json();
    let seen: Vec<&str> = json["headers"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for stripped in [
        "connection",
        "x-client-private",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
    ] {
        assert!(
            !seen.contains(&stripped),
            "upstream saw {stripped}: {seen:?}"
        );
    }
    assert!(seen.contains(&"x-client-public"));

    for stripped in [
        "x-upstream-private",
        "keep-alive",
        "proxy-connection",
        "trailer",
        "upgrade",
    ] {
        assert!(
            response.header(stripped).is_none(),
            "client saw {stripped}: {:?}",
            response.headers
        );
    }
    assert_eq!(response.header("x-upstream-public"), Some("visible"));
}

#[tokio::test]
async fn te_trailers_survives_for_grpc() {
    let upstream = echo_upstream(server::http2()).await;
    let proxy = proxy::new()
        .upstream("app", &upstream)
        .config(FORWARD_ALL.replace(
            "endpoints: [\"{{app}}\"]",
            "endpoints: [\"{{app}}\"]\n    protocol: http2",
        ))
        .run()
        .await;
    let response = client::http2()
        .get_with(&proxy.url("/te"), &[("te", "trailers")])
        .await;
    assert_eq!(seen_header(&response, "te").unwrap(), ["trailers"]);
}
