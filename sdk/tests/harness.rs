//! The SDK as a filter author uses it: configure, hooks, host services and
//! the test harness itself.

use std::time::{Duration, UNIX_EPOCH};

use weir_sdk::http::{self, CalloutError, IncomingResponse, OutgoingRequest};
use weir_sdk::log::Level;
use weir_sdk::prelude::*;
use weir_sdk::testing::{self, json};
use weir_sdk::{FilterInfo, Phases, kv, metrics, random, time};

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsConfig {
    limit: u32,
    #[serde(default)]
    #[allow(dead_code)]
    nested: Option<Nested>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Nested {
    #[allow(dead_code)]
    names: Vec<String>,
}

/// Implements only the request body hook, buffered.
struct BodyOnly {
    limit: u32,
}

#[weir_sdk::filter]
impl Filter for BodyOnly {
    type Config = LimitsConfig;

    fn new(config: LimitsConfig) -> Result<Self> {
        if config.limit == 0 {
            return Err(Error::config("`limit` must be positive"));
        }
        Ok(BodyOnly {
            limit: config.limit,
        })
    }

    fn request_body_mode(&self) -> BodyMode {
        BodyMode::Buffer(self.limit)
    }

    fn on_request_body(&self, _req: &mut Request, body: &mut Body, _eos: bool) -> Result<Action> {
        if body.text()?.contains("forbidden") {
            return Ok(Action::respond(403, "no"));
        }
        body.replace(body.text()?.replace('a', "4"));
        Ok(Action::Continue)
    }
}

/// Implements no hook at all, and takes no configuration.
struct Nothing;

#[weir_sdk::filter]
impl Filter for Nothing {
    type Config = weir_sdk::NoConfig;

    fn new(_: weir_sdk::NoConfig) -> Result<Self> {
        Ok(Nothing)
    }
}

/// Streams the response body, answering on a marker chunk.
struct Streamer;

#[weir_sdk::filter]
impl weir_sdk::Filter for Streamer {
    type Config = weir_sdk::NoConfig;

    fn new(_: weir_sdk::NoConfig) -> Result<Self> {
        Ok(Streamer)
    }

    fn on_response_body(
        &self,
        _req: &mut Request,
        _resp: &mut Response,
        body: &mut Body,
        end_of_stream: bool,
    ) -> Result<Action> {
        if body.bytes() == b"stop" {
            return Ok(Action::Respond(LocalResponse::new(500)));
        }
        if end_of_stream {
            body.replace([body.bytes(), b"$".to_vec()].concat());
        }
        Ok(Action::Continue)
    }

    fn on_done(&self, _req: &Request, summary: &Summary) {
        metrics::counter_inc("done", &[("status", &summary.status.to_string())]);
    }
}

/// Has the trait impl but not the attribute.
struct Forgotten;

impl Filter for Forgotten {
    type Config = weir_sdk::NoConfig;
    fn new(_: weir_sdk::NoConfig) -> Result<Self> {
        Ok(Forgotten)
    }
}

#[test]
fn the_attribute_lists_exactly_the_hooks_written() {
    let f = testing::load::<BodyOnly>(json!({ "limit": 10 })).unwrap();
    assert_eq!(
        f.info(),
        FilterInfo {
            phases: Phases::REQUEST_BODY,
            request_body: BodyMode::Buffer(10),
            response_body: BodyMode::Stream
        }
    );
    let s = testing::load::<Streamer>(json!({})).unwrap();
    assert_eq!(s.info().phases, Phases::RESPONSE_BODY | Phases::DONE);
    assert_eq!(
        format!("{:?}", s.info().phases),
        r#"{"response_body", "done"}"#
    );
    assert!(
        testing::load::<Nothing>(json!(null))
            .unwrap()
            .info()
            .phases
            .is_empty()
    );
}

#[test]
fn configure_errors_name_the_field() {
    let err = |v| testing::load::<BodyOnly>(v).err().unwrap().to_string();
    assert!(err(json!({})).starts_with("invalid configuration: missing field `limit`"));
    assert!(
        err(json!({ "limit": -1 })).starts_with("invalid configuration: `limit`: invalid value")
    );
    assert!(
        err(json!({ "limit": 1, "nested": { "names": [1] } }))
            .starts_with("invalid configuration: `nested.names[0]`:")
    );
    assert_eq!(
        err(json!({ "limit": 0 })),
        "invalid configuration: `limit` must be positive"
    );
    let trailing = testing::load_str::<BodyOnly>(r#"{"limit": 1} x"#)
        .err()
        .unwrap();
    assert!(
        trailing.to_string().contains("trailing characters"),
        "{trailing}"
    );
}

#[test]
fn no_config_accepts_nothing_but_nothing() {
    assert!(testing::load::<Nothing>(json!({})).is_ok());
    assert!(testing::load::<Nothing>(json!(null)).is_ok());
    let err = testing::load::<Nothing>(json!({ "x": 1 }))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("takes no configuration"), "{err}");
}

#[test]
fn a_missing_attribute_is_reported_at_load() {
    let err = testing::load::<Forgotten>(json!({}))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("without #[weir_sdk::filter]"), "{err}");
}

