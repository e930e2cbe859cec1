//! `echo-upstream --listen ADDR --name NAME`: an HTTP/1.1 + h2c server that
//! answers every request with a JSON echo of what it received (method, path,
//! headers, body size) and which upstream it is. The quick start runs two of
//! them (`stable` and `canary`) behind Weir, so the effect of each filter is
//! visible in the echoed headers.
#![forbid(unsafe_code)]

use std::net::SocketAddr;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{Map, Value, json};

struct Args {
    listen: SocketAddr,
    name: String,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut listen = None;
    let mut name = "upstream".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => {
                let value = args.next().context("--listen needs an address")?;
                listen = Some(
                    value
                        .parse()
                        .with_context(|| format!("bad --listen address {value:?}"))?,
                );
            }
            "--name" => name = args.next().context("--name needs a value")?,
            "-h" | "--help" => {
                println!("usage: echo-upstream --listen 127.0.0.1:3001 [--name stable]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    Ok(Args {
        listen: listen.context("--listen is required")?,
        name,
    })
}

async fn echo(name: &str, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body_bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes().len(),
        Err(_) => 0,
    };
    let mut headers = Map::new();
    for (key, value) in &parts.headers {
        let value = Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned());
        match headers.get_mut(key.as_str()) {
            Some(Value::Array(values)) => values.push(value),
            Some(existing) => *existing = Value::Array(vec![existing.take(), value]),
            None => {
                headers.insert(key.as_str().to_string(), value);
            }
        }
    }
    let doc = json!({
        "upstream": name,
        "method": parts.method.as_str(),
        "path": parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"),
        "version": format!("{:?}", parts.version),
        "headers": headers,
        "body_bytes": body_bytes,
    });
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    Response::builder()
        .header("content-type", "application/json")
        .header("x-upstream", name)
        .body(Full::new(Bytes::from(text)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    println!(
        "echo-upstream {} listening on {}",
        args.name,
        listener.local_addr()?
    );
    let name: &'static str = Box::leak(args.name.into_boxed_str());
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| async move {
                Ok::<_, std::convert::Infallible>(echo(name, req).await)
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
