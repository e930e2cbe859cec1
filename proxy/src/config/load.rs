//! From text to a validated [`Config`]: deserialize with field paths,
//! normalise, validate, resolve relative paths, check module files, and
//! locate every problem in the text.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use super::error::{ConfigError, ConfigIssue, FieldPath, PathSegment, ValidationIssue};
use super::locate::{Position, locate};
use super::types::Config;
use super::{Format, validate};

/// Parses, checks and completes a configuration (see [`super::parse_str`]).
pub fn parse(text: &str, format: Format, origin: &Path) -> Result<Config, ConfigError> {
    if is_empty(text, format) {
        return Err(ConfigError::file_level(
            origin,
            "the file is empty: a configuration needs at least `listeners` and `virtual_hosts`",
        ));
    }
    let mut config = deserialize(text, format, origin)?;
    normalise(&mut config);
    let mut issues = validate(&config).err().unwrap_or_default();
    issues.extend(resolve_paths(&mut config, origin));
    if issues.is_empty() {
        return Ok(config);
    }
    let located = issues.into_iter().map(|issue| {
        let position = locate(text, format, &issue.path);
        located_issue(origin, position, issue.path, issue.reason)
    });
    Err(ConfigError::new(located.collect()))
}

/// Blank, or a YAML document of nothing but comments.
fn is_empty(text: &str, format: Format) -> bool {
    text.trim().is_empty()
        || (format == Format::Yaml
            && matches!(
                serde_yaml_ng::from_str(text),
                Ok(serde_yaml_ng::Value::Null)
            ))
}

fn located_issue(
    file: &Path,
    at: Option<Position>,
    path: FieldPath,
    reason: String,
) -> ConfigIssue {
    ConfigIssue {
        file: file.to_path_buf(),
        line: at.map(|at| at.line),
        column: at.map(|at| at.column),
        path,
        reason,
    }
}

fn deserialize(text: &str, format: Format, origin: &Path) -> Result<Config, ConfigError> {
    let (path, position, message) = match format {
        Format::Yaml => {
            let deserializer = serde_yaml_ng::Deserializer::from_str(text);
            match serde_path_to_error::deserialize(deserializer) {
                Ok(config) => return Ok(config),
                Err(error) => {
                    let path = field_path(error.path());
                    let inner = error.inner();
                    let position = match inner.location() {
                        Some(at) => Some(Position {
                            line: at.line(),
                            column: at.column(),
                        }),
                        None => locate(text, format, &path),
                    };
                    (
                        path,
                        position,
                        strip_yaml_path(&strip_mark(&inner.to_string())),
                    )
                }
            }
        }
        Format::Json => {
            let mut deserializer = serde_json::Deserializer::from_str(text);
            let parsed = serde_path_to_error::deserialize(&mut deserializer);
            let (path, inner) = match parsed.map(|config| (deserializer.end(), config)) {
                Ok((Ok(()), config)) => return Ok(config),
                Ok((Err(trailing), _)) => (FieldPath::root(), trailing),
                Err(error) => (field_path(error.path()), error.into_inner()),
            };
            let at_error = (inner.line() > 0).then(|| Position {
                line: inner.line(),
                column: inner.column(),
            });
            // Data errors are located at the field (serde_json reports the end
            // of the value); syntax errors where the parser stopped.
            let position = match inner.classify() {
                serde_json::error::Category::Data => locate(text, format, &path).or(at_error),
                _ => at_error,
            };
            (path, position, strip_mark(&inner.to_string()))
        }
    };
    let reason = explain_duration(with_suggestion(message));
    Err(ConfigError::new(vec![located_issue(
        origin, position, path, reason,
    )]))
}

fn field_path(path: &serde_path_to_error::Path) -> FieldPath {
    let mut segments = Vec::new();
    for segment in path.iter() {
        segments.push(match segment {
            serde_path_to_error::Segment::Seq { index } => PathSegment::Index(*index),
            serde_path_to_error::Segment::Map { key } => PathSegment::Key(key.clone()),
            serde_path_to_error::Segment::Enum { variant } => PathSegment::Key(variant.clone()),
            serde_path_to_error::Segment::Unknown => break,
        });
    }
    FieldPath::from_segments(segments)
}

/// Removes the first ` at line L column C` (or ` at position N`): the
/// position is reported separately.
fn strip_mark(message: &str) -> String {
    static MARK: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r" at (?:line \d+ column \d+|position \d+)").expect("valid regex")
    });
    MARK.replacen(message, 1, "").into_owned()
}

/// Removes the `a.b[0]: ` prefix serde_yaml_ng puts before messages: the
/// path is reported separately (and more precisely).
fn strip_yaml_path(message: &str) -> String {
    static PREFIX: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^[\w-]+(?:\[\d+\])*(?:\.(?:[\w-]+|\?)(?:\[\d+\])*)*: ").expect("valid regex")
    });
    PREFIX.replace(message, "").into_owned()
}

