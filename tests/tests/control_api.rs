//! The control API through real wiring: the runtime manager as the plane,
//! the tonic server on an ephemeral port, real modules and files, and the
//! real `weir` binary. `WatchEvents` delivers reloads and failed loads;
//! token auth is enforced when the configured bind is not loopback (by the
//! server and through the CLI's `--token-file` and `$WEIR_CONTROL_TOKEN`);
//! oversized uploads are refused with RESOURCE_EXHAUSTED.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tonic::Code;
use weir_proxy::control::client::{ClientError, ControlClient};
use weir_proxy::control::{
    BearerToken, ControlAddress, ControlServerConfig, ControlSettings, Event, EventKind,
    LoadFilter, ModuleSource, Position, ServeError,
};
use weir_tests::artifacts::{GUEST_STATE, HEADER_ECHO};
use weir_tests::managed::{Managed, managed_config, with_custom_section};
use weir_tests::weir_bin;

const TOKEN: &str = "t0ken-for-the-control-api";

/// A bound on waiting for a streamed event; they normally arrive at once.
const DEADLINE: Duration = Duration::from_secs(60);

fn config() -> String {
    let filters = format!(
        "  - name: stamp\n    module: {HEADER_ECHO}\n    config: {{ response_headers: {{ x-stamp: \"yes\" }} }}\n"
    );
    managed_config(&filters, None)
}

fn code(err: ClientError) -> (Code, String) {
    match err {
        ClientError::Status(status) => (status.code(), status.message().to_owned()),
        other => panic!("expected a gRPC status, got {other}"),
    }
}

/// The next event on `stream` that is not a `runtime_reloaded` note.
async fn next_event(
    stream: &mut (impl Stream<Item = Result<Event, ClientError>> + Unpin),
) -> Event {
    let wait = async {
        loop {
            let event = stream
                .next()
                .await
                .expect("the stream stays open")
                .expect("an event, not an error");
            if event.kind != EventKind::RuntimeReloaded {
                return event;
            }
        }
    };
    tokio::time::timeout(DEADLINE, wait)
        .await
        .expect("an event within the deadline")
}

#[tokio::test]
async fn watch_events_delivers_a_reload_and_a_failed_load() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = Managed::start(dir.path(), &config(), None).await;
    let control = proxy.serve_control_on_loopback().await;
    let mut watcher = control.client(None).await;
    let mut events = watcher.watch_events(true, 0).await.unwrap();
    let mut api = control.client(None).await;

    let v2 = with_custom_section(&std::fs::read(HEADER_ECHO).unwrap(), "2");
    let reloaded = api
        .reload_filter("stamp".into(), Some(ModuleSource::Bytes(Bytes::from(v2))))
        .await
        .expect("reload");
    let event = next_event(&mut events).await;
    assert_eq!(
        (event.kind, event.filter.as_deref()),
        (EventKind::FilterReloaded, Some("stamp"))
    );
    assert!(
        event.message.contains(&reloaded.version.sha256),
        "the event names the new version: {}",
        event.message
    );

    let (code_, reason) = code(
        api.reload_filter(
            "stamp".into(),
            Some(ModuleSource::Bytes(Bytes::from_static(b"\0asm garbage"))),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(code_, Code::FailedPrecondition);
    let event = next_event(&mut events).await;
    assert_eq!(
        (event.kind, event.filter.as_deref()),
        (EventKind::FilterLoadFailed, Some("stamp"))
    );
    assert_eq!(
        event.message, reason,
        "the event carries the reason verbatim"
    );
    assert!(
        reason.contains("not a valid WebAssembly component"),
        "{reason}"
    );
    assert!(event.seq > 0);
}

#[tokio::test]
async fn a_non_loopback_bind_requires_the_token_from_its_file_on_every_call() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = Managed::start(dir.path(), &config(), None).await;

    // Without a token, a bind other machines can reach does not start.
    let open = ControlServerConfig::new("0.0.0.0:0".parse().unwrap());
    let refused = proxy.serve_control(open).await.err().expect("refused");
    assert!(
        matches!(refused, ServeError::TokenRequired { .. }),
        "{refused}"
    );

    // The `control:` section as a config file has it: all interfaces, a token file.
    std::fs::write(dir.path().join("control.token"), format!("{TOKEN}\n")).unwrap();
    let settings = ControlSettings {
        address: "0.0.0.0:0".into(),
        token_file: Some("control.token".into()),
        ..ControlSettings::default()
    };
    let server_config = settings
        .server_config(dir.path())
        .unwrap()
        .expect("enabled");
    assert!(!server_config.bind.is_local());
    let control = proxy.serve_control(server_config).await.expect("serves");
    let port = match control.address() {
        ControlAddress::Tcp(addr) => addr.port(),
        other => panic!("a TCP address, not {other}"),
    };
    // Bound on every interface; reached here through loopback.
    let address = ControlAddress::Tcp(SocketAddr::from(([127, 0, 0, 1], port)));
    let connect = async |token: Option<&str>| {
        let token = token.map(|t| BearerToken::new(t, "test").unwrap());
        ControlClient::connect(&address, token).await.unwrap()
    };

    let mut anonymous = connect(None).await;
    let (code_, message) = code(anonymous.status().await.unwrap_err());
    assert_eq!(code_, Code::Unauthenticated);
    assert!(message.contains("missing bearer token"), "{message}");
    let (code_, _) = code(anonymous.list_filters().await.unwrap_err());
    assert_eq!(code_, Code::Unauthenticated);

    let mut wrong = connect(Some("not-the-token")).await;
    let (code_, message) = code(wrong.status().await.unwrap_err());
    assert_eq!(code_, Code::Unauthenticated);
    assert!(message.contains("invalid bearer token"), "{message}");
    let (code_, _) = code(wrong.reload_filter("stamp".into(), None).await.unwrap_err());
    assert_eq!(code_, Code::Unauthenticated);

    let mut right = connect(Some(TOKEN)).await;
    let status = right.status().await.expect("the right token passes");
    assert_eq!(status.filters[0].name, "stamp");
    right
        .reload_filter("stamp".into(), None)
        .await
        .expect("a change with the right token");
}

