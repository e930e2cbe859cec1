//! What the proxy answers when things go wrong: bad requests, limits,
//! unreachable or slow upstreams; and the admin endpoint.

use std::sync::{Arc, Mutex};

use http::Request;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use weir_proxy::body;
use weir_tests::client::{self, raw, raw_status};
use weir_tests::{proxy, server};

const FORWARD: &str = r#"
clusters:
  - name: app
    endpoints: ["{{app}}"]
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
      - name: slow
        match: { prefix: /slow }
        forward: { cluster: app, timeout: 200ms }
      - name: app
        forward: { cluster: app }
"#;

/// An address nothing listens on: bound once, then closed.
async fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().to_string()
}

#[tokio::test]
async fn connection_refused_is_502() {
    let proxy = proxy::new()
        .var("app", closed_port().await)
        .config(FORWARD)
        .run()
        .await;
    let response = client::http1().get(&proxy.url("/")).await;
    assert_eq!(response.status, 502);
    assert_eq!(response.text(), "upstream connect failed\n");
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
}

#[tokio::test]
async fn slow_upstream_is_504_after_the_route_timeout() {
    // The upstream answers only when the test says so — which is never.
    let (_release, never) = oneshot::channel::<()>();
    let never = Arc::new(Mutex::new(Some(never)));
    let upstream = server::http1()
        .route("/slow", move |_req| {
            let never = never.lock().unwrap().take();
            async move {
                if let Some(never) = never {
                    let _ = never.await;
                }
                server::text(200, "too late")
            }
        })
        .run()
        .await;
    let proxy = proxy::new()
        .upstream("app", &upstream)
        .config(FORWARD)
        .run()
        .await;
    let response = client::http1().get(&proxy.url("/slow")).await;
    assert_eq!(response.status, 504);
    assert_eq!(response.text(), "upstream timeout\n");
    assert_eq!(upstream.requests(), 1, "the request did reach the upstream");
}

#[tokio::test]
async fn too_many_headers_is_431() {
    let upstream = server::echo().await;
    let proxy = proxy::new()
        .upstream("app", &upstream)
        .config(FORWARD)
        .run()
        .await;
    let mut request = String::from("GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\n");
    for i in 0..150 {
        request.push_str(&format!("x-h{i}: v\r\n"));
    }
    request.push_str("\r\n");
    assert_eq!(raw_status(&raw(proxy.addr, request.as_bytes()).await), 431);

    // HTTP/2 has no header count in the protocol; the pipeline counts.
    let mut builder = Request::get(proxy.url("/"));
    for i in 0..150 {
        builder = builder.header(format!("x-h{i}"), "v");
    }
    let response = client::http2()
        .send(builder.body(body::empty()).unwrap())
        .await;
    assert_eq!(response.status, 431);
    assert_eq!(response.text(), "too many request headers\n");
    assert_eq!(upstream.requests(), 0);
}

#[tokio::test]
async fn too_large_head_is_431() {
    let upstream = server::echo().await;
    let proxy = proxy::new()
        .upstream("app", &upstream)
        .config(format!(
            "limits:\n  max_request_header_bytes: 16384\n{FORWARD}"
        ))
        .run()
        .await;
    let big = "v".repeat(20 * 1024);
    let request = format!("GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\nx-big: {big}\r\n\r\n");
    assert_eq!(raw_status(&raw(proxy.addr, request.as_bytes()).await), 431);
    // Just under the limit is fine.
    let fits = "v".repeat(8 * 1024);
    let request =
        format!("GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\nx-big: {fits}\r\n\r\n");
    assert_eq!(raw_status(&raw(proxy.addr, request.as_bytes()).await), 200);
    assert_eq!(upstream.requests(), 1);

    // HTTP/2: the header list limit is announced in SETTINGS and enforced by h2.
    let request = Request::get(proxy.url("/"))
        .header("x-big", big)
        .body(body::empty())
        .unwrap();
    let response = client::http2().send(request).await;
    assert_eq!(response.status, 431);
    assert_eq!(upstream.requests(), 1);
}

