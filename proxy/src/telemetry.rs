//! Logging setup: `tracing` events to stderr, as text or JSON lines.

use std::fmt;
use std::str::FromStr;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl FromStr for LogFormat {
    type Err = TelemetryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(TelemetryError::UnknownFormat(other.to_string())),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Text => "text",
            Self::Json => "json",
        })
    }
}

/// Logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The level / filter directive did not parse.
    #[error("invalid log level or filter {directive:?}: {reason}")]
    BadFilter {
        /// What was given.
        directive: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The format is neither `text` nor `json`.
    #[error("unknown log format {0:?} (expected text or json)")]
    UnknownFormat(String),
    /// A global subscriber was already installed.
    #[error("logging is already initialised")]
    AlreadyInitialised,
}

/// Install the global subscriber.
///
/// `level` is a level (`info`, `debug`, ...) or a full filter directive
/// (`weir_proxy=debug,hyper=info`). When it is `None`, `RUST_LOG` is used,
/// and `info` when that is unset too.
pub fn init(level: Option<&str>, format: LogFormat) -> Result<(), TelemetryError> {
    let filter = match level {
        Some(directive) => {
            EnvFilter::try_new(directive).map_err(|err| TelemetryError::BadFilter {
                directive: directive.to_string(),
                reason: err.to_string(),
            })?
        }
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    use std::io::IsTerminal;
    // Colour codes only for a person at a terminal, never into log files.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    result.map_err(|_| TelemetryError::AlreadyInitialised)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse() {
        assert_eq!("json".parse::<LogFormat>().unwrap(), LogFormat::Json);
        assert_eq!("text".parse::<LogFormat>().unwrap(), LogFormat::Text);
        assert!("yaml".parse::<LogFormat>().is_err());
    }

    #[test]
    fn bad_filter_is_reported() {
        let err = init(Some("weir=[nonsense"), LogFormat::Text).unwrap_err();
        assert!(matches!(err, TelemetryError::BadFilter { .. }), "{err}");
    }
}
