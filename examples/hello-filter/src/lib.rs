//! The example filter.
