//! The `http` interface: the `request`, `response` and `body` resources,
//! backed by the [`ExchangeData`](super::ExchangeData) moved into the store.
//!
//! The guest only ever borrows these handles for the duration of a phase
//! call, so each resource has one fixed rep ([`REQUEST_REP`] etc.). A handle
//! used when its data is not present (which the component model already
//! prevents) traps rather than panicking. Invalid names or values are
//! returned to the guest as `Err(String)`.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::uri::PathAndQuery;
use http::{Method, StatusCode, Uri};
use wasmtime::component::Resource;

use super::{HostState, Phase};
use crate::wasm::bindings::weir::filter::http as wit;

/// The host type behind the `request` resource (data lives in the store).
pub struct RequestHandle;
/// The host type behind the `response` resource (data lives in the store).
pub struct ResponseHandle;
/// The host type behind the `body` resource (data lives in the store).
pub struct BodyHandle;

/// The rep of the one request handle a phase call can see.
pub(crate) const REQUEST_REP: u32 = 1;
/// The rep of the one response handle a phase call can see.
pub(crate) const RESPONSE_REP: u32 = 2;
/// The rep of the one body handle a phase call can see.
pub(crate) const BODY_REP: u32 = 3;

/// Longest property key or value a filter may store, in bytes.
const MAX_PROPERTY_BYTES: usize = 16 * 1024;

fn missing(what: &str) -> wasmtime::Error {
    wasmtime::Error::msg(format!(
        "{what} handle used outside the phase that provides it"
    ))
}

impl HostState {
    fn request(
        &mut self,
        handle: &Resource<RequestHandle>,
    ) -> wasmtime::Result<&mut http::request::Parts> {
        match (handle.rep(), self.exchange.request.as_mut()) {
            (REQUEST_REP, Some(parts)) => Ok(parts),
            _ => Err(missing("request")),
        }
    }

    fn response(
        &mut self,
        handle: &Resource<ResponseHandle>,
    ) -> wasmtime::Result<&mut http::response::Parts> {
        match (handle.rep(), self.exchange.response.as_mut()) {
            (RESPONSE_REP, Some(parts)) => Ok(parts),
            _ => Err(missing("response")),
        }
    }

    fn body(&mut self, handle: &Resource<BodyHandle>) -> wasmtime::Result<&mut bytes::Bytes> {
        match (handle.rep(), self.exchange.body.as_mut()) {
            (BODY_REP, Some(body)) => Ok(body),
            _ => Err(missing("body")),
        }
    }
}

/// Header values as text; non-UTF-8 bytes (obs-text) are replaced.
fn value_text(value: &HeaderValue) -> String {
    match value.to_str() {
        Ok(text) => text.to_owned(),
        Err(_) => String::from_utf8_lossy(value.as_bytes()).into_owned(),
    }
}

fn parse_name(name: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("invalid header name `{name}`"))
}

/// The value keeps the string's buffer (lifted from the guest already), no
/// copy; the same check as `HeaderValue::from_str`.
fn parse_value(name: &str, value: String) -> Result<HeaderValue, String> {
    HeaderValue::from_maybe_shared(bytes::Bytes::from(value))
        .map_err(|_| format!("invalid value for header `{name}`"))
}

fn header_first(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).map(value_text)
}

fn header_all(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers.get_all(name).iter().map(value_text).collect()
}

fn header_list(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value_text(value)))
        .collect()
}

fn header_set(headers: &mut HeaderMap, name: &str, value: String) -> Result<(), String> {
    let header = parse_name(name)?;
    let value = parse_value(name, value)?;
    headers.insert(header, value);
    Ok(())
}

fn header_add(headers: &mut HeaderMap, name: &str, value: String) -> Result<(), String> {
    let header = parse_name(name)?;
    let value = parse_value(name, value)?;
    headers.append(header, value);
    Ok(())
}

fn header_remove(headers: &mut HeaderMap, name: &str) {
    if let Ok(header) = HeaderName::from_bytes(name.as_bytes()) {
        headers.remove(header);
    }
}

/// Replace the path and query of `uri`, keeping scheme and authority.
fn with_path(uri: &Uri, path_and_query: &str) -> Result<Uri, String> {
    if !path_and_query.starts_with('/') {
        return Err(format!("path `{path_and_query}` must start with `/`"));
    }
    let pq = PathAndQuery::try_from(path_and_query)
        .map_err(|e| format!("invalid path `{path_and_query}`: {e}"))?;
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(pq);
    Uri::from_parts(parts).map_err(|e| format!("invalid path `{path_and_query}`: {e}"))
}

impl wit::Host for HostState {}

impl wit::HostRequest for HostState {
    fn id(&mut self, _request: Resource<RequestHandle>) -> wasmtime::Result<String> {
        Ok(self.exchange.ctx.request_id.as_str().to_owned())
    }

