//! One route's match conditions, compiled once.

use http::{HeaderName, Method};

use super::RoutingError;
use super::query;
use crate::config::{HeaderMatch, QueryMatch, RouteMatch};

/// A route's conditions; all must hold. Checked cheapest first: path,
/// method, headers, query.
#[derive(Debug)]
pub(crate) struct RouteMatcher {
    /// `match.path`: the path equals this.
    pub(crate) path: Option<Box<str>>,
    /// `match.prefix`: the path starts with this.
    pub(crate) prefix: Option<Box<str>>,
    regex: Option<regex::Regex>,
    /// Literal text any path matching `regex` starts with (may be empty).
    regex_prefix: Box<str>,
    methods: Vec<Method>,
    headers: Vec<HeaderCondition>,
    query: Vec<QueryCondition>,
}

#[derive(Debug)]
struct HeaderCondition {
    name: HeaderName,
    check: HeaderCheck,
}

#[derive(Debug)]
enum HeaderCheck {
    Exact(Box<[u8]>),
    Regex(regex::bytes::Regex),
    Present(bool),
}

#[derive(Debug)]
struct QueryCondition {
    name: Box<str>,
    check: QueryCheck,
}

#[derive(Debug)]
enum QueryCheck {
    Exact(Box<str>),
    Regex(regex::Regex),
    Present(bool),
}

impl RouteMatcher {
    /// Compile `config`; `field` is its place in the config (`...routes[3].match`).
    pub(crate) fn new(config: &RouteMatch, field: &str) -> Result<Self, RoutingError> {
        let regex = match &config.regex {
            Some(pattern) => Some(
                regex::Regex::new(&anchored(pattern))
                    .map_err(|e| RoutingError::invalid(format!("{field}.regex"), e))?,
            ),
            None => None,
        };
        for (what, value) in [("path", &config.path), ("prefix", &config.prefix)] {
            if let Some(value) = value
                && !value.starts_with('/')
            {
                return Err(RoutingError::invalid(
                    format!("{field}.{what}"),
                    format!("`{value}` must start with `/`"),
                ));
            }
        }
        let methods = config
            .methods
            .iter()
            .enumerate()
            .map(|(i, method)| {
                Method::from_bytes(method.trim().to_ascii_uppercase().as_bytes())
                    .map_err(|e| RoutingError::invalid(format!("{field}.methods[{i}]"), e))
            })
            .collect::<Result<_, _>>()?;
        let headers = config
            .headers
            .iter()
            .enumerate()
            .map(|(i, h)| HeaderCondition::new(h, &format!("{field}.headers[{i}]")))
            .collect::<Result<_, _>>()?;
        let query = config
            .query
            .iter()
            .enumerate()
            .map(|(i, q)| QueryCondition::new(q, &format!("{field}.query[{i}]")))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            path: config.path.as_deref().map(Into::into),
            prefix: config.prefix.as_deref().map(Into::into),
            regex,
            regex_prefix: config
                .regex
                .as_deref()
                .map(regex_literal_prefix)
                .unwrap_or("")
                .into(),
            methods,
            headers,
            query,
        })
    }

    /// A string every matching path starts with, for indexing: the longer
    /// of `prefix` and the regex's literal prefix. `None` when there is none
    /// (or an exact `path`, which is indexed by itself).
    pub(crate) fn index_prefix(&self) -> Option<&str> {
        let prefix = self.prefix.as_deref().unwrap_or("");
        let longest = if self.regex_prefix.len() > prefix.len() {
            &*self.regex_prefix
        } else {
            prefix
        };
        (!longest.is_empty()).then_some(longest)
    }

    /// Whether the request satisfies every condition.
    pub(crate) fn matches(&self, head: &http::request::Parts) -> bool {
        let path = head.uri.path();
        if let Some(exact) = &self.path
            && **exact != *path
        {
            return false;
        }
        if let Some(prefix) = &self.prefix
            && !path.starts_with(&**prefix)
        {
            return false;
        }
        if let Some(regex) = &self.regex
            && !regex.is_match(path)
        {
            return false;
        }
        if !self.methods.is_empty() && !self.methods.contains(&head.method) {
            return false;
        }
        if !self
            .headers
            .iter()
            .all(|condition| condition.matches(&head.headers))
        {
            return false;
        }
        if !self.query.is_empty() {
            let raw = head.uri.query().unwrap_or("");
            return self.query.iter().all(|condition| condition.matches(raw));
        }
        true
    }
}

/// The literal text every match of `pattern` (anchored at the start) must
/// begin with: its leading plain characters, stopping at the first
/// metacharacter, minus a last character made optional by `?`, `*` or `{`.
/// Empty when unsure: any `|`, or a pattern starting with a group, class,
/// escape or flag.
pub(crate) fn regex_literal_prefix(pattern: &str) -> &str {
    if pattern.contains('|') {
        return "";
    }
    let plain = |c: char| c.is_ascii_alphanumeric() || "/-_~%,;=@:!'&<>\"#".contains(c);
    let end = pattern.find(|c: char| !plain(c)).unwrap_or(pattern.len());
    let literal = &pattern[..end];
    match pattern[end..].chars().next() {
        Some('?' | '*' | '{') => &literal[..literal.len().saturating_sub(1)],
        _ => literal,
    }
}