/// Adds "did you mean ...?" to serde's unknown field / variant messages.
fn with_suggestion(message: String) -> String {
    static UNKNOWN: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^unknown (?:field|variant) `([^`]*)`, expected (.*)$").expect("valid regex")
    });
    static CANDIDATE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"`([^`]*)`").expect("valid regex"));
    let Some(captures) = UNKNOWN.captures(&message) else {
        return message;
    };
    let typo = &captures[1];
    let best = CANDIDATE
        .captures_iter(&captures[2])
        .map(|candidate| candidate[1].to_string())
        .map(|candidate| (edit_distance(typo, &candidate), candidate))
        .min();
    match best {
        Some((distance, candidate)) if distance <= typo.chars().count().div_ceil(3).max(1) => {
            format!("{message}; did you mean `{candidate}`?")
        }
        _ => message,
    }
}

/// humantime_serde only says "expected a duration": add what is wrong.
fn explain_duration(message: String) -> String {
    static DURATION: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"^invalid value: string "(.*)", expected a duration$"#).expect("valid regex")
    });
    const HINT: &str = "write durations like \"250ms\", \"30s\", \"1m 30s\"";
    let Some(captures) = DURATION.captures(&message) else {
        return match message.ends_with(", expected a duration") {
            true => format!("{message} ({HINT})"),
            false => message,
        };
    };
    let text = captures[1].replace("\\\"", "\"");
    match humantime::parse_duration(&text) {
        Err(error) => format!("invalid duration {text:?}: {error} ({HINT})"),
        Ok(_) => message,
    }
}

/// Levenshtein distance, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// Lower-cases virtual host domains (host names are case-insensitive).
fn normalise(config: &mut Config) {
    for host in &mut config.virtual_hosts {
        for domain in &mut host.domains {
            *domain = domain.to_ascii_lowercase();
        }
    }
}

/// Makes filter `module` paths and `wasm.cache_dir` absolute, relative to
/// the directory of `origin`, and checks that module files exist.
fn resolve_paths(config: &mut Config, origin: &Path) -> Vec<ValidationIssue> {
    let mut issues = Vec::new();
    let base = match base_directory(origin) {
        Ok(base) => base,
        Err(reason) => return vec![ValidationIssue::new(FieldPath::root(), reason)],
    };
    let root = FieldPath::root();
    let mut modules: Vec<(FieldPath, &mut String)> = Vec::new();
    for (index, filter) in config.filters.iter_mut().enumerate() {
        modules.push((
            root.key("filters").index(index).key("module"),
            &mut filter.module,
        ));
    }
    for (host_index, host) in config.virtual_hosts.iter_mut().enumerate() {
        let host_path = root.key("virtual_hosts").index(host_index);
        for (route_index, route) in host.routes.iter_mut().enumerate() {
            let route_path = host_path.key("routes").index(route_index);
            for (filter_index, filter) in route.filters.iter_mut().enumerate() {
                if let Some(module) = filter.module.as_mut() {
                    modules.push((
                        route_path.key("filters").index(filter_index).key("module"),
                        module,
                    ));
                }
            }
        }
    }
    for (path, module) in modules {
        if module.trim().is_empty() {
            continue; // reported by validate
        }
        match absolute_under(&base, module) {
            Ok(resolved) => {
                if let Some(problem) = module_file_problem(Path::new(&resolved)) {
                    issues.push(ValidationIssue::new(path, problem));
                }
                *module = resolved;
            }
            Err(reason) => issues.push(ValidationIssue::new(path, reason)),
        }
    }
    if let Some(cache_dir) = config
        .wasm
        .cache_dir
        .as_mut()
        .filter(|dir| !dir.trim().is_empty())
    {
        match absolute_under(&base, cache_dir) {
            Ok(resolved) => *cache_dir = resolved,
            Err(reason) => issues.push(ValidationIssue::new(
                root.key("wasm").key("cache_dir"),
                reason,
            )),
        }
    }
    issues
}

/// The absolute directory relative paths in `origin` are resolved against.
fn base_directory(origin: &Path) -> Result<PathBuf, String> {
    let directory = origin
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty());
    std::path::absolute(directory.unwrap_or(Path::new(".")))
        .map_err(|error| format!("cannot resolve the configuration's directory: {error}"))
}

fn absolute_under(base: &Path, relative: &str) -> Result<String, String> {
    let joined = base.join(relative);
    joined
        .to_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("resolved path {} is not valid UTF-8", joined.display()))
}

fn module_file_problem(resolved: &Path) -> Option<String> {
    match std::fs::metadata(resolved) {
        Ok(metadata) if metadata.is_file() => None,
        Ok(_) => Some(format!("module {} is not a file", resolved.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            Some(format!("module file not found: {}", resolved.display()))
        }
        Err(error) => Some(format!(
            "cannot read module {}: {error}",
            resolved.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_and_yaml_paths_are_stripped_from_messages() {
        assert_eq!(
            strip_mark("bad thing at line 3 column 5, while parsing at line 1 column 1"),
            "bad thing, while parsing at line 1 column 1"
        );
        assert_eq!(
            strip_yaml_path("listeners[0].address: invalid type: map"),
            "invalid type: map"
        );
        assert_eq!(
            strip_yaml_path("invalid type: map, expected a string"),
            "invalid type: map, expected a string"
        );
    }

    #[test]
    fn unknown_names_get_a_suggestion() {
        let message = "unknown field `timout`, expected one of `cluster`, `timeout`".to_string();
        assert!(with_suggestion(message).ends_with("; did you mean `timeout`?"));
        let message =
            "unknown variant `fail_opn`, expected `fail_closed` or `fail_open`".to_string();
        assert!(with_suggestion(message).ends_with("; did you mean `fail_open`?"));
        let far = "unknown field `zzz`, expected `cluster` or `timeout`".to_string();
        assert_eq!(with_suggestion(far.clone()), far);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
