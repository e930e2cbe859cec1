//! A key-value store shared by all filters and requests in the proxy process.
//!
//! Counters, rate-limit buckets, small caches. Keys are plain strings; give
//! them a prefix of your filter's name to stay out of other filters' way.
//! Values expire after their TTL if one is given.
//!
//! ```
//! use std::time::Duration;
//! use weir_sdk::kv;
//!
//! let hits = kv::increment("my-filter:hits:/api", 1, Some(Duration::from_secs(60)));
//! assert!(hits >= 1);
//! ```

use std::time::Duration;

use crate::backend;

/// A stored value and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The bytes stored.
    pub value: Vec<u8>,
    /// Changes on every write; pass it to [`compare_and_swap`].
    pub version: u64,
}

impl Entry {
    /// The value as UTF-8 text, if it is.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.value).ok()
    }
}

fn ms(ttl: Option<Duration>) -> Option<u64> {
    ttl.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The value under `key`, if any (and not expired).
pub fn get(key: &str) -> Option<Entry> {
    backend::kv_get(key)
}

/// Store `value` under `key`, expiring after `ttl` if given. Returns the new version.
pub fn set(key: &str, value: impl AsRef<[u8]>, ttl: Option<Duration>) -> u64 {
    backend::kv_set(key, value.as_ref(), ms(ttl))
}

/// Store `value` only if the current version is `expected` (`None`: only if
/// the key is absent). Returns the new version, or `None` if someone else
/// wrote first: read again and retry.
pub fn compare_and_swap(
    key: &str,
    expected: Option<u64>,
    value: impl AsRef<[u8]>,
    ttl: Option<Duration>,
) -> Option<u64> {
    backend::kv_compare_and_swap(key, expected, value.as_ref(), ms(ttl))
}

/// Atomically add `delta` to the signed 64-bit counter under `key` (absent
/// counts as 0) and return the new value. `ttl` applies when the key is
/// created. Counters are stored as decimal text (`get` shows `b"42"`).
pub fn increment(key: &str, delta: i64, ttl: Option<Duration>) -> i64 {
    backend::kv_increment(key, delta, ms(ttl))
}

/// Remove `key`; true if it existed.
pub fn delete(key: &str) -> bool {
    backend::kv_delete(key)
}
