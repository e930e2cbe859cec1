//! Applying a configuration keeps open client connections: a keep-alive
//! connection sees a new route and a new weighted split.

use http::Request;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use weir_proxy::body;
use weir_tests::managed::Managed;
use weir_tests::server;

fn config(a: &str, b: &str, weight_a: u32, weight_b: u32, new_route: bool) -> String {
    // Weights must be positive: a cluster at 0% is left out of the split.
    let split: String = [("a", weight_a), ("b", weight_b)]
        .iter()
        .filter(|(_, w)| *w > 0)
        .map(|(c, w)| format!("            - {{ cluster: {c}, weight: {w} }}\n"))
        .collect();
    let extra = if new_route {
        "      - match: { path: /new }\n        direct_response: { status: 200, body: \"new route\" }\n"
    } else {
        ""
    };
    format!(
        r#"listeners:
  - name: main
    address: 127.0.0.1:0
admin:
  enabled: false
control:
  enabled: false
clusters:
  - name: a
    endpoints: ["{a}"]
  - name: b
    endpoints: ["{b}"]
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
{extra}      - forward:
          weighted_clusters:
{split}"#
    )
}

#[tokio::test]
async fn config_apply_adds_a_route_and_moves_the_split_on_an_open_connection() {
    let a = server::http1()
        .named("a")
        .fallback(|_| async { server::text(200, "a") })
        .run()
        .await;
    let b = server::http1()
        .named("b")
        .fallback(|_| async { server::text(200, "b") })
        .run()
        .await;
    let (a_addr, b_addr) = (a.addr.to_string(), b.addr.to_string());
    let dir = tempfile::tempdir().unwrap();
    let proxy = Managed::start(dir.path(), &config(&a_addr, &b_addr, 100, 0, false), None).await;

    // One connection, kept open across the apply.
    let stream = tokio::net::TcpStream::connect(proxy.manager.server().local_addrs()[0])
        .await
        .unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut get = async |path: &str| {
        let request = Request::get(path)
            .header("host", "x")
            .body(body::empty())
            .unwrap();
        let response = sender
            .send_request(request)
            .await
            .expect("the connection is still open");
        let status = response.status();
        let upstream = response
            .headers()
            .get("x-upstream")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = response.into_body().collect().await.unwrap().to_bytes();
        (
            status.as_u16(),
            upstream,
            String::from_utf8(text.to_vec()).unwrap(),
        )
    };

    assert_eq!(get("/x").await, (200, Some("a".into()), "a".into()));
    assert_eq!(get("/new").await.1, Some("a".into()));

    let summary = proxy
        .apply(&config(&a_addr, &b_addr, 0, 100, true))
        .await
        .expect("apply");
    assert!(!summary.changes.is_empty());

    assert_eq!(get("/new").await, (200, None, "new route".into()));
    assert_eq!(get("/x").await, (200, Some("b".into()), "b".into()));
    assert_eq!(
        a.connections() + b.connections(),
        2,
        "one upstream connection each"
    );
}
