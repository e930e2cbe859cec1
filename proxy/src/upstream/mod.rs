//! Upstream clusters: endpoints, load balancing, connection pools.
