//! The HTTP/1 client against scripted upstreams: real sockets on 127.0.0.1,
//! the upstream's bytes written by hand so framing edge cases are exact.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::{SendError, send};
use crate::body::{self, BoxError, ProxyBody};
use crate::upstream::pool::{H1Conn, Pool, PoolSettings};

/// An upstream that runs `script` on the first connection it accepts.
async fn upstream<F, Fut>(script: F) -> (SocketAddr, tokio::task::JoinHandle<()>)
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        script(stream).await;
    });
    (addr, task)
}

/// Read one request head (through the blank line) and return it.
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        assert_eq!(
            stream.read(&mut byte).await.unwrap(),
            1,
            "request head cut short"
        );
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

async fn read_exact(stream: &mut TcpStream, len: usize) -> String {
    let mut buf = vec![0u8; len];
    stream.read_exact(&mut buf).await.unwrap();
    String::from_utf8(buf).unwrap()
}

fn pool() -> Arc<Pool> {
    Arc::new(Pool::new(PoolSettings {
        max_idle: 4,
        idle_timeout: Duration::from_secs(3600),
    }))
}

fn get(path: &str) -> Request<ProxyBody> {
    Request::get(path)
        .header("host", "upstream.test")
        .body(body::empty())
        .unwrap()
}

/// A request body fed through a channel, with no known length.
fn streamed() -> (mpsc::Sender<Result<Frame<Bytes>, BoxError>>, ProxyBody) {
    let (tx, rx) = mpsc::channel(4);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (tx, body::boxed(StreamBody::new(stream)))
}

async fn fresh(addr: SocketAddr) -> H1Conn {
    TcpStream::connect(addr).await.unwrap().into()
}

fn failed(result: Result<http::Response<super::ResponseBody>, SendError>) -> String {
    match result {
        Err(SendError::Failed(reason)) => reason,
        Err(SendError::Unsent(_)) => panic!("handed back instead of failing"),
        Ok(response) => panic!("got {}", response.status()),
    }
}

#[tokio::test]
async fn a_sized_response_is_read_and_the_connection_serves_the_next_request() {
    let (addr, upstream) = upstream(|mut s| async move {
        for path in ["/one", "/two"] {
            let head = read_head(&mut s).await;
            assert!(
                head.starts_with(&format!("GET {path} HTTP/1.1\r\n")),
                "{head}"
            );
            assert!(head.contains("host: upstream.test\r\n"), "{head}");
            assert!(!head.contains("content-length") && !head.contains("transfer-encoding"));
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-up: 1\r\n\r\nhello")
                .await
                .unwrap();
        }
    })
    .await;
    let pool = pool();
    let response = send(fresh(addr).await, false, get("/one"), Some(pool.clone()))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-up"], "1");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "hello");
    assert_eq!(pool.idle_count(), 1);

    // Same socket: the upstream accepts only one connection.
    let reused = pool.take_h1().expect("pooled");
    // The read buffer comes back with the connection, for the next response.
    assert!(reused.buf.is_empty());
    assert!(reused.buf.capacity() > 1024, "{}", reused.buf.capacity());
    let response = send(reused, true, get("/two"), Some(pool.clone()))
        .await
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "hello");
    upstream.await.unwrap();
}

#[tokio::test]
async fn a_chunked_response_written_a_byte_at_a_time_keeps_its_trailers() {
    let (addr, upstream) = upstream(|mut s| async move {
        read_head(&mut s).await;
        let response = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
            5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-checksum: abc\r\n\r\n";
        for byte in response {
            s.write_all(&[*byte]).await.unwrap();
            s.flush().await.unwrap();
        }
        // Keep the connection open until the client is done with it.
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest).await;
    })
    .await;
    let pool = pool();
    let response = send(fresh(addr).await, false, get("/"), Some(pool.clone()))
        .await
        .unwrap();
    let collected = response.into_body().collect().await.unwrap();
    assert_eq!(collected.trailers().unwrap()["x-checksum"], "abc");
    assert_eq!(collected.to_bytes(), "hello world");
    assert_eq!(pool.idle_count(), 1);
    drop(pool);
    upstream.await.unwrap();
}

