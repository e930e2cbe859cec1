//! Sending: protocols, host preservation, bodies, pooling, upgrades.

use super::*;

#[tokio::test]
async fn http1_send_keeps_the_clients_host() {
    let server = TestUpstream::start("a").await;
    let mut config = cluster("web", &addrs(&[&server]));
    config.protocol = UpstreamProtocol::Http1;
    let upstreams = upstreams(vec![config]);
    assert!(upstreams.contains("web"));
    assert!(!upstreams.contains("nope"));

    let body = text(
        upstreams
            .send("web", get("/x?y=1", "public.example:8080"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        body,
        "id=a version=HTTP/1.1 host=public.example:8080 target=/x?y=1"
    );

    // An HTTP/2 client's request (absolute URI, :authority) goes as HTTP/1.1 with Host.
    let body = text(
        upstreams
            .send("web", get_h2("http://h2.example/p"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body, "id=a version=HTTP/1.1 host=h2.example target=/p");
}

#[tokio::test]
async fn http2_send_carries_the_authority() {
    let server = TestUpstream::start("b").await;
    let mut config = cluster("grpc", &addrs(&[&server]));
    config.protocol = UpstreamProtocol::Http2;
    let upstreams = upstreams(vec![config]);

    let body = text(
        upstreams
            .send("grpc", get_h2("http://h2.example:8443/svc/M"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        body,
        "id=b version=HTTP/2.0 host=h2.example:8443 target=/svc/M"
    );
    // An HTTP/1.1 request's Host becomes the :authority.
    let body = text(
        upstreams
            .send("grpc", get("/a?b", "public.example"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        body,
        "id=b version=HTTP/2.0 host=public.example target=/a?b"
    );
}

#[tokio::test]
async fn auto_follows_the_request_version() {
    let server = TestUpstream::start("c").await;
    let upstreams = upstreams(vec![cluster("auto", &addrs(&[&server]))]);
    let h1 = text(upstreams.send("auto", get("/", "h")).await.unwrap()).await;
    assert!(h1.contains("version=HTTP/1.1"), "{h1}");
    let h2 = text(upstreams.send("auto", get_h2("http://h/")).await.unwrap()).await;
    assert!(h2.contains("version=HTTP/2.0"), "{h2}");
}

#[tokio::test]
async fn request_bodies_stream_upstream() {
    let server = TestUpstream::start("d").await;
    let mut h2 = cluster("h2", &addrs(&[&server]));
    h2.protocol = UpstreamProtocol::Http2;
    let upstreams = upstreams(vec![cluster("h1", &addrs(&[&server])), h2]);
    let payload = "x".repeat(100_000);
    for name in ["h1", "h2"] {
        let req = Request::builder()
            .method("POST")
            .uri("/echo")
            .header(HOST, "h")
            .body(body::full(payload.clone()))
            .unwrap();
        assert_eq!(
            text(upstreams.send(name, req).await.unwrap()).await,
            payload,
            "{name}"
        );
    }
}

#[tokio::test]
async fn http1_connections_are_reused() {
    let server = TestUpstream::start("e").await;
    let upstreams = upstreams(vec![cluster("web", &addrs(&[&server]))]);
    for i in 0..5 {
        let body = text(
            upstreams
                .send("web", get(&format!("/{i}"), "h"))
                .await
                .unwrap(),
        )
        .await;
        assert!(body.ends_with(&format!("target=/{i}")));
        until("the connection is back in the pool", || {
            idle_connections(&upstreams) == 1
        })
        .await;
    }
    assert_eq!(server.accepted(), 1);
}

#[tokio::test]
async fn without_pooling_every_request_connects() {
    let server = TestUpstream::start("f").await;
    let mut config = cluster("web", &addrs(&[&server]));
    config.pool_max_idle_per_endpoint = 0;
    let upstreams = upstreams(vec![config]);
    for _ in 0..3 {
        text(upstreams.send("web", get("/", "h")).await.unwrap()).await;
        assert_eq!(idle_connections(&upstreams), 0);
    }
    assert_eq!(server.accepted(), 3);
}

#[tokio::test]
async fn concurrent_http1_requests_use_separate_connections_then_pool_them() {
    let server = TestUpstream::start("g").await;
    let upstreams = upstreams(vec![cluster("web", &addrs(&[&server]))]);
    let (a, b) = tokio::join!(
        upstreams.send("web", get("/a", "h")),
        upstreams.send("web", get("/b", "h"))
    );
    text(a.unwrap()).await;
    text(b.unwrap()).await;
    assert_eq!(server.accepted(), 2);
    until("both connections are idle", || {
        idle_connections(&upstreams) == 2
    })
    .await;
    text(upstreams.send("web", get("/c", "h")).await.unwrap()).await;
    assert_eq!(server.accepted(), 2);
}

/// A burst larger than a small idle cap: every connection it opened is kept
/// and serves the next burst of the same size, none is closed and reopened.
#[tokio::test]
async fn a_burst_of_concurrent_requests_is_served_again_without_new_connections() {
    const BURST: usize = 160;
    let server = TestUpstream::start("burst").await;
    let upstreams = upstreams(vec![cluster("web", &addrs(&[&server]))]);
    let burst = || async {
        let sends = (0..BURST).map(|i| upstreams.send("web", get(&format!("/{i}"), "h")));
        for response in futures_util::future::join_all(sends).await {
            text(response.unwrap()).await;
        }
    };
    burst().await;
    assert_eq!(server.accepted(), BURST);
    until("every connection is idle", || {
        idle_connections(&upstreams) == BURST
    })
    .await;
    burst().await;
    assert_eq!(
        server.accepted(),
        BURST,
        "the second burst reused the first's connections"
    );
}

#[tokio::test]
async fn http2_requests_share_one_connection() {
    let server = TestUpstream::start("h").await;
    let mut config = cluster("h2", &addrs(&[&server]));
    config.protocol = UpstreamProtocol::Http2;
    let upstreams = upstreams(vec![config]);
    let sends = (0..8).map(|i| upstreams.send("h2", get_h2(&format!("http://h/{i}"))));
    for response in futures_util::future::join_all(sends).await {
        text(response.unwrap()).await;
    }
    text(
        upstreams
            .send("h2", get_h2("http://h/again"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(server.accepted(), 1);
}

#[tokio::test]
async fn upgrade_works_end_to_end_and_is_not_pooled() {
    let server = TestUpstream::start("u").await;
    let upstreams = upstreams(vec![cluster("ws", &addrs(&[&server]))]);
    let req = Request::builder()
        .uri("/upgrade")
        .header(HOST, "h")
        .header(CONNECTION, "upgrade")
        .header(UPGRADE, "weir-test")
        .body(body::empty())
        .unwrap();
    let mut response = upstreams.send("ws", req).await.unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    let mut io = TokioIo::new(
        hyper::upgrade::on(&mut response)
            .await
            .expect("client side upgrade"),
    );
    io.write_all(b"ping").await.unwrap();
    io.flush().await.unwrap();
    let mut answer = [0u8; 8];
    io.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"pongping");
    drop(io);

    assert_eq!(idle_connections(&upstreams), 0);
    text(upstreams.send("ws", get("/after", "h")).await.unwrap()).await;
    assert_eq!(
        server.accepted(),
        2,
        "the upgraded connection must not be reused"
    );
}

#[tokio::test]
async fn unknown_cluster() {
    let upstreams = upstreams(vec![]);
    let error = upstreams.send("missing", get("/", "h")).await.unwrap_err();
    assert_eq!(error.kind(), UpstreamErrorKind::UnknownCluster);
    assert_eq!(error.to_string(), "cluster `missing`: unknown cluster");
    assert!(upstreams.status().is_empty());
}

/// The pipeline spawns `send` and shares `Upstreams` between tasks.
#[test]
fn upstreams_and_send_are_thread_safe() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<Upstreams>();
    send_sync::<UpstreamError>();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let upstreams = runtime.block_on(async { upstreams(vec![]) });
    send(&upstreams.send("c", get("/", "h")));
}
