//! The fault filter through the SDK's native test harness: loaded from JSON
//! exactly as the proxy configures it, phases driven on test requests.

use weir_filter_fault::Fault;
use weir_sdk::prelude::*;
use weir_sdk::testing::{self, Request, json};

fn load(config: serde_json::Value) -> testing::Loaded<Fault> {
    testing::load::<Fault>(config).unwrap()
}

fn summary(status: u16) -> Summary {
    Summary {
        status,
        ..Summary::default()
    }
}

#[test]
fn config_errors_are_rejected_at_load_naming_the_field() {
    let err = testing::load::<Fault>(json!({"abort": {"percentage": 150, "http_status": 503}}))
        .err()
        .unwrap();
    assert!(err.to_string().contains("abort.percentage"), "{err}");
    let err = testing::load::<Fault>(json!({"delay": {"percentage": 5, "duration": "soon"}}))
        .err()
        .unwrap();
    assert!(err.to_string().contains("delay.duration"), "{err}");
    let err = testing::load::<Fault>(
        json!({"abort": {"percentage": 1, "http_status": 503}, "bogus": true}),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("bogus"), "{err}");
}

#[test]
fn abort_answers_locally_and_counts() {
    let f = load(json!({"abort": {"percentage": 100, "http_status": 503}}));
    let action = f.request_headers(&mut Request::get("/")).unwrap();
    let Action::Respond(resp) = action else {
        panic!("{action:?}")
    };
    assert_eq!(resp.status, 503);
    assert_eq!(
        testing::metrics().counter("fault_aborts_total", &[("status", "503")]),
        1
    );
}

#[test]
fn grpc_abort_is_trailers_only_style() {
    let f = load(json!({"abort": {"percentage": 100, "http_status": 503, "grpc_status": 14}}));
    let mut req = Request::post("/pkg.Svc/Call").with_header("content-type", "application/grpc");
    let Action::Respond(resp) = f.request_headers(&mut req).unwrap() else {
        panic!()
    };
    assert_eq!(resp.status, 200);
    assert!(resp.headers.contains(&("grpc-status".into(), "14".into())));
    assert!(
        resp.headers
            .contains(&("content-type".into(), "application/grpc".into()))
    );
    assert!(resp.body.is_empty());
    assert_eq!(
        testing::metrics().counter("fault_aborts_total", &[("status", "grpc-14")]),
        1
    );
}

#[test]
fn delay_is_an_action_not_a_sleep() {
    let f = load(json!({"delay": {"percentage": 100, "duration": "1500ms"}}));
    assert_eq!(
        f.request_headers(&mut Request::get("/")).unwrap(),
        Action::Delay(1500)
    );
    assert_eq!(testing::metrics().counter("fault_delays_total", &[]), 1);
}

#[test]
fn percentages_within_five_sigma_with_seeded_random() {
    testing::seed_random(2024);
    let f = load(json!({"abort": {"percentage": 20, "http_status": 500}}));
    let n = 20_000u64;
    let aborts = (0..n)
        .filter(|_| {
            matches!(
                f.request_headers(&mut Request::get("/")).unwrap(),
                Action::Respond(_)
            )
        })
        .count() as f64;
    let (mean, sigma) = (n as f64 * 0.2, (n as f64 * 0.2 * 0.8).sqrt());
    assert!(
        (aborts - mean).abs() <= 5.0 * sigma,
        "{aborts} vs {mean} ± {}",
        5.0 * sigma
    );
}

#[test]
fn scope_limits_faults_to_matching_requests() {
    let f = load(json!({
        "abort": {"percentage": 100, "http_status": 503},
        "match": {"headers": [{"name": "x-user", "exact": "tester"}], "path_prefixes": ["/api/"]}
    }));
    assert_eq!(
        f.request_headers(&mut Request::get("/api/a")).unwrap(),
        Action::Continue
    );
    assert_eq!(
        f.request_headers(&mut Request::get("/web").with_header("x-user", "tester"))
            .unwrap(),
        Action::Continue
    );
    assert!(matches!(
        f.request_headers(&mut Request::get("/api/a").with_header("x-user", "tester"))
            .unwrap(),
        Action::Respond(_)
    ));
}

#[test]
fn header_controlled_faults_are_off_by_default() {
    let f = load(json!({"delay": {"percentage": 0, "duration": "1s"}}));
    let mut req = Request::get("/")
        .with_header("x-weir-fault-abort", "503")
        .with_header("x-weir-fault-delay", "100");
    assert_eq!(f.request_headers(&mut req).unwrap(), Action::Continue);

    let on = load(json!({"header_control": {"enabled": true}}));
    let mut req = Request::get("/").with_header("x-weir-fault-delay", "100");
    assert_eq!(on.request_headers(&mut req).unwrap(), Action::Delay(100));
    let mut req = Request::get("/").with_header("x-weir-fault-abort", "429");
    assert!(matches!(
        on.request_headers(&mut req).unwrap(),
        Action::Respond(LocalResponse { status: 429, .. })
    ));
}

#[test]
fn concurrency_cap_uses_the_shared_counter() {
    let f = load(json!({"delay": {"percentage": 100, "duration": "1s"}, "max_active": 2}));
    let mut r1 = Request::get("/");
    let mut r2 = Request::get("/");
    let mut r3 = Request::get("/");
    assert_eq!(f.request_headers(&mut r1).unwrap(), Action::Delay(1000));
    assert_eq!(f.request_headers(&mut r2).unwrap(), Action::Delay(1000));
    assert_eq!(
        f.request_headers(&mut r3).unwrap(),
        Action::Continue,
        "cap reached"
    );
    assert_eq!(
        testing::metrics().counter("fault_skipped_total", &[("reason", "max_active")]),
        1
    );
    assert_eq!(testing::kv()["weir.fault.active"].text(), Some("2"));

    f.done(&r3, &summary(200)); // not counted: no decrement
    assert_eq!(testing::kv()["weir.fault.active"].text(), Some("2"));
    f.done(&r1, &summary(200));
    assert_eq!(testing::kv()["weir.fault.active"].text(), Some("1"));
    let mut r4 = Request::get("/");
    assert_eq!(
        f.request_headers(&mut r4).unwrap(),
        Action::Delay(1000),
        "a slot is free again"
    );
    // Another instance (same process) shares the counter.
    let other = load(json!({"delay": {"percentage": 100, "duration": "1s"}, "max_active": 2}));
    assert_eq!(
        other.request_headers(&mut Request::get("/")).unwrap(),
        Action::Continue
    );
}
