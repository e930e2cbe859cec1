//! Listeners, connection limits, graceful shutdown and the admin endpoint.
