//! Shutdown coordination: the server's phase, and counting the connections
//! that still have to finish.

use std::time::Duration;

use tokio::sync::{mpsc, watch};

/// Where the server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Accepting and serving.
    Running,
    /// Not accepting; open connections finish their requests and close.
    Draining,
    /// Everything still open is being closed now.
    Stopped,
}

/// How a shutdown ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownOutcome {
    /// Every connection finished within the drain timeout.
    Drained,
    /// The drain timeout passed; this many connections were closed early.
    TimedOut {
        /// Connections still open when the drain timeout passed.
        abandoned: usize,
    },
}

/// Watches the server's phase. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ShutdownSignal(watch::Receiver<Phase>);

impl ShutdownSignal {
    /// The phase right now.
    pub fn phase(&self) -> Phase {
        *self.0.borrow()
    }

    /// Resolves once the phase is `at_least` (or the server is gone).
    pub async fn reached(&mut self, at_least: Phase) {
        // An error means the sender is gone: the server is finished.
        let _ = self.0.wait_for(|phase| *phase >= at_least).await;
    }

    /// Resolves with the phase once it is past `seen`: `Stopped` if the
    /// server is gone. One future for a connection's whole life can follow
    /// both steps of a shutdown.
    pub async fn next_phase(mut self, seen: Phase) -> Phase {
        match self.0.wait_for(|phase| *phase > seen).await {
            Ok(phase) => *phase,
            Err(_) => Phase::Stopped,
        }
    }

    /// Resolves when the server starts draining.
    pub async fn draining(&mut self) {
        self.reached(Phase::Draining).await
    }

    /// Resolves when remaining connections must close now.
    pub async fn stopped(&mut self) {
        self.reached(Phase::Stopped).await
    }
}

/// Held by everything a drain waits for: listeners, client connections and
/// upgraded tunnels. The drain is over when every guard is dropped.
#[derive(Debug, Clone)]
pub struct DrainGuard(#[allow(dead_code)] mpsc::Sender<()>);

/// The controlling side: sets phases and waits for the guards.
#[derive(Debug)]
pub(crate) struct ShutdownController {
    phase: watch::Sender<Phase>,
    guards: mpsc::WeakSender<()>,
    all_dropped: mpsc::Receiver<()>,
    first_guard: Option<DrainGuard>,
}

impl ShutdownController {
    pub(crate) fn new() -> Self {
        let (phase, _) = watch::channel(Phase::Running);
        let (guard, all_dropped) = mpsc::channel(1);
        Self {
            phase,
            guards: guard.downgrade(),
            all_dropped,
            first_guard: Some(DrainGuard(guard)),
        }
    }

    /// A new signal receiver.
    pub(crate) fn signal(&self) -> ShutdownSignal {
        ShutdownSignal(self.phase.subscribe())
    }

    /// The phase sender, to hand to whoever starts the shutdown.
    pub(crate) fn phase_sender(&self) -> watch::Sender<Phase> {
        self.phase.clone()
    }

    /// A guard to give to a listener (which clones it for each connection).
    /// Must be called before [`Self::run`].
    pub(crate) fn guard(&self) -> DrainGuard {
        self.first_guard
            .clone()
            .expect("guards are handed out before the controller runs")
    }

    /// Wait until a shutdown starts, drain for at most `drain_timeout`, then
    /// stop what is left.
    pub(crate) async fn run(mut self, drain_timeout: Duration) -> ShutdownOutcome {
        self.first_guard = None;
        let mut signal = self.signal();
        signal.draining().await;
        tracing::info!(
            ?drain_timeout,
            "draining: no new connections; open ones finish"
        );
        let outcome = match tokio::time::timeout(drain_timeout, self.all_dropped.recv()).await {
            Ok(_) => ShutdownOutcome::Drained,
            Err(_) => ShutdownOutcome::TimedOut {
                abandoned: self.guards.strong_count(),
            },
        };
        self.phase.send_replace(Phase::Stopped);
        if let ShutdownOutcome::TimedOut { abandoned } = outcome {
            tracing::warn!(
                abandoned,
                "drain timeout passed; closing remaining connections"
            );
        }
        // Closing is prompt once Stopped is signalled.
        let _ = self.all_dropped.recv().await;
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drains_when_guards_drop() {
        let controller = ShutdownController::new();
        let guard = controller.guard();
        let phase = controller.phase_sender();
        let mut signal = controller.signal();
        let run = tokio::spawn(controller.run(Duration::from_secs(60)));
        phase.send_replace(Phase::Draining);
        signal.draining().await;
        drop(guard);
        assert_eq!(run.await.unwrap(), ShutdownOutcome::Drained);
    }

    #[tokio::test]
    async fn stops_stragglers_after_the_timeout() {
        let controller = ShutdownController::new();
        let guard = controller.guard();
        let phase = controller.phase_sender();
        let mut signal = controller.signal();
        let run = tokio::spawn(controller.run(Duration::from_millis(20)));
        // A connection that only closes when told to stop.
        let straggler = tokio::spawn(async move {
            signal.stopped().await;
            drop(guard);
        });
        phase.send_replace(Phase::Draining);
        assert_eq!(
            run.await.unwrap(),
            ShutdownOutcome::TimedOut { abandoned: 1 }
        );
        straggler.await.unwrap();
    }
}
