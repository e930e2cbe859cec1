//! Time, as the proxy sees it.
//!
//! Use these rather than `std::time`: the proxy's clock is the one its logs
//! and metrics use, and the test harness (`weir_sdk::testing`) can set it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::backend;

/// Wall-clock time now.
pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(unix_ms())
}

/// Wall-clock time now, in milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    backend::now_unix_ms()
}

/// A monotonic clock, for measuring intervals: the time since an arbitrary
/// fixed origin. Subtract two readings to get the time between them.
pub fn monotonic() -> Duration {
    Duration::from_nanos(backend::monotonic_ns())
}
