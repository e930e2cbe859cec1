//! The control plane: a gRPC API to manage a running proxy, and the client
//! side of the `weir` operator commands.
//!
//! ```text
//!  weir filter/config/status/events ──► client ──gRPC──► server ──► service ──► ControlPlane
//!        (cli, output, progress)                  (auth, limit)                (runtime manager)
//!                                                          ◄── WatchEvents ◄── EventBus ◄── publishers
//! ```
//!
//! - [`plane`]: the [`ControlPlane`] trait the runtime implements, its requests and errors.
//! - [`types`], [`events`]: what it reports; [`EventBus`] for publishers.
//! - [`summary`]: what changes between two configurations.
//! - [`server`]: [`serve`] / [`serve_with`]: TCP or unix socket, token policy,
//!   health and reflection. [`client`]: a typed client.
//! - [`settings`]: the `control:` section of the config file.
//! - [`cli`]: the `weir` subcommands; [`scaffold`]: `weir filter new`.
//!
//! The wire contract is `proto/weir/control/v1/control.proto`; see
//! `docs/control.md` for the operator's view.

pub mod address;
pub mod auth;
pub mod cli;
pub mod client;
mod convert;
pub mod events;
mod limit;
pub mod output;
pub mod plane;
mod progress;
pub mod scaffold;
pub mod server;
mod service;
pub mod settings;
pub mod summary;
pub mod types;

#[cfg(test)]
mod tests;

pub use address::ControlAddress;
pub use auth::BearerToken;
pub use events::{Event, EventBus, EventKind, FilterFailure};
pub use plane::{
    ApplyConfig, ConfigFormat, ControlError, ControlPlane, LoadFilter, ModuleSource, Position,
};
pub use server::{ControlServerConfig, RunningControlServer, ServeError, serve, serve_with};
pub use settings::ControlSettings;
pub use types::{
    ApplySummary, FilterCounters, FilterInfo, FilterVersion, ModuleCacheStatus, Status,
};

/// Code generated from `proto/weir/control/v1/control.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("weir.control.v1");

    /// The encoded FileDescriptorSet of the control API (with its imports),
    /// served by gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("weir_control_descriptor");
}
