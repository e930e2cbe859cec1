//! Rules about virtual hosts and routes.

use std::time::Duration;

use super::{assert_issue, forward, route};
use crate::config::types::*;

#[test]
fn domains_are_hosts_suffix_wildcards_or_star() {
    let domain = "virtual_hosts[0].domains[0]";
    assert_issue(
        |c| c.virtual_hosts[0].domains[0] = "api.*.com".into(),
        domain,
        "wildcard",
    );
    assert_issue(
        |c| c.virtual_hosts[0].domains[0] = "api.example.com:80".into(),
        domain,
        "no port",
    );
    assert_issue(
        |c| c.virtual_hosts[0].domains[0] = "api example".into(),
        domain,
        "invalid domain",
    );
    assert_issue(
        |c| c.virtual_hosts[0].domains.clear(),
        "virtual_hosts[0].domains",
        "at least one domain",
    );
}

#[test]
fn a_domain_is_served_by_one_virtual_host() {
    let path = "virtual_hosts[1].domains[1]";
    assert_issue(
        |c| c.virtual_hosts[1].domains.push("API.example.com".into()),
        path,
        "already served by virtual_hosts[0].domains[0]",
    );
}

#[test]
fn a_route_has_exactly_one_action() {
    assert_issue(
        |c| route(c, 0, 0).forward = None,
        "virtual_hosts[0].routes[0]",
        "needs exactly one action",
    );
    let extra = |c: &mut Config| {
        route(c, 1, 1).redirect = Some(RedirectAction {
            scheme: Some("https".into()),
            host: None,
            path: None,
            strip_query: false,
            status: 301,
        })
    };
    assert_issue(
        extra,
        "virtual_hosts[1].routes[1].redirect",
        "has `direct_response` and `redirect`",
    );
}

#[test]
fn a_match_has_at_most_one_path_condition() {
    assert_issue(
        |c| route(c, 0, 0).matcher.path = Some("/users".into()),
        "virtual_hosts[0].routes[0].match.prefix",
        "at most one of",
    );
    assert_issue(
        |c| route(c, 0, 1).matcher.prefix = Some("/s".into()),
        "virtual_hosts[0].routes[1].match.regex",
        "at most one of",
    );
}

#[test]
fn paths_and_prefixes_start_with_a_slash() {
    assert_issue(
        |c| route(c, 0, 0).matcher.prefix = Some("users".into()),
        "virtual_hosts[0].routes[0].match.prefix",
        "start with `/`",
    );
    assert_issue(
        |c| route(c, 1, 0).matcher.path = Some("old".into()),
        "virtual_hosts[1].routes[0].match.path",
        "start with `/`",
    );
}

#[test]
fn regexes_compile() {
    assert_issue(
        |c| route(c, 0, 1).matcher.regex = Some("^/(".into()),
        "virtual_hosts[0].routes[1].match.regex",
        "unclosed group",
    );
    assert_issue(
        |c| route(c, 0, 0).matcher.query[0].regex = Some("[".into()),
        "virtual_hosts[0].routes[0].match.query[0].regex",
        "invalid regex",
    );
    let header = |c: &mut Config| {
        let header = &mut route(c, 0, 0).matcher.headers[0];
        header.exact = None;
        header.regex = Some("a{2".into());
    };
    assert_issue(
        header,
        "virtual_hosts[0].routes[0].match.headers[0].regex",
        "invalid regex",
    );
}

#[test]
fn methods_are_tokens() {
    assert_issue(
        |c| route(c, 0, 0).matcher.methods.push("GE T".into()),
        "virtual_hosts[0].routes[0].match.methods[2]",
        "invalid HTTP method",
    );
    assert_issue(
        |c| route(c, 0, 0).matcher.methods[0] = "get".into(),
        "virtual_hosts[0].routes[0].match.methods[0]",
        "did you mean \"GET\"",
    );
}

#[test]
fn header_conditions_name_a_header_and_take_one_test() {
    let path = "virtual_hosts[0].routes[0].match.headers[0]";
    assert_issue(
        |c| route(c, 0, 0).matcher.headers[0].name = "x env".into(),
        &format!("{path}.name"),
        "invalid header name",
    );
    assert_issue(
        |c| route(c, 0, 0).matcher.headers[0].present = Some(true),
        path,
        "exactly one of `exact`, `regex`, `present`",
    );
    assert_issue(
        |c| route(c, 0, 0).matcher.headers[0].exact = None,
        path,
        "exactly one of",
    );
}

