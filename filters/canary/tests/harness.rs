//! The canary filter through the SDK's native test harness.

use std::time::Duration;

use weir_filter_canary::Canary;
use weir_sdk::prelude::*;
use weir_sdk::testing::{self, Request, Response, json};

fn load(extra: serde_json::Value) -> testing::Loaded<Canary> {
    let mut config =
        json!({"stable": {"cluster": "v1"}, "canary": {"cluster": "v2", "weight": 10}});
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    testing::load::<Canary>(config).unwrap()
}

/// Run the request and response phases; returns (cluster, response).
fn exchange(f: &testing::Loaded<Canary>, req: &mut Request) -> (String, Response) {
    assert_eq!(f.request_headers(req).unwrap(), Action::Continue);
    let mut resp = Response::new(200);
    assert_eq!(
        f.response_headers(req, &mut resp).unwrap(),
        Action::Continue
    );
    (req.cluster().unwrap(), resp)
}

fn upstream(status: u16, cluster: &str) -> Summary {
    Summary {
        status,
        upstream_cluster: Some(cluster.into()),
        ..Summary::default()
    }
}

#[test]
fn config_errors_name_the_field() {
    let err = testing::load::<Canary>(
        json!({"stable": {"cluster": "a"}, "canary": {"cluster": "b", "weight": 200}}),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("canary.weight"), "{err}");
    let err = testing::load::<Canary>(json!({"stable": {"cluster": "a"}}))
        .err()
        .unwrap();
    assert!(err.to_string().contains("canary"), "{err}");
    let err = testing::load::<Canary>(json!({"stable": {"cluster": "a"}, "canary": {"cluster": "b"}, "ramp": {"steps": [{"after": "1m", "weight": 5}, {"after": "2m", "weight": 1}]}}))
        .err()
        .unwrap();
    assert!(err.to_string().contains("ramp.steps[1].weight"), "{err}");
}

#[test]
fn weighted_split_sets_cluster_and_variant_header() {
    testing::seed_random(7);
    let f = load(json!({}));
    let n = 10_000;
    let mut canary = 0;
    for _ in 0..n {
        let (cluster, resp) = exchange(&f, &mut Request::get("/"));
        let variant = resp.header("x-canary-variant").unwrap();
        assert_eq!(variant, if cluster == "v2" { "canary" } else { "stable" });
        canary += (cluster == "v2") as u32;
    }
    let (mean, sigma) = (n as f64 * 0.1, (n as f64 * 0.1 * 0.9).sqrt());
    assert!((canary as f64 - mean).abs() <= 5.0 * sigma, "{canary}");
    let m = testing::metrics();
    assert_eq!(
        m.counter(
            "canary_requests_total",
            &[("variant", "canary"), ("basis", "random")]
        ),
        canary as u64
    );
    assert_eq!(m.gauge("canary_weight_bp", &[]), Some(1000));
}

#[test]
fn sticky_users_keep_their_variant() {
    let f =
        load(json!({"sticky": {"header": "x-user-id"}, "canary": {"cluster": "v2", "weight": 50}}));
    for i in 0..200 {
        let user = format!("user-{i}");
        let (first, _) = exchange(&f, &mut Request::get("/").with_header("x-user-id", &user));
        for _ in 0..3 {
            let (again, _) = exchange(&f, &mut Request::get("/").with_header("x-user-id", &user));
            assert_eq!(again, first, "{user}");
        }
    }
}

