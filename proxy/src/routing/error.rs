//! Errors found while compiling the routing table from the config.

/// A virtual host or route in the config could not be compiled.
///
/// The config module validates first, so these are a second line of defence;
/// each names the config field (`virtual_hosts[0].routes[2].match.regex`) and
/// the reason.
#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    /// A value could not be compiled (bad regex, header name, status, ...).
    #[error("{field}: {reason}")]
    Invalid {
        /// Where in the config, e.g. `virtual_hosts[0].routes[2].match.regex`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// More routes than a [`RouteId`](super::RouteId) can number.
    #[error("too many routes: {0} (at most {max})", max = u32::MAX)]
    TooManyRoutes(usize),
}

impl RoutingError {
    /// An [`Invalid`](RoutingError::Invalid) error at `field`.
    pub(crate) fn invalid(field: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        RoutingError::Invalid {
            field: field.into(),
            reason: reason.to_string(),
        }
    }
}
