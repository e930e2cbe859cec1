//! Zero-trust request authorization for Weir: JWT bearer tokens, API keys,
//! ordered RBAC rules and optional external authorization.
//!
//! The decision logic lives in SDK-independent modules (tested natively);
//! the filter glue maps the SDK's request and host calls onto [`engine`].

#![warn(missing_docs)]

pub mod apikey;
pub mod config;
pub mod engine;
pub mod ext_authz;
pub mod jwks;
pub mod jwt;
pub mod keys;
pub mod rbac;
pub mod reason;

#[cfg(test)]
mod test_keys;

mod filter;

pub use filter::Authz;

#[cfg(test)]
mod filter_tests;
