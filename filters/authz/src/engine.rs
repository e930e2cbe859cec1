//! The authorization decision for one request: authenticate (bearer token,
//! API key), evaluate the rules, ask the external service. Independent of
//! the SDK: the host is reached through [`Host`], the request through
//! [`RequestFacts`], so the whole flow is testable natively.

use std::sync::Mutex;

use serde_json::json;

use crate::config::{RemoteJwks, Settings};
use crate::ext_authz::{CallRequest, CallResponse, CheckVerdict};
use crate::jwks::{JwksCache, parse_jwks};
use crate::jwt::{self, ParsedToken};
use crate::keys::KeyEntry;
use crate::rbac::{Identity, RequestFacts, RuleAction};
use crate::reason::Reason;

/// What the engine needs from the proxy.
pub trait Host {
    /// Wall-clock time, Unix milliseconds.
    fn now_ms(&self) -> u64;
    /// An HTTP call to a cluster; `Err` describes a failed call (timeout,
    /// connect error, unknown cluster).
    fn call(&self, cluster: &str, request: &CallRequest) -> Result<CallResponse, String>;
}

/// A response the filter answers with instead of the upstream's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

/// The decision for one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Forward the request.
    Allow {
        /// The verified principal, set in the principal header.
        principal: Option<String>,
        /// Why (a rule, the default, or ext_authz failing open).
        reason: Reason,
        /// The deciding rule's name.
        rule: Option<String>,
        /// Headers to set on the upstream request (from ext_authz).
        upstream_headers: Vec<(String, String)>,
    },
    /// Answer with `reply`.
    Deny {
        /// The response.
        reply: Reply,
        /// Why.
        reason: Reason,
        /// The deciding rule's name, if a rule decided.
        rule: Option<String>,
    },
}

/// Settings plus the per-instance JWKS cache.
#[derive(Debug)]
pub struct Authorizer {
    settings: Settings,
    jwks: Mutex<JwksCache>,
}

