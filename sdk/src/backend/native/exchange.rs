//! In-memory request, response and body with the same methods (and the same
//! validation, as far as the SDK can tell) as the proxy's WIT resources.

use std::cell::RefCell;
use std::collections::BTreeMap;

/// `RequestRef` & co. on native targets: shared references to in-memory
/// state, mutated through `RefCell` exactly like the proxy's resources are
/// mutated through `&self` methods.
pub(crate) type RequestRef<'a> = &'a HostRequest;
pub(crate) type ResponseRef<'a> = &'a HostResponse;
pub(crate) type BodyRef<'a> = &'a HostBody;

/// Everything the proxy knows about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestState {
    pub id: String,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub authority: String,
    pub scheme: String,
    pub peer_address: String,
    pub peer_identity: Option<String>,
    pub headers: Vec<(String, String)>,
    pub cluster: Option<String>,
    pub route_cache_cleared: bool,
    pub properties: BTreeMap<String, String>,
}

#[derive(Debug)]
pub(crate) struct HostRequest(pub RefCell<RequestState>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResponseState {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug)]
pub(crate) struct HostResponse(pub RefCell<ResponseState>);

#[derive(Debug)]
pub(crate) struct HostBody(pub RefCell<Vec<u8>>);

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// An HTTP token (header name, method).
pub(crate) fn check_token(what: &str, s: &str) -> Result<(), String> {
    if s.is_empty() || !s.chars().all(is_tchar) {
        return Err(format!("invalid {what} {s:?}"));
    }
    Ok(())
}

/// A header value: no control characters except tab.
pub(crate) fn check_header_value(s: &str) -> Result<(), String> {
    if s.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(format!("invalid header value {s:?}"));
    }
    Ok(())
}

/// `path[?query]`, starting with `/`, without spaces or control characters.
pub(crate) fn split_path(path_and_query: &str) -> Result<(String, Option<String>), String> {
    if !path_and_query.starts_with('/') {
        return Err(format!("path {path_and_query:?} does not start with `/`"));
    }
    if path_and_query.bytes().any(|b| b <= 0x20 || b == 0x7f) {
        return Err(format!("invalid path {path_and_query:?}"));
    }
    Ok(match path_and_query.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (path_and_query.to_string(), None),
    })
}

pub(crate) mod headers {
    use super::{check_header_value, check_token};

    pub fn get(h: &[(String, String)], name: &str) -> Option<String> {
        h.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }

    pub fn get_all(h: &[(String, String)], name: &str) -> Vec<String> {
        h.iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn remove(h: &mut Vec<(String, String)>, name: &str) {
        h.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    pub fn add(h: &mut Vec<(String, String)>, name: &str, value: &str) -> Result<(), String> {
        check_token("header name", name)?;
        check_header_value(value)?;
        h.push((name.to_ascii_lowercase(), value.to_string()));
        Ok(())
    }

    pub fn set(h: &mut Vec<(String, String)>, name: &str, value: &str) -> Result<(), String> {
        check_token("header name", name)?;
        check_header_value(value)?;
        remove(h, name);
        h.push((name.to_ascii_lowercase(), value.to_string()));
        Ok(())
    }
}

impl HostRequest {
    pub fn id(&self) -> String {
        self.0.borrow().id.clone()
    }
    pub fn method(&self) -> String {
        self.0.borrow().method.clone()
    }
    pub fn set_method(&self, method: &str) -> Result<(), String> {
        check_token("method", method)?;
        self.0.borrow_mut().method = method.to_string();
        Ok(())
    }
    pub fn path(&self) -> String {
        self.0.borrow().path.clone()
    }
    pub fn query(&self) -> Option<String> {
        self.0.borrow().query.clone()
    }
    pub fn set_path(&self, path_and_query: &str) -> Result<(), String> {
        let (path, query) = split_path(path_and_query)?;
        let mut s = self.0.borrow_mut();
        s.path = path;
        s.query = query;
        Ok(())
    }
    pub fn authority(&self) -> String {
        self.0.borrow().authority.clone()
    }
    pub fn scheme(&self) -> String {
        self.0.borrow().scheme.clone()
    }
    pub fn peer_address(&self) -> String {
        self.0.borrow().peer_address.clone()
    }
    pub fn peer_identity(&self) -> Option<String> {
        self.0.borrow().peer_identity.clone()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        headers::get(&self.0.borrow().headers, name)
    }
    pub fn header_all(&self, name: &str) -> Vec<String> {
        headers::get_all(&self.0.borrow().headers, name)
    }
    pub fn headers(&self) -> Vec<(String, String)> {
        self.0.borrow().headers.clone()
    }
    pub fn set_header(&self, name: &str, value: &str) -> Result<(), String> {
        headers::set(&mut self.0.borrow_mut().headers, name, value)
    }
    pub fn add_header(&self, name: &str, value: &str) -> Result<(), String> {
        headers::add(&mut self.0.borrow_mut().headers, name, value)
    }
    pub fn remove_header(&self, name: &str) {
        headers::remove(&mut self.0.borrow_mut().headers, name)
    }
    pub fn set_cluster(&self, name: &str) -> Result<(), String> {
        super::host::check_cluster(name)?;
        self.0.borrow_mut().cluster = Some(name.to_string());
        Ok(())
    }
    pub fn cluster(&self) -> Option<String> {
        self.0.borrow().cluster.clone()
    }
    pub fn clear_route_cache(&self) {
        self.0.borrow_mut().route_cache_cleared = true;
    }
    pub fn property(&self, key: &str) -> Option<String> {
        self.0.borrow().properties.get(key).cloned()
    }
    pub fn set_property(&self, key: &str, value: &str) {
        self.0
            .borrow_mut()
            .properties
            .insert(key.to_string(), value.to_string());
    }
}

impl HostResponse {
    pub fn status(&self) -> u16 {
        self.0.borrow().status
    }
    pub fn set_status(&self, status: u16) -> Result<(), String> {
        if !(100..=999).contains(&status) {
            return Err(format!("invalid status {status}"));
        }
        self.0.borrow_mut().status = status;
        Ok(())
    }
    pub fn header(&self, name: &str) -> Option<String> {
        headers::get(&self.0.borrow().headers, name)
    }
    pub fn header_all(&self, name: &str) -> Vec<String> {
        headers::get_all(&self.0.borrow().headers, name)
    }
    pub fn headers(&self) -> Vec<(String, String)> {
        self.0.borrow().headers.clone()
    }
    pub fn set_header(&self, name: &str, value: &str) -> Result<(), String> {
        headers::set(&mut self.0.borrow_mut().headers, name, value)
    }
    pub fn add_header(&self, name: &str, value: &str) -> Result<(), String> {
        headers::add(&mut self.0.borrow_mut().headers, name, value)
    }
    pub fn remove_header(&self, name: &str) {
        headers::remove(&mut self.0.borrow_mut().headers, name)
    }
}

impl HostBody {
    pub fn len(&self) -> u64 {
        self.0.borrow().len() as u64
    }
    pub fn bytes(&self) -> Vec<u8> {
        self.0.borrow().clone()
    }
    pub fn replace(&self, data: &[u8]) {
        *self.0.borrow_mut() = data.to_vec();
    }
}
