//! The filter's JSON configuration and its checked, compiled form.
//! Every error names the field it is about (`jwt.keys[1].pem: ...`).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use crate::apikey::{ApiKeys, ApiKeysConfig};
use crate::ext_authz::ExtAuthzConfig;
use crate::jwks::{FetchPolicy, parse_jwks};
use crate::jwt::ClaimRules;
use crate::keys::{Alg, Jwk, KeyEntry, KeyMaterial};
use crate::rbac::{RuleAction, RuleConfig, Rules};

/// The whole filter configuration.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuthzConfig {
    /// Bearer-token verification. Absent: tokens are not looked at.
    #[serde(default)]
    pub jwt: Option<JwtConfig>,
    /// API keys. Absent: the API-key header is not looked at.
    #[serde(default)]
    pub api_keys: Option<ApiKeysConfig>,
    /// Ordered rules; the first whose match and conditions hold decides.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// What happens when no rule decides. Default `deny`.
    #[serde(default)]
    pub default_action: RuleAction,
    /// An external HTTP authorization service asked after the rules allow.
    #[serde(default)]
    pub ext_authz: Option<ExtAuthzConfig>,
    /// Header carrying the verified principal upstream. Any incoming copy is
    /// always removed first. Default `x-weir-principal`.
    #[serde(default = "default_principal_header")]
    pub principal_header: String,
    /// `realm` in `www-authenticate`. Default `weir`.
    #[serde(default = "default_realm")]
    pub realm: String,
}

/// `jwt`: how bearer tokens are verified.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// Accepted `iss` values (a string or a list). Absent: any issuer.
    #[serde(default, deserialize_with = "one_or_many")]
    pub issuer: Vec<String>,
    /// The token's `aud` must name one of these (a string or a list). Absent: not checked.
    #[serde(default, deserialize_with = "one_or_many")]
    pub audience: Vec<String>,
    /// Clock skew allowed on `exp`/`nbf`. Default 30s.
    #[serde(default = "default_leeway", with = "humantime_serde")]
    pub leeway: Duration,
    /// Refuse tokens without `exp`. Default true.
    #[serde(default = "yes")]
    pub require_exp: bool,
    /// The claim naming the principal. Default `sub`; dots walk into objects.
    #[serde(default = "default_principal_claim")]
    pub principal_claim: String,
    /// Keys given inline.
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
    /// A JWKS, inline or fetched from a cluster.
    #[serde(default)]
    pub jwks: Option<JwksConfig>,
}

/// One inline key: exactly one of `secret`, `secret_base64`, `pem`, `jwk`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Matched against the token header's `kid`.
    #[serde(default)]
    pub kid: Option<String>,
    /// Pin the key to one algorithm (e.g. `HS384`).
    #[serde(default)]
    pub alg: Option<String>,
    /// HMAC secret as UTF-8 text (at least 32 bytes).
    #[serde(default)]
    pub secret: Option<String>,
    /// HMAC secret in standard base64.
    #[serde(default)]
    pub secret_base64: Option<String>,
    /// RSA or P-256 public key in PEM.
    #[serde(default)]
    pub pem: Option<String>,
    /// A JWK (`oct`, `RSA`, `EC` P-256).
    #[serde(default)]
    pub jwk: Option<Jwk>,
}

/// `jwt.jwks`: exactly one of `inline` and `cluster`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JwksConfig {
    /// A JWKS document (`{"keys": [...]}`) in the config.
    #[serde(default)]
    pub inline: Option<serde_json::Value>,
    /// The cluster serving the JWKS.
    #[serde(default)]
    pub cluster: Option<String>,
    /// Path on that cluster. Default `/.well-known/jwks.json`.
    #[serde(default = "default_jwks_path")]
    pub path: String,
    /// Fetch again after this long. Default 5m.
    #[serde(default = "default_refresh", with = "humantime_serde")]
    pub refresh_interval: Duration,
    /// After a failed fetch, wait this long before trying again. Default 5s.
    #[serde(default = "default_retry", with = "humantime_serde")]
    pub retry_interval: Duration,
    /// An unknown `kid` refetches at most once per this interval. Default 30s.
    #[serde(default = "default_min_refetch", with = "humantime_serde")]
    pub min_refetch_interval: Duration,
    /// Timeout of one fetch. Default 2s.
    #[serde(default = "default_fetch_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(
        match OneOrMany::deserialize(d)
            .map_err(|_| serde::de::Error::custom("expected a string or a list of strings"))?
        {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        },
    )
}

