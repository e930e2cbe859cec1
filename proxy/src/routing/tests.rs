//! Router tests: the matching table and virtual-host precedence.

use http::header::HOST;

use super::*;

fn router(virtual_hosts_yaml: &str) -> Result<Router, RoutingError> {
    let yaml =
        format!("listeners: [{{address: '127.0.0.1:0'}}]\nvirtual_hosts:\n{virtual_hosts_yaml}");
    let config: Config = serde_yaml_ng::from_str(&yaml).expect("test config parses");
    Router::new(&config)
}

fn request(
    method: &str,
    uri: &str,
    host: Option<&str>,
    headers: &[(&str, &str)],
) -> http::request::Parts {
    let mut builder = http::Request::builder().method(method).uri(uri);
    if let Some(host) = host {
        builder = builder.header(HOST, host);
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap().into_parts().0
}

/// Name of the matched route, or "404".
fn matched(router: &Router, head: &http::request::Parts) -> String {
    router
        .route(head)
        .map(|m| m.route.name.clone().unwrap_or_default())
        .unwrap_or_else(|| "404".to_string())
}

const TABLE: &str = r#"
  - name: main
    domains: ["*"]
    routes:
      - {name: exact-health, match: {path: /health}, direct_response: {status: 200}}
      - {name: get-only, match: {prefix: /items, methods: [get, HEAD]}, forward: {cluster: a}}
      - {name: items-any, match: {prefix: /items}, forward: {cluster: a}}
      - {name: regex-user, match: {regex: '/users/[0-9]+'}, forward: {cluster: a}}
      - {name: regex-alt, match: {regex: '/x|/y'}, forward: {cluster: a}}
      - name: hdr-exact
        match: {prefix: /hd, headers: [{name: X-Env, exact: canary}]}
        forward: {cluster: a}
      - name: hdr-regex
        match: {prefix: /hd, headers: [{name: x-env, regex: 'prod-[a-z]+'}]}
        forward: {cluster: a}
      - name: hdr-absent
        match: {prefix: /hd, headers: [{name: x-env, present: false}]}
        forward: {cluster: a}
      - name: hdr-present
        match: {prefix: /hd, headers: [{name: x-env, present: true}]}
        forward: {cluster: a}
      - name: q-exact
        match: {prefix: /q, query: [{name: 'user id', exact: 'ann lee'}]}
        forward: {cluster: a}
      - name: q-regex
        match: {prefix: /q, query: [{name: v, regex: '[0-9]{2}'}]}
        forward: {cluster: a}
      - name: q-present
        match: {prefix: /q, query: [{name: debug, present: true}]}
        forward: {cluster: a}
      - name: q-absent
        match: {prefix: /q, query: [{name: debug, present: false}, {name: v, present: false}]}
        forward: {cluster: a}
      - name: all-of
        match: {prefix: /all, methods: [POST], headers: [{name: x-a, present: true}], query: [{name: b, exact: '1'}]}
        forward: {cluster: a}
      - {name: exact-and-prefix, match: {path: /both/x, prefix: /both}, forward: {cluster: a}}
      - {name: catch-all, forward: {cluster: a}}
"#;

/// (method, uri, extra headers, expected route name or "404")
type MatchCase = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

#[test]
fn route_matching_table() {
    let router = router(TABLE).unwrap();
    assert_eq!(router.route_count(), 16);
    #[rustfmt::skip]
    let cases: &[MatchCase] = &[
        // path exact
        ("GET", "/health", &[], "exact-health"),
        ("GET", "/health?probe=1", &[], "exact-health"),
        ("GET", "/health/", &[], "catch-all"),
        ("GET", "/Health", &[], "catch-all"),
        // prefix + methods (first match wins; methods are upper-cased)
        ("GET", "/items", &[], "get-only"),
        ("HEAD", "/items/1", &[], "get-only"),
        ("POST", "/items/1", &[], "items-any"),
        ("GET", "/itemsXYZ", &[], "get-only"),
        ("GET", "/item", &[], "catch-all"),
        // regex anchored to the whole path, alternation inside the anchor
        ("GET", "/users/42", &[], "regex-user"),
        ("GET", "/users/42/posts", &[], "catch-all"),
        ("GET", "/api/users/42", &[], "catch-all"),
        ("GET", "/users/", &[], "catch-all"),
        ("GET", "/x", &[], "regex-alt"),
        ("GET", "/y", &[], "regex-alt"),
        ("GET", "/xy", &[], "catch-all"),
        // headers
        ("GET", "/hd", &[("x-env", "canary")], "hdr-exact"),
        ("GET", "/hd", &[("x-env", "Canary")], "hdr-present"),
        ("GET", "/hd", &[("x-env", "other"), ("x-env", "canary")], "hdr-exact"),
        ("GET", "/hd", &[("x-env", "prod-eu")], "hdr-regex"),
        ("GET", "/hd", &[("x-env", "prod-eu1")], "hdr-present"),
        ("GET", "/hd", &[("x-env", "xprod-eu")], "hdr-present"),
        ("GET", "/hd", &[], "hdr-absent"),
        ("GET", "/hd", &[("x-other", "1")], "hdr-absent"),
        // query (percent- and plus-decoded names and values)
        ("GET", "/q?user%20id=ann+lee", &[], "q-exact"),
        ("GET", "/q?user+id=ann%20lee&z", &[], "q-exact"),
        ("GET", "/q?user%20id=ann", &[], "q-absent"),
        ("GET", "/q?v=12", &[], "q-regex"),
        ("GET", "/q?v=1&v=34", &[], "q-regex"),
        ("GET", "/q?v=123", &[], "catch-all"),
        ("GET", "/q?debug", &[], "q-present"),
        ("GET", "/q?debug=", &[], "q-present"),
        ("GET", "/q?x=debug", &[], "q-absent"),
        ("GET", "/q", &[], "q-absent"),
        // all conditions must hold
        ("POST", "/all?b=1", &[("x-a", "")], "all-of"),
        ("GET", "/all?b=1", &[("x-a", "")], "catch-all"),
        ("POST", "/all?b=2", &[("x-a", "")], "catch-all"),
        ("POST", "/all?b=1", &[], "catch-all"),
        ("GET", "/both/x", &[], "exact-and-prefix"),
        ("GET", "/both/y", &[], "catch-all"),
        // anything else
        ("DELETE", "/", &[], "catch-all"),
        ("GET", "*", &[], "catch-all"),
    ];
    for (method, uri, headers, expected) in cases {
        let head = request(method, uri, Some("any.host"), headers);
        assert_eq!(
            matched(&router, &head),
            *expected,
            "{method} {uri} {headers:?}"
        );
    }
}

#[test]
fn no_matching_route_is_404() {
    let router = router(
        r#"
  - {name: v, domains: [a.test], routes: [{name: r, match: {prefix: /api}, forward: {cluster: c}}]}
"#,
    )
    .unwrap();
    assert_eq!(
        matched(&router, &request("GET", "/api/x", Some("a.test"), &[])),
        "r"
    );
    assert_eq!(
        matched(&router, &request("GET", "/other", Some("a.test"), &[])),
        "404"
    );
    assert_eq!(
        matched(&router, &request("GET", "/api/x", Some("b.test"), &[])),
        "404"
    );
    assert_eq!(
        matched(&router, &request("GET", "/api/x", None, &[])),
        "404"
    );
}

#[test]
fn virtual_host_precedence_and_route_ids() {
    let router = router(
        r#"
  - {name: fallback, domains: ["*"], routes: [{name: fallback-r, forward: {cluster: c}}]}
  - {name: wide, domains: ["*.example.com"], routes: [{name: wide-r, forward: {cluster: c}}]}
  - name: narrow
    domains: ["*.api.example.com", "API.example.org"]
    routes:
      - {name: narrow-a, match: {path: /a}, forward: {cluster: c}}
      - {name: narrow-r, forward: {cluster: c}}
  - {name: exact, domains: [api.example.com, "::1"], routes: [{name: exact-r, forward: {cluster: c}}]}
  - {name: dup, domains: [api.example.com], routes: [{name: dup-r, forward: {cluster: c}}]}
"#,
    )
    .unwrap();
    #[rustfmt::skip]
    let cases: &[(&str, Option<&str>, &str, &str, u32)] = &[
        ("/", Some("api.example.com"), "exact", "exact-r", 4),
        ("/", Some("API.Example.COM:8443"), "exact", "exact-r", 4),
        ("/", Some("[::1]:8080"), "exact", "exact-r", 4),
        ("/a", Some("v1.api.example.com"), "narrow", "narrow-a", 2),
        ("/b", Some("x.y.api.example.com"), "narrow", "narrow-r", 3),
        ("/", Some("api.example.org"), "narrow", "narrow-r", 3),
        ("/", Some("www.example.com"), "wide", "wide-r", 1),
        ("/", Some("example.com"), "fallback", "fallback-r", 0),
        ("/", None, "fallback", "fallback-r", 0),
        // The URI authority (HTTP/2 :authority, absolute-form) beats the Host header.
        ("http://www.example.com/", Some("api.example.com"), "wide", "wide-r", 1),
    ];
    for (uri, host, vhost, route, id) in cases {
        let head = request("GET", uri, *host, &[]);
        let m = router
            .route(&head)
            .unwrap_or_else(|| panic!("{uri} {host:?}: no route"));
        assert_eq!(m.virtual_host, *vhost, "{uri} {host:?}");
        assert_eq!(m.route.name.as_deref(), Some(*route), "{uri} {host:?}");
        assert_eq!(m.id, RouteId(*id));
        assert_eq!(m.route.id, m.id);
    }
    assert_eq!(router.route_count(), 6);
    let ids: Vec<u32> = router.routes().map(|r| r.id.0).collect();
    assert_eq!(ids, vec![0, 1, 2, 3, 4, 5]);
}

#[test]
fn bad_config_is_an_error_naming_the_field() {
    for (yaml, field) in [
        (
            "  - {name: v, domains: ['a.*.b'], routes: []}",
            "virtual_hosts[0].domains[0]",
        ),
        (
            "  - {name: v, domains: ['*'], routes: [{match: {regex: '('}, forward: {cluster: c}}]}",
            "virtual_hosts[0].routes[0].match.regex",
        ),
        (
            "  - {name: v, domains: ['*'], routes: [{match: {prefix: api}, forward: {cluster: c}}]}",
            "virtual_hosts[0].routes[0].match.prefix",
        ),
        (
            "  - {name: v, domains: ['*'], routes: [{match: {methods: ['G T']}, forward: {cluster: c}}]}",
            "virtual_hosts[0].routes[0].match.methods[0]",
        ),
        (
            "  - {name: v, domains: ['*'], routes: [{match: {headers: [{name: x}]}, forward: {cluster: c}}]}",
            "virtual_hosts[0].routes[0].match.headers[0]",
        ),
        (
            "  - {name: v, domains: ['*'], routes: [{match: {headers: [{name: 'a b', present: true}]}, forward: {cluster: c}}]}",
            "virtual_hosts[0].routes[0].match.headers[0].name",
        ),
        (
            "  - {name: v, domains: ['*'], routes: [{match: {query: [{name: q, exact: a, present: true}]}, forward: {cluster: c}}]}",
            "virtual_hosts[0].routes[0].match.query[0]",
        ),
        (
            "  - {name: v, domains: ['*'], routes: [{match: {query: [{name: q, regex: '['}]}, forward: {cluster: c}}]}",
            "virtual_hosts[0].routes[0].match.query[0].regex",
        ),
        (
            "  - {name: v, domains: ['*'], routes: []}\n  - {name: w, domains: ['x'], routes: [{forward: {}}]}",
            "virtual_hosts[1].routes[0].forward",
        ),
    ] {
        let err = router(yaml).expect_err(yaml);
        assert!(err.to_string().starts_with(field), "{yaml}\n→ {err}");
    }
}

/// A large generated table (like the benchmark's) still matches the right
/// route, including the last one and a miss.
#[test]
fn thousand_routes() {
    let mut yaml = String::from("  - name: big\n    domains: ['*']\n    routes:\n");
    for i in 0..1000 {
        let matcher = match i % 3 {
            0 => format!("{{prefix: /svc{i}/}}"),
            1 => format!("{{path: /svc{i}/exact}}"),
            _ => format!("{{regex: '/svc{i}/[a-z]+'}}"),
        };
        yaml.push_str(&format!(
            "      - {{name: r{i}, match: {matcher}, forward: {{cluster: c}}}}\n"
        ));
    }
    let router = router(&yaml).unwrap();
    assert_eq!(router.route_count(), 1000);
    for (uri, expected) in [
        ("/svc0/x", "r0"),
        ("/svc1/exact", "r1"),
        ("/svc2/abc", "r2"),
        ("/svc999/deep/path", "r999"),
        ("/svc997/exact", "r997"),
        ("/svc998/abc", "r998"),
        ("/svc998/123", "404"),
        ("/nothing", "404"),
    ] {
        assert_eq!(
            matched(&router, &request("GET", uri, Some("h"), &[])),
            expected,
            "{uri}"
        );
    }
}

/// The router is built once and shared by every connection task.
#[test]
fn router_is_thread_safe() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Router>();
    send_sync::<MatchedRoute<'static>>();
    send_sync::<RoutingError>();
}
