//! `warden-agent enroll` against a real Warden: the real binary prints a code, an
//! administrator approves it on the verification page choosing a workspace, the agent saves
//! the host key it receives (mode 0600) and then connects with it as an approved host that
//! serves that workspace. An existing key file is never overwritten, and a denied code ends
//! the enrolment without a key.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use warden_testkit::TestApp;
use warden_testkit::browser::{Browser, decide_device};

const EMAIL: &str = "ops@example.com";
const PASSWORD: &str = "violet tractor 93 lagoon";

async fn admin(app: &TestApp) -> String {
    app.first_admin(EMAIL, PASSWORD).await.unwrap()
}

fn enroll(app: &TestApp, key_file: &std::path::Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_warden-agent"));
    cmd.args(["enroll", "--server", &app.base, "--name", "build-07"])
        .arg("--key-file")
        .arg(key_file)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Starts an enrolment and returns the running agent and the code it printed.
async fn started(app: &TestApp, key_file: &std::path::Path) -> (tokio::process::Child, String) {
    let mut child = enroll(app, key_file).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        printed.push_str(&line);
        printed.push('\n');
        if line.contains("approves the code") {
            break;
        }
    }
    assert!(printed.contains("\"build-07\""), "{printed}");
    let code = printed
        .split("user_code=")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    assert!(
        printed.contains(&format!("approves the code {code}")),
        "{printed}"
    );
    // The rest of stdout is read by the caller through wait_with_output.
    child.stdout = Some(lines.into_inner().into_inner());
    (child, code)
}

#[tokio::test]
async fn an_approved_code_enrols_the_host_into_the_chosen_workspace() {
    warden_testkit::install_crypto_provider();
    let app = TestApp::spawn().await.unwrap();
    let token = admin(&app).await;
    let (_, ws) = app
        .call(
            &token,
            reqwest::Method::POST,
            "/api/v1/workspaces",
            Some(json!({"name": "Builds"})),
        )
        .await;
    let ws = ws["id"].as_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("host.key");

    let (child, code) = started(&app, &key_file).await;
    let browser = Browser::signed_in(&app, &token);
    let (status, page) = browser.get(&format!("/device?user_code={code}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("build-07") && page.contains("Builds"),
        "{page}"
    );
    let (status, done) = decide_device(&browser, &code, "approve", &[&ws]).await;
    assert_eq!(status, StatusCode::OK, "{done}");

    let out = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("enrolled as host build-07"), "{stdout}");
    let meta = std::fs::metadata(&key_file).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let key = std::fs::read_to_string(&key_file).unwrap();
    assert!(key.trim().starts_with("whk_"));

    // The host exists, approved, and its workspaces were set to the one ticked.
    let (_, hosts) = app
        .call(&token, reqwest::Method::GET, "/api/v1/hosts", None)
        .await;
    let host = hosts
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "build-07")
        .unwrap()
        .clone();
    assert_eq!(host["status"], "approved");
    let (_, events) = app
        .call(
            &token,
            reqwest::Method::GET,
            "/api/v1/audit/events?action=host.workspaces_changed",
            None,
        )
        .await;
    let changed = &events["events"][0];
    assert_eq!(changed["resource_id"], host["id"]);
    assert!(changed["summary"].to_string().contains(&ws), "{changed}");

    // The saved key works: the agent connects with it and is welcomed as approved.
    let data = dir.path().join("data");
    let once = tokio::process::Command::new(env!("CARGO_BIN_EXE_warden-agent"))
        .args(["--url", &app.base, "--once"])
        .arg("--key-file")
        .arg(&key_file)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&once.stderr);
    assert!(once.status.success(), "{stderr}");
    assert!(stderr.contains("connected as host"), "{stderr}");
    assert!(!stderr.contains("pending"), "{stderr}");

    // Enrolling again never overwrites the key.
    let again = enroll(&app, &key_file).output().await.unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), key);
}

#[tokio::test]
async fn a_denied_code_ends_the_enrolment_without_a_key() {
    warden_testkit::install_crypto_provider();
    let app = TestApp::spawn().await.unwrap();
    let token = admin(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("host.key");
    let (child, code) = started(&app, &key_file).await;
    let browser = Browser::signed_in(&app, &token);
    let (status, _) = decide_device(&browser, &code, "deny", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let out = child.wait_with_output().await.unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("denied"), "{stderr}");
    assert!(!key_file.exists());
    let (_, hosts) = app
        .call(&token, reqwest::Method::GET, "/api/v1/hosts", None)
        .await;
    assert_eq!(hosts.as_array().unwrap().len(), 0);
}
