//! Filter versions through the control plane: reload, rollback, and every
//! kind of failed load keeping the running version (with the reason).

use bytes::Bytes;
use weir_proxy::control::{
    ControlError, ControlPlane, EventKind, LoadFilter, ModuleSource, Position,
};
use weir_tests::artifacts::{HEADER_ECHO, NOT_A_FILTER, ORDER_TAG};
use weir_tests::client;
use weir_tests::managed::{Managed, managed_config, with_custom_section};
use weir_tests::server;

fn config(upstream: &str) -> String {
    let filters = format!(
        "  - name: stamp\n    module: {HEADER_ECHO}\n    config: {{ response_headers: {{ x-stamp: \"yes\" }} }}\n"
    );
    managed_config(&filters, Some(upstream))
}

async fn stamp_version(proxy: &Managed) -> String {
    let filters = proxy.manager.list_filters().await.unwrap();
    let stamp = filters
        .iter()
        .find(|f| f.name == "stamp")
        .expect("stamp loaded");
    stamp.version.sha256.clone()
}

async fn still_serving(proxy: &Managed) {
    let response = client::http1().get(&format!("{}/x", proxy.base)).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("x-stamp"), Some("yes"));
}

#[tokio::test]
async fn reload_then_rollback_switches_versions_and_keeps_serving() {
    let upstream = server::http1()
        .fallback(|_| async { server::text(200, "ok") })
        .run()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let proxy = Managed::start(dir.path(), &config(&upstream.addr.to_string()), None).await;
    let mut events = proxy.manager.events();
    let v1 = stamp_version(&proxy).await;

    let v2_bytes = with_custom_section(&std::fs::read(HEADER_ECHO).unwrap(), "2");
    let info = proxy
        .manager
        .reload_filter(
            "stamp".into(),
            Some(ModuleSource::Bytes(Bytes::from(v2_bytes))),
        )
        .await
        .expect("reload with new bytes");
    assert_ne!(info.version.sha256, v1);
    assert_eq!(
        info.previous.as_ref().map(|p| p.sha256.clone()),
        Some(v1.clone())
    );
    assert_eq!(info.module, "upload");
    still_serving(&proxy).await;
    let event = events.recv().await.unwrap();
    assert_eq!(
        (event.kind, event.filter.as_deref()),
        (EventKind::FilterReloaded, Some("stamp"))
    );

    let back = proxy
        .manager
        .rollback_filter("stamp".into())
        .await
        .expect("rollback");
    assert_eq!(back.version.sha256, v1);
    assert_eq!(back.module, HEADER_ECHO);
    assert_eq!(back.previous.map(|p| p.sha256), Some(info.version.sha256));
    still_serving(&proxy).await;

    // Load a second filter before the first, then unload it.
    let loaded = proxy
        .manager
        .load_filter(LoadFilter {
            name: "tag".into(),
            source: ModuleSource::Path(ORDER_TAG.into()),
            config: serde_json::json!({ "tag": "t" }),
            position: Position::Before("stamp".into()),
        })
        .await
        .expect("load");
    assert_eq!(loaded.previous, None);
    let names: Vec<String> = proxy
        .manager
        .list_filters()
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(names, ["tag", "stamp"]);
    let response = client::http1().get(&format!("{}/x", proxy.base)).await;
    assert_eq!(response.header("x-order"), Some("t"));
    proxy
        .manager
        .unload_filter("tag".into())
        .await
        .expect("unload");
    let response = client::http1().get(&format!("{}/x", proxy.base)).await;
    assert_eq!(response.header("x-order"), None);

    let none = proxy
        .manager
        .rollback_filter("nope".into())
        .await
        .unwrap_err();
    assert!(matches!(none, ControlError::NotFound(_)), "{none:?}");
}

#[tokio::test]
async fn failed_loads_of_every_kind_keep_the_running_version_and_say_why() {
    let upstream = server::http1()
        .fallback(|_| async { server::text(200, "ok") })
        .run()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let up = upstream.addr.to_string();
    let proxy = Managed::start(dir.path(), &config(&up), None).await;
    let v1 = stamp_version(&proxy).await;

    let cases: Vec<(&str, ModuleSource, &str)> = vec![
        (
            "bad bytes",
            ModuleSource::Bytes(Bytes::from_static(b"\0asm garbage")),
            "is not a valid WebAssembly component",
        ),
        (
            "contract mismatch",
            ModuleSource::Path(NOT_A_FILTER.into()),
            "weir:filter/handler@0.1.0",
        ),
        (
            // order-tag rejects header-echo's configuration.
            "config rejected",
            ModuleSource::Path(ORDER_TAG.into()),
            "response_headers",
        ),
        (
            "unreadable file",
            ModuleSource::Path(dir.path().join("missing.wasm")),
            "cannot read module",
        ),
    ];
    for (what, source, reason) in cases {
        let mut events = proxy.manager.events();
        let err = proxy
            .manager
            .reload_filter("stamp".into(), Some(source))
            .await
            .expect_err(what);
        assert!(
            matches!(err, ControlError::FailedPrecondition(_)),
            "{what}: {err:?}"
        );
        assert!(err.message().contains(reason), "{what}: {err}");
        if what != "unreadable file" {
            let event = events.recv().await.unwrap();
            assert_eq!(event.kind, EventKind::FilterLoadFailed, "{what}");
            assert_eq!(
                event.message,
                err.message(),
                "{what}: the event carries the reason verbatim"
            );
        }
        assert_eq!(stamp_version(&proxy).await, v1, "{what}");
        still_serving(&proxy).await;
    }

    // Configurations: one that does not validate, one that moves a listener.
    let invalid = config(&up).replace("cluster: app }", "cluster: nowhere }");
    let err = proxy.apply(&invalid).await.unwrap_err();
    assert!(err.message().contains("nowhere"), "{err}");
    let moved = config(&up).replace("name: main", "name: other");
    let err = proxy.apply(&moved).await.unwrap_err();
    assert!(err.message().contains("listeners cannot change"), "{err}");
    assert_eq!(stamp_version(&proxy).await, v1);
    still_serving(&proxy).await;
    let rejected = proxy.manager.recent_events(10);
    assert!(
        rejected
            .iter()
            .filter(|e| e.kind == EventKind::ConfigRejected)
            .count()
            >= 2,
        "{rejected:?}"
    );
}
