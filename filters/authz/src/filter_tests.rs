//! The authz filter through the SDK's native test harness: configured from
//! JSON as the proxy does it, with the harness's clock, KV, metrics and
//! callouts.

use serde_json::Value;
use weir_sdk::http::{CalloutError, IncomingResponse};
use weir_sdk::prelude::*;
use weir_sdk::testing::{self, Request, json};

use crate::Authz;
use crate::keys::Alg;
use crate::test_keys::{self, HMAC_SECRET, token};

const NOW_MS: u64 = 1_700_000_000_000;
const NOW: u64 = NOW_MS / 1000;

fn load(config: Value) -> testing::Loaded<Authz> {
    testing::set_time(NOW_MS);
    testing::load::<Authz>(config).unwrap()
}

fn claims(sub: &str, extra: Value) -> Value {
    let mut c = json!({"sub": sub, "iss": "https://idp", "aud": "api", "exp": NOW + 300});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn config(rules: Value) -> Value {
    json!({
        "jwt": {
            "issuer": "https://idp",
            "audience": "api",
            "keys": [
                {"secret": HMAC_SECRET, "kid": "h"},
                {"pem": test_keys::RSA_PUBLIC_PEM, "kid": "r"},
                {"pem": test_keys::EC_PUBLIC_PEM, "kid": "e"}
            ]
        },
        "api_keys": {"keys": [{"sha256": crate::apikey::digest_hex("svc-key"), "principal": "svc-a"}]},
        "rules": rules,
    })
}

fn bearer(req: Request, t: &str) -> Request {
    req.with_header("authorization", &format!("Bearer {t}"))
}

fn respond(action: Action) -> LocalResponse {
    match action {
        Action::Respond(r) => r,
        other => panic!("expected a local response, got {other:?}"),
    }
}

fn body(r: &LocalResponse) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

fn header<'a>(r: &'a LocalResponse, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn config_errors_are_rejected_at_load_naming_the_field() {
    for (cfg, field) in [
        (
            json!({"jwt": {"keys": [{"secret": "short"}]}}),
            "jwt.keys[0].secret",
        ),
        (
            json!({"jwt": {"leeway": "later", "keys": []}}),
            "jwt.leeway",
        ),
        (
            json!({"rules": [{"action": "allow", "match": {"path_prefix": "nope"}}]}),
            "rules[0].match.path_prefix",
        ),
        (json!({"default_action": "maybe"}), "default_action"),
        (
            json!({"api_keys": {"keys": [{"sha256": "xyz", "principal": "p"}]}}),
            "api_keys.keys[0].sha256",
        ),
        (json!({"surprise": 1}), "surprise"),
    ] {
        let err = testing::load::<Authz>(cfg).err().expect(field).to_string();
        assert!(err.contains(field), "{field}: {err}");
    }
}

#[test]
fn missing_credentials_get_401_json_and_challenge() {
    let f = load(config(
        json!([{"when": {"authenticated": true}, "action": "allow"}]),
    ));
    let r = respond(f.request_headers(&mut Request::get("/")).unwrap());
    assert_eq!(r.status, 401);
    assert_eq!(
        body(&r),
        json!({"error": "unauthorized", "reason": "missing_credentials"})
    );
    assert_eq!(
        header(&r, "www-authenticate"),
        Some("Bearer realm=\"weir\"")
    );
    assert_eq!(
        testing::metrics().counter("authz_denied_total", &[("reason", "missing_credentials")]),
        1
    );
}

#[test]
fn hs_rs_es_tokens_verify_and_forward_the_principal() {
    let f = load(config(
        json!([{"when": {"authenticated": true}, "action": "allow"}]),
    ));
    for (alg, kid) in [(Alg::Hs256, "h"), (Alg::Rs256, "r"), (Alg::Es256, "e")] {
        let t = token(
            json!({"alg": alg.name(), "kid": kid}),
            claims("alice", json!({})),
            alg,
        );
        let mut req = bearer(Request::get("/"), &t);
        assert_eq!(
            f.request_headers(&mut req).unwrap(),
            Action::Continue,
            "{alg:?}"
        );
        assert_eq!(req.header("x-weir-principal").as_deref(), Some("alice"));
    }
    assert_eq!(
        testing::metrics().counter("authz_allowed_total", &[("reason", "allowed_by_rule")]),
        3
    );
}

#[test]
fn spoofed_principal_header_is_removed_even_without_auth() {
    let f = load(config(
        json!([{"match": {"path_prefix": "/public/"}, "action": "allow"}]),
    ));
    let mut req = Request::get("/public/x").with_header("x-weir-principal", "admin");
    assert_eq!(f.request_headers(&mut req).unwrap(), Action::Continue);
    assert_eq!(req.header("x-weir-principal"), None);
    // With a valid token, the incoming copy is replaced by the verified principal.
    let t = token(
        json!({"alg": "HS256"}),
        claims("bob", json!({})),
        Alg::Hs256,
    );
    let mut req = bearer(
        Request::get("/public/x").with_header("x-weir-principal", "admin"),
        &t,
    );
    f.request_headers(&mut req).unwrap();
    assert_eq!(req.header_all("x-weir-principal"), vec!["bob".to_string()]);
}

#[test]
fn invalid_tokens_are_401_with_reason() {
    let f = load(config(json!([{"action": "allow"}])));
    let tampered = {
        let t = token(json!({"alg": "HS256"}), claims("a", json!({})), Alg::Hs256);
        let mut parts: Vec<String> = t.split('.').map(str::to_string).collect();
        // Change the first signature character (all its bits are significant).
        let first = if parts[2].starts_with('A') { "B" } else { "A" };
        parts[2].replace_range(0..1, first);
        parts.join(".")
    };
    for (t, reason) in [
        (
            token(
                json!({"alg": "HS256"}),
                claims("a", json!({"exp": NOW - 31})),
                Alg::Hs256,
            ),
            "token_expired",
        ),
        (
            token(
                json!({"alg": "HS256"}),
                claims("a", json!({"nbf": NOW + 31})),
                Alg::Hs256,
            ),
            "token_not_yet_valid",
        ),
        (
            token(
                json!({"alg": "HS256"}),
                claims("a", json!({"aud": ["x", "y"]})),
                Alg::Hs256,
            ),
            "wrong_audience",
        ),
        (
            token(
                json!({"alg": "HS256"}),
                claims("a", json!({"iss": "https://other"})),
                Alg::Hs256,
            ),
            "wrong_issuer",
        ),
        (
            token(
                json!({"alg": "RS256", "kid": "zz"}),
                claims("a", json!({})),
                Alg::Rs256,
            ),
            "unknown_kid",
        ),
        (tampered, "bad_signature"),
        (
            test_keys::none_token(claims("a", json!({}))),
            "unsupported_algorithm",
        ),
        (
            token(
                json!({"alg": "HS256", "kid": "r"}),
                claims("a", json!({})),
                Alg::Hs256,
            ),
            "no_matching_key",
        ),
    ] {
        let r = respond(
            f.request_headers(&mut bearer(Request::get("/"), &t))
                .unwrap(),
        );
        assert_eq!(
            (r.status, body(&r)["reason"].as_str().unwrap()),
            (401, reason)
        );
        assert!(
            header(&r, "www-authenticate")
                .unwrap()
                .contains("error=\"invalid_token\"")
        );
        assert_eq!(
            testing::metrics().counter("authz_denied_total", &[("reason", reason)]),
            1,
            "{reason}"
        );
    }
}

#[test]
fn leeway_follows_the_sdk_clock() {
    let f = load(config(json!([{"action": "allow"}])));
    let t = token(
        json!({"alg": "HS256"}),
        claims("a", json!({"exp": NOW + 10})),
        Alg::Hs256,
    );
    testing::set_time(NOW_MS + 39_000);
    assert_eq!(
        f.request_headers(&mut bearer(Request::get("/"), &t))
            .unwrap(),
        Action::Continue
    );
    testing::set_time(NOW_MS + 40_000);
    assert_eq!(
        respond(
            f.request_headers(&mut bearer(Request::get("/"), &t))
                .unwrap()
        )
        .status,
        401
    );
}

#[test]
fn api_keys_rule_order_and_default_deny() {
    let f = load(config(json!([
        {"name": "svc-read", "when": {"api_key_principals": ["svc-a"]}, "match": {"methods": ["GET"]}, "action": "allow"},
        {"name": "svc-else", "when": {"api_key_principals": ["svc-a"]}, "action": "deny"},
        {"name": "catch-all", "action": "allow"}
    ])));
    let mut get = Request::get("/x").with_header("x-api-key", "svc-key");
    assert_eq!(f.request_headers(&mut get).unwrap(), Action::Continue);
    assert_eq!(get.header("x-weir-principal").as_deref(), Some("svc-a"));
    let r = respond(
        f.request_headers(&mut Request::post("/x").with_header("x-api-key", "svc-key"))
            .unwrap(),
    );
    assert_eq!(
        (r.status, body(&r)),
        (
            403,
            json!({"error": "forbidden", "reason": "denied_by_rule"})
        )
    );
    let r = respond(
        f.request_headers(&mut Request::get("/x").with_header("x-api-key", "nope"))
            .unwrap(),
    );
    assert_eq!(
        (r.status, body(&r)["reason"].clone()),
        (401, json!("invalid_api_key"))
    );

    let deny_all = load(config(json!([])));
    let t = token(json!({"alg": "HS256"}), claims("a", json!({})), Alg::Hs256);
    let r = respond(
        deny_all
            .request_headers(&mut bearer(Request::get("/"), &t))
            .unwrap(),
    );
    assert_eq!(
        (r.status, body(&r)["reason"].clone()),
        (403, json!("default_deny"))
    );
}

#[test]
fn roles_claim_rule() {
    let f = load(config(json!([
        {"match": {"path_prefix": "/admin/"}, "when": {"claims": [{"claim": "roles", "any_of": ["admin"]}]}, "action": "allow"},
        {"match": {"path_prefix": "/admin/"}, "action": "deny"},
        {"when": {"authenticated": true}, "action": "allow"}
    ])));
    let admin = token(
        json!({"alg": "HS256"}),
        claims("root", json!({"roles": ["ops", "admin"]})),
        Alg::Hs256,
    );
    let user = token(
        json!({"alg": "HS256"}),
        claims("joe", json!({"roles": "user"})),
        Alg::Hs256,
    );
    assert_eq!(
        f.request_headers(&mut bearer(Request::get("/admin/x"), &admin))
            .unwrap(),
        Action::Continue
    );
    assert_eq!(
        respond(
            f.request_headers(&mut bearer(Request::get("/admin/x"), &user))
                .unwrap()
        )
        .status,
        403
    );
    assert_eq!(
        f.request_headers(&mut bearer(Request::get("/home"), &user))
            .unwrap(),
        Action::Continue
    );
}

#[test]
fn jwks_from_a_cluster_with_unknown_kid_refetch() {
    let f = load(json!({
        "jwt": {"jwks": {"cluster": "idp", "path": "/keys", "min_refetch_interval": "30s"}},
        "rules": [{"when": {"authenticated": true}, "action": "allow"}]
    }));
    let jwks = json!({"keys": [test_keys::jwk_json(&test_keys::ec_jwk(Some("e1")))]}).to_string();
    testing::mock_callout("idp", move |req| {
        assert_eq!((req.method.as_str(), req.path.as_str()), ("GET", "/keys"));
        Ok(IncomingResponse::new(200).with_body(jwks.clone()))
    });
    let good = token(
        json!({"alg": "ES256", "kid": "e1"}),
        claims("a", json!({})),
        Alg::Es256,
    );
    assert_eq!(
        f.request_headers(&mut bearer(Request::get("/"), &good))
            .unwrap(),
        Action::Continue
    );
    assert_eq!(
        f.request_headers(&mut bearer(Request::get("/"), &good))
            .unwrap(),
        Action::Continue
    );
    assert_eq!(testing::callouts().len(), 1, "cached");

    let unknown = token(
        json!({"alg": "ES256", "kid": "e2"}),
        claims("a", json!({})),
        Alg::Es256,
    );
    testing::set_time(NOW_MS + 1_000);
    let r = respond(
        f.request_headers(&mut bearer(Request::get("/"), &unknown))
            .unwrap(),
    );
    assert_eq!(body(&r)["reason"], "unknown_kid");
    assert_eq!(testing::callouts().len(), 2, "refetched once");
    respond(
        f.request_headers(&mut bearer(Request::get("/"), &unknown))
            .unwrap(),
    );
    assert_eq!(testing::callouts().len(), 2, "rate-limited");
}

#[test]
fn jwks_outage_without_keys_is_503() {
    let f = load(json!({"jwt": {"jwks": {"cluster": "idp"}}, "rules": [{"action": "allow"}]}));
    testing::mock_callout("idp", |_| Err(CalloutError::Timeout));
    let t = token(
        json!({"alg": "ES256", "kid": "e1"}),
        claims("a", json!({})),
        Alg::Es256,
    );
    let r = respond(
        f.request_headers(&mut bearer(Request::get("/"), &t))
            .unwrap(),
    );
    assert_eq!(
        (r.status, body(&r)),
        (
            503,
            json!({"error": "unavailable", "reason": "jwks_unavailable"})
        )
    );
}

#[test]
fn ext_authz_over_the_callout() {
    let mut c = config(json!([{"action": "allow"}]));
    c["ext_authz"] = json!({"cluster": "policy", "path_prefix": "/check", "forward_headers": ["x-tenant"], "upstream_headers": ["x-user-id"], "timeout": "100ms"});
    let f = load(c);
    testing::mock_callout("policy", |req| {
        assert_eq!(req.timeout, std::time::Duration::from_millis(100));
        match req
            .headers
            .iter()
            .find(|(n, _)| n == "x-tenant")
            .map(|(_, v)| v.as_str())
        {
            Some("good") => Ok(IncomingResponse::new(200).with_header("x-user-id", "42")),
            Some("slow") => Err(CalloutError::Timeout),
            _ => Ok(IncomingResponse::new(451)
                .with_header("x-why", "legal")
                .with_body("no")),
        }
    });
    let mut ok = Request::get("/orders?id=1").with_header("x-tenant", "good");
    assert_eq!(f.request_headers(&mut ok).unwrap(), Action::Continue);
    assert_eq!(ok.header("x-user-id").as_deref(), Some("42"));
    let (cluster, sent) = testing::callouts().pop().unwrap();
    assert_eq!(
        (cluster.as_str(), sent.path.as_str()),
        ("policy", "/check/orders?id=1")
    );

    let r = respond(
        f.request_headers(&mut Request::get("/").with_header("x-tenant", "bad"))
            .unwrap(),
    );
    assert_eq!(
        (r.status, r.body.as_slice(), header(&r, "x-why")),
        (451, b"no".as_slice(), Some("legal"))
    );
    let r = respond(
        f.request_headers(&mut Request::get("/").with_header("x-tenant", "slow"))
            .unwrap(),
    );
    assert_eq!(
        (r.status, body(&r)["reason"].clone()),
        (403, json!("ext_authz_error"))
    );
    assert_eq!(
        testing::metrics().counter("authz_denied_total", &[("reason", "ext_authz_denied")]),
        1
    );
}
