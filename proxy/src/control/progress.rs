//! A spinner on stderr while a long call runs (a large module uploading and
//! compiling). Shown only when stderr is a terminal, so scripts and logs
//! never see it, and only after a short delay, so quick calls don't flash.

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use tokio::sync::oneshot;

const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const FIRST_FRAME_AFTER: Duration = Duration::from_millis(250);
const FRAME_EVERY: Duration = Duration::from_millis(100);

/// Runs `work`, showing `message` with a spinner on stderr meanwhile.
pub(crate) async fn with_spinner<T>(message: String, work: impl Future<Output = T>) -> T {
    if !std::io::stderr().is_terminal() {
        return work.await;
    }
    let (stop_tx, stop_rx) = oneshot::channel();
    let spinner = tokio::spawn(spin(message, stop_rx));
    let result = work.await;
    let _ = stop_tx.send(());
    let _ = spinner.await;
    result
}

async fn spin(message: String, mut stop: oneshot::Receiver<()>) {
    let mut ticks =
        tokio::time::interval_at(tokio::time::Instant::now() + FIRST_FRAME_AFTER, FRAME_EVERY);
    let mut drawn = false;
    for frame in FRAMES.iter().cycle() {
        tokio::select! {
            _ = &mut stop => break,
            _ = ticks.tick() => {
                let mut stderr = std::io::stderr().lock();
                let _ = write!(stderr, "\r{frame} {message}");
                let _ = stderr.flush();
                drawn = true;
            }
        }
    }
    if drawn {
        // Erase the line so the result starts clean.
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "\r\x1b[2K");
        let _ = stderr.flush();
    }
}
