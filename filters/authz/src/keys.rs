//! Verification keys: HMAC secrets, RSA and P-256 public keys, read from
//! PEM or JWK, and the signature check for each JWS algorithm.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use p256::ecdsa::signature::Verifier;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPublicKey};
use serde::Deserialize;
use sha2::{Sha256, Sha384, Sha512};

/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;
/// Smallest HMAC secret accepted, in bytes (RFC 7518 §3.2 asks for the hash size; 32 is the HS256 floor).
pub const MIN_HMAC_BYTES: usize = 32;

/// A JWS algorithm this filter verifies. `none` is deliberately absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    /// HMAC with SHA-256.
    Hs256,
    /// HMAC with SHA-384.
    Hs384,
    /// HMAC with SHA-512.
    Hs512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
}

impl Alg {
    /// Parse a JOSE `alg` name; `None` for `none` and anything unsupported.
    pub fn parse(name: &str) -> Option<Alg> {
        match name {
            "HS256" => Some(Alg::Hs256),
            "HS384" => Some(Alg::Hs384),
            "HS512" => Some(Alg::Hs512),
            "RS256" => Some(Alg::Rs256),
            "ES256" => Some(Alg::Es256),
            _ => None,
        }
    }

    /// The JOSE name.
    pub fn name(self) -> &'static str {
        match self {
            Alg::Hs256 => "HS256",
            Alg::Hs384 => "HS384",
            Alg::Hs512 => "HS512",
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
        }
    }
}

/// Key material for one key.
#[derive(Clone)]
pub enum KeyMaterial {
    /// A shared HMAC secret (HS256/384/512).
    Hmac(Vec<u8>),
    /// An RSA public key (RS256), ready to verify (built once, not per request).
    Rsa(Box<rsa::pkcs1v15::VerifyingKey<Sha256>>),
    /// A P-256 public key (ES256).
    Ec(Box<p256::ecdsa::VerifyingKey>),
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        match self {
            KeyMaterial::Hmac(s) => write!(f, "Hmac({} bytes)", s.len()),
            KeyMaterial::Rsa(k) => {
                let key: &RsaPublicKey = (**k).as_ref();
                write!(f, "Rsa({} bits)", key.size() * 8)
            }
            KeyMaterial::Ec(_) => f.write_str("Ec(P-256)"),
        }
    }
}

impl KeyMaterial {
    /// Whether this key may verify `alg` (the key-type / alg match that
    /// stops, e.g., an RSA public key being used as an HMAC secret).
    pub fn fits(&self, alg: Alg) -> bool {
        matches!(
            (self, alg),
            (KeyMaterial::Hmac(_), Alg::Hs256 | Alg::Hs384 | Alg::Hs512)
                | (KeyMaterial::Rsa(_), Alg::Rs256)
                | (KeyMaterial::Ec(_), Alg::Es256)
        )
    }

    /// Check `signature` over `message` with `alg`. False when the key does
    /// not fit the algorithm or the signature is wrong.
    pub fn verify(&self, alg: Alg, message: &[u8], signature: &[u8]) -> bool {
        if !self.fits(alg) {
            return false;
        }
        match (self, alg) {
            (KeyMaterial::Hmac(secret), Alg::Hs256) => {
                hmac_ok::<Hmac<Sha256>>(secret, message, signature)
            }
            (KeyMaterial::Hmac(secret), Alg::Hs384) => {
                hmac_ok::<Hmac<Sha384>>(secret, message, signature)
            }
            (KeyMaterial::Hmac(secret), Alg::Hs512) => {
                hmac_ok::<Hmac<Sha512>>(secret, message, signature)
            }
            (KeyMaterial::Rsa(key), Alg::Rs256) => {
                let Ok(sig) = rsa::pkcs1v15::Signature::try_from(signature) else {
                    return false;
                };
                key.verify(message, &sig).is_ok()
            }
            (KeyMaterial::Ec(key), Alg::Es256) => {
                // JWS carries ES256 signatures as raw r||s (64 bytes), not DER.
                let Ok(sig) = p256::ecdsa::Signature::from_slice(signature) else {
                    return false;
                };
                key.verify(message, &sig).is_ok()
            }
            _ => false,
        }
    }

