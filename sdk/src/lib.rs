//! The Weir filter SDK.