#[tokio::test]
async fn a_body_until_close_is_read_and_the_connection_not_pooled() {
    let (addr, _upstream) = upstream(|mut s| async move {
        read_head(&mut s).await;
        s.write_all(b"HTTP/1.0 200 OK\r\n\r\nall of it")
            .await
            .unwrap();
    })
    .await;
    let pool = pool();
    let response = send(fresh(addr).await, false, get("/"), Some(pool.clone()))
        .await
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "all of it");
    assert_eq!(pool.idle_count(), 0);
}

#[tokio::test]
async fn informational_responses_are_skipped() {
    let (addr, _upstream) = upstream(|mut s| async move {
        read_head(&mut s).await;
        s.write_all(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n\
              HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok",
        )
        .await
        .unwrap();
    })
    .await;
    let response = send(fresh(addr).await, false, get("/"), None)
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert!(response.headers().get("link").is_none());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "ok");
}

#[tokio::test]
async fn head_responses_have_no_body_and_free_the_connection_at_once() {
    let (addr, _upstream) = upstream(|mut s| async move {
        read_head(&mut s).await;
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n")
            .await
            .unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest).await;
    })
    .await;
    let pool = pool();
    let mut request = get("/");
    *request.method_mut() = Method::HEAD;
    let response = send(fresh(addr).await, false, request, Some(pool.clone()))
        .await
        .unwrap();
    assert_eq!(response.headers()["content-length"], "10");
    // Pooled before anyone reads the (empty) body.
    assert_eq!(pool.idle_count(), 1);
    assert!(http_body::Body::is_end_stream(response.body()));
}

#[tokio::test]
async fn invalid_response_heads_fail_with_the_reason() {
    let cases: [(&[u8], &str); 4] = [
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\n",
            "conflicting content-length",
        ),
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
            "invalid content-length",
        ),
        (b"HTTP/1.1 OK\r\n\r\n", "invalid response head"),
        (
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
            "without an upgrade request",
        ),
    ];
    for (response, expected) in cases {
        let (addr, _upstream) = upstream(move |mut s| async move {
            read_head(&mut s).await;
            s.write_all(response).await.unwrap();
        })
        .await;
        let reason = failed(send(fresh(addr).await, false, get("/"), None).await);
        assert!(
            reason.contains(expected),
            "{reason:?} should say {expected:?}"
        );
    }
}

#[tokio::test]
async fn too_many_header_fields_fail() {
    let (addr, _upstream) = upstream(|mut s| async move {
        read_head(&mut s).await;
        let mut response = String::from("HTTP/1.1 200 OK\r\n");
        for i in 0..=super::decode::MAX_HEADERS {
            response.push_str(&format!("x-{i}: v\r\n"));
        }
        response.push_str("\r\n");
        s.write_all(response.as_bytes()).await.unwrap();
    })
    .await;
    let reason = failed(send(fresh(addr).await, false, get("/"), None).await);
    assert!(reason.contains("more than 100 fields"), "{reason}");
}

#[tokio::test]
async fn a_body_cut_short_is_an_error_not_an_end() {
    for response in [
        &b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc"[..],
        &b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab"[..],
        &b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n"[..],
    ] {
        let (addr, _upstream) = upstream(move |mut s| async move {
            read_head(&mut s).await;
            s.write_all(response).await.unwrap();
        })
        .await;
        let pool = pool();
        let response = send(fresh(addr).await, false, get("/"), Some(pool.clone()))
            .await
            .unwrap();
        assert!(response.into_body().collect().await.is_err());
        assert_eq!(pool.idle_count(), 0);
    }
}

#[tokio::test]
async fn a_sized_request_body_goes_with_its_length() {
    let (addr, _upstream) = upstream(|mut s| async move {
        let head = read_head(&mut s).await;
        assert!(head.starts_with("POST /in HTTP/1.1\r\n"), "{head}");
        assert!(head.contains("content-length: 7\r\n"), "{head}");
        assert_eq!(read_exact(&mut s, 7).await, "payload");
        s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
            .await
            .unwrap();
    })
    .await;
    let request = Request::post("/in").body(body::full("payload")).unwrap();
    let response = send(fresh(addr).await, false, request, None).await.unwrap();
    assert_eq!(response.status(), 204);
}

