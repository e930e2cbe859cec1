use serde_json::json;

use super::*;

struct Req {
    path: &'static str,
    headers: Vec<(&'static str, String)>,
}

impl Req {
    fn new(path: &'static str) -> Req {
        Req {
            path,
            headers: vec![],
        }
    }
    fn with(mut self, name: &'static str, value: &str) -> Req {
        self.headers.push((name, value.to_string()));
        self
    }
}

impl RequestFacts for Req {
    fn path(&self) -> String {
        self.path.into()
    }
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    }
}

/// SplitMix64: a small seeded generator, so the statistics are reproducible.
fn rng(mut state: u64) -> impl FnMut() -> u64 {
    move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn config(v: serde_json::Value) -> FaultConfig {
    serde_json::from_value::<FaultConfig>(v)
        .unwrap()
        .validate()
        .unwrap()
}

/// Assert `hits` out of `n` is within 5 standard deviations of `p`.
fn assert_rate(hits: u64, n: u64, p: f64) {
    let mean = n as f64 * p;
    let sigma = (n as f64 * p * (1.0 - p)).sqrt();
    assert!(
        (hits as f64 - mean).abs() <= 5.0 * sigma,
        "{hits} of {n}, expected {mean:.0} ± {:.0} (5σ)",
        5.0 * sigma
    );
}

#[test]
fn chance_edges() {
    assert!(!chance(0.0, 0));
    assert!(chance(100.0, u64::MAX));
    assert!(chance(0.0001, 0), "one in a million");
    assert!(!chance(0.0001, 1));
    assert!(chance(50.0, 499_999) && !chance(50.0, 500_000));
}

#[test]
fn abort_percentage_within_bounds() {
    let c = config(json!({"abort": {"percentage": 10, "http_status": 503}}));
    let mut r = rng(42);
    let n = 100_000;
    let hits = (0..n)
        .filter(|_| matches!(choose(&c, &Req::new("/"), &mut r), Some(Fault::Abort(_))))
        .count() as u64;
    assert_rate(hits, n, 0.10);
}

#[test]
fn delay_percentage_within_bounds() {
    let c = config(json!({"delay": {"percentage": 2.5, "duration": "150ms"}}));
    let mut r = rng(7);
    let n = 100_000;
    let mut hits = 0;
    for _ in 0..n {
        match choose(&c, &Req::new("/"), &mut r) {
            Some(Fault::Delay(ms)) => {
                assert_eq!(ms, 150);
                hits += 1;
            }
            Some(other) => panic!("{other:?}"),
            None => {}
        }
    }
    assert_rate(hits, n, 0.025);
}

#[test]
fn both_drawn_independently_abort_wins() {
    let c = config(
        json!({"abort": {"percentage": 50, "http_status": 500}, "delay": {"percentage": 50, "duration": "1s"}}),
    );
    let mut r = rng(1);
    let n = 40_000;
    let (mut aborts, mut delays) = (0, 0);
    for _ in 0..n {
        match choose(&c, &Req::new("/"), &mut r) {
            Some(Fault::Abort(_)) => aborts += 1,
            Some(Fault::Delay(_)) => delays += 1,
            None => {}
        }
    }
    assert_rate(aborts, n, 0.5);
    assert_rate(delays, n, 0.25);
}

#[test]
fn zero_and_hundred_percent() {
    let never = config(json!({"abort": {"percentage": 0, "http_status": 503}}));
    let always = config(json!({"abort": {"percentage": 100, "http_status": 503}}));
    let mut r = rng(3);
    for _ in 0..1000 {
        assert_eq!(choose(&never, &Req::new("/"), &mut r), None);
        assert!(choose(&always, &Req::new("/"), &mut r).is_some());
    }
}

#[test]
fn scope_by_header_and_path() {
    let c = config(json!({
        "abort": {"percentage": 100, "http_status": 503},
        "match": {"path_prefixes": ["/api/", "/v2/"], "headers": [{"name": "x-user", "exact": "tester"}, {"name": "x-chaos"}]}
    }));
    let mut r = rng(5);
    let tester = |path| Req::new(path).with("x-user", "tester").with("x-chaos", "");
    assert!(choose(&c, &tester("/api/x"), &mut r).is_some());
    assert!(choose(&c, &tester("/v2/x"), &mut r).is_some());
    assert!(
        choose(&c, &tester("/other"), &mut r).is_none(),
        "path out of scope"
    );
    assert!(
        choose(
            &c,
            &Req::new("/api/x")
                .with("x-user", "someone")
                .with("x-chaos", ""),
            &mut r
        )
        .is_none()
    );
    assert!(
        choose(&c, &Req::new("/api/x").with("x-user", "tester"), &mut r).is_none(),
        "x-chaos missing"
    );
}

#[test]
fn http_abort_reply() {
    let c = config(json!({"abort": {"percentage": 100, "http_status": 503}}));
    let Some(Fault::Abort(reply)) = choose(&c, &Req::new("/"), &mut rng(0)) else {
        panic!()
    };
    assert_eq!(reply.status, 503);
    assert_eq!(reply.label, "503");
    assert_eq!(reply.body, b"fault filter abort");
}

#[test]
fn grpc_abort_is_trailers_only_style() {
    let c = config(
        json!({"abort": {"percentage": 100, "http_status": 503, "grpc_status": 8, "grpc_message": "slow down 100%"}}),
    );
    let req = Req::new("/pkg.Svc/Call").with("content-type", "application/grpc+proto");
    let Some(Fault::Abort(reply)) = choose(&c, &req, &mut rng(0)) else {
        panic!()
    };
    assert_eq!(reply.status, 200);
    assert!(reply.body.is_empty());
    assert_eq!(
        reply.headers,
        vec![
            ("content-type".to_string(), "application/grpc".to_string()),
            ("grpc-status".into(), "8".into()),
            ("grpc-message".into(), "slow down 100%25".into()),
        ]
    );
    assert_eq!(reply.label, "grpc-8");
    // Without a configured code, the HTTP status maps.
    let c = config(json!({"abort": {"percentage": 100, "http_status": 503}}));
    let Some(Fault::Abort(reply)) = choose(&c, &req, &mut rng(0)) else {
        panic!()
    };
    assert!(reply.headers.contains(&("grpc-status".into(), "14".into())));
}

#[test]
fn grpc_code_mapping() {
    assert_eq!(
        [400, 401, 403, 404, 429, 502, 503, 504, 500].map(grpc_code_for_http),
        [13, 16, 7, 12, 14, 14, 14, 14, 2]
    );
}

#[test]
fn header_control_is_ignored_unless_enabled() {
    let c = config(json!({"delay": {"percentage": 0, "duration": "1s"}}));
    let req = Req::new("/")
        .with(ABORT_HEADER, "503")
        .with(DELAY_HEADER, "200");
    let mut r = rng(9);
    for _ in 0..100 {
        assert_eq!(choose(&c, &req, &mut r), None);
    }
}

#[test]
fn header_controlled_faults() {
    let c = config(json!({"header_control": {"enabled": true, "max_delay": "500ms"}}));
    let mut r = rng(11);
    let abort = Req::new("/").with(ABORT_HEADER, "418");
    assert!(matches!(
        choose(&c, &abort, &mut r),
        Some(Fault::Abort(Reply { status: 418, .. }))
    ));
    let delay = Req::new("/").with(DELAY_HEADER, "200");
    assert_eq!(choose(&c, &delay, &mut r), Some(Fault::Delay(200)));
    let capped = Req::new("/").with(DELAY_HEADER, "60000");
    assert_eq!(
        choose(&c, &capped, &mut r),
        Some(Fault::Delay(500)),
        "capped at max_delay"
    );
    let grpc = Req::new("/")
        .with("content-type", "application/grpc")
        .with(ABORT_GRPC_HEADER, "4");
    let Some(Fault::Abort(reply)) = choose(&c, &grpc, &mut r) else {
        panic!()
    };
    assert!(reply.headers.contains(&("grpc-status".into(), "4".into())));
    for junk in ["abc", "99", "700", ""] {
        assert_eq!(
            choose(&c, &Req::new("/").with(ABORT_HEADER, junk), &mut r),
            None,
            "{junk}"
        );
    }
    assert_eq!(
        choose(&c, &Req::new("/"), &mut r),
        None,
        "no header, no configured fault"
    );

    let n = 20_000;
    let hits = (0..n)
        .filter(|_| {
            choose(
                &c,
                &Req::new("/")
                    .with(ABORT_HEADER, "503")
                    .with(PERCENTAGE_HEADER, "20"),
                &mut r,
            )
            .is_some()
        })
        .count() as u64;
    assert_rate(hits, n, 0.2);
}

#[test]
fn header_faults_respect_scope() {
    let c = config(
        json!({"header_control": {"enabled": true}, "match": {"headers": [{"name": "x-user", "exact": "tester"}]}}),
    );
    let mut r = rng(13);
    assert_eq!(
        choose(&c, &Req::new("/").with(DELAY_HEADER, "100"), &mut r),
        None
    );
    assert_eq!(
        choose(
            &c,
            &Req::new("/")
                .with(DELAY_HEADER, "100")
                .with("x-user", "tester"),
            &mut r
        ),
        Some(Fault::Delay(100))
    );
}
