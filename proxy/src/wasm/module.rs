//! Compiling, caching and checking filter components, and the typed
//! functions of the `handler` export.
//!
//! A component is compiled once per content (sha256 of its bytes) per
//! process, off the request path on a blocking thread, and pre-linked
//! (`instantiate_pre`) once. Contract checks happen at load: imports the
//! host does not provide fail `instantiate_pre`; a missing
//! `weir:filter/handler@0.1.0` export or function is found by export lookup;
//! a wrong signature is found when the typed functions are resolved on the
//! first instance (which load creates to call `configure`).

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use wasmtime::AsContextMut;
use wasmtime::component::{
    Component, ComponentExportIndex, Instance, InstancePre, Resource, TypedFunc,
};

use crate::config::Execution;
use crate::wasm::bindings::ASYNC_IMPORTS;
use crate::wasm::bindings::weir::filter::types::{Action, FilterInfo, Summary};
use crate::wasm::error::{FilterLoadError, describe};
use crate::wasm::host::HostState;
use crate::wasm::host::http::{BodyHandle, RequestHandle, ResponseHandle};
use crate::wasm::runtime::WasmRuntime;

/// The export every filter must provide.
pub const HANDLER_EXPORT: &str = "weir:filter/handler@0.1.0";

/// A compiled component pre-linked for one [`Execution`], with its export
/// indices.
pub(crate) struct CompiledModule {
    pub(crate) pre: InstancePre<HostState>,
    pub(crate) exports: HandlerExports,
    pub(crate) execution: Execution,
}

/// Indices of the handler's functions, found once per component.
#[derive(Clone, Copy)]
pub(crate) struct HandlerExports {
    configure: ComponentExportIndex,
    on_request_headers: ComponentExportIndex,
    on_request_body: ComponentExportIndex,
    on_response_headers: ComponentExportIndex,
    on_response_body: ComponentExportIndex,
    on_done: ComponentExportIndex,
}

type PhaseResult = (Result<Action, String>,);

/// The handler's functions in one instance, type-checked against the contract.
pub(crate) struct HandlerFuncs {
    pub(crate) configure: TypedFunc<(String, String), (Result<FilterInfo, String>,)>,
    pub(crate) on_request_headers: TypedFunc<(Resource<RequestHandle>,), PhaseResult>,
    pub(crate) on_request_body:
        TypedFunc<(Resource<RequestHandle>, Resource<BodyHandle>, bool), PhaseResult>,
    pub(crate) on_response_headers:
        TypedFunc<(Resource<RequestHandle>, Resource<ResponseHandle>), PhaseResult>,
    #[allow(clippy::type_complexity)]
    pub(crate) on_response_body: TypedFunc<
        (
            Resource<RequestHandle>,
            Resource<ResponseHandle>,
            Resource<BodyHandle>,
            bool,
        ),
        PhaseResult,
    >,
    pub(crate) on_done: TypedFunc<(Resource<RequestHandle>, Summary), ()>,
}

impl HandlerExports {
    /// Find the handler's functions, or say which is missing.
    fn find(component: &Component) -> Result<Self, String> {
        let handler = component
            .get_export_index(None, HANDLER_EXPORT)
            .ok_or_else(|| format!("it does not export `{HANDLER_EXPORT}`"))?;
        let func = |name: &str| {
            component
                .get_export_index(Some(&handler), name)
                .ok_or_else(|| format!("`{HANDLER_EXPORT}` has no function `{name}`"))
        };
        Ok(HandlerExports {
            configure: func("configure")?,
            on_request_headers: func("on-request-headers")?,
            on_request_body: func("on-request-body")?,
            on_response_headers: func("on-response-headers")?,
            on_response_body: func("on-response-body")?,
            on_done: func("on-done")?,
        })
    }

    /// Resolve the typed functions in `instance`; a signature that differs
    /// from the contract is an error naming the function.
    pub(crate) fn resolve(
        &self,
        mut store: impl AsContextMut<Data = HostState>,
        instance: &Instance,
    ) -> Result<HandlerFuncs, String> {
        fn typed<P, R>(
            store: &mut impl AsContextMut<Data = HostState>,
            instance: &Instance,
            index: &ComponentExportIndex,
            name: &str,
        ) -> Result<TypedFunc<P, R>, String>
        where
            P: wasmtime::component::ComponentNamedList + wasmtime::component::Lower,
            R: wasmtime::component::ComponentNamedList + wasmtime::component::Lift,
        {
            instance
                .get_typed_func::<P, R>(store.as_context_mut(), index)
                .map_err(|e| {
                    format!(
                        "`{HANDLER_EXPORT}#{name}` does not have the contract's signature: {}",
                        describe(&e)
                    )
                })
        }
        let s = &mut store;
        Ok(HandlerFuncs {
            configure: typed(s, instance, &self.configure, "configure")?,
            on_request_headers: typed(s, instance, &self.on_request_headers, "on-request-headers")?,
            on_request_body: typed(s, instance, &self.on_request_body, "on-request-body")?,
            on_response_headers: typed(
                s,
                instance,
                &self.on_response_headers,
                "on-response-headers",
            )?,
            on_response_body: typed(s, instance, &self.on_response_body, "on-response-body")?,
            on_done: typed(s, instance, &self.on_done, "on-done")?,
        })
    }
}

