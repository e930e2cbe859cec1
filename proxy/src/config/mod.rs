//! The configuration file: types, loading and validation.
//!
//! [`load`] reads a YAML (`.yaml`, `.yml`) or JSON (`.json`) file and returns
//! a [`Config`] that is complete and checked, or a [`ConfigError`] listing
//! every problem as `FILE:LINE:COL: FIELD.PATH: REASON`. Nothing half-loaded
//! is ever returned. The reference is `docs/config.md`.

mod error;
pub mod types;
mod validate;

pub use error::{ConfigError, ConfigIssue, FieldPath, PathSegment, ValidationIssue};
pub use types::*;
pub use validate::validate;

