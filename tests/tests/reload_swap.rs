//! Hot swaps under load: whole runtimes swapped atomically while HTTP/1.1
//! and HTTP/2 clients keep sending; nothing fails, nothing mixes, and the
//! clients of both protocols see every version.
//!
//! Two kinds of swap: a new configuration for the same module (ApplyConfig),
//! and a new module build for the same filter (ReloadFilter of a module path,
//! alternating the `versioned-v1` and `versioned-v2` components).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Barrier, watch};
use weir_proxy::control::{ControlPlane, ModuleSource};
use weir_tests::artifacts::{HEADER_ECHO, VERSIONED_V1, VERSIONED_V2};
use weir_tests::client::{self, Client, TestResponse};
use weir_tests::managed::{Managed, managed_config};
use weir_tests::server;

/// How many swaps each test makes, alternating the two versions.
const SWAPS: usize = 50;
/// Load clients per protocol, each with its own keep-alive connection.
const CLIENTS_PER_PROTOCOL: usize = 3;
/// A guard against a hang (a swap the load never sees), not a timing check.
const HANG_GUARD: Duration = Duration::from_secs(60);

const HTTP1: &str = "HTTP/1.1";
const HTTP2: &str = "HTTP/2";

/// Two filters that both stamp `version` on the response: a response that
/// mixed two generations would carry two different values.
fn config(upstream: &str, version: &str) -> String {
    let filters = format!(
        r#"  - name: a
    module: {HEADER_ECHO}
    config: {{ response_headers: {{ x-ver-a: "{version}" }} }}
  - name: b
    module: {HEADER_ECHO}
    config: {{ response_headers: {{ x-ver-b: "{version}" }} }}
"#
    );
    managed_config(&filters, Some(upstream))
}

/// The version a response of the [`config`] chain shows; panics on a mix.
fn config_version(response: &TestResponse) -> String {
    let a = response.header("x-ver-a").expect("filter a ran");
    let b = response.header("x-ver-b").expect("filter b ran");
    assert_eq!(a, b, "one response saw two generations of the chain");
    a.to_owned()
}

