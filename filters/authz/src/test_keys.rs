//! Fixed test keys (testdata/, generated with openssl) and helpers that sign
//! tokens with them. Test-only.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use p256::ecdsa::signature::Signer;
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use sha2::{Sha256, Sha384, Sha512};

use crate::keys::{Alg, Jwk};

pub const RSA_PUBLIC_PEM: &str = include_str!("../testdata/rsa_public.pem");
pub const RSA_PUBLIC_PKCS1_PEM: &str = include_str!("../testdata/rsa_public_pkcs1.pem");
pub const RSA_PRIVATE_PEM: &str = include_str!("../testdata/rsa_private.pem");
pub const RSA2_PRIVATE_PEM: &str = include_str!("../testdata/rsa2_private.pem");
pub const RSA_1024_PUBLIC_PEM: &str = include_str!("../testdata/rsa1024_public.pem");
pub const EC_PUBLIC_PEM: &str = include_str!("../testdata/ec_public.pem");
pub const EC_PRIVATE_PEM: &str = include_str!("../testdata/ec_private.pem");

/// A 32-byte HMAC secret used across tests.
pub const HMAC_SECRET: &str = "0123456789abcdef0123456789abcdef";

/// HMAC signature with `alg`.
pub fn sign(alg: Alg, secret: &[u8], msg: &[u8]) -> Vec<u8> {
    match alg {
        Alg::Hs256 => mac::<Hmac<Sha256>>(secret, msg),
        Alg::Hs384 => mac::<Hmac<Sha384>>(secret, msg),
        Alg::Hs512 => mac::<Hmac<Sha512>>(secret, msg),
        Alg::Rs256 => sign_rs256(msg),
        Alg::Es256 => sign_es256(msg),
    }
}

fn mac<M: Mac + hmac::digest::KeyInit>(secret: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = <M as hmac::digest::KeyInit>::new_from_slice(secret).unwrap();
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

/// RS256 with the first RSA test key.
pub fn sign_rs256(msg: &[u8]) -> Vec<u8> {
    sign_rs256_with(RSA_PRIVATE_PEM, msg)
}

/// RS256 with the given private key PEM.
pub fn sign_rs256_with(private_pem: &str, msg: &[u8]) -> Vec<u8> {
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(private_pem).unwrap();
    let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(key);
    let sig: rsa::pkcs1v15::Signature = signer.sign(msg);
    Box::<[u8]>::from(sig).to_vec()
}

/// ES256 (raw r||s) with the EC test key.
pub fn sign_es256(msg: &[u8]) -> Vec<u8> {
    let key = p256::ecdsa::SigningKey::from_pkcs8_pem(EC_PRIVATE_PEM).unwrap();
    let sig: p256::ecdsa::Signature = key.sign(msg);
    sig.to_bytes().to_vec()
}

/// The first RSA test key as a JWK.
pub fn rsa_jwk(kid: Option<&str>) -> Jwk {
    rsa_jwk_of(RSA_PRIVATE_PEM, kid)
}

/// The public half of `private_pem` as a JWK.
pub fn rsa_jwk_of(private_pem: &str, kid: Option<&str>) -> Jwk {
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(private_pem).unwrap();
    Jwk {
        kty: "RSA".into(),
        kid: kid.map(str::to_string),
        alg: Some("RS256".into()),
        use_: Some("sig".into()),
        n: Some(URL_SAFE_NO_PAD.encode(key.n().to_bytes_be())),
        e: Some(URL_SAFE_NO_PAD.encode(key.e().to_bytes_be())),
        ..Jwk::default()
    }
}

/// The EC test key as a JWK.
pub fn ec_jwk(kid: Option<&str>) -> Jwk {
    let key = p256::ecdsa::SigningKey::from_pkcs8_pem(EC_PRIVATE_PEM).unwrap();
    let point = key.verifying_key().to_encoded_point(false);
    Jwk {
        kty: "EC".into(),
        kid: kid.map(str::to_string),
        crv: Some("P-256".into()),
        x: Some(URL_SAFE_NO_PAD.encode(point.x().unwrap())),
        y: Some(URL_SAFE_NO_PAD.encode(point.y().unwrap())),
        ..Jwk::default()
    }
}

/// JSON of a JWK as a JWKS would publish it.
pub fn jwk_json(jwk: &Jwk) -> serde_json::Value {
    let mut v = serde_json::Map::new();
    let mut put = |k: &str, val: &Option<String>| {
        if let Some(val) = val {
            v.insert(k.into(), serde_json::Value::String(val.clone()));
        }
    };
    put("kid", &jwk.kid);
    put("alg", &jwk.alg);
    put("use", &jwk.use_);
    put("crv", &jwk.crv);
    put("x", &jwk.x);
    put("y", &jwk.y);
    put("n", &jwk.n);
    put("e", &jwk.e);
    put("k", &jwk.k);
    v.insert("kty".into(), serde_json::Value::String(jwk.kty.clone()));
    serde_json::Value::Object(v)
}

/// A compact JWS with the given header and claims, signed for `alg`.
/// HS* use [`HMAC_SECRET`], RS256 and ES256 the first test keys.
pub fn token(header: serde_json::Value, claims: serde_json::Value, alg: Alg) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = sign(alg, HMAC_SECRET.as_bytes(), input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// An unsigned `alg: none` token.
pub fn none_token(claims: serde_json::Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}
