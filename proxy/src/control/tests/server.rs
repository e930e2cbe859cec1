//! The gRPC server: auth, bind policy, upload limit, events, health,
//! reflection, errors, unix socket, shutdown.

use futures_util::StreamExt;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use super::{TOKEN, TestServer, wasm_bytes};
use crate::control::address::ControlAddress;
use crate::control::auth::BearerToken;
use crate::control::client::{ClientError, ControlClient};
use crate::control::events::EventKind;
use crate::control::plane::{LoadFilter, ModuleSource, Position};
use crate::control::server::{ServeError, serve};

fn code(err: ClientError) -> (Code, String) {
    match err {
        ClientError::Status(status) => (status.code(), status.message().to_string()),
        other => panic!("expected a status, got {other}"),
    }
}

fn load(name: &str, module: bytes::Bytes) -> LoadFilter {
    LoadFilter {
        name: name.into(),
        source: ModuleSource::Bytes(module),
        config: serde_json::json!({}),
        position: Position::End,
    }
}

#[tokio::test]
async fn a_configured_token_is_required_on_every_call() {
    let server = TestServer::start(Some(TOKEN), None).await;

    let mut anonymous = server.client(None).await;
    let (code_, message) = code(anonymous.list_filters().await.unwrap_err());
    assert_eq!(code_, Code::Unauthenticated);
    assert!(message.contains("missing bearer token"), "{message}");

    let mut wrong = server.client(Some("not-the-token")).await;
    assert_eq!(
        code(wrong.status().await.unwrap_err()).0,
        Code::Unauthenticated
    );

    // Health and reflection are behind the same check.
    let mut health = HealthClient::new(anonymous.channel());
    let status = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    let mut right = server.client(Some(TOKEN)).await;
    assert_eq!(right.list_filters().await.unwrap(), vec![]);
    right
        .load_filter(load("auth", wasm_bytes("a")))
        .await
        .unwrap();
    assert_eq!(server.plane.filter_names(), vec!["auth"]);
}

#[tokio::test]
async fn without_a_token_loopback_calls_need_none() {
    let server = TestServer::start(None, None).await;
    let mut client = server.client(None).await;
    assert!(client.status().await.is_ok());
}

