//! Role-based access rules: an ordered list, evaluated top to bottom; the
//! first rule whose request match AND conditions both hold decides. When
//! none does, the default action (deny unless configured) decides.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::jwt::claim_path;
use crate::reason::Reason;

/// What a rule or the default does.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    /// Let the request through.
    Allow,
    /// Refuse it: 401 when the request carried no credentials, 403 otherwise.
    #[default]
    Deny,
}

/// One rule in `rules`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// A name for logs; defaults to `rules[i]`.
    #[serde(default)]
    pub name: Option<String>,
    /// Which requests the rule is about. Empty matches every request.
    #[serde(default, rename = "match")]
    pub matches: RequestMatch,
    /// Who the rule is about. Empty matches everyone, anonymous included.
    #[serde(default)]
    pub when: Conditions,
    /// What happens when match and conditions hold.
    pub action: RuleAction,
}

/// The request side of a rule. All given fields must match.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RequestMatch {
    /// The path starts with this string (plain prefix, as Envoy: `/admin`
    /// also matches `/administrator`; write `/admin/` to mean the tree).
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// The path equals this string.
    #[serde(default)]
    pub path_exact: Option<String>,
    /// The method is one of these (case-insensitive). Empty: any.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Every listed header matches.
    #[serde(default)]
    pub headers: Vec<HeaderMatch>,
}

/// A header condition: `exact` value, or presence (`present`, default true).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HeaderMatch {
    /// Header name (case-insensitive).
    pub name: String,
    /// The first value equals this.
    #[serde(default)]
    pub exact: Option<String>,
    /// Without `exact`: true requires the header, false requires its absence.
    #[serde(default)]
    pub present: Option<bool>,
}

/// The identity side of a rule. All given fields must hold.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    /// true: any verified credential; false: no credential at all.
    #[serde(default)]
    pub authenticated: Option<bool>,
    /// The principal (from a token or an API key) is one of these.
    #[serde(default)]
    pub principals: Vec<String>,
    /// Authenticated by an API key whose principal is one of these.
    #[serde(default)]
    pub api_key_principals: Vec<String>,
    /// Claims of a verified token; every entry must hold.
    #[serde(default)]
    pub claims: Vec<ClaimCondition>,
}

/// `claim` (dotted path allowed) equals one of `any_of`, or — for an array
/// claim such as `roles` — contains one of them.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClaimCondition {
    /// The claim name, e.g. `roles` or `realm_access.roles`.
    pub claim: String,
    /// Accepted values.
    pub any_of: Vec<String>,
}

/// Who the request is, after verification.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    /// Principal and claims from a verified bearer token.
    pub jwt: Option<(String, Map<String, Value>)>,
    /// Principal of a verified API key.
    pub api_key: Option<String>,
}

impl Identity {
    /// Whether any credential was verified.
    pub fn is_authenticated(&self) -> bool {
        self.jwt.is_some() || self.api_key.is_some()
    }

    /// The principal: the token's when there is one, else the API key's.
    pub fn principal(&self) -> Option<&str> {
        self.jwt
            .as_ref()
            .map(|(p, _)| p.as_str())
            .or(self.api_key.as_deref())
    }
}

/// What the rules decided, with the reason and the deciding rule's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Allow or deny.
    pub action: RuleAction,
    /// [`Reason::AllowedByRule`], [`Reason::DeniedByRule`], [`Reason::DefaultAllow`] or [`Reason::DefaultDeny`].
    pub reason: Reason,
    /// The deciding rule, or `None` for the default.
    pub rule: Option<String>,
}

/// The request fields rules look at.
pub trait RequestFacts {
    /// Upper-case method.
    fn method(&self) -> String;
    /// Path without query.
    fn path(&self) -> String;
    /// First value of a header (name in lower case).
    fn header(&self, name: &str) -> Option<String>;
}

/// Compiled rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    rules: Vec<(String, RuleConfig)>,
    default: RuleAction,
}

