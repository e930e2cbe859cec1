//! `weir run --workers N`: client connections are spread round-robin over
//! N single-threaded workers, and each worker keeps its own upstream
//! connections.

use std::net::SocketAddr;

use weir_tests::managed::managed_config;
use weir_tests::weir_bin::RunningWeir;
use weir_tests::{client, server};

/// `weir run` with `workers` workers, forwarding to `upstream`.
async fn start(workers: u16, upstream: SocketAddr) -> (RunningWeir, SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("weir.yaml");
    std::fs::write(
        &config,
        managed_config("  []\n", Some(&upstream.to_string())),
    )
    .unwrap();
    let (weir, address) = tokio::task::spawn_blocking(move || {
        let workers = workers.to_string();
        let mut weir = RunningWeir::start(&config, &[("TOKIO_WORKER_THREADS", &workers)], &[]);
        let listening = weir.wait_for("listening");
        let address: SocketAddr = listening["address"].as_str().unwrap().parse().unwrap();
        weir.drain_log();
        (weir, address)
    })
    .await
    .unwrap();
    (weir, address, dir)
}

/// Two requests on each of `connections` client connections, one connection
/// after the other. Exactly one TCP connection each: a spare connection
/// would take a worker's turn in the round-robin.
async fn requests_on_fresh_connections(address: SocketAddr, connections: usize) {
    for _ in 0..connections {
        let mut connection = client::http1_connection(address).await;
        for _ in 0..2 {
            let response = connection.get("/").await;
            assert_eq!(response.status, 200);
            assert_eq!(response.text(), "from upstream");
        }
    }
}

/// An upstream for both protocols (the cluster speaks the client's).
async fn upstream() -> server::Listening {
    server::auto()
        .fallback(|_| async { server::text(200, "from upstream") })
        .run()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_worker_serves_its_connections_with_its_own_upstream_pool() {
    let upstream = upstream().await;
    let (mut weir, address, _dir) = start(3, upstream.addr).await;

    // Connections 1, 2, 3 land on workers 0, 1, 2: each worker opens one
    // upstream connection and reuses it for the second request.
    requests_on_fresh_connections(address, 3).await;
    assert_eq!(upstream.requests(), 6);
    assert_eq!(
        upstream.connections(),
        3,
        "one upstream connection per worker"
    );

    // Connection 4 is worker 0's again: its idle upstream connection serves it.
    requests_on_fresh_connections(address, 1).await;
    assert_eq!(upstream.requests(), 8);
    assert_eq!(upstream.connections(), 3, "worker 0 reused its connection");

    // HTTP/2 clients are spread the same way; every stream is answered.
    let url = format!("http://{address}/");
    let mut streams = tokio::task::JoinSet::new();
    for _ in 0..3 {
        let client = client::http2();
        for _ in 0..20 {
            let (client, url) = (client.clone(), url.clone());
            streams.spawn(async move {
                let r = client.get(&url).await;
                (r.status, r.text())
            });
        }
    }
    while let Some(status) = streams.join_next().await {
        let (status, text) = status.unwrap();
        assert_eq!(status, 200, "{text}");
    }

    let status = tokio::task::spawn_blocking(move || weir.terminate())
        .await
        .unwrap();
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_worker_shares_one_upstream_pool() {
    let upstream = upstream().await;
    let (_weir, address, _dir) = start(1, upstream.addr).await;
    requests_on_fresh_connections(address, 3).await;
    assert_eq!(upstream.requests(), 6);
    assert_eq!(
        upstream.connections(),
        1,
        "every connection reused the same one"
    );
}