    fn method(&mut self, handle: Resource<RequestHandle>) -> wasmtime::Result<String> {
        Ok(self.request(&handle)?.method.as_str().to_owned())
    }

    fn set_method(
        &mut self,
        handle: Resource<RequestHandle>,
        method: String,
    ) -> wasmtime::Result<Result<(), String>> {
        let parts = self.request(&handle)?;
        Ok(match Method::from_bytes(method.as_bytes()) {
            Ok(m) => {
                parts.method = m;
                Ok(())
            }
            Err(_) => Err(format!("invalid method `{method}`")),
        })
    }

    fn path(&mut self, handle: Resource<RequestHandle>) -> wasmtime::Result<String> {
        Ok(self.request(&handle)?.uri.path().to_owned())
    }

    fn query(&mut self, handle: Resource<RequestHandle>) -> wasmtime::Result<Option<String>> {
        Ok(self.request(&handle)?.uri.query().map(str::to_owned))
    }

    fn set_path(
        &mut self,
        handle: Resource<RequestHandle>,
        path_and_query: String,
    ) -> wasmtime::Result<Result<(), String>> {
        let parts = self.request(&handle)?;
        Ok(with_path(&parts.uri, &path_and_query).map(|uri| parts.uri = uri))
    }

    fn authority(&mut self, handle: Resource<RequestHandle>) -> wasmtime::Result<String> {
        let parts = self.request(&handle)?;
        if let Some(authority) = parts.uri.authority() {
            return Ok(authority.as_str().to_owned());
        }
        Ok(header_first(&parts.headers, "host").unwrap_or_default())
    }

    fn scheme(&mut self, _request: Resource<RequestHandle>) -> wasmtime::Result<String> {
        Ok(self.exchange.ctx.scheme.to_owned())
    }

    fn peer_address(&mut self, _request: Resource<RequestHandle>) -> wasmtime::Result<String> {
        Ok(self
            .exchange
            .ctx
            .peer
            .map(|peer| peer.to_string())
            .unwrap_or_default())
    }

    fn peer_identity(
        &mut self,
        _request: Resource<RequestHandle>,
    ) -> wasmtime::Result<Option<String>> {
        Ok(self.exchange.ctx.peer_identity.clone())
    }

    fn header(
        &mut self,
        handle: Resource<RequestHandle>,
        name: String,
    ) -> wasmtime::Result<Option<String>> {
        Ok(header_first(&self.request(&handle)?.headers, &name))
    }

    fn header_all(
        &mut self,
        handle: Resource<RequestHandle>,
        name: String,
    ) -> wasmtime::Result<Vec<String>> {
        Ok(header_all(&self.request(&handle)?.headers, &name))
    }

