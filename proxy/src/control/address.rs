//! Where the control API listens, and where the `weir` commands reach it:
//! `ip:port` (`localhost:port` too) or `unix:/path/to/socket`.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

/// The control API's default address.
pub const DEFAULT_CONTROL_ADDRESS: &str = "127.0.0.1:9902";

/// Environment variable the `weir` commands read the control address from.
pub const CONTROL_ENV: &str = "WEIR_CONTROL";

/// A TCP socket address or a unix socket path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlAddress {
    /// `ip:port`.
    Tcp(SocketAddr),
    /// A unix domain socket (written `unix:PATH`).
    Unix(PathBuf),
}

impl Default for ControlAddress {
    fn default() -> Self {
        Self::Tcp(SocketAddr::from((Ipv4Addr::LOCALHOST, 9902)))
    }
}

impl ControlAddress {
    /// True for a loopback TCP address or a unix socket: only this machine
    /// can connect, so a bearer token is optional.
    pub fn is_local(&self) -> bool {
        match self {
            Self::Tcp(addr) => addr.ip().is_loopback(),
            Self::Unix(_) => true,
        }
    }
}

/// Why a control address did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid control address {input:?}: expected ip:port (e.g. 127.0.0.1:9902) or unix:/path/to/socket"
)]
pub struct AddressError {
    input: String,
}

impl FromStr for ControlAddress {
    type Err = AddressError;

    fn from_str(input: &str) -> Result<Self, AddressError> {
        let error = || AddressError {
            input: input.to_string(),
        };
        if let Some(path) = input.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(error());
            }
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        if let Some(port) = input.strip_prefix("localhost:") {
            let port = port.parse().map_err(|_| error())?;
            return Ok(Self::Tcp(SocketAddr::from((Ipv4Addr::LOCALHOST, port))));
        }
        input.parse().map(Self::Tcp).map_err(|_| error())
    }
}

impl fmt::Display for ControlAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(addr) => write!(f, "{addr}"),
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tcp_localhost_and_unix_forms() {
        assert_eq!(
            DEFAULT_CONTROL_ADDRESS.parse::<ControlAddress>().unwrap(),
            ControlAddress::default()
        );
        assert_eq!(
            "localhost:9902".parse::<ControlAddress>().unwrap(),
            ControlAddress::default()
        );
        assert_eq!(
            "[::1]:1".parse::<ControlAddress>().unwrap(),
            ControlAddress::Tcp("[::1]:1".parse().unwrap())
        );
        assert_eq!(
            "unix:/run/weir.sock".parse::<ControlAddress>().unwrap(),
            ControlAddress::Unix("/run/weir.sock".into())
        );
        for bad in ["", "unix:", "example.com:80", "127.0.0.1", "localhost:http"] {
            assert!(bad.parse::<ControlAddress>().is_err(), "{bad}");
        }
    }

    #[test]
    fn only_loopback_and_unix_are_local() {
        assert!(ControlAddress::default().is_local());
        assert!("[::1]:9902".parse::<ControlAddress>().unwrap().is_local());
        assert!("unix:/tmp/s".parse::<ControlAddress>().unwrap().is_local());
        assert!(!"0.0.0.0:9902".parse::<ControlAddress>().unwrap().is_local());
        assert!(!"[::]:9902".parse::<ControlAddress>().unwrap().is_local());
    }

    #[test]
    fn displays_as_it_parses() {
        for text in ["127.0.0.1:9902", "unix:/run/weir.sock"] {
            assert_eq!(text.parse::<ControlAddress>().unwrap().to_string(), text);
        }
    }
}
