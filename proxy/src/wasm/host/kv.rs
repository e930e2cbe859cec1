//! The process-wide key-value store behind the `kv` interface.
//!
//! Keys are spread over sharded locks. Every write gets a version from one
//! process-wide counter, so a version is never reused (even after a delete
//! and re-create), which makes compare-and-swap safe against ABA. Expired
//! entries are dropped lazily when touched and by a periodic
//! [`KvStore::sweep_expired`] (run by the runtime's background thread).
//!
//! `increment` keeps counters as decimal ASCII (`b"42"`), so `get` returns a
//! readable value and a guest can parse it.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::HostState;
use crate::wasm::bindings::weir::filter::kv as wit;

/// Number of independently locked shards.
const SHARDS: usize = 32;
/// Longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Largest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// Most live entries in the whole store.
pub const MAX_ENTRIES: usize = 1_000_000;

/// Milliseconds on a monotonic clock; injectable so tests can move time.
pub trait KvClock: Send + Sync {
    /// Milliseconds since some fixed point; never goes backwards.
    fn now_ms(&self) -> u64;
}

/// The real monotonic clock.
#[derive(Debug)]
pub struct MonotonicClock(Instant);

impl Default for MonotonicClock {
    fn default() -> Self {
        MonotonicClock(Instant::now())
    }
}

impl KvClock for MonotonicClock {
    fn now_ms(&self) -> u64 {
        self.0.elapsed().as_millis() as u64
    }
}

/// A stored value and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvEntry {
    /// The bytes stored.
    pub value: Vec<u8>,
    /// Changes on every write.
    pub version: u64,
}

#[derive(Debug)]
struct Slot {
    value: Vec<u8>,
    version: u64,
    expires_at: Option<u64>,
}

/// Why a KV operation was refused (the guest call traps with this message).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KvError {
    /// The key is longer than [`MAX_KEY_BYTES`].
    #[error("kv key longer than {MAX_KEY_BYTES} bytes")]
    KeyTooLong,
    /// The value is larger than [`MAX_VALUE_BYTES`].
    #[error("kv value for `{0}` larger than {MAX_VALUE_BYTES} bytes")]
    ValueTooLarge(String),
    /// The store already holds [`MAX_ENTRIES`] keys.
    #[error("kv store full ({MAX_ENTRIES} entries)")]
    Full,
    /// `increment` on a key whose value is not a decimal integer.
    #[error("kv key `{0}` does not hold a counter")]
    NotACounter(String),
}

/// The process-wide KV store.
pub struct KvStore {
    shards: Vec<Mutex<HashMap<String, Slot>>>,
    hasher: RandomState,
    versions: AtomicU64,
    len: AtomicUsize,
    clock: Arc<dyn KvClock>,
}

impl std::fmt::Debug for KvStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvStore")
            .field("entries", &self.len.load(Ordering::Relaxed))
            .finish()
    }
}

impl Default for KvStore {
    fn default() -> Self {
        Self::with_clock(Arc::new(MonotonicClock::default()))
    }
}

