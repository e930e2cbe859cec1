//! The server's life: graceful drain on shutdown, the drain timeout, and
//! swapping in a new config generation.

use std::sync::{Arc, Mutex};

use http::Request;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use weir_proxy::body;
use weir_proxy::proxy::Runtime;
use weir_proxy::server::{Phase, ShutdownOutcome};
use weir_tests::{client, proxy, server};

fn config(drain_timeout: &str, protocol: &str) -> String {
    format!(
        r#"
limits:
  drain_timeout: {drain_timeout}
clusters:
  - name: app
    endpoints: ["{{{{app}}}}"]
    protocol: {protocol}
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
      - forward: {{ cluster: app, timeout: 60s }}
"#
    )
}

/// An upstream whose `/slow` tells the test when a request arrived and
/// answers only when the test releases it.
struct SlowUpstream {
    server: server::Listening,
    arrived: oneshot::Receiver<()>,
    release: oneshot::Sender<()>,
}

async fn slow_upstream(builder: server::Server) -> SlowUpstream {
    let (arrived_tx, arrived) = oneshot::channel();
    let (release, release_rx) = oneshot::channel::<()>();
    let gates = Arc::new(Mutex::new(Some((arrived_tx, release_rx))));
    let server = builder
        .route("/slow", move |_req| {
            let gates = gates.lock().unwrap().take();
            async move {
                if let Some((arrived, release)) = gates {
                    let _ = arrived.send(());
                    let _ = release.await;
                }
                server::text(200, "finished")
            }
        })
        .run()
        .await;
    SlowUpstream {
        server,
        arrived,
        release,
    }
}

#[tokio::test]
async fn drain_finishes_in_flight_http1_and_refuses_new_connections() {
    let upstream = slow_upstream(server::http1()).await;
    let proxy = proxy::new()
        .upstream("app", &upstream.server)
        .config(config("60s", "http1"))
        .run()
        .await;
    let url = proxy.url("/slow");
    let in_flight = tokio::spawn(async move { client::http1().get(&url).await });
    upstream
        .arrived
        .await
        .expect("the request reached the upstream");

    proxy.handle.begin_shutdown();
    assert_eq!(proxy.handle.phase(), Phase::Draining);
    proxy.handle.listeners_closed().await;
    let refused = TcpStream::connect(proxy.addr).await;
    assert!(
        refused.is_err(),
        "a new connection was accepted while draining"
    );

    let admin = proxy.admin_addr.unwrap();
    let ready = client::http1().get(&format!("http://{admin}/ready")).await;
    assert_eq!(
        (ready.status.as_u16(), ready.text().as_str()),
        (503, "draining\n")
    );

    upstream.release.send(()).unwrap();
    let response = in_flight.await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "finished");
    assert_eq!(
        response.header("connection"),
        Some("close"),
        "HTTP/1 clients are told to go"
    );
    assert_eq!(proxy.handle.wait().await, ShutdownOutcome::Drained);
    assert_eq!(proxy.handle.phase(), Phase::Stopped);
}

#[tokio::test]
async fn drain_finishes_in_flight_http2_streams() {
    let upstream = slow_upstream(server::http2()).await;
    let proxy = proxy::new()
        .upstream("app", &upstream.server)
        .config(config("60s", "http2"))
        .run()
        .await;
    let client = client::http2();
    let url = proxy.url("/slow");
    let in_flight = {
        let client = client.clone();
        tokio::spawn(async move { client.get(&url).await })
    };
    upstream
        .arrived
        .await
        .expect("the request reached the upstream");

    proxy.handle.begin_shutdown();
    proxy.handle.listeners_closed().await;
    upstream.release.send(()).unwrap();
    let response = in_flight.await.unwrap();
    assert_eq!(
        (response.status.as_u16(), response.text().as_str()),
        (200, "finished")
    );
    assert_eq!(proxy.handle.wait().await, ShutdownOutcome::Drained);

    // The connection got GOAWAY and the listener is gone: nothing new gets through.
    let request = Request::get(proxy.url("/slow"))
        .body(body::empty())
        .unwrap();
    assert!(client.request(request).await.is_err());
}

