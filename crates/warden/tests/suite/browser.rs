//! Real Chromium (Debian's, driven by playwright-core) through Warden's pages with a
//! virtual authenticator: first-run setup, sign in with a password, add a passkey, sign out,
//! sign back in with the passkey and nothing typed. Every page is checked for console
//! errors, Content-Security-Policy violations and serious or critical axe-core findings, and
//! photographed at desktop and phone width into `$CARGO_TARGET_TMPDIR/screenshots`; a page of
//! another origin that frames the sign-in page shows nothing of it. The browser is the slow peer: it runs once, on the
//! SQLite pass (passkey storage is checked on both backends by `passkeys.rs`).

use warden_testkit::browser::{screenshots, walk_through};
use warden_testkit::{AppOptions, TestApp};

use crate::identity::{ADMIN_EMAIL, ADMIN_PASSWORD, audit_rows};

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether this pass skips the browser (it runs once, on the SQLite pass).
pub(crate) fn skipped() -> bool {
    let skip = std::env::var("TESTKIT_BACKEND").as_deref() == Ok("postgres");
    if skip {
        eprintln!("the browser test runs on the SQLite pass");
    }
    skip
}

/// Warden served at `http://localhost:PORT` (its public URL: pages and WebAuthn need a host
/// name), with `extra` settings; and that URL.
pub(crate) async fn console_app(extra: &[(&str, &str)]) -> (TestApp, String) {
    let port = free_port();
    let public = format!("http://localhost:{port}");
    let mut env = vec![
        ("WARDEN_LISTEN".to_owned(), format!("127.0.0.1:{port}")),
        ("WARDEN_PUBLIC_URL".to_owned(), public.clone()),
    ];
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let app = TestApp::spawn_with(AppOptions {
        env,
        ..AppOptions::default()
    })
    .await
    .unwrap();
    (app, public)
}

/// Runs `tests/browser/SCRIPT` signed in as the administrator against `public`, with `vars`
/// besides `WARDEN_URL`, `EMAIL`, `PASSWORD` and `SHOTS`; its summary, once it checked that
/// no page had a problem and that `pages` screenshots were taken.
pub(crate) async fn walk(
    script: &str,
    public: &str,
    vars: &[(&str, &str)],
    pages: usize,
) -> serde_json::Value {
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let mut all: Vec<(&str, &std::ffi::OsStr)> = vec![
        ("WARDEN_URL", public.as_ref()),
        ("EMAIL", ADMIN_EMAIL.as_ref()),
        ("PASSWORD", ADMIN_PASSWORD.as_ref()),
        ("SHOTS", shots.as_os_str()),
    ];
    all.extend(vars.iter().map(|(k, v)| (*k, std::ffi::OsStr::new(*v))));
    let summary = walk_through(&dir, script, &all).await;
    assert_eq!(summary["problems"], serde_json::json!([]), "{summary}");
    assert_eq!(screenshots(&summary, &shots), pages, "{summary}");
    summary
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
    // The setup link names the listen address; the browser opens it at the public host.
    let setup = app.server.setup_link().unwrap().replace(&app.base, &public);

    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let summary = walk_through(
        &dir,
        "passkeys.mjs",
        &[
            ("WARDEN_URL", public.as_ref()),
            ("SETUP_LINK", setup.as_ref()),
            ("EMAIL", ADMIN_EMAIL.as_ref()),
            ("PASSWORD", ADMIN_PASSWORD.as_ref()),
            ("SHOTS", shots.as_os_str()),
        ],
    )
    .await;
    assert_eq!(summary["problems"], serde_json::json!([]), "{summary}");
    assert_eq!(screenshots(&summary, &shots), 14, "{summary}");
    assert_eq!(summary["host_registered"], 201, "{summary}");
    assert_eq!(summary["host_approved"], 1, "{summary}");
    // The profile signed the other browser out: its next page sends it to sign in.
    assert_eq!(summary["devices_before"], 2, "{summary}");
    assert_eq!(summary["devices_after"], 1, "{summary}");
    assert_eq!(
        summary["other_sent_to"], "/sign-in?next=%2Fconsole%2Fprofile",
        "{summary}"
    );
    assert_eq!(summary["credentials"], 1, "{summary}");
    assert_eq!(summary["resident"], true, "{summary}");
    assert_eq!(summary["signed_out_status"], 401, "{summary}");
    assert_eq!(summary["signed_in"], true, "{summary}");
    // Another page framing the sign-in page: Chromium refuses it (frame-ancestors 'none').
    assert_eq!(summary["frame_refused"], true, "{summary}");
    assert_eq!(summary["framed_shows_sign_in"], false, "{summary}");

    // What Warden recorded: the passkey, and a sign-in by it.
    assert_eq!(audit_rows(&app, "passkey.registered").await.len(), 1);
    let by_passkey = audit_rows(&app, "auth.sign_in")
        .await
        .into_iter()
        .filter(|r| r.outcome == "success" && r.summary.contains("\"method\":\"passkey\""))
        .count();
    assert_eq!(by_passkey, 1);
}
