//! Whole-flow tests of the engine with a scripted host.

use std::cell::{Cell, RefCell};

use serde_json::{Value, json};

use super::*;
use crate::keys::Alg;
use crate::test_keys::{self, HMAC_SECRET, token};

const NOW_MS: u64 = 1_700_000_000_000;
const NOW: u64 = NOW_MS / 1000;

type Script = Box<dyn Fn(&str, &CallRequest) -> Result<CallResponse, String>>;

/// A host whose clock is set by the test and whose clusters answer from a script.
struct ScriptedHost {
    now_ms: Cell<u64>,
    calls: RefCell<Vec<(String, CallRequest)>>,
    answer: RefCell<Script>,
}

impl ScriptedHost {
    fn new() -> Self {
        ScriptedHost {
            now_ms: Cell::new(NOW_MS),
            calls: RefCell::new(vec![]),
            answer: RefCell::new(Box::new(|c, _| Err(format!("unknown cluster {c}")))),
        }
    }
    fn answer(&self, f: impl Fn(&str, &CallRequest) -> Result<CallResponse, String> + 'static) {
        *self.answer.borrow_mut() = Box::new(f);
    }
    fn calls_to(&self, cluster: &str) -> usize {
        self.calls
            .borrow()
            .iter()
            .filter(|(c, _)| c == cluster)
            .count()
    }
}

impl Host for ScriptedHost {
    fn now_ms(&self) -> u64 {
        self.now_ms.get()
    }
    fn call(&self, cluster: &str, request: &CallRequest) -> Result<CallResponse, String> {
        self.calls
            .borrow_mut()
            .push((cluster.to_string(), request.clone()));
        (self.answer.borrow())(cluster, request)
    }
}

struct Req {
    method: &'static str,
    path: &'static str,
    headers: Vec<(String, String)>,
}

impl Req {
    fn get(path: &'static str) -> Req {
        Req {
            method: "GET",
            path,
            headers: vec![],
        }
    }
    fn with(mut self, name: &str, value: &str) -> Req {
        self.headers.push((name.into(), value.into()));
        self
    }
    fn bearer(self, token: &str) -> Req {
        self.with("authorization", &format!("Bearer {token}"))
    }
}

impl RequestFacts for Req {
    fn method(&self) -> String {
        self.method.into()
    }
    fn path(&self) -> String {
        self.path.into()
    }
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }
}

fn authorizer(config: Value) -> Authorizer {
    Authorizer::new(Settings::from_json(&config.to_string()).unwrap())
}

fn claims(sub: &str, extra: Value) -> Value {
    let mut c = json!({"sub": sub, "iss": "https://idp", "aud": "api", "exp": NOW + 300});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn hs_config(rules: Value) -> Value {
    json!({
        "jwt": {"issuer": "https://idp", "audience": "api", "keys": [{"secret": HMAC_SECRET}]},
        "api_keys": {"keys": [{"sha256": crate::apikey::digest_hex("svc-key"), "principal": "svc-a"}]},
        "rules": rules,
    })
}

fn status(o: &Outcome) -> u16 {
    match o {
        Outcome::Allow { .. } => 200,
        Outcome::Deny { reply, .. } => reply.status,
    }
}

fn body(o: &Outcome) -> Value {
    match o {
        Outcome::Deny { reply, .. } => serde_json::from_slice(&reply.body).unwrap(),
        Outcome::Allow { .. } => panic!("allowed"),
    }
}

fn header<'a>(o: &'a Outcome, name: &str) -> Option<&'a str> {
    match o {
        Outcome::Deny { reply, .. } => reply
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str()),
        Outcome::Allow { .. } => None,
    }
}

