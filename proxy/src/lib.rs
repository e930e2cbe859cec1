//! Weir: a programmable HTTP proxy whose behaviour is extended by
//! WebAssembly filters.
//!
//! One module per concern:
//! - [`config`]: the configuration file — types, loading, validation.
//! - [`routing`]: virtual hosts and routes compiled from the config.
//! - [`upstream`]: clusters, endpoints, load balancing, connection pools.
//! - [`server`]: listeners, connection limits, graceful shutdown, admin.
//! - [`workers`]: one single-threaded runtime per worker thread; accepted
//!   connections are spread over them.
//! - [`proxy`]: the request pipeline that ties them together.
//! - [`phases`]: the hooks the pipeline offers to extensions.
//! - [`wasm`]: the WebAssembly filter host.
//! - [`error`]: every error that becomes an HTTP response, in one place.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod body;
pub mod config;
pub mod control;
pub mod error;
pub mod manager;
pub mod phases;
pub mod proxy;
pub mod routing;
pub mod server;
pub mod telemetry;
pub mod upstream;
pub mod wasm;
pub mod workers;
