//! The device authorization grant (RFC 8628): the real `warden login --device` signs in by a
//! code a signed-in person approves on the verification page; the polling answers
//! (`authorization_pending`, `slow_down`, `expired_token`, `access_denied`, a code redeemed
//! once), and the attacks: guessing codes, cross-site or session-less approval, a personal
//! access token approving, a device code used as a magic link.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::Duration;
use warden_domain::clock::{Clock, ManualClock, SystemClock};
use warden_testkit::browser::{Browser, decide_device, hidden};
use warden_testkit::{AppOptions, TestApp};

use crate::identity::{admin_token, audit_rows};

async fn start(app: &TestApp, kind: &str) -> Value {
    let res = app
        .client
        .post(app.url("/api/v1/auth/device"))
        .json(&json!({"kind": kind, "client_name": "test device", "host_name": "build-01"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

async fn poll(app: &TestApp, device_code: &str) -> (StatusCode, Value) {
    let res = app
        .client
        .post(app.url("/api/v1/auth/token"))
        .json(
            &json!({"grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                      "device_code": device_code}),
        )
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap_or(Value::Null))
}

async fn manual_app() -> (TestApp, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let app = TestApp::spawn_with(AppOptions {
        clock: clock.clone(),
        ..AppOptions::default()
    })
    .await
    .unwrap();
    (app, clock)
}

#[tokio::test]
async fn the_cli_signs_in_with_a_code_approved_in_the_browser() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("credentials.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["login", "--device", "--url", &app.url("")])
        .arg("--credentials")
        .arg(&creds)
        .env_clear()
        .env("WARDEN_LOG_LEVEL", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read on a blocking thread: the server under test shares this test's runtime.
    let stdout = child.stdout.take().unwrap();
    let (mut out, first, second) = tokio::task::spawn_blocking(move || {
        let mut out = BufReader::new(stdout);
        let mut first = String::new();
        let mut second = String::new();
        out.read_line(&mut first).unwrap();
        out.read_line(&mut second).unwrap();
        (out, first, second)
    })
    .await
    .unwrap();
    assert!(first.contains("/device?user_code="), "{first}");
    let code = first.trim().split("user_code=").nth(1).unwrap().to_owned();
    assert!(second.contains(&code), "{second}");
    assert_eq!(code.len(), 9);
    assert_eq!(&code[4..5], "-");
    assert!(
        code.chars()
            .filter(|c| *c != '-')
            .all(|c| "BCDFGHJKLMNPQRSTVWXZ".contains(c))
    );

    let browser = Browser::signed_in(&app, &admin);
    let (page_status, page) = browser.get(&format!("/device?user_code={code}")).await;
    assert_eq!(page_status, StatusCode::OK);
    assert!(
        page.contains("warden CLI") && page.contains("as you"),
        "{page}"
    );
    let (s, done) = decide_device(&browser, &code, "approve", &[]).await;
    assert_eq!(s, StatusCode::OK, "{done}");
    assert!(done.contains("Approved"));

    let status = tokio::task::spawn_blocking(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut rest);
        (child.wait().unwrap(), rest)
    })
    .await
    .unwrap();
    assert!(status.0.success(), "{}", status.1);
    assert!(
        status.1.contains("signed in as admin@example.com"),
        "{}",
        status.1
    );
    // The saved session works: the CLI lists hosts with it.
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&creds).unwrap()).unwrap();
    assert!(saved["refresh_token"].as_str().unwrap().starts_with("wrt_"));
    let listed = tokio::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["host", "list"])
        .arg("--credentials")
        .arg(&creds)
        .env_clear()
        .env("WARDEN_LOG_LEVEL", "warn")
        .output()
        .await
        .unwrap();
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert_eq!(audit_rows(&app, "device.approved").await.len(), 1);
    assert_eq!(audit_rows(&app, "device.redeemed").await.len(), 1);
}

#[tokio::test]
async fn polling_answers_as_rfc_8628_says_and_a_code_redeems_once() {
    let (app, clock) = manual_app().await;
    let admin = admin_token(&app).await;
    let grant = start(&app, "user").await;
    assert_eq!(grant["interval"], 5);
    assert_eq!(grant["expires_in"], 600);
    let device = grant["device_code"].as_str().unwrap();
    let code = grant["user_code"].as_str().unwrap();
    assert!(device.starts_with("wdc_"));

    let (s, body) = poll(&app, device).await;
    assert_eq!(
        (s, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("authorization_pending"))
    );
    // Faster than the interval: slow down, and the interval grows by 5 s each time.
    let (_, body) = poll(&app, device).await;
    assert_eq!(body["error"], "slow_down");
    clock.advance(Duration::seconds(6));
    let (_, body) = poll(&app, device).await;
    assert_eq!(body["error"], "slow_down", "the interval is 10 s now");
    clock.advance(Duration::seconds(16));
    let (_, body) = poll(&app, device).await;
    assert_eq!(body["error"], "authorization_pending");

    let browser = Browser::signed_in(&app, &admin);
    let (s, _) = decide_device(&browser, code, "approve", &[]).await;
    assert_eq!(s, StatusCode::OK);
    clock.advance(Duration::seconds(20));
    let (s, tokens) = poll(&app, device).await;
    assert_eq!(s, StatusCode::OK, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    assert!(
        tokens["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("wrt_")
    );
    let (s, me) = app.call(access, Method::GET, "/api/v1/me", None).await;
    assert_eq!(
        (s, me["email"].as_str()),
        (StatusCode::OK, Some("admin@example.com"))
    );
    // Once only.
    clock.advance(Duration::seconds(20));
    let (_, body) = poll(&app, device).await;
    assert_eq!(body["error"], "invalid_grant");

    // Denied, and expired.
    let denied = start(&app, "user").await;
    decide_device(&browser, denied["user_code"].as_str().unwrap(), "deny", &[]).await;
    let (_, body) = poll(&app, denied["device_code"].as_str().unwrap()).await;
    assert_eq!(body["error"], "access_denied");
    let late = start(&app, "user").await;
    clock.advance(Duration::minutes(11));
    let (_, body) = poll(&app, late["device_code"].as_str().unwrap()).await;
    assert_eq!(body["error"], "expired_token");
    let (s, page) = Browser::signed_in(&app, &admin)
        .get(&format!(
            "/device?user_code={}",
            late["user_code"].as_str().unwrap()
        ))
        .await;
    // The admin's access token expired with the clock too: the page asks to sign in.
    assert!(
        s == StatusCode::UNAUTHORIZED || s == StatusCode::BAD_REQUEST,
        "{s} {page}"
    );

    // Not a device code, or another grant type.
    let (_, body) = poll(&app, "wdc_nothing").await;
    assert_eq!(body["error"], "invalid_grant");
    let res = app
        .client
        .post(app.url("/api/v1/auth/token"))
        .json(&json!({"grant_type": "password", "device_code": device}))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn approval_needs_a_signed_in_browser_on_warden_s_own_page() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let grant = start(&app, "user").await;
    let device = grant["device_code"].as_str().unwrap();
    let code = grant["user_code"].as_str().unwrap();
    let browser = Browser::signed_in(&app, &admin);
    let (_, page) = browser.get(&format!("/device?user_code={code}")).await;
    let csrf = hidden(&page, "csrf").unwrap();
    let approve = [
        ("csrf", csrf.as_str()),
        ("user_code", code),
        ("action", "approve"),
    ];

    // A cross-site form post, with the session's own CSRF token even.
    let mut evil = browser.clone();
    evil.origin = "https://evil.example".to_owned();
    let (s, _) = evil.post("/device", &approve).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Same origin without the token.
    let (s, _) = browser
        .post("/device", &[("user_code", code), ("action", "approve")])
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Another session's token, the token twice, the token in a JSON body instead of a form.
    let other = crate::identity::sign_in(
        &app,
        crate::identity::ADMIN_EMAIL,
        crate::identity::ADMIN_PASSWORD,
    )
    .await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let other_browser = Browser::signed_in(&app, &other);
    let (s, _) = other_browser.post("/device", &approve).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "another session's token");
    let twice = [
        ("csrf", csrf.as_str()),
        ("csrf", csrf.as_str()),
        ("user_code", code),
        ("action", "approve"),
    ];
    let (s, _) = browser.post("/device", &twice).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "the field twice");
    let res = app
        .client
        .post(app.url("/device"))
        .header("cookie", browser.cookie.clone().unwrap())
        .header("origin", app.url(""))
        .json(&json!({"csrf": csrf, "user_code": code, "action": "approve"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "a JSON body");
    // No session at all.
    let (s, page) = Browser::anonymous(&app).post("/device", &approve).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{page}");
    // A personal access token is never a browser session.
    let (s, created) = app
        .call(
            &admin,
            Method::POST,
            "/api/v1/me/tokens",
            Some(json!({"name": "t", "permissions": ["users.read"], "expires_in_days": 7})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let pat = created["token"].as_str().unwrap();
    let res = app
        .client
        .post(app.url("/device"))
        .bearer_auth(pat)
        .header("origin", app.url(""))
        .form(&approve)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let pat_browser = Browser::signed_in(&app, pat);
    let (s, _) = pat_browser.post("/device", &approve).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let (_, body) = poll(&app, device).await;
    assert_eq!(
        body["error"], "authorization_pending",
        "nothing was approved"
    );
    assert!(audit_rows(&app, "device.approved").await.is_empty());
    // A device code is no magic link (each single-use token has its own namespace).
    let (s, body) = app
        .call(
            "",
            Method::POST,
            "/api/v1/auth/magic-link/sign-in",
            Some(json!({"token": device})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn sixty_code_guesses_in_a_minute_meet_429_after_five() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let grant = start(&app, "user").await;
    let browser = Browser::signed_in(&app, &admin);
    let mut statuses = Vec::new();
    for i in 0..60 {
        let guess = format!("BCDF-{:04}", i);
        let guess = guess
            .chars()
            .map(|c| match c {
                '0'..='9' => char::from(b"GHJKLMNPQR"[usize::from(c as u8 - b'0')]),
                c => c,
            })
            .collect::<String>();
        statuses.push(browser.get(&format!("/device?user_code={guess}")).await.0);
    }
    let wrong = statuses
        .iter()
        .filter(|s| **s == StatusCode::BAD_REQUEST)
        .count();
    let throttled = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(wrong, 5, "{statuses:?}");
    assert_eq!(throttled, 55);
    // Even the right code waits now.
    let (s, _) = browser
        .get(&format!(
            "/device?user_code={}",
            grant["user_code"].as_str().unwrap()
        ))
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn only_someone_who_may_register_hosts_approves_a_host() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let (s, _) = app
        .call(
            &admin,
            Method::POST,
            "/api/v1/admin/users",
            Some(json!({"email": "m@example.com", "password": "quiet harbor 4417 finch"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let member = crate::identity::sign_in(&app, "m@example.com", "quiet harbor 4417 finch").await
        ["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let grant = start(&app, "host").await;
    let code = grant["user_code"].as_str().unwrap();
    let (s, page) = Browser::signed_in(&app, &member)
        .get(&format!("/device?user_code={code}"))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("build-01"));
    let (_, body) = poll(&app, grant["device_code"].as_str().unwrap()).await;
    assert_eq!(body["error"], "authorization_pending");
}
