//! The `weir` command: run the proxy, or check a config file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use weir_proxy::config::{self, Config};
use weir_proxy::proxy::Runtime;
use weir_proxy::server::{self, ShutdownOutcome};
use weir_proxy::telemetry::{self, LogFormat};
use weir_proxy::wasm::{RuntimeOptions, WasmRuntime};

const EXAMPLES: &str = "\
Examples:
  Check a config file, then run it:
    weir validate --config examples/basic.yaml
    weir run --config examples/basic.yaml

  Debug logging for the proxy only, as JSON lines:
    weir run --config weir.yaml --log-level weir_proxy=debug --log-format json

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
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the proxy with a config file until SIGTERM / SIGINT.
    Run(RunArgs),
    /// Check a config file and exit: 0 when it is valid, 1 with the errors otherwise.
    Validate(ValidateArgs),
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate(args) => validate(&args.config),
        Command::Run(args) => match run(args) {
            Ok(code) => code,
            Err(err) => {
                eprintln!("weir: {err:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// `weir validate`: the summary on stdout, or the errors on stderr.
fn validate(path: &Path) -> ExitCode {
    match config::load(path) {
        Ok(config) => {
            println!("config OK: {}", summary(&config));
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{err}");
            ExitCode::FAILURE
        }
    }
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
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("weir")
        .build()
        .context("starting the async runtime")?;
    tokio.block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<ExitCode> {
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "starting weir");
    // Before binding: a signal that arrives once we are listening must not kill us.
    let mut signals = Signals::install()?;
    let wasm = WasmRuntime::new(RuntimeOptions::from_config(&config.wasm))
        .context("starting the WebAssembly runtime")?;
    let runtime = Runtime::build(config, &wasm)
        .await
        .context("building the proxy from the config")?;
    let handle = server::start(runtime).await?;
    tracing::info!("ready");

    signals.next().await;
    tracing::info!("shutting down: draining connections (signal again to stop at once)");
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
