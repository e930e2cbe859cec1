//! The Envoy side of the benchmark's header work, as a proxy-wasm filter for
//! `wasm32-wasip1`: every request gets `x-bench-req-<id>: 1` on its way
//! upstream and every response `x-bench-resp-<id>: 1` on its way back.
//!
//! `<id>` is the plugin configuration (a short string such as `1`), so one
//! module loaded three times with ids 1, 2, 3 adds three distinct header
//! pairs — the same work as three Weir `bench-header` filters.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(HeaderRoot::default()) });
}}

/// The header names one configured filter adds, computed once at configure time.
struct HeaderNames {
    request: String,
    response: String,
}

#[derive(Default)]
struct HeaderRoot {
    names: Option<Rc<HeaderNames>>,
}

impl Context for HeaderRoot {}

impl RootContext for HeaderRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let id = self
            .get_plugin_configuration()
            .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| "0".to_string());
        let valid = id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            proxy_wasm::hostcalls::log(LogLevel::Error, &format!("bad header id {id:?}")).ok();
            return false;
        }
        self.names = Some(Rc::new(HeaderNames {
            request: format!("x-bench-req-{id}"),
            response: format!("x-bench-resp-{id}"),
        }));
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let names = self.names.clone()?;
        Some(Box::new(HeaderFilter { names }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct HeaderFilter {
    names: Rc<HeaderNames>,
}

impl Context for HeaderFilter {}

impl HttpContext for HeaderFilter {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.add_http_request_header(&self.names.request, "1");
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.add_http_response_header(&self.names.response, "1");
        Action::Continue
    }
}
