//! The fault filter's JSON configuration and its checks. Every error names
//! the field it is about.

use std::time::Duration;

use serde::Deserialize;

/// The whole filter configuration.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FaultConfig {
    /// Answer instead of the upstream.
    #[serde(default)]
    pub abort: Option<AbortConfig>,
    /// Hold the request before it goes on.
    #[serde(default)]
    pub delay: Option<DelayConfig>,
    /// Which requests may get a fault. Empty: all.
    #[serde(default, rename = "match")]
    pub scope: Scope,
    /// Most faults active at once, across all instances (KV counter). Absent: no cap.
    #[serde(default)]
    pub max_active: Option<u32>,
    /// Faults requested by the client in `x-weir-fault-*` headers. Off by default.
    #[serde(default)]
    pub header_control: HeaderControl,
    /// Prefix of the shared KV keys (the active-fault counter). Give each
    /// fault filter its own when several cap faults independently. Default `weir.fault`.
    #[serde(default = "default_kv_prefix")]
    pub kv_prefix: String,
}

/// `abort`: answer with an error.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AbortConfig {
    /// Share of requests in scope that are aborted, 0–100 (fractions allowed, down to 0.0001).
    pub percentage: f64,
    /// Status for HTTP requests.
    pub http_status: u16,
    /// gRPC status code (0–16) for gRPC requests. Absent: derived from
    /// `http_status` by the gRPC HTTP-to-status mapping.
    #[serde(default)]
    pub grpc_status: Option<u32>,
    /// `grpc-message` for gRPC aborts. Default `fault injected`.
    #[serde(default = "default_message")]
    pub grpc_message: String,
}

/// `delay`: wait before continuing, on a host timer.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DelayConfig {
    /// Share of requests in scope that are delayed, 0–100.
    pub percentage: f64,
    /// How long, e.g. `250ms`, `2s`.
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
}

/// Which requests are eligible for faults: all of `headers` match and, if
/// `path_prefixes` is given, the path starts with one of them.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// Plain string prefixes of the path.
    #[serde(default)]
    pub path_prefixes: Vec<String>,
    /// Header conditions, e.g. `{"name": "x-user", "exact": "tester"}`.
    #[serde(default)]
    pub headers: Vec<HeaderMatch>,
}

/// A header condition: `exact` value, or presence when `exact` is absent.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HeaderMatch {
    /// Header name (case-insensitive).
    pub name: String,
    /// Required value of the first occurrence. Absent: the header must be present.
    #[serde(default)]
    pub exact: Option<String>,
}

/// `header_control`: client-requested faults, for testing clients.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HeaderControl {
    /// Honour `x-weir-fault-abort`, `x-weir-fault-abort-grpc`,
    /// `x-weir-fault-delay` and `x-weir-fault-percentage`. Default false.
    #[serde(default)]
    pub enabled: bool,
    /// Longest delay a header may ask for. Default 10s.
    #[serde(default = "default_max_delay", with = "humantime_serde")]
    pub max_delay: Duration,
}

impl Default for HeaderControl {
    fn default() -> Self {
        HeaderControl {
            enabled: false,
            max_delay: default_max_delay(),
        }
    }
}

fn default_kv_prefix() -> String {
    "weir.fault".into()
}
fn default_message() -> String {
    "fault injected".into()
}
fn default_max_delay() -> Duration {
    Duration::from_secs(10)
}