impl Rules {
    /// Check and normalise the rules. Errors name the field.
    pub fn compile(rules: &[RuleConfig], default: RuleAction) -> Result<Rules, String> {
        let mut out = Vec::with_capacity(rules.len());
        for (i, rule) in rules.iter().enumerate() {
            let at = format!("rules[{i}]");
            let mut rule = rule.clone();
            let m = &mut rule.matches;
            if m.path_prefix.is_some() && m.path_exact.is_some() {
                return Err(format!(
                    "{at}.match: give path_prefix or path_exact, not both"
                ));
            }
            for (field, p) in [
                ("path_prefix", &m.path_prefix),
                ("path_exact", &m.path_exact),
            ] {
                if let Some(p) = p
                    && !p.starts_with('/')
                {
                    return Err(format!("{at}.match.{field}: must start with `/`"));
                }
            }
            for (j, method) in m.methods.iter_mut().enumerate() {
                if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
                    return Err(format!(
                        "{at}.match.methods[{j}]: `{method}` is not an HTTP method"
                    ));
                }
                *method = method.to_ascii_uppercase();
            }
            for (j, h) in m.headers.iter_mut().enumerate() {
                if h.name.trim().is_empty() {
                    return Err(format!("{at}.match.headers[{j}].name: must not be empty"));
                }
                if h.exact.is_some() && h.present == Some(false) {
                    return Err(format!(
                        "{at}.match.headers[{j}]: `exact` with `present: false` can never match"
                    ));
                }
                h.name = h.name.trim().to_ascii_lowercase();
            }
            for (j, c) in rule.when.claims.iter().enumerate() {
                if c.claim.is_empty() {
                    return Err(format!("{at}.when.claims[{j}].claim: must not be empty"));
                }
                if c.any_of.is_empty() {
                    return Err(format!(
                        "{at}.when.claims[{j}].any_of: list at least one value"
                    ));
                }
            }
            let name = rule.name.clone().unwrap_or(at);
            out.push((name, rule));
        }
        Ok(Rules {
            rules: out,
            default,
        })
    }

    /// The default action.
    pub fn default_action(&self) -> RuleAction {
        self.default
    }

    /// Evaluate: the first rule whose match and conditions hold decides.
    pub fn evaluate(&self, req: &dyn RequestFacts, who: &Identity) -> Verdict {
        let method = req.method().to_ascii_uppercase();
        let path = req.path();
        for (name, rule) in &self.rules {
            if request_matches(&rule.matches, &method, &path, req)
                && conditions_hold(&rule.when, who)
            {
                let reason = match rule.action {
                    RuleAction::Allow => Reason::AllowedByRule,
                    RuleAction::Deny => Reason::DeniedByRule,
                };
                return Verdict {
                    action: rule.action,
                    reason,
                    rule: Some(name.clone()),
                };
            }
        }
        let reason = match self.default {
            RuleAction::Allow => Reason::DefaultAllow,
            RuleAction::Deny => Reason::DefaultDeny,
        };
        Verdict {
            action: self.default,
            reason,
            rule: None,
        }
    }
}

fn request_matches(m: &RequestMatch, method: &str, path: &str, req: &dyn RequestFacts) -> bool {
    if let Some(prefix) = &m.path_prefix
        && !path.starts_with(prefix.as_str())
    {
        return false;
    }
    if let Some(exact) = &m.path_exact
        && path != exact
    {
        return false;
    }
    if !m.methods.is_empty() && !m.methods.iter().any(|x| x == method) {
        return false;
    }
    m.headers.iter().all(|h| {
        let value = req.header(&h.name);
        match (&h.exact, h.present) {
            (Some(exact), _) => value.as_deref() == Some(exact.as_str()),
            (None, Some(false)) => value.is_none(),
            (None, _) => value.is_some(),
        }
    })
}

