//! Endpoint addresses: IP literals as-is, host names resolved in the
//! background and re-resolved every `dns_refresh`.

use std::net::SocketAddr;
use std::sync::Weak;
use std::time::Duration;

use tokio::sync::watch;

use super::cluster::Cluster;

/// Longest wait for one name lookup; a hung resolver must not stall refreshes.
pub(crate) const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Shortest refresh period (a zero `dns_refresh` would spin).
pub(crate) const MIN_REFRESH: Duration = Duration::from_secs(1);

/// One `endpoints` entry of a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EndpointSpec {
    /// `10.0.0.1:80`, `[::1]:8080`.
    Ip(SocketAddr),
    /// `backend.internal:8080`.
    Name { host: String, port: u16 },
}

impl EndpointSpec {
    /// Parse `host:port`.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return if addr.port() == 0 {
                Err(format!("`{text}`: port 0"))
            } else {
                Ok(Self::Ip(addr))
            };
        }
        let Some((host, port)) = text.rsplit_once(':') else {
            return Err(format!("`{text}`: expected host:port"));
        };
        let port = match port.parse::<u16>() {
            Ok(0) | Err(_) => return Err(format!("`{text}`: `{port}` is not a port (1-65535)")),
            Ok(port) => port,
        };
        let valid_name = !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !valid_name {
            return Err(format!(
                "`{text}`: `{host}` is neither an IP address nor a host name"
            ));
        }
        Ok(Self::Name {
            host: host.to_string(),
            port,
        })
    }
}

/// Resolve `host:port`: distinct addresses, sorted (so a resolver rotating
/// its answers does not look like a change).
pub(crate) async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    match tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((host, port))).await {
        Err(_) => Err(format!("no answer within {LOOKUP_TIMEOUT:?}")),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(addrs)) => {
            let mut addrs: Vec<SocketAddr> = addrs.collect();
            addrs.sort_unstable();
            addrs.dedup();
            Ok(addrs)
        }
    }
}

/// Resolve `names` now and every `every`, giving the cluster the union of
/// the results. A name that fails (or resolves to nothing) keeps its last
/// good addresses. `ready` turns true after the first round. Ends when the
/// cluster is dropped.
pub(crate) async fn refresh(
    cluster: Weak<Cluster>,
    names: Vec<(String, u16)>,
    every: Duration,
    ready: watch::Sender<bool>,
) {
    let mut last_good: Vec<Vec<SocketAddr>> = vec![Vec::new(); names.len()];
    let mut ticks = tokio::time::interval(every.max(MIN_REFRESH));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(cluster_name) = cluster.upgrade().map(|c| c.name.clone()) else {
            return;
        };
        for ((host, port), good) in names.iter().zip(last_good.iter_mut()) {
            match resolve(host, *port).await {
                Ok(addrs) if !addrs.is_empty() => *good = addrs,
                Ok(_) => tracing::warn!(
                    cluster = %cluster_name, name = %host,
                    "DNS returned no address; keeping the last good addresses"
                ),
                Err(error) => tracing::warn!(
                    cluster = %cluster_name, name = %host, %error,
                    "DNS lookup failed; keeping the last good addresses"
                ),
            }
        }
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        cluster.set_resolved(last_good.iter().flatten().copied());
        drop(cluster);
        ready.send_replace(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ips_and_names() {
        assert_eq!(
            EndpointSpec::parse("10.0.0.1:80"),
            Ok(EndpointSpec::Ip("10.0.0.1:80".parse().unwrap()))
        );
        assert_eq!(
            EndpointSpec::parse(" [::1]:8080 "),
            Ok(EndpointSpec::Ip("[::1]:8080".parse().unwrap()))
        );
        assert_eq!(
            EndpointSpec::parse("backend-1.svc.local:8080"),
            Ok(EndpointSpec::Name {
                host: "backend-1.svc.local".into(),
                port: 8080
            })
        );
        for bad in [
            "backend",
            "backend:",
            "backend:http",
            "backend:0",
            "10.0.0.1:0",
            ":80",
            "a b:80",
            "::1:80x",
            "[::1]:",
        ] {
            assert!(EndpointSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn resolves_localhost() {
        let addrs = resolve("localhost", 8080).await.unwrap();
        assert!(
            addrs.contains(&"127.0.0.1:8080".parse().unwrap()),
            "{addrs:?}"
        );
        assert!(
            addrs
                .iter()
                .all(|a| a.port() == 8080 && a.ip().is_loopback())
        );
    }
}
