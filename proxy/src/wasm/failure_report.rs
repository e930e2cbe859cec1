//! Reporting filter failures at run time (trap, CPU deadline, memory cap,
//! error, no instance) to the log and to an optional [`FailureSink`] (the
//! runtime manager wires it to the control API's event bus), rate-limited.
//!
//! # The rate limit
//!
//! At most one report per filter and [`FailureKind`] per
//! [`FAILURE_REPORT_INTERVAL`]: the first failure of a kind is reported at
//! once and opens a window; failures of the same filter and kind inside the
//! window are only counted. When the window closes with failures counted, the
//! last of them is reported (at the window's end, or with the next failure,
//! whichever comes first) carrying in [`FailureReport::suppressed`] how many
//! others were not reported since the previous report. So every failure is
//! accounted for: summed over a filter's reports of a kind, `1 + suppressed`
//! is the number of failures. Counters and metrics still count every failure.
//!
//! Nothing here runs on the success path; the failure path may lock and
//! allocate.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::FailureMode;
use crate::wasm::error::CallFailure;

/// The rate limit's window: at most one report per filter and kind per interval.
pub const FAILURE_REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// What kind of failure a filter call had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The guest trapped (the instance is discarded).
    Trap,
    /// The call used more CPU time than `limits.cpu_per_call`.
    CpuDeadline,
    /// The guest's memory would have grown past `limits.memory_mib` (a trap:
    /// the instance is discarded).
    Memory,
    /// The phase returned an error, answered something unusable, or a new
    /// instance could not be created.
    Error,
    /// Every instance was busy for longer than the wait bound.
    Busy,
}

impl FailureKind {
    /// The snake_case name used in events and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trap => "trap",
            Self::CpuDeadline => "cpu_deadline",
            Self::Memory => "memory",
            Self::Error => "error",
            Self::Busy => "busy",
        }
    }

    /// Whether the guest trapped (plain trap or memory cap).
    pub fn is_trap(self) -> bool {
        matches!(self, Self::Trap | Self::Memory)
    }
}

/// One reported filter failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureReport {
    /// The filter's name.
    pub filter: Arc<str>,
    /// The phase that failed (`request_headers`, ..., `done`).
    pub phase: &'static str,
    /// What kind of failure.
    pub kind: FailureKind,
    /// What was done about it: `fail_closed` answered 503, `fail_open`
    /// skipped the filter for the rest of the exchange.
    pub mode: FailureMode,
    /// Why, verbatim.
    pub reason: String,
    /// Failures of the same filter and kind since the previous report that
    /// were not reported (see the module docs).
    pub suppressed: u64,
}

/// The snake_case name of what `mode` does with a failing exchange.
pub fn failure_mode_str(mode: FailureMode) -> &'static str {
    match mode {
        FailureMode::FailClosed => "fail_closed",
        FailureMode::FailOpen => "fail_open",
    }
}

impl fmt::Display for FailureReport {
    /// `PHASE: REASON (fail_closed: answered 503[, N more suppressed])`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let outcome = match self.mode {
            FailureMode::FailClosed => "fail_closed: answered 503",
            FailureMode::FailOpen => "fail_open: skipped",
        };
        write!(f, "{}: {} ({outcome}", self.phase, self.reason)?;
        if self.suppressed > 0 {
            write!(f, "; {} more suppressed", self.suppressed)?;
        }
        f.write_str(")")
    }
}

/// Where rate-limited failure reports go. Called on a request's task: it
/// must not block (publishing on a broadcast channel is fine).
pub trait FailureSink: Send + Sync + 'static {
    /// One report.
    fn report(&self, report: &FailureReport);
}

type WindowKey = (Arc<str>, FailureKind);

/// A filter's and kind's current window.
struct Window {
    opened: Instant,
    /// Failures counted (not reported) in this window.
    counted: u64,
    /// The last counted failure, reported when the window closes.
    last: Option<FailureReport>,
    /// A task will close this window.
    close_scheduled: bool,
}

/// The rate limiter and the sink; one per runtime.
pub(crate) struct FailureReporter {
    interval: Duration,
    sink: RwLock<Option<Arc<dyn FailureSink>>>,
    windows: Mutex<HashMap<WindowKey, Window>>,
}