fn conditions_hold(c: &Conditions, who: &Identity) -> bool {
    if let Some(want) = c.authenticated
        && who.is_authenticated() != want
    {
        return false;
    }
    if !c.principals.is_empty()
        && !who
            .principal()
            .is_some_and(|p| c.principals.iter().any(|x| x == p))
    {
        return false;
    }
    if !c.api_key_principals.is_empty()
        && !who
            .api_key
            .as_deref()
            .is_some_and(|p| c.api_key_principals.iter().any(|x| x == p))
    {
        return false;
    }
    c.claims.iter().all(|cond| {
        let Some((_, claims)) = &who.jwt else {
            return false;
        };
        match claim_path(claims, &cond.claim) {
            Some(Value::String(s)) => cond.any_of.iter().any(|x| x == s),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .any(|s| cond.any_of.iter().any(|x| x == s)),
            Some(Value::Bool(b)) => cond
                .any_of
                .iter()
                .any(|x| x == if *b { "true" } else { "false" }),
            Some(Value::Number(n)) => cond.any_of.iter().any(|x| *x == n.to_string()),
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    struct Req {
        method: &'static str,
        path: &'static str,
        headers: Vec<(&'static str, &'static str)>,
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
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    fn req(method: &'static str, path: &'static str) -> Req {
        Req {
            method,
            path,
            headers: vec![],
        }
    }

    fn rules(v: serde_json::Value, default: RuleAction) -> Rules {
        let parsed: Vec<RuleConfig> = serde_json::from_value(v).unwrap();
        Rules::compile(&parsed, default).unwrap()
    }

    fn jwt(principal: &str, claims: serde_json::Value) -> Identity {
        Identity {
            jwt: Some((principal.into(), claims.as_object().unwrap().clone())),
            api_key: None,
        }
    }

    #[test]
    fn default_deny_and_default_allow() {
        let r = rules(json!([]), RuleAction::default());
        let v = r.evaluate(&req("GET", "/"), &Identity::default());
        assert_eq!(
            (v.action, v.reason, v.rule),
            (RuleAction::Deny, Reason::DefaultDeny, None)
        );
        let r = rules(json!([]), RuleAction::Allow);
        assert_eq!(
            r.evaluate(&req("GET", "/"), &Identity::default()).reason,
            Reason::DefaultAllow
        );
    }

    #[test]
    fn first_match_wins() {
        let r = rules(
            json!([
                {"name": "block-delete", "match": {"path_prefix": "/api/", "methods": ["delete"]}, "action": "deny"},
                {"name": "api", "match": {"path_prefix": "/api/"}, "when": {"authenticated": true}, "action": "allow"},
                {"name": "catch-all-allow", "action": "allow"},
            ]),
            RuleAction::Deny,
        );
        let alice = jwt("alice", json!({}));
        let v = r.evaluate(&req("DELETE", "/api/x"), &alice);
        assert_eq!(
            (v.action, v.rule.as_deref()),
            (RuleAction::Deny, Some("block-delete"))
        );
        let v = r.evaluate(&req("GET", "/api/x"), &alice);
        assert_eq!(
            (v.action, v.rule.as_deref()),
            (RuleAction::Allow, Some("api"))
        );
        // The second rule's condition fails for anonymous, so the third decides.
        let v = r.evaluate(&req("GET", "/api/x"), &Identity::default());
        assert_eq!(v.rule.as_deref(), Some("catch-all-allow"));
    }

    #[test]
    fn path_exact_prefix_and_headers() {
        let r = rules(
            json!([
                {"match": {"path_exact": "/health"}, "action": "allow"},
                {"match": {"path_prefix": "/internal", "headers": [{"name": "X-Debug", "exact": "1"}]}, "action": "allow"},
                {"match": {"headers": [{"name": "x-canary"}]}, "action": "allow"},
                {"match": {"headers": [{"name": "cookie", "present": false}], "path_prefix": "/nocookie"}, "action": "allow"},
            ]),
            RuleAction::Deny,
        );
        let anon = Identity::default();
        assert_eq!(
            r.evaluate(&req("GET", "/health"), &anon).rule.as_deref(),
            Some("rules[0]")
        );
        assert_eq!(
            r.evaluate(&req("GET", "/healthz"), &anon).action,
            RuleAction::Deny
        );
        let with_debug = Req {
            method: "GET",
            path: "/internal/x",
            headers: vec![("x-debug", "1")],
        };
        assert_eq!(
            r.evaluate(&with_debug, &anon).rule.as_deref(),
            Some("rules[1]")
        );
        let wrong_value = Req {
            method: "GET",
            path: "/internal/x",
            headers: vec![("x-debug", "2")],
        };
        assert_eq!(r.evaluate(&wrong_value, &anon).action, RuleAction::Deny);
        let canary = Req {
            method: "GET",
            path: "/x",
            headers: vec![("x-canary", "")],
        };
        assert_eq!(r.evaluate(&canary, &anon).rule.as_deref(), Some("rules[2]"));
        assert_eq!(
            r.evaluate(&req("GET", "/nocookie"), &anon).rule.as_deref(),
            Some("rules[3]")
        );
        let with_cookie = Req {
            method: "GET",
            path: "/nocookie",
            headers: vec![("cookie", "a=b")],
        };
        assert_eq!(r.evaluate(&with_cookie, &anon).action, RuleAction::Deny);
    }

    #[test]
    fn claim_conditions_string_and_array() {
        let r = rules(
            json!([{"match": {"path_prefix": "/admin"}, "when": {"claims": [{"claim": "roles", "any_of": ["admin"]}]}, "action": "allow"}]),
            RuleAction::Deny,
        );
        let admin_array = jwt("a", json!({"roles": ["user", "admin"]}));
        let admin_string = jwt("a", json!({"roles": "admin"}));
        let user = jwt("u", json!({"roles": ["user"]}));
        let no_roles = jwt("u", json!({}));
        let key_only = Identity {
            jwt: None,
            api_key: Some("admin".into()),
        };
        assert_eq!(
            r.evaluate(&req("GET", "/admin"), &admin_array).action,
            RuleAction::Allow
        );
        assert_eq!(
            r.evaluate(&req("GET", "/admin"), &admin_string).action,
            RuleAction::Allow
        );
        assert_eq!(
            r.evaluate(&req("GET", "/admin"), &user).action,
            RuleAction::Deny
        );
        assert_eq!(
            r.evaluate(&req("GET", "/admin"), &no_roles).action,
            RuleAction::Deny
        );
        assert_eq!(
            r.evaluate(&req("GET", "/admin"), &key_only).action,
            RuleAction::Deny
        );

        let nested = rules(
            json!([{"when": {"claims": [{"claim": "realm_access.roles", "any_of": ["ops"]}, {"claim": "email_verified", "any_of": ["true"]}]}, "action": "allow"}]),
            RuleAction::Deny,
        );
        let ok = jwt(
            "o",
            json!({"realm_access": {"roles": ["ops"]}, "email_verified": true}),
        );
        let unverified = jwt(
            "o",
            json!({"realm_access": {"roles": ["ops"]}, "email_verified": false}),
        );
        assert_eq!(
            nested.evaluate(&req("GET", "/"), &ok).action,
            RuleAction::Allow
        );
        assert_eq!(
            nested.evaluate(&req("GET", "/"), &unverified).action,
            RuleAction::Deny
        );
    }

    #[test]
    fn principal_and_api_key_conditions() {
        let r = rules(
            json!([
                {"name": "svc", "when": {"api_key_principals": ["svc-a"]}, "action": "allow"},
                {"name": "people", "when": {"principals": ["alice"]}, "action": "allow"},
                {"name": "anon-only", "when": {"authenticated": false}, "match": {"path_prefix": "/login"}, "action": "allow"},
            ]),
            RuleAction::Deny,
        );
        let svc = Identity {
            jwt: None,
            api_key: Some("svc-a".into()),
        };
        let alice_key = Identity {
            jwt: None,
            api_key: Some("alice".into()),
        };
        let alice_jwt = jwt("alice", json!({}));
        let bob = jwt("bob", json!({}));
        assert_eq!(
            r.evaluate(&req("GET", "/"), &svc).rule.as_deref(),
            Some("svc")
        );
        assert_eq!(
            r.evaluate(&req("GET", "/"), &alice_key).rule.as_deref(),
            Some("people")
        );
        assert_eq!(
            r.evaluate(&req("GET", "/"), &alice_jwt).rule.as_deref(),
            Some("people")
        );
        assert_eq!(r.evaluate(&req("GET", "/"), &bob).action, RuleAction::Deny);
        assert_eq!(
            r.evaluate(&req("GET", "/login"), &Identity::default())
                .rule
                .as_deref(),
            Some("anon-only")
        );
        assert_eq!(
            r.evaluate(&req("GET", "/login"), &bob).action,
            RuleAction::Deny
        );
    }

    #[test]
    fn compile_errors_name_the_field() {
        let bad = |v: serde_json::Value| {
            let parsed: Vec<RuleConfig> = serde_json::from_value(v).unwrap();
            Rules::compile(&parsed, RuleAction::Deny).unwrap_err()
        };
        assert!(
            bad(json!([{"action": "allow"}, {"match": {"path_prefix": "x"}, "action": "allow"}]))
                .starts_with("rules[1].match.path_prefix")
        );
        assert!(
            bad(json!([{"match": {"path_prefix": "/a", "path_exact": "/a"}, "action": "allow"}]))
                .starts_with("rules[0].match")
        );
        assert!(
            bad(json!([{"match": {"methods": ["GE T"]}, "action": "allow"}]))
                .starts_with("rules[0].match.methods[0]")
        );
        assert!(
            bad(json!([{"match": {"headers": [{"name": ""}]}, "action": "allow"}]))
                .starts_with("rules[0].match.headers[0].name")
        );
        assert!(
            bad(
                json!([{"when": {"claims": [{"claim": "roles", "any_of": []}]}, "action": "allow"}])
            )
            .starts_with("rules[0].when.claims[0].any_of")
        );
    }
}