#[tokio::test]
async fn content_length_with_transfer_encoding_is_400() {
    let upstream = server::echo().await;
    let proxy = proxy::new()
        .upstream("app", &upstream)
        .config(FORWARD)
        .run()
        .await;
    // A request smuggling attempt: which framing wins decides where the
    // second request starts. Neither gets forwarded.
    let attack = "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 35\r\ntransfer-encoding: chunked\r\n\r\n\
                  0\r\n\r\nGET /smuggled HTTP/1.1\r\nhost: a\r\n\r\n";
    let response = raw(proxy.addr, attack.as_bytes()).await;
    assert_eq!(raw_status(&response), 400, "{response}");
    assert!(
        response.contains("both Content-Length and Transfer-Encoding"),
        "{response}"
    );
    assert_eq!(upstream.requests(), 0, "nothing reached the upstream");

    // The same connection's earlier, well-formed requests are served; the
    // ambiguous one (the second) is not.
    let pipelined = "GET /first HTTP/1.1\r\nhost: a\r\n\r\n\
                     POST /second HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n0\r\n\r\n";
    let response = raw(proxy.addr, pipelined.as_bytes()).await;
    let statuses: Vec<&str> = response.matches("HTTP/1.1 ").collect();
    assert_eq!(statuses.len(), 2, "{response}");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("HTTP/1.1 400"), "{response}");
    assert_eq!(upstream.requests(), 1);
}

#[tokio::test]
async fn ambiguous_hosts_are_400() {
    let upstream = server::echo().await;
    let proxy = proxy::new()
        .upstream("app", &upstream)
        .config(FORWARD)
        .run()
        .await;
    let cases = [
        (
            "GET / HTTP/1.1\r\nhost: a\r\nhost: b\r\nconnection: close\r\n\r\n",
            "multiple Host headers",
        ),
        (
            "GET http://a/ HTTP/1.1\r\nhost: b\r\nconnection: close\r\n\r\n",
            "Host does not match the request target",
        ),
        (
            "GET / HTTP/1.1\r\nconnection: close\r\n\r\n",
            "missing Host header",
        ),
    ];
    for (request, reason) in cases {
        let response = raw(proxy.addr, request.as_bytes()).await;
        assert_eq!(raw_status(&response), 400, "{request:?} → {response}");
        assert!(response.contains(reason), "{request:?} → {response}");
    }
    // Absolute form whose authority matches Host is fine.
    let ok = raw(
        proxy.addr,
        b"GET http://a/x HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(raw_status(&ok), 200, "{ok}");
    assert_eq!(upstream.requests(), 1);
}

#[tokio::test]
async fn admin_ready_config_and_404() {
    let proxy = proxy::new()
        .config(
            r#"
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
      - direct_response: { status: 200, body: ok }
"#,
        )
        .run()
        .await;
    let admin = proxy.admin_addr.expect("admin enabled");
    let client = client::http1();
    let ready = client.get(&format!("http://{admin}/ready")).await;
    assert_eq!(
        (ready.status.as_u16(), ready.text().as_str()),
        (200, "ready\n")
    );

    let config = client.get(&format!("http://{admin}/config")).await;
    assert_eq!(config.status, 200);
    assert_eq!(config.header("content-type"), Some("application/json"));
    let json = config.json();
    assert_eq!(json["virtual_hosts"][0]["name"], "all");
    assert_eq!(
        json["limits"]["max_request_headers"], 100,
        "defaults are filled in"
    );

    let unknown = client.get(&format!("http://{admin}/nope")).await;
    assert_eq!(unknown.status, 404);
}

/// Read from `stream` until the peer closes it; returns what arrived.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    // Guards against a hang; the close itself is what the test waits for.
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        stream.read_to_end(&mut out),
    )
    .await
    .expect("the proxy never closed the connection")
    .ok();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let upstream = server::echo().await;
    let proxy = proxy::new()
        .upstream("app", &upstream)
        .config(format!("limits:\n  idle_timeout: 100ms\n{FORWARD}"))
        .run()
        .await;
    // A connection that never says anything (not even which protocol)...
    let mut silent = TcpStream::connect(proxy.addr).await.unwrap();
    assert_eq!(read_until_closed(&mut silent).await, "");
    // ...and one that goes quiet after a complete exchange.
    let mut quiet = TcpStream::connect(proxy.addr).await.unwrap();
    quiet
        .write_all(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n")
        .await
        .unwrap();
    let answered = read_until_closed(&mut quiet).await;
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
}

#[tokio::test]
async fn slow_request_heads_are_cut_off() {
    let upstream = server::echo().await;
    let proxy = proxy::new()
        .upstream("app", &upstream)
        .config(format!("limits:\n  header_read_timeout: 100ms\n{FORWARD}"))
        .run()
        .await;
    let mut slow = TcpStream::connect(proxy.addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nhost: a\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut slow).await;
    assert!(!answer.contains("200"), "{answer}");
    assert_eq!(upstream.requests(), 0);
}

#[tokio::test]
async fn expect_continue_is_answered_by_the_proxy() {
    let upstream = server::http1()
        .fallback(|req| async move {
            let expect = req.headers().get("expect").is_some();
            let body = http_body_util::BodyExt::collect(req.into_body())
                .await
                .unwrap()
                .to_bytes();
            server::text(
                200,
                &format!("expect={expect} body={}", String::from_utf8_lossy(&body)),
            )
        })
        .run()
        .await;
    let proxy = proxy::new()
        .upstream("app", &upstream)
        .config(FORWARD)
        .run()
        .await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(b"POST /up HTTP/1.1\r\nhost: a\r\nexpect: 100-continue\r\ncontent-length: 5\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    // The client holds the body until it hears 100 Continue.
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).await.unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"hello").await.unwrap();
    let answer = read_until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("expect=false body=hello"), "{answer}");
}