impl Authorizer {
    /// An authorizer for checked settings.
    pub fn new(settings: Settings) -> Authorizer {
        Authorizer {
            settings,
            jwks: Mutex::new(JwksCache::default()),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Decide on a request. `query` is the query string without `?`.
    pub fn check(&self, req: &dyn RequestFacts, query: Option<&str>, host: &dyn Host) -> Outcome {
        let who = match self.authenticate(req, host) {
            Ok(who) => who,
            Err(Reason::JwksUnavailable) => {
                return self.deny(503, Reason::JwksUnavailable, None, vec![]);
            }
            Err(reason) => return self.deny(401, reason, None, self.challenge(Some(reason))),
        };
        let verdict = self.settings.rules.evaluate(req, &who);
        if verdict.action == RuleAction::Deny {
            return if who.is_authenticated() {
                self.deny(403, verdict.reason, verdict.rule, vec![])
            } else {
                self.deny(
                    401,
                    Reason::MissingCredentials,
                    verdict.rule,
                    self.challenge(None),
                )
            };
        }
        let principal = who.principal().map(str::to_string);
        let Some(ext) = &self.settings.ext_authz else {
            return Outcome::Allow {
                principal,
                reason: verdict.reason,
                rule: verdict.rule,
                upstream_headers: vec![],
            };
        };
        let check = ext.check_request(
            req,
            query,
            principal
                .as_deref()
                .map(|p| (self.settings.principal_header.as_str(), p)),
        );
        match ext.verdict(host.call(&ext.cluster, &check)) {
            CheckVerdict::Allow { upstream_headers } => Outcome::Allow {
                principal,
                reason: verdict.reason,
                rule: verdict.rule,
                upstream_headers,
            },
            CheckVerdict::FailOpen { .. } => Outcome::Allow {
                principal,
                reason: Reason::ExtAuthzFailOpen,
                rule: verdict.rule,
                upstream_headers: vec![],
            },
            CheckVerdict::Deny {
                status,
                headers,
                body,
            } => Outcome::Deny {
                reply: Reply {
                    status,
                    headers,
                    body,
                },
                reason: Reason::ExtAuthzDenied,
                rule: None,
            },
            CheckVerdict::Error { status, .. } => {
                self.deny(status, Reason::ExtAuthzError, None, vec![])
            }
        }
    }

    /// Verify whatever credentials the request carries. Presented but
    /// invalid credentials are an error even where a rule would let
    /// anonymous requests in.
    fn authenticate(&self, req: &dyn RequestFacts, host: &dyn Host) -> Result<Identity, Reason> {
        let mut who = Identity::default();
        if let Some(jwt) = &self.settings.jwt
            && let Some(authorization) = req.header("authorization")
            && let Some(token) = bearer_token(&authorization)?
        {
            let parsed = jwt::parse(token)?;
            self.verify_signature(&parsed, &jwt.static_keys, jwt.remote.as_ref(), host)?;
            let principal = jwt::validate_claims(&parsed.claims, &jwt.claims, host.now_ms())?;
            who.jwt = Some((principal, parsed.claims));
        }
        if let Some(keys) = &self.settings.api_keys
            && let Some(presented) = req.header(keys.header())
        {
            let principal = keys.lookup(&presented).ok_or(Reason::InvalidApiKey)?;
            who.api_key = Some(principal.to_string());
        }
        Ok(who)
    }

    fn verify_signature(
        &self,
        token: &ParsedToken<'_>,
        static_keys: &[KeyEntry],
        remote: Option<&RemoteJwks>,
        host: &dyn Host,
    ) -> Result<(), Reason> {
        let Some(remote) = remote else {
            return jwt::verify_signature(token, static_keys);
        };
        let now = host.now_ms();
        let due = self.cache().fetch_due(now, &remote.policy);
        if due {
            self.fetch(remote, host);
        }
        let first = self.verify_with_cache(token, static_keys);
        if first != Err(Reason::UnknownKid) {
            return self.unavailable_if_no_keys(first, static_keys);
        }
        // A key rotated in since the last fetch: refetch once, rate-limited.
        if !due && self.cache().take_kid_refetch(now, &remote.policy) {
            self.fetch(remote, host);
            let second = self.verify_with_cache(token, static_keys);
            return self.unavailable_if_no_keys(second, static_keys);
        }
        self.unavailable_if_no_keys(first, static_keys)
    }

    fn verify_with_cache(
        &self,
        token: &ParsedToken<'_>,
        static_keys: &[KeyEntry],
    ) -> Result<(), Reason> {
        let cache = self.cache();
        jwt::verify_signature_any(token, static_keys.iter().chain(cache.keys()))
    }

    fn unavailable_if_no_keys(
        &self,
        result: Result<(), Reason>,
        static_keys: &[KeyEntry],
    ) -> Result<(), Reason> {
        match result {
            Err(_) if static_keys.is_empty() && self.cache().keys().is_empty() => {
                Err(Reason::JwksUnavailable)
            }
            other => other,
        }
    }

    fn fetch(&self, remote: &RemoteJwks, host: &dyn Host) {
        let request = CallRequest {
            method: "GET".into(),
            path: remote.path.clone(),
            headers: vec![("accept".into(), "application/json".into())],
            timeout_ms: remote.timeout_ms,
        };
        let result = match host.call(&remote.cluster, &request) {
            Ok(resp) if (200..300).contains(&resp.status) => parse_jwks(&resp.body),
            Ok(resp) => Err(format!("JWKS fetch answered {}", resp.status)),
            Err(e) => Err(format!("JWKS fetch failed: {e}")),
        };
        let now = host.now_ms();
        // A failure keeps the previous keys; the cache backs off by itself.
        let _ = self.cache().record(now, result);
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, JwksCache> {
        // A panic while holding the lock leaves a cache that is still consistent.
        self.jwks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn challenge(&self, invalid: Option<Reason>) -> Vec<(String, String)> {
        let realm = &self.settings.realm;
        let value = match (&self.settings.jwt, &self.settings.api_keys, invalid) {
            (None, Some(keys), _) => {
                format!("ApiKey realm=\"{realm}\", header=\"{}\"", keys.header())
            }
            (_, _, Some(reason)) if reason != Reason::InvalidApiKey => {
                format!(
                    "Bearer realm=\"{realm}\", error=\"invalid_token\", error_description=\"{reason}\""
                )
            }
            _ => format!("Bearer realm=\"{realm}\""),
        };
        vec![("www-authenticate".into(), value)]
    }

    fn deny(
        &self,
        status: u16,
        reason: Reason,
        rule: Option<String>,
        mut headers: Vec<(String, String)>,
    ) -> Outcome {
        let error = match status {
            401 => "unauthorized",
            403 => "forbidden",
            503 => "unavailable",
            _ => "denied",
        };
        headers.push(("content-type".into(), "application/json".into()));
        headers.push(("cache-control".into(), "no-store".into()));
        let body = json!({ "error": error, "reason": reason.as_str() })
            .to_string()
            .into_bytes();
        Outcome::Deny {
            reply: Reply {
                status,
                headers,
                body,
            },
            reason,
            rule,
        }
    }
}

/// The token of `Bearer <token>`; `Ok(None)` for another scheme (not ours),
/// an error for `Bearer` without a token.
fn bearer_token(authorization: &str) -> Result<Option<&str>, Reason> {
    let value = authorization.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    let token = rest.trim();
    if token.is_empty() || token.contains(' ') {
        return Err(Reason::MalformedAuthorization);
    }
    Ok(Some(token))
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
