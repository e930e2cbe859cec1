//! External authorization over HTTP (in the manner of Envoy's HTTP
//! ext_authz): build the check request, read the verdict.

use std::time::Duration;

use serde::Deserialize;

use crate::rbac::RequestFacts;

/// `ext_authz` in the filter config.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExtAuthzConfig {
    /// The cluster (from the proxy config) that answers checks.
    pub cluster: String,
    /// Prepended to the original path: `/check` + `/orders/7?x=1`. Default empty.
    #[serde(default)]
    pub path_prefix: String,
    /// Give up after this long. Default 200ms.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Request headers copied to the check request (e.g. `authorization`, `cookie`).
    #[serde(default)]
    pub forward_headers: Vec<String>,
    /// Headers of a 2xx check response copied onto the upstream request.
    #[serde(default)]
    pub upstream_headers: Vec<String>,
    /// On timeout or connection failure: `closed` (default) answers
    /// `status_on_error`; `open` lets the request through.
    #[serde(default)]
    pub failure_mode: FailureMode,
    /// Status answered when the service fails and `failure_mode` is `closed`. Default 403.
    #[serde(default = "default_status_on_error")]
    pub status_on_error: u16,
}

/// What a failed check does.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    /// Refuse the request.
    #[default]
    Closed,
    /// Let it through (counted as `ext_authz_fail_open`).
    Open,
}

fn default_timeout() -> Duration {
    Duration::from_millis(200)
}

fn default_status_on_error() -> u16 {
    403
}

impl ExtAuthzConfig {
    /// Check and normalise. Errors name the field.
    pub fn compile(mut self) -> Result<ExtAuthzConfig, String> {
        if self.cluster.trim().is_empty() {
            return Err("ext_authz.cluster: must not be empty".into());
        }
        if !self.path_prefix.is_empty() && !self.path_prefix.starts_with('/') {
            return Err("ext_authz.path_prefix: must start with `/`".into());
        }
        let ms = self.timeout.as_millis();
        if ms == 0 || ms > u32::MAX as u128 {
            return Err("ext_authz.timeout: must be between 1ms and ~49 days".into());
        }
        if !(100..=599).contains(&self.status_on_error) {
            return Err("ext_authz.status_on_error: must be an HTTP status (100-599)".into());
        }
        for (field, list) in [
            ("forward_headers", &mut self.forward_headers),
            ("upstream_headers", &mut self.upstream_headers),
        ] {
            for (i, h) in list.iter_mut().enumerate() {
                *h = h.trim().to_ascii_lowercase();
                if h.is_empty() {
                    return Err(format!("ext_authz.{field}[{i}]: must not be empty"));
                }
            }
        }
        Ok(self)
    }

    /// The check request for `req`: same method, `path_prefix` + original
    /// path and query, the forwarded headers, the verified principal in
    /// `principal_header` when there is one, and an empty body.
    pub fn check_request(
        &self,
        req: &dyn RequestFacts,
        query: Option<&str>,
        principal: Option<(&str, &str)>,
    ) -> CallRequest {
        let mut path = format!("{}{}", self.path_prefix, req.path());
        if let Some(q) = query {
            path.push('?');
            path.push_str(q);
        }
        let mut headers: Vec<(String, String)> = self
            .forward_headers
            .iter()
            .filter_map(|h| req.header(h).map(|v| (h.clone(), v)))
            .collect();
        if let Some((name, value)) = principal {
            headers.push((name.to_string(), value.to_string()));
        }
        CallRequest {
            method: req.method(),
            path,
            headers,
            timeout_ms: self.timeout.as_millis() as u32,
        }
    }

    /// Read the service's answer.
    pub fn verdict(&self, answer: Result<CallResponse, String>) -> CheckVerdict {
        match answer {
            Ok(resp) if (200..300).contains(&resp.status) => {
                let copy = self
                    .upstream_headers
                    .iter()
                    .flat_map(|name| {
                        resp.headers
                            .iter()
                            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
                            .map(|(_, v)| (name.clone(), v.clone()))
                    })
                    .collect();
                CheckVerdict::Allow {
                    upstream_headers: copy,
                }
            }
            Ok(resp) => {
                let headers = resp
                    .headers
                    .into_iter()
                    .filter(|(n, _)| !is_hop_by_hop(n))
                    .collect();
                CheckVerdict::Deny {
                    status: resp.status,
                    headers,
                    body: resp.body,
                }
            }
            Err(error) => match self.failure_mode {
                FailureMode::Open => CheckVerdict::FailOpen { error },
                FailureMode::Closed => CheckVerdict::Error {
                    status: self.status_on_error,
                    error,
                },
            },
        }
    }
}

