//! One virtual host's routes, indexed so a lookup does not test every route.
//!
//! Semantics are "first route in config order whose conditions all hold".
//! The index only narrows the candidates: routes with an exact `path` are
//! found by hash, routes with a `prefix` (or a regex with a literal start,
//! like `/users/[0-9]+`) by walking a byte trie along the request path, and
//! the remaining routes (no path condition, or a regex without a literal
//! start) are scanned. Each candidate list is in config order; the smallest matching
//! position over all lists wins, and a list is abandoned as soon as its
//! positions pass the best match so far. Matching has no side effects, so the
//! result is exactly that of a linear scan.

use std::collections::HashMap;

use super::matcher::RouteMatcher;

/// Candidate lists for one virtual host; positions index `matchers`.
#[derive(Debug, Default)]
pub(crate) struct RouteTable {
    matchers: Vec<RouteMatcher>,
    exact: HashMap<Box<str>, Vec<u32>>,
    prefixes: PrefixTrie,
    rest: Vec<u32>,
}

impl RouteTable {
    /// Append the next route's matcher (positions follow config order).
    pub(crate) fn push(&mut self, matcher: RouteMatcher) {
        let position = u32::try_from(self.matchers.len()).unwrap_or(u32::MAX);
        if let Some(path) = &matcher.path {
            self.exact.entry(path.clone()).or_default().push(position);
        } else if let Some(prefix) = matcher.index_prefix() {
            self.prefixes.insert(prefix.as_bytes(), position);
        } else {
            self.rest.push(position);
        }
        self.matchers.push(matcher);
    }

    /// Position of the first route matching the request.
    pub(crate) fn find(&self, head: &http::request::Parts) -> Option<usize> {
        let path = head.uri.path();
        let mut best = u32::MAX;
        let mut consider = |candidates: &[u32]| {
            for &position in candidates {
                if position >= best {
                    break;
                }
                if self.matchers[position as usize].matches(head) {
                    best = position;
                    break;
                }
            }
        };
        if !self.exact.is_empty()
            && let Some(candidates) = self.exact.get(path)
        {
            consider(candidates);
        }
        self.prefixes.walk(path.as_bytes(), &mut consider);
        consider(&self.rest);
        (best != u32::MAX).then_some(best as usize)
    }

    /// The same answer as [`find`](Self::find), by testing every route in order.
    #[cfg(test)]
    pub(crate) fn find_linear(&self, head: &http::request::Parts) -> Option<usize> {
        self.matchers.iter().position(|m| m.matches(head))
    }
}

/// A byte trie of route prefixes; each node lists the routes whose prefix
/// ends there, in config order.
#[derive(Debug)]
struct PrefixTrie {
    nodes: Vec<TrieNode>,
}

#[derive(Debug, Default)]
struct TrieNode {
    /// Sorted by byte.
    children: Vec<(u8, u32)>,
    routes: Vec<u32>,
}

impl Default for PrefixTrie {
    fn default() -> Self {
        Self {
            nodes: vec![TrieNode::default()],
        }
    }
}

impl PrefixTrie {
    fn insert(&mut self, prefix: &[u8], route: u32) {
        let mut node = 0usize;
        for &byte in prefix {
            node = match self.nodes[node]
                .children
                .binary_search_by_key(&byte, |&(b, _)| b)
            {
                Ok(found) => self.nodes[node].children[found].1 as usize,
                Err(slot) => {
                    let child = self.nodes.len();
                    self.nodes.push(TrieNode::default());
                    let child_id = u32::try_from(child).unwrap_or(u32::MAX);
                    self.nodes[node].children.insert(slot, (byte, child_id));
                    child
                }
            };
        }
        self.nodes[node].routes.push(route);
    }

    /// Call `visit` with the routes of every prefix of `path` that is in the trie.
    fn walk(&self, path: &[u8], visit: &mut impl FnMut(&[u32])) {
        let mut node = &self.nodes[0];
        if !node.routes.is_empty() {
            visit(&node.routes);
        }
        for &byte in path {
            match node.children.binary_search_by_key(&byte, |&(b, _)| b) {
                Ok(found) => node = &self.nodes[node.children[found].1 as usize],
                Err(_) => return,
            }
            if !node.routes.is_empty() {
                visit(&node.routes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::config::{HeaderMatch, RouteMatch};

    fn head(method: &str, uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
        let mut builder = http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn trie_walk_visits_every_matching_prefix() {
        let mut trie = PrefixTrie::default();
        trie.insert(b"/", 0);
        trie.insert(b"/api", 1);
        trie.insert(b"/api/v1", 2);
        trie.insert(b"/apx", 3);
        trie.insert(b"/api", 4);
        let mut seen = Vec::new();
        trie.walk(b"/api/v1/users", &mut |routes| {
            seen.extend_from_slice(routes)
        });
        assert_eq!(seen, vec![0, 1, 4, 2]);
        seen.clear();
        trie.walk(b"/ap", &mut |routes| seen.extend_from_slice(routes));
        assert_eq!(seen, vec![0]);
    }

    /// The index must give exactly what a linear scan gives, on a route set
    /// mixing every kind of condition and deliberately overlapping.
    #[test]
    fn index_agrees_with_linear_scan() {
        let mut rng = StdRng::seed_from_u64(7);
        let segments = ["/", "/a", "/a/", "/a/b", "/ab", "/b", "/b/c", "/a/b/c"];
        let mut table = RouteTable::default();
        for i in 0..300 {
            let mut config = RouteMatch::default();
            match rng.random_range(0..5) {
                0 => config.path = Some(segments[rng.random_range(0..segments.len())].into()),
                1 | 2 => config.prefix = Some(segments[rng.random_range(0..segments.len())].into()),
                3 => {
                    config.regex = Some(
                        ["/a/[a-z]+", "/a?b", "/(a|b)/c", "/a/b.*"][rng.random_range(0..4)].into(),
                    )
                }
                _ => {}
            }
            if rng.random_bool(0.3) {
                config.methods = vec!["GET".into()];
            }
            if rng.random_bool(0.3) {
                config.headers = vec![HeaderMatch {
                    name: "x-v".into(),
                    exact: Some(format!("{}", i % 3)),
                    regex: None,
                    present: None,
                }];
            }
            table.push(RouteMatcher::new(&config, "m").unwrap());
        }
        let paths = [
            "/", "/a", "/a/", "/a/b", "/a/b/c/d", "/ab", "/abc", "/b", "/b/c", "/c", "/a/bcd",
        ];
        let mut checked = 0;
        for path in paths {
            for method in ["GET", "POST"] {
                for version in ["0", "1", "2", "none"] {
                    let headers: &[(&str, &str)] = if version == "none" {
                        &[]
                    } else {
                        &[("x-v", version)]
                    };
                    let request = head(method, path, headers);
                    assert_eq!(
                        table.find(&request),
                        table.find_linear(&request),
                        "{method} {path} {version}"
                    );
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, paths.len() * 8);
    }
}