/// Anchor a user pattern to the whole input; the group keeps inline flags
/// and alternations inside.
fn anchored(pattern: &str) -> String {
    format!(r"\A(?:{pattern})\z")
}

/// Exactly one of `exact`, `regex`, `present` must be given.
fn exactly_one(field: &str, exact: bool, regex: bool, present: bool) -> Result<(), RoutingError> {
    if [exact, regex, present]
        .into_iter()
        .filter(|given| *given)
        .count()
        == 1
    {
        Ok(())
    } else {
        Err(RoutingError::invalid(
            field,
            "give exactly one of `exact`, `regex`, `present`",
        ))
    }
}

impl HeaderCondition {
    fn new(config: &HeaderMatch, field: &str) -> Result<Self, RoutingError> {
        exactly_one(
            field,
            config.exact.is_some(),
            config.regex.is_some(),
            config.present.is_some(),
        )?;
        let name = HeaderName::from_bytes(config.name.as_bytes())
            .map_err(|e| RoutingError::invalid(format!("{field}.name"), e))?;
        let check = if let Some(exact) = &config.exact {
            HeaderCheck::Exact(exact.as_bytes().into())
        } else if let Some(pattern) = &config.regex {
            HeaderCheck::Regex(
                regex::bytes::Regex::new(&anchored(pattern))
                    .map_err(|e| RoutingError::invalid(format!("{field}.regex"), e))?,
            )
        } else {
            HeaderCheck::Present(config.present.unwrap_or(true))
        };
        Ok(Self { name, check })
    }

    fn matches(&self, headers: &http::HeaderMap) -> bool {
        let mut values = headers.get_all(&self.name).iter();
        match &self.check {
            HeaderCheck::Present(wanted) => values.next().is_some() == *wanted,
            HeaderCheck::Exact(exact) => values.any(|v| v.as_bytes() == &**exact),
            HeaderCheck::Regex(regex) => values.any(|v| regex.is_match(v.as_bytes())),
        }
    }
}

impl QueryCondition {
    fn new(config: &QueryMatch, field: &str) -> Result<Self, RoutingError> {
        exactly_one(
            field,
            config.exact.is_some(),
            config.regex.is_some(),
            config.present.is_some(),
        )?;
        if config.name.is_empty() {
            return Err(RoutingError::invalid(
                format!("{field}.name"),
                "empty parameter name",
            ));
        }
        let check = if let Some(exact) = &config.exact {
            QueryCheck::Exact(exact.as_str().into())
        } else if let Some(pattern) = &config.regex {
            QueryCheck::Regex(
                regex::Regex::new(&anchored(pattern))
                    .map_err(|e| RoutingError::invalid(format!("{field}.regex"), e))?,
            )
        } else {
            QueryCheck::Present(config.present.unwrap_or(true))
        };
        Ok(Self {
            name: config.name.as_str().into(),
            check,
        })
    }

    fn matches(&self, raw_query: &str) -> bool {
        let mut values = query::pairs(raw_query)
            .filter(|(name, _)| *query::decode(name) == *self.name)
            .map(|(_, value)| query::decode(value));
        match &self.check {
            QueryCheck::Present(wanted) => values.next().is_some() == *wanted,
            QueryCheck::Exact(exact) => values.any(|v| *v == **exact),
            QueryCheck::Regex(regex) => values.any(|v| regex.is_match(&v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_literal_prefixes_are_conservative() {
        for (pattern, prefix) in [
            ("/svc2/[a-z]+", "/svc2/"),
            ("/users/[0-9]+", "/users/"),
            ("/api/v1", "/api/v1"),
            ("/ab?c", "/a"),
            ("/ab*", "/a"),
            ("/ab{2}", "/a"),
            ("/ab+", "/ab"),
            ("/a.b", "/a"),
            ("/x|/y", ""),
            ("/a/(b|c)", ""),
            ("(?i)/api", ""),
            ("[/]api", ""),
            ("\\/api", ""),
            (".*", ""),
            ("", ""),
        ] {
            assert_eq!(regex_literal_prefix(pattern), prefix, "{pattern}");
            // Sanity: every path the anchored regex matches starts with the prefix.
            let regex = regex::Regex::new(&anchored(pattern)).unwrap();
            for path in [
                "/svc2/abc",
                "/users/12",
                "/api/v1",
                "/ac",
                "/abc",
                "/a",
                "/abb",
                "/x",
                "/a/b",
                "/API",
                "/aXb",
                "/api",
            ] {
                if regex.is_match(path) {
                    assert!(
                        path.starts_with(regex_literal_prefix(pattern)),
                        "{pattern} matched {path}"
                    );
                }
            }
        }
    }
}