fn default_principal_header() -> String {
    "x-weir-principal".into()
}
fn default_realm() -> String {
    "weir".into()
}
fn default_leeway() -> Duration {
    Duration::from_secs(30)
}
fn yes() -> bool {
    true
}
fn default_principal_claim() -> String {
    "sub".into()
}
fn default_jwks_path() -> String {
    "/.well-known/jwks.json".into()
}
fn default_refresh() -> Duration {
    Duration::from_secs(300)
}
fn default_retry() -> Duration {
    Duration::from_secs(5)
}
fn default_min_refetch() -> Duration {
    Duration::from_secs(30)
}
fn default_fetch_timeout() -> Duration {
    Duration::from_secs(2)
}

/// A JWKS to fetch.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteJwks {
    /// Cluster name.
    pub cluster: String,
    /// Path and query.
    pub path: String,
    /// Fetch timeout.
    pub timeout_ms: u32,
    /// Refresh timing.
    pub policy: FetchPolicy,
}

/// Compiled JWT settings.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    /// Claim checks.
    pub claims: ClaimRules,
    /// Inline keys and keys from an inline JWKS.
    pub static_keys: Vec<KeyEntry>,
    /// A JWKS fetched at run time.
    pub remote: Option<RemoteJwks>,
}

/// The checked configuration the filter runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Bearer tokens.
    pub jwt: Option<JwtSettings>,
    /// API keys.
    pub api_keys: Option<ApiKeys>,
    /// Rules and default.
    pub rules: Rules,
    /// External authorization.
    pub ext_authz: Option<ExtAuthzConfig>,
    /// Principal header (lower case).
    pub principal_header: String,
    /// `www-authenticate` realm.
    pub realm: String,
}

impl Settings {
    /// Parse and check a JSON config. The error names the field.
    pub fn from_json(json: &str) -> Result<Settings, String> {
        let de = &mut serde_json::Deserializer::from_str(json);
        let config: AuthzConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            if path == "." {
                e.inner().to_string()
            } else {
                format!("{path}: {}", e.inner())
            }
        })?;
        Settings::compile(config)
    }

    /// Check a parsed config.
    pub fn compile(config: AuthzConfig) -> Result<Settings, String> {
        let principal_header = config.principal_header.trim().to_ascii_lowercase();
        if principal_header.is_empty()
            || !principal_header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("principal_header: must be a header name".into());
        }
        if config.realm.contains('"') || config.realm.contains('\\') {
            return Err("realm: must not contain quotes or backslashes".into());
        }
        let jwt = config.jwt.map(compile_jwt).transpose()?;
        let api_keys = config.api_keys.as_ref().map(ApiKeys::compile).transpose()?;
        let rules = Rules::compile(&config.rules, config.default_action)?;
        let ext_authz = config.ext_authz.map(ExtAuthzConfig::compile).transpose()?;
        if let (Some(keys), Some(_)) = (&api_keys, &jwt)
            && keys.header() == "authorization"
        {
            return Err(
                "api_keys.header: `authorization` carries bearer tokens when `jwt` is set".into(),
            );
        }
        Ok(Settings {
            jwt,
            api_keys,
            rules,
            ext_authz,
            principal_header,
            realm: config.realm,
        })
    }
}

