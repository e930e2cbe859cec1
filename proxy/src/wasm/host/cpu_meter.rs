//! CPU time accounting for one guest call.
//!
//! A call runs on a fiber; while the fiber runs it owns its thread, so the
//! thread's CPU clock advances only for the guest (and the host functions it
//! calls). The meter is paused whenever the guest gives its thread away — an
//! async host call (a callout) or a periodic yield to other tasks — and it
//! resumes on whichever thread picks the fiber up again. Time the thread
//! spends preempted on a loaded machine is not counted: a healthy filter is
//! never failed because the machine is busy.
//!
//! Reading the thread CPU clock is a system call, too dear for every call
//! (a typical filter call takes about a microsecond). So a segment starts
//! *unmetered*, with a cheap monotonic timestamp, and is switched to the
//! thread clock only when the epoch callback first looks at it. Until then
//! the guest cannot have run longer than one epoch tick — its deadline is at
//! most one tick ahead (see `instance::slice`) — so the unmetered stretch is
//! charged its wall time, capped at one tick. Calls that end before a tick
//! (nearly all of them) never touch the thread clock.
//!
//! A tick that finds a segment younger than [`FRESH`] (the call started just
//! before it) does not yield it: see [`CpuMeter::just_started`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::wasm::epoch::EPOCH_TICK;

/// Where the running segment of a call is measured from.
#[derive(Debug, Clone, Copy)]
enum Segment {
    /// The guest is not running (it gave its thread away).
    Paused,
    /// Running since this instant; the thread clock was not read yet.
    Unmetered(Instant),
    /// Running since this reading of the thread CPU clock.
    Metered(Duration),
}

/// CPU time accounting for the current call of one instance.
#[derive(Debug, Clone)]
pub(crate) struct CpuMeter {
    pub(crate) limit: Duration,
    /// CPU time used in segments that have ended.
    used_before: Duration,
    segment: Segment,
    /// The thread CPU clock (ns) when the guest resumed after a yield, set by
    /// the yield future (which cannot reach the store); `NOT_RESUMED` if none.
    resumed_at_ns: Arc<AtomicU64>,
}

const NOT_RESUMED: u64 = u64::MAX;

/// This thread's CPU clock.
fn thread_cpu_now() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(now.tv_sec).unwrap_or(0),
        u32::try_from(now.tv_nsec).unwrap_or(0),
    )
}

/// A segment younger than this at an epoch tick has not had its share of
/// the thread yet: it only started just before the tick.
const FRESH: Duration = Duration::from_micros(EPOCH_TICK.as_micros() as u64 / 2);

/// What an unmetered stretch that began at `since` is charged.
fn unmetered_charge(since: Instant) -> Duration {
    since.elapsed().min(EPOCH_TICK)
}

impl CpuMeter {
    pub(crate) fn new() -> Self {
        CpuMeter {
            limit: Duration::ZERO,
            used_before: Duration::ZERO,
            segment: Segment::Paused,
            resumed_at_ns: Arc::new(AtomicU64::new(NOT_RESUMED)),
        }
    }

    /// Start metering a call allowed `limit` of CPU time.
    pub(crate) fn start(&mut self, limit: Duration) {
        self.limit = limit;
        self.used_before = Duration::ZERO;
        self.segment = Segment::Unmetered(Instant::now());
        self.resumed_at_ns.store(NOT_RESUMED, Ordering::Relaxed);
    }

    /// The guest is about to give its thread away: stop counting.
    pub(crate) fn suspend(&mut self) {
        self.used_before += match self.segment {
            Segment::Paused => Duration::ZERO,
            Segment::Unmetered(since) => unmetered_charge(since),
            Segment::Metered(start) => thread_cpu_now().saturating_sub(start),
        };
        self.segment = Segment::Paused;
    }

    /// The guest runs again, possibly on another thread: count from here.
    pub(crate) fn resume(&mut self) {
        self.segment = Segment::Unmetered(Instant::now());
    }

    /// CPU time used by this call so far. Switches an unmetered segment to
    /// the thread clock.
    pub(crate) fn used(&mut self) -> Duration {
        match self.segment {
            Segment::Paused => {
                let resumed = self.resumed_at_ns.swap(NOT_RESUMED, Ordering::Relaxed);
                if resumed != NOT_RESUMED {
                    self.segment = Segment::Metered(Duration::from_nanos(resumed));
                }
            }
            Segment::Unmetered(since) => {
                self.used_before += unmetered_charge(since);
                self.segment = Segment::Metered(thread_cpu_now());
            }
            Segment::Metered(_) => {}
        }
        let running = match self.segment {
            Segment::Metered(start) => thread_cpu_now().saturating_sub(start),
            Segment::Paused | Segment::Unmetered(_) => Duration::ZERO,
        };
        self.used_before + running
    }

