//! Compact JWS parsing, key selection by `kid`, signature verification and
//! registered-claim validation (`exp`, `nbf`, `iss`, `aud`).

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::keys::{Alg, KeyEntry, decode_b64url};
use crate::reason::Reason;

/// Longest token accepted, in bytes; larger ones are malformed.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The JOSE header fields this filter reads.
#[derive(Debug, Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// A token split and decoded, not yet verified.
#[derive(Debug)]
pub struct ParsedToken<'a> {
    /// The signing algorithm from the header.
    pub alg: Alg,
    /// The key id from the header.
    pub kid: Option<String>,
    /// `base64(header).base64(claims)`: what the signature covers.
    pub signing_input: &'a str,
    /// The decoded signature.
    pub signature: Vec<u8>,
    /// The decoded claims object.
    pub claims: Map<String, Value>,
}

/// Split and decode a compact JWS. `alg: none` and unknown algorithms are
/// refused here, before any key is looked at.
pub fn parse(token: &str) -> Result<ParsedToken<'_>, Reason> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Reason::MalformedToken);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Reason::MalformedToken);
    };
    let header_bytes = decode_b64url(h).map_err(|_| Reason::MalformedToken)?;
    let header: RawHeader =
        serde_json::from_slice(&header_bytes).map_err(|_| Reason::MalformedToken)?;
    let alg = Alg::parse(&header.alg).ok_or(Reason::UnsupportedAlgorithm)?;
    let claims_bytes = decode_b64url(c).map_err(|_| Reason::MalformedToken)?;
    let claims: Map<String, Value> =
        serde_json::from_slice(&claims_bytes).map_err(|_| Reason::MalformedToken)?;
    let signature = decode_b64url(s).map_err(|_| Reason::MalformedToken)?;
    if signature.is_empty() {
        return Err(Reason::MalformedToken);
    }
    Ok(ParsedToken {
        alg,
        kid: header.kid,
        signing_input: &token[..h.len() + 1 + c.len()],
        signature,
        claims,
    })
}

/// Check the signature against `keys`.
///
/// With a `kid`, only keys with that `kid` are tried ([`Reason::UnknownKid`]
/// when there is none, so the caller may refetch a JWKS). Without one, every
/// key that fits the algorithm is tried. A key fits when its type matches the
/// algorithm and its pinned `alg`, if any, is the token's.
pub fn verify_signature(token: &ParsedToken<'_>, keys: &[KeyEntry]) -> Result<(), Reason> {
    verify_signature_any(token, keys.iter())
}

/// [`verify_signature`] over keys from several places (inline keys and a
/// fetched JWKS) without copying them.
pub fn verify_signature_any<'k>(
    token: &ParsedToken<'_>,
    keys: impl Iterator<Item = &'k KeyEntry>,
) -> Result<(), Reason> {
    let mut candidates: Vec<&KeyEntry> = match &token.kid {
        Some(kid) => {
            let named: Vec<&KeyEntry> = keys.filter(|k| k.kid.as_deref() == Some(kid)).collect();
            if named.is_empty() {
                return Err(Reason::UnknownKid);
            }
            named
        }
        None => keys.collect(),
    };
    candidates.retain(|k| k.accepts(token.alg));
    if candidates.is_empty() {
        return Err(Reason::NoMatchingKey);
    }
    let message = token.signing_input.as_bytes();
    if candidates
        .iter()
        .any(|k| k.material.verify(token.alg, message, &token.signature))
    {
        Ok(())
    } else {
        Err(Reason::BadSignature)
    }
}

/// Which claims a verified token must carry.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimRules {
    /// Accepted `iss` values; empty accepts any.
    pub issuers: Vec<String>,
    /// The token's `aud` must name one of these; empty skips the check.
    pub audiences: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
    /// Refuse tokens without `exp`.
    pub require_exp: bool,
    /// The claim that names the principal (`sub` by default); dots walk into objects.
    pub principal_claim: String,
}