#[test]
fn missing_credentials_get_401_with_bearer_challenge() {
    let a = authorizer(hs_config(
        json!([{"when": {"authenticated": true}, "action": "allow"}]),
    ));
    let host = ScriptedHost::new();
    let o = a.check(&Req::get("/"), None, &host);
    assert_eq!(status(&o), 401);
    assert_eq!(
        body(&o),
        json!({"error": "unauthorized", "reason": "missing_credentials"})
    );
    assert_eq!(
        header(&o, "www-authenticate"),
        Some("Bearer realm=\"weir\"")
    );
    assert_eq!(header(&o, "content-type"), Some("application/json"));
}

#[test]
fn valid_token_allows_and_names_the_principal() {
    let a = authorizer(hs_config(
        json!([{"when": {"authenticated": true}, "action": "allow"}]),
    ));
    let host = ScriptedHost::new();
    let t = token(
        json!({"alg": "HS256"}),
        claims("alice", json!({})),
        Alg::Hs256,
    );
    let o = a.check(&Req::get("/").bearer(&t), None, &host);
    assert_eq!(
        o,
        Outcome::Allow {
            principal: Some("alice".into()),
            reason: Reason::AllowedByRule,
            rule: Some("rules[0]".into()),
            upstream_headers: vec![]
        }
    );
}

#[test]
fn invalid_tokens_get_401_with_reason() {
    let a = authorizer(hs_config(json!([{"action": "allow"}])));
    let host = ScriptedHost::new();
    let cases = [
        (
            token(
                json!({"alg": "HS256"}),
                claims("a", json!({"exp": NOW - 60})),
                Alg::Hs256,
            ),
            "token_expired",
        ),
        (
            token(
                json!({"alg": "HS256"}),
                claims("a", json!({"nbf": NOW + 60})),
                Alg::Hs256,
            ),
            "token_not_yet_valid",
        ),
        (
            token(
                json!({"alg": "HS256"}),
                claims("a", json!({"aud": "other"})),
                Alg::Hs256,
            ),
            "wrong_audience",
        ),
        (
            token(
                json!({"alg": "HS256"}),
                claims("a", json!({"iss": "https://evil"})),
                Alg::Hs256,
            ),
            "wrong_issuer",
        ),
        (
            test_keys::none_token(claims("a", json!({}))),
            "unsupported_algorithm",
        ),
        (
            token(json!({"alg": "RS256"}), claims("a", json!({})), Alg::Rs256),
            "no_matching_key",
        ),
        ("abc.def".to_string(), "malformed_token"),
    ];
    for (t, reason) in cases {
        // Even the allow-all rule does not admit a bad token.
        let o = a.check(&Req::get("/").bearer(&t), None, &host);
        assert_eq!(status(&o), 401, "{reason}");
        assert_eq!(body(&o)["reason"], reason);
        let challenge = header(&o, "www-authenticate").unwrap();
        assert!(
            challenge.contains("error=\"invalid_token\"") && challenge.contains(reason),
            "{challenge}"
        );
    }
    let o = a.check(&Req::get("/").with("authorization", "Bearer "), None, &host);
    assert_eq!(body(&o)["reason"], "malformed_authorization");
    // Another scheme is not ours: treated as no token, the allow-all rule admits it.
    assert_eq!(
        status(&a.check(
            &Req::get("/").with("authorization", "Basic dTpw"),
            None,
            &host
        )),
        200
    );
}

#[test]
fn leeway_uses_the_host_clock() {
    let a = authorizer(hs_config(json!([{"action": "allow"}])));
    let host = ScriptedHost::new();
    let t = token(
        json!({"alg": "HS256"}),
        claims("a", json!({"exp": NOW + 10})),
        Alg::Hs256,
    );
    assert_eq!(
        status(&a.check(&Req::get("/").bearer(&t), None, &host)),
        200
    );
    host.now_ms.set(NOW_MS + 39_000); // 29s past exp, within the 30s leeway
    assert_eq!(
        status(&a.check(&Req::get("/").bearer(&t), None, &host)),
        200
    );
    host.now_ms.set(NOW_MS + 40_000);
    assert_eq!(
        status(&a.check(&Req::get("/").bearer(&t), None, &host)),
        401
    );
}

