//! The linker for filters with `execution: inline`: WASI with `wasi:io`
//! that never waits.
//!
//! wasmtime decides per store whether guest calls must be async: a store is
//! async as soon as its component imports one function the linker defines as
//! async. wasmtime-wasi's async linker defines `wasi:io/poll` and the
//! blocking `wasi:io/streams` methods as async, and every Rust
//! `wasm32-wasip2` guest imports them through `std`, so every filter linked
//! with it runs on a fiber (its own stack, switched to for every call) even
//! if it never waits. wasmtime-wasi's sync linker avoids the fiber but runs
//! those methods with `Handle::block_on`, which panics on a runtime thread.
//!
//! Here the sync linker's `wasi:io/poll` and `wasi:io/streams` are replaced
//! by implementations that poll the operation once: what is ready (a write
//! to the guest's stderr, which logs synchronously; a read of its closed
//! stdin; an expired clock) completes as usual, and what would have to wait
//! (a sleep, a timer not yet due) traps with [`WouldBlock`], failing that
//! one call by the filter's failure mode.
//!
//! The other blocking WASI functions (filesystem, sockets) need a
//! descriptor or socket first, which a filter cannot get: it has no
//! preopened directories and no network access.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::p2::bindings::io::poll as async_poll;
use wasmtime_wasi::p2::bindings::io::streams as async_streams;
use wasmtime_wasi::p2::bindings::sync::io::poll::{self, Pollable};
use wasmtime_wasi::p2::bindings::sync::io::streams::{self, InputStream, OutputStream};
use wasmtime_wasi::p2::{StreamError, StreamResult};

/// An inline filter asked WASI to wait for something that was not ready.
#[derive(Debug, thiserror::Error)]
#[error(
    "the filter waited on WASI I/O ({operation}), which a filter with \
     `execution: inline` cannot do; use `execution: yielding` for this filter"
)]
pub(crate) struct WouldBlock {
    operation: &'static str,
}

/// Define WASI for inline filters into `linker` (see the module docs).
pub(crate) fn add_to_linker<T: WasiView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    linker.allow_shadowing(true);
    poll::add_to_linker::<T, NonBlocking>(linker, |t| NonBlockingIo(t.ctx().table))?;
    streams::add_to_linker::<T, NonBlocking>(linker, |t| NonBlockingIo(t.ctx().table))?;
    linker.allow_shadowing(false);
    Ok(())
}

struct NonBlocking;

impl HasData for NonBlocking {
    type Data<'a> = NonBlockingIo<'a>;
}

/// The resource table, with `wasi:io` implemented without waiting.
pub(crate) struct NonBlockingIo<'a>(&'a mut ResourceTable);

/// Poll `operation` once: its result if ready, else [`WouldBlock`].
fn at_once<F: Future>(what: &'static str, operation: F) -> Result<F::Output, WouldBlock> {
    let mut operation = pin!(operation);
    match operation
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => Ok(output),
        Poll::Pending => Err(WouldBlock { operation: what }),
    }
}

fn trap(error: WouldBlock) -> wasmtime::Error {
    wasmtime::Error::new(error)
}

fn stream_trap(error: WouldBlock) -> StreamError {
    StreamError::Trap(trap(error))
}

impl poll::Host for NonBlockingIo<'_> {
    fn poll(&mut self, pollables: Vec<Resource<Pollable>>) -> wasmtime::Result<Vec<u32>> {
        at_once("poll", async_poll::Host::poll(self.0, pollables)).map_err(trap)?
    }
}

impl poll::HostPollable for NonBlockingIo<'_> {
    fn ready(&mut self, pollable: Resource<Pollable>) -> wasmtime::Result<bool> {
        // Never waits: it polls the pollable once itself.
        at_once(
            "pollable.ready",
            async_poll::HostPollable::ready(self.0, pollable),
        )
        .map_err(trap)?
    }

    fn block(&mut self, pollable: Resource<Pollable>) -> wasmtime::Result<()> {
        at_once(
            "pollable.block",
            async_poll::HostPollable::block(self.0, pollable),
        )
        .map_err(trap)?
    }

    fn drop(&mut self, pollable: Resource<Pollable>) -> wasmtime::Result<()> {
        async_poll::HostPollable::drop(self.0, pollable)
    }
}

impl streams::Host for NonBlockingIo<'_> {
    fn convert_stream_error(&mut self, err: StreamError) -> wasmtime::Result<streams::StreamError> {
        streams::Host::convert_stream_error(self.0, err)
    }
}

