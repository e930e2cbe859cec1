//! What a matched route does: forward, answer directly, or redirect.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HOST, LOCATION};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use rand::Rng;

use super::host::{request_authority, strip_port};
use super::{HeaderOps, RouteId, RoutingError};
use crate::config::{self, ForwardAction, RedirectAction, RouteConfig};

/// A compiled route: its id, its action and its header changes.
#[derive(Debug)]
pub struct Route {
    /// Position in the config, counting across virtual hosts.
    pub id: RouteId,
    /// The configured name, for logs and metrics.
    pub name: Option<String>,
    /// What to do with a matching request.
    pub action: RouteAction,
    /// Applied to the request before it goes upstream.
    pub request_headers: HeaderOps,
    /// Applied to the response before it goes to the client.
    pub response_headers: HeaderOps,
}

/// A route's action.
#[derive(Debug)]
pub enum RouteAction {
    /// Send the request to a cluster.
    Forward(Forward),
    /// Answer with a fixed response.
    DirectResponse(DirectResponse),
    /// Answer with a redirect.
    Redirect(Redirect),
}

/// Send the request upstream.
#[derive(Debug)]
pub struct Forward {
    target: ClusterTarget,
    prefix_rewrite: Option<PrefixRewrite>,
    host_rewrite: Option<HostRewrite>,
    timeout: Option<Duration>,
}

#[derive(Debug)]
enum ClusterTarget {
    /// Names are shared with each exchange that picks them, not copied.
    Single(Arc<str>),
    /// Clusters with the running total of weights up to and including each.
    Weighted {
        clusters: Vec<(Arc<str>, u64)>,
        total: u64,
    },
}

#[derive(Debug)]
struct PrefixRewrite {
    /// The route's `prefix` (or exact `path`) that is replaced.
    matched: Box<str>,
    replacement: Box<str>,
}

#[derive(Debug)]
struct HostRewrite {
    header: HeaderValue,
    authority: Authority,
}

/// A fixed response.
#[derive(Debug, Clone)]
pub struct DirectResponse {
    /// Status code.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

/// A redirect; parts not configured are kept from the request.
#[derive(Debug)]
pub struct Redirect {
    scheme: Option<Scheme>,
    host: Option<Box<str>>,
    path: Option<Box<str>>,
    strip_query: bool,
    status: StatusCode,
}

impl Route {
    /// Compile `config` as route `id`; `field` is its place in the config.
    pub(crate) fn new(
        config: &RouteConfig,
        id: RouteId,
        field: &str,
    ) -> Result<Self, RoutingError> {
        let action = match (&config.forward, &config.direct_response, &config.redirect) {
            (Some(forward), None, None) => RouteAction::Forward(Forward::new(
                forward,
                &config.matcher,
                &format!("{field}.forward"),
            )?),
            (None, Some(direct), None) => RouteAction::DirectResponse(DirectResponse::new(
                direct,
                &format!("{field}.direct_response"),
            )?),
            (None, None, Some(redirect)) => {
                RouteAction::Redirect(Redirect::new(redirect, &format!("{field}.redirect"))?)
            }
            _ => {
                return Err(RoutingError::invalid(
                    field,
                    "give exactly one action: `forward`, `direct_response` or `redirect`",
                ));
            }
        };
        Ok(Self {
            id,
            name: config.name.clone(),
            action,
            request_headers: HeaderOps::new(
                &config.request_headers,
                &format!("{field}.request_headers"),
            )?,
            response_headers: HeaderOps::new(
                &config.response_headers,
                &format!("{field}.response_headers"),
            )?,
        })
    }
}

impl Forward {
    fn new(
        config: &ForwardAction,
        matcher: &config::RouteMatch,
        field: &str,
    ) -> Result<Self, RoutingError> {
        let target = match (&config.cluster, config.weighted_clusters.as_slice()) {
            (Some(cluster), []) if !cluster.is_empty() => {
                ClusterTarget::Single(Arc::from(cluster.as_str()))
            }
            (None, weighted) if !weighted.is_empty() => {
                let mut total = 0u64;
                let mut clusters = Vec::with_capacity(weighted.len());
                for (i, entry) in weighted.iter().enumerate() {
                    if entry.cluster.is_empty() {
                        return Err(RoutingError::invalid(
                            format!("{field}.weighted_clusters[{i}].cluster"),
                            "empty cluster name",
                        ));
                    }
                    total += u64::from(entry.weight);
                    clusters.push((Arc::from(entry.cluster.as_str()), total));
                }
                if total == 0 {
                    return Err(RoutingError::invalid(
                        format!("{field}.weighted_clusters"),
                        "the weights add up to 0",
                    ));
                }
                ClusterTarget::Weighted { clusters, total }
            }
            _ => {
                return Err(RoutingError::invalid(
                    field,
                    "give either a non-empty `cluster` or `weighted_clusters`",
                ));
            }
        };
        let prefix_rewrite = match &config.prefix_rewrite {
            None => None,
            Some(replacement) => {
                let rewrite_field = format!("{field}.prefix_rewrite");
                let matched = matcher
                    .prefix
                    .as_ref()
                    .or(matcher.path.as_ref())
                    .ok_or_else(|| {
                        RoutingError::invalid(
                            &rewrite_field,
                            "needs a `prefix` (or `path`) match to replace",
                        )
                    })?;
                if replacement.contains(['?', '#'])
                    || (!replacement.is_empty()
                        && PathAndQuery::try_from(replacement.as_str()).is_err())
                {
                    return Err(RoutingError::invalid(
                        rewrite_field,
                        format!("`{replacement}` is not a valid path"),
                    ));
                }
                Some(PrefixRewrite {
                    matched: matched.as_str().into(),
                    replacement: replacement.as_str().into(),
                })
            }
        };
        let host_rewrite = match &config.host_rewrite {
            None => None,
            Some(host) => {
                let invalid = |e: &dyn std::fmt::Display| {
                    RoutingError::invalid(format!("{field}.host_rewrite"), format!("`{host}`: {e}"))
                };
                let authority = Authority::try_from(host.as_str()).map_err(|e| invalid(&e))?;
                if authority.as_str().contains('@') {
                    return Err(invalid(&"must not contain userinfo"));
                }
                let header = HeaderValue::from_str(host).map_err(|e| invalid(&e))?;
                Some(HostRewrite { header, authority })
            }
        };
        Ok(Self {
            target,
            prefix_rewrite,
            host_rewrite,
            timeout: config.timeout,
        })
    }