fn compile_jwt(config: JwtConfig) -> Result<JwtSettings, String> {
    if config.principal_claim.is_empty() {
        return Err("jwt.principal_claim: must not be empty".into());
    }
    let mut static_keys = Vec::new();
    for (i, key) in config.keys.iter().enumerate() {
        static_keys.push(compile_key(key).map_err(|e| format!("jwt.keys[{i}]{e}"))?);
    }
    let mut remote = None;
    if let Some(jwks) = config.jwks {
        match (&jwks.inline, &jwks.cluster) {
            (Some(doc), None) => {
                let keys = parse_jwks(doc.to_string().as_bytes())
                    .map_err(|e| format!("jwt.jwks.inline: {e}"))?;
                static_keys.extend(keys);
            }
            (None, Some(cluster)) => {
                if cluster.trim().is_empty() {
                    return Err("jwt.jwks.cluster: must not be empty".into());
                }
                if !jwks.path.starts_with('/') {
                    return Err("jwt.jwks.path: must start with `/`".into());
                }
                let ms = |d: Duration, field: &str| -> Result<u64, String> {
                    let ms = d.as_millis();
                    if ms == 0 {
                        Err(format!("jwt.jwks.{field}: must be more than zero"))
                    } else {
                        Ok(ms as u64)
                    }
                };
                let timeout_ms = ms(jwks.timeout, "timeout")?;
                remote = Some(RemoteJwks {
                    cluster: cluster.clone(),
                    path: jwks.path.clone(),
                    timeout_ms: timeout_ms.min(u32::MAX as u64) as u32,
                    policy: FetchPolicy {
                        refresh_interval_ms: ms(jwks.refresh_interval, "refresh_interval")?,
                        retry_interval_ms: ms(jwks.retry_interval, "retry_interval")?,
                        min_refetch_interval_ms: jwks.min_refetch_interval.as_millis() as u64,
                    },
                });
            }
            _ => return Err("jwt.jwks: give exactly one of `inline` and `cluster`".into()),
        }
    }
    if static_keys.is_empty() && remote.is_none() {
        return Err("jwt: configure `keys` or `jwks`; without keys no token can verify".into());
    }
    Ok(JwtSettings {
        claims: ClaimRules {
            issuers: config.issuer,
            audiences: config.audience,
            leeway_secs: config.leeway.as_secs(),
            require_exp: config.require_exp,
            principal_claim: config.principal_claim,
        },
        static_keys,
        remote,
    })
}

