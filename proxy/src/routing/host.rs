//! The request's host and virtual-host selection.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::Ipv6Addr;

use http::header::HOST;

use super::RoutingError;

/// The host the client asked for, as written (may include a port): the URI
/// authority (HTTP/2 `:authority`, absolute-form) without userinfo, else the
/// `Host` header. `None` when neither is present or the header is not text.
pub(crate) fn request_authority(head: &http::request::Parts) -> Option<&str> {
    match head.uri.authority() {
        Some(authority) => Some(without_userinfo(authority.as_str())),
        None => head.headers.get(HOST).and_then(|value| value.to_str().ok()),
    }
}

/// The host used for virtual-host selection: [`request_authority`] without
/// port or trailing dot, ASCII-lowercased (borrowed unless it had capitals).
/// Empty when the request names no host.
pub(crate) fn request_host(head: &http::request::Parts) -> Cow<'_, str> {
    let host = strip_port(request_authority(head).unwrap_or(""));
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

fn without_userinfo(authority: &str) -> &str {
    match authority.rfind('@') {
        Some(at) => &authority[at + 1..],
        None => authority,
    }
}

/// `example.com:8080` → `example.com`; `[::1]:8080` → `[::1]` (brackets kept).
pub(crate) fn strip_port(host_port: &str) -> &str {
    if host_port.starts_with('[') {
        match host_port.find(']') {
            Some(close) => &host_port[..=close],
            None => host_port,
        }
    } else {
        match host_port.find(':') {
            Some(colon) => &host_port[..colon],
            None => host_port,
        }
    }
}

/// Picks the virtual host for a request host: exact domain, else the longest
/// `*.suffix`, else `*`. Among equal domains the first virtual host wins.
#[derive(Debug, Default)]
pub(crate) struct VhostSelector {
    exact: HashMap<Box<str>, usize>,
    /// `*.example.com` is stored as `example.com`.
    suffix: HashMap<Box<str>, usize>,
    any: Option<usize>,
}

impl VhostSelector {
    /// Register `domain` (as written in the config) for virtual host `vhost`.
    pub(crate) fn add(
        &mut self,
        domain: &str,
        vhost: usize,
        field: &str,
    ) -> Result<(), RoutingError> {
        match normalize_domain(domain).map_err(|reason| RoutingError::invalid(field, reason))? {
            Domain::Any => {
                self.any.get_or_insert(vhost);
            }
            Domain::Suffix(suffix) => {
                self.suffix.entry(suffix.into()).or_insert(vhost);
            }
            Domain::Exact(exact) => {
                self.exact.entry(exact.into()).or_insert(vhost);
            }
        }
        Ok(())
    }

    /// The virtual host for `host` (already normalised by [`request_host`]).
    pub(crate) fn select(&self, host: &str) -> Option<usize> {
        if let Some(&vhost) = self.exact.get(host) {
            return Some(vhost);
        }
        if !self.suffix.is_empty() {
            // Drop one label at a time from the left: the first suffix found
            // is the longest. Every label dropped must be non-empty.
            let mut rest = host;
            while let Some(dot) = rest.find('.') {
                if dot == 0 {
                    break;
                }
                rest = &rest[dot + 1..];
                if let Some(&vhost) = self.suffix.get(rest) {
                    return Some(vhost);
                }
            }
        }
        self.any
    }
}

#[derive(Debug, PartialEq)]
enum Domain {
    Any,
    Suffix(String),
    Exact(String),
}

