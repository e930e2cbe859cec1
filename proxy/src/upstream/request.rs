//! Shaping a request for the upstream protocol, keeping the host the client
//! asked for (never the endpoint's address, unless the request names none).

use std::net::SocketAddr;

use http::header::{CONNECTION, HOST, TE, TRANSFER_ENCODING, UPGRADE};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Method, Request, Uri, Version};

/// HTTP/1.1: origin-form target (`/path?query`) and a `Host` header. The
/// host is the URI authority if there is one (an HTTP/2 `:authority` or an
/// absolute-form target), else the request's `Host`, else the endpoint.
/// CONNECT keeps its authority-form target.
pub(crate) fn to_http1<B>(req: &mut Request<B>, endpoint: SocketAddr) {
    if let Some(authority) = req.uri().authority() {
        if let Ok(host) = HeaderValue::from_str(without_userinfo(authority)) {
            req.headers_mut().insert(HOST, host);
        }
    } else if !req.headers().contains_key(HOST)
        && let Ok(host) = HeaderValue::from_str(&endpoint.to_string())
    {
        req.headers_mut().insert(HOST, host);
    }
    if req.method() != Method::CONNECT && req.uri().authority().is_some() {
        let path = req
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        *req.uri_mut() = Uri::from(path);
    }
    *req.version_mut() = Version::HTTP_11;
}

/// HTTP/2 (h2c): absolute URI `http://{authority}{path}` where the authority
/// is the URI's, else the `Host` header, else the endpoint; the `Host`
/// header is then dropped (`:authority` carries it), as are the HTTP/1
/// connection-specific headers HTTP/2 forbids.
pub(crate) fn to_http2<B>(req: &mut Request<B>, endpoint: SocketAddr) {
    let authority = req
        .uri()
        .authority()
        .and_then(|a| Authority::try_from(without_userinfo(a)).ok())
        .or_else(|| {
            let host = req.headers().get(HOST)?.to_str().ok()?;
            Authority::try_from(host).ok()
        })
        .or_else(|| Authority::try_from(endpoint.to_string()).ok());
    let path = req
        .uri()
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let mut builder = Uri::builder().scheme(Scheme::HTTP).path_and_query(path);
    if let Some(authority) = authority {
        builder = builder.authority(authority);
    }
    match builder.build() {
        Ok(uri) => *req.uri_mut() = uri,
        Err(e) => {
            tracing::debug!(error = %e, "could not build the HTTP/2 request URI; sending it as is")
        }
    }
    let headers = req.headers_mut();
    headers.remove(HOST);
    for name in [CONNECTION, TRANSFER_ENCODING, UPGRADE] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
    if headers.get(TE).is_some_and(|te| te != "trailers") {
        headers.remove(TE);
    }
    *req.version_mut() = Version::HTTP_2;
}

fn without_userinfo(authority: &Authority) -> &str {
    let text = authority.as_str();
    text.rsplit_once('@').map_or(text, |(_, host)| host)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENDPOINT: &str = "10.1.2.3:8080";

    fn request(version: Version, uri: &str, host: Option<&str>) -> Request<()> {
        let mut builder = Request::builder().version(version).uri(uri);
        if let Some(host) = host {
            builder = builder.header(HOST, host);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn http1_keeps_host_and_uses_origin_form() {
        #[rustfmt::skip]
        let cases = [
            (Version::HTTP_11, "/a?b", Some("public.example:81"), "/a?b", "public.example:81"),
            (Version::HTTP_2, "http://h2.example/a?b", None, "/a?b", "h2.example"),
            (Version::HTTP_2, "https://h2.example:8443/", Some("other"), "/", "h2.example:8443"),
            (Version::HTTP_11, "http://abs.example/x", Some("ignored"), "/x", "abs.example"),
            (Version::HTTP_10, "/old", None, "/old", ENDPOINT),
        ];
        for (version, uri, host, want_uri, want_host) in cases {
            let mut req = request(version, uri, host);
            to_http1(&mut req, ENDPOINT.parse().unwrap());
            assert_eq!(req.uri(), want_uri, "{uri}");
            assert_eq!(req.headers()[HOST], want_host, "{uri}");
            assert_eq!(req.headers().get_all(HOST).iter().count(), 1);
            assert_eq!(req.version(), Version::HTTP_11);
        }
        let mut connect = Request::builder()
            .method(Method::CONNECT)
            .uri("tunnel.example:443")
            .body(())
            .unwrap();
        to_http1(&mut connect, ENDPOINT.parse().unwrap());
        assert_eq!(connect.uri(), "tunnel.example:443");
        assert_eq!(connect.headers()[HOST], "tunnel.example:443");
    }

    #[test]
    fn http2_uses_absolute_uri_with_the_clients_authority() {
        #[rustfmt::skip]
        let cases = [
            (Version::HTTP_2, "http://h2.example/a?b", None, "http://h2.example/a?b"),
            (Version::HTTP_2, "https://secure.example/a", None, "http://secure.example/a"),
            (Version::HTTP_11, "/a?b", Some("public.example:81"), "http://public.example:81/a?b"),
            (Version::HTTP_11, "/a", None, "http://10.1.2.3:8080/a"),
        ];
        for (version, uri, host, want) in cases {
            let mut req = request(version, uri, host);
            req.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("keep-alive"));
            req.headers_mut()
                .insert("keep-alive", HeaderValue::from_static("timeout=5"));
            req.headers_mut()
                .insert(TE, HeaderValue::from_static("gzip"));
            to_http2(&mut req, ENDPOINT.parse().unwrap());
            assert_eq!(req.uri(), want, "{uri}");
            assert_eq!(req.version(), Version::HTTP_2);
            for gone in [HOST.as_str(), "connection", "keep-alive", "te"] {
                assert!(!req.headers().contains_key(gone), "{gone} kept for {uri}");
            }
        }
        let mut grpc = request(Version::HTTP_2, "http://g.example/svc/M", None);
        grpc.headers_mut()
            .insert(TE, HeaderValue::from_static("trailers"));
        to_http2(&mut grpc, ENDPOINT.parse().unwrap());
        assert_eq!(grpc.headers()[TE], "trailers");
    }
}