#[test]
fn api_key_hit_and_miss() {
    let a = authorizer(hs_config(
        json!([{"when": {"api_key_principals": ["svc-a"]}, "action": "allow"}]),
    ));
    let host = ScriptedHost::new();
    let o = a.check(&Req::get("/").with("x-api-key", "svc-key"), None, &host);
    assert!(matches!(o, Outcome::Allow { principal: Some(ref p), .. } if p == "svc-a"));
    let o = a.check(&Req::get("/").with("x-api-key", "wrong"), None, &host);
    assert_eq!(
        (status(&o), body(&o)["reason"].clone()),
        (401, json!("invalid_api_key"))
    );
    assert_eq!(
        header(&o, "www-authenticate"),
        Some("Bearer realm=\"weir\""),
        "an API key error is not an invalid_token"
    );
}

#[test]
fn api_key_only_config_challenges_with_the_header() {
    let a = authorizer(
        json!({"api_keys": {"header": "X-Key", "keys": [{"sha256": crate::apikey::digest_hex("k"), "principal": "p"}]}}),
    );
    let o = a.check(&Req::get("/"), None, &ScriptedHost::new());
    assert_eq!(
        header(&o, "www-authenticate"),
        Some("ApiKey realm=\"weir\", header=\"x-key\"")
    );
}

#[test]
fn authenticated_but_denied_is_403_and_default_deny() {
    let a = authorizer(hs_config(json!([
        {"name": "admins", "match": {"path_prefix": "/admin"}, "when": {"claims": [{"claim": "roles", "any_of": ["admin"]}]}, "action": "allow"},
        {"name": "no-admin", "match": {"path_prefix": "/admin"}, "action": "deny"},
    ])));
    let host = ScriptedHost::new();
    let admin = token(
        json!({"alg": "HS256"}),
        claims("root", json!({"roles": ["admin"]})),
        Alg::Hs256,
    );
    let user = token(
        json!({"alg": "HS256"}),
        claims("joe", json!({"roles": "user"})),
        Alg::Hs256,
    );
    assert_eq!(
        status(&a.check(&Req::get("/admin/x").bearer(&admin), None, &host)),
        200
    );
    let o = a.check(&Req::get("/admin/x").bearer(&user), None, &host);
    assert_eq!(
        (status(&o), body(&o)),
        (
            403,
            json!({"error": "forbidden", "reason": "denied_by_rule"})
        )
    );
    assert!(matches!(&o, Outcome::Deny { rule: Some(r), .. } if r == "no-admin"));
    let o = a.check(&Req::get("/other").bearer(&user), None, &host);
    assert_eq!(
        (status(&o), body(&o)["reason"].clone()),
        (403, json!("default_deny"))
    );
    let o = a.check(&Req::get("/other"), None, &host);
    assert_eq!(
        (status(&o), body(&o)["reason"].clone()),
        (401, json!("missing_credentials"))
    );
}

fn jwks_body(keys: &[Value]) -> Vec<u8> {
    json!({ "keys": keys }).to_string().into_bytes()
}

fn jwks_config() -> Value {
    json!({
        "jwt": {"issuer": "https://idp", "audience": "api", "jwks": {"cluster": "idp", "refresh_interval": "5m", "min_refetch_interval": "30s"}},
        "rules": [{"when": {"authenticated": true}, "action": "allow"}],
    })
}

