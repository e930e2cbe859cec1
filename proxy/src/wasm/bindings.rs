//! Host bindings for the imports of the `filter` world of `wit/filter.wit`.
//!
//! `bindgen!` generates the host traits for everything a filter imports
//! (`log`, `metrics`, `kv`, `callout`, `clock`, `random`, `http`) and the
//! shared `types`. The `handler` export is bound by hand in
//! [`crate::wasm::module`]: the generated export bindings use `unsafe`
//! blocks, which `#![forbid(unsafe_code)]` rules out, while
//! `Instance::get_typed_func` gives the same type-checked functions safely.
//!
//! The `request`, `response` and `body` resources are not kept in a resource
//! table: each phase call works on exactly one exchange, whose data is moved
//! into the instance's store for the call (see `host::ExchangeData`), so the
//! handles the guest borrows are fixed reps naming those slots.

wasmtime::component::bindgen!({
    path: "../wit",
    inline: "
        package weir:host;
        world filter-imports {
            import weir:filter/log@0.1.0;
            import weir:filter/metrics@0.1.0;
            import weir:filter/kv@0.1.0;
            import weir:filter/callout@0.1.0;
            import weir:filter/clock@0.1.0;
            import weir:filter/random@0.1.0;
            import weir:filter/http@0.1.0;
        }
    ",
    imports: {
        "weir:filter/callout.call": async | trappable,
        default: trappable,
    },
    with: {
        "weir:filter/http.request": crate::wasm::host::http::RequestHandle,
        "weir:filter/http.response": crate::wasm::host::http::ResponseHandle,
        "weir:filter/http.body": crate::wasm::host::http::BodyHandle,
    },
});

/// Interfaces of the `filter` world with async host functions (bound
/// `async` above). A component importing one needs `execution: yielding`.
pub(crate) const ASYNC_IMPORTS: &[&str] = &["weir:filter/callout"];
