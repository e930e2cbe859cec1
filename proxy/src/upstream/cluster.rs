//! One cluster: its endpoints, policy, and the send path.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use http::{HeaderMap, HeaderName, Method, Request, Response, Version};
use tokio::sync::watch;

use super::body::UpstreamBody;
use super::connect::{self, ConnectError};
use super::dns::EndpointSpec;
use super::endpoint::{Clock, EJECT_AFTER_FAILURES, EJECTION_PERIOD, Endpoint};
use super::error::{UpstreamError, UpstreamErrorKind, chain};
use super::h1;
use super::lb::{Balancer, EndpointSet};
use super::pool::PoolSettings;
use super::request;
use crate::body::ProxyBody;
use crate::config::{ClusterConfig, UpstreamProtocol};
use crate::proxy::headers;

/// A compiled cluster.
#[derive(Debug)]
pub(crate) struct Cluster {
    pub(crate) name: String,
    protocol: UpstreamProtocol,
    connect_timeout: Duration,
    balancer: Balancer,
    pub(crate) pool: PoolSettings,
    /// IP-literal endpoints, in config order.
    static_addrs: Vec<SocketAddr>,
    set: RwLock<Arc<EndpointSet>>,
    /// Turns true after the first DNS round; `None` without DNS names.
    dns_ready: Option<watch::Receiver<bool>>,
}

/// The background resolution a cluster with host names needs.
#[derive(Debug)]
pub(crate) struct DnsNames {
    pub(crate) names: Vec<(String, u16)>,
    pub(crate) ready: watch::Sender<bool>,
}

impl Cluster {
    /// Compile `config` (the `index`th cluster, for error messages).
    pub(crate) fn new(
        config: &ClusterConfig,
        index: usize,
    ) -> Result<(Self, Option<DnsNames>), UpstreamError> {
        let field = |name: &str| format!("clusters[{index}].{name}");
        let invalid = |name: &str, reason: &dyn std::fmt::Display| {
            UpstreamError::invalid_config(&config.name, &field(name), reason)
        };
        if config.name.is_empty() {
            return Err(invalid("name", &"empty cluster name"));
        }
        if config.endpoints.is_empty() {
            return Err(invalid("endpoints", &"no endpoints"));
        }
        let hash_header = match &config.hash_header {
            Some(name) => Some(
                HeaderName::from_bytes(name.as_bytes()).map_err(|e| invalid("hash_header", &e))?,
            ),
            None => None,
        };
        let balancer = Balancer::new(config.lb_policy, hash_header)
            .ok_or_else(|| invalid("hash_header", &"ring_hash needs the header to hash"))?;
        let mut static_addrs = Vec::new();
        let mut names = Vec::new();
        for (i, endpoint) in config.endpoints.iter().enumerate() {
            match EndpointSpec::parse(endpoint)
                .map_err(|reason| invalid(&format!("endpoints[{i}]"), &reason))?
            {
                EndpointSpec::Ip(addr) if !static_addrs.contains(&addr) => static_addrs.push(addr),
                EndpointSpec::Ip(_) => {}
                EndpointSpec::Name { host, port } => names.push((host, port)),
            }
        }
        let pool = PoolSettings {
            max_idle: config.pool_max_idle_per_endpoint,
            idle_timeout: config.pool_idle_timeout,
        };
        let endpoints = static_addrs
            .iter()
            .map(|&addr| Arc::new(Endpoint::new(addr, pool)))
            .collect();
        let (dns_ready, dns) = if names.is_empty() {
            (None, None)
        } else {
            let (ready, ready_rx) = watch::channel(false);
            (Some(ready_rx), Some(DnsNames { names, ready }))
        };
        let set = EndpointSet::new(endpoints, balancer.needs_ring());
        let cluster = Self {
            name: config.name.clone(),
            protocol: config.protocol,
            connect_timeout: config.connect_timeout,
            balancer,
            pool,
            static_addrs,
            set: RwLock::new(Arc::new(set)),
            dns_ready,
        };
        Ok((cluster, dns))
    }

