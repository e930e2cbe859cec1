//! The real `weir` binary end to end: `weir run` with its control API on a
//! unix socket, driven by `weir filter list/reload/rollback` and `weir status`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use weir_tests::artifacts::HEADER_ECHO;
use weir_tests::client;
use weir_tests::managed::with_custom_section;
use weir_tests::weir_bin;

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn weir(socket: &str, args: &[&str]) -> (i32, String, String) {
    let output = weir_bin::command()
        .args(["--control", socket])
        .args(args)
        .output()
        .expect("run weir");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[test]
fn weir_filter_commands_and_status_against_a_running_weir_run() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("control.sock");
    let socket = format!("unix:{}", socket_path.display());
    let config = dir.path().join("weir.yaml");
    std::fs::write(
        &config,
        format!(
            r#"listeners:
  - name: main
    address: 127.0.0.1:0
admin:
  enabled: false
control:
  address: "{socket}"
wasm:
  default_limits: {{ cpu_per_call: 2s }}
filters:
  - name: stamp
    module: {HEADER_ECHO}
    config: {{ response_headers: {{ x-stamp: "yes" }} }}
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
      - direct_response: {{ status: 200, body: "ok" }}
"#
        ),
    )
    .unwrap();
    let mut child = weir_bin::command()
        .args(["run", "--no-watch", "--config"])
        .arg(&config)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start weir run");
    let stderr = child.stderr.take().unwrap();
    let _running = Running(child);
    // Ready once it logs so (after the control API is listening).
    let mut lines = BufReader::new(stderr).lines();
    for line in lines.by_ref() {
        let line = line.expect("read weir's log");
        if line.contains("ready") {
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));

    let (code, out, err) = weir(&socket, &["--output", "json", "filter", "list"]);
    assert_eq!(code, 0, "{err}");
    let list = json(&out);
    let v1 = list[0]["version"]["sha256"].as_str().unwrap().to_owned();
    assert_eq!(list[0]["name"], "stamp");

    let v2 = dir.path().join("v2.wasm");
    std::fs::write(
        &v2,
        with_custom_section(&std::fs::read(HEADER_ECHO).unwrap(), "2"),
    )
    .unwrap();
    let (code, out, err) = weir(
        &socket,
        &["filter", "reload", "stamp", v2.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("stamp"), "{out}");

    let (code, out, err) = weir(&socket, &["--output", "json", "filter", "list"]);
    assert_eq!(code, 0, "{err}");
    let list = json(&out);
    assert_ne!(list[0]["version"]["sha256"], v1.as_str());
    assert_eq!(list[0]["previous"]["sha256"], v1.as_str());

    let (code, _, err) = weir(&socket, &["filter", "rollback", "stamp"]);
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = weir(&socket, &["--output", "json", "filter", "list"]);
    assert_eq!(json(&out)[0]["version"]["sha256"], v1.as_str());

    // A refused change: exit 1, the reason on stderr.
    let bad = dir.path().join("bad.wasm");
    std::fs::write(&bad, b"not wasm").unwrap();
    let (code, _, err) = weir(
        &socket,
        &["filter", "reload", "stamp", bad.to_str().unwrap()],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not a valid WebAssembly component"), "{err}");

    let (code, out, err) = weir(&socket, &["--output", "json", "status"]);
    assert_eq!(code, 0, "{err}");
    let status = json(&out);
    assert_eq!(status["listeners"][0]["name"], "main");
    assert_eq!(status["filters"][0]["version"]["sha256"], v1.as_str());
    assert_eq!(status["filters"][0]["counters"]["calls"], 0);
    // No cache_dir: everything was compiled.
    assert!(status["module_cache"]["compiled"].as_u64().unwrap() >= 2);
    assert_eq!(status["module_cache"]["cached"], 0);

    // Requests through the proxy show in the running version's counters.
    let proxy = status["listeners"][0]["address"]
        .as_str()
        .unwrap()
        .to_owned();
    let requests = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    requests.block_on(async {
        for _ in 0..3 {
            let response = client::http1().get(&format!("http://{proxy}/")).await;
            assert_eq!(response.header("x-stamp"), Some("yes"));
        }
    });
    let (code, out, err) = weir(&socket, &["--output", "json", "status"]);
    assert_eq!(code, 0, "{err}");
    let counters = &json(&out)["filters"][0]["counters"];
    assert_eq!(
        (
            &counters["calls"],
            &counters["traps"],
            &counters["failures"]
        ),
        (&3.into(), &0.into(), &0.into())
    );
    let (code, out, err) = weir(&socket, &["status"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("compiled, 0 loaded from the compiled-module cache\n"),
        "{out}"
    );
    let stamp_row = out.lines().find(|l| l.starts_with("stamp ")).unwrap();
    let cells: Vec<&str> = stamp_row.split_whitespace().collect();
    // FILTER VERSION LOADED CALLS TRAPS FAILURES ...
    assert_eq!(&cells[3..6], ["3", "0", "0"], "{out}");

    let (code, out, err) = weir(&socket, &["events", "--recent", "20"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("filter_rolled_back"), "{out}");
    assert!(out.contains("filter_load_failed"), "{out}");
}
