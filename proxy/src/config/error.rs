//! Configuration errors: where in the file, which field, and why.

use std::fmt;
use std::path::{Path, PathBuf};

/// One step of a [`FieldPath`]: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    /// A mapping key (a struct field or a map entry such as a header name).
    Key(String),
    /// A position in a sequence, counting from 0.
    Index(usize),
}

/// The path to a node of the configuration, written like
/// `virtual_hosts[0].routes[2].forward.cluster`. The root path is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPath(Vec<PathSegment>);

impl FieldPath {
    /// The path of the whole document.
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// A path made of these segments.
    pub fn from_segments(segments: Vec<PathSegment>) -> Self {
        Self(segments)
    }

    /// This path extended by a mapping key.
    pub fn key(&self, key: impl Into<String>) -> Self {
        let mut segments = self.0.clone();
        segments.push(PathSegment::Key(key.into()));
        Self(segments)
    }

    /// This path extended by a sequence index.
    pub fn index(&self, index: usize) -> Self {
        let mut segments = self.0.clone();
        segments.push(PathSegment::Index(index));
        Self(segments)
    }

    /// The segments, outermost first.
    pub fn segments(&self) -> &[PathSegment] {
        &self.0
    }

    /// True for the path of the whole document.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, segment) in self.0.iter().enumerate() {
            match segment {
                PathSegment::Index(index) => write!(f, "[{index}]")?,
                PathSegment::Key(key) if is_plain_key(key) => {
                    if position > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(key)?;
                }
                PathSegment::Key(key) => write!(f, "[{key:?}]")?,
            }
        }
        Ok(())
    }
}

/// Keys written bare in a path; others (with dots, spaces, ...) are quoted.
fn is_plain_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A semantic problem found by [`validate`](super::validate): the field and
/// what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationIssue {
    /// The offending field.
    pub path: FieldPath,
    /// What is wrong, in one line.
    pub reason: String,
}

impl ValidationIssue {
    /// An issue at `path`.
    pub fn new(path: FieldPath, reason: impl Into<String>) -> Self {
        Self {
            path,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ValidationIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_root() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

/// One problem with a configuration file, located in it as well as possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// The configuration file (as given to [`load`](super::load) or
    /// [`parse_str`](super::parse_str)).
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column (in characters), when known.
    pub column: Option<usize>,
    /// The field concerned; the root path for file-level problems
    /// (unreadable file, syntax error).
    pub path: FieldPath,
    /// What is wrong, in one line.
    pub reason: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if !self.path.is_root() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// Why a configuration could not be loaded: one or more located issues.
/// Displays as one line per issue, `FILE:LINE:COL: FIELD.PATH: REASON`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.issues))]
pub struct ConfigError {
    issues: Vec<ConfigIssue>,
}

impl ConfigError {
    /// An error made of these issues, ordered by position in the file
    /// (issues without a position last, in their given order).
    pub fn new(mut issues: Vec<ConfigIssue>) -> Self {
        issues.sort_by_key(|issue| (issue.line.is_none(), issue.line, issue.column));
        Self { issues }
    }

    /// An error about the file as a whole (no line, no field).
    pub fn file_level(file: &Path, reason: impl Into<String>) -> Self {
        Self::new(vec![ConfigIssue {
            file: file.to_path_buf(),
            line: None,
            column: None,
            path: FieldPath::root(),
            reason: reason.into(),
        }])
    }

    /// The issues, in file order.
    pub fn issues(&self) -> &[ConfigIssue] {
        &self.issues
    }

    /// The issues, by value.
    pub fn into_issues(self) -> Vec<ConfigIssue> {
        self.issues
    }
}

fn render(issues: &[ConfigIssue]) -> String {
    issues
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_display_like_field_accessors() {
        let path = FieldPath::root()
            .key("virtual_hosts")
            .index(0)
            .key("routes")
            .index(2)
            .key("forward")
            .key("cluster");
        assert_eq!(
            path.to_string(),
            "virtual_hosts[0].routes[2].forward.cluster"
        );
        assert_eq!(
            FieldPath::root().key("a.b").index(1).to_string(),
            "[\"a.b\"][1]"
        );
        assert_eq!(
            FieldPath::root().key("set").key("x-id").to_string(),
            "set.x-id"
        );
        assert_eq!(FieldPath::root().to_string(), "");
    }

    #[test]
    fn issues_display_file_line_column_path_reason() {
        let issue = ConfigIssue {
            file: PathBuf::from("examples/weir.yaml"),
            line: Some(14),
            column: Some(9),
            path: FieldPath::root().key("clusters").index(0),
            reason: "bad".into(),
        };
        assert_eq!(
            issue.to_string(),
            "examples/weir.yaml:14:9: clusters[0]: bad"
        );
        let unlocated = ConfigIssue {
            line: None,
            column: None,
            ..issue.clone()
        };
        assert_eq!(
            unlocated.to_string(),
            "examples/weir.yaml: clusters[0]: bad"
        );
        let file_level = ConfigError::file_level(Path::new("w.yaml"), "cannot read");
        assert_eq!(file_level.to_string(), "w.yaml: cannot read");
    }

    #[test]
    fn errors_list_issues_in_file_order_one_per_line() {
        let at = |line: Option<usize>, reason: &str| ConfigIssue {
            file: PathBuf::from("w.yaml"),
            line,
            column: line.map(|_| 1),
            path: FieldPath::root().key("x"),
            reason: reason.into(),
        };
        let error = ConfigError::new(vec![at(None, "c"), at(Some(9), "b"), at(Some(2), "a")]);
        assert_eq!(
            error.to_string(),
            "w.yaml:2:1: x: a\nw.yaml:9:1: x: b\nw.yaml: x: c"
        );
        assert_eq!(error.issues().len(), 3);
    }
}
