//! Route header mutations, compiled once.

use http::{HeaderMap, HeaderName, HeaderValue};

use super::RoutingError;
use crate::config::HeaderMutations;

/// Header changes a route makes, applied remove → set → add.
#[derive(Debug, Clone, Default)]
pub struct HeaderOps {
    remove: Vec<HeaderName>,
    set: Vec<(HeaderName, HeaderValue)>,
    add: Vec<(HeaderName, HeaderValue)>,
}

impl HeaderOps {
    /// Compile `config`; `field` is its place in the config, for errors.
    pub(crate) fn new(config: &HeaderMutations, field: &str) -> Result<Self, RoutingError> {
        let remove = config
            .remove
            .iter()
            .enumerate()
            .map(|(i, name)| {
                HeaderName::from_bytes(name.as_bytes()).map_err(|e| {
                    RoutingError::invalid(format!("{field}.remove[{i}]"), format!("`{name}`: {e}"))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            remove,
            set: pairs(&config.set, &format!("{field}.set"))?,
            add: pairs(&config.add, &format!("{field}.add"))?,
        })
    }

    /// Apply to `headers`: remove, then set (replacing every value), then add
    /// (appending).
    pub fn apply(&self, headers: &mut HeaderMap) {
        for name in &self.remove {
            headers.remove(name);
        }
        for (name, value) in &self.set {
            headers.insert(name.clone(), value.clone());
        }
        for (name, value) in &self.add {
            headers.append(name.clone(), value.clone());
        }
    }

    /// True when there is nothing to apply (lets the pipeline skip the call).
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.set.is_empty() && self.add.is_empty()
    }
}

/// Parse config header pairs, naming the field and header on error.
pub(crate) fn pairs<'a>(
    config: impl IntoIterator<Item = (&'a String, &'a String)>,
    field: &str,
) -> Result<Vec<(HeaderName, HeaderValue)>, RoutingError> {
    config
        .into_iter()
        .map(|(name, value)| {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| RoutingError::invalid(format!("{field}.{name}"), e))?;
            let value = HeaderValue::from_str(value).map_err(|e| {
                RoutingError::invalid(format!("{field}.{name}"), format!("value: {e}"))
            })?;
            Ok((header, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn remove_then_set_then_add() {
        let config = HeaderMutations {
            remove: vec!["x-secret".into(), "X-Both".into()],
            set: map(&[("x-both", "set"), ("x-replaced", "new")]),
            add: map(&[("x-both", "added"), ("x-multi", "two")]),
        };
        let ops = HeaderOps::new(&config, "h").unwrap();
        assert!(!ops.is_empty());
        let mut headers = HeaderMap::new();
        headers.insert("x-secret", HeaderValue::from_static("s"));
        headers.append("x-both", HeaderValue::from_static("old"));
        headers.append("x-replaced", HeaderValue::from_static("a"));
        headers.append("x-replaced", HeaderValue::from_static("b"));
        headers.append("x-multi", HeaderValue::from_static("one"));
        headers.append("x-untouched", HeaderValue::from_static("u"));
        ops.apply(&mut headers);

        let all = |name: &str| -> Vec<&str> {
            headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect()
        };
        assert!(all("x-secret").is_empty());
        assert_eq!(all("x-both"), vec!["set", "added"]);
        assert_eq!(all("x-replaced"), vec!["new"]);
        assert_eq!(all("x-multi"), vec!["one", "two"]);
        assert_eq!(all("x-untouched"), vec!["u"]);
    }

    #[test]
    fn empty_ops_are_empty() {
        assert!(
            HeaderOps::new(&HeaderMutations::default(), "h")
                .unwrap()
                .is_empty()
        );
        assert!(HeaderOps::default().is_empty());
    }

    #[test]
    fn bad_names_and_values_are_errors_naming_the_field() {
        let bad_name = HeaderMutations {
            set: map(&[("bad name", "v")]),
            ..Default::default()
        };
        let err = HeaderOps::new(&bad_name, "routes[0].request_headers").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("routes[0].request_headers.set.bad name"),
            "{err}"
        );
        let bad_value = HeaderMutations {
            add: map(&[("x", "line\nbreak")]),
            ..Default::default()
        };
        assert!(HeaderOps::new(&bad_value, "h").is_err());
        let bad_remove = HeaderMutations {
            remove: vec!["".into()],
            ..Default::default()
        };
        assert!(HeaderOps::new(&bad_remove, "h").is_err());
    }
}
