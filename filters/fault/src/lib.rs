//! Fault injection for Weir: aborts (HTTP status, or a gRPC status in the
//! trailers-only style) and delays on a host timer, for a percentage of the
//! requests in scope, with an optional cap on concurrently active faults.
//!
//! The choice of fault is SDK-independent ([`plan`]); the filter glue applies
//! it through the SDK.

#![warn(missing_docs)]

pub mod config;
pub mod plan;

mod filter;

pub use filter::Fault;
