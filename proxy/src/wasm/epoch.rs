//! The epoch ticker: guest calls are interrupted on epoch ticks, where the
//! CPU meter decides whether the call may go on (see `host::cpu_meter`).
//!
//! Ticking costs a thread wake-up every [`EPOCH_TICK`], which is only worth
//! paying while guest code can run. So the ticker parks itself once no call
//! has started or run for [`IDLE_TICKS`] ticks, and the next call to start
//! wakes it ([`GuestActivity::enter`]). It still wakes every
//! [`SWEEP_INTERVAL`] to sweep expired KV entries.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use wasmtime::Engine;

use crate::wasm::runtime::RuntimeShared;

/// One epoch tick: the granularity of CPU deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);
/// How often expired KV entries are swept.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// Ticks without any guest call after which the ticker parks.
const IDLE_TICKS: u32 = 100;

/// Which guest calls are running, so that the ticker runs only when needed.
///
/// Both counters live in one word, so that a call costs one atomic
/// read-modify-write to start and one to end.
#[derive(Debug, Default)]
pub(crate) struct GuestActivity {
    /// High 32 bits: calls started (wrapping; the ticker only compares).
    /// Low 32 bits: calls in progress.
    calls: AtomicU64,
    /// The ticker is parked (or about to park).
    parked: AtomicBool,
    ticker: OnceLock<Thread>,
}

/// One started call, in [`GuestActivity::calls`].
const STARTED_ONE: u64 = 1 << 32;
/// The running calls, in [`GuestActivity::calls`].
const RUNNING_MASK: u64 = STARTED_ONE - 1;

/// A guest call in progress; it ends when dropped.
#[derive(Debug)]
pub(crate) struct RunningCall<'a>(&'a GuestActivity);

impl Drop for RunningCall<'_> {
    fn drop(&mut self) {
        self.0.calls.fetch_sub(1, Ordering::SeqCst);
    }
}

impl GuestActivity {
    /// A guest call starts: make sure the ticker is ticking.
    pub(crate) fn enter(&self) -> RunningCall<'_> {
        self.calls.fetch_add(STARTED_ONE | 1, Ordering::SeqCst);
        // Pairs with the ticker's store of `parked` before its last look at
        // the counters: either it sees this call, or this sees it parked.
        if self.parked.load(Ordering::SeqCst)
            && let Some(ticker) = self.ticker.get()
        {
            ticker.unpark();
        }
        RunningCall(self)
    }

    /// (calls started, calls running).
    fn snapshot(&self) -> (u64, u64) {
        let calls = self.calls.load(Ordering::SeqCst);
        (calls >> 32, calls & RUNNING_MASK)
    }
}

/// Increments the engine's epoch every [`EPOCH_TICK`] while guests run, on
/// its own thread, and sweeps the KV store now and then. Stops when dropped.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub(crate) fn start(engine: Engine, shared: Arc<RuntimeShared>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let ticker_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("weir-wasm-epoch".into())
            .spawn(move || tick(&engine, &ticker_shared, &stopped))
            .expect("spawning the epoch thread");
        // Set before any call can need waking: calls start only once the
        // runtime that owns this ticker exists.
        let _ = shared.activity.ticker.set(thread.thread().clone());
        EpochTicker {
            stop,
            thread: Some(thread),
        }
    }
}

/// The ticker thread. It sleeps with `park_timeout`, which (unlike a channel
/// receive with a timeout) does not spin before sleeping: a tick costs one
/// wake-up and nothing more.
fn tick(engine: &Engine, shared: &RuntimeShared, stopped: &AtomicBool) {
    let activity = &shared.activity;
    let mut last_sweep = Instant::now();
    let mut seen = activity.snapshot();
    let mut idle_ticks = 0u32;
    loop {
        std::thread::park_timeout(EPOCH_TICK);
        if stopped.load(Ordering::Acquire) {
            return;
        }
        engine.increment_epoch();
        if last_sweep.elapsed() >= SWEEP_INTERVAL {
            shared.kv.sweep_expired();
            last_sweep = Instant::now();
        }
        let now = activity.snapshot();
        if now != seen || now.1 > 0 {
            seen = now;
            idle_ticks = 0;
            continue;
        }
        idle_ticks += 1;
        if idle_ticks < IDLE_TICKS {
            continue;
        }
        activity.parked.store(true, Ordering::SeqCst);
        if activity.snapshot() == seen {
            std::thread::park_timeout(SWEEP_INTERVAL);
        }
        activity.parked.store(false, Ordering::SeqCst);
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting: {what}");
            std::thread::yield_now();
        }
    }

    fn runtime() -> crate::wasm::WasmRuntime {
        crate::wasm::WasmRuntime::new(crate::wasm::RuntimeOptions {
            max_instances: 8,
            ..Default::default()
        })
        .expect("runtime")
    }

    #[test]
    fn an_idle_ticker_parks_and_a_call_wakes_it() {
        let runtime = runtime();
        let shared = Arc::clone(&runtime.shared);
        wait_until("the idle ticker parks", || {
            shared.activity.parked.load(Ordering::SeqCst)
        });
        let call = shared.activity.enter();
        wait_until("the ticker wakes for a running call", || {
            !shared.activity.parked.load(Ordering::SeqCst)
        });
        // A call in progress keeps it ticking however long it runs.
        let ticking_since = Instant::now();
        while ticking_since.elapsed() < EPOCH_TICK * (IDLE_TICKS * 2) {
            assert!(
                !shared.activity.parked.load(Ordering::SeqCst),
                "parked during a running call"
            );
            std::thread::yield_now();
        }
        drop(call);
        wait_until("the ticker parks again", || {
            shared.activity.parked.load(Ordering::SeqCst)
        });
    }
}
