//! Checks of individual values: host names, endpoints, header names and
//! values, methods, regular expressions. Each returns the problem in one
//! line, or None when the value is fine.

use std::net::{IpAddr, Ipv6Addr};

use crate::proxy::headers::HOP_BY_HOP;

/// The standard methods, to catch `get` written for `GET`.
const STANDARD_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// A DNS host name (letters, digits, `-`, `_`; labels of 1 to 63
/// characters; 253 at most) or an IP literal (IPv6 in brackets).
pub fn host_problem(host: &str) -> Option<String> {
    if host.is_empty() {
        return Some("the host is empty".into());
    }
    if let Some(inner) = host
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
    {
        return match inner.parse::<Ipv6Addr>() {
            Ok(_) => None,
            Err(_) => Some(format!("{inner:?} is not a valid IPv6 address")),
        };
    }
    if host.parse::<IpAddr>().is_ok() {
        return None;
    }
    if host.contains(':') {
        return Some(format!(
            "{host:?} is not a host name (IPv6 addresses go in brackets; a port is not part of it)"
        ));
    }
    if host.len() > 253 {
        return Some(format!("host name {host:?} is longer than 253 characters"));
    }
    let labels: Vec<&str> = host.split('.').collect();
    for label in &labels {
        let problem = if label.is_empty() {
            Some("has an empty label")
        } else if label.len() > 63 {
            Some("has a label longer than 63 characters")
        } else if !label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            Some("may only contain letters, digits, `-`, `_` and dots")
        } else if label.starts_with('-') || label.ends_with('-') {
            Some("has a label starting or ending with `-`")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Some(format!("host name {host:?} {problem}"));
        }
    }
    let last = labels.last().copied().unwrap_or_default();
    if last.chars().all(|c| c.is_ascii_digit()) {
        return Some(format!(
            "{host:?} is neither a valid IPv4 address nor a host name"
        ));
    }
    None
}

/// A virtual host domain: an exact host, `*.suffix` or `*`.
pub fn domain_problem(domain: &str) -> Option<String> {
    if domain == "*" {
        return None;
    }
    let host = domain.strip_prefix("*.").unwrap_or(domain);
    if host.contains('*') {
        return Some(format!(
            "invalid domain {domain:?}: a wildcard is only allowed as a leading `*.` or as `*` alone"
        ));
    }
    if host.starts_with('[') {
        return host_problem(host).map(|problem| format!("invalid domain: {problem}"));
    }
    if host.parse::<Ipv6Addr>().is_ok() {
        return Some(format!(
            "invalid domain {domain:?}: write an IPv6 address in brackets, as in [::1]"
        ));
    }
    if host.contains(':') {
        return Some(format!(
            "invalid domain {domain:?}: domains have no port (the request's port is ignored)"
        ));
    }
    host_problem(host).map(|problem| format!("invalid domain: {problem}"))
}

/// An upstream endpoint, `host:port`, with a port from 1 to 65535.
pub fn endpoint_problem(endpoint: &str) -> Option<String> {
    if endpoint.contains("://") {
        return Some(format!(
            "invalid endpoint {endpoint:?}: give host:port without a scheme"
        ));
    }
    let (host, port) = if endpoint.starts_with('[') {
        match endpoint.split_once("]:") {
            Some((bracketed, port)) => (&endpoint[..bracketed.len() + 1], port),
            None => {
                return Some(format!(
                    "invalid endpoint {endpoint:?}: expected [ipv6]:port"
                ));
            }
        }
    } else {
        match endpoint.rsplit_once(':') {
            Some((host, _)) if host.contains(':') => {
                return Some(format!(
                    "invalid endpoint {endpoint:?}: an IPv6 address needs brackets, as in [::1]:8080"
                ));
            }
            Some(split) => split,
            None => {
                return Some(format!("invalid endpoint {endpoint:?}: expected host:port"));
            }
        }
    };
    match port.parse::<u16>() {
        Ok(0) | Err(_) => {
            return Some(format!(
                "invalid endpoint {endpoint:?}: the port must be a number from 1 to 65535"
            ));
        }
        Ok(_) => {}
    }
    host_problem(host).map(|problem| format!("invalid endpoint {endpoint:?}: {problem}"))
}

/// A header name a route may match or change.
pub fn header_name_problem(name: &str) -> Option<String> {
    if name.starts_with(':') {
        return Some(format!(
            "{name:?} is a pseudo-header; use the route match and actions instead"
        ));
    }
    http::HeaderName::from_bytes(name.as_bytes())
        .err()
        .map(|_| format!("invalid header name {name:?}"))
}

/// A header name a route may set or add: valid, and not managed by the
/// proxy itself (hop-by-hop headers, `content-length`).
pub fn settable_header_problem(name: &str) -> Option<String> {
    if let Some(problem) = header_name_problem(name) {
        return Some(problem);
    }
    let lower = name.to_ascii_lowercase();
    if HOP_BY_HOP.contains(&lower.as_str()) {
        return Some(format!(
            "{name:?} is a hop-by-hop header, managed per connection by the proxy; it cannot be set"
        ));
    }
    if lower == "content-length" {
        return Some(format!(
            "{name:?} cannot be set: message framing is managed by the proxy"
        ));
    }
    None
}

