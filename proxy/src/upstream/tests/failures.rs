//! Connect failures, ejection, DNS names, config errors, shutdown.

use super::*;
use crate::upstream::endpoint::EJECT_AFTER_FAILURES;

/// An address nothing listens on: bind a port, then drop the listener.
async fn refused_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test]
async fn refused_connection_is_a_connect_error() {
    let addr = refused_addr().await;
    let upstreams = upstreams(vec![cluster("down", &[addr.to_string()])]);
    let error = upstreams.send("down", get("/", "h")).await.unwrap_err();
    assert_eq!(error.kind(), UpstreamErrorKind::Connect);
    assert_eq!(error.endpoint(), Some(addr));
    assert!(error.retryable());
    assert!(
        error
            .to_string()
            .starts_with(&format!("cluster `down`: connect failed ({addr})")),
        "{error}"
    );
}

#[tokio::test]
async fn consecutive_failures_eject_until_no_endpoint_is_left() {
    let addr = refused_addr().await;
    let upstreams = upstreams(vec![cluster("down", &[addr.to_string()])]);
    for attempt in 1..=EJECT_AFTER_FAILURES {
        let error = upstreams.send("down", get("/", "h")).await.unwrap_err();
        assert_eq!(
            error.kind(),
            UpstreamErrorKind::Connect,
            "attempt {attempt}"
        );
    }
    assert!(!upstreams.status()[0].endpoints[0].healthy);
    let error = upstreams.send("down", get("/", "h")).await.unwrap_err();
    assert_eq!(error.kind(), UpstreamErrorKind::NoHealthyEndpoint);
    assert!(!error.retryable());
    assert_eq!(
        error.to_string(),
        "cluster `down`: no healthy endpoint: all 1 endpoints are ejected after connect failures"
    );
}

#[tokio::test]
async fn an_ejected_endpoint_is_skipped_while_others_serve() {
    let good = TestUpstream::start("good").await;
    let bad = refused_addr().await;
    let upstreams = upstreams(vec![cluster(
        "c",
        &[bad.to_string(), good.addr.to_string()],
    )]);
    let mut failures = 0;
    // Round robin alternates, so the bad endpoint fails every other request until ejected.
    for _ in 0..(2 * EJECT_AFTER_FAILURES) {
        match upstreams.send("c", get("/", "h")).await {
            Ok(response) => assert!(text(response).await.starts_with("id=good")),
            Err(error) => {
                assert_eq!(error.kind(), UpstreamErrorKind::Connect);
                failures += 1;
            }
        }
    }
    assert_eq!(failures, EJECT_AFTER_FAILURES);
    for _ in 0..10 {
        assert_eq!(send_id(&upstreams, "c", get("/", "h")).await, "good");
    }
}

#[tokio::test]
async fn host_names_are_resolved() {
    let server = TestUpstream::start("local").await;
    // localhost may also resolve to ::1; serve there too when the host has IPv6.
    let v6 = match TcpListener::bind(("::1", server.addr.port())).await {
        Ok(listener) => Some(TestUpstream::serve("local", listener)),
        Err(_) => None,
    };
    let upstreams = upstreams(vec![cluster(
        "named",
        &[format!("localhost:{}", server.addr.port())],
    )]);
    for _ in 0..4 {
        assert_eq!(send_id(&upstreams, "named", get("/", "h")).await, "local");
    }
    let endpoints: Vec<SocketAddr> = upstreams.status()[0]
        .endpoints
        .iter()
        .map(|e| e.address)
        .collect();
    assert!(endpoints.contains(&server.addr), "{endpoints:?}");
    drop(v6);
}

#[tokio::test]
async fn invalid_cluster_config_is_an_error() {
    let base = || cluster("c", &["127.0.0.1:80".to_string()]);
    let mut cases = Vec::new();
    cases.push((cluster("c", &[]), "clusters[0].endpoints: no endpoints"));
    cases.push((
        cluster("c", &["nohost".to_string()]),
        "clusters[0].endpoints[0]",
    ));
    let mut ring = base();
    ring.lb_policy = LbPolicy::RingHash;
    cases.push((ring.clone(), "ring_hash needs the header"));
    ring.hash_header = Some("bad header".into());
    cases.push((ring, "clusters[0].hash_header"));
    for (config, needle) in cases {
        let mut full: Config =
            serde_yaml_ng::from_str("listeners: [{address: '127.0.0.1:0'}]\nvirtual_hosts: []")
                .unwrap();
        full.clusters = vec![config];
        let error = Upstreams::new(&full).unwrap_err();
        assert_eq!(error.kind(), UpstreamErrorKind::InvalidConfig);
        assert!(
            error.to_string().contains(needle),
            "{error} (wanted {needle})"
        );
    }
    let mut duplicate: Config =
        serde_yaml_ng::from_str("listeners: [{address: '127.0.0.1:0'}]\nvirtual_hosts: []")
            .unwrap();
    duplicate.clusters = vec![base(), base()];
    assert!(
        Upstreams::new(&duplicate)
            .unwrap_err()
            .to_string()
            .contains("duplicate cluster name")
    );
}

#[test]
fn needs_a_runtime() {
    let config: Config =
        serde_yaml_ng::from_str("listeners: [{address: '127.0.0.1:0'}]\nvirtual_hosts: []")
            .unwrap();
    let error = Upstreams::new(&config).unwrap_err();
    assert!(error.to_string().contains("tokio runtime"), "{error}");
}

#[tokio::test]
async fn background_tasks_stop_when_dropped() {
    let server = TestUpstream::start("x").await;
    let upstreams = upstreams(vec![cluster(
        "named",
        &[format!("localhost:{}", server.addr.port())],
    )]);
    send_id(&upstreams, "named", get("/", "h")).await;
    let tasks = upstreams.tasks.clone();
    assert_eq!(tasks.len(), 2, "a DNS refresh and an idle sweep");
    assert!(tasks.iter().all(|t| !t.is_finished()));
    drop(upstreams);
    until("the background tasks end", || {
        tasks.iter().all(|t| t.is_finished())
    })
    .await;
}

/// An upstream that answers one request per connection and then closes it
/// without announcing `Connection: close`, as a server whose keep-alive
/// timeout ran out does. The pooled connection is dead; the next request
/// must still get through (on a new connection).
#[tokio::test]
async fn a_silently_closed_pooled_connection_is_not_an_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    let server = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await;
            // Dropping the stream closes the connection.
        }
    });
    let upstreams = upstreams(vec![cluster("flaky", &[addr.to_string()])]);
    for _ in 0..3 {
        let response = upstreams
            .send("flaky", get("/", "h"))
            .await
            .expect("sent despite the dead pooled connection");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"ok");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
    server.abort();
}
