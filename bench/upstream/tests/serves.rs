//! The upstream binary, started for real on an ephemeral port and spoken to
//! over a plain TCP socket.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

struct Upstream {
    child: Child,
    addr: String,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(args: &[&str]) -> Upstream {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bench-upstream"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start bench-upstream");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the listening line");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .expect("listening line")
        .to_string();
    Upstream { child, addr }
}

/// Sends one request and reads one response (head + content-length body).
fn exchange(stream: &mut TcpStream, request: &str) -> (String, Vec<u8>) {
    stream.write_all(request.as_bytes()).expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("read head");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).expect("utf-8 head");
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_string())
        })
        .expect("content-length")
        .parse()
        .expect("number");
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).expect("read body");
    (head, body)
}

#[test]
fn answers_with_the_fixed_body_and_keeps_the_connection() {
    let upstream = start(&["--body-bytes", "10"]);
    let mut stream = TcpStream::connect(&upstream.addr).expect("connect");
    for _ in 0..3 {
        let (head, body) = exchange(&mut stream, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(body, b"xxxxxxxxx\n");
        assert!(
            !head.to_ascii_lowercase().contains("x-bench-seen"),
            "{head}"
        );
    }
}

#[test]
fn reports_the_bench_request_headers_it_saw_when_asked() {
    let upstream = start(&[]);
    let mut stream = TcpStream::connect(&upstream.addr).expect("connect");
    let (head, _) = exchange(
        &mut stream,
        "GET / HTTP/1.1\r\nHost: x\r\nx-bench-verify: 1\r\nx-bench-req-2: 1\r\nx-bench-req-1: 1\r\nx-other: 1\r\n\r\n",
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("x-bench-seen: x-bench-req-1,x-bench-req-2\r\n"),
        "{head}"
    );
}

#[test]
fn refuses_bad_arguments() {
    let out = Command::new(env!("CARGO_BIN_EXE_bench-upstream"))
        .args(["--threads", "0", "--listen", "127.0.0.1:0"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--threads must be at least 1"));
}
