//! Errors of the filter host: loading a filter set, and one filter call.

use std::path::PathBuf;

/// Why a filter set could not be loaded. Every variant names the filter (and
/// the module file where one is involved), so the operator knows what to fix.
#[derive(Debug, thiserror::Error)]
pub enum FilterLoadError {
    /// Two filters in the default chain share a name.
    #[error("filter `{filter}` is listed twice in `filters`; names must be unique")]
    DuplicateFilter {
        /// The repeated name.
        filter: String,
    },
    /// A route names a filter that is not in the default chain and gives no `module`.
    #[error(
        "route {route}: filter `{filter}` is not in the default chain; give `module` to add it"
    )]
    UnknownRouteFilter {
        /// The route (its name, or its position).
        route: String,
        /// The filter name.
        filter: String,
    },
    /// A route entry is contradictory (e.g. `module` for a chain filter).
    #[error("route {route}: filter `{filter}`: {reason}")]
    InvalidRouteFilter {
        /// The route (its name, or its position).
        route: String,
        /// The filter name.
        filter: String,
        /// What is wrong with the entry.
        reason: String,
    },
    /// A filter's limits are outside what the runtime can provide.
    #[error("filter `{filter}`: {reason}")]
    InvalidLimits {
        /// The filter name.
        filter: String,
        /// What is wrong.
        reason: String,
    },
    /// The module file could not be read.
    #[error("filter `{filter}`: cannot read module {}: {source}", path.display())]
    ReadModule {
        /// The filter name.
        filter: String,
        /// The module path as resolved.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid WebAssembly component, or failed to compile.
    #[error("filter `{filter}`: {} is not a valid WebAssembly component: {reason}", path.display())]
    Compile {
        /// The filter name.
        filter: String,
        /// The module path.
        path: PathBuf,
        /// The compiler's message.
        reason: String,
    },
    /// The component imports something the host does not provide, or does
    /// not export `weir:filter/handler@0.1.0` with the contract's signatures.
    #[error("filter `{filter}`: {} does not match the filter contract (wit/filter.wit): {reason}", path.display())]
    Contract {
        /// The filter name.
        filter: String,
        /// The module path.
        path: PathBuf,
        /// Which import or export does not match.
        reason: String,
    },
    /// `execution: inline` was asked of a component that imports a host
    /// function whose calls wait (`callout`).
    #[error(
        "filter `{filter}`: `execution: inline` is not possible for {}: it imports \
         `{import}`, whose calls wait, and an inline filter cannot wait; use \
         `execution: yielding` for this filter",
        path.display()
    )]
    InlineNeedsYielding {
        /// The filter name.
        filter: String,
        /// The module path.
        path: PathBuf,
        /// The waiting import, with its version.
        import: String,
    },
    /// Instantiating the component failed (limits, start function trap).
    #[error("filter `{filter}`: cannot instantiate: {reason}")]
    Instantiate {
        /// The filter name.
        filter: String,
        /// Why.
        reason: String,
    },
    /// The filter's `configure` returned an error: the configuration is rejected.
    #[error("filter `{filter}` rejected its configuration: {message}")]
    ConfigRejected {
        /// The filter name.
        filter: String,
        /// The filter's own message.
        message: String,
    },
    /// The filter's `configure` trapped or ran out of time or memory.
    #[error("filter `{filter}` failed in configure: {reason}")]
    ConfigureFailed {
        /// The filter name.
        filter: String,
        /// The trap or limit.
        reason: String,
    },
    /// The configuration could not be turned into JSON for `configure`.
    #[error("filter `{filter}`: configuration is not serialisable: {reason}")]
    Config {
        /// The filter name.
        filter: String,
        /// Why.
        reason: String,
    },
}

/// Why the runtime could not be created.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The engine rejected its configuration (e.g. the pooling allocator
    /// could not reserve its address space under `ulimit -v`).
    #[error(
        "cannot create the WebAssembly engine with {max_instances} instance slots of up to \
         {max_memory_mib} MiB (wasm.max_instances, wasm.max_memory_mib): {reason}; \
         where address space is limited (ulimit -v), lower them"
    )]
    Engine {
        /// `wasm.max_instances` the engine was sized with.
        max_instances: u32,
        /// `wasm.max_memory_mib` the engine was sized with.
        max_memory_mib: u32,
        /// What wasmtime said.
        reason: String,
    },
    /// The compiled-module cache directory could not be set up.
    #[error("cannot use the module cache directory {}: {reason}", path.display())]
    Cache {
        /// The directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The host functions could not be added to the linker.
    #[error("cannot set up the host functions: {0}")]
    Linker(String),
}

/// Why one phase call (or getting an instance for it) failed.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum CallFailure {
    /// The phase returned `Err(message)`.
    #[error("returned an error: {0}")]
    Guest(String),
    /// The guest trapped.
    #[error("trapped: {0}")]
    Trap(String),
    /// The guest's memory would have grown past `limits.memory_mib` (a trap).
    #[error("trapped: {0}")]
    Memory(String),
    /// The call used more CPU time than `limits.cpu_per_call`.
    #[error("exceeded its CPU time limit of {0:?}")]
    CpuDeadline(std::time::Duration),
    /// Every instance was busy for longer than the wait bound.
    #[error("no instance available (all {0} busy)")]
    Busy(u32),
    /// A new instance could not be created or configured.
    #[error("cannot create an instance: {0}")]
    Instantiate(String),
    /// The guest answered something the host cannot use.
    #[error("{0}")]
    Invalid(String),
}

impl CallFailure {
    /// The kind reported in failure events.
    pub(crate) fn kind(&self) -> crate::wasm::FailureKind {
        use crate::wasm::FailureKind;
        match self {
            Self::Trap(_) => FailureKind::Trap,
            Self::Memory(_) => FailureKind::Memory,
            Self::CpuDeadline(_) => FailureKind::CpuDeadline,
            Self::Busy(_) => FailureKind::Busy,
            Self::Guest(_) | Self::Instantiate(_) | Self::Invalid(_) => FailureKind::Error,
        }
    }
}

/// Longest error description kept (guest backtraces can be long).
const MAX_DESCRIPTION: usize = 1024;

/// Render a wasmtime error with its causes on one line, without the wasm
/// backtrace (the trap itself says what happened).
pub(crate) fn describe(error: &wasmtime::Error) -> String {
    let mut out = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if text.starts_with("error while executing at wasm backtrace") {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        // One line: some parser messages pretty-print byte arrays.
        out.push_str(&text.split_whitespace().collect::<Vec<_>>().join(" "));
    }
    if out.len() > MAX_DESCRIPTION {
        let mut end = MAX_DESCRIPTION;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push('…');
    }
    out
}
