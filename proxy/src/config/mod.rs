//! The configuration file: types, loading and validation.

pub mod types;

pub use types::*;