#[test]
fn buffered_bodies_arrive_whole_and_oversized_ones_are_refused() {
    let f = testing::load::<BodyOnly>(json!({ "limit": 16 })).unwrap();
    let mut req = testing::Request::post("/");

    let run = f.run_request_body(&mut req, &["ba", "na", "na"]).unwrap();
    assert_eq!((run.text().as_str(), run.actions.len()), ("b4n4n4", 1));

    let run = f.run_request_body(&mut req, &["for", "bidden"]).unwrap();
    assert_eq!(run.local_response().map(|r| r.status), Some(403));

    let err = f
        .run_request_body(&mut req, &["0123456789", "abcdefg"])
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("17 bytes exceeds the filter's buffer of 16"),
        "{err}"
    );
    assert!(
        f.run_request_body::<&str>(&mut req, &[])
            .unwrap()
            .actions
            .is_empty()
    );
}

#[test]
fn streamed_bodies_arrive_per_chunk_and_stop_at_a_local_response() {
    let f = testing::load::<Streamer>(json!({})).unwrap();
    let mut req = testing::Request::get("/");
    let mut resp = testing::Response::new(200);

    let run = f
        .run_response_body(&mut req, &mut resp, &["a", "b"])
        .unwrap();
    assert_eq!(run.text(), "ab$");
    assert_eq!(run.actions, vec![Action::Continue, Action::Continue]);

    let run = f
        .run_response_body(&mut req, &mut resp, &["a", "stop", "never"])
        .unwrap();
    assert_eq!(run.actions.len(), 2);
    assert_eq!(run.local_response(), Some(&LocalResponse::new(500)));

    // A phase the filter does not implement is not called: the body passes as is.
    let mut req2 = testing::Request::post("/");
    assert_eq!(f.run_request_body(&mut req2, &["x"]).unwrap().text(), "x");

    f.done(
        &req,
        &Summary {
            status: 204,
            ..Summary::default()
        },
    );
    assert_eq!(testing::metrics().counter("done", &[("status", "204")]), 1);
}

#[test]
fn request_changes_are_validated_like_the_proxy_does() {
    struct Mutator;
    #[weir_sdk::filter]
    impl Filter for Mutator {
        type Config = weir_sdk::NoConfig;
        fn new(_: weir_sdk::NoConfig) -> Result<Self> {
            Ok(Mutator)
        }
        fn on_request_headers(&self, req: &mut Request) -> Result<Action> {
            assert!(req.set_header("bad name", "v").is_err());
            assert!(req.set_header("x-ok", "line\nbreak").is_err());
            assert!(req.set_method("GE T").is_err());
            assert!(req.set_path("no-slash").is_err());
            assert!(req.set_cluster("").is_err());
            req.set_method("PATCH")?;
            req.set_path("/new?a=b")?;
            req.add_header("X-Multi", "1")?;
            req.add_header("x-multi", "2")?;
            req.remove_header("x-gone");
            req.set_property("seen", &req.header_all("x-multi").join("+"));
            Ok(Action::Continue)
        }
    }
    let m = testing::load::<Mutator>(json!({})).unwrap();
    let mut req = testing::Request::get("/old").with_header("x-gone", "1");
    m.request_headers(&mut req).unwrap();
    assert_eq!(
        (req.method().as_str(), req.path().as_str()),
        ("PATCH", "/new")
    );
    assert_eq!(req.query().as_deref(), Some("a=b"));
    assert_eq!(req.header("x-gone"), None);
    assert_eq!(
        req.headers(),
        vec![
            ("x-multi".to_string(), "1".to_string()),
            ("x-multi".to_string(), "2".to_string())
        ]
    );
    assert_eq!(req.property("seen").as_deref(), Some("1+2"));
}

