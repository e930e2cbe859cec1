//! The `weir` control commands, run in-process against a real server:
//! what they print (table and JSON) and the exit codes scripts rely on.

use clap::{CommandFactory, Parser};

use super::{TOKEN, TestServer, wasm_bytes};
use crate::control::address::ControlAddress;
use crate::control::auth::BearerToken;
use crate::control::cli::{
    CliError, ConfigCommand, ControlArgs, ControlCommand, ControlTarget, Exit, FilterCommand,
    run_with_output,
};
use crate::control::output::OutputFormat;

/// The shape `main.rs` gives the commands: [`ControlArgs`] flattened into
/// its parser, [`ControlCommand`] flattened among its own subcommands.
#[derive(Debug, Parser)]
#[command(name = "weir")]
struct Weir {
    #[command(flatten)]
    control: ControlArgs,
    #[command(subcommand)]
    command: Top,
}

#[derive(Debug, clap::Subcommand)]
enum Top {
    /// Stands for main.rs's own commands.
    Run {
        #[arg(long)]
        config: Option<std::path::PathBuf>,
    },
    #[command(flatten)]
    Control(ControlCommand),
}

fn parse(args: &[&str]) -> Result<Weir, clap::Error> {
    Weir::try_parse_from(std::iter::once("weir").chain(args.iter().copied()))
}

/// Runs a command line against `target`: (stdout, exit code).
async fn weir(target: &ControlTarget, args: &[&str]) -> (String, Exit, String) {
    let cli = parse(args).expect("command line parses");
    let mut target = target.clone();
    target.output = cli.control.output;
    let mut out = Vec::new();
    let Top::Control(command) = cli.command else {
        panic!("not a control command: {args:?}")
    };
    let result = run_with_output(command, &target, &mut out).await;
    let out = String::from_utf8(out).unwrap();
    match result {
        Ok(()) => (out, Exit::Success, String::new()),
        Err(err) => (out, err.exit(), err.to_string()),
    }
}

fn target_of(server: &TestServer) -> ControlTarget {
    ControlTarget::new(server.address())
}

#[test]
fn the_command_definitions_are_consistent() {
    Weir::command().debug_assert();
}

#[test]
fn usage_errors_exit_2_like_clap() {
    let missing_path = parse(&["filter", "load", "auth"]).unwrap_err();
    assert_eq!(missing_path.exit_code(), Exit::Usage as i32);
    let both_anchors = parse(&[
        "filter", "load", "a", "a.wasm", "--before", "x", "--after", "y",
    ])
    .unwrap_err();
    assert_eq!(both_anchors.exit_code(), Exit::Usage as i32);
    let bad_address = parse(&["--control", "nowhere", "status"]).unwrap_err();
    assert_eq!(bad_address.exit_code(), Exit::Usage as i32);
    let parsed = parse(&[
        "status",
        "--output",
        "json",
        "--control",
        "unix:/run/weir.sock",
    ])
    .unwrap();
    assert_eq!(parsed.control.output, OutputFormat::Json);
    assert_eq!(
        parsed.control.control,
        ControlAddress::Unix("/run/weir.sock".into())
    );
}