    /// The cluster for one request: the configured one, or a weighted random
    /// pick among `weighted_clusters`. Always `Some` for an action built
    /// from a validated config (it names at least one cluster).
    pub fn pick_cluster(&self) -> Option<&Arc<str>> {
        self.pick_cluster_with(&mut rand::rng())
    }

    fn pick_cluster_with(&self, rng: &mut impl Rng) -> Option<&Arc<str>> {
        match &self.target {
            ClusterTarget::Single(cluster) => Some(cluster),
            ClusterTarget::Weighted { clusters, total } => {
                let ticket = rng.random_range(0..*total);
                let index = clusters.partition_point(|(_, running)| *running <= ticket);
                // `ticket < total` = the last running total, so `index` is in range.
                clusters.get(index).map(|(cluster, _)| cluster)
            }
        }
    }

    /// Every cluster this action may pick (for checking they exist).
    pub fn clusters(&self) -> impl Iterator<Item = &str> {
        let (single, weighted) = match &self.target {
            ClusterTarget::Single(cluster) => (Some(&**cluster), &[][..]),
            ClusterTarget::Weighted { clusters, .. } => (None, clusters.as_slice()),
        };
        single
            .into_iter()
            .chain(weighted.iter().map(|(cluster, _)| &**cluster))
    }

