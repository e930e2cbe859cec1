//! File watching (what `weir run` does by default): a filter's module file
//! overwritten on disk, or replaced by a rename, is served after the
//! debounce; a changed config file applies its new routes; a bad module
//! written to disk keeps the running version serving and is reported as an
//! event. Each change is awaited as its event (bounded by a deadline), then
//! observed through responses, polled until they show it; never by sleeping.

use std::path::Path;
use std::time::Duration;

use tokio::sync::broadcast;
use weir_proxy::control::{ControlPlane, Event, EventKind};
use weir_tests::artifacts::{GUEST_STATE, TRAP};
use weir_tests::client;
use weir_tests::managed::{Managed, eventually};

/// Long enough for a debug build on a loaded machine to notice, debounce,
/// compile and swap; the changes normally show within a second.
const DEADLINE: Duration = Duration::from_secs(60);

/// `module` is the filter `f`'s module file; `extra_route` adds `/new`.
fn config(module: &Path, extra_route: bool) -> String {
    let extra = if extra_route {
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
wasm:
  # Generous: debug builds on a busy CI machine; this test is not about CPU limits.
  default_limits: {{ cpu_per_call: 2s }}
filters:
  - name: f
    module: {module}
    config: {{}}
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
{extra}      - direct_response: {{ status: 200, body: "ok" }}
"#,
        module = module.display()
    )
}

/// Which module answered: guest-state sets `x-guest-calls`, trap (on
/// other paths) sets `x-trap: passed`. Both accept the config `{}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Served {
    GuestState,
    Trap,
}

async fn served_by(base: &str) -> Served {
    let response = client::http1().get(&format!("{base}/x")).await;
    assert_eq!(response.status, 200, "{}", response.text());
    match (response.header("x-guest-calls"), response.header("x-trap")) {
        (Some(_), None) => Served::GuestState,
        (None, Some("passed")) => Served::Trap,
        other => panic!("a response from neither module (or both): {other:?}"),
    }
}

async fn wait_until_served_by(proxy: &Managed, want: Served) {
    eventually(&format!("{want:?} serving"), DEADLINE, || async {
        (served_by(&proxy.base).await == want).then_some(())
    })
    .await;
}

/// The next event of `kind`, skipping others; panics after [`DEADLINE`].
async fn next_event(events: &mut broadcast::Receiver<Event>, kind: EventKind) -> Event {
    let wait = async {
        loop {
            let event = events.recv().await.expect("the event bus is open");
            if event.kind == kind {
                return event;
            }
        }
    };
    tokio::time::timeout(DEADLINE, wait)
        .await
        .unwrap_or_else(|_| panic!("no {kind:?} event within {DEADLINE:?}"))
}

/// Writes `bytes` to `path` the way editors and deploy tools do: into a
/// temporary file in the same directory, then renamed over `path`.
fn replace_by_rename(path: &Path, bytes: &[u8]) {
    let temp = path.with_extension("wasm.tmp");
    std::fs::write(&temp, bytes).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

#[tokio::test]
async fn an_overwritten_module_file_is_served_after_the_change() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("f.wasm");
    std::fs::copy(GUEST_STATE, &module).unwrap();
    let proxy = Managed::start(dir.path(), &config(&module, false), None).await;
    let _watcher = proxy.watch().await;
    let mut events = proxy.manager.events();
    assert_eq!(served_by(&proxy.base).await, Served::GuestState);
    let v1 = proxy.manager.list_filters().await.unwrap()[0]
        .version
        .clone();

    // Overwritten in place.
    std::fs::write(&module, std::fs::read(TRAP).unwrap()).unwrap();
    let reloaded = next_event(&mut events, EventKind::FilterReloaded).await;
    assert_eq!(reloaded.filter.as_deref(), Some("f"));
    wait_until_served_by(&proxy, Served::Trap).await;
    let info = proxy.manager.list_filters().await.unwrap().remove(0);
    assert_ne!(info.version.sha256, v1.sha256);
    assert_eq!(info.previous.map(|p| p.sha256), Some(v1.sha256.clone()));
    assert_eq!(info.module, module.display().to_string());

    // Replaced by a rename.
    replace_by_rename(&module, &std::fs::read(GUEST_STATE).unwrap());
    next_event(&mut events, EventKind::FilterReloaded).await;
    wait_until_served_by(&proxy, Served::GuestState).await;
    let info = proxy.manager.list_filters().await.unwrap().remove(0);
    assert_eq!(info.version.sha256, v1.sha256);
}

#[tokio::test]
async fn a_changed_config_file_applies_a_new_route() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("f.wasm");
    std::fs::copy(GUEST_STATE, &module).unwrap();
    let proxy = Managed::start(dir.path(), &config(&module, false), None).await;
    let _watcher = proxy.watch().await;
    let mut events = proxy.manager.events();
    let url = format!("{}/new", proxy.base);
    let before = client::http1().get(&url).await;
    assert_eq!(before.text(), "ok", "no /new route yet");

    std::fs::write(&proxy.config_path, config(&module, true)).unwrap();
    let applied = next_event(&mut events, EventKind::ConfigApplied).await;
    assert!(applied.message.contains("1 changes"), "{}", applied.message);
    eventually("the new route", DEADLINE, || async {
        let response = client::http1().get(&url).await;
        assert_eq!(response.status, 200, "{}", response.text());
        (response.text() == "new route").then_some(())
    })
    .await;
    // The filter did not change: same version, still serving.
    assert_eq!(served_by(&proxy.base).await, Served::GuestState);
    assert_eq!(
        proxy.manager.list_filters().await.unwrap()[0].previous,
        None
    );
}

#[tokio::test]
async fn a_bad_module_written_to_disk_keeps_the_running_version_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("f.wasm");
    std::fs::copy(GUEST_STATE, &module).unwrap();
    let proxy = Managed::start(dir.path(), &config(&module, false), None).await;
    let _watcher = proxy.watch().await;
    let mut events = proxy.manager.events();
    let v1 = proxy.manager.list_filters().await.unwrap()[0]
        .version
        .clone();

    std::fs::write(&module, b"\0asm but not a component").unwrap();
    let rejected = next_event(&mut events, EventKind::ConfigRejected).await;
    assert!(
        rejected
            .message
            .contains("not a valid WebAssembly component")
            && rejected.message.contains("`f`"),
        "the event says which filter and why: {}",
        rejected.message
    );
    assert_eq!(served_by(&proxy.base).await, Served::GuestState);
    assert_eq!(
        proxy.manager.list_filters().await.unwrap()[0].version,
        v1,
        "the running version is unchanged"
    );

    // Fixing the file on disk is picked up too.
    std::fs::write(&module, std::fs::read(TRAP).unwrap()).unwrap();
    next_event(&mut events, EventKind::FilterReloaded).await;
    wait_until_served_by(&proxy, Served::Trap).await;
}
