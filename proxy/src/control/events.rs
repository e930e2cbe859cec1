//! Events: what happens to the proxy (loads, failures, traps, reloads,
//! configuration applied), published on an [`EventBus`] and streamed to
//! `weir events` watchers.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::SystemTime;

use serde::Serialize;
use tokio::sync::broadcast;

/// Something that happened to the proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Increases by one for every event the bus publishes.
    pub seq: u64,
    /// What happened.
    pub kind: EventKind,
    /// The filter concerned, if any.
    pub filter: Option<String>,
    /// Human-readable details (for failures: the reason, verbatim).
    pub message: String,
    /// When it happened.
    #[serde(with = "humantime_serde")]
    pub time: SystemTime,
    /// For [`EventKind::FilterTrapped`] and [`EventKind::FilterFailed`]: how.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<FilterFailure>,
}

/// How a filter failed while handling a request. Failure events are
/// rate-limited: at most one per filter and kind per second, the failures in
/// between counted in `suppressed` of the next event (summed over a filter's
/// events of one kind, `1 + suppressed` is the number of failures).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FilterFailure {
    /// The phase: `request_headers`, `request_body`, `response_headers`,
    /// `response_body` or `done`.
    pub phase: String,
    /// `trap`, `memory`, `cpu_deadline`, `error` or `busy`.
    pub kind: String,
    /// The failure mode applied: `fail_closed` (answered 503) or `fail_open`
    /// (filter skipped).
    pub mode: String,
    /// Why, verbatim.
    pub reason: String,
    /// Failures of this filter and kind since its previous event of that
    /// kind that were not published.
    pub suppressed: u64,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A filter was loaded.
    FilterLoaded,
    /// A filter's module was replaced.
    FilterReloaded,
    /// A filter was removed.
    FilterUnloaded,
    /// A filter went back to its previous version.
    FilterRolledBack,
    /// Loading or reloading a filter failed; nothing changed.
    FilterLoadFailed,
    /// A filter trapped (or hit its memory cap) while handling a request.
    FilterTrapped,
    /// A filter failed otherwise (error, CPU deadline, no instance) while
    /// handling a request.
    FilterFailed,
    /// A new configuration was applied.
    ConfigApplied,
    /// A configuration was rejected; nothing changed.
    ConfigRejected,
    /// The runtime was rebuilt and swapped in.
    RuntimeReloaded,
    /// A watcher fell behind and missed events (never published on the bus;
    /// made by the stream that fell behind).
    EventsMissed,
}

impl EventKind {
    /// The snake_case name shown by `weir events`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FilterLoaded => "filter_loaded",
            Self::FilterReloaded => "filter_reloaded",
            Self::FilterUnloaded => "filter_unloaded",
            Self::FilterRolledBack => "filter_rolled_back",
            Self::FilterLoadFailed => "filter_load_failed",
            Self::FilterTrapped => "filter_trapped",
            Self::FilterFailed => "filter_failed",
            Self::ConfigApplied => "config_applied",
            Self::ConfigRejected => "config_rejected",
            Self::RuntimeReloaded => "runtime_reloaded",
            Self::EventsMissed => "events_missed",
        }
    }
}

/// How many events a bus keeps for watchers that are behind, and for
/// `weir events` without `--follow`. Default of [`EventBus::new`].
pub const DEFAULT_EVENT_BUFFER: usize = 1024;

/// A broadcast channel of [`Event`]s with a bounded buffer and history.
///
/// Publishing never blocks: a watcher that falls more than the buffer behind
/// loses the oldest events and is told how many (see
/// [`EventKind::EventsMissed`]). Cloning is not offered: share it in an `Arc`.
#[derive(Debug)]
pub struct EventBus {
    sender: broadcast::Sender<Event>,
    history: Mutex<History>,
}

#[derive(Debug)]
struct History {
    next_seq: u64,
    capacity: usize,
    recent: VecDeque<Event>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new(DEFAULT_EVENT_BUFFER)
    }
}

impl EventBus {
    /// A bus buffering up to `capacity` events (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let (sender, _) = broadcast::channel(capacity);
        Self {
            sender,
            history: Mutex::new(History {
                next_seq: 1,
                capacity,
                recent: VecDeque::with_capacity(capacity),
            }),
        }
    }

    /// Publishes an event stamped now, and returns it (with its sequence number).
    pub fn publish(
        &self,
        kind: EventKind,
        filter: Option<&str>,
        message: impl Into<String>,
    ) -> Event {
        self.publish_with(kind, filter, message.into(), None)
    }

    /// Publishes a filter's failure while handling a request
    /// ([`EventKind::FilterTrapped`] or [`EventKind::FilterFailed`]).
    pub fn publish_failure(
        &self,
        kind: EventKind,
        filter: &str,
        message: String,
        failure: FilterFailure,
    ) -> Event {
        self.publish_with(kind, Some(filter), message, Some(failure))
    }

    fn publish_with(
        &self,
        kind: EventKind,
        filter: Option<&str>,
        message: String,
        failure: Option<FilterFailure>,
    ) -> Event {
        // The lock orders sequence numbers, history and broadcast alike.
        let mut history = self
            .history
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let event = Event {
            seq: history.next_seq,
            kind,
            filter: filter.map(str::to_string),
            message,
            time: SystemTime::now(),
            failure,
        };
        history.next_seq += 1;
        if history.recent.len() == history.capacity {
            history.recent.pop_front();
        }
        history.recent.push_back(event.clone());
        // No receivers is fine: nobody is watching.
        let _ = self.sender.send(event.clone());
        event
    }

    /// A receiver of every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }

    /// Up to `limit` most recent events, oldest first.
    pub fn recent(&self, limit: usize) -> Vec<Event> {
        let history = self
            .history
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let skip = history.recent.len().saturating_sub(limit);
        history.recent.iter().skip(skip).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_receive_events_in_order_with_increasing_seq() {
        let bus = EventBus::new(8);
        let mut rx = bus.subscribe();
        bus.publish(EventKind::FilterLoaded, Some("auth"), "loaded");
        bus.publish(EventKind::ConfigApplied, None, "2 changes");
        let first = rx.recv().await.unwrap();
        let second = rx.recv().await.unwrap();
        assert_eq!(
            (first.seq, first.kind, first.filter.as_deref()),
            (1, EventKind::FilterLoaded, Some("auth"))
        );
        assert_eq!(
            (second.seq, second.kind, second.filter),
            (2, EventKind::ConfigApplied, None)
        );
    }

    #[test]
    fn history_is_bounded_and_keeps_the_newest() {
        let bus = EventBus::new(3);
        for i in 0..5 {
            bus.publish(EventKind::FilterTrapped, Some("f"), format!("trap {i}"));
        }
        let recent: Vec<u64> = bus.recent(10).iter().map(|e| e.seq).collect();
        assert_eq!(recent, vec![3, 4, 5]);
        let last_two: Vec<u64> = bus.recent(2).iter().map(|e| e.seq).collect();
        assert_eq!(last_two, vec![4, 5]);
    }

    #[tokio::test]
    async fn a_slow_subscriber_is_told_it_lagged() {
        let bus = EventBus::new(2);
        let mut rx = bus.subscribe();
        for _ in 0..4 {
            bus.publish(EventKind::FilterFailed, Some("f"), "timeout");
        }
        assert!(matches!(
            rx.recv().await,
            Err(broadcast::error::RecvError::Lagged(2))
        ));
        assert_eq!(rx.recv().await.unwrap().seq, 3);
    }
}
