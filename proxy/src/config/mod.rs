//! The configuration file: types, loading and validation.
//!
//! [`load`] reads a YAML (`.yaml`, `.yml`) or JSON (`.json`) file and returns
//! a [`Config`] that is complete and checked, or a [`ConfigError`] listing
//! every problem as `FILE:LINE:COL: FIELD.PATH: REASON`. Nothing half-loaded
//! is ever returned. The reference is `docs/config.md`.

pub mod engine_layout;
mod error;
mod load;
mod locate;
pub mod types;
mod validate;

#[cfg(test)]
mod docs_tests;
#[cfg(test)]
mod load_tests;

use std::path::Path;

pub use error::{ConfigError, ConfigIssue, FieldPath, PathSegment, ValidationIssue};
pub use types::*;
pub use validate::validate;

/// The syntax of a configuration text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML 1.2 (as read by `serde_yaml_ng`).
    Yaml,
    /// JSON.
    Json,
}

impl Format {
    /// The format a file name's extension says, if any:
    /// `.yaml` / `.yml` → YAML, `.json` → JSON (case-insensitive).
    pub fn from_path(path: &Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "yaml" | "yml" => Some(Self::Yaml),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// Reads, parses and validates the configuration file at `path`.
///
/// The format follows the extension. Relative filter `module` paths (in
/// `filters` and in route `filters`) and `wasm.cache_dir` are made absolute
/// against the file's directory, and module files must exist.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let Some(format) = Format::from_path(path) else {
        return Err(ConfigError::file_level(
            path,
            "unsupported configuration format: the file name must end in .yaml, .yml or .json",
        ));
    };
    let text = std::fs::read_to_string(path).map_err(|error| {
        ConfigError::file_level(path, format!("cannot read the configuration file: {error}"))
    })?;
    parse_str(&text, format, path)
}

/// Like [`load`], from text: `origin` names the file in messages and its
/// directory is where relative paths are resolved from.
pub fn parse_str(text: &str, format: Format, origin: &Path) -> Result<Config, ConfigError> {
    load::parse(text, format, origin)
}

impl Config {
    /// The configuration as indented JSON, defaults filled in and durations
    /// written like `"30s"`: what the admin `/config` endpoint shows. It
    /// parses back (with [`parse_str`]) to an equal `Config`.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self)
            .expect("a Config always serializes to JSON: every map key is a string")
    }
}