/// Validate the registered claims at `now_ms` (Unix milliseconds) and return
/// the principal.
pub fn validate_claims(
    claims: &Map<String, Value>,
    rules: &ClaimRules,
    now_ms: u64,
) -> Result<String, Reason> {
    let now = now_ms as f64 / 1000.0;
    let leeway = rules.leeway_secs as f64;
    match claims.get("exp") {
        Some(Value::Number(exp)) => {
            let exp = exp.as_f64().ok_or(Reason::MalformedToken)?;
            if now >= exp + leeway {
                return Err(Reason::TokenExpired);
            }
        }
        Some(_) => return Err(Reason::MalformedToken),
        None if rules.require_exp => return Err(Reason::MissingExpiry),
        None => {}
    }
    match claims.get("nbf") {
        Some(Value::Number(nbf)) => {
            let nbf = nbf.as_f64().ok_or(Reason::MalformedToken)?;
            if now + leeway < nbf {
                return Err(Reason::TokenNotYetValid);
            }
        }
        Some(_) => return Err(Reason::MalformedToken),
        None => {}
    }
    if !rules.issuers.is_empty() {
        let iss = claims
            .get("iss")
            .and_then(Value::as_str)
            .ok_or(Reason::WrongIssuer)?;
        if !rules.issuers.iter().any(|i| i == iss) {
            return Err(Reason::WrongIssuer);
        }
    }
    if !rules.audiences.is_empty() {
        let ok = match claims.get("aud") {
            Some(Value::String(aud)) => rules.audiences.iter().any(|a| a == aud),
            Some(Value::Array(auds)) => auds
                .iter()
                .filter_map(Value::as_str)
                .any(|aud| rules.audiences.iter().any(|a| a == aud)),
            _ => false,
        };
        if !ok {
            return Err(Reason::WrongAudience);
        }
    }
    match claim_path(claims, &rules.principal_claim) {
        Some(Value::String(p)) if !p.is_empty() => Ok(p.clone()),
        _ => Err(Reason::MissingPrincipal),
    }
}