#[test]
fn kv_versions_cas_ttl_and_counters() {
    testing::set_time(10_000);
    let v1 = kv::set("k", "a", None);
    assert_eq!(kv::get("k").unwrap().text(), Some("a"));
    assert_eq!(kv::compare_and_swap("k", Some(v1 + 100), "b", None), None);
    let v2 = kv::compare_and_swap("k", Some(v1), "b", None).unwrap();
    assert!(v2 > v1);
    assert!(kv::compare_and_swap("new", None, "x", None).is_some());
    assert_eq!(kv::compare_and_swap("new", None, "y", None), None);

    kv::set("short", "x", Some(Duration::from_millis(100)));
    assert_eq!(kv::increment("n", 5, Some(Duration::from_millis(100))), 5);
    assert_eq!(kv::increment("n", -2, None), 3);
    assert_eq!(testing::kv()["n"].value, b"3");
    testing::advance_time(Duration::from_millis(100));
    assert_eq!(kv::get("short"), None);
    assert_eq!(kv::increment("n", 1, None), 1);

    assert!(kv::delete("k"));
    assert!(!kv::delete("k"));
    assert_eq!(testing::kv().keys().collect::<Vec<_>>(), ["n", "new"]);
}

#[test]
fn logs_respect_the_level_and_macros_skip_disabled_ones() {
    testing::set_log_level(Level::Warn);
    weir_sdk::info!("hidden {}", 1);
    weir_sdk::warn!("shown {}", 2);
    weir_sdk::log!(Level::Error, "also {}", "shown");
    assert!(!weir_sdk::log::enabled(Level::Info));
    let logs = testing::logs();
    assert_eq!(
        logs.iter()
            .map(|r| (r.level, r.message.as_str()))
            .collect::<Vec<_>>(),
        [(Level::Warn, "shown 2"), (Level::Error, "also shown")]
    );
}

#[test]
fn metrics_match_labels_in_any_order() {
    metrics::counter_add("c", &[("a", "1"), ("b", "2")], 2);
    metrics::counter_inc("c", &[("b", "2"), ("a", "1")]);
    metrics::gauge_set("g", &[], -4);
    metrics::histogram_record("h", &[("x", "y")], 0.5);
    let m = testing::metrics();
    assert_eq!(m.counter("c", &[("b", "2"), ("a", "1")]), 3);
    assert_eq!(m.counter("c", &[]), 0);
    assert_eq!(m.gauge("g", &[]), Some(-4));
    assert_eq!(m.histogram("h", &[("x", "y")]), vec![0.5]);
}

#[test]
fn callouts_go_to_mocks_and_are_recorded() {
    assert_eq!(
        http::call("nowhere", OutgoingRequest::get("/")).unwrap_err(),
        Error::Callout(CalloutError::UnknownCluster("nowhere".to_string()))
    );
    testing::mock_callout("svc", |req| {
        Ok(IncomingResponse::new(200)
            .with_header("Content-Type", "text/plain")
            .with_body(req.body.clone()))
    });
    let resp = http::call(
        "svc",
        OutgoingRequest::post("/echo")
            .body("ping")
            .timeout(Duration::from_millis(5)),
    )
    .unwrap();
    assert_eq!((resp.status, resp.text().unwrap()), (200, "ping"));
    assert_eq!(resp.header("content-type"), Some("text/plain"));

    let bad = http::call("svc", OutgoingRequest::get("/").header("bad name", "x")).unwrap_err();
    assert!(
        matches!(bad, Error::Callout(CalloutError::InvalidRequest(_))),
        "{bad}"
    );

    // Only requests that were sent are recorded (the invalid one never left).
    let calls = testing::callouts();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].1.timeout, Duration::from_millis(5));
}

#[test]
fn time_and_random_are_controllable() {
    testing::set_time(1_700_000_000_123);
    let before = time::monotonic();
    assert_eq!(time::unix_ms(), 1_700_000_000_123);
    assert_eq!(
        time::now(),
        UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)
    );
    testing::advance_time(Duration::from_secs(2));
    assert_eq!(time::monotonic() - before, Duration::from_secs(2));
    assert_eq!(time::unix_ms(), 1_700_000_002_123);

    testing::seed_random(42);
    let a = [random::u64(), random::u64()];
    testing::seed_random(42);
    assert_eq!(a, [random::u64(), random::u64()]);
    assert_ne!(a[0], a[1]);
    assert!((0..1000).all(|_| random::below(7) < 7));
    assert!(
        (0..1000)
            .map(|_| random::f64())
            .all(|x| (0.0..1.0).contains(&x))
    );
}

#[test]
fn reset_forgets_everything() {
    kv::set("k", "v", None);
    metrics::counter_inc("c", &[]);
    weir_sdk::error!("x");
    testing::reset();
    assert!(testing::kv().is_empty());
    assert_eq!(testing::metrics().counter("c", &[]), 0);
    assert!(testing::logs().is_empty());
}