    /// An HMAC secret, checked for length.
    pub fn hmac(secret: Vec<u8>) -> Result<KeyMaterial, String> {
        if secret.len() < MIN_HMAC_BYTES {
            return Err(format!(
                "HMAC secret is {} bytes; at least {MIN_HMAC_BYTES} are required",
                secret.len()
            ));
        }
        Ok(KeyMaterial::Hmac(secret))
    }

    /// A public key from PEM: `PUBLIC KEY` (SPKI, RSA or P-256) or `RSA PUBLIC KEY` (PKCS#1).
    pub fn from_pem(pem: &str) -> Result<KeyMaterial, String> {
        let pem = pem.trim();
        if pem.contains("PRIVATE KEY") {
            return Err("a private key was given; configure the public key only".into());
        }
        if pem.starts_with("-----BEGIN RSA PUBLIC KEY-----") {
            let key = RsaPublicKey::from_pkcs1_pem(pem)
                .map_err(|e| format!("invalid PKCS#1 RSA public key: {e}"))?;
            return rsa_checked(key);
        }
        if let Ok(key) = RsaPublicKey::from_public_key_pem(pem) {
            return rsa_checked(key);
        }
        if let Ok(key) = p256::PublicKey::from_public_key_pem(pem) {
            return Ok(KeyMaterial::Ec(Box::new(p256::ecdsa::VerifyingKey::from(
                key,
            ))));
        }
        Err("not a PEM RSA or P-256 public key (expected -----BEGIN PUBLIC KEY----- or -----BEGIN RSA PUBLIC KEY-----)".into())
    }

    /// Key material from a JWK (`kty` `oct`, `RSA` or `EC` with `crv` `P-256`).
    pub fn from_jwk(jwk: &Jwk) -> Result<KeyMaterial, String> {
        match jwk.kty.as_str() {
            "oct" => KeyMaterial::hmac(b64_field(&jwk.k, "k")?),
            "RSA" => {
                let n = BigUint::from_bytes_be(&b64_field(&jwk.n, "n")?);
                let e = BigUint::from_bytes_be(&b64_field(&jwk.e, "e")?);
                let key = RsaPublicKey::new(n, e).map_err(|e| format!("invalid RSA key: {e}"))?;
                rsa_checked(key)
            }
            "EC" => {
                match jwk.crv.as_deref() {
                    Some("P-256") => {}
                    Some(other) => {
                        return Err(format!("unsupported EC curve `{other}` (only P-256)"));
                    }
                    None => return Err("EC key without `crv`".into()),
                }
                let x = b64_field(&jwk.x, "x")?;
                let y = b64_field(&jwk.y, "y")?;
                if x.len() != 32 || y.len() != 32 {
                    return Err("P-256 coordinates `x` and `y` must be 32 bytes each".into());
                }
                let point = p256::EncodedPoint::from_affine_coordinates(
                    x.as_slice().into(),
                    y.as_slice().into(),
                    false,
                );
                let key = p256::ecdsa::VerifyingKey::from_encoded_point(&point)
                    .map_err(|_| "EC point is not on P-256".to_string())?;
                Ok(KeyMaterial::Ec(Box::new(key)))
            }
            other => Err(format!(
                "unsupported key type `{other}` (expected oct, RSA or EC)"
            )),
        }
    }
}

fn hmac_ok<M: Mac + hmac::digest::KeyInit>(
    secret: &[u8],
    message: &[u8],
    signature: &[u8],
) -> bool {
    let Ok(mut mac) = <M as hmac::digest::KeyInit>::new_from_slice(secret) else {
        return false;
    };
    mac.update(message);
    // Constant-time comparison.
    mac.verify_slice(signature).is_ok()
}

fn rsa_checked(key: RsaPublicKey) -> Result<KeyMaterial, String> {
    let bits = key.n().bits();
    if bits < MIN_RSA_BITS {
        return Err(format!(
            "RSA key is {bits} bits; at least {MIN_RSA_BITS} are required"
        ));
    }
    Ok(KeyMaterial::Rsa(Box::new(
        rsa::pkcs1v15::VerifyingKey::new(key),
    )))
}

