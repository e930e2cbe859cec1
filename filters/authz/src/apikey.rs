//! API keys: presented in a header, configured only as SHA-256 digests so the
//! config never holds a usable key.

use std::collections::HashMap;

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// `api_keys` in the filter config.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiKeysConfig {
    /// The request header carrying the key. Default `x-api-key`.
    #[serde(default = "default_header")]
    pub header: String,
    /// The accepted keys.
    pub keys: Vec<ApiKeyConfig>,
}

/// One accepted API key.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Lower- or upper-case hex SHA-256 of the key (`printf %s KEY | sha256sum`).
    pub sha256: String,
    /// The principal a request with this key acts as.
    pub principal: String,
}

fn default_header() -> String {
    "x-api-key".into()
}

/// Digest → principal lookup.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeys {
    header: String,
    by_digest: HashMap<[u8; 32], String>,
}

impl ApiKeys {
    /// Check the configured digests. Errors name the field.
    pub fn compile(config: &ApiKeysConfig) -> Result<ApiKeys, String> {
        let header = config.header.trim().to_ascii_lowercase();
        if header.is_empty() {
            return Err("api_keys.header: must not be empty".into());
        }
        if config.keys.is_empty() {
            return Err("api_keys.keys: list at least one key".into());
        }
        let mut by_digest = HashMap::new();
        for (i, key) in config.keys.iter().enumerate() {
            let digest = parse_hex32(&key.sha256).ok_or_else(|| {
                format!("api_keys.keys[{i}].sha256: expected 64 hex characters (a SHA-256 digest)")
            })?;
            if key.principal.trim().is_empty() {
                return Err(format!("api_keys.keys[{i}].principal: must not be empty"));
            }
            if by_digest.insert(digest, key.principal.clone()).is_some() {
                return Err(format!(
                    "api_keys.keys[{i}].sha256: the same key is listed twice"
                ));
            }
        }
        Ok(ApiKeys { header, by_digest })
    }

    /// The header the key is read from (lower case).
    pub fn header(&self) -> &str {
        &self.header
    }

    /// The principal for a presented key, if its digest is configured.
    pub fn lookup(&self, presented: &str) -> Option<&str> {
        let digest: [u8; 32] = Sha256::digest(presented.trim().as_bytes()).into();
        self.by_digest.get(&digest).map(String::as_str)
    }
}

fn parse_hex32(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim().as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// Lower-case hex SHA-256 of `key`, as configured in `api_keys.keys[].sha256`.
pub fn digest_hex(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(keys: &[(&str, &str)]) -> ApiKeysConfig {
        ApiKeysConfig {
            header: "X-Api-Key".into(),
            keys: keys
                .iter()
                .map(|(d, p)| ApiKeyConfig {
                    sha256: d.to_string(),
                    principal: p.to_string(),
                })
                .collect(),
        }
    }

    #[test]
    fn known_digest() {
        // The FIPS 180-2 test vector for "abc".
        assert_eq!(
            digest_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hit_and_miss() {
        let upper = digest_hex("k2").to_uppercase();
        let keys =
            ApiKeys::compile(&config(&[(&digest_hex("k1"), "svc-a"), (&upper, "svc-b")])).unwrap();
        assert_eq!(keys.header(), "x-api-key");
        assert_eq!(keys.lookup("k1"), Some("svc-a"));
        assert_eq!(keys.lookup("k2"), Some("svc-b"), "upper-case hex accepted");
        assert_eq!(keys.lookup("k3"), None);
        assert_eq!(keys.lookup(""), None);
    }

    #[test]
    fn bad_config_names_the_field() {
        let err = ApiKeys::compile(&config(&[("abc", "x")])).unwrap_err();
        assert!(err.starts_with("api_keys.keys[0].sha256"), "{err}");
        let err = ApiKeys::compile(&config(&[(&digest_hex("a"), " ")])).unwrap_err();
        assert!(err.starts_with("api_keys.keys[0].principal"), "{err}");
        let d = digest_hex("a");
        let err = ApiKeys::compile(&config(&[(&d, "x"), (&d, "y")])).unwrap_err();
        assert!(
            err.starts_with("api_keys.keys[1].sha256") && err.contains("twice"),
            "{err}"
        );
        let err = ApiKeys::compile(&config(&[])).unwrap_err();
        assert!(err.starts_with("api_keys.keys"), "{err}");
    }
}
