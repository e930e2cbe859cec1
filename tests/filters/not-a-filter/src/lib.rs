//! Test component `not-a-filter`: a well-formed component exporting
//! `weir-test:not-a-filter/greeter` instead of `weir:filter/handler`, so the
//! proxy must refuse to load it as a filter (with a clear error).

#[allow(unsafe_code, missing_docs)]
mod bindings {
    wit_bindgen::generate!({ path: "wit", world: "not-a-filter" });
}

use bindings::exports::weir_test::not_a_filter::greeter::Guest;

/// The component's one export.
pub struct Greeter;

impl Guest for Greeter {
    fn greet(name: String) -> String {
        format!("hello, {name}")
    }
}

#[cfg(target_arch = "wasm32")]
bindings::export!(Greeter with_types_in bindings);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greets() {
        assert_eq!(Greeter::greet("weir".to_string()), "hello, weir");
    }
}
