//! The built-in `authz` filter in the running proxy: real upstreams, a real
//! JWKS server and a real external authorization service, all on loopback.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use p256::ecdsa::signature::Signer;
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use weir_tests::builtin::{self, FilteredProxy};
use weir_tests::client::{self, TestResponse};
use weir_tests::server::{self, Listening};

const HMAC_SECRET: &str = "integration-test-hmac-secret-0123456789";
const EC_PRIVATE_PEM: &str = include_str!("../../filters/authz/testdata/ec_private.pem");
const EC_PUBLIC_PEM: &str = include_str!("../../filters/authz/testdata/ec_public.pem");
const API_KEY: &str = "test-api-key-1";

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn b64json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

fn hs256(claims: Value) -> String {
    let input = format!(
        "{}.{}",
        b64json(&json!({"alg": "HS256", "typ": "JWT"})),
        b64json(&claims)
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(HMAC_SECRET.as_bytes()).expect("hmac key");
    mac.update(input.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{input}.{sig}")
}

fn es256(kid: Option<&str>, claims: Value) -> String {
    let mut header = json!({"alg": "ES256", "typ": "JWT"});
    if let Some(kid) = kid {
        header["kid"] = json!(kid);
    }
    let input = format!("{}.{}", b64json(&header), b64json(&claims));
    let key = p256::ecdsa::SigningKey::from_pkcs8_pem(EC_PRIVATE_PEM).expect("EC test key");
    let sig: p256::ecdsa::Signature = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
}

/// The EC test public key as a JWK.
fn ec_jwk(kid: &str) -> Value {
    let key = p256::PublicKey::from_public_key_pem(EC_PUBLIC_PEM).expect("EC public key");
    let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&key, false);
    json!({
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(point.x().expect("x")),
        "y": URL_SAFE_NO_PAD.encode(point.y().expect("y")),
    })
}

fn claims(sub: &str, roles: &[&str]) -> Value {
    json!({"iss": "test-issuer", "aud": "orders", "sub": sub, "roles": roles, "exp": now() + 3600})
}

async fn echo_upstream() -> Listening {
    server::http1().named("app").echoing().run().await
}

/// The headers the upstream saw, from its JSON echo.
fn upstream_header(response: &TestResponse, name: &str) -> Option<String> {
    response.json()["headers"][name][0]
        .as_str()
        .map(str::to_string)
}

fn reason(response: &TestResponse) -> String {
    response.json()["reason"]
        .as_str()
        .expect("reason in the error body")
        .to_string()
}

/// A proxy whose default chain is `authz` with `authz_config` in front of `app`.
async fn authz_proxy(
    app: &Listening,
    authz_config: &str,
    extra: &[(&str, &Listening)],
) -> FilteredProxy {
    let mut clusters = String::from("  - name: app\n    endpoints: [\"{{app}}\"]\n");
    for (name, _) in extra {
        clusters.push_str(&format!(
            "  - name: {name}\n    endpoints: [\"{{{{{name}}}}}\"]\n"
        ));
    }
    let yaml = format!(
        r#"
filters:
  - name: authz
    module: "{{{{authz_wasm}}}}"
    failure_mode: fail_closed
    config: {authz_config}
clusters:
{clusters}
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
      - forward: {{ cluster: app }}
"#
    );
    let mut builder = weir_tests::proxy::new().upstream("app", app).config(yaml);
    for (name, listening) in extra {
        builder = builder.upstream(name, listening);
    }
    builtin::start(builder).await
}

fn local_config() -> String {
    json!({
        "api_keys": {"keys": [{"sha256": sha256_hex(API_KEY), "principal": "svc-reports"}]},
        "jwt": {
            "issuer": "test-issuer",
            "audience": "orders",
            "keys": [
                {"kid": "hs", "alg": "HS256", "secret": HMAC_SECRET},
                {"kid": "ec", "alg": "ES256", "pem": EC_PUBLIC_PEM},
            ],
        },
        "rules": [
            {"name": "public", "match": {"path_prefix": "/public"}, "action": "allow"},
            {"name": "admins", "match": {"path_prefix": "/admin"},
             "when": {"claims": [{"claim": "roles", "any_of": ["admin"]}]}, "action": "allow"},
            {"name": "no-admin", "match": {"path_prefix": "/admin"}, "action": "deny"},
            {"name": "users", "when": {"authenticated": true}, "action": "allow"},
        ],
    })
    .to_string()
}

#[tokio::test]
async fn without_credentials_401_with_challenge_and_the_upstream_is_not_called() {
    let app = echo_upstream().await;
    let proxy = authz_proxy(&app, &local_config(), &[]).await;
    let response = client::http1().get(&proxy.url("/orders")).await;
    assert_eq!(response.status, 401, "{}", response.text());
    assert_eq!(
        response.header("www-authenticate"),
        Some("Bearer realm=\"weir\"")
    );
    assert_eq!(reason(&response), "missing_credentials");
    assert_eq!(app.requests(), 0);
}

#[tokio::test]
async fn api_key_sets_the_principal_and_a_spoofed_principal_is_removed() {
    let app = echo_upstream().await;
    let proxy = authz_proxy(&app, &local_config(), &[]).await;
    let http = client::http1();

    let response = http
        .get_with(
            &proxy.url("/orders"),
            &[("x-api-key", API_KEY), ("x-weir-principal", "root")],
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        upstream_header(&response, "x-weir-principal").as_deref(),
        Some("svc-reports")
    );

    // Open path, no credentials: the client's own principal header never arrives.
    let response = http
        .get_with(&proxy.url("/public/x"), &[("x-weir-principal", "root")])
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(upstream_header(&response, "x-weir-principal"), None);

    let response = http
        .get_with(&proxy.url("/orders"), &[("x-api-key", "wrong-key")])
        .await;
    assert_eq!(response.status, 401);
    assert_eq!(reason(&response), "invalid_api_key");
    assert_eq!(app.requests(), 2);
}

#[tokio::test]
async fn hs256_tokens_valid_expired_and_wrong_audience() {
    let app = echo_upstream().await;
    let proxy = authz_proxy(&app, &local_config(), &[]).await;
    let http = client::http1();
    let bearer = |token: String| format!("Bearer {token}");

    let valid = bearer(hs256(claims("alice", &["user"])));
    let response = http
        .get_with(&proxy.url("/orders"), &[("authorization", &valid)])
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        upstream_header(&response, "x-weir-principal").as_deref(),
        Some("alice")
    );

    let mut expired_claims = claims("alice", &["user"]);
    expired_claims["exp"] = json!(now() - 3600);
    let expired = bearer(hs256(expired_claims));
    let response = http
        .get_with(&proxy.url("/orders"), &[("authorization", &expired)])
        .await;
    assert_eq!(response.status, 401);
    assert_eq!(reason(&response), "token_expired");
    let challenge = response.header("www-authenticate").expect("challenge");
    assert!(challenge.contains("invalid_token"), "{challenge}");

    let mut other_aud = claims("alice", &["user"]);
    other_aud["aud"] = json!("billing");
    let wrong_aud = bearer(hs256(other_aud));
    let response = http
        .get_with(&proxy.url("/orders"), &[("authorization", &wrong_aud)])
        .await;
    assert_eq!(response.status, 401);
    assert_eq!(reason(&response), "wrong_audience");

    // A token signed with another secret.
    let forged = format!("{}x", &valid[..valid.len() - 1]);
    let response = http
        .get_with(&proxy.url("/orders"), &[("authorization", &forged)])
        .await;
    assert_eq!(response.status, 401);
    assert_eq!(app.requests(), 1);
}