fn b64_field(value: &Option<String>, name: &str) -> Result<Vec<u8>, String> {
    let value = value
        .as_deref()
        .ok_or_else(|| format!("JWK is missing `{name}`"))?;
    decode_b64url(value).map_err(|_| format!("JWK `{name}` is not base64url"))
}

/// Decode base64url, with or without padding.
pub fn decode_b64url(value: &str) -> Result<Vec<u8>, base64::DecodeError> {
    URL_SAFE_NO_PAD.decode(value.trim_end_matches('='))
}

/// A JSON Web Key (RFC 7517), the fields this filter reads.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
pub struct Jwk {
    /// Key type: `oct`, `RSA` or `EC`.
    pub kty: String,
    /// Key id.
    #[serde(default)]
    pub kid: Option<String>,
    /// Algorithm the key is meant for.
    #[serde(default)]
    pub alg: Option<String>,
    /// `sig` or `enc`; `enc` keys are ignored in a JWKS.
    #[serde(default, rename = "use")]
    pub use_: Option<String>,
    /// EC curve.
    #[serde(default)]
    pub crv: Option<String>,
    /// EC x coordinate.
    #[serde(default)]
    pub x: Option<String>,
    /// EC y coordinate.
    #[serde(default)]
    pub y: Option<String>,
    /// RSA modulus.
    #[serde(default)]
    pub n: Option<String>,
    /// RSA exponent.
    #[serde(default)]
    pub e: Option<String>,
    /// Symmetric key.
    #[serde(default)]
    pub k: Option<String>,
}

/// One usable key: material plus the `kid` and pinned `alg` it was published with.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    /// Key id, matched against the token's `kid`.
    pub kid: Option<String>,
    /// When set, the only algorithm this key verifies.
    pub alg: Option<Alg>,
    /// The key.
    pub material: KeyMaterial,
}

impl KeyEntry {
    /// Whether this key may verify a token signed with `alg`.
    pub fn accepts(&self, alg: Alg) -> bool {
        self.material.fits(alg) && self.alg.is_none_or(|pinned| pinned == alg)
    }

