//! Errors that become HTTP responses — all of them, in this one module.