    /// At an epoch tick: whether the running segment started less than
    /// [`FRESH`] ago and was not metered yet. Ticks fall at random points of
    /// a call, so about one call in a thousand that lasts a microsecond
    /// starts just before one; yielding it would send its request to the
    /// back of the run queue behind every other ready connection, for
    /// nothing. If so, the wall time so far is charged and a new unmetered
    /// stretch starts now, so that no stretch spans more than one tick and
    /// the next tick meters the call as usual. Returns false, changing
    /// nothing, when the segment is older, metered, paused, or when the
    /// charge would use up the limit (the caller then checks it as usual).
    pub(crate) fn just_started(&mut self) -> bool {
        let Segment::Unmetered(since) = self.segment else {
            return false;
        };
        let now = Instant::now();
        let ran = now.saturating_duration_since(since);
        if ran >= FRESH || self.used_before + ran >= self.limit {
            return false;
        }
        self.used_before += ran;
        self.segment = Segment::Unmetered(now);
        true
    }

    /// CPU time left, or `None` when the limit is used up.
    pub(crate) fn remaining(&mut self) -> Option<Duration> {
        let used = self.used();
        self.limit.checked_sub(used).filter(|left| !left.is_zero())
    }

    /// Give the thread to other tasks once. The meter stops now and starts
    /// again, on the thread the guest resumes on, when the future completes
    /// (wasmtime resumes the fiber in the same poll).
    pub(crate) fn yield_now(&mut self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.suspend();
        let resumed_at_ns = Arc::clone(&self.resumed_at_ns);
        async move {
            tokio::task::yield_now().await;
            let now = u64::try_from(thread_cpu_now().as_nanos()).unwrap_or(NOT_RESUMED - 1);
            resumed_at_ns.store(now, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Burn CPU on this thread until its CPU clock advanced by `amount`.
    fn spin_for(amount: Duration) {
        let start = thread_cpu_now();
        let mut x = 0u64;
        while thread_cpu_now().saturating_sub(start) < amount {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }

    #[test]
    fn a_busy_call_runs_out_of_cpu() {
        let mut meter = CpuMeter::new();
        meter.start(Duration::from_millis(5));
        assert!(meter.remaining().is_some());
        spin_for(Duration::from_millis(6));
        assert_eq!(meter.remaining(), None);
    }

    #[test]
    fn time_suspended_is_not_cpu_time() {
        let mut meter = CpuMeter::new();
        meter.start(Duration::from_millis(20));
        assert!(
            meter.remaining().is_some(),
            "the first look meters the segment"
        );
        spin_for(Duration::from_millis(2));
        meter.suspend();
        let frozen = meter.used();
        // CPU burnt by this thread for other work while the guest waits.
        spin_for(Duration::from_millis(30));
        assert_eq!(meter.used(), frozen, "a suspended meter does not move");
        meter.resume();
        assert!(
            meter.remaining().is_some(),
            "other work was not charged to the guest"
        );
    }

    #[test]
    fn sleeping_is_not_cpu_time() {
        let mut meter = CpuMeter::new();
        meter.start(Duration::from_millis(5));
        assert!(meter.remaining().is_some());
        // Wall time passes (as when the machine is loaded), CPU does not.
        std::thread::sleep(Duration::from_millis(20));
        assert!(meter.remaining().is_some());
    }

    #[test]
    fn an_unmetered_stretch_costs_at_most_one_tick() {
        let mut meter = CpuMeter::new();
        meter.start(Duration::from_millis(5));
        // The guest was preempted (or waited) before anything looked at it.
        std::thread::sleep(Duration::from_millis(20));
        let used = meter.used();
        assert!(used <= EPOCH_TICK + Duration::from_millis(1), "{used:?}");
        assert!(meter.remaining().is_some());
    }

    #[test]
    fn a_call_that_just_started_is_not_yielded_but_charged() {
        let mut meter = CpuMeter::new();
        meter.start(Duration::from_millis(50));
        assert!(meter.just_started(), "a tick right after the start");
        let charged = meter.used_before;
        assert!(charged < FRESH, "{charged:?}");
        // The next stretch is judged from the tick, not from the start.
        std::thread::sleep(FRESH);
        assert!(!meter.just_started(), "a whole stretch later it yields");
        assert_eq!(meter.used_before, charged, "a refusal changes nothing");
        assert!(meter.remaining().is_some());
        assert!(!meter.just_started(), "a metered segment is never fresh");
    }

    #[test]
    fn a_fresh_segment_at_its_limit_is_left_to_the_limit_check() {
        let mut meter = CpuMeter::new();
        meter.start(Duration::ZERO);
        assert!(!meter.just_started());
        assert_eq!(meter.remaining(), None);
    }

    #[test]
    fn a_paused_call_is_never_fresh() {
        let mut meter = CpuMeter::new();
        meter.start(Duration::from_millis(50));
        meter.suspend();
        assert!(!meter.just_started());
        meter.resume();
        assert!(meter.just_started(), "resumed just now");
    }

    #[test]
    fn an_unmetered_stretch_ended_by_a_callout_is_charged() {
        let mut meter = CpuMeter::new();
        meter.start(Duration::from_millis(50));
        let since = Instant::now();
        while since.elapsed() < Duration::from_micros(300) {
            std::hint::black_box(());
        }
        meter.suspend();
        let used = meter.used();
        assert!(used >= Duration::from_micros(300), "{used:?}");
        assert!(used <= EPOCH_TICK, "{used:?}");
    }
}
