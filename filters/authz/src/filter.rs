//! The filter glue: maps the SDK's request and host services onto
//! [`crate::engine`] and applies its decision.

use std::time::Duration;

use weir_sdk::http::{self, OutgoingRequest};
use weir_sdk::prelude::*;
use weir_sdk::{metrics, time};

use crate::config::{AuthzConfig, Settings};
use crate::engine::{Authorizer, Host, Outcome};
use crate::ext_authz::{CallRequest, CallResponse};
use crate::rbac::RequestFacts;

/// The authorization filter.
pub struct Authz {
    engine: Authorizer,
}

struct Facts<'a, 'r>(&'a Request<'r>);

impl RequestFacts for Facts<'_, '_> {
    fn method(&self) -> String {
        self.0.method()
    }
    fn path(&self) -> String {
        self.0.path()
    }
    fn header(&self, name: &str) -> Option<String> {
        self.0.header(name)
    }
}

/// The proxy: its clock and HTTP callouts.
struct Proxy;

impl Host for Proxy {
    fn now_ms(&self) -> u64 {
        time::unix_ms()
    }

    fn call(
        &self,
        cluster: &str,
        request: &CallRequest,
    ) -> std::result::Result<CallResponse, String> {
        let mut out = OutgoingRequest::new(request.method.clone(), request.path.clone())
            .timeout(Duration::from_millis(u64::from(request.timeout_ms)));
        for (name, value) in &request.headers {
            out = out.header(name.clone(), value.clone());
        }
        let resp = http::call(cluster, out).map_err(|e| e.to_string())?;
        Ok(CallResponse {
            status: resp.status,
            headers: resp.headers,
            body: resp.body,
        })
    }
}

#[weir_sdk::filter]
impl Filter for Authz {
    type Config = AuthzConfig;

    fn new(config: AuthzConfig) -> Result<Self> {
        let settings = Settings::compile(config).map_err(Error::config)?;
        Ok(Authz {
            engine: Authorizer::new(settings),
        })
    }

    fn on_request_headers(&self, req: &mut Request) -> Result<Action> {
        let principal_header = &self.engine.settings().principal_header;
        // Never trust an incoming copy: only this filter sets the principal.
        req.remove_header(principal_header);
        let query = req.query();
        match self.engine.check(&Facts(req), query.as_deref(), &Proxy) {
            Outcome::Allow {
                principal,
                reason,
                rule,
                upstream_headers,
            } => {
                if let Some(principal) = principal {
                    req.set_header(principal_header, &principal)?;
                }
                for (name, value) in upstream_headers {
                    req.set_header(&name, &value)?;
                }
                metrics::counter_inc("authz_allowed_total", &[("reason", reason.as_str())]);
                weir_sdk::debug!(
                    "allowed ({reason}, rule {})",
                    rule.as_deref().unwrap_or("-")
                );
                Ok(Action::Continue)
            }
            Outcome::Deny {
                reply,
                reason,
                rule,
            } => {
                metrics::counter_inc("authz_denied_total", &[("reason", reason.as_str())]);
                weir_sdk::debug!(
                    "denied {} ({reason}, rule {})",
                    reply.status,
                    rule.as_deref().unwrap_or("-")
                );
                Ok(Action::Respond(LocalResponse {
                    status: reply.status,
                    headers: reply.headers,
                    body: reply.body,
                }))
            }
        }
    }
}
