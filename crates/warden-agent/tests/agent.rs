//! The `warden-agent` binary against a real Warden: it connects and is welcomed, keeps the
//! host online, and stops for good (exit 2, with the reason) when the server refuses it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use warden_testkit::TestApp;

const EMAIL: &str = "ops@example.com";
const PASSWORD: &str = "violet tractor 93 lagoon";

async fn admin(app: &TestApp) -> String {
    app.first_admin(EMAIL, PASSWORD).await.unwrap()
}

async fn api(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let mut req = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    assert!(res.status().is_success(), "{path}: {}", res.status());
    res.json().await.unwrap_or(Value::Null)
}

static NEXT_DIR: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn agent(app: &TestApp, key: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_warden-agent"));
    cmd.arg("--url")
        .arg(&app.base)
        .env("WARDEN_HOST_KEY", key)
        // A data directory of its own for every agent (an agent locks its directory).
        .env(
            "WARDEN_AGENT_DATA_DIR",
            std::env::temp_dir().join(format!(
                "warden-agent-test-{}-{}",
                std::process::id(),
                NEXT_DIR.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            )),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

#[tokio::test]
async fn the_agent_is_welcomed_keeps_its_host_online_and_stops_when_the_host_is_deleted() {
    warden_testkit::install_crypto_provider();
    let app = TestApp::spawn().await.unwrap();
    let token = admin(&app).await;
    let created = api(
        &app,
        &token,
        reqwest::Method::POST,
        "/api/v1/hosts",
        Some(json!({"name": "agent-01", "kind": "session"})),
    )
    .await;
    let id = created["host"]["id"].as_str().unwrap().to_owned();
    let key = created["api_key"].as_str().unwrap().to_owned();

    // --once: connect, get welcomed, leave.
    let out = agent(&app, &key).arg("--once").output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "connected as host {id} (pending, waiting for approval)"
        )),
        "{stderr}"
    );

    // The --once connection is gone (the server may take a moment to notice): wait for it,
    // so that "online" below is the running agent's.
    let mut offline = false;
    for _ in 0..100 {
        let host = api(
            &app,
            &token,
            reqwest::Method::GET,
            &format!("/api/v1/hosts/{id}"),
            None,
        )
        .await;
        if host["online"] == false {
            offline = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(offline, "the --once connection never ended");

    // Running: the host is online while the agent runs.
    let mut child = agent(&app, &key).spawn().unwrap();
    let mut online = false;
    for _ in 0..100 {
        let host = api(
            &app,
            &token,
            reqwest::Method::GET,
            &format!("/api/v1/hosts/{id}"),
            None,
        )
        .await;
        if host["online"] == true {
            online = true;
            assert!(host["agent_version"].is_string());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(online, "the host never came online");

    // Deleted: the agent is told, stops, and says why.
    api(
        &app,
        &token,
        reqwest::Method::DELETE,
        &format!("/api/v1/hosts/{id}"),
        None,
    )
    .await;
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(2));
    let mut stderr = String::new();
    use tokio::io::AsyncReadExt as _;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    assert!(stderr.contains("revoked"), "{stderr}");
}

#[tokio::test]
async fn a_wrong_key_stops_the_agent_with_a_clear_message_and_no_key_is_ever_taken_from_argv() {
    warden_testkit::install_crypto_provider();
    let app = TestApp::spawn().await.unwrap();
    let wrong = format!("whk_{}_{}", "0".repeat(32), "A".repeat(43));
    let out = agent(&app, &wrong).output().await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refused the host key"), "{stderr}");

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_warden-agent"))
        .args(["--url", &app.base])
        .env_remove("WARDEN_HOST_KEY")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("WARDEN_HOST_KEY"));
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_warden-agent"))
        .args(["--url", &app.base, "--key", &wrong])
        .output()
        .await
        .unwrap();
    assert!(
        !out.status.success(),
        "a key on the command line is not accepted"
    );
}
