//! `bench-floor`: the least a reverse proxy on tokio can do per HTTP/1.1
//! request, to measure how far Weir's empty chain is from the floor of its
//! own stack (tokio, epoll, two sockets per exchange), as against nginx.
//!
//! One current-thread runtime. Each downstream connection gets its own
//! keep-alive upstream connection. A request head is parsed with
//! `httparse`, written upstream re-serialised (no header added or
//! removed), and the response, which must carry `Content-Length`, is parsed
//! and written back in one write. Bodyless requests only: anything else
//! closes the connection. A measuring tool, not a proxy.
//!
//! `--server hyper` serves the client side with hyper instead (see
//! `hyper_server`), to measure what hyper's server side adds.
//!
//! Usage: `bench-floor --listen 127.0.0.1:PORT --upstream 127.0.0.1:PORT [--server raw|hyper]`

#![forbid(unsafe_code)]

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod hyper_server;

const MAX_HEADERS: usize = 64;

fn main() -> io::Result<()> {
    let (listen, upstream, hyper) = match args() {
        Ok(args) => args,
        Err(err) => {
            eprintln!("bench-floor: {err}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(listen).await?;
        if hyper {
            return hyper_server::run(listener, upstream).await;
        }
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(async move {
                let _ = serve(stream, upstream).await;
            });
        }
    })
}

fn args() -> Result<(SocketAddr, SocketAddr, bool), String> {
    let mut listen = None;
    let mut upstream = None;
    let mut hyper = false;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let addr = || {
            value
                .parse::<SocketAddr>()
                .map_err(|e| format!("{flag} {value}: {e}"))
        };
        match flag.as_str() {
            "--listen" => listen = Some(addr()?),
            "--upstream" => upstream = Some(addr()?),
            "--server" => {
                hyper = match value.as_str() {
                    "raw" => false,
                    "hyper" => true,
                    _ => return Err(format!("--server {value}: expected raw or hyper")),
                }
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    match (listen, upstream) {
        (Some(l), Some(u)) => Ok((l, u, hyper)),
        _ => Err("usage: bench-floor --listen ADDR --upstream ADDR [--server raw|hyper]".into()),
    }
}

async fn serve(mut client: TcpStream, upstream: SocketAddr) -> io::Result<()> {
    client.set_nodelay(true)?;
    let mut up: Option<TcpStream> = None;
    let mut inbuf = Vec::with_capacity(4096);
    let mut upbuf = Vec::with_capacity(4096);
    loop {
        let (len, out) = loop {
            if let Some(head) = parse_request(&inbuf)? {
                break head;
            }
            if client.read_buf(&mut inbuf).await? == 0 {
                return Ok(());
            }
        };
        inbuf.drain(..len);
        let conn = match up.as_mut() {
            Some(conn) => conn,
            None => {
                let conn = TcpStream::connect(upstream).await?;
                conn.set_nodelay(true)?;
                up.insert(conn)
            }
        };
        conn.write_all(&out).await?;
        let (len, body, mut out) = read_response(conn, &mut upbuf, serialize_response).await?;
        out.extend_from_slice(&upbuf[len..len + body]);
        upbuf.drain(..len + body);
        client.write_all(&out).await?;
    }
}

fn invalid(what: impl ToString) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// A whole request head in `buf`: its length and the head re-serialised to
/// send upstream. `None` while it is incomplete.
fn parse_request(buf: &[u8]) -> io::Result<Option<(usize, Vec<u8>)>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf).map_err(invalid)? {
        httparse::Status::Partial => return Ok(None),
        httparse::Status::Complete(len) => len,
    };
    let mut out = Vec::with_capacity(len + 16);
    out.extend_from_slice(req.method.unwrap_or("GET").as_bytes());
    out.push(b' ');
    out.extend_from_slice(req.path.unwrap_or("/").as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for h in req.headers.iter() {
        let body = h.name.eq_ignore_ascii_case("content-length") && h.value != b"0"
            || h.name.eq_ignore_ascii_case("transfer-encoding");
        if body {
            return Err(invalid("request bodies are not supported"));
        }
        write_field(&mut out, h);
    }
    out.extend_from_slice(b"\r\n");
    Ok(Some((len, out)))
}

/// Reads from `conn` into `buf` until a whole response and its body are in
/// it, parsing the head once. Returns the head's length, the body's length
/// (the response must carry `Content-Length`) and what `emit` made of the
/// parsed head.
async fn read_response<T>(
    conn: &mut TcpStream,
    buf: &mut Vec<u8>,
    emit: impl Fn(&httparse::Response<'_, '_>) -> io::Result<T>,
) -> io::Result<(usize, usize, T)> {
    let (len, body, emitted) = loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut res = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(len) = res.parse(buf).map_err(invalid)? {
            let body = content_length(&res)?;
            break (len, body, emit(&res)?);
        }
        if conn.read_buf(buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    };
    while buf.len() < len + body {
        if conn.read_buf(buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok((len, body, emitted))
}

fn content_length(res: &httparse::Response<'_, '_>) -> io::Result<usize> {
    let field = res
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .ok_or_else(|| invalid("responses need content-length"))?;
    let text = std::str::from_utf8(field.value).map_err(invalid)?;
    text.trim().parse::<usize>().map_err(invalid)
}

/// The response head re-serialised, to send to the client.
fn serialize_response(res: &httparse::Response<'_, '_>) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(res.code.unwrap_or(200).to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(res.reason.unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for h in res.headers.iter() {
        write_field(&mut out, h);
    }
    out.extend_from_slice(b"\r\n");
    Ok(out)
}

fn write_field(out: &mut Vec<u8>, h: &httparse::Header<'_>) {
    out.extend_from_slice(h.name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(h.value);
    out.extend_from_slice(b"\r\n");
}