/// Lowercase, drop a trailing dot, bracket bare IPv6 literals, reject ports
/// and misplaced wildcards.
fn normalize_domain(domain: &str) -> Result<Domain, String> {
    let lower = domain.trim().to_ascii_lowercase();
    if lower.is_empty() || lower == "." || lower == "*." {
        return Err(format!("`{domain}` names no host"));
    }
    let lower = lower.strip_suffix('.').unwrap_or(&lower);
    if lower == "*" {
        return Ok(Domain::Any);
    }
    let (is_suffix, name) = match lower.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, lower),
    };
    if name.is_empty() || name.contains('*') {
        return Err(format!(
            "`{domain}`: a wildcard is only allowed as `*` or a leading `*.` followed by a name"
        ));
    }
    let bracketed_ipv6 = name
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .is_some_and(|inner| inner.parse::<Ipv6Addr>().is_ok());
    let name = if name.parse::<Ipv6Addr>().is_ok() {
        format!("[{name}]")
    } else if bracketed_ipv6 {
        name.to_string()
    } else if name.contains(':') || name.contains('[') || name.contains(']') {
        return Err(format!(
            "`{domain}`: domains match without the port; remove it"
        ));
    } else {
        name.to_string()
    };
    Ok(if is_suffix {
        Domain::Suffix(name)
    } else {
        Domain::Exact(name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(uri: &str, host: Option<&str>) -> http::request::Parts {
        let mut builder = http::Request::builder().uri(uri);
        if let Some(host) = host {
            builder = builder.header(HOST, host);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn host_comes_from_authority_then_header() {
        assert_eq!(
            request_host(&head("http://A.Example.com:81/x", Some("other"))),
            "a.example.com"
        );
        assert_eq!(
            request_host(&head("/x", Some("Example.COM:8080"))),
            "example.com"
        );
        assert_eq!(request_host(&head("/x", Some("[::1]:8080"))), "[::1]");
        assert_eq!(request_host(&head("/x", Some("[::1]"))), "[::1]");
        assert_eq!(
            request_host(&head("/x", Some("example.com."))),
            "example.com"
        );
        assert_eq!(request_host(&head("http://user@h.test:1/", None)), "h.test");
        assert_eq!(request_host(&head("/x", None)), "");
    }

    #[test]
    fn lowercase_host_is_borrowed() {
        let parts = head("/x", Some("already.lower:80"));
        assert!(matches!(
            request_host(&parts),
            Cow::Borrowed("already.lower")
        ));
    }

    #[test]
    fn request_authority_keeps_port() {
        assert_eq!(
            request_authority(&head("/x", Some("h:8080"))),
            Some("h:8080")
        );
        assert_eq!(
            request_authority(&head("http://u:p@h:1/x", None)),
            Some("h:1")
        );
        assert_eq!(request_authority(&head("/x", None)), None);
    }

    #[test]
    fn domains_are_normalised_or_rejected() {
        assert_eq!(
            normalize_domain("API.Example.com."),
            Ok(Domain::Exact("api.example.com".into()))
        );
        assert_eq!(
            normalize_domain("*.Example.com"),
            Ok(Domain::Suffix("example.com".into()))
        );
        assert_eq!(normalize_domain("*"), Ok(Domain::Any));
        assert_eq!(normalize_domain("::1"), Ok(Domain::Exact("[::1]".into())));
        assert_eq!(normalize_domain("[::1]"), Ok(Domain::Exact("[::1]".into())));
        assert!(normalize_domain("").is_err());
        assert!(normalize_domain("a.*.com").is_err());
        assert!(normalize_domain("*.").is_err());
        assert!(normalize_domain("example.com:8080").is_err());
        assert!(normalize_domain("[::1]:80").is_err());
    }

    #[test]
    fn selection_precedence() {
        let mut selector = VhostSelector::default();
        selector.add("*", 0, "d").unwrap();
        selector.add("*.example.com", 1, "d").unwrap();
        selector.add("*.api.example.com", 2, "d").unwrap();
        selector.add("api.example.com", 3, "d").unwrap();
        selector.add("api.example.com", 4, "d").unwrap(); // duplicate: first wins
        assert_eq!(selector.select("api.example.com"), Some(3));
        assert_eq!(selector.select("v1.api.example.com"), Some(2));
        assert_eq!(selector.select("a.b.api.example.com"), Some(2));
        assert_eq!(selector.select("www.example.com"), Some(1));
        assert_eq!(selector.select("a.b.example.com"), Some(1));
        assert_eq!(selector.select("example.com"), Some(0));
        assert_eq!(selector.select(".example.com"), Some(0));
        assert_eq!(selector.select("other.org"), Some(0));
        assert_eq!(selector.select(""), Some(0));

        let mut no_default = VhostSelector::default();
        no_default.add("*.example.com", 0, "d").unwrap();
        assert_eq!(no_default.select("example.com"), None);
        assert_eq!(no_default.select("x.example.com"), Some(0));
    }
}
