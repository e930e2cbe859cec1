use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;

fn route(yaml: &str) -> Result<Route, RoutingError> {
    let config: RouteConfig = serde_yaml_ng::from_str(yaml).expect("test yaml");
    Route::new(&config, RouteId(3), "routes[3]")
}

fn forward(yaml: &str) -> Forward {
    match route(yaml).expect("valid route").action {
        RouteAction::Forward(forward) => forward,
        other => panic!("not a forward: {other:?}"),
    }
}

fn redirect(yaml: &str) -> Redirect {
    match route(yaml).expect("valid route").action {
        RouteAction::Redirect(redirect) => redirect,
        other => panic!("not a redirect: {other:?}"),
    }
}

fn head(uri: &str, host: Option<&str>) -> http::request::Parts {
    let mut builder = http::Request::builder().uri(uri);
    if let Some(host) = host {
        builder = builder.header(HOST, host);
    }
    builder.body(()).unwrap().into_parts().0
}

#[test]
fn single_cluster_and_timeout() {
    let f = forward("forward: {cluster: api, timeout: 2s}");
    assert_eq!(f.pick_cluster().map(|c| &**c), Some("api"));
    assert_eq!(f.timeout(), Some(Duration::from_secs(2)));
    assert_eq!(f.clusters().collect::<Vec<_>>(), vec!["api"]);
    assert_eq!(forward("forward: {cluster: api}").timeout(), None);
}

/// Count picks of a 90/10 split; each count must lie within 5 standard
/// deviations of its expectation (a false failure has odds below 1e-6).
fn assert_weighted_split(mut pick: impl FnMut() -> String) {
    let picks = 10_000.0;
    let mut blue = 0.0;
    for _ in 0..10_000 {
        match pick().as_str() {
            "blue" => blue += 1.0,
            "green" => {}
            other => panic!("picked unknown cluster {other}"),
        }
    }
    let (p, expected) = (0.9, picks * 0.9);
    let sigma = f64::sqrt(picks * p * (1.0 - p)); // 30
    assert!(
        (blue - expected).abs() <= 5.0 * sigma,
        "blue picked {blue} times, expected ~{expected}"
    );
}

#[test]
fn weighted_pick_follows_weights() {
    let f = forward(
        "forward: {weighted_clusters: [{cluster: blue, weight: 90}, {cluster: green, weight: 10}]}",
    );
    assert_weighted_split(|| f.pick_cluster().expect("a cluster").to_string());
    let mut rng = StdRng::seed_from_u64(1);
    assert_weighted_split(|| {
        f.pick_cluster_with(&mut rng)
            .expect("a cluster")
            .to_string()
    });
    assert_eq!(f.clusters().collect::<Vec<_>>(), vec!["blue", "green"]);
}

#[test]
fn zero_weight_is_never_picked() {
    let f = forward(
        "forward: {weighted_clusters: [{cluster: off, weight: 0}, {cluster: on, weight: 1}, {cluster: off2, weight: 0}]}",
    );
    let mut rng = StdRng::seed_from_u64(2);
    assert!((0..1000).all(|_| f.pick_cluster_with(&mut rng).map(|c| &**c) == Some("on")));
}

#[test]
fn invalid_actions_are_errors() {
    for (yaml, needle) in [
        ("{}", "exactly one action"),
        (
            "{forward: {cluster: a}, redirect: {path: /x}}",
            "exactly one action",
        ),
        ("forward: {}", "either a non-empty"),
        (
            "forward: {cluster: a, weighted_clusters: [{cluster: b, weight: 1}]}",
            "either a non-empty",
        ),
        (
            "forward: {weighted_clusters: [{cluster: b, weight: 0}]}",
            "add up to 0",
        ),
        (
            "forward: {cluster: a, prefix_rewrite: /x}",
            "needs a `prefix`",
        ),
        (
            "{match: {prefix: /a}, forward: {cluster: a, prefix_rewrite: '/x?y'}}",
            "not a valid path",
        ),
        ("forward: {cluster: a, host_rewrite: 'a b'}", "host_rewrite"),
        ("direct_response: {status: 1000}", "direct_response.status"),
        (
            "direct_response: {status: 200, headers: {'bad name': x}}",
            "direct_response.headers",
        ),
        ("redirect: {status: 200}", "not a redirect status"),
        ("redirect: {scheme: ftp}", "use `http` or `https`"),
        ("redirect: {host: 'a/b'}", "redirect.host"),
        ("redirect: {path: relative}", "redirect.path"),
    ] {
        let err = route(yaml).expect_err(yaml).to_string();
        assert!(err.starts_with("routes[3]"), "{yaml}: {err}");
        assert!(err.contains(needle), "{yaml}: {err}");
    }
}