/// Responses the load clients got, by (protocol, version).
type Counts = BTreeMap<(&'static str, String), u64>;

/// Load clients that check every response with `version_of` until `stop`.
struct Load {
    counts: watch::Sender<Counts>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Starts the clients on `base`; returns once each has had a response.
    async fn start(base: &str, version_of: fn(&TestResponse) -> String) -> Load {
        let counts = watch::Sender::new(Counts::new());
        let stop = Arc::new(AtomicBool::new(false));
        let start = Arc::new(Barrier::new(CLIENTS_PER_PROTOCOL * 2 + 1));
        let mut tasks = Vec::new();
        for i in 0..CLIENTS_PER_PROTOCOL * 2 {
            let (protocol, client) = if i % 2 == 0 {
                (HTTP1, client::http1())
            } else {
                (HTTP2, client::http2())
            };
            tasks.push(tokio::spawn(load(
                protocol,
                client,
                format!("{base}/load/{i}"),
                version_of,
                counts.clone(),
                start.clone(),
                stop.clone(),
            )));
        }
        start.wait().await;
        Load {
            counts,
            stop,
            tasks,
        }
    }

    fn count(&self, protocol: &'static str, version: &str) -> u64 {
        let counts = self.counts.borrow();
        counts
            .get(&(protocol, version.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// Waits until clients of both protocols got another response showing
    /// `version` than they had when `before` was taken (see [`Self::before`]).
    async fn wait_for_more(&self, version: &str, before: (u64, u64)) {
        let mut counts = self.counts.subscribe();
        let more = counts.wait_for(|counts| {
            let of = |protocol| {
                counts
                    .get(&(protocol, version.to_owned()))
                    .copied()
                    .unwrap_or(0)
            };
            of(HTTP1) > before.0 && of(HTTP2) > before.1
        });
        tokio::time::timeout(HANG_GUARD, more)
            .await
            .unwrap_or_else(|_| panic!("the load clients never saw {version}"))
            .expect("the counts are kept");
    }

    /// The counts of `version` now, per protocol, for [`Self::wait_for_more`].
    fn before(&self, version: &str) -> (u64, u64) {
        (self.count(HTTP1, version), self.count(HTTP2, version))
    }

    /// Stops the clients; every request they sent succeeded. Returns the
    /// versions each protocol saw.
    async fn finish(self) -> BTreeMap<&'static str, BTreeSet<String>> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.expect("a load client failed");
        }
        let mut seen: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
        for (protocol, version) in self.counts.borrow().keys() {
            seen.entry(protocol).or_default().insert(version.clone());
        }
        seen
    }
}

/// Sends until `stop`, checking every response (a failed request panics).
async fn load(
    protocol: &'static str,
    client: Client,
    url: String,
    version_of: fn(&TestResponse) -> String,
    counts: watch::Sender<Counts>,
    start: Arc<Barrier>,
    stop: Arc<AtomicBool>,
) {
    let mut first = true;
    loop {
        let response = client.get(&url).await;
        assert_eq!(response.status, 200, "{protocol}: {}", response.text());
        let version = version_of(&response);
        counts.send_modify(|counts| *counts.entry((protocol, version)).or_default() += 1);
        if first {
            first = false;
            start.wait().await;
        }
        if stop.load(Ordering::Relaxed) {
            return;
        }
    }
}

/// Both protocols saw exactly the versions `expected`.
fn assert_saw(seen: &BTreeMap<&'static str, BTreeSet<String>>, expected: &[&str]) {
    let expected: BTreeSet<String> = expected.iter().map(|v| v.to_string()).collect();
    for protocol in [HTTP1, HTTP2] {
        assert_eq!(seen.get(protocol), Some(&expected), "{protocol}: {seen:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_swaps_under_http1_and_http2_load_drop_nothing_and_never_mix() {
    let upstream = server::auto()
        .fallback(|_| async { server::text(200, "ok") })
        .run()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let up = upstream.addr.to_string();
    let proxy = Managed::start(dir.path(), &config(&up, "v1"), None).await;
    let load = Load::start(&proxy.base, config_version).await;

    let check = client::http1();
    for swap in 0..SWAPS {
        let version = if swap % 2 == 0 { "v2" } else { "v1" };
        let before = load.before(version);
        let summary = proxy
            .apply(&config(&up, version))
            .await
            .expect("swap applies");
        assert_eq!(summary.changes.len(), 2, "{summary:?}");
        // New requests use the new generation as soon as apply returns.
        let response = check.get(&format!("{}/check", proxy.base)).await;
        assert_eq!(config_version(&response), version);
        // The load reaches the new generation before the next swap.
        load.wait_for_more(version, before).await;
    }

    assert_saw(&load.finish().await, &["v1", "v2"]);
    proxy.manager.server().shutdown().await;
}

/// `stamp` (a `versioned-vN` build) then `echo`, which always stamps `x-echo`.
fn module_config(upstream: &str) -> String {
    let filters = format!(
        r#"  - name: stamp
    module: {VERSIONED_V1}
  - name: echo
    module: {HEADER_ECHO}
    config: {{ response_headers: {{ x-echo: "ran" }} }}
"#
    );
    managed_config(&filters, Some(upstream))
}

/// The module version a response of the [`module_config`] chain shows: the
/// version that ran the request phase, the one the upstream was sent by and
/// the one that ran the response phase must all be the same.
fn module_version(response: &TestResponse) -> String {
    assert_eq!(
        response.header("x-echo"),
        Some("ran"),
        "the whole chain ran"
    );
    let response_phase = response
        .header("x-filter-version")
        .expect("stamp's response phase ran");
    let request_phase = response
        .header("x-filter-version-request")
        .expect("stamp's request phase ran");
    let upstream_saw = response
        .header("x-upstream-saw")
        .expect("the upstream echoes the version it was sent");
    assert_eq!(
        (request_phase, upstream_saw),
        (response_phase, response_phase),
        "one exchange ran two versions of the module"
    );
    response_phase.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_module_reloads_under_http1_and_http2_load_drop_nothing_and_never_mix() {
    // The upstream sends back the version the request phase stamped.
    let upstream = server::auto()
        .fallback(|request| async move {
            let saw = request
                .headers()
                .get("x-filter-version")
                .cloned()
                .unwrap_or_else(|| "none".parse().unwrap());
            let mut response = server::text(200, "ok");
            response.headers_mut().insert("x-upstream-saw", saw);
            response
        })
        .run()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let proxy = Managed::start(dir.path(), &module_config(&upstream.addr.to_string()), None).await;
    let modules = [("v1", VERSIONED_V1), ("v2", VERSIONED_V2)];
    assert_ne!(
        std::fs::read(VERSIONED_V1).unwrap(),
        std::fs::read(VERSIONED_V2).unwrap(),
        "two distinct module builds"
    );
    let first = client::http1().get(&format!("{}/first", proxy.base)).await;
    assert_eq!(module_version(&first), "v1");
    let load = Load::start(&proxy.base, module_version).await;

    let check = client::http1();
    let filters = proxy.manager.list_filters().await.unwrap();
    let stamp = filters.iter().find(|f| f.name == "stamp").expect("stamp");
    let mut running = stamp.version.sha256.clone();
    let mut shas = BTreeMap::from([("v1", running.clone())]);
    for swap in 0..SWAPS {
        let (version, path) = modules[(swap + 1) % 2];
        let before = load.before(version);
        let info = proxy
            .manager
            .reload_filter(
                "stamp".into(),
                Some(ModuleSource::Path(PathBuf::from(path))),
            )
            .await
            .expect("the reload applies");
        // Each build is one version, and each reload replaced the other.
        let sha = shas
            .entry(version)
            .or_insert_with(|| info.version.sha256.clone());
        assert_eq!(&info.version.sha256, sha, "{version}");
        assert_eq!(info.previous.map(|p| p.sha256), Some(running), "{version}");
        running = info.version.sha256.clone();
        // New requests use the new module as soon as the reload returns.
        let response = check.get(&format!("{}/check", proxy.base)).await;
        assert_eq!(module_version(&response), version);
        // The load reaches the new module before the next swap.
        load.wait_for_more(version, before).await;
    }
    assert_ne!(shas["v1"], shas["v2"]);

    assert_saw(&load.finish().await, &["v1", "v2"]);
    proxy.manager.server().shutdown().await;
}
