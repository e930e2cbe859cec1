//! Filter failures at run time as events: the [`FailureSink`] the manager
//! gives the WebAssembly runtime, publishing each (already rate-limited)
//! report on the event bus as `filter_trapped` or `filter_failed`.

use std::sync::Arc;

use crate::control::{EventBus, EventKind, FilterFailure};
use crate::wasm::{FailureReport, FailureSink, failure_mode_str};

/// Publishes failure reports on an [`EventBus`].
pub(crate) struct FailureEvents {
    events: Arc<EventBus>,
}

impl FailureEvents {
    pub(crate) fn new(events: Arc<EventBus>) -> Self {
        FailureEvents { events }
    }
}

impl FailureSink for FailureEvents {
    fn report(&self, report: &FailureReport) {
        let kind = if report.kind.is_trap() {
            EventKind::FilterTrapped
        } else {
            EventKind::FilterFailed
        };
        self.events.publish_failure(
            kind,
            &report.filter,
            report.to_string(),
            FilterFailure {
                phase: report.phase.to_owned(),
                kind: report.kind.as_str().to_owned(),
                mode: failure_mode_str(report.mode).to_owned(),
                reason: report.reason.clone(),
                suppressed: report.suppressed,
            },
        );
    }
}