#[test]
fn ramp_is_monotone_for_sticky_users() {
    testing::set_time(1_700_000_000_000);
    let f = load(json!({
        "sticky": {"header": "x-user-id"},
        "canary": {"cluster": "v2", "weight": 1},
        "ramp": {"steps": [{"after": "10m", "weight": 10}, {"after": "20m", "weight": 50}, {"after": "30m", "weight": 100}]}
    }));
    let users: Vec<String> = (0..500).map(|i| format!("u{i}")).collect();
    let mut on_canary = vec![false; users.len()];
    let mut counts = vec![];
    for _ in 0..4 {
        let mut count = 0;
        for (i, u) in users.iter().enumerate() {
            let (cluster, _) = exchange(&f, &mut Request::get("/").with_header("x-user-id", u));
            let now_canary = cluster == "v2";
            assert!(
                !on_canary[i] || now_canary,
                "{u} left the canary as the weight rose"
            );
            on_canary[i] = now_canary;
            count += now_canary as u32;
        }
        counts.push(count);
        testing::advance_time(Duration::from_secs(600));
    }
    assert_eq!(counts[3], 500, "100% at the last step");
    assert!(counts[0] < counts[1] && counts[1] < counts[2], "{counts:?}");
    // A second instance loaded later follows the same schedule (start time in KV).
    let late = load(json!({
        "sticky": {"header": "x-user-id"},
        "canary": {"cluster": "v2", "weight": 1},
        "ramp": {"steps": [{"after": "10m", "weight": 10}, {"after": "20m", "weight": 50}, {"after": "30m", "weight": 100}]}
    }));
    assert_eq!(
        exchange(&late, &mut Request::get("/").with_header("x-user-id", "u1")).0,
        "v2"
    );
}

#[test]
fn override_header_forces_a_variant() {
    let f = load(json!({"override": {}, "canary": {"cluster": "v2", "weight": 0}}));
    assert_eq!(
        exchange(&f, &mut Request::get("/").with_header("x-canary", "always")).0,
        "v2"
    );
    let all = load(json!({"override": {}, "canary": {"cluster": "v2", "weight": 100}}));
    assert_eq!(
        exchange(
            &all,
            &mut Request::get("/").with_header("x-canary", "never")
        )
        .0,
        "v1"
    );
    assert_eq!(
        testing::metrics().counter(
            "canary_requests_total",
            &[("variant", "canary"), ("basis", "override")]
        ),
        1
    );
}

#[test]
fn pin_cookie_pins_new_users() {
    testing::seed_random(3);
    let f =
        load(json!({"pin_cookie": {"max_age": "1h"}, "canary": {"cluster": "v2", "weight": 50}}));
    let (cluster, resp) = exchange(&f, &mut Request::get("/"));
    let cookie = resp.header("set-cookie").expect("new user gets a pin");
    let variant = if cluster == "v2" { "canary" } else { "stable" };
    assert!(
        cookie.starts_with(&format!("weir-canary={variant}; Path=/; Max-Age=3600")),
        "{cookie}"
    );
    for _ in 0..50 {
        let mut req = Request::get("/").with_header("cookie", &format!("weir-canary={variant}"));
        let (again, resp) = exchange(&f, &mut req);
        assert_eq!(again, cluster);
        assert_eq!(resp.header("set-cookie"), None, "already pinned");
    }
}

#[test]
fn canary_errors_roll_back_for_every_instance() {
    testing::set_time(1_700_000_000_000);
    let config = json!({"override": {}, "canary": {"cluster": "v2", "weight": 50}, "rollback": {"error_rate": 20, "min_requests": 10, "window": "1m"}});
    let f = load(config.clone());
    let other = load(config);
    // Healthy stable traffic and local answers do not count against the canary.
    for _ in 0..20 {
        let mut req = Request::get("/").with_header("x-canary", "never");
        exchange(&f, &mut req);
        f.done(&req, &upstream(500, "v1"));
        let mut req = Request::get("/").with_header("x-canary", "always");
        exchange(&f, &mut req);
        f.done(
            &req,
            &Summary {
                status: 503,
                local_response: true,
                ..Summary::default()
            },
        );
    }
    assert!(!testing::kv().contains_key("weir.canary.default.rollback"));
    // The canary fails: 3 of 10 are 5xx (30% > 20%).
    for i in 0..10 {
        let mut req = Request::get("/").with_header("x-canary", "always");
        exchange(&f, &mut req);
        f.done(&req, &upstream(if i < 3 { 503 } else { 200 }, "v2"));
    }
    assert!(testing::kv().contains_key("weir.canary.default.rollback"));
    assert_eq!(testing::metrics().counter("canary_rollbacks_total", &[]), 1);
    // Every instance now sends everyone to stable.
    for _ in 0..100 {
        let (cluster, resp) = exchange(&other, &mut Request::get("/"));
        assert_eq!(cluster, "v1");
        assert_eq!(resp.header("x-canary-variant").as_deref(), Some("stable"));
    }
    assert_eq!(testing::metrics().gauge("canary_weight_bp", &[]), Some(0));
}