fn is_hop_by_hop(name: &str) -> bool {
    const HOP: [&str; 9] = [
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    ];
    HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// An HTTP callout request (an ext_authz check or a JWKS fetch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRequest {
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Callout timeout.
    pub timeout_ms: u32,
}

/// An HTTP callout response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallResponse {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

/// What to do with the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckVerdict {
    /// 2xx: continue, adding these headers upstream.
    Allow {
        /// Copied from the check response.
        upstream_headers: Vec<(String, String)>,
    },
    /// Non-2xx: answer the client with the service's response.
    Deny {
        /// The service's status.
        status: u16,
        /// Its headers, less hop-by-hop ones.
        headers: Vec<(String, String)>,
        /// Its body.
        body: Vec<u8>,
    },
    /// The call failed; fail closed with this status.
    Error {
        /// `status_on_error`.
        status: u16,
        /// What went wrong.
        error: String,
    },
    /// The call failed; fail open.
    FailOpen {
        /// What went wrong.
        error: String,
    },
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    struct Req;
    impl RequestFacts for Req {
        fn method(&self) -> String {
            "POST".into()
        }
        fn path(&self) -> String {
            "/orders/7".into()
        }
        fn header(&self, name: &str) -> Option<String> {
            (name == "authorization").then(|| "Bearer t".into())
        }
    }

    fn config(v: serde_json::Value) -> Result<ExtAuthzConfig, String> {
        serde_json::from_value::<ExtAuthzConfig>(v)
            .unwrap()
            .compile()
    }

    #[test]
    fn builds_the_check_request() {
        let c = config(json!({"cluster": "authz", "path_prefix": "/check", "forward_headers": ["Authorization", "cookie"], "timeout": "150ms"})).unwrap();
        let r = c.check_request(&Req, Some("x=1"), Some(("x-weir-principal", "alice")));
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/check/orders/7?x=1");
        assert_eq!(
            r.headers,
            vec![
                ("authorization".to_string(), "Bearer t".to_string()),
                ("x-weir-principal".into(), "alice".into())
            ],
            "absent cookie is skipped"
        );
        assert_eq!(r.timeout_ms, 150);
    }

    #[test]
    fn verdicts() {
        let c = config(json!({"cluster": "authz", "upstream_headers": ["X-User-Id"]})).unwrap();
        let ok = CallResponse {
            status: 204,
            headers: vec![
                ("x-user-id".into(), "42".into()),
                ("x-other".into(), "no".into()),
            ],
            body: vec![],
        };
        assert_eq!(
            c.verdict(Ok(ok)),
            CheckVerdict::Allow {
                upstream_headers: vec![("x-user-id".into(), "42".into())]
            }
        );
        let no = CallResponse {
            status: 401,
            headers: vec![
                ("www-authenticate".into(), "Basic".into()),
                ("transfer-encoding".into(), "chunked".into()),
            ],
            body: b"nope".to_vec(),
        };
        assert_eq!(
            c.verdict(Ok(no)),
            CheckVerdict::Deny {
                status: 401,
                headers: vec![("www-authenticate".into(), "Basic".into())],
                body: b"nope".to_vec()
            }
        );
        assert_eq!(
            c.verdict(Err("timeout".into())),
            CheckVerdict::Error {
                status: 403,
                error: "timeout".into()
            }
        );
        let open = config(json!({"cluster": "authz", "failure_mode": "open"})).unwrap();
        assert_eq!(
            open.verdict(Err("timeout".into())),
            CheckVerdict::FailOpen {
                error: "timeout".into()
            }
        );
    }

    #[test]
    fn config_errors_name_the_field() {
        assert!(
            config(json!({"cluster": ""}))
                .unwrap_err()
                .starts_with("ext_authz.cluster")
        );
        assert!(
            config(json!({"cluster": "a", "path_prefix": "check"}))
                .unwrap_err()
                .starts_with("ext_authz.path_prefix")
        );
        assert!(
            config(json!({"cluster": "a", "timeout": "0s"}))
                .unwrap_err()
                .starts_with("ext_authz.timeout")
        );
        assert!(
            config(json!({"cluster": "a", "status_on_error": 42}))
                .unwrap_err()
                .starts_with("ext_authz.status_on_error")
        );
        assert!(
            config(json!({"cluster": "a", "upstream_headers": [" "]}))
                .unwrap_err()
                .starts_with("ext_authz.upstream_headers[0]")
        );
    }
}
