//! Rollout state shared by all instances through the KV store: the ramp's
//! start time, the canary's per-window error counts and the rollback flag.

use crate::config::{Settings, Step};

/// The KV operations the rollout needs.
pub trait Store {
    /// A value as text.
    fn get(&self, key: &str) -> Option<String>;
    /// Store `value` only if `key` is absent (compare-and-swap against
    /// absence). True if this call stored it.
    fn insert_if_absent(&self, key: &str, value: &str) -> bool;
    /// Add to a counter and return the new value; `ttl_ms` applies when the key is created.
    fn increment(&self, key: &str, delta: i64, ttl_ms: Option<u64>) -> i64;
}

/// The effective canary weight now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effective {
    /// Weight in buckets (0 when rolled back).
    pub weight: u32,
    /// The rollback flag is set.
    pub rolled_back: bool,
}

/// A rollback that this call triggered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackEvent {
    /// Canary 5xx responses in the window.
    pub errors: i64,
    /// Canary responses in the window.
    pub total: i64,
}

/// KV keys of one experiment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `weir.canary.<experiment>`.
    pub fn new(experiment: &str) -> Keys {
        Keys {
            prefix: format!("weir.canary.{experiment}"),
        }
    }
    /// Ramp start, Unix ms.
    pub fn start(&self) -> String {
        format!("{}.start", self.prefix)
    }
    /// Rollback flag (its value says why).
    pub fn rollback(&self) -> String {
        format!("{}.rollback", self.prefix)
    }
    /// Canary responses in window `w`.
    pub fn total(&self, w: u64) -> String {
        format!("{}.window.{w}.total", self.prefix)
    }
    /// Canary 5xx responses in window `w`.
    pub fn errors(&self, w: u64) -> String {
        format!("{}.window.{w}.errors", self.prefix)
    }
}

/// The weight of a ramp `elapsed_ms` after its start: the last step already
/// reached, or `initial` before the first.
pub fn ramp_weight(steps: &[Step], initial: u32, elapsed_ms: u64) -> u32 {
    steps
        .iter()
        .take_while(|s| s.after_ms <= elapsed_ms)
        .last()
        .map_or(initial, |s| s.weight)
}

/// The weight in force at `now_ms`. With a ramp, the first call of any
/// instance records the start time; all instances read the same one.
pub fn effective(s: &Settings, keys: &Keys, store: &dyn Store, now_ms: u64) -> Effective {
    if s.rollback.is_some() && store.get(&keys.rollback()).is_some() {
        return Effective {
            weight: 0,
            rolled_back: true,
        };
    }
    if s.ramp.is_empty() {
        return Effective {
            weight: s.weight,
            rolled_back: false,
        };
    }
    let start = match store.get(&keys.start()).and_then(|v| v.parse::<u64>().ok()) {
        Some(start) => start,
        None => {
            store.insert_if_absent(&keys.start(), &now_ms.to_string());
            // Another instance may have won the race: read the stored value.
            store
                .get(&keys.start())
                .and_then(|v| v.parse().ok())
                .unwrap_or(now_ms)
        }
    };
    Effective {
        weight: ramp_weight(&s.ramp, s.weight, now_ms.saturating_sub(start)),
        rolled_back: false,
    }
}

