//! The filter glue: applies the fault chosen by [`crate::plan`] through the SDK.

use weir_sdk::prelude::*;
use weir_sdk::{kv, metrics, random};

use crate::config::FaultConfig;
use crate::plan::{self, Fault as Chosen, RequestFacts};

/// The fault-injection filter.
pub struct Fault {
    config: FaultConfig,
    /// KV counter of active faults (with `max_active`).
    active_key: String,
    /// Request property marking a fault counted in `active_key`.
    counted_property: String,
}

struct Facts<'a, 'r>(&'a Request<'r>);

impl RequestFacts for Facts<'_, '_> {
    fn path(&self) -> String {
        self.0.path()
    }
    fn header(&self, name: &str) -> Option<String> {
        self.0.header(name)
    }
}

#[weir_sdk::filter]
impl Filter for Fault {
    type Config = FaultConfig;

    fn new(config: FaultConfig) -> Result<Self> {
        let config = config.validate().map_err(Error::config)?;
        let active_key = format!("{}.active", config.kv_prefix);
        let counted_property = format!("{}.counted", config.kv_prefix);
        Ok(Fault {
            config,
            active_key,
            counted_property,
        })
    }

    fn on_request_headers(&self, req: &mut Request) -> Result<Action> {
        let Some(fault) = plan::choose(&self.config, &Facts(req), &mut random::u64) else {
            return Ok(Action::Continue);
        };
        if let Some(cap) = self.config.max_active {
            let active = kv::increment(&self.active_key, 1, None);
            if active > i64::from(cap) {
                kv::increment(&self.active_key, -1, None);
                metrics::counter_inc("fault_skipped_total", &[("reason", "max_active")]);
                return Ok(Action::Continue);
            }
            // Decremented in on_done, which runs for every exchange.
            req.set_property(&self.counted_property, "1");
        }
        Ok(match fault {
            Chosen::Abort(reply) => {
                metrics::counter_inc("fault_aborts_total", &[("status", &reply.label)]);
                Action::Respond(LocalResponse {
                    status: reply.status,
                    headers: reply.headers,
                    body: reply.body,
                })
            }
            Chosen::Delay(ms) => {
                metrics::counter_inc("fault_delays_total", &[]);
                Action::Delay(ms)
            }
        })
    }

    fn on_done(&self, req: &Request, _summary: &Summary) {
        if req.property(&self.counted_property).is_some() {
            kv::increment(&self.active_key, -1, None);
        }
    }
}
