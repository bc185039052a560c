//! Real Chromium (Debian's, driven by playwright-core) through Warden's pages with a
//! virtual authenticator: sign in with a password, add a passkey, sign out, sign back in
//! with the passkey and nothing typed. Screenshots land in
//! `$CARGO_TARGET_TMPDIR/screenshots`. The browser is the slow peer: it runs once, on the
//! SQLite pass (passkey storage is checked on both backends by `passkeys.rs`).

use serde_json::Value;
use warden_testkit::{AppOptions, TestApp};

use crate::identity::{ADMIN_EMAIL, ADMIN_PASSWORD, audit_rows, setup_admin};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn a_person_adds_a_passkey_in_chromium_signs_out_and_signs_back_in_with_it() {
    if std::env::var("TESTKIT_BACKEND").as_deref() == Ok("postgres") {
        eprintln!("the browser test runs on the SQLite pass");
        return;
    }
    // WebAuthn needs a host name: the page is served as localhost, Warden's public_url.
    let port = free_port();
    let public = format!("http://localhost:{port}");
    let app = TestApp::spawn_with(AppOptions {
        env: vec![
            ("WARDEN_LISTEN".to_owned(), format!("127.0.0.1:{port}")),
            ("WARDEN_PUBLIC_URL".to_owned(), public.clone()),
        ],
        ..AppOptions::default()
    })
    .await
    .unwrap();
    setup_admin(&app).await;

    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let out = tokio::process::Command::new("node")
        .arg(dir.join("passkeys.mjs"))
        .current_dir(&dir)
        .env("WARDEN_URL", &public)
        .env("EMAIL", ADMIN_EMAIL)
        .env("PASSWORD", ADMIN_PASSWORD)
        .env("SHOTS", &shots)
        .kill_on_drop(true)
        .output()
        .await
        .expect("node runs (scripts/test installs Node.js, Chromium and playwright-core)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let summary: Value = serde_json::from_str(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default(),
    )
    .unwrap_or_else(|e| panic!("{e}: {stderr}"));
    assert_eq!(summary["credentials"], 1, "{summary}");
    assert_eq!(summary["resident"], true, "{summary}");
    assert_eq!(summary["signed_out_status"], 401, "{summary}");
    assert_eq!(summary["signed_in"], true, "{summary}");
    for shot in ["passkeys-added", "sign-in", "signed-in-with-passkey"] {
        assert!(shots.join(format!("{shot}.png")).exists(), "{shot}");
    }

    // What Warden recorded: the passkey, and a sign-in by it.
    assert_eq!(audit_rows(&app, "passkey.registered").await.len(), 1);
    let by_passkey = audit_rows(&app, "auth.sign_in")
        .await
        .into_iter()
        .filter(|r| r.outcome == "success" && r.summary.contains("\"method\":\"passkey\""))
        .count();
    assert_eq!(by_passkey, 1);
}
