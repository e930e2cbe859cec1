//! Checks of virtual hosts and their routes.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::Checker;
use super::syntax;
use crate::config::error::FieldPath;
use crate::config::types::{
    DirectResponse, ForwardAction, HeaderMutations, RedirectAction, RouteConfig, RouteMatch,
};

/// Statuses a redirect may use.
const REDIRECT_STATUSES: [u16; 5] = [301, 302, 303, 307, 308];

impl Checker<'_> {
    pub(super) fn virtual_hosts(&mut self) {
        let config = self.config;
        let hosts = self.root.key("virtual_hosts");
        let mut served: HashMap<String, FieldPath> = HashMap::new();
        for (index, host) in config.virtual_hosts.iter().enumerate() {
            let path = hosts.index(index);
            if host.domains.is_empty() {
                let reason = "at least one domain is required (`*` matches any host)";
                self.report(path.key("domains"), reason);
            }
            for (position, domain) in host.domains.iter().enumerate() {
                let domain_path = path.key("domains").index(position);
                if let Some(problem) = syntax::domain_problem(domain) {
                    self.report(domain_path, problem);
                    continue;
                }
                let normalised = domain.to_ascii_lowercase();
                if let Some(first) = served.get(&normalised) {
                    let reason = format!("domain {normalised:?} is already served by {first}");
                    self.report(domain_path, reason);
                } else {
                    served.insert(normalised, domain_path);
                }
            }
            for (position, route) in host.routes.iter().enumerate() {
                self.route(path.key("routes").index(position), route);
            }
        }
        let names = config.virtual_hosts.iter().enumerate();
        let names = names.map(|(index, host)| (hosts.index(index).key("name"), host.name.as_str()));
        self.unique_names("virtual host", names);
    }

    fn route(&mut self, path: FieldPath, route: &RouteConfig) {
        if route
            .name
            .as_deref()
            .is_some_and(|name| name.trim().is_empty())
        {
            self.report(
                path.key("name"),
                "must not be empty (leave it out for no name)",
            );
        }
        let actions: Vec<&str> = [
            route.forward.as_ref().map(|_| "forward"),
            route.direct_response.as_ref().map(|_| "direct_response"),
            route.redirect.as_ref().map(|_| "redirect"),
        ]
        .into_iter()
        .flatten()
        .collect();
        match actions.as_slice() {
            [] => self.report(
                path.clone(),
                "a route needs exactly one action: `forward`, `direct_response` or `redirect`",
            ),
            [_] => {}
            [_, second, ..] => {
                let reason = format!(
                    "a route takes exactly one action, but has {}",
                    actions
                        .iter()
                        .map(|action| format!("`{action}`"))
                        .collect::<Vec<_>>()
                        .join(" and ")
                );
                self.report(path.key(*second), reason);
            }
        }
        self.route_match(path.key("match"), &route.matcher);
        if let Some(forward) = &route.forward {
            self.forward(path.key("forward"), forward, &route.matcher);
        }
        if let Some(direct) = &route.direct_response {
            self.direct_response(path.key("direct_response"), direct);
        }
        if let Some(redirect) = &route.redirect {
            self.redirect(path.key("redirect"), redirect);
        }
        self.header_mutations(path.key("request_headers"), &route.request_headers);
        self.header_mutations(path.key("response_headers"), &route.response_headers);
        self.route_filters(path.key("filters"), route);
    }

    fn route_match(&mut self, path: FieldPath, matcher: &RouteMatch) {
        let given: Vec<&str> = [
            matcher.path.as_ref().map(|_| "path"),
            matcher.prefix.as_ref().map(|_| "prefix"),
            matcher.regex.as_ref().map(|_| "regex"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if let [first, second, ..] = given.as_slice() {
            let reason = format!(
                "give at most one of `path`, `prefix`, `regex` (found `{first}` and `{second}`)"
            );
            self.report(path.key(*second), reason);
        }
        for (key, value) in [("path", &matcher.path), ("prefix", &matcher.prefix)] {
            if let Some(value) = value
                && !value.starts_with('/')
            {
                self.report(path.key(key), format!("{value:?} must start with `/`"));
            }
        }
        if let Some(regex) = &matcher.regex {
            self.check(path.key("regex"), syntax::regex_problem(regex));
        }
        for (index, method) in matcher.methods.iter().enumerate() {
            self.check(
                path.key("methods").index(index),
                syntax::method_problem(method),
            );
        }
        for (index, header) in matcher.headers.iter().enumerate() {
            let item = path.key("headers").index(index);
            self.check(item.key("name"), syntax::header_name_problem(&header.name));
            self.value_condition(
                item,
                "header",
                [&header.exact, &header.regex],
                header.present,
            );
        }
        for (index, query) in matcher.query.iter().enumerate() {
            let item = path.key("query").index(index);
            if query.name.is_empty() {
                self.report(item.key("name"), "must not be empty");
            }
            self.value_condition(
                item,
                "query parameter",
                [&query.exact, &query.regex],
                query.present,
            );
        }
    }

    /// A header or query condition: exactly one of `exact`, `regex`, `present`.
    fn value_condition(
        &mut self,
        path: FieldPath,
        what: &str,
        [exact, regex]: [&Option<String>; 2],
        present: Option<bool>,
    ) {
        let given = [exact.is_some(), regex.is_some(), present.is_some()];
        if given.iter().filter(|given| **given).count() != 1 {
            let reason =
                format!("a {what} condition takes exactly one of `exact`, `regex`, `present`");
            self.report(path.clone(), reason);
        }
        if let Some(regex) = regex {
            self.check(path.key("regex"), syntax::regex_problem(regex));
        }
    }

    fn forward(&mut self, path: FieldPath, forward: &ForwardAction, matcher: &RouteMatch) {
        let known = self.cluster_names();
        match (&forward.cluster, forward.weighted_clusters.is_empty()) {
            (Some(cluster), true) => {
                self.cluster_reference(path.key("cluster"), cluster, &known);
            }
            (None, false) => {
                let weighted = path.key("weighted_clusters");
                let mut total: u64 = 0;
                for (index, split) in forward.weighted_clusters.iter().enumerate() {
                    let item = weighted.index(index);
                    self.cluster_reference(item.key("cluster"), &split.cluster, &known);
                    if split.weight == 0 {
                        self.report(item.key("weight"), "must be greater than zero");
                    }
                    total += u64::from(split.weight);
                }
                if total > u64::from(u32::MAX) {
                    self.report(weighted, "the weights add up to more than 4294967295");
                }
            }
            (Some(_), false) => self.report(
                path.key("weighted_clusters"),
                "give either `cluster` or `weighted_clusters`, not both",
            ),
            (None, true) => self.report(
                path.clone(),
                "`forward` needs a `cluster` or a non-empty `weighted_clusters`",
            ),
        }
        if let Some(rewrite) = &forward.prefix_rewrite {
            if matcher.prefix.is_none() {
                let reason = "`prefix_rewrite` requires a `prefix` in the route's `match`";
                self.report(path.key("prefix_rewrite"), reason);
            } else if !rewrite.is_empty() && !rewrite.starts_with('/') {
                self.report(
                    path.key("prefix_rewrite"),
                    format!("{rewrite:?} must be empty or start with `/`"),
                );
            }
        }
        if let Some(host) = &forward.host_rewrite {
            self.check(path.key("host_rewrite"), syntax::authority_problem(host));
        }
        if let Some(timeout) = forward.timeout {
            self.positive(path.key("timeout"), timeout);
        }
    }

    fn cluster_reference(&mut self, path: FieldPath, cluster: &str, known: &BTreeSet<&str>) {
        if known.contains(cluster) {
            return;
        }
        let known = if known.is_empty() {
            "no clusters are defined".to_string()
        } else {
            format!(
                "known: {}",
                known.iter().copied().collect::<Vec<_>>().join(", ")
            )
        };
        self.report(path, format!("unknown cluster {cluster:?} ({known})"));
    }

    fn direct_response(&mut self, path: FieldPath, direct: &DirectResponse) {
        if !(100..=599).contains(&direct.status) {
            self.report(
                path.key("status"),
                format!("{} is not an HTTP status (100 to 599)", direct.status),
            );
        }
        for (name, value) in &direct.headers {
            let header = path.key("headers").key(name.as_str());
            let problem = syntax::settable_header_problem(name)
                .or_else(|| syntax::header_value_problem(value));
            self.check(header, problem);
        }
    }

    fn redirect(&mut self, path: FieldPath, redirect: &RedirectAction) {
        if !REDIRECT_STATUSES.contains(&redirect.status) {
            let reason = format!(
                "{} is not a redirect status (301, 302, 303, 307 or 308)",
                redirect.status
            );
            self.report(path.key("status"), reason);
        }
        if let Some(scheme) = &redirect.scheme
            && scheme != "http"
            && scheme != "https"
        {
            self.report(
                path.key("scheme"),
                format!("{scheme:?} must be `http` or `https`"),
            );
        }
        if let Some(host) = &redirect.host {
            self.check(path.key("host"), syntax::authority_problem(host));
        }
        if let Some(target) = &redirect.path {
            if !target.starts_with('/') {
                self.report(path.key("path"), format!("{target:?} must start with `/`"));
            } else if target.contains('?') || target.contains('#') {
                let reason =
                    "must not contain a query or fragment (the query is kept unless `strip_query`)";
                self.report(path.key("path"), reason);
            } else if target.parse::<http::uri::PathAndQuery>().is_err() {
                self.report(
                    path.key("path"),
                    format!("{target:?} is not a valid URL path"),
                );
            }
        }
        let changes =
            redirect.scheme.is_some() || redirect.host.is_some() || redirect.path.is_some();
        if !changes && !redirect.strip_query {
            let reason = "the redirect changes nothing (give `scheme`, `host`, `path` or `strip_query`) and would loop";
            self.report(path, reason);
        }
    }

    fn header_mutations(&mut self, path: FieldPath, mutations: &HeaderMutations) {
        for (key, headers) in [("add", &mutations.add), ("set", &mutations.set)] {
            for (name, value) in headers {
                let problem = syntax::settable_header_problem(name)
                    .or_else(|| syntax::header_value_problem(value));
                self.check(path.key(key).key(name.as_str()), problem);
            }
        }
        for (index, name) in mutations.remove.iter().enumerate() {
            self.check(
                path.key("remove").index(index),
                syntax::header_name_problem(name),
            );
        }
    }

    fn route_filters(&mut self, path: FieldPath, route: &RouteConfig) {
        let chain: Vec<&str> = self
            .config
            .filters
            .iter()
            .map(|filter| filter.name.as_str())
            .collect();
        let mut seen = HashSet::new();
        for (index, filter) in route.filters.iter().enumerate() {
            let item = path.index(index);
            let in_chain = chain.contains(&filter.name.as_str());
            if filter.name.trim().is_empty() {
                self.report(item.key("name"), "filter name must not be empty");
                continue;
            }
            if !seen.insert(filter.name.as_str()) {
                self.report(
                    item.key("name"),
                    format!("filter {:?} is listed twice on this route", filter.name),
                );
            }
            if filter.disabled {
                let extra: Vec<&str> = [
                    filter.module.as_ref().map(|_| "`module`"),
                    filter.config.as_ref().map(|_| "`config`"),
                    filter.failure_mode.as_ref().map(|_| "`failure_mode`"),
                ]
                .into_iter()
                .flatten()
                .collect();
                if !extra.is_empty() {
                    let reason = format!("a disabled filter takes no {}", extra.join(" or "));
                    self.report(item.key("disabled"), reason);
                }
            }
            match (&filter.module, in_chain) {
                (None, false) => {
                    let chain = match chain.is_empty() {
                        true => "the default chain is empty".to_string(),
                        false => format!("default chain: {}", chain.join(", ")),
                    };
                    let reason = format!(
                        "filter {:?} is not in the default chain ({chain}); to add a new filter on this route, give its `module`",
                        filter.name
                    );
                    self.report(item.key("name"), reason);
                }
                (Some(_), true) => {
                    let reason = format!(
                        "filter {:?} is already in the default chain: leave out `module` to change it on this route, or use a new name to add another filter",
                        filter.name
                    );
                    self.report(item.key("module"), reason);
                }
                (Some(module), false) if module.trim().is_empty() => {
                    self.report(item.key("module"), "must name a .wasm component file");
                }
                _ => {}
            }
        }
    }
}