#[tokio::test]
async fn an_upgrade_that_does_not_switch_closes_the_connection() {
    let upstream = server::echo().await;
    let proxy = proxy::new()
        .upstream("app", &upstream)
        .config(FORWARD)
        .run()
        .await;
    // The upstream answers the upgrade request with a plain 200; the proxy
    // then ends the connection, so nothing after that head is read as HTTP
    // by a server that has stopped checking its framing.
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nhost: a\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n\
              POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
        )
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert_eq!(
        answer.matches("HTTP/1.1 ").count(),
        1,
        "the second request is never served: {answer}"
    );
    assert_eq!(upstream.requests(), 1);
}

#[tokio::test]
async fn keep_alive_connections_outlive_the_header_read_timeout() {
    // The header read timeout is for a head under way; an idle keep-alive
    // connection is the idle timeout's business (60 s by default).
    let upstream = server::echo().await;
    let proxy = proxy::new()
        .upstream("app", &upstream)
        .config(format!("limits:\n  header_read_timeout: 20ms\n{FORWARD}"))
        .run()
        .await;
    let mut connection = client::http1_connection(proxy.addr).await;
    assert_eq!(connection.get("/first").await.status, 200);
    // Idle for ten header read timeouts: the scenario, not a synchronisation.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(connection.get("/second").await.status, 200);
    assert_eq!(upstream.requests(), 2);
}

#[tokio::test]
async fn a_pipelined_head_is_not_timed_while_the_response_before_it_is_slow() {
    let upstream = server::http1()
        .fallback(|_| async {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            server::text(200, "late")
        })
        .run()
        .await;
    let proxy = proxy::new()
        .upstream("app", &upstream)
        .config(format!("limits:\n  header_read_timeout: 100ms\n{FORWARD}"))
        .run()
        .await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    // A whole request and the start of the next, in one write.
    stream
        .write_all(b"GET /a HTTP/1.1\r\nhost: a\r\n\r\nGET /b HTTP/1.1\r\nhost: a\r\n")
        .await
        .unwrap();
    let first = read_until_ending(&mut stream, "late").await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    // The first response took three header read timeouts; the second head
    // is finished now and is still answered.
    stream.write_all(b"\r\n").await.unwrap();
    let second = read_until_ending(&mut stream, "late").await;
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
    assert_eq!(upstream.requests(), 2);
}

#[tokio::test]
async fn heads_after_a_trailer_with_a_bare_lf_are_still_timed() {
    // hyper ends a trailer line only at CRLF (a bare LF is part of the line)
    // and keeps serving the connection; so must the header read timeout.
    let upstream = server::http1()
        .fallback(|req| async move {
            let body = http_body_util::BodyExt::collect(req.into_body())
                .await
                .unwrap()
                .to_bytes();
            server::text(200, &format!("got {}", String::from_utf8_lossy(&body)))
        })
        .run()
        .await;
    let proxy = proxy::new()
        .upstream("app", &upstream)
        .config(format!("limits:\n  header_read_timeout: 100ms\n{FORWARD}"))
        .run()
        .await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(
            b"POST /t HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n\
              1\r\na\r\n0\r\nx-a: 1\r\n\nx-b: 2\r\n\r\n",
        )
        .await
        .unwrap();
    let first = read_until_ending(&mut stream, "got a").await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    // The next head never finishes: it is cut off, not left to the idle
    // timeout (60 s).
    stream
        .write_all(b"GET /b HTTP/1.1\r\nhost: a\r\n")
        .await
        .unwrap();
    let rest = read_until_closed(&mut stream).await;
    assert!(!rest.contains("200"), "{rest}");
    assert_eq!(upstream.requests(), 1);
}

/// Read from `stream` until what arrived ends with `end`, or the peer
/// closes; returns what arrived.
async fn read_until_ending(stream: &mut TcpStream, end: &str) -> String {
    let mut seen = Vec::new();
    while !seen.ends_with(end.as_bytes()) {
        let mut chunk = [0; 1024];
        // Guards against a hang; the response is what the test waits for.
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(30), stream.read(&mut chunk))
                .await
                .expect("no response within 30 s")
                .unwrap();
        if read == 0 {
            break;
        }
        seen.extend_from_slice(&chunk[..read]);
    }
    String::from_utf8_lossy(&seen).into_owned()
}