#[tokio::test]
async fn an_upload_over_the_limit_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = Managed::start(dir.path(), &config(), None).await;
    let small = std::fs::read(GUEST_STATE).unwrap();
    let big = std::fs::read(HEADER_ECHO).unwrap();
    assert!(small.len() < big.len());
    // Between the two modules' sizes.
    let limit = small.len() + (big.len() - small.len()) / 2;
    let control = proxy
        .serve_control(ControlServerConfig {
            max_upload_bytes: limit,
            ..ControlServerConfig::new("127.0.0.1:0".parse().unwrap())
        })
        .await
        .unwrap();
    let mut api = control.client(None).await;
    let load = |name: &str, bytes: &[u8]| LoadFilter {
        name: name.into(),
        source: ModuleSource::Bytes(Bytes::copy_from_slice(bytes)),
        config: serde_json::json!({}),
        position: Position::End,
    };

    let (code_, message) = code(api.load_filter(load("big", &big)).await.unwrap_err());
    assert_eq!(code_, Code::ResourceExhausted);
    assert!(
        message.contains("module is") && message.contains("up to"),
        "the message gives both sizes: {message}"
    );
    let (code_, _) = code(
        api.reload_filter(
            "stamp".into(),
            Some(ModuleSource::Bytes(Bytes::from(big.clone()))),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(code_, Code::ResourceExhausted);
    let names: Vec<String> = api
        .list_filters()
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(names, ["stamp"], "nothing changed");

    // Within the limit, on the same connection.
    api.load_filter(load("small", &small))
        .await
        .expect("a module within the limit loads");
}

/// Runs `weir ARGS` against `control`, returning (exit code, stdout, stderr).
fn weir(control: &str, args: &[&str], envs: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = weir_bin::command();
    command
        .args(["--control", control])
        .args(args)
        .env_remove("WEIR_CONTROL_TOKEN")
        .env_remove("WEIR_CONTROL_TOKEN_FILE");
    for (name, value) in envs {
        command.env(name, value);
    }
    let output = command.output().expect("run weir");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_cli_passes_the_token_from_a_file_or_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("weir.yaml");
    // The proxy takes its token from $WEIR_CONTROL_TOKEN (no token_file).
    std::fs::write(
        &config_path,
        r#"listeners:
  - name: main
    address: 127.0.0.1:0
admin:
  enabled: false
control:
  address: "0.0.0.0:0"
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
      - direct_response: { status: 200, body: "ok" }
"#,
    )
    .unwrap();
    let mut proxy = weir_bin::RunningWeir::start(
        &config_path,
        &[("WEIR_CONTROL_TOKEN", TOKEN)],
        &["WEIR_CONTROL_TOKEN_FILE"],
    );
    let listening = proxy.wait_for("control API listening");
    let bound: SocketAddr = listening["address"].as_str().unwrap().parse().unwrap();
    assert!(
        bound.ip().is_unspecified(),
        "bound on every interface: {bound}"
    );
    proxy.wait_for("ready");
    proxy.drain_log();
    let control = format!("127.0.0.1:{}", bound.port());

    let right_file = dir.path().join("right.token");
    std::fs::write(&right_file, format!("{TOKEN}\n")).unwrap();
    let wrong_file = dir.path().join("wrong.token");
    std::fs::write(&wrong_file, "not-the-token\n").unwrap();

    // No token: exit 4 (unauthenticated), saying how to pass one.
    let (exit, _, err) = weir(&control, &["status"], &[]);
    assert_eq!(exit, 4, "{err}");
    assert!(err.contains("missing bearer token"), "{err}");

    let (exit, _, err) = weir(
        &control,
        &["status", "--token-file", wrong_file.to_str().unwrap()],
        &[],
    );
    assert_eq!(exit, 4, "{err}");
    assert!(err.contains("invalid bearer token"), "{err}");

    let (exit, out, err) = weir(
        &control,
        &[
            "--output",
            "json",
            "status",
            "--token-file",
            right_file.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(exit, 0, "{err}");
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["listeners"][0]["name"], "main");

    let (exit, out, err) = weir(
        &control,
        &["filter", "list"],
        &[("WEIR_CONTROL_TOKEN", TOKEN)],
    );
    assert_eq!(exit, 0, "{err}");
    assert_eq!(out, "no filters loaded\n");

    let (exit, _, err) = weir(
        &control,
        &["filter", "list"],
        &[("WEIR_CONTROL_TOKEN_FILE", right_file.to_str().unwrap())],
    );
    assert_eq!(exit, 0, "{err}");
}
