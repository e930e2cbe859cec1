//! Applying a configuration keeps open client connections: a keep-alive
//! connection sees a new route and a new weighted split.

use weir_tests::managed::Managed;
use weir_tests::{client, server};

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
    let mut connection = client::http1_connection(proxy.manager.server().local_addrs()[0]).await;
    let mut get = async |path: &str| {
        let response = connection.get(path).await;
        (
            response.status.as_u16(),
            response.header("x-upstream").map(str::to_owned),
            response.text(),
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
