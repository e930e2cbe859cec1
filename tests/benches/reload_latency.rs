//! Reload latency: from a filter's module changing to the first response
//! served by the new version.
//!
//! `cargo bench -p weir-tests --bench reload_latency [-- --iterations N] [-- --only TEXT]`
//!
//! Each scenario starts a real proxy in this process under its runtime
//! manager (what `weir run` does), with a compiled-module disk cache in a
//! fresh temporary directory and one filter in the default chain: a
//! `reload-marker` component, which stamps responses with the 16 marker
//! bytes found in its own data. A new version is the same component with
//! new marker bytes (see `weir_tests::marker`), so a response says which
//! version served it. Per iteration, the clock starts when the change is
//! made and stops at the first response carrying the new marker; requests
//! are sent one at a time, 1 ms apart, over a keep-alive connection.
//!
//! - modules: `reload-marker` (~146 KB, the size of the smallest real
//!   filters) and `reload-marker-large` (~1.1 MB: the same plus a regex
//!   deny-list with full Unicode support).
//! - cold cache: every version has marker bytes never seen before, so it is
//!   compiled by Cranelift. Warm cache: two versions, both compiled once
//!   before timing, alternate; each switch loads the other from the disk
//!   cache (the version that stopped serving has left the in-memory cache).
//! - file watch: the module file is replaced (written next to it, renamed
//!   over it) and the watcher applies it once things have been quiet for
//!   `watch::SETTLE` (a file renamed into place is complete). API: the
//!   control API's `ReloadFilter` over gRPC on loopback, with the bytes read
//!   from the file, as `weir filter reload NAME PATH` sends them.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use bytes::Bytes;
use weir_proxy::control::ModuleSource;
use weir_proxy::control::client::ControlClient;
use weir_tests::artifacts::{RELOAD_MARKER, RELOAD_MARKER_LARGE};
use weir_tests::client::{self, Client};
use weir_tests::managed::Managed;
use weir_tests::marker::{numbered, with_marker};

/// The allocator the `weir` binary ships with (see `proxy/src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Time between two requests while waiting for the new version.
const POLL: Duration = Duration::from_millis(1);
/// Longest wait for one change to be served before giving up.
const GIVE_UP: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Module {
    Small,
    Large,
}

impl Module {
    fn path(self) -> &'static str {
        match self {
            Module::Small => RELOAD_MARKER,
            Module::Large => RELOAD_MARKER_LARGE,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Module::Small => "small",
            Module::Large => "large",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cache {
    Cold,
    Warm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// The module file replaced on disk; the file watcher applies it.
    Watch,
    /// `ReloadFilter` through the control API.
    Api,
}

#[derive(Debug, Clone, Copy)]
struct Scenario {
    module: Module,
    cache: Cache,
    trigger: Trigger,
}

impl Scenario {
    fn name(&self) -> String {
        let cache = match self.cache {
            Cache::Cold => "cold",
            Cache::Warm => "warm",
        };
        let trigger = match self.trigger {
            Trigger::Watch => "watch",
            Trigger::Api => "api",
        };
        format!("{}-{cache}-{trigger}", self.module.label())
    }
}

struct Args {
    iterations: usize,
    only: Option<String>,
}

fn args() -> Result<Args> {
    let mut args = Args {
        iterations: 20,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--iterations" => {
                args.iterations = it.next().context("--iterations N")?.parse()?;
                ensure!(args.iterations > 0, "--iterations must be at least 1");
            }
            "--only" => args.only = Some(it.next().context("--only TEXT")?),
            // cargo bench passes --bench to harness = false targets.
            "--bench" => {}
            other => bail!(
                "unknown argument {other:?}; expected --iterations N, --only TEXT \
                 (a part of a scenario name such as large-warm-api)"
            ),
        }
    }
    Ok(args)
}

fn config(module: &Path) -> String {
    format!(
        r#"listeners:
  - name: main
    address: 127.0.0.1:0
admin:
  enabled: false
control:
  enabled: false
filters:
  - name: marker
    module: {module}
    config: {{}}
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
      - direct_response: {{ status: 200, body: "ok" }}
"#,
        module = module.display()
    )
}

/// One proxy and the means to change its filter.
struct Bench {
    proxy: Managed,
    module: std::path::PathBuf,
    built: Vec<u8>,
    trigger: Trigger,
    api: Option<ControlClient>,
    http: Client,
    _watcher: Option<weir_proxy::manager::watch::FileWatcher>,
    _control: Option<weir_tests::managed::ServedControl>,
    _dir: tempfile::TempDir,
}