#[tokio::test]
async fn a_body_of_unknown_length_is_chunked_and_sent_while_the_response_streams() {
    // The upstream answers after the first chunk and echoes each chunk as it
    // comes: the client must keep sending while it reads.
    let (addr, upstream) = upstream(|mut s| async move {
        let head = read_head(&mut s).await;
        assert!(head.contains("transfer-encoding: chunked\r\n"), "{head}");
        s.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            .await
            .unwrap();
        for expected in ["3\r\none\r\n", "3\r\ntwo\r\n"] {
            let chunk = read_exact(&mut s, expected.len()).await;
            assert_eq!(chunk, expected);
            s.write_all(chunk.as_bytes()).await.unwrap();
        }
        assert_eq!(read_exact(&mut s, 5).await, "0\r\n\r\n");
        s.write_all(b"0\r\n\r\n").await.unwrap();
    })
    .await;
    let (tx, request_body) = streamed();
    let request = Request::post("/echo").body(request_body).unwrap();
    tx.send(Ok(Frame::data(Bytes::from("one")))).await.unwrap();
    let pool = pool();
    let response = send(fresh(addr).await, false, request, Some(pool.clone()))
        .await
        .unwrap();
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first, "one");
    tx.send(Ok(Frame::data(Bytes::from("two")))).await.unwrap();
    let second = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(second, "two");
    drop(tx);
    assert!(body.frame().await.is_none());
    upstream.await.unwrap();
    assert_eq!(pool.idle_count(), 1);
}

#[tokio::test]
async fn a_request_body_longer_than_its_content_length_fails() {
    let (addr, _upstream) = upstream(|mut s| async move {
        read_head(&mut s).await;
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest).await;
    })
    .await;
    let (tx, request_body) = streamed();
    let request = Request::post("/")
        .header("content-length", "2")
        .body(request_body)
        .unwrap();
    tx.send(Ok(Frame::data(Bytes::from("three"))))
        .await
        .unwrap();
    let reason = failed(send(fresh(addr).await, false, request, None).await);
    assert!(
        reason.contains("longer than its content-length"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_pooled_connection_found_closed_hands_an_idempotent_request_back() {
    // The upstream closes without answering, as when its keep-alive runs out
    // just as the request goes out.
    for (method, handed_back) in [(Method::GET, true), (Method::POST, false)] {
        let (addr, upstream) = upstream(|mut s| async move {
            read_head(&mut s).await;
        })
        .await;
        let mut request = get("/again");
        *request.method_mut() = method.clone();
        let result = send(fresh(addr).await, true, request, None).await;
        match result {
            Err(SendError::Unsent(request)) => {
                assert!(handed_back, "{method} handed back");
                assert_eq!(request.uri(), "/again");
            }
            Err(SendError::Failed(reason)) => {
                assert!(!handed_back, "{method} failed: {reason}");
                assert!(reason.contains("closed the connection"), "{reason}");
            }
            Ok(response) => panic!("got {}", response.status()),
        }
        upstream.await.unwrap();
    }
}

#[test]
fn head_fields_are_sliced_from_the_head_and_the_body_stays_in_the_buffer() {
    let mut buf = bytes::BytesMut::from(
        &b"HTTP/1.1 100 Continue\r\nx-early: 1\r\n\r\n\
           HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Multi: a\r\nx-multi: b\r\n\
           x-opaque: caf\xc3\xa9\r\nx-empty:\r\n\r\nhello"[..],
    );
    let head = super::decode::head(&mut buf, &Method::GET)
        .unwrap()
        .expect("a complete head");
    let headers = head.response.headers();
    assert_eq!(head.response.status(), http::StatusCode::OK);
    assert_eq!(headers.len(), 5, "the 100's fields are not the response's");
    assert_eq!(headers["content-length"], "5");
    let multi: Vec<_> = headers.get_all("x-multi").iter().collect();
    assert_eq!(multi, ["a", "b"]);
    assert_eq!(headers["x-opaque"].as_bytes(), "café".as_bytes());
    assert_eq!(headers["x-empty"], "");
    assert_eq!(&buf[..], b"hello", "only the head is consumed");
}

#[test]
fn a_partial_head_consumes_nothing() {
    let mut buf = bytes::BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Len"[..]);
    assert!(
        super::decode::head(&mut buf, &Method::GET)
            .unwrap()
            .is_none()
    );
    assert_eq!(&buf[..], b"HTTP/1.1 200 OK\r\nContent-Len");
}
