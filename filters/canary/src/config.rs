//! The canary filter's JSON configuration and its checks. Every error names
//! the field it is about.

use std::time::Duration;

use serde::Deserialize;

/// Buckets users are hashed into; weights are in hundredths of a percent.
pub const BUCKETS: u32 = 10_000;

/// The whole filter configuration.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CanaryConfig {
    /// The cluster that serves everyone not on the canary.
    pub stable: StableConfig,
    /// The canary cluster and its share.
    pub canary: CanaryTarget,
    /// Where the user id for sticky assignment comes from. Absent: random per request.
    #[serde(default)]
    pub sticky: Option<Sticky>,
    /// Mixed into the hash so different experiments split users differently.
    /// Default: the `experiment` name.
    #[serde(default)]
    pub salt: Option<String>,
    /// A request header that forces a variant (for testers).
    #[serde(default, rename = "override")]
    pub override_header: Option<OverrideHeader>,
    /// Pin users without a sticky id to their first variant with a cookie.
    #[serde(default)]
    pub pin_cookie: Option<PinCookie>,
    /// Raise the canary weight over time.
    #[serde(default)]
    pub ramp: Option<Ramp>,
    /// Send everyone to stable when the canary's error rate is too high.
    #[serde(default)]
    pub rollback: Option<Rollback>,
    /// Response header naming the variant served. Default `x-canary-variant`;
    /// empty string: no header.
    #[serde(default = "default_variant_header")]
    pub variant_header: String,
    /// Names this rollout in the shared KV store (ramp start, error counts,
    /// rollback flag). A new name starts the ramp afresh. Default `default`.
    #[serde(default = "default_experiment")]
    pub experiment: String,
}

/// `stable`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StableConfig {
    /// Cluster name from the proxy config.
    pub cluster: String,
}

/// `canary`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CanaryTarget {
    /// Cluster name from the proxy config.
    pub cluster: String,
    /// Percentage of users on the canary, 0–100 in steps of 0.01. With a
    /// ramp, the weight before the first step. Default 0.
    #[serde(default)]
    pub weight: f64,
}

/// `sticky`: exactly one of `header` and `cookie`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Sticky {
    /// A request header holding the user id (e.g. `x-user-id`).
    #[serde(default)]
    pub header: Option<String>,
    /// A cookie holding the user id.
    #[serde(default)]
    pub cookie: Option<String>,
}

/// `override`: `header: always` forces the canary, `header: never` stable.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OverrideHeader {
    /// Default `x-canary`.
    #[serde(default = "default_override_header")]
    pub header: String,
    /// Value forcing the canary. Default `always`.
    #[serde(default = "default_always")]
    pub always: String,
    /// Value forcing stable. Default `never`.
    #[serde(default = "default_never")]
    pub never: String,
}

/// `pin_cookie`: `Set-Cookie` for users assigned at random.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PinCookie {
    /// Cookie name. Default `weir-canary`.
    #[serde(default = "default_pin_name")]
    pub name: String,
    /// Lifetime. Default 1 day.
    #[serde(default = "default_pin_max_age", with = "humantime_serde")]
    pub max_age: Duration,
    /// Add `Secure`. Default true.
    #[serde(default = "yes")]
    pub secure: bool,
    /// `Path`. Default `/`.
    #[serde(default = "default_path")]
    pub path: String,
}

/// `ramp`: the canary weight as a step function of time since the
/// rollout's start (the first request any instance saw, kept in the KV).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Ramp {
    /// Steps in increasing `after` and non-decreasing `weight`.
    pub steps: Vec<RampStep>,
}

/// One ramp step.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RampStep {
    /// From this long after the start...
    #[serde(with = "humantime_serde")]
    pub after: Duration,
    /// ...the canary weight is this (percent).
    pub weight: f64,
}

/// `rollback`: error-rate guard on the canary.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    /// Roll back when more than this percentage of the canary's responses
    /// in a window are 5xx.
    pub error_rate: f64,
    /// ...and the window has at least this many canary responses. Default 20.
    #[serde(default = "default_min_requests")]
    pub min_requests: u64,
    /// Length of a (fixed) counting window. Default 1m.
    #[serde(default = "default_window", with = "humantime_serde")]
    pub window: Duration,
}

fn default_variant_header() -> String {
    "x-canary-variant".into()
}
fn default_experiment() -> String {
    "default".into()
}
fn default_override_header() -> String {
    "x-canary".into()
}
fn default_always() -> String {
    "always".into()
}
fn default_never() -> String {
    "never".into()
}
fn default_pin_name() -> String {
    "weir-canary".into()
}
fn default_pin_max_age() -> Duration {
    Duration::from_secs(86_400)
}
fn yes() -> bool {
    true
}
fn default_path() -> String {
    "/".into()
}
fn default_min_requests() -> u64 {
    20
}
fn default_window() -> Duration {
    Duration::from_secs(60)
}

/// Where the sticky id is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdSource {
    /// A request header (lower case).
    Header(String),
    /// A cookie.
    Cookie(String),
}