#[test]
fn query_conditions_name_a_parameter_and_take_one_test() {
    let path = "virtual_hosts[0].routes[0].match.query[0]";
    assert_issue(
        |c| route(c, 0, 0).matcher.query[0].name = String::new(),
        &format!("{path}.name"),
        "must not be empty",
    );
    assert_issue(
        |c| route(c, 0, 0).matcher.query[0].exact = Some("1".into()),
        path,
        "exactly one of",
    );
    assert_issue(
        |c| route(c, 0, 0).matcher.query[0].regex = None,
        path,
        "exactly one of",
    );
}

#[test]
fn forward_has_a_cluster_or_weighted_clusters() {
    let path = "virtual_hosts[0].routes[0].forward";
    assert_issue(
        |c| forward(c).cluster = None,
        path,
        "needs a `cluster` or a non-empty `weighted_clusters`",
    );
    let both = |c: &mut Config| {
        forward(c).weighted_clusters.push(WeightedCluster {
            cluster: "canary".into(),
            weight: 1,
        })
    };
    assert_issue(both, &format!("{path}.weighted_clusters"), "not both");
}

#[test]
fn referenced_clusters_exist() {
    let path = "virtual_hosts[0].routes[0].forward.cluster";
    assert_issue(
        |c| forward(c).cluster = Some("backnd".into()),
        path,
        "unknown cluster \"backnd\" (known: backend, canary)",
    );
    let weighted = |c: &mut Config| {
        route(c, 0, 1).forward.as_mut().unwrap().weighted_clusters[1].cluster = "canry".into()
    };
    assert_issue(
        weighted,
        "virtual_hosts[0].routes[1].forward.weighted_clusters[1].cluster",
        "unknown cluster \"canry\"",
    );
}

#[test]
fn weights_are_positive() {
    let zero =
        |c: &mut Config| route(c, 0, 1).forward.as_mut().unwrap().weighted_clusters[0].weight = 0;
    assert_issue(
        zero,
        "virtual_hosts[0].routes[1].forward.weighted_clusters[0].weight",
        "greater than zero",
    );
    let huge = |c: &mut Config| {
        for split in &mut route(c, 0, 1).forward.as_mut().unwrap().weighted_clusters {
            split.weight = u32::MAX;
        }
    };
    assert_issue(
        huge,
        "virtual_hosts[0].routes[1].forward.weighted_clusters",
        "add up to more than",
    );
}

#[test]
fn prefix_rewrite_requires_a_prefix_match() {
    let path = "virtual_hosts[0].routes[0].forward.prefix_rewrite";
    let change = |c: &mut Config| {
        route(c, 0, 0).matcher.prefix = None;
        route(c, 0, 0).matcher.path = Some("/users".into());
    };
    assert_issue(change, path, "requires a `prefix`");
    assert_issue(
        |c| forward(c).prefix_rewrite = Some("v2".into()),
        path,
        "start with `/`",
    );
}

#[test]
fn host_rewrites_and_timeouts_are_valid() {
    let path = "virtual_hosts[0].routes[0].forward";
    assert_issue(
        |c| forward(c).host_rewrite = Some("a b".into()),
        &format!("{path}.host_rewrite"),
        "invalid host",
    );
    assert_issue(
        |c| forward(c).timeout = Some(Duration::ZERO),
        &format!("{path}.timeout"),
        "greater than zero",
    );
}

fn redirect(config: &mut Config) -> &mut RedirectAction {
    route(config, 1, 0)
        .redirect
        .as_mut()
        .expect("route redirects")
}

#[test]
fn redirect_status_is_a_redirect_status() {
    assert_issue(
        |c| redirect(c).status = 200,
        "virtual_hosts[1].routes[0].redirect.status",
        "not a redirect status",
    );
    assert_issue(
        |c| redirect(c).status = 304,
        "virtual_hosts[1].routes[0].redirect.status",
        "not a redirect status",
    );
}

#[test]
fn redirect_scheme_host_and_path_are_valid() {
    let path = "virtual_hosts[1].routes[0].redirect";
    assert_issue(
        |c| redirect(c).scheme = Some("ftp".into()),
        &format!("{path}.scheme"),
        "`http` or `https`",
    );
    assert_issue(
        |c| redirect(c).host = Some("a@b".into()),
        &format!("{path}.host"),
        "user information",
    );
    assert_issue(
        |c| redirect(c).path = Some("new".into()),
        &format!("{path}.path"),
        "start with `/`",
    );
    assert_issue(
        |c| redirect(c).path = Some("/new?x=1".into()),
        &format!("{path}.path"),
        "query",
    );
    assert_issue(|c| redirect(c).path = None, path, "changes nothing");
}