#[test]
fn jwks_is_fetched_cached_and_refreshed() {
    let a = authorizer(jwks_config());
    let host = ScriptedHost::new();
    let body = jwks_body(&[test_keys::jwk_json(&test_keys::rsa_jwk(Some("r1")))]);
    host.answer(move |cluster, req| {
        assert_eq!(
            (cluster, req.method.as_str(), req.path.as_str()),
            ("idp", "GET", "/.well-known/jwks.json")
        );
        Ok(CallResponse {
            status: 200,
            headers: vec![],
            body: body.clone(),
        })
    });
    let t = token(
        json!({"alg": "RS256", "kid": "r1"}),
        claims("a", json!({})),
        Alg::Rs256,
    );
    for _ in 0..3 {
        assert_eq!(
            status(&a.check(&Req::get("/").bearer(&t), None, &host)),
            200
        );
    }
    assert_eq!(host.calls_to("idp"), 1, "cached");
    host.now_ms.set(NOW_MS + 300_000);
    assert_eq!(
        status(&a.check(&Req::get("/").bearer(&t), None, &host)),
        200
    );
    assert_eq!(host.calls_to("idp"), 2, "refreshed after the interval");
}

#[test]
fn unknown_kid_refetches_once_rate_limited() {
    let a = authorizer(jwks_config());
    let host = ScriptedHost::new();
    let old = jwks_body(&[test_keys::jwk_json(&test_keys::rsa_jwk_of(
        test_keys::RSA2_PRIVATE_PEM,
        Some("old"),
    ))]);
    let rotated = jwks_body(&[
        test_keys::jwk_json(&test_keys::rsa_jwk_of(
            test_keys::RSA2_PRIVATE_PEM,
            Some("old"),
        )),
        test_keys::jwk_json(&test_keys::rsa_jwk(Some("new"))),
    ]);
    let serve = std::rc::Rc::new(RefCell::new(old));
    let served = serve.clone();
    host.answer(move |_, _| {
        Ok(CallResponse {
            status: 200,
            headers: vec![],
            body: served.borrow().clone(),
        })
    });

    let unknown = token(
        json!({"alg": "RS256", "kid": "nope"}),
        claims("a", json!({})),
        Alg::Rs256,
    );
    let o = a.check(&Req::get("/").bearer(&unknown), None, &host);
    assert_eq!(body(&o)["reason"], "unknown_kid");
    assert_eq!(
        host.calls_to("idp"),
        1,
        "the first fetch already was fresh: no second fetch"
    );

    host.now_ms.set(NOW_MS + 1_000);
    let o = a.check(&Req::get("/").bearer(&unknown), None, &host);
    assert_eq!(body(&o)["reason"], "unknown_kid");
    assert_eq!(host.calls_to("idp"), 2, "one refetch for the unknown kid");
    host.now_ms.set(NOW_MS + 2_000);
    a.check(&Req::get("/").bearer(&unknown), None, &host);
    assert_eq!(host.calls_to("idp"), 2, "rate-limited");

    // The IdP rotates in a new key; after the rate-limit interval it is picked up.
    *serve.borrow_mut() = rotated;
    let new = token(
        json!({"alg": "RS256", "kid": "new"}),
        claims("a", json!({})),
        Alg::Rs256,
    );
    host.now_ms.set(NOW_MS + 5_000);
    assert_eq!(
        status(&a.check(&Req::get("/").bearer(&new), None, &host)),
        401,
        "still rate-limited"
    );
    host.now_ms.set(NOW_MS + 31_000);
    assert_eq!(
        status(&a.check(&Req::get("/").bearer(&new), None, &host)),
        200
    );
    assert_eq!(host.calls_to("idp"), 3);
}

