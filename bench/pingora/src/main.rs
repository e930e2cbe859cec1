//! Pingora as a plain reverse proxy, for the benchmark harness.
//!
//! Cloudflare's Pingora is a framework, not a program: a proxy is a
//! `ProxyHttp` impl plus a server. This is the smallest one that does what
//! the other peers do in the harness: every request, HTTP/1.1 or h2c (prior
//! knowledge, same port), goes unchanged to one HTTP/1.1 keep-alive
//! upstream, and the answer comes back. No TLS, no logging, no filters.
//!
//! ```text
//! bench-pingora --listen 127.0.0.1:8080 --upstream 127.0.0.1:9000 \
//!               --threads 1 --run-dir /tmp/pingora
//! bench-pingora --version
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use async_trait::async_trait;
use pingora_core::apps::HttpServerOptions;
use pingora_core::server::Server;
use pingora_core::server::configuration::ServerConf;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_proxy::{ProxyHttp, ProxyServiceBuilder, Session};

/// The allocator Weir runs on (see Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The Pingora release this is built against: the exact pin in Cargo.toml.
const PINGORA_VERSION: &str = "0.9.0";

/// Sends every request to one upstream.
struct Forward {
    upstream: SocketAddr,
}

#[async_trait]
impl ProxyHttp for Forward {
    type CTX = ();

    fn new_ctx(&self) -> Self::CTX {}

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut Self::CTX,
    ) -> pingora_core::Result<Box<HttpPeer>> {
        // Plain HTTP: no TLS, no SNI.
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }
}

/// Command-line settings.
struct Args {
    listen: SocketAddr,
    upstream: SocketAddr,
    threads: usize,
    work_stealing: bool,
    run_dir: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut listen = None;
    let mut upstream = None;
    let mut threads = 1;
    let mut work_stealing = false;
    let mut run_dir = std::env::temp_dir();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |err: &dyn std::fmt::Display| format!("{flag} {value}: {err}");
        match flag.as_str() {
            "--listen" => listen = Some(value.parse().map_err(|e| bad(&e))?),
            "--upstream" => upstream = Some(value.parse().map_err(|e| bad(&e))?),
            "--threads" => threads = value.parse().map_err(|e| bad(&e))?,
            "--work-stealing" => work_stealing = value.parse().map_err(|e| bad(&e))?,
            "--run-dir" => run_dir = PathBuf::from(value),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(Args {
        listen: listen.ok_or("--listen is required")?,
        upstream: upstream.ok_or("--upstream is required")?,
        threads: threads.max(1),
        work_stealing,
        run_dir,
    })
}

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("--version") {
        println!(
            "pingora {PINGORA_VERSION} (bench-pingora {})",
            env!("CARGO_PKG_VERSION")
        );
        return ExitCode::SUCCESS;
    }
    let args = match parse_args() {
        Ok(args) => args,
        Err(err) => {
            eprintln!(
                "bench-pingora: {err}\nusage: bench-pingora --listen ADDR --upstream ADDR [--threads N] [--work-stealing BOOL] [--run-dir DIR]"
            );
            return ExitCode::from(2);
        }
    };
    let path = |name: &str| args.run_dir.join(name).to_string_lossy().into_owned();
    let conf = ServerConf {
        threads: args.threads,
        work_stealing: args.work_stealing,
        // Keep the run's files in its own directory, not in /tmp.
        pid_file: path("pingora.pid"),
        upgrade_sock: path("pingora_upgrade.sock"),
        // The harness stops each target with SIGTERM between measurements.
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    let mut options = HttpServerOptions::default();
    options.h2c = true;
    let mut proxy = ProxyServiceBuilder::new(
        &server.configuration,
        Forward {
            upstream: args.upstream,
        },
    )
    .name("bench-pingora")
    .server_options(options)
    .build();
    proxy.add_tcp(&args.listen.to_string());
    server.add_service(proxy);
    server.run_forever()
}
