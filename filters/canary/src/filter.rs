//! The filter glue: assignment ([`crate::assign`]) and rollout state
//! ([`crate::state`]) applied through the SDK, with the KV store as the
//! shared state.

use std::time::Duration;

use weir_sdk::prelude::*;
use weir_sdk::{kv, metrics, random, time};

use crate::assign::{self, Basis, RequestFacts, Variant};
use crate::config::{CanaryConfig, Settings};
use crate::state::{self, Keys, Store};

/// The canary filter.
pub struct Canary {
    settings: Settings,
    keys: Keys,
    /// Request property holding the assigned variant.
    variant_property: String,
    /// Request property asking the response phase to set the pin cookie.
    pin_property: String,
}

struct Facts<'a, 'r>(&'a Request<'r>);

impl RequestFacts for Facts<'_, '_> {
    fn header(&self, name: &str) -> Option<String> {
        self.0.header(name)
    }
    fn header_all(&self, name: &str) -> Vec<String> {
        self.0.header_all(name)
    }
}

/// The proxy's process-wide KV store.
struct SharedKv;

impl Store for SharedKv {
    fn get(&self, key: &str) -> Option<String> {
        kv::get(key).and_then(|e| e.text().map(str::to_string))
    }
    fn insert_if_absent(&self, key: &str, value: &str) -> bool {
        kv::compare_and_swap(key, None, value, None).is_some()
    }
    fn increment(&self, key: &str, delta: i64, ttl_ms: Option<u64>) -> i64 {
        kv::increment(key, delta, ttl_ms.map(Duration::from_millis))
    }
}

impl Canary {
    fn cluster(&self, v: Variant) -> &str {
        match v {
            Variant::Stable => &self.settings.stable_cluster,
            Variant::Canary => &self.settings.canary_cluster,
        }
    }
}

#[weir_sdk::filter]
impl Filter for Canary {
    type Config = CanaryConfig;

    fn new(config: CanaryConfig) -> Result<Self> {
        let settings = Settings::compile(config).map_err(Error::config)?;
        let keys = Keys::new(&settings.experiment);
        let variant_property = format!("weir.canary.{}.variant", settings.experiment);
        let pin_property = format!("weir.canary.{}.pin", settings.experiment);
        Ok(Canary {
            settings,
            keys,
            variant_property,
            pin_property,
        })
    }

    fn on_request_headers(&self, req: &mut Request) -> Result<Action> {
        let now = time::unix_ms();
        let effective = state::effective(&self.settings, &self.keys, &SharedKv, now);
        metrics::gauge_set("canary_weight_bp", &[], i64::from(effective.weight));
        let (variant, basis) = assign::assign(
            &self.settings,
            &Facts(req),
            effective.weight,
            effective.rolled_back,
            &mut random::u64,
        );
        req.set_cluster(self.cluster(variant))?;
        req.set_property(&self.variant_property, variant.as_str());
        if basis == Basis::Random && self.settings.pin_cookie.is_some() {
            req.set_property(&self.pin_property, "1");
        }
        metrics::counter_inc(
            "canary_requests_total",
            &[("variant", variant.as_str()), ("basis", basis.as_str())],
        );
        Ok(Action::Continue)
    }

    fn on_response_headers(&self, req: &mut Request, resp: &mut Response) -> Result<Action> {
        let Some(variant) = req
            .property(&self.variant_property)
            .as_deref()
            .and_then(Variant::parse)
        else {
            return Ok(Action::Continue);
        };
        if let Some(header) = &self.settings.variant_header {
            resp.set_header(header, variant.as_str())?;
        }
        if let Some(pin) = &self.settings.pin_cookie
            && req.property(&self.pin_property).is_some()
        {
            resp.add_header("set-cookie", &assign::pin_cookie_header(pin, variant))?;
        }
        Ok(Action::Continue)
    }

    fn on_done(&self, req: &Request, summary: &Summary) {
        let Some(variant) = req
            .property(&self.variant_property)
            .as_deref()
            .and_then(Variant::parse)
        else {
            return;
        };
        let class = match summary.status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        metrics::counter_inc(
            "canary_responses_total",
            &[("variant", variant.as_str()), ("class", class)],
        );
        // Only answers that came from the canary count against it; a local
        // answer (another filter, the proxy) says nothing about its health.
        if variant != Variant::Canary || summary.local_response {
            return;
        }
        let now = time::unix_ms();
        if let Some(event) = state::record_canary_response(
            &self.settings,
            &self.keys,
            &SharedKv,
            now,
            summary.status,
        ) {
            metrics::counter_inc("canary_rollbacks_total", &[]);
            weir_sdk::warn!(
                "canary `{}` rolled back: {} of {} responses were 5xx",
                self.settings.experiment,
                event.errors,
                event.total
            );
        }
    }
}