#[test]
fn direct_response_is_compiled() {
    let r =
        route("direct_response: {status: 418, body: teapot, headers: {content-type: text/plain}}")
            .unwrap();
    let RouteAction::DirectResponse(d) = r.action else {
        panic!("not direct")
    };
    assert_eq!(d.status, StatusCode::IM_A_TEAPOT);
    assert_eq!(d.body, Bytes::from_static(b"teapot"));
    assert_eq!(d.headers["content-type"], "text/plain");
    assert_eq!(r.id, RouteId(3));
}

#[test]
fn prefix_rewrite_replaces_the_matched_prefix() {
    let cases = [
        ("/api/", "/v2/", "/api/users?x=1", "/v2/users?x=1"),
        ("/api", "/", "/api/users", "/users"),
        ("/api", "/v2", "/api/users", "/v2/users"),
        ("/api/", "", "/api/users", "/users"),
        ("/api", "", "/api", "/"),
        ("/api", "/v2", "/apiary", "/v2ary"),
        ("/api", "/v2", "/other", "/other"), // path changed since routing: untouched
    ];
    for (prefix, replacement, before, after) in cases {
        let f = forward(&format!(
            "{{match: {{prefix: '{prefix}'}}, forward: {{cluster: a, prefix_rewrite: '{replacement}'}}}}"
        ));
        let mut parts = head(before, Some("h"));
        f.rewrite(&mut parts);
        assert_eq!(
            parts.uri, after,
            "prefix {prefix} → {replacement} on {before}"
        );
    }
    // With an exact path the whole path is replaced; an absolute URI keeps its authority.
    let f = forward("{match: {path: /old}, forward: {cluster: a, prefix_rewrite: /new}}");
    let mut parts = head("http://h.test:8080/old?q", None);
    f.rewrite(&mut parts);
    assert_eq!(parts.uri, "http://h.test:8080/new?q");
}

#[test]
fn host_rewrite_sets_header_and_authority() {
    let f = forward("forward: {cluster: a, host_rewrite: 'internal.svc:8080'}");
    let mut origin_form = head("/x?y", Some("public.example"));
    f.rewrite(&mut origin_form);
    assert_eq!(origin_form.headers[HOST], "internal.svc:8080");
    assert_eq!(origin_form.uri, "/x?y");

    let mut absolute = head("http://public.example/x?y", None);
    f.rewrite(&mut absolute);
    assert_eq!(absolute.headers[HOST], "internal.svc:8080");
    assert_eq!(absolute.uri, "http://internal.svc:8080/x?y");
}

#[test]
fn redirect_location_is_built_from_config_and_request() {
    let cases = [
        // (redirect config, request uri, Host header, client scheme, expected Location)
        (
            "{scheme: https}",
            "/a/b?c=d",
            Some("example.com"),
            "http",
            "https://example.com/a/b?c=d",
        ),
        (
            "{scheme: https}",
            "/a",
            Some("example.com:80"),
            "http",
            "https://example.com/a",
        ),
        (
            "{scheme: https}",
            "/a",
            Some("example.com:8080"),
            "http",
            "https://example.com:8080/a",
        ),
        (
            "{scheme: https}",
            "/a",
            Some("[::1]:80"),
            "http",
            "https://[::1]/a",
        ),
        ("{scheme: http}", "/a", Some("h:443"), "https", "http://h/a"),
        (
            "{host: 'new.example:444'}",
            "/a?q",
            Some("old"),
            "https",
            "https://new.example:444/a?q",
        ),
        (
            "{path: /login}",
            "/a?q=1",
            Some("h"),
            "http",
            "http://h/login?q=1",
        ),
        (
            "{path: /login, strip_query: true}",
            "/a?q=1",
            Some("h"),
            "http",
            "http://h/login",
        ),
        (
            "{path: '/login?next=home'}",
            "/a?q=1",
            Some("h"),
            "http",
            "http://h/login?next=home",
        ),
        (
            "{strip_query: true}",
            "/keep?drop",
            Some("h:8080"),
            "http",
            "http://h:8080/keep",
        ),
        ("{path: /p}", "/a?q", None, "http", "/p?q"),
        (
            "{}",
            "http://abs.example:81/x?y",
            Some("ignored"),
            "http",
            "http://abs.example:81/x?y",
        ),
    ];
    for (config, uri, host, scheme, expected) in cases {
        let r = redirect(&format!("redirect: {config}"));
        let response = r.response_for(&head(uri, host), scheme);
        assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY, "{config}");
        assert_eq!(response.headers()[LOCATION], expected, "{config} on {uri}");
        assert!(response.body().is_empty());
    }
    let r = redirect("redirect: {path: /x, status: 307}");
    assert_eq!(
        r.response_for(&head("/", Some("h")), "http").status(),
        StatusCode::TEMPORARY_REDIRECT
    );
}
