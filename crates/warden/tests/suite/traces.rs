//! Trace export: `warden serve` with `traces.otlp_endpoint` sends a span for every request
//! over OTLP/HTTP, named by its route template, carrying the request id — decoded by the
//! official OpenTelemetry protobuf definitions in a receiver at the network boundary. The
//! server runs as its own process on SQLite, so this runs once, on the SQLite pass.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::cli::{wait_with_timeout, warden};

/// The spans the receiver has written so far.
fn spans(file: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn each_request_is_exported_as_a_span_named_by_its_route_and_carrying_its_request_id() {
    if warden_testkit::TestDb::new().await.unwrap().backend != warden_store::Backend::Sqlite {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("spans.jsonl");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/otlp_receiver.py");
    let mut receiver = Command::new(warden_testkit::smtp::python())
        .arg(script)
        .arg(&file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut port = String::new();
    BufReader::new(receiver.stdout.take().unwrap())
        .read_line(&mut port)
        .unwrap();
    let port: u16 = port.trim().parse().unwrap();

    let mut server = warden(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("WARDEN_LOCAL_HOST", "false")
        .env(
            "WARDEN_TRACES_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{port}/v1/traces"),
        )
        // The SDK's batch delay, shortened so the test does not wait 5 s.
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first
        .trim()
        .strip_prefix("Warden is ready at ")
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .to_owned();

    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let raw = "/api/v1/workspaces/0190c0de-0000-7000-8000-00000000c0de";
    let res = client.get(format!("{url}{raw}")).send().await.unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::UNAUTHORIZED);
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();

    let mut found = None;
    for _ in 0..150 {
        found = spans(&file)
            .into_iter()
            .find(|s| s["attributes"]["warden.request_id"] == id.as_str());
        if found.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let span = found.unwrap_or_else(|| panic!("no span for {id}: {:?}", spans(&file)));
    let route = "/api/v1/workspaces/{workspace_id}";
    assert_eq!(span["name"], format!("GET {route}"), "{span}");
    assert_eq!(span["attributes"]["http.route"], route);
    assert_eq!(span["attributes"]["http.request.method"], "GET");
    assert_eq!(span["attributes"]["http.response.status_code"], 401);
    assert_eq!(span["kind"], 2, "SPAN_KIND_SERVER");
    assert_eq!(span["resource"]["service.name"], "warden");
    // Route templates, never raw paths (they may carry ids and tokens).
    let all = serde_json::to_string(&spans(&file)).unwrap();
    assert!(!all.contains("00000000c0de"), "a raw path reached a span");

    // A clean stop sends what waits in the batch.
    let status = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = wait_with_timeout(&mut server, Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
    let _ = receiver.kill();
    let _ = receiver.wait();
}