/// A ramp step in compiled form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Milliseconds after the start.
    pub after_ms: u64,
    /// Weight in buckets.
    pub weight: u32,
}

/// The checked configuration the filter runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Stable cluster.
    pub stable_cluster: String,
    /// Canary cluster.
    pub canary_cluster: String,
    /// Canary weight in buckets (before the ramp's first step, if any).
    pub weight: u32,
    /// Sticky id source.
    pub sticky: Option<IdSource>,
    /// Hash salt.
    pub salt: String,
    /// Override header (lower-case name) and its values.
    pub override_header: Option<OverrideHeader>,
    /// Pin cookie.
    pub pin_cookie: Option<PinCookie>,
    /// Ramp steps.
    pub ramp: Vec<Step>,
    /// Rollback guard.
    pub rollback: Option<Rollback>,
    /// Variant response header (lower case), if any.
    pub variant_header: Option<String>,
    /// KV namespace.
    pub experiment: String,
}

impl Settings {
    /// Check a parsed config.
    pub fn compile(c: CanaryConfig) -> Result<Settings, String> {
        non_empty(&c.stable.cluster, "stable.cluster")?;
        non_empty(&c.canary.cluster, "canary.cluster")?;
        if c.stable.cluster == c.canary.cluster {
            return Err("canary.cluster: must differ from stable.cluster".into());
        }
        let weight = buckets(c.canary.weight, "canary.weight")?;
        let sticky = match &c.sticky {
            None => None,
            Some(Sticky {
                header: Some(h),
                cookie: None,
            }) => Some(IdSource::Header(lower_name(h, "sticky.header")?)),
            Some(Sticky {
                header: None,
                cookie: Some(name),
            }) => Some(IdSource::Cookie(cookie_name(name, "sticky.cookie")?)),
            Some(_) => return Err("sticky: give exactly one of `header` and `cookie`".into()),
        };
        non_empty(&c.experiment, "experiment")?;
        if !c
            .experiment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err("experiment: use letters, digits, `-`, `_` and `.` only".into());
        }
        let override_header = match c.override_header {
            None => None,
            Some(mut o) => {
                o.header = lower_name(&o.header, "override.header")?;
                non_empty(&o.always, "override.always")?;
                non_empty(&o.never, "override.never")?;
                if o.always == o.never {
                    return Err("override.never: must differ from override.always".into());
                }
                Some(o)
            }
        };
        if let Some(pin) = &c.pin_cookie {
            cookie_name(&pin.name, "pin_cookie.name")?;
            if !pin.path.starts_with('/') || pin.path.contains(';') {
                return Err("pin_cookie.path: must start with `/` and contain no `;`".into());
            }
            if pin.max_age.is_zero() {
                return Err("pin_cookie.max_age: must be more than zero".into());
            }
        }
        let mut ramp = Vec::new();
        if let Some(r) = &c.ramp {
            if r.steps.is_empty() {
                return Err("ramp.steps: list at least one step".into());
            }
            let mut last: Option<Step> = None;
            for (i, s) in r.steps.iter().enumerate() {
                let step = Step {
                    after_ms: s.after.as_millis() as u64,
                    weight: buckets(s.weight, &format!("ramp.steps[{i}].weight"))?,
                };
                if let Some(prev) = last {
                    if step.after_ms <= prev.after_ms {
                        return Err(format!(
                            "ramp.steps[{i}].after: must be later than the step before"
                        ));
                    }
                    if step.weight < prev.weight {
                        return Err(format!(
                            "ramp.steps[{i}].weight: must not be below the step before (the ramp only goes up)"
                        ));
                    }
                } else if step.weight < weight {
                    return Err("ramp.steps[0].weight: must not be below canary.weight".into());
                }
                ramp.push(step);
                last = Some(step);
            }
        }
        if let Some(r) = &c.rollback {
            if !(r.error_rate > 0.0 && r.error_rate <= 100.0) {
                return Err(format!(
                    "rollback.error_rate: {} is not a percentage above 0",
                    r.error_rate
                ));
            }
            if r.min_requests == 0 {
                return Err("rollback.min_requests: must be at least 1".into());
            }
            if r.window.as_millis() < 1 {
                return Err("rollback.window: must be at least 1ms".into());
            }
        }
        let variant_header = if c.variant_header.is_empty() {
            None
        } else {
            Some(lower_name(&c.variant_header, "variant_header")?)
        };
        Ok(Settings {
            stable_cluster: c.stable.cluster,
            canary_cluster: c.canary.cluster,
            weight,
            sticky,
            salt: c.salt.unwrap_or_else(|| c.experiment.clone()),
            override_header,
            pin_cookie: c.pin_cookie,
            ramp,
            rollback: c.rollback,
            variant_header,
            experiment: c.experiment,
        })
    }
}

fn non_empty(v: &str, field: &str) -> Result<(), String> {
    if v.trim().is_empty() {
        Err(format!("{field}: must not be empty"))
    } else {
        Ok(())
    }
}

fn lower_name(name: &str, field: &str) -> Result<String, String> {
    let n = name.trim().to_ascii_lowercase();
    if n.is_empty()
        || !n
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!("{field}: `{name}` is not a header name"));
    }
    Ok(n)
}