#[tokio::test]
async fn es256_token_verifies_with_the_pem_key() {
    let app = echo_upstream().await;
    let proxy = authz_proxy(&app, &local_config(), &[]).await;
    let token = format!("Bearer {}", es256(Some("ec"), claims("bob", &[])));
    let response = client::http1()
        .get_with(&proxy.url("/orders"), &[("authorization", &token)])
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        upstream_header(&response, "x-weir-principal").as_deref(),
        Some("bob")
    );

    // The same claims with the HMAC key's kid: the EC signature does not verify.
    let wrong_kid = format!("Bearer {}", es256(Some("hs"), claims("bob", &[])));
    let response = client::http1()
        .get_with(&proxy.url("/orders"), &[("authorization", &wrong_kid)])
        .await;
    assert_eq!(response.status, 401, "{}", response.text());
}

#[tokio::test]
async fn rbac_admin_role_403_versus_200() {
    let app = echo_upstream().await;
    let proxy = authz_proxy(&app, &local_config(), &[]).await;
    let http = client::http1();

    let user = format!("Bearer {}", hs256(claims("carol", &["user"])));
    let response = http
        .get_with(&proxy.url("/admin/users"), &[("authorization", &user)])
        .await;
    assert_eq!(response.status, 403, "{}", response.text());
    assert_eq!(reason(&response), "denied_by_rule");

    let response = http
        .get_with(&proxy.url("/admin/users"), &[("x-api-key", API_KEY)])
        .await;
    assert_eq!(response.status, 403);

    let admin = format!("Bearer {}", hs256(claims("dave", &["user", "admin"])));
    let response = http
        .get_with(&proxy.url("/admin/users"), &[("authorization", &admin)])
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(app.requests(), 1);
}

