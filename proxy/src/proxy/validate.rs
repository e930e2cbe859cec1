//! Checks on the request head before anything else looks at it. The rule:
//! never forward a request that another parser could read differently.

use http::header::{self, HeaderMap};
use http::request::Parts;
use http::uri::Authority;
use http::{Method, Version};

use crate::config::LimitsConfig;
use crate::error::{ErrorKind, ProxyError};

/// Validate a request head. `ambiguous_length` is true when the HTTP/1 head
/// carried both `Content-Length` and `Transfer-Encoding` (hyper removes the
/// former before we see the head, so the server tells us).
pub fn validate_request(
    parts: &Parts,
    ambiguous_length: bool,
    limits: &LimitsConfig,
) -> Result<(), ProxyError> {
    if ambiguous_length {
        return Err(ProxyError::bad_request(
            "both Content-Length and Transfer-Encoding",
        ));
    }
    if parts.headers.len() > limits.max_request_headers {
        return Err(ProxyError::new(ErrorKind::TooManyHeaders));
    }
    if parts.method == Method::CONNECT {
        // Weir is a reverse proxy: it does not open tunnels to arbitrary hosts.
        return Err(ProxyError::bad_request("CONNECT is not supported"));
    }
    validate_host(parts)
}

/// One Host, well-formed, agreeing with the request target's authority.
fn validate_host(parts: &Parts) -> Result<(), ProxyError> {
    let host = single_host(&parts.headers)?;
    let target = parts.uri.authority();
    match (host, target) {
        (Some(host), Some(target)) if !host.as_str().eq_ignore_ascii_case(target.as_str()) => {
            return Err(ProxyError::bad_request(
                "Host does not match the request target",
            ));
        }
        (None, None) if parts.version == Version::HTTP_11 => {
            return Err(ProxyError::bad_request("missing Host header"));
        }
        (None, None) if parts.version >= Version::HTTP_2 => {
            return Err(ProxyError::bad_request("missing :authority"));
        }
        _ => {}
    }
    if let Some(target) = target
        && target.as_str().contains('@')
    {
        return Err(ProxyError::bad_request("userinfo in the request target"));
    }
    Ok(())
}

/// The Host header, if there is exactly one; an error if there are several
/// or it is not a valid authority.
fn single_host(headers: &HeaderMap) -> Result<Option<Authority>, ProxyError> {
    let mut values = headers.get_all(header::HOST).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ProxyError::bad_request("multiple Host headers"));
    }
    let authority = Authority::try_from(value.as_bytes())
        .ok()
        .filter(|a| !a.as_str().contains('@') && !a.host().is_empty())
        .ok_or(ProxyError::bad_request("invalid Host header"))?;
    Ok(Some(authority))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;

    fn parts(version: Version, uri: &str, hosts: &[&str]) -> Parts {
        let mut builder = Request::builder().version(version).uri(uri);
        for host in hosts {
            builder = builder.header("host", *host);
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn check(parts: &Parts) -> Result<(), String> {
        validate_request(parts, false, &LimitsConfig::default()).map_err(|e| e.kind().to_string())
    }

    #[test]
    fn accepts_ordinary_requests() {
        assert!(check(&parts(Version::HTTP_11, "/a", &["example.com"])).is_ok());
        assert!(
            check(&parts(
                Version::HTTP_11,
                "http://Example.com:80/a",
                &["example.com:80"]
            ))
            .is_ok()
        );
        assert!(check(&parts(Version::HTTP_2, "http://example.com/a", &[])).is_ok());
        assert!(check(&parts(Version::HTTP_10, "/a", &[])).is_ok());
    }

    #[test]
    fn rejects_host_ambiguity() {
        let reject =
            |p: Parts, why: &str| assert_eq!(check(&p).unwrap_err(), format!("bad request: {why}"));
        reject(
            parts(Version::HTTP_11, "/a", &["a.com", "b.com"]),
            "multiple Host headers",
        );
        reject(
            parts(Version::HTTP_11, "/a", &["a.com", "a.com"]),
            "multiple Host headers",
        );
        reject(
            parts(Version::HTTP_11, "http://a.com/x", &["b.com"]),
            "Host does not match the request target",
        );
        reject(
            parts(Version::HTTP_2, "http://a.com/x", &["b.com"]),
            "Host does not match the request target",
        );
        reject(parts(Version::HTTP_11, "/a", &[]), "missing Host header");
        reject(
            parts(Version::HTTP_11, "/a", &["a.com/path"]),
            "invalid Host header",
        );
        reject(
            parts(Version::HTTP_11, "/a", &["user@a.com"]),
            "invalid Host header",
        );
    }

    #[test]
    fn rejects_ambiguous_length_and_too_many_headers() {
        let p = parts(Version::HTTP_11, "/a", &["a.com"]);
        let err = validate_request(&p, true, &LimitsConfig::default()).unwrap_err();
        assert_eq!(err.status(), 400);
        let limits = LimitsConfig {
            max_request_headers: 0,
            ..LimitsConfig::default()
        };
        let err = validate_request(&p, false, &limits).unwrap_err();
        assert_eq!(err.status(), 431);
    }

    #[test]
    fn rejects_connect() {
        let p = Request::builder()
            .method("CONNECT")
            .uri("a.com:443")
            .header("host", "a.com:443");
        let p = p.body(()).unwrap().into_parts().0;
        assert_eq!(
            check(&p).unwrap_err(),
            "bad request: CONNECT is not supported"
        );
    }
}