/// A header value: no control characters other than tab.
pub fn header_value_problem(value: &str) -> Option<String> {
    http::HeaderValue::from_bytes(value.as_bytes()).err().map(|_| {
        format!("invalid header value {value:?}: control characters (such as newlines) are not allowed")
    })
}

/// An HTTP method token (case-sensitive).
pub fn method_problem(method: &str) -> Option<String> {
    if http::Method::from_bytes(method.as_bytes()).is_err() {
        return Some(format!(
            "invalid HTTP method {method:?}: expected a token such as GET"
        ));
    }
    let upper = method.to_ascii_uppercase();
    if upper != method && STANDARD_METHODS.contains(&upper.as_str()) {
        return Some(format!(
            "methods are case-sensitive: did you mean {upper:?}?"
        ));
    }
    None
}

/// A regular expression (`regex` crate syntax), compiled to check it.
pub fn regex_problem(pattern: &str) -> Option<String> {
    regex::Regex::new(pattern).err().map(|error| {
        let text = error.to_string();
        // Syntax errors are drawn over several lines; the last `error:` line says it.
        let reason = match text.rfind("error: ") {
            Some(at) => text[at + "error: ".len()..]
                .lines()
                .next()
                .unwrap_or_default()
                .to_string(),
            None => text.split_whitespace().collect::<Vec<_>>().join(" "),
        };
        format!("invalid regex {pattern:?}: {reason}")
    })
}

/// A `host[:port]` authority for `Host` rewrites and redirects.
pub fn authority_problem(authority: &str) -> Option<String> {
    if authority.contains('@') {
        return Some(format!(
            "invalid host {authority:?}: user information is not allowed"
        ));
    }
    let parsed = match authority.parse::<http::uri::Authority>() {
        Ok(parsed) => parsed,
        Err(_) => {
            return Some(format!(
                "invalid host {authority:?}: expected host or host:port"
            ));
        }
    };
    if let Some(problem) = host_problem(parsed.host()) {
        return Some(format!("invalid host {authority:?}: {problem}"));
    }
    match parsed.port_u16() {
        Some(0) => Some(format!(
            "invalid host {authority:?}: the port must not be 0"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        for good in [
            "example.com",
            "a-b.c_d.example",
            "10.0.0.1",
            "[::1]",
            "::1",
            "localhost",
        ] {
            assert_eq!(host_problem(good), None, "{good}");
        }
        for bad in [
            "",
            "a..b",
            "-a.com",
            "a b",
            "999.1.1.1",
            "[1.2.3.4]",
            "a:b",
            &"x".repeat(64),
        ] {
            assert!(host_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn domains() {
        for good in ["*", "*.example.com", "example.com", "127.0.0.1", "[::1]"] {
            assert_eq!(domain_problem(good), None, "{good}");
        }
        for bad in [
            "*example.com",
            "a.*.com",
            "example.com:8080",
            "",
            "*.",
            "ex ample.com",
            "::1",
        ] {
            assert!(domain_problem(bad).is_some(), "{bad}");
        }
        assert!(
            domain_problem("example.com:80")
                .unwrap()
                .contains("no port")
        );
    }

    #[test]
    fn endpoints() {
        for good in [
            "127.0.0.1:80",
            "backend.internal:8080",
            "[::1]:9000",
            "svc_a:1",
        ] {
            assert_eq!(endpoint_problem(good), None, "{good}");
        }
        let cases = [
            ("http://a:80", "without a scheme"),
            ("backend", "expected host:port"),
            ("a:0", "1 to 65535"),
            ("a:70000", "1 to 65535"),
            ("::1:80", "needs brackets"),
            ("[::1]80", "[ipv6]:port"),
            ("[zz]:80", "IPv6"),
            ("bad host:80", "letters, digits"),
        ];
        for (bad, reason) in cases {
            let problem = endpoint_problem(bad).unwrap_or_default();
            assert!(problem.contains(reason), "{bad}: {problem}");
        }
    }

    #[test]
    fn headers_and_methods() {
        assert_eq!(header_name_problem("X-Request-Id"), None);
        assert!(header_name_problem("bad header").is_some());
        assert!(
            header_name_problem(":path")
                .unwrap()
                .contains("pseudo-header")
        );
        assert!(
            settable_header_problem("Transfer-Encoding")
                .unwrap()
                .contains("hop-by-hop")
        );
        assert!(
            settable_header_problem("content-length")
                .unwrap()
                .contains("framing")
        );
        assert_eq!(settable_header_problem("x-added"), None);
        assert_eq!(header_value_problem("text/plain; charset=utf-8"), None);
        assert!(header_value_problem("a\r\nb").is_some());
        assert_eq!(method_problem("PURGE"), None);
        assert!(method_problem("get").unwrap().contains("\"GET\""));
        assert!(method_problem("GE T").is_some());
    }

    #[test]
    fn regexes_report_one_line() {
        assert_eq!(regex_problem("^/v[0-9]+/"), None);
        let problem = regex_problem("(unclosed").unwrap();
        assert_eq!(problem, "invalid regex \"(unclosed\": unclosed group");
    }

    #[test]
    fn authorities() {
        for good in ["example.com", "example.com:8443", "[::1]:80", "10.0.0.1"] {
            assert_eq!(authority_problem(good), None, "{good}");
        }
        for bad in [
            "user@example.com",
            "exa mple.com",
            "example.com:0",
            "a/b",
            "",
        ] {
            assert!(authority_problem(bad).is_some(), "{bad}");
        }
    }
}
