//! How the Wasm engine lays out each instance slot. `wasm::runtime`
//! configures the engine with these numbers, and validation sizes the
//! engine's address-space reservation from the same ones.

/// Linear-memory slots per instance slot (a component's program and its
/// WASI adapter each have one).
pub const MEMORIES_PER_INSTANCE: u32 = 2;
/// Guard region after each linear memory.
pub const MEMORY_GUARD_BYTES: u64 = 64 << 10;
/// The fiber stack each instance slot runs on (wasmtime's default size).
pub const ASYNC_STACK_BYTES: u64 = 2 << 20;

/// Address space the pooling allocator reserves (not commits) for
/// `max_instances` slots whose memories may grow to `max_memory_mib`.
pub fn reservation_bytes(max_instances: u32, max_memory_mib: u32) -> u64 {
    let memory = (u64::from(max_memory_mib) << 20) + MEMORY_GUARD_BYTES;
    u64::from(max_instances) * (u64::from(MEMORIES_PER_INSTANCE) * memory + ASYNC_STACK_BYTES)
}
