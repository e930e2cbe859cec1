//! `wasm.max_instances` and `wasm.max_memory_mib` size the engine's address
//! space reservation. Under an address-space limit (`ulimit -v`, as in a
//! constrained container) the default sizing cannot start, the error says
//! which settings to lower, and a smaller sizing serves filtered traffic.

use std::net::SocketAddr;
use std::path::Path;

use weir_tests::managed::managed_config;
use weir_tests::weir_bin::{self, RunningWeir};
use weir_tests::{artifacts, client, server};

/// 8 GiB of address space: plenty for the proxy and a small engine, far
/// below the default engine's 2 TiB reservation.
const ADDRESS_LIMIT_KIB: u64 = 8 << 20;

/// The shared managed-proxy config (tests/src/managed.rs), forwarding to
/// `upstream` through the hello filter, with `engine` as extra lines under
/// `wasm:` (the engine sizing).
fn config(dir: &Path, upstream: SocketAddr, engine: &str) -> std::path::PathBuf {
    let path = dir.join("weir.yaml");
    let filters = format!(
        "  - name: hello\n    module: {}\n    config: {{ header: x-hello, value: sized }}\n",
        artifacts::HELLO_FILTER
    );
    let yaml = managed_config(&filters, Some(&upstream.to_string())).replacen(
        "wasm:\n",
        &format!("wasm:\n{engine}"),
        1,
    );
    std::fs::write(&path, yaml).unwrap();
    path
}

#[test]
fn the_default_engine_cannot_start_under_an_address_limit_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "127.0.0.1:9".parse().unwrap(), "");
    let output = weir_bin::command_with_address_limit(ADDRESS_LIMIT_KIB)
        .args(["run", "--no-watch", "--config"])
        .arg(&config)
        .output()
        .expect("run weir under ulimit -v");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "cannot create the WebAssembly engine with 4096 instance slots of up to 256 MiB \
             (wasm.max_instances, wasm.max_memory_mib)"
        ) && stderr.contains("lower them"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_engine_serves_filtered_traffic_under_an_address_limit() {
    let upstream = server::echo().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        upstream.addr,
        "  max_instances: 16\n  max_memory_mib: 32\n",
    );
    let (mut weir, address) = tokio::task::spawn_blocking(move || {
        let command = weir_bin::command_with_address_limit(ADDRESS_LIMIT_KIB);
        let mut weir = RunningWeir::spawn(command, &config);
        let listening = weir.wait_for("listening");
        let address: SocketAddr = listening["address"].as_str().unwrap().parse().unwrap();
        weir.drain_log();
        (weir, address)
    })
    .await
    .unwrap();

    let client = client::http1();
    for _ in 0..3 {
        let response = client.get(&format!("http://{address}/sized")).await;
        assert_eq!(response.status, 200);
        let seen: serde_json::Value = serde_json::from_str(&response.text()).unwrap();
        assert_eq!(seen["path"], "/sized");
        assert_eq!(seen["headers"]["x-hello"][0], "sized", "{seen}");
    }

    let status = tokio::task::spawn_blocking(move || weir.terminate())
        .await
        .unwrap();
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");
}
