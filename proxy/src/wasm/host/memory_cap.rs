//! The per-instance memory cap: wasmtime's [`StoreLimits`] with its
//! growth failures turned into a typed [`MemoryLimitExceeded`] trap, so a
//! call that hit the cap is told apart from other traps.

use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};

/// The trap raised when a filter's memory would grow past its cap (or the
/// growth failed for lack of memory).
#[derive(Debug, thiserror::Error)]
#[error("exceeded its memory limit of {limit} bytes (growing to {desired} bytes)")]
pub(crate) struct MemoryLimitExceeded {
    /// The cap.
    pub(crate) limit: usize,
    /// What the guest asked for; 0 when the growth failed for another reason.
    pub(crate) desired: usize,
}

/// [`StoreLimits`] trapping with [`MemoryLimitExceeded`] on memory growth failure.
#[derive(Debug)]
pub(crate) struct MemoryCap {
    limit: usize,
    inner: StoreLimits,
}

impl MemoryCap {
    /// A cap of `limit` bytes of linear memory per memory.
    pub(crate) fn new(limit: usize) -> Self {
        MemoryCap {
            limit,
            inner: StoreLimitsBuilder::new()
                .memory_size(limit)
                .trap_on_grow_failure(true)
                .build(),
        }
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner
            .memory_growing(current, desired, maximum)
            .map_err(|_| {
                wasmtime::Error::new(MemoryLimitExceeded {
                    limit: self.limit,
                    desired,
                })
            })
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.inner.memory_grow_failed(error).map_err(|_| {
            wasmtime::Error::new(MemoryLimitExceeded {
                limit: self.limit,
                desired: 0,
            })
        })
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.inner.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}