fn cookie_name(name: &str, field: &str) -> Result<String, String> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(format!("{field}: `{name}` is not a cookie name"));
    }
    Ok(name.to_string())
}

/// Percent (0–100, steps of 0.01) to buckets.
fn buckets(percent: f64, field: &str) -> Result<u32, String> {
    if !(0.0..=100.0).contains(&percent) {
        return Err(format!("{field}: {percent} is not a percentage (0-100)"));
    }
    Ok((percent * (BUCKETS as f64 / 100.0)).round() as u32)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(v: serde_json::Value) -> Result<Settings, String> {
        let c: CanaryConfig = serde_json::from_value(v).map_err(|e| e.to_string())?;
        Settings::compile(c)
    }

    fn base() -> serde_json::Value {
        json!({"stable": {"cluster": "v1"}, "canary": {"cluster": "v2", "weight": 5}})
    }

    fn with(extra: serde_json::Value) -> serde_json::Value {
        let mut b = base();
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    }

    #[test]
    fn minimal_and_defaults() {
        let s = parse(base()).unwrap();
        assert_eq!(
            (
                s.stable_cluster.as_str(),
                s.canary_cluster.as_str(),
                s.weight
            ),
            ("v1", "v2", 500)
        );
        assert_eq!(s.variant_header.as_deref(), Some("x-canary-variant"));
        assert_eq!(
            (s.experiment.as_str(), s.salt.as_str()),
            ("default", "default")
        );
        assert!(s.sticky.is_none() && s.ramp.is_empty() && s.rollback.is_none());
    }

    #[test]
    fn full_config() {
        let s = parse(with(json!({
            "sticky": {"cookie": "uid"},
            "override": {},
            "pin_cookie": {"max_age": "2h"},
            "ramp": {"steps": [{"after": "0s", "weight": 5}, {"after": "10m", "weight": 25.5}, {"after": "1h", "weight": 100}]},
            "rollback": {"error_rate": 5},
            "variant_header": "",
            "experiment": "checkout-v2"
        })))
        .unwrap();
        assert_eq!(s.sticky, Some(IdSource::Cookie("uid".into())));
        assert_eq!(s.override_header.unwrap().header, "x-canary");
        assert_eq!(s.pin_cookie.unwrap().max_age, Duration::from_secs(7200));
        assert_eq!(
            s.ramp[1],
            Step {
                after_ms: 600_000,
                weight: 2550
            }
        );
        assert_eq!(s.rollback.unwrap().min_requests, 20);
        assert_eq!(s.variant_header, None);
        assert_eq!(s.salt, "checkout-v2");
    }

    #[test]
    fn errors_name_the_field() {
        let e = |v| parse(v).unwrap_err();
        assert!(
            e(json!({"stable": {"cluster": "a"}, "canary": {"cluster": "a"}}))
                .starts_with("canary.cluster")
        );
        assert!(
            e(json!({"stable": {"cluster": ""}, "canary": {"cluster": "a"}}))
                .starts_with("stable.cluster")
        );
        assert!(
            e(with(json!({"canary": {"cluster": "v2", "weight": 101}})))
                .starts_with("canary.weight")
        );
        assert!(e(with(json!({"sticky": {}}))).starts_with("sticky"));
        assert!(e(with(json!({"sticky": {"header": "a", "cookie": "b"}}))).starts_with("sticky"));
        assert!(e(with(json!({"sticky": {"header": "bad header"}}))).starts_with("sticky.header"));
        assert!(e(with(json!({"sticky": {"cookie": "a;b"}}))).starts_with("sticky.cookie"));
        assert!(
            e(with(json!({"override": {"always": "x", "never": "x"}})))
                .starts_with("override.never")
        );
        assert!(e(with(json!({"pin_cookie": {"path": "x"}}))).starts_with("pin_cookie.path"));
        assert!(e(with(json!({"ramp": {"steps": []}}))).starts_with("ramp.steps"));
        assert!(e(with(json!({"ramp": {"steps": [{"after": "1m", "weight": 10}, {"after": "1m", "weight": 20}]}}))).starts_with("ramp.steps[1].after"));
        assert!(e(with(json!({"ramp": {"steps": [{"after": "1m", "weight": 10}, {"after": "2m", "weight": 8}]}}))).starts_with("ramp.steps[1].weight"));
        assert!(
            e(with(
                json!({"ramp": {"steps": [{"after": "1m", "weight": 1}]}})
            ))
            .starts_with("ramp.steps[0].weight")
        );
        assert!(e(with(json!({"rollback": {"error_rate": 0}}))).starts_with("rollback.error_rate"));
        assert!(
            e(with(
                json!({"rollback": {"error_rate": 5, "min_requests": 0}})
            ))
            .starts_with("rollback.min_requests")
        );
        assert!(e(with(json!({"experiment": "a b"}))).starts_with("experiment"));
        assert!(e(with(json!({"variant_header": "x y"}))).starts_with("variant_header"));
    }
}
