//! The `weir` operator commands that talk to a running proxy (plus
//! `weir filter new`, which scaffolds a filter crate).
//!
//! `main.rs` adds [`ControlCommand`]'s variants to its own subcommands with
//! `#[command(flatten)]`, flattens [`ControlArgs`] into its parser, and calls
//! [`execute`]. Exit codes, which scripts rely on:
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | done |
//! | 1 | the operation was refused or failed (the reason is printed) |
//! | 2 | usage error: bad arguments, unreadable input file |
//! | 3 | the control API cannot be reached |
//! | 4 | the control API refused our credentials |

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bytes::Bytes;
use clap::{Args, Subcommand, ValueEnum};
use futures_util::StreamExt;

use super::address::{CONTROL_ENV, ControlAddress, DEFAULT_CONTROL_ADDRESS};
use super::auth::{BearerToken, TOKEN_ENV};
use super::client::{ClientError, ControlClient, error_chain};
use super::output::{self, OutputFormat, human_bytes};
use super::plane::{ApplyConfig, ConfigFormat, LoadFilter, ModuleSource, Position};
use super::progress::with_spinner;
use super::scaffold::{NewFilter, ScaffoldError, SdkSource, scaffold};

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
        /// Depend on a local weir-sdk checkout instead of the registry.
        #[arg(long, value_name = "PATH", conflicts_with = "sdk_version")]
        sdk_path: Option<PathBuf>,
        /// The weir-sdk version to depend on (default: this weir's).
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

/// Checks a configuration text before it is sent: `Err` holds the reason,
/// naming the file and field. The seam for `crate::config`'s full validation.
pub type ConfigCheck = fn(text: &str, format: ConfigFormat, origin: &Path) -> Result<(), String>;

/// The default [`ConfigCheck`]: the text must deserialize into the config
/// model (so unknown fields, missing fields and wrong types are caught here,
/// with the field's path); the proxy validates fully when applying.
pub fn check_config_model(text: &str, format: ConfigFormat, origin: &Path) -> Result<(), String> {
    let result: Result<crate::config::Config, String> = match format {
        ConfigFormat::Json => {
            let de = &mut serde_json::Deserializer::from_str(text);
            serde_path_to_error::deserialize(de).map_err(|e| format!("{}: {}", e.path(), e.inner()))
        }
        ConfigFormat::Yaml => {
            let de = serde_yaml_ng::Deserializer::from_str(text);
            serde_path_to_error::deserialize(de).map_err(|e| format!("{}: {}", e.path(), e.inner()))
        }
    };
    result
        .map(drop)
        .map_err(|reason| format!("{}: {reason}", origin.display()))
}

/// Where the commands go and how they print.
#[derive(Debug, Clone)]
pub struct ControlTarget {
    /// The control API.
    pub address: ControlAddress,
    /// Sent with every call when set.
    pub token: Option<BearerToken>,
    /// How results are printed.
    pub output: OutputFormat,
    /// Run on a configuration before `config apply` sends it.
    pub config_check: ConfigCheck,
}

impl ControlTarget {
    /// `address`, no token, tables, the default config check.
    pub fn new(address: ControlAddress) -> Self {
        Self {
            address,
            token: None,
            output: OutputFormat::Table,
            config_check: check_config_model,
        }
    }

    /// From the command line: the token from `--token-file`, else from
    /// `$WEIR_CONTROL_TOKEN`, else none.
    pub fn from_args(args: &ControlArgs) -> Result<Self, CliError> {
        let token = match &args.token_file {
            Some(path) => Some(BearerToken::from_file(path)),
            None => BearerToken::from_env(TOKEN_ENV).transpose(),
        };
        let token = token
            .transpose()
            .map_err(|e| CliError::Usage(e.to_string()))?;
        Ok(Self {
            token,
            output: args.output,
            ..Self::new(args.control.clone())
        })
    }
}

/// What the process exits with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: done.
    Success = 0,
    /// 1: the operation was refused or failed.
    Failed = 1,
    /// 2: bad arguments or unreadable input.
    Usage = 2,
    /// 3: the control API cannot be reached.
    Unreachable = 3,
    /// 4: the control API refused our credentials.
    Unauthenticated = 4,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