impl streams::HostOutputStream for NonBlockingIo<'_> {
    fn drop(&mut self, stream: Resource<OutputStream>) -> wasmtime::Result<()> {
        // Dropping cancels the stream's background work: with our streams
        // there is none, and a stream that still had some is dropped anyway.
        let drop = async_streams::HostOutputStream::drop(self.0, stream);
        at_once("output-stream.drop", drop).unwrap_or(Ok(()))
    }

    fn check_write(&mut self, stream: Resource<OutputStream>) -> StreamResult<u64> {
        streams::HostOutputStream::check_write(self.0, stream)
    }

    fn write(&mut self, stream: Resource<OutputStream>, bytes: Vec<u8>) -> StreamResult<()> {
        streams::HostOutputStream::write(self.0, stream, bytes)
    }

    fn blocking_write_and_flush(
        &mut self,
        stream: Resource<OutputStream>,
        bytes: Vec<u8>,
    ) -> StreamResult<()> {
        let write =
            async_streams::HostOutputStream::blocking_write_and_flush(self.0, stream, bytes);
        at_once("output-stream.blocking-write-and-flush", write).map_err(stream_trap)?
    }

    fn blocking_write_zeroes_and_flush(
        &mut self,
        stream: Resource<OutputStream>,
        len: u64,
    ) -> StreamResult<()> {
        let write =
            async_streams::HostOutputStream::blocking_write_zeroes_and_flush(self.0, stream, len);
        at_once("output-stream.blocking-write-zeroes-and-flush", write).map_err(stream_trap)?
    }

    fn subscribe(
        &mut self,
        stream: Resource<OutputStream>,
    ) -> wasmtime::Result<Resource<Pollable>> {
        streams::HostOutputStream::subscribe(self.0, stream)
    }

    fn write_zeroes(&mut self, stream: Resource<OutputStream>, len: u64) -> StreamResult<()> {
        streams::HostOutputStream::write_zeroes(self.0, stream, len)
    }

    fn flush(&mut self, stream: Resource<OutputStream>) -> StreamResult<()> {
        streams::HostOutputStream::flush(self.0, stream)
    }

    fn blocking_flush(&mut self, stream: Resource<OutputStream>) -> StreamResult<()> {
        let flush = async_streams::HostOutputStream::blocking_flush(self.0, stream);
        at_once("output-stream.blocking-flush", flush).map_err(stream_trap)?
    }

    fn splice(
        &mut self,
        dst: Resource<OutputStream>,
        src: Resource<InputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        streams::HostOutputStream::splice(self.0, dst, src, len)
    }

    fn blocking_splice(
        &mut self,
        dst: Resource<OutputStream>,
        src: Resource<InputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        let splice = async_streams::HostOutputStream::blocking_splice(self.0, dst, src, len);
        at_once("output-stream.blocking-splice", splice).map_err(stream_trap)?
    }
}

impl streams::HostInputStream for NonBlockingIo<'_> {
    fn drop(&mut self, stream: Resource<InputStream>) -> wasmtime::Result<()> {
        let drop = async_streams::HostInputStream::drop(self.0, stream);
        at_once("input-stream.drop", drop).unwrap_or(Ok(()))
    }

    fn read(&mut self, stream: Resource<InputStream>, len: u64) -> StreamResult<Vec<u8>> {
        streams::HostInputStream::read(self.0, stream, len)
    }

    fn blocking_read(&mut self, stream: Resource<InputStream>, len: u64) -> StreamResult<Vec<u8>> {
        let read = async_streams::HostInputStream::blocking_read(self.0, stream, len);
        at_once("input-stream.blocking-read", read).map_err(stream_trap)?
    }

    fn skip(&mut self, stream: Resource<InputStream>, len: u64) -> StreamResult<u64> {
        streams::HostInputStream::skip(self.0, stream, len)
    }

    fn blocking_skip(&mut self, stream: Resource<InputStream>, len: u64) -> StreamResult<u64> {
        let skip = async_streams::HostInputStream::blocking_skip(self.0, stream, len);
        at_once("input-stream.blocking-skip", skip).map_err(stream_trap)?
    }

    fn subscribe(&mut self, stream: Resource<InputStream>) -> wasmtime::Result<Resource<Pollable>> {
        streams::HostInputStream::subscribe(self.0, stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ready_operation_completes() {
        assert_eq!(at_once("ready", async { 7 }).unwrap(), 7);
    }

    #[test]
    fn an_operation_that_would_wait_is_refused_naming_it_and_the_fix() {
        let refused = at_once("pollable.block", std::future::pending::<()>()).unwrap_err();
        let message = refused.to_string();
        assert!(message.contains("pollable.block"), "{message}");
        assert!(message.contains("execution: inline"), "{message}");
        assert!(message.contains("execution: yielding"), "{message}");
    }

    #[test]
    fn a_refusal_is_a_trap_the_call_failure_can_find() {
        let error = trap(WouldBlock { operation: "poll" });
        assert!(error.chain().any(|cause| cause.is::<WouldBlock>()));
        let StreamError::Trap(error) = stream_trap(WouldBlock { operation: "read" }) else {
            panic!("a stream refusal must trap, not report a stream error");
        };
        assert!(error.is::<WouldBlock>());
    }
}
