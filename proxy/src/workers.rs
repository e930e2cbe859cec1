//! Worker runtimes: one single-threaded tokio runtime per worker thread,
//! the way nginx and Envoy run their workers.
//!
//! A work-stealing runtime moves tasks between threads, and each wake-up
//! across threads costs a system call and cache misses: with two workers it
//! needed about a third more CPU per request than with one (bench/NOTES.md).
//! Here a client connection is accepted where its listener runs and handed,
//! once, to a worker picked round-robin. From then on everything the
//! connection causes stays on that worker's thread: its requests, the
//! upstream connections they use (pooled per worker, see
//! [`crate::upstream`]), filter calls and timers.
//!
//! ```text
//!   worker 0 (the thread `weir run` starts on: listeners, admin, control API)
//!     accept ──► round-robin ──► worker 0 │ worker 1 │ … │ worker N-1
//!                                  each: client connections, their requests,
//!                                  its own upstream connection pool
//! ```
//!
//! Without [`WorkerThreads`] (tests, `--workers 1`) there is one worker:
//! everything runs on the runtime it was spawned on.

use std::cell::Cell;
use std::future::Future;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// The worker runtimes of this process, once [`WorkerThreads::start`] ran.
static WORKERS: OnceLock<Workers> = OnceLock::new();

thread_local! {
    /// This thread's worker number (0 on any thread that is not a worker).
    static INDEX: Cell<usize> = const { Cell::new(0) };
}

struct Workers {
    handles: Vec<Handle>,
    next: AtomicUsize,
}

/// Why the worker threads could not start.
#[derive(Debug, thiserror::Error)]
pub enum WorkersError {
    /// A runtime or a thread could not be created.
    #[error("starting worker {index}: {source}")]
    Start {
        /// The worker that failed.
        index: usize,
        /// What failed.
        source: std::io::Error,
    },
    /// Worker threads run already in this process.
    #[error("worker threads were already started in this process")]
    AlreadyStarted,
}

/// How many workers serve traffic (1 unless [`WorkerThreads`] started more).
pub(crate) fn count() -> usize {
    WORKERS.get().map_or(1, |workers| workers.handles.len())
}

/// The worker the calling thread is (0 outside worker threads).
pub(crate) fn current() -> usize {
    INDEX.with(Cell::get)
}

/// Serve an accepted connection on the next worker: `serve(stream)` runs
/// there, with the stream registered on that worker's event loop.
pub(crate) fn spawn_connection<F, Fut>(stream: TcpStream, serve: F)
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(workers) = WORKERS.get().filter(|w| w.handles.len() > 1) else {
        tokio::spawn(serve(stream));
        return;
    };
    let index = workers.next.fetch_add(1, Ordering::Relaxed) % workers.handles.len();
    if index == current() {
        tokio::spawn(serve(stream));
        return;
    }
    // Leaves this event loop; `from_std` registers it with the worker's.
    let stream = match stream.into_std() {
        Ok(stream) => stream,
        Err(err) => {
            tracing::warn!(error = %err, "could not hand a connection to a worker");
            return;
        }
    };
    workers.handles[index].spawn(async move {
        match TcpStream::from_std(stream) {
            Ok(stream) => serve(stream).await,
            Err(err) => tracing::warn!(error = %err, "a worker could not take a connection"),
        }
    });
}

/// How far ahead each worker always has a timer due (see [`timer_floor`]).
const TIMER_FLOOR: Duration = Duration::from_secs(1);

/// Keep a timer due within [`TIMER_FLOOR`] on the calling worker, forever.
///
/// tokio's timer driver remembers, when its thread last went to sleep, the
/// earliest deadline it had to wake up for. Registering a timer that is due
/// before that remembered deadline wakes the driver through its eventfd:
/// one `write` and one extra `epoll_wait` that returns at once, even when
/// the timer is registered on the driver's own, running thread. A request
/// that is alone on its worker registers the earliest timer there (its
/// upstream timeout), so without this floor every such request paid that
/// wake-up (bench/NOTES.md). With a timer always due within a second, a
/// request timeout of a second or more is never the earliest.
async fn timer_floor() {
    loop {
        tokio::time::sleep(TIMER_FLOOR).await;
    }
}

/// Worker threads 1..N, each running its own single-threaded runtime until
/// dropped. Worker 0 is the runtime given to [`WorkerThreads::start`].
#[derive(Debug)]
pub struct WorkerThreads {
    stops: Vec<oneshot::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl WorkerThreads {
    /// Start `count - 1` worker threads beside `first` (worker 0) and route
    /// accepted connections to all `count` from now on. Once per process.
    pub fn start(first: Handle, count: usize) -> Result<WorkerThreads, WorkersError> {
        let mut handles = vec![first];
        let mut started = WorkerThreads {
            stops: Vec::new(),
            threads: Vec::new(),
        };
        for index in 1..count.max(1) {
            let failed = |source| WorkersError::Start { index, source };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(failed)?;
            let (stop, stopped) = oneshot::channel::<()>();
            handles.push(runtime.handle().clone());
            let thread = std::thread::Builder::new()
                .name(format!("weir-worker-{index}"))
                .spawn(move || {
                    INDEX.with(|cell| cell.set(index));
                    runtime.block_on(async {
                        let _ = stopped.await;
                    });
                })
                .map_err(failed)?;
            started.stops.push(stop);
            started.threads.push(thread);
        }
        for handle in &handles {
            handle.spawn(timer_floor());
        }
        WORKERS
            .set(Workers {
                handles,
                next: AtomicUsize::new(0),
            })
            .map_err(|_| WorkersError::AlreadyStarted)?;
        Ok(started)
    }
}

impl Drop for WorkerThreads {
    /// Stop the worker threads; what still runs on them is dropped.
    fn drop(&mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
