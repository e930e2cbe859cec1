//! Progressive delivery for Weir: a sticky, weighted split between a stable
//! and a canary cluster, with an optional time-based ramp and automatic
//! rollback when the canary's error rate passes a threshold.
//!
//! Assignment and rollout state are SDK-independent ([`assign`], [`state`]);
//! the filter glue applies them through the SDK.

#![warn(missing_docs)]

pub mod assign;
pub mod config;
pub mod state;

mod filter;

pub use filter::Canary;
