//! The process-wide WebAssembly runtime: one engine (pooling allocator,
//! epoch interruption), the epoch ticker, the linker with WASI and the host
//! interfaces, and the state every filter shares (KV store, metrics).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

use crate::config::engine_layout::{ASYNC_STACK_BYTES, MEMORIES_PER_INSTANCE, MEMORY_GUARD_BYTES};
use crate::config::{Execution, WasmConfig};
use crate::wasm::bindings::FilterImports;
use crate::wasm::disk_cache::DiskCache;
use crate::wasm::epoch::{EpochTicker, GuestActivity};
use crate::wasm::error::{RuntimeError, describe};
use crate::wasm::failure_report::{FAILURE_REPORT_INTERVAL, FailureReporter, FailureSink};
use crate::wasm::host::HostState;
use crate::wasm::host::kv::KvStore;
use crate::wasm::host::metrics::{MetricsRegistry, MetricsSnapshot};
use crate::wasm::inline_io;
use crate::wasm::module::CompiledModule;

/// Sizing of the engine. The pooling allocator reserves its slots up front,
/// so these are hard caps for the whole process.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeOptions {
    /// Most filter instances alive at once, over all filters.
    pub max_instances: u32,
    /// Largest linear memory any filter may have, in MiB (a filter's
    /// `limits.memory_mib` must not exceed it).
    pub max_memory_mib: u32,
    /// Guest stack limit in bytes, for every filter (`wasm.max_stack_kib`).
    pub max_wasm_stack: usize,
    /// Directory for the on-disk cache of compiled components (see `disk_cache`).
    pub cache_dir: Option<PathBuf>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            max_instances: crate::config::defaults::max_instances(),
            max_memory_mib: crate::config::defaults::max_memory_mib(),
            max_wasm_stack: crate::config::defaults::max_stack_kib() as usize * 1024,
            cache_dir: None,
        }
    }
}

impl RuntimeOptions {
    /// The engine sizing from the config's `wasm` section: instance slots,
    /// largest memory, stack limit and cache directory.
    pub fn from_config(config: &WasmConfig) -> Self {
        RuntimeOptions {
            max_instances: config.max_instances,
            max_memory_mib: config.max_memory_mib,
            max_wasm_stack: config.max_stack_kib as usize * 1024,
            cache_dir: config.cache_dir.as_ref().map(PathBuf::from),
        }
    }
}

/// Components compiled vs loaded from the disk cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CompileCounts {
    /// Compiled from the component's bytes.
    pub compiled: u64,
    /// Loaded from the disk cache without compiling.
    pub cached: u64,
}

#[derive(Debug, Default)]
pub(crate) struct CompileCounters {
    pub(crate) compiled: AtomicU64,
    pub(crate) cached: AtomicU64,
}

/// State shared by every filter instance of the process.
#[derive(Debug)]
pub struct RuntimeShared {
    /// The KV store behind the `kv` interface.
    pub kv: KvStore,
    /// Filter metrics.
    pub metrics: MetricsRegistry,
    /// Origin of `clock.monotonic-ns`.
    pub started: Instant,
    /// Guest calls running, for the epoch ticker.
    pub(crate) activity: GuestActivity,
    /// Rate-limited reports of failed filter calls.
    pub(crate) failures: Arc<FailureReporter>,
}

/// A pre-linked component: the sha256 of its bytes, and its execution.
pub(crate) type ModuleKey = ([u8; 32], Execution);

/// The WebAssembly runtime: create one per process and load filter sets
/// ([`crate::wasm::FilterSet::load`]) with it.
pub struct WasmRuntime {
    pub(crate) engine: Engine,
    /// Linker for `execution: yielding` filters: async WASI.
    pub(crate) linker: Linker<HostState>,
    /// Linker for `execution: inline` filters: WASI that never waits.
    pub(crate) inline_linker: Linker<HostState>,
    pub(crate) shared: Arc<RuntimeShared>,
    pub(crate) options: RuntimeOptions,
    /// Pre-linked components by sha256 of their bytes and execution.
    pub(crate) modules: Mutex<HashMap<ModuleKey, Arc<CompiledModule>>>,
    /// Compiled components on disk (`cache_dir`), across restarts.
    pub(crate) disk_cache: Option<Arc<DiskCache>>,
    /// How components were obtained: compiled, or loaded from the disk cache.
    pub(crate) compile_counts: CompileCounters,
    _ticker: EpochTicker,
}

