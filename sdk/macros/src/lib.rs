//! The `#[weir_sdk::filter]` attribute.