impl Bench {
    async fn start(scenario: Scenario) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let module = dir.path().join("marker.wasm");
        let built = std::fs::read(scenario.module.path())?;
        std::fs::write(&module, with_marker(&built, &numbered(0)))?;
        let proxy =
            Managed::start(dir.path(), &config(&module), Some(dir.path().join("cache"))).await;
        let (watcher, control, api) = match scenario.trigger {
            Trigger::Watch => (Some(proxy.watch().await), None, None),
            Trigger::Api => {
                let control = proxy.serve_control_on_loopback().await;
                let api = control.client(None).await;
                (None, Some(control), Some(api))
            }
        };
        let bench = Bench {
            proxy,
            module,
            built,
            trigger: scenario.trigger,
            api,
            http: client::http1(),
            _watcher: watcher,
            _control: control,
            _dir: dir,
        };
        ensure!(
            bench.served_marker().await? == numbered(0),
            "the first version does not serve its marker"
        );
        Ok(bench)
    }

    async fn served_marker(&self) -> Result<String> {
        let response = self.http.get(&format!("{}/", self.proxy.base)).await;
        ensure!(
            response.status == 200,
            "status {}: {}",
            response.status,
            response.text()
        );
        response
            .header("x-marker")
            .map(str::to_owned)
            .context("a response without x-marker")
    }

    /// Changes the filter to the version with `marker`; returns the time
    /// until the first response it served.
    async fn change_to(&mut self, marker: &str) -> Result<Duration> {
        let bytes = with_marker(&self.built, marker);
        let temp = self.module.with_extension("wasm.new");
        let start = match self.trigger {
            Trigger::Watch => {
                std::fs::write(&temp, &bytes)?;
                let start = Instant::now();
                std::fs::rename(&temp, &self.module)?;
                start
            }
            Trigger::Api => {
                std::fs::write(&self.module, &bytes)?;
                let start = Instant::now();
                let read = std::fs::read(&self.module)?;
                let api = self.api.as_mut().expect("an API client");
                api.reload_filter(
                    "marker".into(),
                    Some(ModuleSource::Bytes(Bytes::from(read))),
                )
                .await
                .context("ReloadFilter")?;
                start
            }
        };
        loop {
            if self.served_marker().await? == marker {
                return Ok(start.elapsed());
            }
            if start.elapsed() > GIVE_UP {
                bail!("version {marker} not served after {GIVE_UP:?}");
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// The latencies of one scenario, and how its components were obtained.
struct Outcome {
    times: Vec<Duration>,
    counts: weir_proxy::wasm::CompileCounts,
}

async fn run(scenario: Scenario, iterations: usize) -> Result<Outcome> {
    let mut bench = Bench::start(scenario).await?;
    let mut times = Vec::with_capacity(iterations);
    match scenario.cache {
        Cache::Cold => {
            for i in 0..iterations {
                times.push(bench.change_to(&numbered(1_000 + i as u64)).await?);
            }
        }
        Cache::Warm => {
            let versions = [numbered(1), numbered(2)];
            // Untimed: compile both once (into the disk cache).
            for marker in &versions {
                bench.change_to(marker).await?;
            }
            for i in 0..iterations {
                times.push(bench.change_to(&versions[i % 2]).await?);
            }
        }
    }
    let counts = bench.proxy.manager.wasm().compile_counts();
    let expected_compiles = match scenario.cache {
        // The first version, then one per iteration.
        Cache::Cold => 1 + iterations as u64,
        // The first version and the two alternating ones.
        Cache::Warm => 3,
    };
    ensure!(
        counts.compiled == expected_compiles,
        "{}: expected {expected_compiles} compilations, saw {counts:?}",
        scenario.name()
    );
    bench.proxy.manager.server().shutdown().await;
    Ok(Outcome { times, counts })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(sorted: &[Duration]) -> Duration {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = args()?;
    let mut scenarios = Vec::new();
    for module in [Module::Small, Module::Large] {
        for cache in [Cache::Cold, Cache::Warm] {
            for trigger in [Trigger::Api, Trigger::Watch] {
                scenarios.push(Scenario {
                    module,
                    cache,
                    trigger,
                });
            }
        }
    }
    scenarios.retain(|s| {
        args.only
            .as_ref()
            .is_none_or(|only| s.name().contains(only))
    });
    ensure!(!scenarios.is_empty(), "--only matches no scenario");

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("reload latency: module change -> first response from the new version");
    println!(
        "{} cores ({}), load average at start {}, {} iterations per scenario",
        cores,
        cpu_model(),
        load_average(),
        args.iterations,
    );
    println!(
        "file watching applies {:?} after a complete file (closed, renamed into place), {:?} otherwise",
        weir_proxy::manager::watch::SETTLE,
        weir_proxy::manager::watch::DEBOUNCE,
    );
    for module in [Module::Small, Module::Large] {
        let size = std::fs::metadata(module.path())?.len();
        println!(
            "{} module: {} bytes ({})",
            module.label(),
            size,
            module.path()
        );
    }
    println!();
    println!(
        "{:<18} {:>10} {:>10} {:>10} {:>9} {:>7}",
        "scenario", "median ms", "min ms", "max ms", "compiled", "cached"
    );
    for scenario in scenarios {
        let Outcome { mut times, counts } = run(scenario, args.iterations).await?;
        times.sort();
        println!(
            "{:<18} {:>10.1} {:>10.1} {:>10.1} {:>9} {:>7}",
            scenario.name(),
            ms(median(&times)),
            ms(times[0]),
            ms(times[times.len() - 1]),
            counts.compiled,
            counts.cached,
        );
    }
    println!();
    println!(
        "compiled / cached: components compiled / loaded from the disk cache by the \
         scenario's proxy, warm-up included"
    );
    println!();
    println!("load average at end {}", load_average());
    Ok(())
}