#[test]
fn direct_response_status_and_headers_are_valid() {
    let path = "virtual_hosts[1].routes[1].direct_response";
    fn direct(config: &mut Config) -> &mut DirectResponse {
        route(config, 1, 1)
            .direct_response
            .as_mut()
            .expect("route responds directly")
    }
    assert_issue(
        |c| direct(c).status = 99,
        &format!("{path}.status"),
        "100 to 599",
    );
    assert_issue(
        |c| direct(c).status = 600,
        &format!("{path}.status"),
        "100 to 599",
    );
    assert_issue(
        |c| drop(direct(c).headers.insert("bad name".into(), "v".into())),
        &format!("{path}.headers[\"bad name\"]"),
        "invalid header name",
    );
    assert_issue(
        |c| drop(direct(c).headers.insert("x-a".into(), "a\nb".into())),
        &format!("{path}.headers.x-a"),
        "invalid header value",
    );
}

#[test]
fn header_mutations_are_valid_and_leave_connection_headers_alone() {
    let path = "virtual_hosts[0].routes[0]";
    let set = |name: &'static str, value: &'static str| {
        move |c: &mut Config| {
            drop(
                route(c, 0, 0)
                    .request_headers
                    .set
                    .insert(name.into(), value.into()),
            )
        }
    };
    assert_issue(
        set("x-a", "line\r\nbreak"),
        &format!("{path}.request_headers.set.x-a"),
        "invalid header value",
    );
    assert_issue(
        set("connection", "close"),
        &format!("{path}.request_headers.set.connection"),
        "hop-by-hop",
    );
    assert_issue(
        set(":authority", "x"),
        &format!("{path}.request_headers.set[\":authority\"]"),
        "pseudo-header",
    );
    let add = |c: &mut Config| {
        drop(
            route(c, 0, 0)
                .response_headers
                .add
                .insert("Transfer-Encoding".into(), "chunked".into()),
        )
    };
    assert_issue(
        add,
        &format!("{path}.response_headers.add.Transfer-Encoding"),
        "hop-by-hop",
    );
    let remove = |c: &mut Config| {
        route(c, 0, 0)
            .response_headers
            .remove
            .push("bad name".into())
    };
    assert_issue(
        remove,
        &format!("{path}.response_headers.remove[0]"),
        "invalid header name",
    );
}

#[test]
fn route_filters_refer_to_the_chain_unless_they_bring_a_module() {
    let path = "virtual_hosts[0].routes[0].filters";
    assert_issue(
        |c| route(c, 0, 0).filters[2].module = None,
        &format!("{path}[2].name"),
        "not in the default chain (default chain: auth, headers)",
    );
    assert_issue(
        |c| route(c, 0, 0).filters[0].module = Some("x.wasm".into()),
        &format!("{path}[0].module"),
        "already in the default chain",
    );
    assert_issue(
        |c| route(c, 0, 0).filters[2].module = Some(" ".into()),
        &format!("{path}[2].module"),
        ".wasm",
    );
}

#[test]
fn disabled_route_filters_take_no_config_or_module() {
    let path = "virtual_hosts[0].routes[0].filters[1].disabled";
    assert_issue(
        |c| route(c, 0, 0).filters[1].config = Some(serde_json::json!({})),
        path,
        "takes no `config`",
    );
    let module = |c: &mut Config| {
        let filter = &mut route(c, 0, 0).filters[2];
        filter.disabled = true;
    };
    assert_issue(
        module,
        "virtual_hosts[0].routes[0].filters[2].disabled",
        "takes no `module`",
    );
}

#[test]
fn route_filter_names_are_unique_and_not_empty() {
    let path = "virtual_hosts[0].routes[0].filters";
    assert_issue(
        |c| route(c, 0, 0).filters[1].name = "auth".into(),
        &format!("{path}[1].name"),
        "listed twice",
    );
    assert_issue(
        |c| route(c, 0, 0).filters[0].name = String::new(),
        &format!("{path}[0].name"),
        "must not be empty",
    );
}
