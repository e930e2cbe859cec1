//! Test support: small builders for upstream servers, the proxy and clients.