#[tokio::test]
async fn jwks_is_fetched_through_the_cluster_and_cached() {
    let app = echo_upstream().await;
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let jwks_doc = json!({"keys": [ec_jwk("idp-1")]}).to_string();
    let idp = server::http1()
        .route("/.well-known/jwks.json", move |_req| {
            counter.fetch_add(1, Ordering::SeqCst);
            let body = jwks_doc.clone();
            async move {
                let mut response = server::text(200, &body);
                response.headers_mut().insert(
                    "content-type",
                    http::HeaderValue::from_static("application/json"),
                );
                response
            }
        })
        .run()
        .await;
    let config = json!({
        "jwt": {"issuer": "test-issuer", "audience": "orders",
                "jwks": {"cluster": "idp", "refresh_interval": "10m"}},
        "rules": [{"when": {"authenticated": true}, "action": "allow"}],
    })
    .to_string();
    let proxy = authz_proxy(&app, &config, &[("idp", &idp)]).await;
    let http = client::http1();

    let token = format!("Bearer {}", es256(Some("idp-1"), claims("erin", &[])));
    for _ in 0..5 {
        let response = http
            .get_with(&proxy.url("/orders"), &[("authorization", &token)])
            .await;
        assert_eq!(response.status, 200, "{}", response.text());
    }
    let fetches = hits.load(Ordering::SeqCst);
    assert!(
        (1..=2).contains(&fetches),
        "5 requests fetched the JWKS {fetches} times (expected once per filter instance)"
    );

    // Unknown kid: one refetch at most, then refused.
    let unknown = format!("Bearer {}", es256(Some("idp-9"), claims("erin", &[])));
    let response = http
        .get_with(&proxy.url("/orders"), &[("authorization", &unknown)])
        .await;
    assert_eq!(response.status, 401);
    assert_eq!(reason(&response), "unknown_kid");
    assert_eq!(app.requests(), 5);
}

#[tokio::test]
async fn ext_authz_allows_and_denies() {
    let app = echo_upstream().await;
    let policy = server::http1()
        .fallback(|req| async move {
            let user = req
                .headers()
                .get("x-tenant")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let path = req.uri().path().to_string();
            if user == "good" && path.starts_with("/check/") {
                let mut response = server::text(200, "ok");
                response
                    .headers_mut()
                    .insert("x-user-id", http::HeaderValue::from_static("u-42"));
                response
            } else {
                server::text(403, "policy says no")
            }
        })
        .run()
        .await;
    let config = json!({
        "api_keys": {"keys": [{"sha256": sha256_hex(API_KEY), "principal": "svc"}]},
        "rules": [{"when": {"authenticated": true}, "action": "allow"}],
        "ext_authz": {"cluster": "policy", "path_prefix": "/check", "timeout": "5s",
                      "forward_headers": ["x-tenant"], "upstream_headers": ["x-user-id"]},
    })
    .to_string();
    let proxy = authz_proxy(&app, &config, &[("policy", &policy)]).await;
    let http = client::http1();

    let response = http
        .get_with(
            &proxy.url("/orders"),
            &[("x-api-key", API_KEY), ("x-tenant", "good")],
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        upstream_header(&response, "x-user-id").as_deref(),
        Some("u-42")
    );

    let response = http
        .get_with(
            &proxy.url("/orders"),
            &[("x-api-key", API_KEY), ("x-tenant", "bad")],
        )
        .await;
    assert_eq!(response.status, 403);
    assert_eq!(response.text(), "policy says no");

    // Rules deny first: the service is never asked for an anonymous request.
    let asked = policy.requests();
    let response = http.get(&proxy.url("/orders")).await;
    assert_eq!(response.status, 401);
    assert_eq!(policy.requests(), asked);
    assert_eq!(asked, 2);
    assert_eq!(app.requests(), 1);
}