/// Why a command did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments or unreadable input; nothing was sent.
    #[error("{0}")]
    Usage(String),
    /// Refused here, before anything was sent (e.g. the config is invalid).
    #[error("{0}")]
    Refused(String),
    /// The call failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Printing the result failed.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

impl CliError {
    /// The exit code for this error.
    pub fn exit(&self) -> Exit {
        use tonic::Code;
        match self {
            Self::Usage(_) => Exit::Usage,
            Self::Refused(_) | Self::Output(_) => Exit::Failed,
            Self::Client(ClientError::Unreachable { .. }) => Exit::Unreachable,
            Self::Client(ClientError::Status(status)) => match status.code() {
                Code::Unauthenticated | Code::PermissionDenied => Exit::Unauthenticated,
                Code::Unavailable => Exit::Unreachable,
                _ => Exit::Failed,
            },
        }
    }
}

/// Runs `cmd` as `main.rs` would: results on stdout, errors on stderr
/// (`weir: ...`), and the exit code.
pub async fn execute(cmd: ControlCommand, args: &ControlArgs) -> ExitCode {
    let result = match ControlTarget::from_args(args) {
        Ok(target) => run(cmd, &target).await,
        Err(err) => Err(err),
    };
    match result {
        Ok(()) => Exit::Success.into(),
        Err(err) => {
            eprintln!("weir: {err}");
            err.exit().into()
        }
    }
}

/// Runs `cmd` against `target`, printing results on stdout.
pub async fn run(cmd: ControlCommand, target: &ControlTarget) -> Result<(), CliError> {
    let mut stdout = std::io::stdout();
    run_with_output(cmd, target, &mut stdout).await
}

/// Runs `cmd` against `target`, printing results to `out`.
pub async fn run_with_output(
    cmd: ControlCommand,
    target: &ControlTarget,
    out: &mut (dyn Write + Send),
) -> Result<(), CliError> {
    let json = target.output == OutputFormat::Json;
    match cmd {
        ControlCommand::Filter(cmd) => filter(cmd, target, out).await?,
        ControlCommand::Config(ConfigCommand::Apply { file, format }) => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?;
            let format = match format {
                Some(FormatArg::Yaml) => ConfigFormat::Yaml,
                Some(FormatArg::Json) => ConfigFormat::Json,
                None => ConfigFormat::from_path(&file),
            };
            (target.config_check)(&text, format, &file).map_err(|reason| {
                CliError::Refused(format!("invalid configuration, nothing applied: {reason}"))
            })?;
            let mut client = connect(target).await?;
            let request = ApplyConfig {
                text,
                format,
                origin: file.display().to_string(),
            };
            let summary = with_spinner(
                format!("applying {}", file.display()),
                client.apply_config(request),
            )
            .await?;
            let text = if json {
                output::json(&summary)
            } else {
                output::apply_summary(&summary)
            };
            out.write_all(text.as_bytes())?;
        }
        ControlCommand::Status => {
            let status = connect(target).await?.status().await?;
            let text = if json {
                output::json(&status)
            } else {
                output::status_report(&status)
            };
            out.write_all(text.as_bytes())?;
        }
        ControlCommand::Events { follow, recent } => {
            let mut client = connect(target).await?;
            let mut events = client.watch_events(follow, recent).await?;
            while let Some(event) = events.next().await {
                let event = event?;
                let line = if json {
                    output::event_json_line(&event)
                } else {
                    output::event_line(&event)
                };
                out.write_all(line.as_bytes())?;
                out.flush()?;
            }
        }
    }
    Ok(())
}

