//! Loading a filter module (`hello`, about 150 KiB) as a config generation
//! does, `FilterSet::load`: read and hash the file, get the compiled
//! module, pre-link it, create the first instance and call `configure`.
//! Only the way the compiled module is obtained differs:
//!
//! - `compile`: cold, no cache: cranelift compiles the component;
//! - `disk_cache`: warm: the compiled-module disk cache (`wasm.cache_dir`)
//!   holds it; it is read, its HMAC checked and deserialized (a restart, or
//!   a reload after the module was last unused);
//! - `in_process`: the module is still loaded (a reload while the previous
//!   generation still runs it): nothing is compiled or read from the cache.
//!
//! Each load's `FilterSet` is dropped outside the timed region.
//!
//! `cargo bench -p weir-tests --bench module_load`

mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use weir_proxy::config::Config;
use weir_proxy::wasm::{CompileCounts, WasmRuntime};

/// Time `iters` loads of `config` into `wasm`; each load's filters are
/// dropped (outside the timing) before the next load, so the runtime's
/// in-process module table forgets the module unless `keep` still uses it.
async fn timed_loads(wasm: &WasmRuntime, config: &Config, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        let filters = black_box(support::load(wasm, config).await);
        total += start.elapsed();
        drop(filters);
    }
    total
}

/// How one more load into `wasm` obtained its module.
fn one_load(tokio: &tokio::runtime::Runtime, wasm: &WasmRuntime, config: &Config) -> CompileCounts {
    let before = wasm.compile_counts();
    drop(tokio.block_on(support::load(wasm, config)));
    let after = wasm.compile_counts();
    CompileCounts {
        compiled: after.compiled - before.compiled,
        cached: after.cached - before.cached,
    }
}

fn module_load(c: &mut Criterion) {
    let tokio = support::tokio_runtime();
    let config = support::hello_chain(1, "pooled", "yielding");
    let cache_dir = tempfile::tempdir().expect("a temporary cache directory");

    let uncached = support::wasm_runtime(None);
    let cached = support::wasm_runtime(Some(cache_dir.path().join("cache")));
    // The first load fills the disk cache; then check that each runtime
    // obtains the module the way its case says.
    one_load(&tokio, &cached, &config);
    let compiled_only = CompileCounts {
        compiled: 1,
        cached: 0,
    };
    let from_disk = CompileCounts {
        compiled: 0,
        cached: 1,
    };
    assert_eq!(one_load(&tokio, &uncached, &config), compiled_only);
    assert_eq!(one_load(&tokio, &cached, &config), from_disk);

    let mut cold = c.benchmark_group("module_load");
    // A compile takes a fifth of a second or more: few, equal samples.
    cold.sampling_mode(SamplingMode::Flat).sample_size(10);
    cold.bench_function("compile", |b| {
        b.to_async(&tokio)
            .iter_custom(|iters| timed_loads(&uncached, &config, iters))
    });
    cold.finish();

    let mut warm = c.benchmark_group("module_load");
    warm.bench_function("disk_cache", |b| {
        b.to_async(&tokio)
            .iter_custom(|iters| timed_loads(&cached, &config, iters))
    });
    let keep = tokio.block_on(support::load(&cached, &config));
    assert_eq!(one_load(&tokio, &cached, &config), CompileCounts::default());
    warm.bench_function("in_process", |b| {
        b.to_async(&tokio)
            .iter_custom(|iters| timed_loads(&cached, &config, iters))
    });
    drop(keep);
    warm.finish();
}

criterion_group!(benches, module_load);
criterion_main!(benches);
