//! The `weir` command: run the proxy, check a config file, or manage a
//! running proxy through its control API.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use weir_proxy::config::{self, Config};
use weir_proxy::control::cli::{self as control_cli, ControlArgs, ControlCommand, ControlTarget};
use weir_proxy::control::{self, ConfigFormat, ControlPlane};
use weir_proxy::manager::{Manager, ManagerOptions, watch};
use weir_proxy::server::ShutdownOutcome;
use weir_proxy::telemetry::{self, LogFormat};
use weir_proxy::wasm::{CompileCounts, RuntimeOptions, WasmRuntime};
use weir_proxy::workers::WorkerThreads;

/// mimalloc: measurably fewer cycles per request than the system allocator
/// (see bench/NOTES.md). Without the `mimalloc` feature the binary runs on the
/// system allocator, for heap profilers.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EXAMPLES: &str = "\
Examples:
  Check a config file, then run it:
    weir validate --config examples/basic.yaml
    weir run --config examples/basic.yaml

  Debug logging for the proxy only, as JSON lines:
    weir run --config weir.yaml --log-level weir_proxy=debug --log-format json

  Manage the running proxy (control API, 127.0.0.1:9902 by default):
    weir status
    weir filter load auth auth.wasm --config auth.json
    weir filter reload auth auth-v2.wasm && weir filter rollback auth
    weir config apply weir.yaml
    weir events --follow

Signals: SIGTERM or SIGINT (Ctrl-C) shut down gracefully: listeners close, in-flight
requests get limits.drain_timeout to finish. A second signal exits at once.";

/// Weir: a programmable HTTP proxy extended by WebAssembly filters.
#[derive(Debug, Parser)]
#[command(name = "weir", version, after_long_help = EXAMPLES)]
#[command(
    long_about = "Weir: a programmable HTTP proxy extended by WebAssembly filters.\n\n\
    Weir accepts HTTP/1.1 and HTTP/2 (h2c) on its listeners, routes requests by virtual \
    host, path, method, headers and query, and forwards them to upstream clusters — or \
    answers them itself. Filters written against the Weir SDK run as sandboxed \
    WebAssembly components on every request."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    control: ControlArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the proxy with a config file until SIGTERM / SIGINT.
    Run(RunArgs),
    /// Check a config file and exit: 0 when it is valid, 1 with the errors otherwise.
    Validate(ValidateArgs),
    #[command(flatten)]
    Control(ControlCommand),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The YAML config file.
    #[arg(short, long, value_name = "FILE", env = "WEIR_CONFIG")]
    config: PathBuf,
    /// Log level (error, warn, info, debug, trace) or a filter such as
    /// `weir_proxy=debug,info`. Default: $RUST_LOG, else info.
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
    /// Log line format.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = CliLogFormat::Text)]
    log_format: CliLogFormat,
    /// Watch the config file and the filters' module files, and apply a
    /// change when one happens (the default, unless `control.watch: false`).
    #[arg(long, overrides_with = "no_watch")]
    watch: bool,
    /// Do not watch files; changes go through `weir config apply` / `weir filter`.
    #[arg(long, overrides_with = "watch")]
    no_watch: bool,
    /// Worker threads serving traffic (default: one per CPU). Each runs its
    /// own single-threaded event loop with its own upstream connections;
    /// client connections are spread over them round-robin.
    #[arg(long, value_name = "N", env = "TOKIO_WORKER_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
    workers: Option<u16>,
}

#[derive(Debug, Args)]
struct ValidateArgs {
    /// The YAML config file.
    #[arg(short, long, value_name = "FILE", env = "WEIR_CONFIG")]
    config: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CliLogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `err` with its causes, each said once. The library's errors already
/// include their cause in their message (`"filters: {0}"`) and also return
/// it as `source()`, while anyhow contexts do not include it: printing the
/// whole chain (`{:#}`) would repeat the former, printing only the top would
/// drop the latter's cause.
fn error_text(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let message = cause.to_string();
        if text.contains(&message) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&message);
    }
    text
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate(args) => validate(&args.config),
        Command::Control(cmd) => control_command(cmd, &cli.control),
        Command::Run(args) => match run(args) {
            Ok(code) => code,
            Err(err) => {
                eprintln!("weir: {}", error_text(&err));
                ExitCode::FAILURE
            }
        },
    }
}

/// `weir validate`: the summary on stdout, or the errors on stderr.
/// `weir validate`: check the config, then compile and configure its filters
/// exactly as `weir run` would (which also fills the compiled-module cache,
/// when there is one, so the next start skips compiling).
fn validate(path: &Path) -> ExitCode {
    let config = match config::load(path) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::FAILURE;
        }
    };
    let summary = summary(&config);
    if config.filters.is_empty() {
        println!("config OK: {summary}");
        return ExitCode::SUCCESS;
    }
    let loaded = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|tokio| tokio.block_on(load_filters(config)));
    match loaded {
        Ok(counts) => {
            println!(
                "config OK: {summary}; filters loaded ({} compiled, {} from the cache)",
                counts.compiled, counts.cached
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{}: {}", path.display(), error_text(&err));
            ExitCode::FAILURE
        }
    }
}

/// Build the whole runtime of `config` (routes, clusters, filters) and drop it.
async fn load_filters(config: Config) -> anyhow::Result<CompileCounts> {
    let wasm = WasmRuntime::new(RuntimeOptions::from_config(&config.wasm))
        .context("starting the WebAssembly runtime")?;
    weir_proxy::proxy::Runtime::build(config, &wasm).await?;
    Ok(wasm.compile_counts())
}

