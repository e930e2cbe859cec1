//! JSON Web Key Sets: parsing, and the per-instance cache that decides when
//! to fetch again (periodic refresh, retry after failure, and a rate-limited
//! refetch when a token names an unknown `kid`).

use serde::Deserialize;

use crate::keys::{Jwk, KeyEntry};

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<serde_json::Value>,
}

/// Parse a JWKS document. Keys marked `use: enc` and keys of unsupported
/// types are skipped (an IdP may publish more than we verify); a set with no
/// usable key is an error.
pub fn parse_jwks(body: &[u8]) -> Result<Vec<KeyEntry>, String> {
    let raw: RawJwks =
        serde_json::from_slice(body).map_err(|e| format!("invalid JWKS JSON: {e}"))?;
    let mut keys = Vec::new();
    let mut skipped = Vec::new();
    for (i, value) in raw.keys.into_iter().enumerate() {
        let jwk: Jwk = match serde_json::from_value(value) {
            Ok(jwk) => jwk,
            Err(e) => {
                skipped.push(format!("keys[{i}]: {e}"));
                continue;
            }
        };
        if jwk.use_.as_deref() == Some("enc") {
            continue;
        }
        match KeyEntry::from_jwk(&jwk) {
            Ok(entry) => keys.push(entry),
            Err(e) => skipped.push(format!("keys[{i}]: {e}")),
        }
    }
    if keys.is_empty() {
        let detail = if skipped.is_empty() {
            "the set is empty".to_string()
        } else {
            skipped.join("; ")
        };
        return Err(format!("JWKS has no usable signing key ({detail})"));
    }
    Ok(keys)
}

/// Timing settings for a fetched JWKS, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchPolicy {
    /// Fetch again when the cached set is this old.
    pub refresh_interval_ms: u64,
    /// After a failed fetch, wait this long before the next attempt.
    pub retry_interval_ms: u64,
    /// At most one refetch for an unknown `kid` per this interval.
    pub min_refetch_interval_ms: u64,
}

/// The keys of one fetched JWKS, kept in an instance.
#[derive(Debug, Default)]
pub struct JwksCache {
    keys: Vec<KeyEntry>,
    fetched_at_ms: Option<u64>,
    last_attempt_ms: Option<u64>,
    last_kid_refetch_ms: Option<u64>,
}

impl JwksCache {
    /// The cached keys (empty before the first successful fetch).
    pub fn keys(&self) -> &[KeyEntry] {
        &self.keys
    }

    /// Whether a fetch is due: nothing cached or the set is older than the
    /// refresh interval, and no attempt failed within the retry interval.
    pub fn fetch_due(&self, now_ms: u64, policy: &FetchPolicy) -> bool {
        let stale = self
            .fetched_at_ms
            .is_none_or(|at| now_ms.saturating_sub(at) >= policy.refresh_interval_ms);
        stale && !self.failed_recently(now_ms, policy)
    }

    /// Whether the last attempt failed less than the retry interval ago.
    fn failed_recently(&self, now_ms: u64, policy: &FetchPolicy) -> bool {
        match (self.last_attempt_ms, self.fetched_at_ms) {
            (Some(attempt), fetched) if fetched != Some(attempt) => {
                now_ms.saturating_sub(attempt) < policy.retry_interval_ms
            }
            _ => false,
        }
    }

    /// Whether an unknown `kid` may trigger a refetch now (at most once per
    /// `min_refetch_interval`, never while backing off after a failure); if
    /// so, the refetch is counted against the rate limit.
    pub fn take_kid_refetch(&mut self, now_ms: u64, policy: &FetchPolicy) -> bool {
        let allowed = !self.failed_recently(now_ms, policy)
            && self
                .last_kid_refetch_ms
                .is_none_or(|at| now_ms.saturating_sub(at) >= policy.min_refetch_interval_ms);
        if allowed {
            self.last_kid_refetch_ms = Some(now_ms);
        }
        allowed
    }

    /// Record a fetch attempt. On failure the previous keys stay in use.
    pub fn record(
        &mut self,
        now_ms: u64,
        result: Result<Vec<KeyEntry>, String>,
    ) -> Result<(), String> {
        self.last_attempt_ms = Some(now_ms);
        let keys = result?;
        self.keys = keys;
        self.fetched_at_ms = Some(now_ms);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::test_keys;

    const POLICY: FetchPolicy = FetchPolicy {
        refresh_interval_ms: 300_000,
        retry_interval_ms: 5_000,
        min_refetch_interval_ms: 30_000,
    };

    fn jwks(keys: Vec<serde_json::Value>) -> Vec<u8> {
        json!({ "keys": keys }).to_string().into_bytes()
    }

    #[test]
    fn parses_rsa_and_ec_and_skips_enc_and_unknown() {
        let body = jwks(vec![
            test_keys::jwk_json(&test_keys::rsa_jwk(Some("r"))),
            test_keys::jwk_json(&test_keys::ec_jwk(Some("e"))),
            json!({"kty": "RSA", "use": "enc", "kid": "x", "n": "AQAB", "e": "AQAB"}),
            json!({"kty": "OKP", "crv": "Ed25519", "x": "abc", "kid": "ed"}),
        ]);
        let keys = parse_jwks(&body).unwrap();
        let kids: Vec<_> = keys.iter().map(|k| k.kid.clone().unwrap()).collect();
        assert_eq!(kids, ["r", "e"]);
    }

    #[test]
    fn unusable_sets_are_errors() {
        assert!(
            parse_jwks(b"not json")
                .unwrap_err()
                .contains("invalid JWKS JSON")
        );
        assert!(parse_jwks(&jwks(vec![])).unwrap_err().contains("empty"));
        let err = parse_jwks(&jwks(vec![json!({"kty": "OKP"})])).unwrap_err();
        assert!(err.contains("keys[0]") && err.contains("OKP"), "{err}");
    }

    #[test]
    fn refresh_schedule() {
        let mut cache = JwksCache::default();
        assert!(cache.fetch_due(0, &POLICY), "nothing cached");
        let keys = parse_jwks(&jwks(vec![test_keys::jwk_json(&test_keys::ec_jwk(Some(
            "e",
        )))]))
        .unwrap();
        cache.record(1_000, Ok(keys)).unwrap();
        assert_eq!(cache.keys().len(), 1);
        assert!(!cache.fetch_due(1_000 + 299_999, &POLICY));
        assert!(cache.fetch_due(1_000 + 300_000, &POLICY));
        // A failed refresh keeps the old keys and backs off.
        assert!(cache.record(301_000, Err("down".into())).is_err());
        assert_eq!(cache.keys().len(), 1);
        assert!(!cache.fetch_due(301_000 + 4_999, &POLICY));
        assert!(cache.fetch_due(301_000 + 5_000, &POLICY));
    }

    #[test]
    fn unknown_kid_refetch_is_rate_limited() {
        let mut cache = JwksCache::default();
        assert!(cache.take_kid_refetch(10_000, &POLICY));
        assert!(!cache.take_kid_refetch(10_001, &POLICY));
        assert!(!cache.take_kid_refetch(39_999, &POLICY));
        assert!(cache.take_kid_refetch(40_000, &POLICY));
        // Not while backing off after a failed fetch.
        cache.record(80_000, Err("down".into())).unwrap_err();
        assert!(!cache.take_kid_refetch(80_001, &POLICY));
        assert!(cache.take_kid_refetch(85_000, &POLICY));
    }
}