/// The module a filter is being loaded from.
struct ModuleSource<'a> {
    filter: &'a str,
    path: &'a Path,
    /// sha256 of its bytes.
    hash: [u8; 32],
}

impl ModuleSource<'_> {
    fn contract(&self, reason: String) -> FilterLoadError {
        FilterLoadError::Contract {
            filter: self.filter.to_owned(),
            path: self.path.to_owned(),
            reason,
        }
    }
}

impl WasmRuntime {
    /// Read, compile (or find in the cache) and pre-link the module of
    /// `filter` for `execution`.
    pub(crate) async fn compile(
        &self,
        filter: &str,
        path: &Path,
        execution: Execution,
    ) -> Result<Arc<CompiledModule>, FilterLoadError> {
        let owned_path = path.to_owned();
        let read = tokio::task::spawn_blocking(move || {
            let bytes = std::fs::read(&owned_path)?;
            let hash: [u8; 32] = Sha256::digest(&bytes).into();
            Ok::<_, std::io::Error>((bytes, hash))
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        let (bytes, hash) = read.map_err(|source| FilterLoadError::ReadModule {
            filter: filter.to_owned(),
            path: path.to_owned(),
            source,
        })?;
        let source = ModuleSource { filter, path, hash };
        let other_execution = {
            let modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(module) = modules.get(&(hash, execution)) {
                return Ok(module.clone());
            }
            modules
                .iter()
                .find(|((h, _), _)| *h == hash)
                .map(|(_, module)| (module.pre.component().clone(), module.exports))
        };
        // The same bytes pre-linked for the other execution: no compile.
        if let Some((component, exports)) = other_execution {
            return self.pre_link(&source, component, exports, execution);
        }

        let engine = self.engine.clone();
        let disk = self.disk_cache.clone();
        let compiled = tokio::task::spawn_blocking(move || {
            if let Some(component) = disk.as_ref().and_then(|d| d.load(&engine, &hash)) {
                return Ok((component, true));
            }
            let component = Component::from_binary(&engine, &bytes)?;
            if let Some(disk) = &disk
                && let Err(e) = disk.store(&hash, &component)
            {
                tracing::warn!("cannot write the compiled-module cache: {e}");
            }
            Ok::<_, wasmtime::Error>((component, false))
        })
        .await
        .map_err(|e| FilterLoadError::Compile {
            filter: filter.to_owned(),
            path: path.to_owned(),
            reason: format!("the compiler thread failed: {e}"),
        })?;
        let (component, from_disk) = compiled.map_err(|e| FilterLoadError::Compile {
            filter: filter.to_owned(),
            path: path.to_owned(),
            reason: describe(&e),
        })?;
        let counts = &self.compile_counts;
        if from_disk {
            counts
                .cached
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::info!(filter, path = %path.display(), "loaded from cache (compiled-module disk cache)");
        } else {
            counts
                .compiled
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::info!(filter, path = %path.display(), "compiled");
        }
        let exports = HandlerExports::find(&component).map_err(|e| source.contract(e))?;
        self.pre_link(&source, component, exports, execution)
    }

    /// Pre-link `component` with the linker of `execution` and cache it.
    fn pre_link(
        &self,
        source: &ModuleSource<'_>,
        component: Component,
        exports: HandlerExports,
        execution: Execution,
    ) -> Result<Arc<CompiledModule>, FilterLoadError> {
        let linker = match execution {
            Execution::Yielding => &self.linker,
            Execution::Inline => {
                let engine = &self.engine;
                let imports = component.component_type();
                let mut imports = imports.imports(engine).map(|(name, _)| name);
                if let Some(import) = imports.find(|name| {
                    ASYNC_IMPORTS.iter().any(|interface| {
                        name.strip_prefix(interface)
                            .is_some_and(|version| version.starts_with('@'))
                    })
                }) {
                    return Err(FilterLoadError::InlineNeedsYielding {
                        filter: source.filter.to_owned(),
                        path: source.path.to_owned(),
                        import: import.to_owned(),
                    });
                }
                &self.inline_linker
            }
        };
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| source.contract(describe(&e)))?;
        let module = Arc::new(CompiledModule {
            pre,
            exports,
            execution,
        });
        self.modules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((source.hash, execution), module.clone());
        Ok(module)
    }

    /// Forget compiled modules no longer used by anyone but the cache (after
    /// a config generation replaced them).
    pub(crate) fn prune_modules(&self) {
        self.modules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, module| Arc::strong_count(module) > 1);
    }
}