/// Look up a claim; `a.b` walks into nested objects when no claim is named
/// `a.b` literally.
pub fn claim_path<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let mut parts = path.split('.');
    let mut current = claims.get(parts.next()?)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    Some(current)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::keys::KeyMaterial;
    use crate::test_keys::{self, HMAC_SECRET, token};

    const NOW_MS: u64 = 1_700_000_000_000;
    const NOW: u64 = NOW_MS / 1000;

    fn rules() -> ClaimRules {
        ClaimRules {
            issuers: vec!["https://idp.example".into()],
            audiences: vec!["api".into()],
            leeway_secs: 30,
            require_exp: true,
            principal_claim: "sub".into(),
        }
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn good() -> Value {
        json!({"sub": "alice", "iss": "https://idp.example", "aud": "api", "exp": NOW + 60})
    }

    fn hmac_keys() -> Vec<KeyEntry> {
        vec![KeyEntry {
            kid: None,
            alg: None,
            material: KeyMaterial::hmac(HMAC_SECRET.as_bytes().to_vec()).unwrap(),
        }]
    }

    #[test]
    fn parse_refuses_malformed_tokens() {
        assert_eq!(parse("a.b").unwrap_err(), Reason::MalformedToken);
        assert_eq!(parse("a.b.c.d").unwrap_err(), Reason::MalformedToken);
        assert_eq!(parse("!!.b.c").unwrap_err(), Reason::MalformedToken);
        let t = token(json!({"alg": "HS256"}), json!({"sub": "a"}), Alg::Hs256);
        let (input, _) = t.rsplit_once('.').unwrap();
        assert_eq!(
            parse(&format!("{input}.")).unwrap_err(),
            Reason::MalformedToken,
            "empty signature"
        );
        let claims_not_object = token(json!({"alg": "HS256"}), json!(["x"]), Alg::Hs256);
        assert_eq!(
            parse(&claims_not_object).unwrap_err(),
            Reason::MalformedToken
        );
        assert_eq!(
            parse(&"a".repeat(MAX_TOKEN_BYTES + 1)).unwrap_err(),
            Reason::MalformedToken
        );
    }

    #[test]
    fn alg_none_is_refused() {
        let t = test_keys::none_token(good());
        assert_eq!(parse(&t).unwrap_err(), Reason::UnsupportedAlgorithm);
        // Nor with a signature part present: `none` is not an algorithm we verify.
        let with_sig = format!("{t}AAAA");
        assert_eq!(parse(&with_sig).unwrap_err(), Reason::UnsupportedAlgorithm);
    }

    #[test]
    fn hs_rs_es_tokens_verify() {
        for alg in [Alg::Hs256, Alg::Hs384, Alg::Hs512] {
            let t = token(json!({"alg": alg.name()}), good(), alg);
            let p = parse(&t).unwrap();
            assert_eq!(verify_signature(&p, &hmac_keys()), Ok(()), "{alg:?}");
        }
        let rsa = vec![KeyEntry::from_jwk(&test_keys::rsa_jwk(Some("r1"))).unwrap()];
        let t = token(json!({"alg": "RS256", "kid": "r1"}), good(), Alg::Rs256);
        assert_eq!(verify_signature(&parse(&t).unwrap(), &rsa), Ok(()));
        let ec = vec![KeyEntry {
            kid: None,
            alg: None,
            material: KeyMaterial::from_pem(test_keys::EC_PUBLIC_PEM).unwrap(),
        }];
        let t = token(json!({"alg": "ES256"}), good(), Alg::Es256);
        assert_eq!(verify_signature(&parse(&t).unwrap(), &ec), Ok(()));
    }

    #[test]
    fn tampered_claims_fail() {
        let t = token(json!({"alg": "HS256"}), good(), Alg::Hs256);
        let parts: Vec<&str> = t.split('.').collect();
        let forged_claims = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            json!({"sub": "mallory", "iss": "https://idp.example", "aud": "api", "exp": NOW + 60})
                .to_string(),
        );
        let forged = format!("{}.{}.{}", parts[0], forged_claims, parts[2]);
        assert_eq!(
            verify_signature(&parse(&forged).unwrap(), &hmac_keys()),
            Err(Reason::BadSignature)
        );
    }

    #[test]
    fn kid_selection() {
        let keys = vec![
            KeyEntry::from_jwk(&test_keys::rsa_jwk_of(
                test_keys::RSA2_PRIVATE_PEM,
                Some("old"),
            ))
            .unwrap(),
            KeyEntry::from_jwk(&test_keys::rsa_jwk(Some("new"))).unwrap(),
        ];
        let t = token(json!({"alg": "RS256", "kid": "new"}), good(), Alg::Rs256);
        assert_eq!(verify_signature(&parse(&t).unwrap(), &keys), Ok(()));
        // Signed by key "new" but claiming "old": the named key is the only one tried.
        let t = token(json!({"alg": "RS256", "kid": "old"}), good(), Alg::Rs256);
        assert_eq!(
            verify_signature(&parse(&t).unwrap(), &keys),
            Err(Reason::BadSignature)
        );
        let t = token(json!({"alg": "RS256", "kid": "other"}), good(), Alg::Rs256);
        assert_eq!(
            verify_signature(&parse(&t).unwrap(), &keys),
            Err(Reason::UnknownKid)
        );
        // No kid: all fitting keys are tried.
        let t = token(json!({"alg": "RS256"}), good(), Alg::Rs256);
        assert_eq!(verify_signature(&parse(&t).unwrap(), &keys), Ok(()));
    }

    #[test]
    fn alg_key_type_mismatch_is_refused() {
        // The classic confusion: HS256 "signed" with the RSA public key bytes as secret.
        let rsa = vec![KeyEntry {
            kid: None,
            alg: None,
            material: KeyMaterial::from_pem(test_keys::RSA_PUBLIC_PEM).unwrap(),
        }];
        let input = format!(
            "{}.{}",
            base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                r#"{"alg":"HS256"}"#
            ),
            base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                good().to_string()
            )
        );
        let sig = test_keys::sign(
            Alg::Hs256,
            test_keys::RSA_PUBLIC_PEM.as_bytes(),
            input.as_bytes(),
        );
        let t = format!(
            "{input}.{}",
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, sig)
        );
        assert_eq!(
            verify_signature(&parse(&t).unwrap(), &rsa),
            Err(Reason::NoMatchingKey)
        );
        // A JWK pinned to RS256 does not verify an ES256 token with the same kid.
        let pinned = vec![KeyEntry::from_jwk(&test_keys::rsa_jwk(Some("k"))).unwrap()];
        let t = token(json!({"alg": "ES256", "kid": "k"}), good(), Alg::Es256);
        assert_eq!(
            verify_signature(&parse(&t).unwrap(), &pinned),
            Err(Reason::NoMatchingKey)
        );
    }

    #[test]
    fn claims_accept_a_good_token() {
        assert_eq!(
            validate_claims(&claims(good()), &rules(), NOW_MS),
            Ok("alice".into())
        );
    }

    #[test]
    fn expiry_with_leeway() {
        let mut c = good();
        c["exp"] = json!(NOW - 10);
        assert_eq!(
            validate_claims(&claims(c.clone()), &rules(), NOW_MS),
            Ok("alice".into()),
            "within 30s leeway"
        );
        c["exp"] = json!(NOW - 31);
        assert_eq!(
            validate_claims(&claims(c.clone()), &rules(), NOW_MS),
            Err(Reason::TokenExpired)
        );
        let strict = ClaimRules {
            leeway_secs: 0,
            ..rules()
        };
        c["exp"] = json!(NOW);
        assert_eq!(
            validate_claims(&claims(c), &strict, NOW_MS),
            Err(Reason::TokenExpired),
            "exp is exclusive"
        );
    }

    #[test]
    fn not_before_with_leeway() {
        let mut c = good();
        c["nbf"] = json!(NOW + 20);
        assert_eq!(
            validate_claims(&claims(c.clone()), &rules(), NOW_MS),
            Ok("alice".into())
        );
        c["nbf"] = json!(NOW + 31);
        assert_eq!(
            validate_claims(&claims(c), &rules(), NOW_MS),
            Err(Reason::TokenNotYetValid)
        );
    }

    #[test]
    fn missing_or_malformed_exp() {
        let mut c = good();
        c.as_object_mut().unwrap().remove("exp");
        assert_eq!(
            validate_claims(&claims(c.clone()), &rules(), NOW_MS),
            Err(Reason::MissingExpiry)
        );
        let lax = ClaimRules {
            require_exp: false,
            ..rules()
        };
        assert_eq!(
            validate_claims(&claims(c.clone()), &lax, NOW_MS),
            Ok("alice".into())
        );
        c["exp"] = json!("tomorrow");
        assert_eq!(
            validate_claims(&claims(c), &lax, NOW_MS),
            Err(Reason::MalformedToken)
        );
    }

    #[test]
    fn issuer_and_audience() {
        let mut c = good();
        c["iss"] = json!("https://evil.example");
        assert_eq!(
            validate_claims(&claims(c), &rules(), NOW_MS),
            Err(Reason::WrongIssuer)
        );
        let mut c = good();
        c.as_object_mut().unwrap().remove("iss");
        assert_eq!(
            validate_claims(&claims(c), &rules(), NOW_MS),
            Err(Reason::WrongIssuer)
        );

        let mut c = good();
        c["aud"] = json!("other");
        assert_eq!(
            validate_claims(&claims(c.clone()), &rules(), NOW_MS),
            Err(Reason::WrongAudience)
        );
        c["aud"] = json!(["other", "api"]);
        assert_eq!(
            validate_claims(&claims(c.clone()), &rules(), NOW_MS),
            Ok("alice".into())
        );
        c["aud"] = json!(["other"]);
        assert_eq!(
            validate_claims(&claims(c.clone()), &rules(), NOW_MS),
            Err(Reason::WrongAudience)
        );
        c.as_object_mut().unwrap().remove("aud");
        assert_eq!(
            validate_claims(&claims(c.clone()), &rules(), NOW_MS),
            Err(Reason::WrongAudience)
        );
        let any = ClaimRules {
            audiences: vec![],
            issuers: vec![],
            ..rules()
        };
        assert_eq!(
            validate_claims(&claims(c), &any, NOW_MS),
            Ok("alice".into())
        );
    }

    #[test]
    fn principal_claim_paths() {
        let mut c = good();
        c["user"] = json!({"email": "a@example.com"});
        let r = ClaimRules {
            principal_claim: "user.email".into(),
            ..rules()
        };
        assert_eq!(
            validate_claims(&claims(c.clone()), &r, NOW_MS),
            Ok("a@example.com".into())
        );
        c.as_object_mut().unwrap().remove("sub");
        assert_eq!(
            validate_claims(&claims(c), &rules(), NOW_MS),
            Err(Reason::MissingPrincipal)
        );
    }
}