/// `weir filter|config|status|events`: talk to a running proxy.
fn control_command(cmd: ControlCommand, args: &ControlArgs) -> ExitCode {
    let tokio = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(tokio) => tokio,
        Err(err) => {
            eprintln!("weir: starting the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    tokio.block_on(async {
        let result = match ControlTarget::from_args(args) {
            Ok(mut target) => {
                target.config_check = check_config_fully;
                control_cli::run(cmd, &target).await
            }
            Err(err) => Err(err),
        };
        match result {
            Ok(()) => control_cli::Exit::Success.into(),
            Err(err) => {
                eprintln!("weir: {err}");
                err.exit().into()
            }
        }
    })
}

/// `weir config apply` checks the file here before sending it: the full
/// loader (model, validation, module files relative to the file).
fn check_config_fully(text: &str, format: ConfigFormat, origin: &Path) -> Result<(), String> {
    let format = match format {
        ConfigFormat::Yaml => config::Format::Yaml,
        ConfigFormat::Json => config::Format::Json,
    };
    config::parse_str(text, format, origin)
        .map(drop)
        .map_err(|err| err.to_string())
}

/// "N listeners, N routes, N clusters, N filters".
fn summary(config: &Config) -> String {
    let routes: usize = config.virtual_hosts.iter().map(|vh| vh.routes.len()).sum();
    let route_filters = config
        .virtual_hosts
        .iter()
        .flat_map(|vh| &vh.routes)
        .flat_map(|route| &route.filters)
        .filter(|filter| filter.module.is_some())
        .count();
    format!(
        "{} listeners, {} routes, {} clusters, {} filters",
        config.listeners.len(),
        routes,
        config.clusters.len(),
        config.filters.len() + route_filters,
    )
}

/// `weir run`.
fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let format = match args.log_format {
        CliLogFormat::Text => LogFormat::Text,
        CliLogFormat::Json => LogFormat::Json,
    };
    telemetry::init(args.log_level.as_deref(), format)?;
    let config = match config::load(&args.config) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("{err}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let workers = match args.workers {
        Some(workers) => usize::from(workers),
        None => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
    };
    // Worker 0: this thread, which also runs the listeners and the control plane.
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let worker_threads = WorkerThreads::start(tokio.handle().clone(), workers)?;
    let watch = if args.no_watch {
        false
    } else {
        args.watch || config.control.watch
    };
    let outcome = tokio.block_on(serve(config, args.config, watch));
    drop(worker_threads);
    outcome
}

/// Where uploaded and copied modules are kept: next to the compiled-module
/// cache when there is one, else in a per-process temporary directory.
fn store_dir(config: &Config) -> PathBuf {
    match &config.wasm.cache_dir {
        Some(dir) => Path::new(dir).join("modules"),
        None => std::env::temp_dir().join(format!("weir-{}-modules", std::process::id())),
    }
}

async fn serve(
    config: Config,
    config_path: PathBuf,
    watch_files: bool,
) -> anyhow::Result<ExitCode> {
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "starting weir");
    // Before binding: a signal that arrives once we are listening must not kill us.
    let mut signals = Signals::install()?;
    let wasm = WasmRuntime::new(RuntimeOptions::from_config(&config.wasm))
        .context("starting the WebAssembly runtime")?;
    let base_dir = config_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let control_settings = config.control.clone();
    let options = ManagerOptions {
        config_path: std::path::absolute(&config_path).unwrap_or(config_path),
        store_dir: store_dir(&config),
    };
    let manager = Manager::start(config, Arc::new(wasm), options).await?;
    let handle = manager.server().clone();

    let (stop_control, control_stopped) = tokio::sync::watch::channel(false);
    let control = match control_settings.server_config(&base_dir)? {
        Some(server_config) => {
            let plane: Arc<dyn ControlPlane> = manager.clone();
            let mut stopped = control_stopped.clone();
            let running = control::serve_with(plane, server_config, async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            })
            .await
            .context("starting the control API")?;
            tracing::info!(address = %running.address(), "control API listening");
            Some(running)
        }
        None => None,
    };
    let _watcher = if watch_files {
        Some(
            watch::spawn(manager.clone())
                .await
                .context("watching files")?,
        )
    } else {
        None
    };
    tracing::info!("ready");

    signals.next().await;
    tracing::info!("shutting down: draining connections (signal again to stop at once)");
    let _ = stop_control.send(true);
    if let Some(control) = control
        && let Err(err) = control.wait().await
    {
        tracing::warn!("control API: {err}");
    }
    handle.begin_shutdown();
    tokio::select! {
        outcome = handle.wait() => {
            if let ShutdownOutcome::TimedOut { abandoned } = outcome {
                tracing::warn!(abandoned, "drain timed out; closed the remaining connections");
            }
            tracing::info!("bye");
            Ok(ExitCode::SUCCESS)
        }
        _ = signals.next() => {
            tracing::warn!("second signal: exiting without waiting for the drain");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// SIGTERM and SIGINT, caught.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("listening for SIGINT")?,
        })
    }

    /// Resolves on the next SIGTERM or SIGINT.
    async fn next(&mut self) {
        tokio::select! {
            _ = self.term.recv() => tracing::info!("SIGTERM received"),
            _ = self.int.recv() => tracing::info!("SIGINT received"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("inner failure")]
    struct Inner;

    #[derive(Debug, thiserror::Error)]
    #[error("outer: {0}")]
    struct Outer(#[from] Inner);

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        let err = anyhow::Error::new(Outer(Inner)).context("building");
        assert_eq!(error_text(&err), "building: outer: inner failure");
    }

    #[test]
    fn a_context_keeps_its_cause() {
        let err = anyhow::Error::new(Inner).context("starting the runtime");
        assert_eq!(error_text(&err), "starting the runtime: inner failure");
    }
}