    /// The current endpoints.
    pub(crate) fn endpoints(&self) -> Arc<EndpointSet> {
        Arc::clone(&self.set.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// New DNS results: the endpoints become the static ones plus these.
    /// Endpoints that stay keep their pools and health.
    pub(crate) fn set_resolved(&self, resolved: impl IntoIterator<Item = SocketAddr>) {
        let mut addrs = self.static_addrs.clone();
        for addr in resolved {
            if !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
        let current = self.endpoints();
        let unchanged = current.endpoints.len() == addrs.len()
            && current
                .endpoints
                .iter()
                .zip(&addrs)
                .all(|(endpoint, addr)| endpoint.addr == *addr);
        if unchanged {
            return;
        }
        let endpoints: Vec<Arc<Endpoint>> = addrs
            .iter()
            .map(
                |&addr| match current.endpoints.iter().find(|e| e.addr == addr) {
                    Some(kept) => Arc::clone(kept),
                    None => Arc::new(Endpoint::new(addr, self.pool)),
                },
            )
            .collect();
        let added: Vec<SocketAddr> = addrs
            .iter()
            .copied()
            .filter(|a| !current.endpoints.iter().any(|e| e.addr == *a))
            .collect();
        let removed: Vec<SocketAddr> = current
            .endpoints
            .iter()
            .map(|e| e.addr)
            .filter(|a| !addrs.contains(a))
            .collect();
        tracing::info!(cluster = %self.name, ?added, ?removed, endpoints = addrs.len(), "cluster endpoints changed");
        let set = Arc::new(EndpointSet::new(endpoints, self.balancer.needs_ring()));
        *self.set.write().unwrap_or_else(PoisonError::into_inner) = set;
    }

    /// Drop expired idle connections of every endpoint.
    pub(crate) fn sweep_idle(&self) {
        for endpoint in &self.endpoints().endpoints {
            endpoint.pool.sweep(endpoint.in_flight());
        }
    }

    /// Pick an endpoint and send; see [`Upstreams::send`](super::Upstreams::send).
    pub(crate) async fn send(
        &self,
        mut req: Request<ProxyBody>,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        if let Some(ready) = &self.dns_ready
            && !*ready.borrow()
        {
            // The first lookup is under way; an error means the refresh task
            // is gone (shutting down) and the static endpoints are all we have.
            let _ = Box::pin(ready.clone().wait_for(|ready| *ready)).await;
        }
        let endpoint = self.pick(req.headers())?;
        let _in_flight = endpoint.start_request();
        let http2 = match self.protocol {
            UpstreamProtocol::Http1 => false,
            UpstreamProtocol::Http2 => true,
            UpstreamProtocol::Auto => req.version() == Version::HTTP_2,
        };
        if http2 {
            request::to_http2(&mut req, endpoint.addr);
            self.send_http2(&endpoint, req).await
        } else {
            request::to_http1(&mut req, endpoint.addr);
            self.send_http1(&endpoint, req).await
        }
    }

    fn pick(&self, headers: &HeaderMap) -> Result<Arc<Endpoint>, UpstreamError> {
        let set = self.endpoints();
        let picked = self
            .balancer
            .pick(&set, headers, &Clock::default(), &mut rand::rng());
        match picked {
            Some(index) => Ok(Arc::clone(&set.endpoints[index])),
            None if set.endpoints.is_empty() => Err(UpstreamError::new(
                UpstreamErrorKind::NoHealthyEndpoint,
                &self.name,
                None,
                "no endpoint addresses (DNS has given none yet)",
            )),
            None => Err(UpstreamError::new(
                UpstreamErrorKind::NoHealthyEndpoint,
                &self.name,
                None,
                format!(
                    "all {} endpoints are ejected after connect failures",
                    set.endpoints.len()
                ),
            )),
        }
    }

    async fn send_http1(
        &self,
        endpoint: &Endpoint,
        mut req: Request<ProxyBody>,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        if req.method() == Method::CONNECT || headers::is_upgrade_request(req.headers()) {
            return self.send_upgrade(endpoint, req).await;
        }
        loop {
            let (conn, reused) = match endpoint.pool.take_h1() {
                Some(conn) => (conn, true),
                // Boxed: connecting is the rare path, and its state would
                // otherwise enlarge (and be copied with) every request's future.
                None => (
                    Box::pin(
                        self.connected(endpoint, connect::tcp(endpoint.addr, self.connect_timeout)),
                    )
                    .await?
                    .into(),
                    false,
                ),
            };
            match h1::send(conn, reused, req, Some(Arc::clone(&endpoint.pool))).await {
                Ok(response) => return Ok(response.map(UpstreamBody::own)),
                // A pooled connection closed before the upstream could act on
                // the request (its keep-alive ran out): try the next one.
                Err(h1::SendError::Unsent(unsent)) => {
                    tracing::debug!(cluster = %self.name, endpoint = %endpoint.addr, "pooled connection was closed; retrying");
                    req = *unsent;
                }
                Err(h1::SendError::Failed(cause)) => {
                    return Err(UpstreamError::new(
                        UpstreamErrorKind::Protocol,
                        &self.name,
                        Some(endpoint.addr),
                        cause,
                    ));
                }
            }
        }
    }

    /// A request that asks for an upgrade goes through hyper's client, which
    /// hands the connection over on `101`, on a connection of its own.
    async fn send_upgrade(
        &self,
        endpoint: &Endpoint,
        req: Request<ProxyBody>,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        let mut sender = Box::pin(self.connected(
            endpoint,
            connect::http1(endpoint.addr, self.connect_timeout),
        ))
        .await?;
        let response = sender
            .send_request(req)
            .await
            .map_err(|error| self.protocol_error(endpoint, &error))?;
        // The connection task hands the socket over after a `101`; keep the
        // handle until then. Otherwise the connection closes with the body.
        tokio::spawn(async move {
            let _ = sender.ready().await;
        });
        Ok(response.map(UpstreamBody::hyper))
    }

    async fn send_http2(
        &self,
        endpoint: &Endpoint,
        mut req: Request<ProxyBody>,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        let mut retried = false;
        loop {
            let connect = || {
                self.connected(
                    endpoint,
                    connect::http2(endpoint.addr, self.connect_timeout),
                )
            };
            let mut sender = endpoint.pool.h2(connect).await?;
            match sender.try_send_request(req).await {
                Ok(response) => return Ok(response.map(UpstreamBody::hyper)),
                Err(mut error) => match error.take_message() {
                    // The shared connection closed (e.g. GOAWAY) before taking
                    // the request: once more on a fresh connection.
                    Some(unsent) if !retried => {
                        retried = true;
                        req = unsent;
                    }
                    _ => return Err(self.protocol_error(endpoint, error.error())),
                },
            }
        }
    }

    /// Run a connection attempt, keeping the endpoint's health score.
    async fn connected<T>(
        &self,
        endpoint: &Endpoint,
        attempt: impl Future<Output = Result<T, ConnectError>>,
    ) -> Result<T, UpstreamError> {
        match attempt.await {
            Ok(connection) => {
                endpoint.record_connect_success();
                Ok(connection)
            }
            Err(error) => {
                if endpoint.record_connect_failure(&Clock::default()) {
                    tracing::warn!(
                        cluster = %self.name, endpoint = %endpoint.addr,
                        "endpoint ejected for {EJECTION_PERIOD:?} after {EJECT_AFTER_FAILURES} consecutive connect failures"
                    );
                }
                Err(match error {
                    ConnectError::Timeout(after) => UpstreamError::new(
                        UpstreamErrorKind::ConnectTimeout,
                        &self.name,
                        Some(endpoint.addr),
                        format!("no connection after {after:?}"),
                    ),
                    ConnectError::Failed(cause) => UpstreamError::new(
                        UpstreamErrorKind::Connect,
                        &self.name,
                        Some(endpoint.addr),
                        cause,
                    ),
                })
            }
        }
    }

    fn protocol_error(&self, endpoint: &Endpoint, error: &hyper::Error) -> UpstreamError {
        UpstreamError::new(
            UpstreamErrorKind::Protocol,
            &self.name,
            Some(endpoint.addr),
            chain(error),
        )
    }
}