/// Errors start with the sub-field (`.pem: ...`) or `: ` for the key itself.
fn compile_key(key: &KeyConfig) -> Result<KeyEntry, String> {
    let given = [
        key.secret.is_some(),
        key.secret_base64.is_some(),
        key.pem.is_some(),
        key.jwk.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(": give exactly one of `secret`, `secret_base64`, `pem`, `jwk`".into());
    }
    let alg = match &key.alg {
        None => None,
        Some(name) => Some(Alg::parse(name).ok_or_else(|| {
            format!(".alg: unsupported algorithm `{name}` (HS256, HS384, HS512, RS256, ES256)")
        })?),
    };
    let (material, kid, alg) = if let Some(secret) = &key.secret {
        (
            KeyMaterial::hmac(secret.as_bytes().to_vec()).map_err(|e| format!(".secret: {e}"))?,
            key.kid.clone(),
            alg,
        )
    } else if let Some(b64) = &key.secret_base64 {
        let bytes = STANDARD
            .decode(b64.trim())
            .map_err(|e| format!(".secret_base64: not base64: {e}"))?;
        (
            KeyMaterial::hmac(bytes).map_err(|e| format!(".secret_base64: {e}"))?,
            key.kid.clone(),
            alg,
        )
    } else if let Some(pem) = &key.pem {
        (
            KeyMaterial::from_pem(pem).map_err(|e| format!(".pem: {e}"))?,
            key.kid.clone(),
            alg,
        )
    } else if let Some(jwk) = &key.jwk {
        let entry = KeyEntry::from_jwk(jwk).map_err(|e| format!(".jwk: {e}"))?;
        (
            entry.material,
            key.kid.clone().or(entry.kid),
            alg.or(entry.alg),
        )
    } else {
        unreachable!("exactly one key form was checked above")
    };
    if let Some(alg) = alg
        && !material.fits(alg)
    {
        return Err(format!(".alg: `{}` does not fit this key type", alg.name()));
    }
    Ok(KeyEntry { kid, alg, material })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::test_keys;

    fn err(v: serde_json::Value) -> String {
        Settings::from_json(&v.to_string()).unwrap_err()
    }

    #[test]
    fn minimal_and_defaults() {
        let s = Settings::from_json("{}").unwrap();
        assert!(s.jwt.is_none() && s.api_keys.is_none() && s.ext_authz.is_none());
        assert_eq!(
            s.rules.default_action(),
            RuleAction::Deny,
            "deny by default"
        );
        assert_eq!(s.principal_header, "x-weir-principal");
        assert_eq!(s.realm, "weir");
    }

    #[test]
    fn full_config() {
        let s = Settings::from_json(
            &json!({
                "jwt": {
                    "issuer": "https://idp", "audience": ["api", "web"], "leeway": "1m",
                    "keys": [
                        {"kid": "h", "secret": test_keys::HMAC_SECRET, "alg": "HS512"},
                        {"kid": "r", "pem": test_keys::RSA_PUBLIC_PEM},
                        {"jwk": test_keys::jwk_json(&test_keys::ec_jwk(Some("e")))},
                    ],
                    "jwks": {"cluster": "idp", "refresh_interval": "10m"}
                },
                "api_keys": {"keys": [{"sha256": crate::apikey::digest_hex("k"), "principal": "svc"}]},
                "rules": [{"match": {"path_prefix": "/"}, "action": "allow"}],
                "default_action": "allow",
                "ext_authz": {"cluster": "authz"},
                "principal_header": "X-Principal"
            })
            .to_string(),
        )
        .unwrap();
        let jwt = s.jwt.unwrap();
        assert_eq!(jwt.claims.issuers, ["https://idp"]);
        assert_eq!(jwt.claims.audiences, ["api", "web"]);
        assert_eq!(jwt.claims.leeway_secs, 60);
        assert_eq!(jwt.static_keys.len(), 3);
        assert_eq!(jwt.static_keys[0].alg, Some(Alg::Hs512));
        assert_eq!(
            jwt.static_keys[2].kid.as_deref(),
            Some("e"),
            "kid from the JWK"
        );
        let remote = jwt.remote.unwrap();
        assert_eq!(
            (remote.cluster.as_str(), remote.path.as_str()),
            ("idp", "/.well-known/jwks.json")
        );
        assert_eq!(remote.policy.refresh_interval_ms, 600_000);
        assert_eq!(s.principal_header, "x-principal");
    }

    #[test]
    fn errors_name_the_field() {
        assert!(err(json!({"jwt": {"keys": []}})).starts_with("jwt: configure"));
        assert!(err(json!({"jwt": {"leeway": "soon", "keys": []}})).starts_with("jwt.leeway:"));
        assert!(
            err(json!({"jwt": {"keys": [{"secret": "short"}]}})).starts_with("jwt.keys[0].secret:")
        );
        assert!(
            err(json!({"jwt": {"keys": [{"secret": test_keys::HMAC_SECRET, "pem": "x"}]}}))
                .starts_with("jwt.keys[0]: give exactly one")
        );
        assert!(err(json!({"jwt": {"keys": [{"pem": "nope"}]}})).starts_with("jwt.keys[0].pem:"));
        assert!(
            err(json!({"jwt": {"keys": [{"pem": test_keys::RSA_PUBLIC_PEM, "alg": "ES256"}]}}))
                .starts_with("jwt.keys[0].alg:")
        );
        assert!(
            err(json!({"jwt": {"keys": [{"secret": test_keys::HMAC_SECRET, "alg": "none"}]}}))
                .starts_with("jwt.keys[0].alg:")
        );
        assert!(
            err(json!({"jwt": {"keys": [{"secret_base64": "***"}]}}))
                .starts_with("jwt.keys[0].secret_base64:")
        );
        assert!(
            err(json!({"jwt": {"jwks": {"inline": {"keys": []}}}})).starts_with("jwt.jwks.inline:")
        );
        assert!(err(json!({"jwt": {"jwks": {}}})).starts_with("jwt.jwks: give exactly one"));
        assert!(
            err(json!({"jwt": {"jwks": {"cluster": "idp", "path": "jwks"}}}))
                .starts_with("jwt.jwks.path:")
        );
        assert!(
            err(json!({"jwt": {"jwks": {"cluster": "idp", "refresh_interval": "0s"}}}))
                .starts_with("jwt.jwks.refresh_interval:")
        );
        assert!(err(json!({"jwt": {"issuer": 5, "keys": []}})).starts_with("jwt.issuer:"));
        assert!(
            err(json!({"jwt": {"keys": [], "bogus": 1}}))
                .starts_with("jwt.bogus: unknown field `bogus`")
        );
        assert!(err(json!({"rules": [{"action": "maybe"}]})).starts_with("rules[0].action:"));
        assert!(err(json!({"default_action": "perhaps"})).starts_with("default_action:"));
        assert!(err(json!({"principal_header": "bad header"})).starts_with("principal_header:"));
        assert!(
            err(json!({"api_keys": {"keys": [{"sha256": "00", "principal": "p"}]}}))
                .starts_with("api_keys.keys[0].sha256")
        );
        assert!(err(json!({"ext_authz": {"cluster": ""}})).starts_with("ext_authz.cluster"));
        let conflict = json!({"jwt": {"keys": [{"secret": test_keys::HMAC_SECRET}]}, "api_keys": {"header": "Authorization", "keys": [{"sha256": crate::apikey::digest_hex("k"), "principal": "p"}]}});
        assert!(err(conflict).starts_with("api_keys.header"));
        assert!(Settings::from_json("not json").is_err());
    }
}