impl KvStore {
    /// An empty store reading time from `clock`.
    pub fn with_clock(clock: Arc<dyn KvClock>) -> Self {
        KvStore {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            versions: AtomicU64::new(0),
            len: AtomicUsize::new(0),
            clock,
        }
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, HashMap<String, Slot>> {
        let index = (self.hasher.hash_one(key) as usize) % SHARDS;
        // A panic while holding a shard lock cannot leave a half-written
        // entry (every write is one insert/remove), so poisoning is ignored.
        self.shards[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn next_version(&self) -> u64 {
        self.versions.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn expiry(&self, now: u64, ttl_ms: Option<u64>) -> Option<u64> {
        ttl_ms.map(|ttl| now.saturating_add(ttl))
    }

    /// Look up `key` in a locked shard, dropping it if expired.
    fn live<'m>(
        &self,
        map: &'m mut HashMap<String, Slot>,
        key: &str,
        now: u64,
    ) -> Option<&'m mut Slot> {
        let expired = map
            .get(key)
            .is_some_and(|slot| slot.expires_at.is_some_and(|at| at <= now));
        if expired {
            map.remove(key);
            self.len.fetch_sub(1, Ordering::Relaxed);
        }
        map.get_mut(key)
    }

    fn check(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        if key.len() > MAX_KEY_BYTES {
            return Err(KvError::KeyTooLong);
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(KvError::ValueTooLarge(key.to_owned()));
        }
        Ok(())
    }

    /// Insert a new key, respecting [`MAX_ENTRIES`].
    fn insert_new(
        &self,
        map: &mut HashMap<String, Slot>,
        key: &str,
        slot: Slot,
    ) -> Result<(), KvError> {
        if self.len.fetch_add(1, Ordering::Relaxed) >= MAX_ENTRIES {
            self.len.fetch_sub(1, Ordering::Relaxed);
            return Err(KvError::Full);
        }
        map.insert(key.to_owned(), slot);
        Ok(())
    }

    /// The value and version of `key`, if present and not expired.
    pub fn get(&self, key: &str) -> Option<KvEntry> {
        let now = self.clock.now_ms();
        let mut map = self.shard(key);
        self.live(&mut map, key, now).map(|slot| KvEntry {
            value: slot.value.clone(),
            version: slot.version,
        })
    }

    /// Store `value` (expiring after `ttl_ms` if given); returns the new version.
    pub fn set(&self, key: &str, value: Vec<u8>, ttl_ms: Option<u64>) -> Result<u64, KvError> {
        self.check(key, &value)?;
        let now = self.clock.now_ms();
        let mut map = self.shard(key);
        let version = self.next_version();
        let expires_at = self.expiry(now, ttl_ms);
        match self.live(&mut map, key, now) {
            Some(slot) => {
                *slot = Slot {
                    value,
                    version,
                    expires_at,
                }
            }
            None => self.insert_new(
                &mut map,
                key,
                Slot {
                    value,
                    version,
                    expires_at,
                },
            )?,
        }
        Ok(version)
    }

    /// Store `value` only if the current version is `expected` (`None`: only
    /// if absent). `Ok(None)` on conflict.
    pub fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<u64>,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> Result<Option<u64>, KvError> {
        self.check(key, &value)?;
        let now = self.clock.now_ms();
        let mut map = self.shard(key);
        let expires_at = self.expiry(now, ttl_ms);
        match (self.live(&mut map, key, now), expected) {
            (Some(slot), Some(expected)) if slot.version == expected => {
                let version = self.next_version();
                *slot = Slot {
                    value,
                    version,
                    expires_at,
                };
                Ok(Some(version))
            }
            (None, None) => {
                let version = self.next_version();
                self.insert_new(
                    &mut map,
                    key,
                    Slot {
                        value,
                        version,
                        expires_at,
                    },
                )?;
                Ok(Some(version))
            }
            _ => Ok(None),
        }
    }

    /// Add `delta` to the counter at `key` (absent counts as 0, saturating at
    /// the i64 bounds); `ttl_ms` applies when the key is created.
    pub fn increment(&self, key: &str, delta: i64, ttl_ms: Option<u64>) -> Result<i64, KvError> {
        self.check(key, &[])?;
        let now = self.clock.now_ms();
        let mut map = self.shard(key);
        let version = self.next_version();
        match self.live(&mut map, key, now) {
            Some(slot) => {
                let current: i64 = std::str::from_utf8(&slot.value)
                    .ok()
                    .and_then(|text| text.parse().ok())
                    .ok_or_else(|| KvError::NotACounter(key.to_owned()))?;
                let next = current.saturating_add(delta);
                slot.value = next.to_string().into_bytes();
                slot.version = version;
                Ok(next)
            }
            None => {
                let slot = Slot {
                    value: delta.to_string().into_bytes(),
                    version,
                    expires_at: self.expiry(now, ttl_ms),
                };
                self.insert_new(&mut map, key, slot)?;
                Ok(delta)
            }
        }
    }

    /// Remove `key`; true if it existed (and had not expired).
    pub fn delete(&self, key: &str) -> bool {
        let now = self.clock.now_ms();
        let mut map = self.shard(key);
        if self.live(&mut map, key, now).is_none() {
            return false;
        }
        map.remove(key);
        self.len.fetch_sub(1, Ordering::Relaxed);
        true
    }

    /// Drop every expired entry; returns how many were dropped.
    pub fn sweep_expired(&self) -> usize {
        let now = self.clock.now_ms();
        let mut dropped = 0;
        for shard in &self.shards {
            let mut map = shard
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let before = map.len();
            map.retain(|_, slot| slot.expires_at.is_none_or(|at| at > now));
            dropped += before - map.len();
        }
        self.len.fetch_sub(dropped, Ordering::Relaxed);
        dropped
    }

    /// Live entries (including expired ones not yet swept).
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// True when the store holds no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn trap(error: KvError) -> wasmtime::Error {
    wasmtime::Error::new(error)
}

impl wit::Host for HostState {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<wit::Entry>> {
        Ok(self.shared.kv.get(&key).map(|entry| wit::Entry {
            value: entry.value,
            version: entry.version,
        }))
    }

    fn set(&mut self, key: String, value: Vec<u8>, ttl_ms: Option<u64>) -> wasmtime::Result<u64> {
        self.shared.kv.set(&key, value, ttl_ms).map_err(trap)
    }

    fn compare_and_swap(
        &mut self,
        key: String,
        expected: Option<u64>,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> wasmtime::Result<Option<u64>> {
        self.shared
            .kv
            .compare_and_swap(&key, expected, value, ttl_ms)
            .map_err(trap)
    }

    fn increment(&mut self, key: String, delta: i64, ttl_ms: Option<u64>) -> wasmtime::Result<i64> {
        self.shared.kv.increment(&key, delta, ttl_ms).map_err(trap)
    }

    fn delete(&mut self, key: String) -> wasmtime::Result<bool> {
        Ok(self.shared.kv.delete(&key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clock the test moves by hand.
    #[derive(Default)]
    struct ManualClock(AtomicU64);

    impl ManualClock {
        fn advance(&self, ms: u64) {
            self.0.fetch_add(ms, Ordering::SeqCst);
        }
    }

    impl KvClock for ManualClock {
        fn now_ms(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    fn store() -> (Arc<ManualClock>, KvStore) {
        let clock = Arc::new(ManualClock::default());
        (clock.clone(), KvStore::with_clock(clock))
    }

    #[test]
    fn set_get_delete() {
        let (_, kv) = store();
        assert_eq!(kv.get("a"), None);
        let v1 = kv.set("a", b"one".to_vec(), None).unwrap();
        assert_eq!(
            kv.get("a"),
            Some(KvEntry {
                value: b"one".to_vec(),
                version: v1
            })
        );
        let v2 = kv.set("a", b"two".to_vec(), None).unwrap();
        assert!(v2 > v1, "every write changes the version");
        assert_eq!(kv.get("a").unwrap().value, b"two");
        assert!(kv.delete("a"));
        assert!(!kv.delete("a"));
        assert_eq!(kv.get("a"), None);
        assert!(kv.is_empty());
    }

    #[test]
    fn compare_and_swap_checks_the_version() {
        let (_, kv) = store();
        let v1 = kv
            .compare_and_swap("k", None, b"first".to_vec(), None)
            .unwrap()
            .expect("absent: created");
        assert_eq!(
            kv.compare_and_swap("k", None, b"again".to_vec(), None)
                .unwrap(),
            None,
            "present: conflict"
        );
        assert_eq!(
            kv.compare_and_swap("k", Some(v1 + 100), b"x".to_vec(), None)
                .unwrap(),
            None
        );
        let v2 = kv
            .compare_and_swap("k", Some(v1), b"second".to_vec(), None)
            .unwrap()
            .expect("matching version");
        assert_ne!(v1, v2);
        assert_eq!(
            kv.compare_and_swap("k", Some(v1), b"stale".to_vec(), None)
                .unwrap(),
            None
        );
        assert_eq!(kv.get("k").unwrap().value, b"second");
        assert_eq!(
            kv.compare_and_swap("missing", Some(v2), b"x".to_vec(), None)
                .unwrap(),
            None
        );
    }

    #[test]
    fn versions_are_not_reused_after_delete() {
        let (_, kv) = store();
        let v1 = kv.set("k", b"a".to_vec(), None).unwrap();
        kv.delete("k");
        let v2 = kv.set("k", b"a".to_vec(), None).unwrap();
        assert_eq!(
            kv.compare_and_swap("k", Some(v1), b"b".to_vec(), None)
                .unwrap(),
            None
        );
        assert!(
            kv.compare_and_swap("k", Some(v2), b"b".to_vec(), None)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn ttl_expires_with_the_clock() {
        let (clock, kv) = store();
        kv.set("short", b"x".to_vec(), Some(100)).unwrap();
        kv.set("forever", b"y".to_vec(), None).unwrap();
        clock.advance(99);
        assert!(kv.get("short").is_some());
        clock.advance(1);
        assert_eq!(kv.get("short"), None, "expired at exactly ttl");
        assert!(kv.get("forever").is_some());
        // An expired key counts as absent for CAS and delete.
        kv.set("gone", b"x".to_vec(), Some(10)).unwrap();
        clock.advance(10);
        assert!(!kv.delete("gone"));
        kv.set("cas", b"x".to_vec(), Some(10)).unwrap();
        clock.advance(10);
        assert!(
            kv.compare_and_swap("cas", None, b"new".to_vec(), None)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn set_without_ttl_clears_the_old_ttl() {
        let (clock, kv) = store();
        kv.set("k", b"x".to_vec(), Some(10)).unwrap();
        kv.set("k", b"y".to_vec(), None).unwrap();
        clock.advance(1000);
        assert_eq!(kv.get("k").unwrap().value, b"y");
    }

    #[test]
    fn sweep_drops_only_expired_entries() {
        let (clock, kv) = store();
        for i in 0..50 {
            kv.set(&format!("t{i}"), vec![1], Some(5)).unwrap();
            kv.set(&format!("p{i}"), vec![1], None).unwrap();
        }
        assert_eq!(kv.len(), 100);
        assert_eq!(kv.sweep_expired(), 0);
        clock.advance(5);
        assert_eq!(kv.sweep_expired(), 50);
        assert_eq!(kv.len(), 50);
        assert!(kv.get("p7").is_some());
    }

    #[test]
    fn increment_counts_and_keeps_the_creation_ttl() {
        let (clock, kv) = store();
        assert_eq!(kv.increment("c", 5, Some(100)).unwrap(), 5);
        assert_eq!(kv.increment("c", -7, None).unwrap(), -2);
        assert_eq!(kv.get("c").unwrap().value, b"-2");
        clock.advance(60);
        assert_eq!(
            kv.increment("c", 1, Some(1000)).unwrap(),
            -1,
            "ttl only applies on creation"
        );
        clock.advance(40);
        assert_eq!(kv.get("c"), None);
        assert_eq!(
            kv.increment("c", 1, None).unwrap(),
            1,
            "expired counts as absent"
        );
        kv.set("max", i64::MAX.to_string().into_bytes(), None)
            .unwrap();
        assert_eq!(kv.increment("max", 1, None).unwrap(), i64::MAX, "saturates");
    }

    #[test]
    fn increment_refuses_a_non_counter() {
        let (_, kv) = store();
        kv.set("text", b"hello".to_vec(), None).unwrap();
        assert_eq!(
            kv.increment("text", 1, None),
            Err(KvError::NotACounter("text".into()))
        );
    }

    #[test]
    fn limits_are_enforced() {
        let (_, kv) = store();
        assert_eq!(
            kv.set(&"k".repeat(MAX_KEY_BYTES + 1), vec![], None),
            Err(KvError::KeyTooLong)
        );
        assert_eq!(
            kv.set("big", vec![0; MAX_VALUE_BYTES + 1], None),
            Err(KvError::ValueTooLarge("big".into()))
        );
        assert!(kv.is_empty());
    }

    #[test]
    fn concurrent_increments_are_atomic() {
        let kv = Arc::new(KvStore::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let kv = kv.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        kv.increment("n", 1, None).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(kv.get("n").unwrap().value, b"4000");
    }
}