#[tokio::test]
async fn filter_load_list_unload_print_tables_and_json() {
    let server = TestServer::start(None, None).await;
    let target = target_of(&server);
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("auth.wasm");
    std::fs::write(&module, wasm_bytes("auth")).unwrap();
    let config = dir.path().join("auth.json");
    std::fs::write(&config, r#"{"realm": "internal"}"#).unwrap();
    let module = module.to_str().unwrap();

    let (out, exit, _) = weir(&target, &["filter", "list"]).await;
    assert_eq!((out.as_str(), exit), ("no filters loaded\n", Exit::Success));

    let (out, exit, err) = weir(
        &target,
        &[
            "filter",
            "load",
            "auth",
            module,
            "--config",
            config.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(exit, Exit::Success, "{err}");
    assert!(out.starts_with("loaded filter auth: version "), "{out}");
    let (_, exit, err) = weir(
        &target,
        &["filter", "load", "log", module, "--before", "auth"],
    )
    .await;
    assert_eq!(exit, Exit::Success, "{err}");

    let (out, _, _) = weir(&target, &["filter", "list"]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("NAME  VERSION       LOADED"), "{out}");
    assert!(
        lines[1].starts_with("log ") && lines[2].starts_with("auth "),
        "{out}"
    );
    assert!(lines[2].ends_with("upload"), "{out}");

    let (out, _, _) = weir(&target, &["filter", "list", "--output", "json"]).await;
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json[1]["name"], "auth");
    assert_eq!(json[1]["config"]["realm"], "internal");
    assert_eq!(json[1]["version"]["sha256"].as_str().unwrap().len(), 64);

    let (out, exit, _) = weir(&target, &["filter", "unload", "log"]).await;
    assert_eq!(
        (out.as_str(), exit),
        ("unloaded filter log\n", Exit::Success)
    );
    assert_eq!(server.plane.filter_names(), vec!["auth"]);
}

#[tokio::test]
async fn refused_operations_exit_1_with_the_reason() {
    let server = TestServer::start(None, None).await;
    let target = target_of(&server);
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("not.wasm");
    std::fs::write(&script, "#!/bin/sh\n").unwrap();

    let (out, exit, err) = weir(
        &target,
        &["filter", "load", "bad", script.to_str().unwrap()],
    )
    .await;
    assert_eq!((out.as_str(), exit), ("", Exit::Failed));
    assert_eq!(
        err,
        "refused: filter bad failed to load: not a WebAssembly component (bad magic)"
    );

    let (_, exit, err) = weir(&target, &["filter", "unload", "ghost"]).await;
    assert_eq!(
        (exit, err.as_str()),
        (Exit::Failed, "not found: no filter named ghost")
    );
    let (_, exit, err) = weir(&target, &["filter", "rollback", "ghost"]).await;
    assert_eq!(
        (exit, err.as_str()),
        (Exit::Failed, "not found: no filter named ghost")
    );
}

#[tokio::test]
async fn unreadable_inputs_are_usage_errors() {
    let server = TestServer::start(None, None).await;
    let target = target_of(&server);
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.wasm");
    let (_, exit, err) = weir(&target, &["filter", "load", "x", missing.to_str().unwrap()]).await;
    assert_eq!(exit, Exit::Usage);
    assert!(
        err.starts_with("cannot read module") && err.contains("missing.wasm"),
        "{err}"
    );

    let module = dir.path().join("ok.wasm");
    std::fs::write(&module, wasm_bytes("ok")).unwrap();
    let bad_json = dir.path().join("bad.json");
    std::fs::write(&bad_json, "{nope").unwrap();
    let args = [
        "filter",
        "load",
        "x",
        module.to_str().unwrap(),
        "--config",
        bad_json.to_str().unwrap(),
    ];
    let (_, exit, err) = weir(&target, &args).await;
    assert_eq!(exit, Exit::Usage);
    assert!(err.contains("bad.json is not valid JSON"), "{err}");
    assert!(server.plane.filter_names().is_empty());
}

#[tokio::test]
async fn an_unreachable_control_api_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = ControlAddress::Unix(dir.path().join("no-proxy-here.sock"));
    let (_, exit, err) = weir(&ControlTarget::new(nowhere), &["status"]).await;
    assert_eq!(exit, Exit::Unreachable);
    assert!(
        err.starts_with("cannot reach the control API at unix:"),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_or_wrong_token_exits_4() {
    let server = TestServer::start(Some(TOKEN), None).await;
    let mut target = target_of(&server);
    let (_, exit, err) = weir(&target, &["filter", "list"]).await;
    assert_eq!(exit, Exit::Unauthenticated);
    assert!(
        err.starts_with("unauthenticated: missing bearer token"),
        "{err}"
    );

    target.token = Some(BearerToken::new("wrong", "test").unwrap());
    assert_eq!(weir(&target, &["status"]).await.1, Exit::Unauthenticated);

    target.token = Some(BearerToken::new(TOKEN, "test").unwrap());
    assert_eq!(weir(&target, &["status"]).await.1, Exit::Success);
}

#[tokio::test]
async fn token_file_option_is_read_and_a_bad_one_is_a_usage_error() {
    let server = TestServer::start(Some(TOKEN), None).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let address = server.address().to_string();

    let cli = parse(&[
        "--control",
        &address,
        "--token-file",
        file.to_str().unwrap(),
        "status",
    ])
    .unwrap();
    let target = ControlTarget::from_args(&cli.control).unwrap();
    let mut out = Vec::new();
    let Top::Control(command) = cli.command else {
        panic!("parsed as a control command")
    };
    run_with_output(command, &target, &mut out).await.unwrap();
    assert!(String::from_utf8(out).unwrap().starts_with("weir "));

    let missing = dir.path().join("nope");
    let cli = parse(&["--token-file", missing.to_str().unwrap(), "status"]).unwrap();
    let err = ControlTarget::from_args(&cli.control).unwrap_err();
    assert!(
        matches!(err, CliError::Usage(_)) && err.to_string().contains("nope"),
        "{err}"
    );
}

#[tokio::test]
async fn config_apply_validates_locally_then_shows_the_changes() {
    let server = TestServer::start(None, None).await;
    let target = target_of(&server);
    let dir = tempfile::tempdir().unwrap();

    let invalid = dir.path().join("invalid.yaml");
    std::fs::write(
        &invalid,
        super::plane::INITIAL_CONFIG.replace("domains:", "domain:"),
    )
    .unwrap();
    let (_, exit, err) = weir(&target, &["config", "apply", invalid.to_str().unwrap()]).await;
    assert_eq!(exit, Exit::Failed);
    assert!(
        err.contains("invalid.yaml") && err.contains("virtual_hosts[0]"),
        "{err}"
    );
    assert!(server.plane.bus.recent(64).is_empty(), "nothing was sent");

    let next = dir.path().join("next.yaml");
    let text = super::plane::INITIAL_CONFIG.replace("9000", "9001")
        + "  - { name: web, endpoints: [\"127.0.0.1:9100\"] }\n";
    std::fs::write(&next, text).unwrap();
    let (out, exit, err) = weir(&target, &["config", "apply", next.to_str().unwrap()]).await;
    assert_eq!(exit, Exit::Success, "{err}");
    assert_eq!(
        out,
        "configuration applied: 2 changes\n  ~ cluster api\n  + cluster web\n"
    );
    assert_eq!(server.plane.config().clusters.len(), 2);

    let (out, _, _) = weir(
        &target,
        &[
            "config",
            "apply",
            next.to_str().unwrap(),
            "--output",
            "json",
        ],
    )
    .await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap(),
        serde_json::json!({ "changes": [] })
    );

    let missing = dir.path().join("missing.yaml");
    assert_eq!(
        weir(&target, &["config", "apply", missing.to_str().unwrap()])
            .await
            .1,
        Exit::Usage
    );
}

#[tokio::test]
async fn config_apply_uses_the_check_it_is_given() {
    fn refuse_everything(
        _: &str,
        _: crate::control::ConfigFormat,
        _: &std::path::Path,
    ) -> Result<(), String> {
        Err("cluster api: endpoint 127.0.0.1:9000 is unreachable by policy".into())
    }
    let server = TestServer::start(None, None).await;
    let mut target = target_of(&server);
    target.config_check = refuse_everything;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.yaml");
    std::fs::write(&file, super::plane::INITIAL_CONFIG).unwrap();
    let cmd = ControlCommand::Config(ConfigCommand::Apply { file, format: None });
    let err = run_with_output(cmd, &target, &mut Vec::new())
        .await
        .unwrap_err();
    assert_eq!(err.exit(), Exit::Failed);
    assert!(err.to_string().ends_with("unreachable by policy"), "{err}");
}

#[tokio::test]
async fn status_shows_listeners_clusters_and_filters() {
    let server = TestServer::start(None, None).await;
    let target = target_of(&server);
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("auth.wasm");
    std::fs::write(&module, wasm_bytes("auth")).unwrap();
    weir(
        &target,
        &["filter", "load", "auth", module.to_str().unwrap()],
    )
    .await;

    let (out, exit, _) = weir(&target, &["status"]).await;
    assert_eq!(exit, Exit::Success);
    assert!(
        out.starts_with(&format!("weir {}, up ", env!("CARGO_PKG_VERSION"))),
        "{out}"
    );
    assert!(
        out.contains("LISTENER  ADDRESS\nmain      127.0.0.1:8080\n"),
        "{out}"
    );
    assert!(
        out.contains("CLUSTER  ENDPOINT        HEALTH\napi      127.0.0.1:9000  healthy\n"),
        "{out}"
    );
    assert!(out.contains("\nFILTER  VERSION "), "{out}");
    assert!(out.lines().any(|l| l.starts_with("auth ")), "{out}");
    // The in-memory plane compiles nothing.
    assert!(
        out.contains("\nmodules: 0 compiled, 0 loaded from the compiled-module cache\n"),
        "{out}"
    );

    let (out, _, _) = weir(&target, &["status", "--output", "json"]).await;
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["clusters"][0]["endpoints"][0]["health"], "healthy");
    assert_eq!(json["filters"][0]["name"], "auth");
    assert!(json["uptime_seconds"].is_u64());
    assert_eq!(
        json["module_cache"],
        serde_json::json!({ "compiled": 0, "cached": 0 })
    );
}

#[tokio::test]
async fn events_print_one_line_each() {
    let server = TestServer::start(None, None).await;
    let target = target_of(&server);
    server.plane.bus.publish(
        crate::control::EventKind::FilterTrapped,
        Some("auth"),
        "wasm trap: unreachable",
    );
    server
        .plane
        .bus
        .publish(crate::control::EventKind::ConfigApplied, None, "2 changes");

    let (out, exit, _) = weir(&target, &["events"]).await;
    assert_eq!(exit, Exit::Success);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].ends_with("filter_trapped      auth  wasm trap: unreachable"),
        "{out}"
    );
    assert!(
        lines[1].ends_with("config_applied      -  2 changes"),
        "{out}"
    );

    let (out, _, _) = weir(&target, &["events", "--recent", "1", "--output", "json"]).await;
    let event: serde_json::Value = serde_json::from_str(out.trim_end()).unwrap();
    assert_eq!(
        (event["kind"].as_str(), event["seq"].as_u64()),
        (Some("config_applied"), Some(2))
    );
}