async fn filter(
    cmd: FilterCommand,
    target: &ControlTarget,
    out: &mut (dyn Write + Send),
) -> Result<(), CliError> {
    let json = target.output == OutputFormat::Json;
    let (verb, filter) = match cmd {
        FilterCommand::New {
            name,
            dir,
            sdk_path,
            sdk_version,
        } => {
            return new_filter(name, dir, sdk_path, sdk_version, json, out);
        }
        FilterCommand::List => {
            let filters = connect(target).await?.list_filters().await?;
            let text = if json {
                output::json(&filters)
            } else {
                output::filters_table(&filters)
            };
            out.write_all(text.as_bytes())?;
            return Ok(());
        }
        FilterCommand::Load {
            name,
            path,
            config,
            before,
            after,
            remote_path,
        } => {
            let config = match config {
                Some(file) => read_json(&file)?,
                None => serde_json::Value::Object(Default::default()),
            };
            let position = match (before, after) {
                (Some(anchor), _) => Position::Before(anchor),
                (None, Some(anchor)) => Position::After(anchor),
                (None, None) => Position::End,
            };
            let (source, what) = module_source(&path, remote_path)?;
            let mut client = connect(target).await?;
            let request = LoadFilter {
                name: name.clone(),
                source,
                config,
                position,
            };
            let message = format!("loading filter {name} ({what})");
            (
                "loaded",
                with_spinner(message, client.load_filter(request)).await?,
            )
        }
        FilterCommand::Reload {
            name,
            path,
            remote_path,
        } => {
            let (source, what) = match path {
                Some(path) => {
                    let (source, what) = module_source(&path, remote_path)?;
                    (Some(source), what)
                }
                None => (None, "its current source".to_string()),
            };
            let mut client = connect(target).await?;
            let message = format!("reloading filter {name} ({what})");
            (
                "reloaded",
                with_spinner(message, client.reload_filter(name, source)).await?,
            )
        }
        FilterCommand::Unload { name } => {
            connect(target).await?.unload_filter(name.clone()).await?;
            let text = if json {
                output::json(&serde_json::json!({ "unloaded": name }))
            } else {
                format!("unloaded filter {name}\n")
            };
            out.write_all(text.as_bytes())?;
            return Ok(());
        }
        FilterCommand::Rollback { name } => (
            "rolled back",
            connect(target).await?.rollback_filter(name).await?,
        ),
    };
    let text = if json {
        output::json(&filter)
    } else {
        output::filter_changed(verb, &filter)
    };
    out.write_all(text.as_bytes())?;
    Ok(())
}

/// `weir filter new`: needs no proxy.
fn new_filter(
    name: String,
    dir: Option<PathBuf>,
    sdk_path: Option<PathBuf>,
    sdk_version: Option<String>,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<(), CliError> {
    let sdk = match (sdk_path, sdk_version) {
        (Some(path), _) => SdkSource::Path(path),
        (None, Some(version)) => SdkSource::Version(version),
        (None, None) => SdkSource::default(),
    };
    let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
    let done = scaffold(&NewFilter { name, dir, sdk }).map_err(|e| match e {
        ScaffoldError::InvalidName(_) | ScaffoldError::SdkPath { .. } => {
            CliError::Usage(e.to_string())
        }
        ScaffoldError::NotEmpty(_) | ScaffoldError::Write { .. } => {
            CliError::Refused(e.to_string())
        }
    })?;
    if json {
        out.write_all(output::json(&done).as_bytes())?;
        return Ok(());
    }
    writeln!(
        out,
        "created filter crate {} in {}",
        done.name,
        done.dir.display()
    )?;
    for file in &done.files {
        writeln!(out, "  {}", file.display())?;
    }
    writeln!(
        out,
        "next: cd {} && cargo build --release --target wasm32-wasip2",
        done.dir.display()
    )?;
    Ok(())
}

async fn connect(target: &ControlTarget) -> Result<ControlClient, CliError> {
    Ok(ControlClient::connect(&target.address, target.token.clone()).await?)
}

/// The module to send, and how to describe it while it goes.
fn module_source(path: &Path, remote: bool) -> Result<(ModuleSource, String), CliError> {
    if remote {
        return Ok((
            ModuleSource::Path(path.to_path_buf()),
            format!("{} on the proxy", path.display()),
        ));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| CliError::Usage(format!("cannot read module {}: {e}", path.display())))?;
    let what = format!("uploading {}", human_bytes(bytes.len() as u64));
    Ok((ModuleSource::Bytes(Bytes::from(bytes)), what))
}

fn read_json(file: &Path) -> Result<serde_json::Value, CliError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        CliError::Usage(format!(
            "{} is not valid JSON: {}",
            file.display(),
            error_chain(&e)
        ))
    })
}