#[test]
fn jwks_unavailable_is_503_and_stale_keys_survive_failures() {
    let a = authorizer(jwks_config());
    let host = ScriptedHost::new();
    host.answer(|_, _| Err("connect refused".into()));
    let t = token(
        json!({"alg": "ES256", "kid": "e"}),
        claims("a", json!({"exp": NOW + 3600})),
        Alg::Es256,
    );
    let o = a.check(&Req::get("/").bearer(&t), None, &host);
    assert_eq!(
        (status(&o), body(&o)),
        (
            503,
            json!({"error": "unavailable", "reason": "jwks_unavailable"})
        )
    );
    // Backs off: no new attempt within the retry interval.
    a.check(&Req::get("/").bearer(&t), None, &host);
    assert_eq!(host.calls_to("idp"), 1);

    host.now_ms.set(NOW_MS + 5_000);
    let body = jwks_body(&[test_keys::jwk_json(&test_keys::ec_jwk(Some("e")))]);
    host.answer(move |_, _| {
        Ok(CallResponse {
            status: 200,
            headers: vec![],
            body: body.clone(),
        })
    });
    assert_eq!(
        status(&a.check(&Req::get("/").bearer(&t), None, &host)),
        200
    );

    host.now_ms.set(NOW_MS + 400_000);
    host.answer(|_, _| {
        Ok(CallResponse {
            status: 500,
            headers: vec![],
            body: vec![],
        })
    });
    assert_eq!(
        status(&a.check(&Req::get("/").bearer(&t), None, &host)),
        200,
        "stale keys keep working"
    );
}

fn ext_config(extra: Value) -> Value {
    let mut ext = json!({"cluster": "authz", "path_prefix": "/check", "forward_headers": ["x-tenant"], "upstream_headers": ["x-user-id"]});
    for (k, v) in extra.as_object().unwrap() {
        ext[k] = v.clone();
    }
    let mut c = hs_config(json!([{"action": "allow"}]));
    c["ext_authz"] = ext;
    c
}

#[test]
fn ext_authz_allows_denies_and_fails() {
    let a = authorizer(ext_config(json!({})));
    let host = ScriptedHost::new();
    host.answer(|_, req| {
        if req
            .headers
            .iter()
            .any(|(n, v)| n == "x-tenant" && v == "good")
        {
            Ok(CallResponse {
                status: 200,
                headers: vec![("x-user-id".into(), "42".into())],
                body: vec![],
            })
        } else {
            Ok(CallResponse {
                status: 402,
                headers: vec![("x-why".into(), "pay".into())],
                body: b"pay up".to_vec(),
            })
        }
    });
    let t = token(
        json!({"alg": "HS256"}),
        claims("alice", json!({})),
        Alg::Hs256,
    );
    let o = a.check(
        &Req::get("/orders").bearer(&t).with("x-tenant", "good"),
        Some("a=1"),
        &host,
    );
    assert!(
        matches!(&o, Outcome::Allow { upstream_headers, .. } if upstream_headers == &vec![("x-user-id".to_string(), "42".to_string())])
    );
    let (_, sent) = host.calls.borrow().last().cloned().unwrap();
    assert_eq!(sent.path, "/check/orders?a=1");
    assert!(
        sent.headers
            .contains(&("x-weir-principal".into(), "alice".into()))
    );

    let o = a.check(&Req::get("/orders").with("x-tenant", "bad"), None, &host);
    assert_eq!(
        o,
        Outcome::Deny {
            reply: Reply {
                status: 402,
                headers: vec![("x-why".into(), "pay".into())],
                body: b"pay up".to_vec()
            },
            reason: Reason::ExtAuthzDenied,
            rule: None
        }
    );

    host.answer(|_, _| Err("timeout".into()));
    let o = a.check(&Req::get("/"), None, &host);
    assert_eq!(
        (status(&o), body(&o)["reason"].clone()),
        (403, json!("ext_authz_error"))
    );
    let open = authorizer(ext_config(json!({"failure_mode": "open"})));
    let o = open.check(&Req::get("/"), None, &host);
    assert!(matches!(
        o,
        Outcome::Allow {
            reason: Reason::ExtAuthzFailOpen,
            ..
        }
    ));
}

#[test]
fn ext_authz_is_not_asked_when_rules_deny() {
    let mut c = ext_config(json!({}));
    c["rules"] = json!([]);
    let a = authorizer(c);
    let host = ScriptedHost::new();
    assert_eq!(status(&a.check(&Req::get("/"), None, &host)), 401);
    assert_eq!(host.calls_to("authz"), 0);
}
