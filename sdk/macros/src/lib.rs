//! The `#[weir_sdk::filter]` attribute. Use it through `weir-sdk`, which
//! re-exports it; the generated code names only `::weir_sdk` paths.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ImplItem, ItemImpl, Type, parse_macro_input};

/// The hooks the attribute looks for, and the phase each one implements.
const HOOKS: [(&str, &str); 5] = [
    ("on_request_headers", "REQUEST_HEADERS"),
    ("on_request_body", "REQUEST_BODY"),
    ("on_response_headers", "RESPONSE_HEADERS"),
    ("on_response_body", "RESPONSE_BODY"),
    ("on_done", "DONE"),
];

/// Marks `impl Filter for YourType` as the filter this component exports.
///
/// - Lists the `on_*` hooks the impl block defines as the filter's phases,
///   so the proxy calls (and buffers bodies for) only those.
/// - On `wasm32`, exports the WIT `weir:filter/handler` interface for
///   `YourType`: `configure` parses the JSON config into `Filter::Config`
///   and calls `Filter::new`; each phase calls your hook.
///
/// Put it on exactly one `impl Filter for ...` per crate. The type must not
/// be generic.
#[proc_macro_attribute]
pub fn filter(attr: TokenStream, item: TokenStream) -> TokenStream {
    let attr = TokenStream2::from(attr);
    if !attr.is_empty() {
        return syn::Error::new(attr.span(), "`#[weir_sdk::filter]` takes no arguments")
            .to_compile_error()
            .into();
    }
    let item = parse_macro_input!(item as ItemImpl);
    match expand(item) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn expand(mut item: ItemImpl) -> syn::Result<TokenStream2> {
    let Some((_, trait_path, _)) = &item.trait_ else {
        return Err(syn::Error::new(
            item.self_ty.span(),
            "`#[weir_sdk::filter]` goes on `impl Filter for YourType { ... }`",
        ));
    };
    if trait_path
        .segments
        .last()
        .is_none_or(|s| s.ident != "Filter")
    {
        return Err(syn::Error::new(
            trait_path.span(),
            "`#[weir_sdk::filter]` goes on an impl of `weir_sdk::Filter`",
        ));
    }
    if !item.generics.params.is_empty() {
        return Err(syn::Error::new(
            item.generics.span(),
            "a filter type cannot be generic: the component exports one concrete type",
        ));
    }
    if !matches!(&*item.self_ty, Type::Path(_)) {
        return Err(syn::Error::new(
            item.self_ty.span(),
            "the filter must be a named type",
        ));
    }

    let mut phases = Vec::new();
    for impl_item in &item.items {
        match impl_item {
            ImplItem::Fn(f) => {
                let name = f.sig.ident.to_string();
                if let Some((_, phase)) = HOOKS.iter().find(|(hook, _)| *hook == name) {
                    let phase = syn::Ident::new(phase, f.sig.ident.span());
                    phases.push(quote! { ::weir_sdk::Phases::#phase });
                }
            }
            ImplItem::Const(c) if c.ident == "__PHASES" => {
                return Err(syn::Error::new(
                    c.ident.span(),
                    "`__PHASES` is set by `#[weir_sdk::filter]`",
                ));
            }
            _ => {}
        }
    }
    let phases = phases.into_iter().fold(
        quote! { ::weir_sdk::Phases::NONE },
        |acc, p| quote! { #acc.union(#p) },
    );
    item.items.push(syn::parse_quote! {
        #[doc(hidden)]
        const __PHASES: ::core::option::Option<::weir_sdk::Phases> =
            ::core::option::Option::Some(#phases);
    });

    let self_ty = &item.self_ty;
    let export = quote_spanned! {self_ty.span()=>
        // The component's exports, only when building the component.
        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code)]
        const _: () = {
            type __WeirFilterExports = ::weir_sdk::__private::Exports<#self_ty>;
            ::weir_sdk::__private::bindings::export_filter!(
                __WeirFilterExports with_types_in ::weir_sdk::__private::bindings
            );
        };
    };
    // Natively nothing is exported; referencing `configure` for the type
    // keeps a private filter type from being reported as dead code.
    let native_use = quote_spanned! {self_ty.span()=>
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn(&str) -> ::weir_sdk::Result<::weir_sdk::FilterInfo> =
            ::weir_sdk::__private::configure_for::<#self_ty>;
    };
    Ok(quote! {
        #item
        #export
        #native_use
    })
}