    /// A key from a JWK, honouring its `kid` and `alg`.
    pub fn from_jwk(jwk: &Jwk) -> Result<KeyEntry, String> {
        let alg = match jwk.alg.as_deref() {
            None => None,
            Some(name) => {
                Some(Alg::parse(name).ok_or_else(|| format!("unsupported alg `{name}`"))?)
            }
        };
        let material = KeyMaterial::from_jwk(jwk)?;
        if let Some(alg) = alg
            && !material.fits(alg)
        {
            return Err(format!(
                "alg `{}` does not fit key type `{}`",
                alg.name(),
                jwk.kty
            ));
        }
        Ok(KeyEntry {
            kid: jwk.kid.clone(),
            alg,
            material,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_keys;

    #[test]
    fn alg_none_and_unknown_are_not_parsed() {
        assert_eq!(Alg::parse("none"), None);
        assert_eq!(Alg::parse("NONE"), None);
        assert_eq!(Alg::parse("PS256"), None);
        assert_eq!(Alg::parse("RS256"), Some(Alg::Rs256));
    }

    #[test]
    fn key_types_fit_only_their_algorithms() {
        let h = KeyMaterial::hmac(vec![7; 32]).unwrap();
        let r = KeyMaterial::from_pem(test_keys::RSA_PUBLIC_PEM).unwrap();
        let e = KeyMaterial::from_pem(test_keys::EC_PUBLIC_PEM).unwrap();
        assert!(
            h.fits(Alg::Hs256) && h.fits(Alg::Hs512) && !h.fits(Alg::Rs256) && !h.fits(Alg::Es256)
        );
        assert!(r.fits(Alg::Rs256) && !r.fits(Alg::Hs256) && !r.fits(Alg::Es256));
        assert!(e.fits(Alg::Es256) && !e.fits(Alg::Hs256) && !e.fits(Alg::Rs256));
    }

    #[test]
    fn short_hmac_secret_and_private_pem_are_refused() {
        assert!(
            KeyMaterial::hmac(vec![1; 31])
                .unwrap_err()
                .contains("at least 32")
        );
        assert!(
            KeyMaterial::from_pem(test_keys::RSA_PRIVATE_PEM)
                .unwrap_err()
                .contains("private key")
        );
        assert!(KeyMaterial::from_pem("garbage").is_err());
    }

    #[test]
    fn pkcs1_rsa_pem_is_read() {
        let k = KeyMaterial::from_pem(test_keys::RSA_PUBLIC_PKCS1_PEM).unwrap();
        assert!(matches!(k, KeyMaterial::Rsa(_)));
    }

    #[test]
    fn small_rsa_key_is_refused() {
        let err = KeyMaterial::from_pem(test_keys::RSA_1024_PUBLIC_PEM).unwrap_err();
        assert!(err.contains("1024 bits"), "{err}");
    }

    #[test]
    fn jwk_forms_are_read_and_checked() {
        let rsa = test_keys::rsa_jwk(Some("r1"));
        let entry = KeyEntry::from_jwk(&rsa).unwrap();
        assert_eq!(entry.kid.as_deref(), Some("r1"));
        assert!(entry.accepts(Alg::Rs256) && !entry.accepts(Alg::Hs256));

        let ec = test_keys::ec_jwk(Some("e1"));
        assert!(KeyEntry::from_jwk(&ec).unwrap().accepts(Alg::Es256));

        let mut wrong_alg = test_keys::ec_jwk(None);
        wrong_alg.alg = Some("RS256".into());
        assert!(
            KeyEntry::from_jwk(&wrong_alg)
                .unwrap_err()
                .contains("does not fit")
        );

        let mut bad_curve = test_keys::ec_jwk(None);
        bad_curve.crv = Some("P-384".into());
        assert!(
            KeyEntry::from_jwk(&bad_curve)
                .unwrap_err()
                .contains("P-384")
        );

        let oct = Jwk {
            kty: "oct".into(),
            k: Some(URL_SAFE_NO_PAD.encode([9u8; 48])),
            alg: Some("HS384".into()),
            ..Jwk::default()
        };
        let entry = KeyEntry::from_jwk(&oct).unwrap();
        assert!(
            entry.accepts(Alg::Hs384) && !entry.accepts(Alg::Hs256),
            "pinned alg"
        );

        let missing = Jwk {
            kty: "RSA".into(),
            ..Jwk::default()
        };
        assert!(
            KeyEntry::from_jwk(&missing)
                .unwrap_err()
                .contains("missing `n`")
        );
        let unknown = Jwk {
            kty: "OKP".into(),
            ..Jwk::default()
        };
        assert!(KeyEntry::from_jwk(&unknown).unwrap_err().contains("OKP"));
    }

    #[test]
    fn signatures_verify_and_tampering_fails() {
        let msg = b"header.claims";
        let secret = vec![3u8; 32];
        let h = KeyMaterial::hmac(secret.clone()).unwrap();
        for alg in [Alg::Hs256, Alg::Hs384, Alg::Hs512] {
            let sig = test_keys::sign(alg, &secret, msg);
            assert!(h.verify(alg, msg, &sig), "{alg:?}");
            assert!(
                !h.verify(alg, b"header.claimz", &sig),
                "{alg:?} tampered message"
            );
        }
        let r = KeyMaterial::from_pem(test_keys::RSA_PUBLIC_PEM).unwrap();
        let sig = test_keys::sign_rs256(msg);
        assert!(r.verify(Alg::Rs256, msg, &sig));
        let mut bad = sig.clone();
        bad[10] ^= 1;
        assert!(!r.verify(Alg::Rs256, msg, &bad));

        let e = KeyMaterial::from_pem(test_keys::EC_PUBLIC_PEM).unwrap();
        let sig = test_keys::sign_es256(msg);
        assert_eq!(sig.len(), 64);
        assert!(e.verify(Alg::Es256, msg, &sig));
        assert!(!e.verify(Alg::Es256, b"other", &sig));
        assert!(!e.verify(Alg::Es256, msg, &sig[..63]), "short signature");
        // Right signature, wrong algorithm claimed: refused by the fit check.
        assert!(!e.verify(Alg::Hs256, msg, &sig));
    }
}
