//! The control plane: a gRPC API to manage a running proxy, and the client
//! side of the `weir` operator commands.

/// Code generated from `proto/weir/control/v1/control.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("weir.control.v1");

    /// The encoded FileDescriptorSet of the control API (with its imports),
    /// served by gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("weir_control_descriptor");
}
