//! The header read timeout of an HTTP/1 client connection: a request head
//! must arrive whole within `limits.header_read_timeout` of its first byte.
//!
//! hyper has such a timeout built in, but it arms a new timer for every
//! request (a boxed sleep, registered with tokio's timer wheel and removed
//! again) and starts it as soon as the previous response is written. That
//! costs every request a timer, and it also closes keep-alive connections
//! that are merely idle, whatever `limits.idle_timeout` says.
//!
//! Here the clock starts at a head's first byte, as [`super::h1_framing`]
//! sees it, and the timer exists only while a head is incomplete. A request
//! whose head arrives in one read, nearly all of them, never touches it;
//! idle connections are left to the idle timeout.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use super::ConnState;

/// Times the incomplete request head of one connection. See the module docs.
#[derive(Debug)]
pub(crate) struct HeadTimeout {
    timeout: Duration,
    /// The number of the head being timed (1-based), or 0.
    timing: u64,
    /// The deadline of that head: made at the connection's first
    /// incomplete head and reset for later ones.
    sleep: Option<Pin<Box<Sleep>>>,
}

impl HeadTimeout {
    /// No head timed yet.
    pub(crate) fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            timing: 0,
            sleep: None,
        }
    }

    /// Resolves once the head `state` reports as incomplete has been so for
    /// longer than the timeout. The connection task re-polls it whenever it
    /// wakes, which is whenever bytes arrive, so a head that completes in
    /// time is dropped from timing before its deadline is looked at.
    pub(crate) fn expired<'a>(&'a mut self, state: &'a ConnState) -> impl Future<Output = ()> + 'a {
        std::future::poll_fn(move |cx| {
            self.poll_expired(cx, state.partial_head(), state.in_flight() > 0)
        })
    }

    /// `partial`: the incomplete head's number, or 0. `busy`: an earlier
    /// request's response is still being sent.
    fn poll_expired(&mut self, cx: &mut Context<'_>, partial: u64, busy: bool) -> Poll<()> {
        if partial == 0 || busy {
            // A pipelined head that arrived while an earlier response was
            // still being sent waits for the server, not the other way
            // round: its clock starts once the response is out. That happens
            // on this connection's task, which polls this again afterwards.
            self.timing = 0;
            return Poll::Pending;
        }
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(Duration::ZERO)));
        if partial != self.timing {
            self.timing = partial;
            sleep.as_mut().reset(Instant::now() + self.timeout);
        }
        sleep.as_mut().poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use super::*;

    const TIMEOUT: Duration = Duration::from_millis(100);

    fn poll(timer: &mut HeadTimeout, partial: u64, busy: bool) -> Poll<()> {
        let mut cx = Context::from_waker(Waker::noop());
        timer.poll_expired(&mut cx, partial, busy)
    }

    #[tokio::test(start_paused = true)]
    async fn no_timer_while_no_head_is_incomplete() {
        let mut timer = HeadTimeout::new(TIMEOUT);
        assert!(poll(&mut timer, 0, false).is_pending());
        tokio::time::advance(TIMEOUT * 10).await;
        assert!(poll(&mut timer, 0, false).is_pending());
        assert!(timer.sleep.is_none(), "no timer was made");
    }

    #[tokio::test(start_paused = true)]
    async fn an_incomplete_head_expires_after_the_timeout() {
        let mut timer = HeadTimeout::new(TIMEOUT);
        assert!(poll(&mut timer, 1, false).is_pending());
        tokio::time::advance(TIMEOUT - Duration::from_millis(1)).await;
        assert!(poll(&mut timer, 1, false).is_pending());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(poll(&mut timer, 1, false).is_ready());
    }

    #[tokio::test(start_paused = true)]
    async fn each_head_gets_the_whole_timeout() {
        let mut timer = HeadTimeout::new(TIMEOUT);
        assert!(poll(&mut timer, 1, false).is_pending());
        tokio::time::advance(TIMEOUT / 2).await;
        // Head 1 completed and head 2 began: a new clock.
        assert!(poll(&mut timer, 2, false).is_pending());
        tokio::time::advance(TIMEOUT * 3 / 4).await;
        assert!(poll(&mut timer, 2, false).is_pending());
        // Head 2 completed; head 3 starts later with its own clock.
        assert!(poll(&mut timer, 0, false).is_pending());
        assert!(poll(&mut timer, 3, false).is_pending());
        tokio::time::advance(TIMEOUT).await;
        assert!(poll(&mut timer, 3, false).is_ready());
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_behind_a_response_in_progress_waits_for_it() {
        let mut timer = HeadTimeout::new(TIMEOUT);
        assert!(poll(&mut timer, 2, true).is_pending());
        tokio::time::advance(TIMEOUT * 5).await;
        assert!(poll(&mut timer, 2, true).is_pending());
        // The response is out: the head's clock starts now.
        assert!(poll(&mut timer, 2, false).is_pending());
        tokio::time::advance(TIMEOUT - Duration::from_millis(1)).await;
        assert!(poll(&mut timer, 2, false).is_pending());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(poll(&mut timer, 2, false).is_ready());
    }
}
