//! Virtual hosts and routes, compiled from the config.
//!
//! A [`Router`] is built once per config generation and shared by every
//! request. [`Router::route`] picks the route for a request head:
//!
//! ## How a request is matched
//!
//! 1. **Host.** The host is taken from the URI authority (the HTTP/2
//!    `:authority`, or an absolute-form HTTP/1 request target), otherwise from
//!    the `Host` header. It is lowercased, and the port and one trailing dot
//!    are removed (`Example.COM.:8080` → `example.com`, `[::1]:8080` →
//!    `[::1]`). A request without any host only matches the `*` domain.
//! 2. **Virtual host.** An exact domain wins; otherwise the longest matching
//!    suffix wildcard (`*.example.com` matches `a.example.com` and
//!    `a.b.example.com`, but not `example.com`); otherwise the virtual host
//!    with domain `*`. If the same domain is listed by two virtual hosts, the
//!    first one in the config wins. No virtual host: no route (404).
//! 3. **Route.** The virtual host's routes are tried in config order and the
//!    first whose conditions all hold wins. No route: 404. The conditions:
//!    - `path`: the path equals it exactly; `prefix`: the path starts with it
//!      (plain string prefix: `/api` also matches `/apis`; write `/api/` to
//!      match a segment); `regex`: the whole path matches (anchored at both
//!      ends). The path is the raw request path, before percent-decoding,
//!      without the query; matching is case-sensitive.
//!    - `methods`: the method is one of them (names are upper-cased).
//!    - `headers`: header names are case-insensitive. `exact`: some value of
//!      the header equals it (case-sensitive); `regex`: some value matches
//!      it in full; `present: true` / `false`: the header is there / absent.
//!    - `query`: names and values are percent-decoded (`+` is a space) and
//!      case-sensitive. `exact`: some value of the parameter equals it;
//!      `regex`: some value matches it in full; `present`: the parameter
//!      appears (with or without a value) / does not appear.
//!
//!    A route with no conditions matches every request.
//!
//! The matched route's [`RouteId`] is its position counting across all
//! virtual hosts in config order.
//!
//! Matching is cheap: regexes, header names and methods are compiled when the
//! router is built; the host is lowercased once (without allocating when it
//! is already lowercase); routes are indexed by exact path and by a prefix
//! trie, so only candidates whose path condition can hold are tested, with
//! the same first-match result as testing every route in order.

mod action;
mod error;
mod headers;
mod host;
mod matcher;
mod query;
mod table;

#[cfg(test)]
mod tests;

pub use action::{DirectResponse, Forward, Redirect, Route, RouteAction};
pub use error::RoutingError;
pub use headers::HeaderOps;

use crate::config::Config;
use host::VhostSelector;
use matcher::RouteMatcher;
use table::RouteTable;

/// A route's stable id within one config generation (its position in the
/// config, counting across virtual hosts). Used to find per-route filter chains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteId(pub u32);

/// The compiled routing table of one config generation.
#[derive(Debug)]
pub struct Router {
    selector: VhostSelector,
    virtual_hosts: Vec<VirtualHost>,
    route_count: usize,
}

#[derive(Debug)]
struct VirtualHost {
    name: String,
    table: RouteTable,
    routes: Vec<Route>,
}

/// The route chosen for a request.
#[derive(Debug, Clone, Copy)]
pub struct MatchedRoute<'a> {
    /// The route's id (same as `route.id`).
    pub id: RouteId,
    /// The route.
    pub route: &'a Route,
    /// The name of the virtual host it belongs to.
    pub virtual_host: &'a str,
}

impl Router {
    /// Compile the virtual hosts and routes of `config`.
    pub fn new(config: &Config) -> Result<Router, RoutingError> {
        let mut selector = VhostSelector::default();
        let mut virtual_hosts = Vec::with_capacity(config.virtual_hosts.len());
        let mut next_id = 0usize;
        for (v, vhost) in config.virtual_hosts.iter().enumerate() {
            for (d, domain) in vhost.domains.iter().enumerate() {
                selector.add(domain, v, &format!("virtual_hosts[{v}].domains[{d}]"))?;
            }
            let mut table = RouteTable::default();
            let mut routes = Vec::with_capacity(vhost.routes.len());
            for (r, route) in vhost.routes.iter().enumerate() {
                let field = format!("virtual_hosts[{v}].routes[{r}]");
                let id =
                    u32::try_from(next_id).map_err(|_| RoutingError::TooManyRoutes(next_id + 1))?;
                table.push(RouteMatcher::new(
                    &route.matcher,
                    &format!("{field}.match"),
                )?);
                routes.push(Route::new(route, RouteId(id), &field)?);
                next_id += 1;
            }
            virtual_hosts.push(VirtualHost {
                name: vhost.name.clone(),
                table,
                routes,
            });
        }
        Ok(Router {
            selector,
            virtual_hosts,
            route_count: next_id,
        })
    }

    /// The route for a request, or `None` (the pipeline answers 404).
    pub fn route(&self, head: &http::request::Parts) -> Option<MatchedRoute<'_>> {
        let host = host::request_host(head);
        let vhost = &self.virtual_hosts[self.selector.select(&host)?];
        let route = &vhost.routes[vhost.table.find(head)?];
        Some(MatchedRoute {
            id: route.id,
            route,
            virtual_host: &vhost.name,
        })
    }

    /// Number of routes over all virtual hosts.
    pub fn route_count(&self) -> usize {
        self.route_count
    }

    /// Every route, in id order (config order across virtual hosts).
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.virtual_hosts
            .iter()
            .flat_map(|vhost| vhost.routes.iter())
    }
}