impl FaultConfig {
    /// Check values serde cannot, and normalise header names.
    pub fn validate(mut self) -> Result<FaultConfig, String> {
        if let Some(abort) = &self.abort {
            check_percentage(abort.percentage, "abort.percentage")?;
            check_status(abort.http_status, "abort.http_status")?;
            if let Some(code) = abort.grpc_status
                && code > 16
            {
                return Err(format!(
                    "abort.grpc_status: {code} is not a gRPC status code (0-16)"
                ));
            }
        }
        if let Some(delay) = &self.delay {
            check_percentage(delay.percentage, "delay.percentage")?;
            if delay.duration.is_zero() || delay.duration.as_millis() > u32::MAX as u128 {
                return Err("delay.duration: must be between 1ms and ~49 days".into());
            }
        }
        for (i, p) in self.scope.path_prefixes.iter().enumerate() {
            if !p.starts_with('/') {
                return Err(format!("match.path_prefixes[{i}]: must start with `/`"));
            }
        }
        for (i, h) in self.scope.headers.iter_mut().enumerate() {
            h.name = h.name.trim().to_ascii_lowercase();
            if h.name.is_empty() {
                return Err(format!("match.headers[{i}].name: must not be empty"));
            }
        }
        if self.max_active == Some(0) {
            return Err("max_active: 0 would disable every fault; remove the fault instead".into());
        }
        if self.kv_prefix.trim().is_empty() {
            return Err("kv_prefix: must not be empty".into());
        }
        if self.abort.is_none() && self.delay.is_none() && !self.header_control.enabled {
            return Err("configure `abort`, `delay` or `header_control.enabled`; this filter would do nothing".into());
        }
        Ok(self)
    }
}

fn check_percentage(p: f64, field: &str) -> Result<(), String> {
    if !(0.0..=100.0).contains(&p) {
        return Err(format!("{field}: {p} is not a percentage (0-100)"));
    }
    Ok(())
}

fn check_status(s: u16, field: &str) -> Result<(), String> {
    if !(200..=599).contains(&s) {
        return Err(format!(
            "{field}: {s} is not an HTTP status for an abort (200-599)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(v: serde_json::Value) -> Result<FaultConfig, String> {
        let c: FaultConfig = serde_json::from_value(v).map_err(|e| e.to_string())?;
        c.validate()
    }

    #[test]
    fn full_config_parses() {
        let c = parse(json!({
            "abort": {"percentage": 2.5, "http_status": 503, "grpc_status": 14},
            "delay": {"percentage": 10, "duration": "250ms"},
            "match": {"path_prefixes": ["/api/"], "headers": [{"name": "X-User", "exact": "tester"}]},
            "max_active": 5,
            "header_control": {"enabled": true, "max_delay": "2s"}
        }))
        .unwrap();
        assert_eq!(c.delay.unwrap().duration, Duration::from_millis(250));
        assert_eq!(c.scope.headers[0].name, "x-user");
        assert_eq!(c.header_control.max_delay, Duration::from_secs(2));
        assert_eq!(c.abort.unwrap().grpc_message, "fault injected");
        assert_eq!(c.kv_prefix, "weir.fault");
    }

    #[test]
    fn header_control_is_off_by_default() {
        let c = parse(json!({"delay": {"percentage": 1, "duration": "1s"}})).unwrap();
        assert!(!c.header_control.enabled);
    }

    #[test]
    fn errors_name_the_field() {
        let e = |v| parse(v).unwrap_err();
        assert!(
            e(json!({"abort": {"percentage": 101, "http_status": 503}}))
                .starts_with("abort.percentage")
        );
        assert!(
            e(json!({"abort": {"percentage": -1, "http_status": 503}}))
                .starts_with("abort.percentage")
        );
        assert!(
            e(json!({"abort": {"percentage": 1, "http_status": 99}}))
                .starts_with("abort.http_status")
        );
        assert!(
            e(json!({"abort": {"percentage": 1, "http_status": 503, "grpc_status": 17}}))
                .starts_with("abort.grpc_status")
        );
        assert!(
            e(json!({"delay": {"percentage": 1, "duration": "0s"}})).starts_with("delay.duration")
        );
        assert!(
            e(json!({"delay": {"percentage": 120, "duration": "1s"}}))
                .starts_with("delay.percentage")
        );
        assert!(e(json!({"delay": {"percentage": 1, "duration": "1s"}, "match": {"path_prefixes": ["api"]}})).starts_with("match.path_prefixes[0]"));
        assert!(e(json!({"delay": {"percentage": 1, "duration": "1s"}, "match": {"headers": [{"name": " "}]}})).starts_with("match.headers[0].name"));
        assert!(
            e(json!({"delay": {"percentage": 1, "duration": "1s"}, "max_active": 0}))
                .starts_with("max_active")
        );
        assert!(e(json!({})).contains("would do nothing"));
        assert!(e(json!({"abort": {"percentage": 1}})).contains("http_status"));
    }
}
