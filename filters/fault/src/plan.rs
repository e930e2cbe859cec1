//! Choosing the fault for one request: scope, client headers, the random
//! draw, and the abort response (HTTP, or gRPC trailers-only style).

use crate::config::{FaultConfig, Scope};

/// Header naming an HTTP status to abort with (header control).
pub const ABORT_HEADER: &str = "x-weir-fault-abort";
/// Header naming a gRPC status code to abort a gRPC request with (header control).
pub const ABORT_GRPC_HEADER: &str = "x-weir-fault-abort-grpc";
/// Header naming a delay in milliseconds (header control).
pub const DELAY_HEADER: &str = "x-weir-fault-delay";
/// Header with the percentage for header-requested faults (default 100).
pub const PERCENTAGE_HEADER: &str = "x-weir-fault-percentage";

/// Resolution of percentages: one in a million.
const PER_MILLION: u64 = 1_000_000;

/// The request fields faults look at.
pub trait RequestFacts {
    /// Path without query.
    fn path(&self) -> String;
    /// First value of a header (lower-case name).
    fn header(&self, name: &str) -> Option<String>;
}

/// The fault chosen for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this response.
    Abort(Reply),
    /// Wait this many milliseconds, then continue.
    Delay(u32),
}

/// An abort response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
    /// The status as a metric label: `503`, or `grpc-14`.
    pub label: String,
}

/// True with probability `percentage`/100, given a uniform random `draw`.
/// Resolution one in a million; 0 never, 100 always.
pub fn chance(percentage: f64, draw: u64) -> bool {
    let threshold = (percentage.clamp(0.0, 100.0) * (PER_MILLION / 100) as f64).round() as u64;
    draw % PER_MILLION < threshold
}

/// Whether the request is in the configured scope.
pub fn in_scope(scope: &Scope, req: &dyn RequestFacts) -> bool {
    if !scope.path_prefixes.is_empty() {
        let path = req.path();
        if !scope
            .path_prefixes
            .iter()
            .any(|p| path.starts_with(p.as_str()))
        {
            return false;
        }
    }
    scope
        .headers
        .iter()
        .all(|h| match (&h.exact, req.header(&h.name)) {
            (Some(want), Some(got)) => *want == got,
            (None, Some(_)) => true,
            (_, None) => false,
        })
}

/// gRPC requests are recognised by `content-type: application/grpc[+...]`.
pub fn is_grpc(req: &dyn RequestFacts) -> bool {
    req.header("content-type").is_some_and(|ct| {
        ct.trim()
            .to_ascii_lowercase()
            .starts_with("application/grpc")
    })
}

/// Choose the fault for a request, drawing from `random`. Abort and delay
/// are drawn independently; when both are drawn the abort wins (a delay
/// cannot be followed by a local answer in the same phase). Faults asked for
/// in headers (when enabled) replace the configured ones of the same kind.
pub fn choose(
    config: &FaultConfig,
    req: &dyn RequestFacts,
    random: &mut dyn FnMut() -> u64,
) -> Option<Fault> {
    if !in_scope(&config.scope, req) {
        return None;
    }
    let grpc = is_grpc(req);
    let requested = if config.header_control.enabled {
        HeaderFaults::read(req, config)
    } else {
        HeaderFaults::default()
    };

    let abort_draw = random();
    let delay_draw = random();

    let abort = if let Some((status, code)) = requested.abort {
        chance(requested.percentage, abort_draw)
            .then(|| abort_reply(status, grpc, code, "fault injected"))
    } else {
        config.abort.as_ref().and_then(|a| {
            chance(a.percentage, abort_draw)
                .then(|| abort_reply(a.http_status, grpc, a.grpc_status, &a.grpc_message))
        })
    };
    if let Some(reply) = abort {
        return Some(Fault::Abort(reply));
    }
    let delay_ms = if let Some(ms) = requested.delay_ms {
        chance(requested.percentage, delay_draw).then_some(ms)
    } else {
        config
            .delay
            .as_ref()
            .and_then(|d| chance(d.percentage, delay_draw).then_some(d.duration.as_millis() as u32))
    };
    delay_ms.map(Fault::Delay)
}

/// Faults requested in headers. Unparsable values are ignored.
#[derive(Debug, Default, PartialEq)]
struct HeaderFaults {
    /// HTTP status, and gRPC code if given.
    abort: Option<(u16, Option<u32>)>,
    delay_ms: Option<u32>,
    percentage: f64,
}

impl HeaderFaults {
    fn read(req: &dyn RequestFacts, config: &FaultConfig) -> HeaderFaults {
        let num = |name: &str| req.header(name).and_then(|v| v.trim().parse::<u64>().ok());
        let http = num(ABORT_HEADER)
            .and_then(|s| u16::try_from(s).ok())
            .filter(|s| (200..=599).contains(s));
        let grpc = num(ABORT_GRPC_HEADER)
            .and_then(|c| u32::try_from(c).ok())
            .filter(|c| *c <= 16);
        let abort = match (http, grpc) {
            (Some(status), code) => Some((status, code)),
            // A gRPC code alone: the HTTP status of a gRPC answer is 200.
            (None, Some(code)) => Some((200, Some(code))),
            (None, None) => None,
        };
        let max_ms = config
            .header_control
            .max_delay
            .as_millis()
            .min(u32::MAX as u128) as u64;
        let delay_ms = num(DELAY_HEADER)
            .filter(|ms| *ms > 0)
            .map(|ms| ms.min(max_ms) as u32);
        let percentage = req
            .header(PERCENTAGE_HEADER)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|p| (0.0..=100.0).contains(p))
            .unwrap_or(100.0);
        HeaderFaults {
            abort,
            delay_ms,
            percentage,
        }
    }
}

/// The abort response. For gRPC requests: status 200, `content-type:
/// application/grpc`, `grpc-status` and `grpc-message` in the headers and no
/// body (the trailers-only form).
pub fn abort_reply(
    http_status: u16,
    grpc: bool,
    grpc_status: Option<u32>,
    grpc_message: &str,
) -> Reply {
    if grpc {
        let code = grpc_status.unwrap_or_else(|| grpc_code_for_http(http_status));
        return Reply {
            status: 200,
            headers: vec![
                ("content-type".into(), "application/grpc".into()),
                ("grpc-status".into(), code.to_string()),
                ("grpc-message".into(), percent_encode(grpc_message)),
            ],
            body: vec![],
            label: format!("grpc-{code}"),
        };
    }
    Reply {
        status: http_status,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: b"fault filter abort".to_vec(),
        label: http_status.to_string(),
    }
}

/// The gRPC code for an HTTP status (gRPC's "HTTP to gRPC status code mapping").
pub fn grpc_code_for_http(status: u16) -> u32 {
    match status {
        400 => 13,             // INTERNAL
        401 => 16,             // UNAUTHENTICATED
        403 => 7,              // PERMISSION_DENIED
        404 => 12,             // UNIMPLEMENTED
        429 | 502..=504 => 14, // UNAVAILABLE
        _ => 2,                // UNKNOWN
    }
}

/// `grpc-message` encoding: percent-encode bytes outside printable ASCII and `%`.
fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for b in message.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
