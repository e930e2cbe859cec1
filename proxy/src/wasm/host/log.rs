//! The `log` interface, and the guest's stderr, both into `tracing` tagged
//! with the filter's name.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use tracing::Level;
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use super::HostState;
use crate::wasm::bindings::weir::filter::log as wit;
use crate::wasm::bindings::weir::filter::types::LogLevel;

/// The `tracing` target of everything filters log.
pub const TARGET: &str = "weir::filter";
/// Longest message kept; longer ones are cut.
const MAX_MESSAGE: usize = 8 * 1024;

fn cut(message: &str) -> &str {
    if message.len() <= MAX_MESSAGE {
        return message;
    }
    let mut end = MAX_MESSAGE;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    &message[..end]
}

fn emit(filter: &str, level: LogLevel, message: &str) {
    let message = cut(message);
    match level {
        LogLevel::Trace => tracing::event!(target: TARGET, Level::TRACE, filter, "{message}"),
        LogLevel::Debug => tracing::event!(target: TARGET, Level::DEBUG, filter, "{message}"),
        LogLevel::Info => tracing::event!(target: TARGET, Level::INFO, filter, "{message}"),
        LogLevel::Warn => tracing::event!(target: TARGET, Level::WARN, filter, "{message}"),
        LogLevel::Error => tracing::event!(target: TARGET, Level::ERROR, filter, "{message}"),
    }
}

impl wit::Host for HostState {
    fn log(&mut self, level: LogLevel, message: String) -> wasmtime::Result<()> {
        emit(&self.filter, level, &message);
        Ok(())
    }

    fn enabled(&mut self, level: LogLevel) -> wasmtime::Result<bool> {
        Ok(match level {
            LogLevel::Trace => tracing::enabled!(target: TARGET, Level::TRACE),
            LogLevel::Debug => tracing::enabled!(target: TARGET, Level::DEBUG),
            LogLevel::Info => tracing::enabled!(target: TARGET, Level::INFO),
            LogLevel::Warn => tracing::enabled!(target: TARGET, Level::WARN),
            LogLevel::Error => tracing::enabled!(target: TARGET, Level::ERROR),
        })
    }
}

/// The guest's stderr: each line becomes a `warn` event tagged with the filter
/// (a Rust guest's panic message arrives here before the trap).
#[derive(Debug, Clone)]
pub(crate) struct GuestStderr {
    filter: Arc<str>,
}

impl GuestStderr {
    pub(crate) fn new(filter: Arc<str>) -> Self {
        GuestStderr { filter }
    }

    fn logger(&self) -> LineLogger {
        LineLogger {
            filter: self.filter.clone(),
            line: Vec::new(),
        }
    }
}

impl wasmtime_wasi::cli::IsTerminal for GuestStderr {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for GuestStderr {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.logger())
    }

    /// A stream that logs synchronously and is always ready. The default
    /// (an `AsyncWriteStream`) spawns a task per stream and makes the guest
    /// wait for it, which an inline filter cannot do (see `wasm::inline_io`).
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.logger())
    }
}

/// Splits written bytes into lines and logs each.
struct LineLogger {
    filter: Arc<str>,
    line: Vec<u8>,
}

impl LineLogger {
    fn flush_line(&mut self) {
        if !self.line.is_empty() {
            let text = String::from_utf8_lossy(&self.line);
            emit(&self.filter, LogLevel::Warn, text.trim_end());
            self.line.clear();
        }
    }

    /// Log every complete line of `bytes`, keep the rest for later.
    fn push(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if byte == b'\n' {
                self.flush_line();
            } else {
                self.line.push(byte);
                if self.line.len() >= MAX_MESSAGE {
                    self.flush_line();
                }
            }
        }
    }
}

impl AsyncWrite for LineLogger {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.flush_line();
        Poll::Ready(Ok(()))
    }
}

/// Room offered per write: a whole message, so a line needs one write.
const WRITE_PERMIT: usize = MAX_MESSAGE;

#[async_trait::async_trait]
impl Pollable for LineLogger {
    /// Writes never wait.
    async fn ready(&mut self) {}
}

impl OutputStream for LineLogger {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

impl Drop for LineLogger {
    fn drop(&mut self) {
        self.flush_line();
    }
}