impl std::fmt::Debug for WasmRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmRuntime")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl WasmRuntime {
    /// Create the engine, linker and epoch ticker.
    pub fn new(options: RuntimeOptions) -> Result<Self, RuntimeError> {
        let engine = Engine::new(&engine_config(&options)?).map_err(|e| RuntimeError::Engine {
            max_instances: options.max_instances,
            max_memory_mib: options.max_memory_mib,
            reason: describe(&e),
        })?;
        let linker_error = |e: wasmtime::Error| RuntimeError::Linker(describe(&e));
        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(linker_error)?;
        FilterImports::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
            .map_err(linker_error)?;
        let mut inline_linker = Linker::<HostState>::new(&engine);
        inline_io::add_to_linker(&mut inline_linker).map_err(linker_error)?;
        FilterImports::add_to_linker::<HostState, HasSelf<HostState>>(&mut inline_linker, |s| s)
            .map_err(linker_error)?;
        let shared = Arc::new(RuntimeShared {
            kv: KvStore::default(),
            metrics: MetricsRegistry::new(),
            started: Instant::now(),
            activity: GuestActivity::default(),
            failures: Arc::new(FailureReporter::new(FAILURE_REPORT_INTERVAL)),
        });
        let disk_cache = match &options.cache_dir {
            Some(dir) => Some(Arc::new(DiskCache::open(dir, &engine).map_err(|e| {
                RuntimeError::Cache {
                    path: dir.clone(),
                    reason: e.to_string(),
                }
            })?)),
            None => None,
        };
        let ticker = EpochTicker::start(engine.clone(), shared.clone());
        Ok(WasmRuntime {
            disk_cache,
            compile_counts: CompileCounters::default(),
            engine,
            linker,
            inline_linker,
            shared,
            options,
            modules: Mutex::new(HashMap::new()),
            _ticker: ticker,
        })
    }

    /// The process-wide KV store.
    pub fn kv(&self) -> &KvStore {
        &self.shared.kv
    }

    /// The metrics of all filters, for export.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.shared.metrics.snapshot()
    }

    /// How many components were compiled, and how many loaded from the
    /// disk cache instead, since the runtime started.
    pub fn compile_counts(&self) -> CompileCounts {
        CompileCounts {
            compiled: self.compile_counts.compiled.load(Ordering::Relaxed),
            cached: self.compile_counts.cached.load(Ordering::Relaxed),
        }
    }

    /// Send every filter failure at run time (trap, CPU deadline, memory
    /// cap, error, no instance) to `sink` from now on, rate-limited as
    /// described in [`FAILURE_REPORT_INTERVAL`]'s module (at most one report
    /// per filter and kind per interval, the next one carrying how many were
    /// suppressed). Replaces an earlier sink. Failures are logged either way.
    pub fn set_failure_sink(&self, sink: Arc<dyn FailureSink>) {
        self.shared.failures.set_sink(sink);
    }

    /// The sizing this runtime was created with.
    pub fn options(&self) -> &RuntimeOptions {
        &self.options
    }
}

fn engine_config(options: &RuntimeOptions) -> Result<wasmtime::Config, RuntimeError> {
    let max_memory = options.max_memory_mib as usize * 1024 * 1024;
    let mut pooling = PoolingAllocationConfig::new();
    pooling
        .total_component_instances(options.max_instances)
        // A wasm32-wasip2 component is a handful of core modules (the
        // program, the WASI adapter, shims); leave room for more.
        .max_core_instances_per_component(32)
        .total_core_instances(options.max_instances.saturating_mul(8))
        .max_memories_per_component(4)
        .total_memories(options.max_instances.saturating_mul(MEMORIES_PER_INSTANCE))
        .max_tables_per_component(8)
        .total_tables(options.max_instances.saturating_mul(4))
        .total_stacks(options.max_instances)
        .max_memory_size(max_memory)
        .max_component_instance_size(1 << 20)
        .max_core_instance_size(1 << 20);

    let mut config = wasmtime::Config::new();
    config
        .epoch_interruption(true)
        .max_wasm_stack(options.max_wasm_stack)
        .cranelift_opt_level(OptLevel::Speed)
        // Small reservations keep thousands of pooled slots cheap in address
        // space; bounds checks are explicit instead of guard-page based.
        .memory_reservation(max_memory as u64)
        .memory_guard_size(MEMORY_GUARD_BYTES)
        .async_stack_size(ASYNC_STACK_BYTES as usize)
        .memory_reservation_for_growth(0)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    Ok(config)
}