#[tokio::test]
async fn drain_timeout_closes_what_is_left() {
    // The upstream never answers: only the drain timeout can end this.
    let upstream = slow_upstream(server::http1()).await;
    let proxy = proxy::new()
        .upstream("app", &upstream.server)
        .config(config("100ms", "http1"))
        .run()
        .await;
    let request = Request::get(proxy.url("/slow"))
        .body(body::empty())
        .unwrap();
    let in_flight = tokio::spawn(async move { client::http1().request(request).await });
    upstream
        .arrived
        .await
        .expect("the request reached the upstream");

    let outcome = proxy.handle.shutdown().await;
    assert_eq!(outcome, ShutdownOutcome::TimedOut { abandoned: 1 });
    assert!(
        in_flight.await.unwrap().is_err(),
        "the abandoned request fails"
    );
    drop(upstream.release);
}

#[tokio::test]
async fn reload_swaps_the_config_for_new_requests() {
    let version = |body: &str| {
        format!(
            "virtual_hosts:\n  - name: all\n    domains: [\"*\"]\n    routes:\n      - direct_response: {{ status: 200, body: {body} }}\n"
        )
    };
    let proxy = proxy::new().config(version("one")).run().await;
    let client = client::http1();
    assert_eq!(client.get(&proxy.url("/")).await.text(), "one");

    let next = proxy::new().config(version("two")).load();
    proxy.handle.reload(Runtime::without_filters(next).unwrap());
    assert_eq!(client.get(&proxy.url("/")).await.text(), "two");
    assert_eq!(proxy.handle.runtime().config.virtual_hosts.len(), 1);
}

#[tokio::test]
async fn drain_waits_for_open_websockets() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let upstream = server::http1()
        .route("/ws", weir_tests::websocket::echo)
        .run()
        .await;
    let proxy = proxy::new()
        .upstream("app", &upstream)
        .config(config("60s", "http1"))
        .run()
        .await;
    let mut socket = weir_tests::websocket::connect(proxy.addr, "/ws").await;

    proxy.handle.begin_shutdown();
    proxy.handle.listeners_closed().await;
    // The tunnel outlives the start of the drain...
    socket.send(Message::text("still here")).await.unwrap();
    assert_eq!(
        socket.next().await.unwrap().unwrap(),
        Message::text("still here")
    );
    // ...and the drain ends when it does.
    socket.close(None).await.unwrap();
    while socket.next().await.is_some() {}
    drop(socket);
    assert_eq!(proxy.handle.wait().await, ShutdownOutcome::Drained);
}

#[tokio::test]
async fn serves_on_every_listener() {
    let proxy = proxy::new()
        .config(
            r#"
listeners:
  - { name: one, address: "127.0.0.1:0" }
  - { name: two, address: "127.0.0.1:0" }
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
      - direct_response: { status: 200, body: hi }
"#,
        )
        .run()
        .await;
    let addrs = proxy.handle.local_addrs().to_vec();
    assert_eq!(addrs.len(), 2);
    assert_ne!(addrs[0], addrs[1]);
    for addr in addrs {
        assert_eq!(
            client::http1().get(&format!("http://{addr}/")).await.text(),
            "hi"
        );
    }
}

#[tokio::test]
async fn a_taken_port_is_a_clear_start_error() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = taken.local_addr().unwrap();
    let config = proxy::new()
        .config(format!(
            "listeners:\n  - {{ name: public, address: \"{address}\" }}\n\
             virtual_hosts:\n  - name: all\n    domains: [\"*\"]\n    routes:\n      - direct_response: {{ status: 200 }}\n"
        ))
        .load();
    let err = weir_proxy::server::start(Runtime::without_filters(config).unwrap())
        .await
        .expect_err("the port is taken");
    let message = err.to_string();
    assert!(
        message.contains("public") && message.contains(&address.to_string()),
        "{message}"
    );
}