#[tokio::test]
async fn filter_new_scaffolds_a_crate_without_a_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = dir.path().join("rate-limit");
    // No server: scaffolding must not need one.
    let target = ControlTarget::new(ControlAddress::Unix(dir.path().join("none.sock")));
    let args = [
        "filter",
        "new",
        "rate-limit",
        "--dir",
        crate_dir.to_str().unwrap(),
    ];
    let (out, exit, err) = weir(&target, &args).await;
    assert_eq!(exit, Exit::Success, "{err}");
    assert!(
        out.starts_with("created filter crate rate-limit in "),
        "{out}"
    );
    let cargo = std::fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap();
    assert!(cargo.contains("name = \"rate-limit\""), "{cargo}");
    // weir-sdk is not on crates.io: inside the repo, the default is its sdk/.
    let sdk = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../sdk")
        .canonicalize()
        .unwrap();
    let sdk_line = format!("weir-sdk = {{ path = \"{}\" }}", sdk.display());
    assert!(cargo.contains(&sdk_line), "{cargo}");
    assert!(
        std::fs::read_to_string(crate_dir.join("src/lib.rs"))
            .unwrap()
            .contains("pub struct RateLimit")
    );

    let (_, exit, err) = weir(&target, &args).await;
    assert_eq!(exit, Exit::Failed, "a second run must not overwrite: {err}");
    let (_, exit, _) = weir(&target, &["filter", "new", "Bad Name"]).await;
    assert_eq!(exit, Exit::Usage);
}

#[test]
fn filter_commands_parse_as_documented() {
    let cli = parse(&["filter", "reload", "auth"]).unwrap();
    assert!(matches!(
        cli.command,
        Top::Control(ControlCommand::Filter(FilterCommand::Reload { ref name, path: None, remote_path: false }))
            if name == "auth"
    ));
    let cli = parse(&["events", "-f"]).unwrap();
    assert!(matches!(
        cli.command,
        Top::Control(ControlCommand::Events {
            follow: true,
            recent: 50
        })
    ));
    // main.rs's own commands and options live beside ours.
    let cli = parse(&["run", "--config", "weir.yaml"]).unwrap();
    assert!(matches!(cli.command, Top::Run { config: Some(_) }));
}