impl fmt::Debug for FailureReporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailureReporter")
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl FailureReporter {
    /// A reporter allowing one report per filter and kind per `interval`.
    pub(crate) fn new(interval: Duration) -> Self {
        FailureReporter {
            interval,
            sink: RwLock::new(None),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Send reports to `sink` from now on (replacing any earlier sink).
    pub(crate) fn set_sink(&self, sink: Arc<dyn FailureSink>) {
        *self.sink.write().unwrap_or_else(|p| p.into_inner()) = Some(sink);
    }

    /// A call of `filter` failed in `phase`; `mode` was applied.
    pub(crate) fn failed(
        self: &Arc<Self>,
        filter: &Arc<str>,
        phase: &'static str,
        failure: &CallFailure,
        mode: FailureMode,
    ) {
        let report = FailureReport {
            filter: filter.clone(),
            phase,
            kind: failure.kind(),
            mode,
            reason: failure.to_string(),
            suppressed: 0,
        };
        self.record(report, Instant::now());
    }

    fn record(self: &Arc<Self>, mut report: FailureReport, now: Instant) {
        let key = (report.filter.clone(), report.kind);
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        match windows.entry(key.clone()) {
            Entry::Vacant(slot) => {
                slot.insert(Window {
                    opened: now,
                    counted: 0,
                    last: None,
                    close_scheduled: false,
                });
            }
            Entry::Occupied(mut slot) => {
                let window = slot.get_mut();
                if now.duration_since(window.opened) >= self.interval {
                    // The window is over: this failure opens the next one and
                    // carries the count of the old one.
                    report.suppressed = std::mem::take(&mut window.counted);
                    window.last = None;
                    window.opened = now;
                } else {
                    window.counted += 1;
                    window.last = Some(report);
                    if !window.close_scheduled {
                        window.close_scheduled = true;
                        self.schedule_close(key, window.opened + self.interval);
                    }
                    return;
                }
            }
        }
        // Reported under the lock: reports of one filter and kind stay in order.
        self.emit(&report);
    }

    /// At `at`, report the last failure counted in the window of `key`, if any.
    fn schedule_close(self: &Arc<Self>, key: WindowKey, at: Instant) {
        // Outside a tokio runtime the count rides on the next report instead.
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let this = self.clone();
        handle.spawn(async move {
            tokio::time::sleep_until(at).await;
            this.close_window(&key, Instant::now());
        });
    }

    fn close_window(self: &Arc<Self>, key: &WindowKey, now: Instant) {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let Some(window) = windows.get_mut(key) else {
            return;
        };
        let ends = window.opened + self.interval;
        if now < ends {
            // A later failure opened a new window meanwhile: close that one.
            self.schedule_close(key.clone(), ends);
            return;
        }
        window.close_scheduled = false;
        if let Some(mut last) = window.last.take() {
            // The reported failure is one of those counted.
            last.suppressed = window.counted - 1;
            window.counted = 0;
            window.opened = now;
            self.emit(&last);
        }
    }

    fn emit(&self, report: &FailureReport) {
        tracing::warn!(
            filter = %report.filter,
            phase = report.phase,
            kind = report.kind.as_str(),
            mode = failure_mode_str(report.mode),
            suppressed = report.suppressed,
            "filter failed: {report}"
        );
        let sink = self.sink.read().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(sink) = sink {
            sink.report(report);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect(Mutex<Vec<FailureReport>>);

    impl FailureSink for Collect {
        fn report(&self, report: &FailureReport) {
            self.0.lock().unwrap().push(report.clone());
        }
    }

    impl Collect {
        fn taken(&self) -> Vec<FailureReport> {
            std::mem::take(&mut *self.0.lock().unwrap())
        }
    }

    fn reporter(interval: Duration) -> (Arc<FailureReporter>, Arc<Collect>) {
        let reporter = Arc::new(FailureReporter::new(interval));
        let sink = Arc::new(Collect::default());
        reporter.set_sink(sink.clone());
        (reporter, sink)
    }

    fn trap(reporter: &Arc<FailureReporter>, filter: &str, n: u32) {
        let failure = CallFailure::Trap(format!("unreachable #{n}"));
        reporter.failed(
            &Arc::from(filter),
            "request_headers",
            &failure,
            FailureMode::FailClosed,
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_storm_is_reported_once_then_summed_up_when_the_window_closes() {
        let (reporter, sink) = reporter(FAILURE_REPORT_INTERVAL);
        for n in 0..10 {
            trap(&reporter, "f", n);
        }
        let first = sink.taken();
        assert_eq!(first.len(), 1);
        assert_eq!(
            (first[0].kind, first[0].suppressed, first[0].reason.as_str()),
            (FailureKind::Trap, 0, "trapped: unreachable #0")
        );

        // Paused clock: the closing task runs first (its timer is earlier),
        // then this sleep ends; no real time passes.
        tokio::time::sleep(FAILURE_REPORT_INTERVAL + Duration::from_millis(1)).await;
        let closing = sink.taken();
        assert_eq!(closing.len(), 1, "{closing:?}");
        assert_eq!(closing[0].reason, "trapped: unreachable #9");
        assert_eq!(1 + closing[0].suppressed + 1, 10);
    }

    #[tokio::test(start_paused = true)]
    async fn filters_and_kinds_are_limited_separately() {
        let (reporter, sink) = reporter(Duration::from_secs(3600));
        trap(&reporter, "a", 0);
        trap(&reporter, "b", 0);
        reporter.failed(
            &Arc::from("a"),
            "done",
            &CallFailure::CpuDeadline(Duration::from_millis(5)),
            FailureMode::FailOpen,
        );
        trap(&reporter, "a", 1);
        let reports = sink.taken();
        let seen: Vec<_> = reports.iter().map(|r| (&*r.filter, r.kind)).collect();
        assert_eq!(
            seen,
            vec![
                ("a", FailureKind::Trap),
                ("b", FailureKind::Trap),
                ("a", FailureKind::CpuDeadline)
            ]
        );
        assert_eq!(
            reports[2].to_string(),
            "done: exceeded its CPU time limit of 5ms (fail_open: skipped)"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_next_failure_after_the_window_carries_the_count() {
        let (reporter, sink) = reporter(FAILURE_REPORT_INTERVAL);
        let start = Instant::now();
        let report = |n: u64| FailureReport {
            filter: Arc::from("f"),
            phase: "request_body",
            kind: FailureKind::Error,
            mode: FailureMode::FailClosed,
            reason: format!("returned an error: {n}"),
            suppressed: 0,
        };
        for n in 0..4 {
            reporter.record(report(n), start);
        }
        // Before the closing task runs, a failure after the window.
        reporter.record(report(4), start + FAILURE_REPORT_INTERVAL);
        let reports = sink.taken();
        assert_eq!(reports.len(), 2);
        assert_eq!(reports[1].suppressed, 3);
        assert_eq!(
            reports[1].to_string(),
            "request_body: returned an error: 4 (fail_closed: answered 503; 3 more suppressed)"
        );
        // The closing task finds nothing left to report.
        tokio::time::sleep(2 * FAILURE_REPORT_INTERVAL + Duration::from_millis(1)).await;
        assert!(sink.taken().is_empty());
    }
}
