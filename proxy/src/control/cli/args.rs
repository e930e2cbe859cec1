//! The command line of the control commands (clap definitions).

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use crate::control::address::{CONTROL_ENV, ControlAddress, DEFAULT_CONTROL_ADDRESS};
use crate::control::output::OutputFormat;

/// Options shared by the control commands.
#[derive(Debug, Clone, Args)]
pub struct ControlArgs {
    /// The proxy's control API: ip:port or unix:PATH.
    #[arg(
        long = "control",
        global = true,
        env = CONTROL_ENV,
        default_value = DEFAULT_CONTROL_ADDRESS,
        value_name = "ADDR|unix:PATH"
    )]
    pub control: ControlAddress,
    /// File holding the control API's bearer token (else $WEIR_CONTROL_TOKEN).
    #[arg(
        long,
        global = true,
        env = "WEIR_CONTROL_TOKEN_FILE",
        value_name = "FILE"
    )]
    pub token_file: Option<PathBuf>,
    /// How to print results: aligned tables, or JSON for scripts.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// Commands for a running proxy.
#[derive(Debug, Clone, Subcommand)]
pub enum ControlCommand {
    /// Manage the filters of a running proxy, or create a new filter crate.
    #[command(subcommand)]
    Filter(FilterCommand),
    /// Change a running proxy's configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Show a running proxy's version, uptime, listeners, clusters and filters.
    Status,
    /// Show recent events (loads, failures, traps, reloads, configs applied).
    Events {
        /// Keep watching and print new events as they happen.
        #[arg(long, short)]
        follow: bool,
        /// How many past events to show first.
        #[arg(long, default_value_t = 50, value_name = "N")]
        recent: u32,
    },
}

/// `weir filter ...`
#[derive(Debug, Clone, Subcommand)]
pub enum FilterCommand {
    /// List the filters of the default chain, in order.
    List,
    /// Upload a filter component, configure it and add it to the chain.
    Load {
        /// A unique name for the filter.
        name: String,
        /// The .wasm component.
        path: PathBuf,
        /// JSON file with the filter's configuration (default `{}`).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Insert before this filter (default: at the end).
        #[arg(long, value_name = "NAME", conflicts_with = "after")]
        before: Option<String>,
        /// Insert after this filter.
        #[arg(long, value_name = "NAME")]
        after: Option<String>,
        /// PATH is on the proxy's machine: send the path, not the file.
        #[arg(long)]
        remote_path: bool,
    },
    /// Replace a filter's component (PATH, or its current source read again).
    Reload {
        /// The filter.
        name: String,
        /// The new .wasm component.
        path: Option<PathBuf>,
        /// PATH is on the proxy's machine: send the path, not the file.
        #[arg(long, requires = "path")]
        remote_path: bool,
    },
    /// Remove a filter from the chain.
    Unload {
        /// The filter.
        name: String,
    },
    /// Go back to the version a filter ran before its last reload.
    Rollback {
        /// The filter.
        name: String,
    },
    /// Create a new filter crate, ready to build.
    New {
        /// The filter's (and crate's) name, e.g. rate-limit.
        name: String,
        /// Where to create it (default: ./NAME).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Depend on this weir-sdk directory (the sdk/ of a Weir checkout).
        /// Default: the sdk/ of the checkout holding the current directory
        /// or this weir binary.
        #[arg(long, value_name = "PATH", conflicts_with_all = ["sdk_version", "sdk_git"])]
        sdk_path: Option<PathBuf>,
        /// Depend on weir-sdk from this git repository (a Weir repository).
        #[arg(long, value_name = "URL", conflicts_with = "sdk_version")]
        sdk_git: Option<String>,
        /// Depend on this weir-sdk version from crates.io (once published).
        #[arg(long, value_name = "VERSION")]
        sdk_version: Option<String>,
    },
}

/// `weir config ...`
#[derive(Debug, Clone, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file here, then apply it to the running
    /// proxy atomically and show what changed.
    Apply {
        /// The configuration file.
        file: PathBuf,
        /// How it is written (default: from the extension; .json is JSON, else YAML).
        #[arg(long, value_enum)]
        format: Option<FormatArg>,
    },
}

/// `--format` of `weir config apply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// YAML.
    Yaml,
    /// JSON.
    Json,
}