    /// The route's timeout until the upstream's response head, if it sets one.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Apply `prefix_rewrite` (replace the matched prefix of the path; the
    /// query is kept; nothing happens if the path no longer starts with it)
    /// and `host_rewrite` (the `Host` header, and the URI authority when the
    /// URI has one).
    pub fn rewrite(&self, head: &mut http::request::Parts) {
        if let Some(rewrite) = &self.prefix_rewrite
            && let Some(rest) = head.uri.path().strip_prefix(&*rewrite.matched)
        {
            let query = head.uri.query();
            let mut path = String::with_capacity(
                rewrite.replacement.len() + rest.len() + 2 + query.map_or(0, str::len),
            );
            if !rewrite.replacement.starts_with('/') {
                path.push('/');
            }
            path.push_str(&rewrite.replacement);
            if path.ends_with('/') && rest.starts_with('/') {
                path.pop();
            }
            path.push_str(rest);
            if let Some(query) = query {
                path.push('?');
                path.push_str(query);
            }
            match PathAndQuery::try_from(path) {
                Ok(path_and_query) => set_uri_part(&mut head.uri, |parts| {
                    parts.path_and_query = Some(path_and_query);
                }),
                Err(e) => {
                    tracing::warn!(error = %e, "prefix_rewrite produced an invalid path; left unchanged")
                }
            }
        }
        if let Some(host) = &self.host_rewrite {
            head.headers.insert(HOST, host.header.clone());
            if head.uri.authority().is_some() && head.uri.scheme().is_some() {
                set_uri_part(&mut head.uri, |parts| {
                    parts.authority = Some(host.authority.clone())
                });
            }
        }
    }
}

/// Change part of a URI; on the (unexpected) failure to rebuild it, keep it.
fn set_uri_part(uri: &mut Uri, change: impl FnOnce(&mut http::uri::Parts)) {
    let mut parts = uri.clone().into_parts();
    change(&mut parts);
    match Uri::from_parts(parts) {
        Ok(new) => *uri = new,
        Err(e) => {
            tracing::warn!(error = %e, "route rewrite produced an invalid URI; left unchanged")
        }
    }
}

impl DirectResponse {
    fn new(config: &config::DirectResponse, field: &str) -> Result<Self, RoutingError> {
        let status = StatusCode::from_u16(config.status).map_err(|e| {
            RoutingError::invalid(format!("{field}.status"), format!("{}: {e}", config.status))
        })?;
        let mut headers = HeaderMap::new();
        for (name, value) in super::headers::pairs(&config.headers, &format!("{field}.headers"))? {
            headers.append(name, value);
        }
        Ok(Self {
            status,
            headers,
            body: Bytes::from(config.body.clone()),
        })
    }
}

impl Redirect {
    fn new(config: &RedirectAction, field: &str) -> Result<Self, RoutingError> {
        let status = match config.status {
            301 | 302 | 303 | 307 | 308 => StatusCode::from_u16(config.status)
                .map_err(|e| RoutingError::invalid(format!("{field}.status"), e))?,
            other => {
                return Err(RoutingError::invalid(
                    format!("{field}.status"),
                    format!("{other} is not a redirect status (301, 302, 303, 307, 308)"),
                ));
            }
        };
        let scheme = match config.scheme.as_deref() {
            None => None,
            Some(s) if s.eq_ignore_ascii_case("http") => Some(Scheme::HTTP),
            Some(s) if s.eq_ignore_ascii_case("https") => Some(Scheme::HTTPS),
            Some(other) => {
                return Err(RoutingError::invalid(
                    format!("{field}.scheme"),
                    format!("`{other}`: use `http` or `https`"),
                ));
            }
        };
        if let Some(host) = &config.host {
            let ok = Authority::try_from(host.as_str()).is_ok_and(|a| !a.as_str().contains('@'));
            if !ok {
                return Err(RoutingError::invalid(
                    format!("{field}.host"),
                    format!("`{host}` is not a host[:port]"),
                ));
            }
        }
        if let Some(path) = &config.path
            && (!path.starts_with('/')
                || path.contains('#')
                || PathAndQuery::try_from(path.as_str()).is_err())
        {
            return Err(RoutingError::invalid(
                format!("{field}.path"),
                format!("`{path}` is not a path starting with `/`"),
            ));
        }
        Ok(Self {
            scheme,
            host: config.host.as_deref().map(Into::into),
            path: config.path.as_deref().map(Into::into),
            strip_query: config.strip_query,
            status,
        })
    }

    /// The redirect response for `head`; `scheme` is how the client connected
    /// (`http` / `https`).
    ///
    /// `Location` = scheme (configured, else the client's) `://` host
    /// (configured, else the request's, port included — but a default port of
    /// the old scheme is dropped when the scheme changes) + path (configured,
    /// else the request's) + `?query` (the request's, unless `strip_query` or
    /// the configured path has its own query). Without any host the Location
    /// is relative (path and query only).
    pub fn response_for(&self, head: &http::request::Parts, scheme: &str) -> http::Response<Bytes> {
        let location = self.location(head, scheme);
        let mut response = http::Response::new(Bytes::new());
        *response.status_mut() = self.status;
        match HeaderValue::try_from(location) {
            Ok(value) => {
                response.headers_mut().insert(LOCATION, value);
            }
            Err(e) => tracing::warn!(error = %e, "redirect Location is not a valid header value"),
        }
        response
    }

    fn location(&self, head: &http::request::Parts, request_scheme: &str) -> String {
        let new_scheme = self.scheme.as_ref().map_or(request_scheme, Scheme::as_str);
        let host = match &self.host {
            Some(host) => host,
            None => {
                let original = request_authority(head).unwrap_or("");
                if new_scheme.eq_ignore_ascii_case(request_scheme) {
                    original
                } else {
                    let default_port = match request_scheme {
                        "https" => "443",
                        _ => "80",
                    };
                    let host = strip_port(original);
                    match original[host.len()..].strip_prefix(':') {
                        Some(port) if port == default_port => host,
                        _ => original,
                    }
                }
            }
        };
        let path = match &self.path {
            Some(path) => path,
            None => match head.uri.path() {
                "" => "/",
                path => path,
            },
        };
        let own_query = path.contains('?');
        let query = head.uri.query().filter(|_| !self.strip_query && !own_query);

        let mut location = String::with_capacity(
            new_scheme.len() + 3 + host.len() + path.len() + 1 + query.map_or(0, str::len),
        );
        if !host.is_empty() {
            location.push_str(new_scheme);
            location.push_str("://");
            location.push_str(host);
        }
        location.push_str(path);
        if let Some(query) = query {
            location.push('?');
            location.push_str(query);
        }
        location
    }
}

#[cfg(test)]
#[path = "action_tests.rs"]
mod tests;