#[tokio::test]
async fn a_non_loopback_bind_without_a_token_is_refused() {
    let plane = std::sync::Arc::new(super::plane::MemoryPlane::new());
    let bind: ControlAddress = "0.0.0.0:0".parse().unwrap();
    let err = serve(plane, bind, None, std::future::pending())
        .await
        .unwrap_err();
    assert!(matches!(err, ServeError::TokenRequired { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("0.0.0.0:0") && message.contains("token"),
        "{message}"
    );
}

#[tokio::test]
async fn an_upload_over_the_limit_is_resource_exhausted() {
    let server = TestServer::start(None, Some(1024)).await;
    let mut client = server.client(None).await;

    // Over the limit but within the message envelope: the handler names the size.
    let (code_, message) = code(
        client
            .load_filter(load("big", wasm_bytes(&"x".repeat(2048))))
            .await
            .unwrap_err(),
    );
    assert_eq!(code_, Code::ResourceExhausted);
    assert!(
        message.contains("module is 2.0 KiB") && message.contains("up to 1.0 KiB"),
        "{message}"
    );

    // Far over it: tonic refuses to decode, and the answer is still RESOURCE_EXHAUSTED.
    let huge = wasm_bytes(&"x".repeat(3 * 1024 * 1024));
    let (code_, message) = code(client.load_filter(load("huge", huge)).await.unwrap_err());
    assert_eq!(code_, Code::ResourceExhausted);
    assert!(message.contains("up to 1.0 KiB"), "{message}");

    // Within the limit it goes through, on the same connection.
    client
        .load_filter(load("small", wasm_bytes("ok")))
        .await
        .unwrap();
    assert_eq!(server.plane.filter_names(), vec!["small"]);
}

#[tokio::test]
async fn watch_events_streams_events_published_after_subscribing() {
    let server = TestServer::start(None, None).await;
    let mut watcher = server.client(None).await;
    let mut events = watcher.watch_events(true, 0).await.unwrap();

    let mut client = server.client(None).await;
    client
        .load_filter(load("auth", wasm_bytes("a")))
        .await
        .unwrap();
    server.plane.bus.publish(
        EventKind::FilterTrapped,
        Some("auth"),
        "wasm trap: unreachable",
    );

    let loaded = events.next().await.unwrap().unwrap();
    assert_eq!(
        (loaded.kind, loaded.filter.as_deref()),
        (EventKind::FilterLoaded, Some("auth"))
    );
    let trapped = events.next().await.unwrap().unwrap();
    assert_eq!(trapped.kind, EventKind::FilterTrapped);
    assert_eq!(trapped.message, "wasm trap: unreachable");
    assert!(trapped.seq > loaded.seq);
}

#[tokio::test]
async fn watch_events_replays_recent_events_once() {
    let server = TestServer::start(None, None).await;
    for i in 0..3 {
        server
            .plane
            .bus
            .publish(EventKind::FilterFailed, Some("f"), format!("failure {i}"));
    }
    let mut client = server.client(None).await;

    // Without follow: the last two, then the end of the stream.
    let recent: Vec<String> = client
        .watch_events(false, 2)
        .await
        .unwrap()
        .map(|e| e.unwrap().message)
        .collect()
        .await;
    assert_eq!(recent, vec!["failure 1", "failure 2"]);

    // With follow: the replay, then new events, none twice.
    let mut events = client.watch_events(true, 1).await.unwrap();
    server
        .plane
        .bus
        .publish(EventKind::ConfigApplied, None, "after");
    assert_eq!(events.next().await.unwrap().unwrap().message, "failure 2");
    assert_eq!(events.next().await.unwrap().unwrap().message, "after");
}

#[tokio::test]
async fn a_failed_load_reaches_the_caller_verbatim() {
    let server = TestServer::start(None, None).await;
    let mut watcher = server.client(None).await;
    let mut events = watcher.watch_events(true, 0).await.unwrap();
    let mut client = server.client(None).await;

    let not_wasm = bytes::Bytes::from_static(b"#!/bin/sh\n");
    let (code_, message) = code(client.load_filter(load("bad", not_wasm)).await.unwrap_err());
    assert_eq!(code_, Code::FailedPrecondition);
    assert_eq!(
        message,
        "filter bad failed to load: not a WebAssembly component (bad magic)"
    );
    let event = events.next().await.unwrap().unwrap();
    assert_eq!(
        (event.kind, event.message.as_str()),
        (EventKind::FilterLoadFailed, message.as_str())
    );
    assert!(server.plane.filter_names().is_empty());

    let (code_, _) = code(client.unload_filter("nope".into()).await.unwrap_err());
    assert_eq!(code_, Code::NotFound);
    let (code_, message) = code(client.unload_filter(String::new()).await.unwrap_err());
    assert_eq!(
        (code_, message.as_str()),
        (Code::InvalidArgument, "filter name must not be empty")
    );
}

#[tokio::test]
async fn reload_and_rollback_switch_versions() {
    let server = TestServer::start(None, None).await;
    let mut client = server.client(None).await;
    let v1 = client
        .load_filter(load("auth", wasm_bytes("v1")))
        .await
        .unwrap()
        .version;
    let reloaded = client
        .reload_filter("auth".into(), Some(ModuleSource::Bytes(wasm_bytes("v2"))))
        .await
        .unwrap();
    assert_ne!(reloaded.version.sha256, v1.sha256);
    assert_eq!(
        reloaded.previous.as_ref().map(|p| &p.sha256),
        Some(&v1.sha256)
    );

    let rolled_back = client.rollback_filter("auth".into()).await.unwrap();
    assert_eq!(rolled_back.version.sha256, v1.sha256);
    let (code_, message) = code(client.rollback_filter("auth".into()).await.unwrap_err());
    assert_eq!(code_, Code::FailedPrecondition);
    assert!(message.contains("no previous version"), "{message}");
}

#[tokio::test]
async fn the_health_service_answers_serving() {
    let server = TestServer::start(None, None).await;
    let mut health = HealthClient::new(server.client(None).await.channel());
    for service in ["", "weir.control.v1.Control"] {
        let response = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap();
        assert_eq!(
            response.into_inner().status(),
            ServingStatus::Serving,
            "{service:?}"
        );
    }
}

#[tokio::test]
async fn reflection_lists_the_control_service() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let server = TestServer::start(None, None).await;
    let mut reflection = ServerReflectionClient::new(server.client(None).await.channel());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(futures_util::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer: {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"weir.control.v1.Control".to_string()),
        "{names:?}"
    );
}

#[tokio::test]
async fn serves_on_a_unix_socket_and_removes_it_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("control.sock");
    let server = TestServer::start_on(ControlAddress::Unix(path.clone()), None, None).await;
    assert_eq!(server.address(), ControlAddress::Unix(path.clone()));

    let mut client = ControlClient::connect(&server.address(), None)
        .await
        .unwrap();
    client
        .load_filter(load("auth", wasm_bytes("a")))
        .await
        .unwrap();
    assert_eq!(client.list_filters().await.unwrap()[0].name, "auth");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);

    drop(client);
    let TestServer { server, stop, .. } = server;
    stop.send(()).unwrap();
    server.wait().await.unwrap();
    assert!(!path.exists(), "socket file left behind");
}

#[tokio::test]
async fn shutdown_ends_open_event_streams() {
    let server = TestServer::start(None, None).await;
    let mut watcher = server.client(None).await;
    let mut events = watcher.watch_events(true, 0).await.unwrap();

    let TestServer {
        server,
        stop,
        plane,
    } = server;
    stop.send(()).unwrap();
    assert!(events.next().await.is_none(), "the stream ends on shutdown");
    drop((events, watcher));
    server.wait().await.unwrap();
    drop(plane);
}

#[tokio::test]
async fn a_token_can_come_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let token = BearerToken::from_file(&file).unwrap();
    let server = TestServer::start(Some(TOKEN), None).await;
    let mut client = ControlClient::connect(&server.address(), Some(token))
        .await
        .unwrap();
    assert!(client.list_filters().await.is_ok());
}