    fn headers(
        &mut self,
        handle: Resource<RequestHandle>,
    ) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(header_list(&self.request(&handle)?.headers))
    }

    fn set_header(
        &mut self,
        handle: Resource<RequestHandle>,
        name: String,
        value: String,
    ) -> wasmtime::Result<Result<(), String>> {
        Ok(header_set(
            &mut self.request(&handle)?.headers,
            &name,
            value,
        ))
    }

    fn add_header(
        &mut self,
        handle: Resource<RequestHandle>,
        name: String,
        value: String,
    ) -> wasmtime::Result<Result<(), String>> {
        Ok(header_add(
            &mut self.request(&handle)?.headers,
            &name,
            value,
        ))
    }

    fn remove_header(
        &mut self,
        handle: Resource<RequestHandle>,
        name: String,
    ) -> wasmtime::Result<()> {
        header_remove(&mut self.request(&handle)?.headers, &name);
        Ok(())
    }

    fn set_cluster(
        &mut self,
        handle: Resource<RequestHandle>,
        name: String,
    ) -> wasmtime::Result<Result<(), String>> {
        self.request(&handle)?;
        if self.exchange.phase != Phase::RequestHeaders {
            return Ok(Err(
                "the cluster can only be chosen in on-request-headers".to_owned()
            ));
        }
        if !self.callouts.has_cluster(&name) {
            return Ok(Err(format!("unknown cluster `{name}`")));
        }
        self.exchange.ctx.cluster = Some(name.into());
        self.exchange.ctx.cluster_overridden = true;
        Ok(Ok(()))
    }

    fn cluster(&mut self, _request: Resource<RequestHandle>) -> wasmtime::Result<Option<String>> {
        Ok(self.exchange.ctx.cluster.as_deref().map(str::to_owned))
    }

    fn clear_route_cache(&mut self, _request: Resource<RequestHandle>) -> wasmtime::Result<()> {
        // Re-routing only happens after request headers; later it has no meaning.
        if self.exchange.phase == Phase::RequestHeaders {
            self.exchange.ctx.reroute = true;
        }
        Ok(())
    }

    fn property(
        &mut self,
        _request: Resource<RequestHandle>,
        key: String,
    ) -> wasmtime::Result<Option<String>> {
        Ok(self.exchange.ctx.properties.get(&key).cloned())
    }

    fn set_property(
        &mut self,
        _request: Resource<RequestHandle>,
        key: String,
        value: String,
    ) -> wasmtime::Result<()> {
        if key.len() > MAX_PROPERTY_BYTES || value.len() > MAX_PROPERTY_BYTES {
            return Err(wasmtime::Error::msg(format!(
                "property `{}` larger than {MAX_PROPERTY_BYTES} bytes",
                key.chars().take(64).collect::<String>()
            )));
        }
        self.exchange.ctx.properties.insert(key, value);
        Ok(())
    }

    fn drop(&mut self, _rep: Resource<RequestHandle>) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl wit::HostResponse for HostState {
    fn status(&mut self, handle: Resource<ResponseHandle>) -> wasmtime::Result<u16> {
        Ok(self.response(&handle)?.status.as_u16())
    }

    fn set_status(
        &mut self,
        handle: Resource<ResponseHandle>,
        status: u16,
    ) -> wasmtime::Result<Result<(), String>> {
        let parts = self.response(&handle)?;
        Ok(match valid_status(status) {
            Ok(code) => {
                parts.status = code;
                Ok(())
            }
            Err(e) => Err(e),
        })
    }

    fn header(
        &mut self,
        handle: Resource<ResponseHandle>,
        name: String,
    ) -> wasmtime::Result<Option<String>> {
        Ok(header_first(&self.response(&handle)?.headers, &name))
    }

    fn header_all(
        &mut self,
        handle: Resource<ResponseHandle>,
        name: String,
    ) -> wasmtime::Result<Vec<String>> {
        Ok(header_all(&self.response(&handle)?.headers, &name))
    }

    fn headers(
        &mut self,
        handle: Resource<ResponseHandle>,
    ) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(header_list(&self.response(&handle)?.headers))
    }

    fn set_header(
        &mut self,
        handle: Resource<ResponseHandle>,
        name: String,
        value: String,
    ) -> wasmtime::Result<Result<(), String>> {
        Ok(header_set(
            &mut self.response(&handle)?.headers,
            &name,
            value,
        ))
    }

    fn add_header(
        &mut self,
        handle: Resource<ResponseHandle>,
        name: String,
        value: String,
    ) -> wasmtime::Result<Result<(), String>> {
        Ok(header_add(
            &mut self.response(&handle)?.headers,
            &name,
            value,
        ))
    }

    fn remove_header(
        &mut self,
        handle: Resource<ResponseHandle>,
        name: String,
    ) -> wasmtime::Result<()> {
        header_remove(&mut self.response(&handle)?.headers, &name);
        Ok(())
    }

    fn drop(&mut self, _rep: Resource<ResponseHandle>) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl wit::HostBody for HostState {
    fn len(&mut self, handle: Resource<BodyHandle>) -> wasmtime::Result<u64> {
        Ok(self.body(&handle)?.len() as u64)
    }

    fn bytes(&mut self, handle: Resource<BodyHandle>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.body(&handle)?.to_vec())
    }

    fn replace(&mut self, handle: Resource<BodyHandle>, data: Vec<u8>) -> wasmtime::Result<()> {
        *self.body(&handle)? = bytes::Bytes::from(data);
        Ok(())
    }

    fn drop(&mut self, _rep: Resource<BodyHandle>) -> wasmtime::Result<()> {
        Ok(())
    }
}

/// A status a filter may set or answer with: 100..=599.
pub(crate) fn valid_status(status: u16) -> Result<StatusCode, String> {
    if !(100..=599).contains(&status) {
        return Err(format!("invalid status {status}"));
    }
    StatusCode::from_u16(status).map_err(|_| format!("invalid status {status}"))
}

/// Build a local response from what a filter answered.
pub(crate) fn local_response(
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
) -> Result<http::Response<bytes::Bytes>, String> {
    let mut response = http::Response::new(bytes::Bytes::from(body));
    *response.status_mut() = valid_status(status)?;
    for (name, value) in headers {
        header_add(response.headers_mut(), &name, value)?;
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_checked_as_from_str_checks_them() {
        for text in ["1", "a b\tc", "", "~!\"#", "caf\u{e9}"] {
            let parsed = parse_value("x", text.to_owned()).unwrap();
            assert_eq!(parsed, HeaderValue::from_str(text).unwrap());
        }
        for text in ["a\nb", "a\rb", "\u{7f}", "\0"] {
            assert!(HeaderValue::from_str(text).is_err(), "{text:?}");
            assert_eq!(
                parse_value("x-name", text.to_owned()).unwrap_err(),
                "invalid value for header `x-name`",
                "{text:?}"
            );
        }
    }
}
