//! Virtual hosts and routes, compiled from the config.

/// A route's stable id within one config generation (its position in the
/// config, counting across virtual hosts). Used to find per-route filter chains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteId(pub u32);
