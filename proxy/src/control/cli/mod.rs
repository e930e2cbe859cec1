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

mod args;
mod target;

pub use args::{ConfigCommand, ControlArgs, ControlCommand, FilterCommand, FormatArg};
pub use target::{CliError, ConfigCheck, ControlTarget, Exit, check_config_model};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bytes::Bytes;
use futures_util::StreamExt;

use super::client::{ControlClient, error_chain};
use super::output::{self, OutputFormat, human_bytes};
use super::plane::{ApplyConfig, ConfigFormat, LoadFilter, ModuleSource, Position};
use super::progress::with_spinner;
use super::scaffold::{NewFilter, ScaffoldError, SdkSource, default_sdk, scaffold};

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
            sdk_git,
            sdk_version,
        } => {
            let sdk = (sdk_path, sdk_git, sdk_version);
            return new_filter(name, dir, sdk, json, out);
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
    (sdk_path, sdk_git, sdk_version): (Option<PathBuf>, Option<String>, Option<String>),
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<(), CliError> {
    // Without an option: weir-sdk is not on crates.io yet, so a checkout's sdk/.
    let sdk = match (sdk_path, sdk_git, sdk_version) {
        (Some(path), _, _) => SdkSource::Path(path),
        (None, Some(url), _) => SdkSource::Git(url),
        (None, None, Some(version)) => SdkSource::Version(version),
        (None, None, None) => default_sdk().map_err(|e| CliError::Usage(e.to_string()))?,
    };
    let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
    let done = scaffold(&NewFilter { name, dir, sdk }).map_err(|e| match e {
        ScaffoldError::InvalidName(_) | ScaffoldError::SdkPath { .. } | ScaffoldError::NoSdk(_) => {
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
