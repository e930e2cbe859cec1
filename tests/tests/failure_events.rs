//! Filter failures while handling requests reach `WatchEvents` through the
//! real wiring (manager → runtime failure sink → event bus → tonic server →
//! client), with phase, kind, mode, reason, and the rate limit's
//! `suppressed` counts adding up to the number of failures; `weir events`
//! shows them.

use std::time::Duration;

use futures_util::{Stream, StreamExt};
use weir_proxy::control::client::ClientError;
use weir_proxy::control::{Event, EventKind};
use weir_tests::artifacts::TRAP;
use weir_tests::client;
use weir_tests::managed::Managed;
use weir_tests::weir_bin;

/// A bound on waiting for a streamed event. Failure events are published at
/// once, or when a rate-limit window (1 s) closes.
const DEADLINE: Duration = Duration::from_secs(60);

/// `trapper` fails closed on `/trap/...`; `lenient` fails open on `/lenient/...`.
fn config() -> String {
    format!(
        r#"listeners:
  - name: main
    address: 127.0.0.1:0
admin:
  enabled: false
control:
  enabled: false
wasm:
  default_limits: {{ cpu_per_call: 2s }}
filters:
  - name: trapper
    module: {TRAP}
  - name: lenient
    module: {TRAP}
    config: {{ prefix: /lenient }}
    failure_mode: fail_open
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
      - direct_response: {{ status: 200, body: "ok" }}
"#
    )
}

/// The next filter failure event on `stream` (other events are skipped).
async fn next_failure(
    stream: &mut (impl Stream<Item = Result<Event, ClientError>> + Unpin),
) -> Event {
    let wait = async {
        loop {
            let event = stream
                .next()
                .await
                .expect("the stream stays open")
                .expect("an event, not an error");
            if matches!(
                event.kind,
                EventKind::FilterTrapped | EventKind::FilterFailed
            ) {
                return event;
            }
        }
    };
    tokio::time::timeout(DEADLINE, wait)
        .await
        .expect("a failure event within the deadline")
}

#[tokio::test]
async fn a_trap_and_a_fail_open_error_are_streamed_with_their_details() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = Managed::start(dir.path(), &config(), None).await;
    let control = proxy.serve_control_on_loopback().await;
    let mut events = control
        .client(None)
        .await
        .watch_events(true, 0)
        .await
        .unwrap();
    let http = client::http1();

    let trapped = http.get(&format!("{}/trap/unreachable", proxy.base)).await;
    assert_eq!(trapped.status, 503, "{}", trapped.text());
    let event = next_failure(&mut events).await;
    assert_eq!(
        (event.kind, event.filter.as_deref()),
        (EventKind::FilterTrapped, Some("trapper"))
    );
    let failure = event.failure.clone().expect("failure details");
    assert_eq!(
        (
            failure.phase.as_str(),
            failure.kind.as_str(),
            failure.mode.as_str(),
            failure.suppressed
        ),
        ("request_headers", "trap", "fail_closed", 0)
    );
    assert!(
        failure.reason.starts_with("trapped: ") && failure.reason.contains("unreachable"),
        "the reason names the trap: {}",
        failure.reason
    );
    assert!(
        event.message.contains(&failure.reason) && event.message.contains("answered 503"),
        "{}",
        event.message
    );

    let skipped = http.get(&format!("{}/lenient/error", proxy.base)).await;
    assert_eq!(skipped.status, 200, "fail_open skips the filter");
    let event = next_failure(&mut events).await;
    assert_eq!(
        (event.kind, event.filter.as_deref()),
        (EventKind::FilterFailed, Some("lenient"))
    );
    let failure = event.failure.expect("failure details");
    assert_eq!(
        (failure.kind.as_str(), failure.mode.as_str()),
        ("error", "fail_open")
    );
    assert!(
        failure.reason.starts_with("returned an error"),
        "{}",
        failure.reason
    );

    // The CLI shows both, one human-readable line each.
    let address = control.address().to_string();
    let output = tokio::task::spawn_blocking(move || {
        weir_bin::command()
            .args(["--control", &address, "events", "--recent", "20"])
            .env_remove("WEIR_CONTROL_TOKEN")
            .env_remove("WEIR_CONTROL_TOKEN_FILE")
            .output()
            .expect("run weir events")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let trapped_line = stdout
        .lines()
        .find(|l| l.contains("filter_trapped"))
        .unwrap_or_else(|| panic!("no filter_trapped line in:\n{stdout}"));
    assert!(
        trapped_line.contains("trapper")
            && trapped_line.contains("request_headers: trapped: ")
            && trapped_line.contains("fail_closed: answered 503"),
        "{trapped_line}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("filter_failed") && l.contains("lenient")),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_trap_storm_is_rate_limited_and_the_suppressed_counts_add_up() {
    const REQUESTS: u64 = 40;
    let dir = tempfile::tempdir().unwrap();
    let proxy = Managed::start(dir.path(), &config(), None).await;
    let control = proxy.serve_control_on_loopback().await;
    let mut events = control
        .client(None)
        .await
        .watch_events(true, 0)
        .await
        .unwrap();
    let http = client::http1();

    let started = std::time::Instant::now();
    for _ in 0..REQUESTS {
        let response = http.get(&format!("{}/trap/panic", proxy.base)).await;
        assert_eq!(response.status, 503, "{}", response.text());
    }
    let storm_secs = started.elapsed().as_secs();

    // Every failure is accounted for: published, or counted in the
    // `suppressed` of a later event (the last ones when their window closes).
    let mut received = Vec::new();
    let mut accounted = 0;
    while accounted < REQUESTS {
        let event = next_failure(&mut events).await;
        assert_eq!(
            (event.kind, event.filter.as_deref()),
            (EventKind::FilterTrapped, Some("trapper"))
        );
        let failure = event.failure.clone().expect("failure details");
        assert_eq!(
            (failure.kind.as_str(), failure.phase.as_str()),
            ("trap", "request_headers")
        );
        accounted += 1 + failure.suppressed;
        received.push(event);
    }
    assert_eq!(accounted, REQUESTS, "no failure is counted twice");
    assert_eq!(
        received[0].failure.as_ref().unwrap().suppressed,
        0,
        "the first failure is published at once"
    );
    // One event per filter and kind per second, plus the one that closes a
    // window: the bound follows from the storm's own duration, not a guess.
    assert!(
        received.len() as u64 <= 2 * (storm_secs + 2),
        "{} events for {REQUESTS} traps in {storm_secs} s",
        received.len()
    );
    if storm_secs >= REQUESTS {
        // Under one failure per second nothing needs suppressing.
        return;
    }
    let summed = received
        .iter()
        .find(|e| e.failure.as_ref().unwrap().suppressed > 0)
        .expect("some event carries a suppressed count");
    assert!(
        summed.message.contains("more suppressed"),
        "{}",
        summed.message
    );
}
