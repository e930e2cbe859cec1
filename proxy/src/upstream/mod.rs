//! Upstream clusters: endpoints, load balancing, connection pools.
//!
//! [`Upstreams`] holds every cluster of one config generation. For each
//! request, [`Upstreams::send`]:
//!
//! 1. waits, for a cluster with host names, until the first DNS lookup is done;
//! 2. picks a healthy endpoint by the cluster's `lb_policy`
//!    (`round_robin`, `least_request` = power of two random choices by
//!    requests in flight, `random`, `ring_hash` on `hash_header`);
//! 3. chooses the protocol: `http1`, `http2` (h2c, prior knowledge), or
//!    `auto` = the request's (HTTP/2 requests go as h2c, others as HTTP/1.1);
//! 4. shapes the request without changing the host the client asked for:
//!    HTTP/1.1 gets an origin-form target and the `Host` header, HTTP/2 an
//!    `http://{authority}` URI;
//! 5. sends it on a pooled keep-alive connection (HTTP/1: one request per
//!    connection at a time; HTTP/2: one shared, multiplexed connection per
//!    endpoint) or a new one, and returns when the response head arrives.
//!
//! **Passive health:** 5 consecutive connect failures or timeouts eject an
//! endpoint for 10 s; then it is tried again (one more failure ejects it
//! again, a successful connect clears it).
//! When no endpoint is left the error is
//! [`NoHealthyEndpoint`](UpstreamErrorKind::NoHealthyEndpoint).
//!
//! **DNS:** IP literals are used as-is. Host names are resolved in the
//! background at start and every `dns_refresh`; when a lookup fails or
//! returns nothing, the name keeps its last good addresses. Changes are
//! logged. Endpoints that stay across a change keep their connections and
//! health.
//!
//! **HTTP/1 upgrades:** connections are built with upgrade support; a `101`
//! response's connection is handed to the caller (`hyper::upgrade::on`) and
//! never pooled.

mod body;
mod cluster;
mod connect;
mod dns;
mod endpoint;
mod error;
mod h1;
mod lb;
mod pool;
mod request;
mod ring_hash;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::AbortHandle;

pub use body::UpstreamBody;
pub use error::{UpstreamError, UpstreamErrorKind};

use crate::body::ProxyBody;
use crate::config::Config;
use cluster::Cluster;

/// Shortest period of the idle-connection sweep.
const MIN_SWEEP: Duration = Duration::from_millis(100);

/// Every upstream cluster of one config generation.
#[derive(Debug)]
pub struct Upstreams {
    clusters: Vec<Arc<Cluster>>,
    by_name: HashMap<String, usize>,
    /// DNS refresh and idle sweep tasks, stopped on drop.
    tasks: Vec<AbortHandle>,
}

/// A cluster's state, for status and admin pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterStatus {
    /// The cluster's name.
    pub name: String,
    /// Its current endpoints (after DNS), in order.
    pub endpoints: Vec<EndpointStatus>,
}

/// One endpoint's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointStatus {
    /// The address connected to.
    pub address: SocketAddr,
    /// False while ejected after consecutive connect failures.
    pub healthy: bool,
    /// Requests sent to it still waiting for their response head.
    pub in_flight: usize,
    /// Idle pooled HTTP/1 connections.
    pub idle_connections: usize,
}

impl Upstreams {
    /// Build the clusters of `config`.
    ///
    /// Must be called within a tokio runtime: spawns DNS refresh tasks (for
    /// clusters with host names) and idle-connection sweeps, which stop when
    /// `Upstreams` is dropped.
    pub fn new(config: &Config) -> Result<Upstreams, UpstreamError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| {
            UpstreamError::invalid_config("*", "clusters", format!("needs a tokio runtime: {e}"))
        })?;
        let mut upstreams = Upstreams {
            clusters: Vec::new(),
            by_name: HashMap::new(),
            tasks: Vec::new(),
        };
        for (index, config) in config.clusters.iter().enumerate() {
            if upstreams.by_name.contains_key(&config.name) {
                return Err(UpstreamError::invalid_config(
                    &config.name,
                    &format!("clusters[{index}].name"),
                    "duplicate cluster name",
                ));
            }
            let (cluster, dns) = Cluster::new(config, index)?;
            let cluster = Arc::new(cluster);
            if let Some(dns) = dns {
                let task = dns::refresh(
                    Arc::downgrade(&cluster),
                    dns.names,
                    config.dns_refresh,
                    dns.ready,
                );
                upstreams.tasks.push(runtime.spawn(task).abort_handle());
            }
            if cluster.pool.enabled() {
                let every = (cluster.pool.idle_timeout / 2).max(MIN_SWEEP);
                let task = sweep_idle(Arc::downgrade(&cluster), every);
                upstreams.tasks.push(runtime.spawn(task).abort_handle());
            }
            upstreams
                .by_name
                .insert(config.name.clone(), upstreams.clusters.len());
            upstreams.clusters.push(cluster);
        }
        Ok(upstreams)
    }

    /// Whether a cluster of that name exists.
    pub fn contains(&self, cluster: &str) -> bool {
        self.by_name.contains_key(cluster)
    }

    /// Pick an endpoint by the cluster's policy and send the request; returns
    /// once the response head arrives (the body streams from the upstream).
    ///
    /// The URI may be origin-form. The host the upstream sees is the
    /// request's (URI authority, else `Host`), never the endpoint address.
    /// On a `101` response, `hyper::upgrade::on(&mut response)` gives the
    /// upgraded connection.
    pub async fn send(
        &self,
        cluster: &str,
        req: http::Request<ProxyBody>,
    ) -> Result<http::Response<UpstreamBody>, UpstreamError> {
        match self.by_name.get(cluster) {
            Some(&index) => self.clusters[index].send(req).await,
            None => Err(UpstreamError::new(
                UpstreamErrorKind::UnknownCluster,
                cluster,
                None,
                "",
            )),
        }
    }

    /// Every cluster's endpoints with their health and load, in config order.
    pub fn status(&self) -> Vec<ClusterStatus> {
        let clock = endpoint::Clock::default();
        self.clusters
            .iter()
            .map(|cluster| ClusterStatus {
                name: cluster.name.clone(),
                endpoints: cluster
                    .endpoints()
                    .endpoints
                    .iter()
                    .map(|endpoint| EndpointStatus {
                        address: endpoint.addr,
                        healthy: endpoint.is_healthy(&clock),
                        in_flight: endpoint.in_flight(),
                        idle_connections: endpoint.pool.idle_count(),
                    })
                    .collect(),
            })
            .collect()
    }
}

impl Drop for Upstreams {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Close idle connections past `pool_idle_timeout`, every `every`.
async fn sweep_idle(cluster: std::sync::Weak<Cluster>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        match cluster.upgrade() {
            Some(cluster) => cluster.sweep_idle(),
            None => return,
        }
    }
}