/// Count one canary response (`status`) in the current window and roll back
/// when the window's error rate passes the threshold with enough responses.
/// Returns the event when this call set the rollback flag.
pub fn record_canary_response(
    s: &Settings,
    keys: &Keys,
    store: &dyn Store,
    now_ms: u64,
    status: u16,
) -> Option<RollbackEvent> {
    let guard = s.rollback.as_ref()?;
    let window_ms = guard.window.as_millis().max(1) as u64;
    let w = now_ms / window_ms;
    // Keep the counters two windows, so a slow instance still finds them.
    let ttl = Some(window_ms.saturating_mul(2));
    let total = store.increment(&keys.total(w), 1, ttl);
    let errors = if status >= 500 {
        store.increment(&keys.errors(w), 1, ttl)
    } else {
        store
            .get(&keys.errors(w))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let over = (errors as f64) * 100.0 > guard.error_rate * total as f64;
    if (total as u64) < guard.min_requests || !over {
        return None;
    }
    let reason = format!("{errors} of {total} canary responses were 5xx in window {w}");
    store
        .insert_if_absent(&keys.rollback(), &reason)
        .then_some(RollbackEvent { errors, total })
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;
    use crate::config::CanaryConfig;

    /// An in-memory store (TTL ignored).
    #[derive(Default)]
    struct MemStore(RefCell<HashMap<String, String>>);

    impl Store for MemStore {
        fn get(&self, key: &str) -> Option<String> {
            self.0.borrow().get(key).cloned()
        }
        fn insert_if_absent(&self, key: &str, value: &str) -> bool {
            let mut m = self.0.borrow_mut();
            if m.contains_key(key) {
                return false;
            }
            m.insert(key.into(), value.into());
            true
        }
        fn increment(&self, key: &str, delta: i64, _ttl_ms: Option<u64>) -> i64 {
            let mut m = self.0.borrow_mut();
            let v = m.get(key).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0) + delta;
            m.insert(key.into(), v.to_string());
            v
        }
    }

    fn settings(extra: serde_json::Value) -> Settings {
        let mut v = json!({"stable": {"cluster": "v1"}, "canary": {"cluster": "v2", "weight": 1}});
        for (k, val) in extra.as_object().unwrap() {
            v[k] = val.clone();
        }
        Settings::compile(serde_json::from_value::<CanaryConfig>(v).unwrap()).unwrap()
    }

    #[test]
    fn ramp_steps() {
        let s = settings(
            json!({"ramp": {"steps": [{"after": "10m", "weight": 5}, {"after": "30m", "weight": 50}]}}),
        );
        assert_eq!(
            ramp_weight(&s.ramp, s.weight, 0),
            100,
            "initial weight before the first step"
        );
        assert_eq!(ramp_weight(&s.ramp, s.weight, 599_999), 100);
        assert_eq!(ramp_weight(&s.ramp, s.weight, 600_000), 500);
        assert_eq!(ramp_weight(&s.ramp, s.weight, 1_800_000), 5000);
        assert_eq!(ramp_weight(&s.ramp, s.weight, u64::MAX), 5000);
    }

    #[test]
    fn ramp_start_is_shared_and_weight_is_monotone() {
        let s = settings(
            json!({"ramp": {"steps": [{"after": "0s", "weight": 1}, {"after": "1m", "weight": 10}, {"after": "2m", "weight": 100}]}}),
        );
        let keys = Keys::new("exp");
        let store = MemStore::default();
        let t0 = 1_000_000;
        assert_eq!(effective(&s, &keys, &store, t0).weight, 100);
        assert_eq!(
            store.get("weir.canary.exp.start").as_deref(),
            Some("1000000")
        );
        // Another instance, later: same start.
        assert_eq!(effective(&s, &keys, &store, t0 + 60_000).weight, 1000);
        let mut last = 0;
        for t in (0..200).map(|i| t0 + i * 1_000) {
            let w = effective(&s, &keys, &store, t).weight;
            assert!(w >= last, "weight went down at {t}");
            last = w;
        }
        assert_eq!(last, 10_000);
    }

    #[test]
    fn no_ramp_uses_the_configured_weight() {
        let s = settings(json!({}));
        let store = MemStore::default();
        assert_eq!(
            effective(&s, &Keys::new("e"), &store, 5),
            Effective {
                weight: 100,
                rolled_back: false
            }
        );
        assert!(store.0.borrow().is_empty(), "nothing stored without a ramp");
    }

    #[test]
    fn rollback_needs_rate_and_volume() {
        let s =
            settings(json!({"rollback": {"error_rate": 10, "min_requests": 20, "window": "1m"}}));
        let keys = Keys::new("e");
        let store = MemStore::default();
        let t = 60_000 * 100;
        // 5 errors first: 100% error rate, but under min_requests.
        for _ in 0..5 {
            assert_eq!(record_canary_response(&s, &keys, &store, t, 503), None);
        }
        for _ in 0..14 {
            assert_eq!(record_canary_response(&s, &keys, &store, t, 200), None);
        }
        assert!(!effective(&s, &keys, &store, t).rolled_back);
        // 20th response: 5/20 = 25% > 10%.
        let ev = record_canary_response(&s, &keys, &store, t, 200).unwrap();
        assert_eq!(
            ev,
            RollbackEvent {
                errors: 5,
                total: 20
            }
        );
        assert_eq!(
            effective(&s, &keys, &store, t),
            Effective {
                weight: 0,
                rolled_back: true
            }
        );
        assert_eq!(
            record_canary_response(&s, &keys, &store, t, 500),
            None,
            "flag is set once"
        );
    }

    #[test]
    fn healthy_canary_and_new_windows_do_not_roll_back() {
        let s =
            settings(json!({"rollback": {"error_rate": 10, "min_requests": 10, "window": "1m"}}));
        let keys = Keys::new("e");
        let store = MemStore::default();
        for i in 0..100 {
            // 1 in 20 = 5% errors: under the 10% threshold.
            assert_eq!(
                record_canary_response(&s, &keys, &store, 0, if i % 20 == 0 { 500 } else { 200 }),
                None
            );
        }
        // Counts reset with each window: 9 errors in each of two windows stay
        // under min_requests, though 18 together would not.
        let store = MemStore::default();
        for w in [1, 2] {
            for _ in 0..9 {
                assert_eq!(
                    record_canary_response(&s, &keys, &store, w * 60_000, 502),
                    None
                );
            }
        }
        assert!(!effective(&s, &keys, &store, 180_000).rolled_back);
    }

    #[test]
    fn without_a_rollback_guard_nothing_is_counted() {
        let s = settings(json!({}));
        let store = MemStore::default();
        assert_eq!(
            record_canary_response(&s, &Keys::new("e"), &store, 0, 500),
            None
        );
        assert!(store.0.borrow().is_empty());
    }
}
