//! Signing in by emailed link, through a real SMTP server (aiosmtpd): magic links and
//! password resets, their single use, expiry and supersession, their namespaces, answers that
//! do not tell whether an account exists, links built from `public_url` only, the same-origin
//! rule of the pages, and the mail outbox (retries with backoff, the admins' mail log).

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::Duration;
use warden_domain::clock::{Clock, ManualClock, SystemClock};
use warden_testkit::smtp::{Smtp, decoded, free_port, link_in};
use warden_testkit::{AppOptions, TestApp};

use crate::identity::{
    ADMIN_EMAIL, ADMIN_PASSWORD, admin_token, audit_rows, client_from, sign_in_with,
};

const PUBLIC: &str = "https://warden.example.test";
const DEV: &str = "dev@example.com";
const DEV_PASSWORD: &str = "quiet harbor 4417 finch";

struct Setup {
    app: TestApp,
    smtp: Option<Smtp>,
    clock: Arc<ManualClock>,
    admin: String,
}

async fn start(smtp_url: Option<String>) -> Setup {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let mut env = vec![("WARDEN_PUBLIC_URL".to_owned(), PUBLIC.to_owned())];
    if let Some(url) = smtp_url {
        env.push(("WARDEN_SMTP_URL".to_owned(), url));
    }
    let app = TestApp::spawn_with(AppOptions {
        env,
        clock: clock.clone(),
        ..AppOptions::default()
    })
    .await
    .unwrap();
    let admin = admin_token(&app).await;
    let (code, _) = app
        .call(
            &admin,
            Method::POST,
            "/api/v1/admin/users",
            Some(json!({"email": DEV, "password": DEV_PASSWORD})),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED);
    Setup {
        app,
        smtp: None,
        clock,
        admin,
    }
}

async fn with_smtp() -> Setup {
    let smtp = Smtp::start().await;
    let mut s = start(Some(format!("smtp://127.0.0.1:{}", smtp.port))).await;
    s.smtp = Some(smtp);
    s
}

async fn ask(app: &TestApp, what: &str, email: &str) -> (StatusCode, Value) {
    let res = app
        .client
        .post(app.url(&format!("/api/v1/auth/{what}")))
        .json(&json!({ "email": email }))
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Waits for `n` messages, then the link with `marker` from the one message that has it.
async fn nth_link(smtp: &Smtp, n: usize, marker: &str) -> String {
    let got = smtp.wait_for(n).await;
    assert!(got.len() >= n, "expected {n} messages, got {got:?}");
    got.iter()
        .find_map(|m| link_in(&decoded(m), marker))
        .unwrap_or_else(|| panic!("no {marker} link in {got:?}"))
}

fn token_of(link: &str) -> String {
    link.split("token=").nth(1).unwrap().to_owned()
}

async fn use_magic(app: &TestApp, token: &str) -> (StatusCode, Value) {
    let res = app
        .client
        .post(app.url("/api/v1/auth/magic-link/sign-in"))
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_magic_link_from_the_mail_signs_in_once_and_is_built_from_public_url_only() {
    let s = with_smtp().await;
    let smtp = s.smtp.as_ref().unwrap();
    // A forged Host and X-Forwarded-Host do not reach the link.
    let res = s
        .app
        .client
        .post(s.app.url("/api/v1/auth/magic-link"))
        .header("host", "evil.example")
        .header("x-forwarded-host", "evil.example")
        .header("forwarded", "host=evil.example")
        .json(&json!({ "email": DEV }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let link = nth_link(smtp, 1, "/sign-in/link").await;
    assert!(
        link.starts_with(&format!("{PUBLIC}/sign-in/link?token=wml_")),
        "{link}"
    );
    let mail = decoded(&smtp.messages()[0]);
    assert!(
        mail.contains(DEV) && !mail.contains("evil.example"),
        "{mail}"
    );
    let token = token_of(&link);

    // Opening the page (as a mail scanner would, twice) uses nothing up.
    for _ in 0..2 {
        let page = s
            .app
            .client
            .get(s.app.url(&format!("/sign-in/link?token={token}")))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(
            page.headers()["referrer-policy"].to_str().unwrap(),
            "no-referrer"
        );
        assert!(page.text().await.unwrap().contains("Sign in</button>"));
    }
    let (code, body) = use_magic(&s.app, &token).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let access = body["access_token"].as_str().unwrap();
    let (code, me) = s.app.call(access, Method::GET, "/api/v1/me", None).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(me["email"], DEV);
    // Once.
    let (code, body) = use_magic(&s.app, &token).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "invalid-link");
    let page = s
        .app
        .client
        .get(s.app.url(&format!("/sign-in/link?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);

    let signed_in = audit_rows(&s.app, "auth.sign_in").await;
    assert!(
        signed_in
            .iter()
            .any(|r| r.summary.contains("magic_link") && r.outcome == "success"),
        "{signed_in:?}"
    );
    assert!(
        signed_in
            .iter()
            .any(|r| r.summary.contains("invalid_link") && r.outcome == "failed")
    );
    assert!(!signed_in.iter().any(|r| r.summary.contains(&token)));
    // Nor does the token reach the mail log.
    let (code, log) = s
        .app
        .call(&s.admin, Method::GET, "/api/v1/admin/mail-log", None)
        .await;
    assert_eq!(code, StatusCode::OK);
    assert!(!log.to_string().contains(&token));
    assert_eq!(log["items"][0]["kind"], "magic_link");
    assert_eq!(log["items"][0]["status"], "sent");
}

#[tokio::test]
async fn a_magic_link_dies_when_superseded_or_expired_and_no_other_token_passes_for_one() {
    let s = with_smtp().await;
    let smtp = s.smtp.as_ref().unwrap();
    assert_eq!(ask(&s.app, "magic-link", DEV).await.0, StatusCode::ACCEPTED);
    let first = token_of(&nth_link(smtp, 1, "/sign-in/link").await);
    assert_eq!(ask(&s.app, "magic-link", DEV).await.0, StatusCode::ACCEPTED);
    let got = smtp.wait_for(2).await;
    let second = got
        .iter()
        .map(|m| token_of(&link_in(&decoded(m), "/sign-in/link").unwrap()))
        .find(|t| *t != first)
        .unwrap();
    assert_eq!(use_magic(&s.app, &first).await.0, StatusCode::UNAUTHORIZED);
    // A reset link, the setup link, a refresh token and a mangled magic link are refused.
    assert_eq!(
        ask(&s.app, "password-reset", DEV).await.0,
        StatusCode::ACCEPTED
    );
    let reset = token_of(&nth_link(smtp, 3, "/reset-password").await);
    let setup = s.app.server.setup_link().unwrap().to_owned();
    let setup = token_of(&setup);
    let refresh = sign_in_with(&s.app.client, &s.app, DEV, DEV_PASSWORD)
        .await
        .json::<Value>()
        .await
        .unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, _) = s
        .app
        .call(
            &s.admin,
            Method::POST,
            "/api/v1/admin/invitations",
            Some(json!({"email": "newcomer@example.com"})),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED);
    let invitation = token_of(&nth_link(smtp, 4, "/invitation").await);
    let as_magic = |t: &str| format!("wml_{}", &t[4..]);
    for other in [
        reset.clone(),
        invitation.clone(),
        as_magic(&invitation),
        setup.clone(),
        refresh.clone(),
        as_magic(&reset),
        as_magic(&setup),
        as_magic(&refresh),
        format!("{}x", &second[..second.len() - 1]),
    ] {
        let (code, body) = use_magic(&s.app, &other).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{other}: {body}");
    }
    // 15 minutes later the newest link is dead too.
    s.clock
        .advance(Duration::minutes(15) + Duration::seconds(1));
    assert_eq!(use_magic(&s.app, &second).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn asking_for_a_link_answers_alike_for_known_and_unknown_addresses_and_is_throttled() {
    let s = with_smtp().await;
    let smtp = s.smtp.as_ref().unwrap();
    let known = ask(&s.app, "magic-link", DEV).await;
    let unknown = ask(&s.app, "magic-link", "nobody@example.com").await;
    let malformed = ask(&s.app, "magic-link", "not an address").await;
    assert_eq!(known, unknown);
    assert_eq!(known, malformed);
    assert_eq!(known.0, StatusCode::ACCEPTED);
    let reset_known = ask(&s.app, "password-reset", DEV).await;
    let reset_unknown = ask(&s.app, "password-reset", "nobody@example.com").await;
    assert_eq!(reset_known, reset_unknown);
    // Only the real account gets mail; the probe is audited.
    assert_eq!(smtp.wait_for(2).await.len(), 2);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(smtp.messages().len(), 2);
    assert!(smtp.messages().iter().all(|m| m.contains(DEV)));
    // (Issued after a random delay of up to 2 s, like every link.)
    let mut probed = false;
    for _ in 0..100 {
        let probes = audit_rows(&s.app, "auth.magic_link_requested").await;
        probed = probes
            .iter()
            .any(|r| r.outcome == "denied" && r.summary.contains("nobody@example.com"));
        if probed {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(probed, "the probe is audited");

    // The same (address, client) pair: three links a quarter hour, then 429 with Retry-After,
    // for a known and an unknown address alike.
    let stranger = client_from("127.0.0.7");
    let from = |email: &'static str| {
        let stranger = stranger.clone();
        let url = s.app.url("/api/v1/auth/magic-link");
        async move {
            stranger
                .post(url)
                .json(&json!({ "email": email }))
                .send()
                .await
                .unwrap()
        }
    };
    for email in [ADMIN_EMAIL, "ghost@example.com"] {
        for _ in 0..3 {
            assert_eq!(from(email).await.status(), StatusCode::ACCEPTED);
        }
        let res = from(email).await;
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(res.headers().contains_key("retry-after"));
    }
    // The stranger's requests do not stop the admin asking from their own address.
    assert_eq!(
        ask(&s.app, "magic-link", ADMIN_EMAIL).await.0,
        StatusCode::ACCEPTED
    );
}

#[tokio::test]
async fn a_password_reset_sets_the_password_once_and_signs_out_everywhere_else() {
    let s = with_smtp().await;
    let smtp = s.smtp.as_ref().unwrap();
    let old = sign_in_with(&s.app.client, &s.app, DEV, DEV_PASSWORD)
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(ask(&s.app, "magic-link", DEV).await.0, StatusCode::ACCEPTED);
    let magic = token_of(&nth_link(smtp, 1, "/sign-in/link").await);
    assert_eq!(
        ask(&s.app, "password-reset", DEV).await.0,
        StatusCode::ACCEPTED
    );
    let link = nth_link(smtp, 2, "/reset-password").await;
    assert!(link.starts_with(&format!("{PUBLIC}/reset-password?token=wpr_")));
    let token = token_of(&link);
    let complete = |password: &'static str| {
        let client = s.app.client.clone();
        let url = s.app.url("/api/v1/auth/password-reset/complete");
        let token = token.clone();
        async move {
            let res = client
                .post(url)
                .json(&json!({ "token": token, "password": password }))
                .send()
                .await
                .unwrap();
            let status = res.status();
            (status, res.json::<Value>().await.unwrap())
        }
    };
    // A weak password is refused and leaves the link usable.
    let (code, body) = complete("short").await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (code, body) = complete("amber violin 58 harbour").await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let fresh = body["access_token"].as_str().unwrap().to_owned();
    // Once.
    assert_eq!(
        complete("other maple 77 lantern").await.0,
        StatusCode::UNAUTHORIZED
    );
    // Every other session ended at once; the new one works.
    let (code, _) = s
        .app
        .call(
            old["access_token"].as_str().unwrap(),
            Method::GET,
            "/api/v1/me",
            None,
        )
        .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert_eq!(
        s.app.call(&fresh, Method::GET, "/api/v1/me", None).await.0,
        StatusCode::OK
    );
    // The old password is gone, the new one works, and the magic link mailed before the
    // reset no longer does.
    assert_eq!(
        sign_in_with(&s.app.client, &s.app, DEV, DEV_PASSWORD)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        sign_in_with(&s.app.client, &s.app, DEV, "amber violin 58 harbour")
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(use_magic(&s.app, &magic).await.0, StatusCode::UNAUTHORIZED);
    let resets = audit_rows(&s.app, "auth.password_reset").await;
    assert_eq!(resets.len(), 1);
    assert!(!resets[0].summary.contains("amber"));
}

#[tokio::test]
async fn the_link_pages_sign_in_only_from_a_same_origin_form() {
    let s = with_smtp().await;
    let smtp = s.smtp.as_ref().unwrap();
    assert_eq!(ask(&s.app, "magic-link", DEV).await.0, StatusCode::ACCEPTED);
    let token = token_of(&nth_link(smtp, 1, "/sign-in/link").await);
    let post = |origin: &'static str| {
        let client = s.app.client.clone();
        let url = s.app.url("/sign-in/link");
        let token = token.clone();
        let origin = if origin.is_empty() {
            s.app.base.clone()
        } else {
            origin.to_owned()
        };
        async move {
            client
                .post(url)
                .header("origin", origin)
                .form(&[("token", token.as_str())])
                .send()
                .await
                .unwrap()
        }
    };
    // Another site posting the form (login CSRF) is refused, and the link survives it.
    assert_eq!(
        post("https://evil.example").await.status(),
        StatusCode::FORBIDDEN
    );
    let res = post("").await;
    assert_eq!(res.status(), StatusCode::OK);
    let cookies: Vec<_> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("__Host-warden_refresh=")),
        "{cookies:?}"
    );
    assert!(res.text().await.unwrap().contains("You are signed in"));
    assert_eq!(post("").await.status(), StatusCode::BAD_REQUEST);

    // The reset page: a form, a weak password shown as such, then done.
    assert_eq!(
        ask(&s.app, "password-reset", DEV).await.0,
        StatusCode::ACCEPTED
    );
    let reset = token_of(&nth_link(smtp, 2, "/reset-password").await);
    let page = s
        .app
        .client
        .get(s.app.url(&format!("/reset-password?token={reset}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("type=\"password\""));
    let submit = |password: &'static str| {
        let client = s.app.client.clone();
        let url = s.app.url("/reset-password");
        let origin = s.app.base.clone();
        let reset = reset.clone();
        async move {
            client
                .post(url)
                .header("origin", origin)
                .form(&[("token", reset.as_str()), ("password", password)])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(submit("weak").await, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(submit("copper kettle 31 meadow").await, StatusCode::OK);
}

#[tokio::test]
async fn undelivered_mail_is_retried_with_backoff_and_shown_in_the_mail_log() {
    let port = free_port();
    let s = start(Some(format!("smtp://127.0.0.1:{port}"))).await;
    assert_eq!(ask(&s.app, "magic-link", DEV).await.0, StatusCode::ACCEPTED);
    let log = |admin: String| {
        let app = &s.app;
        async move {
            app.call(&admin, Method::GET, "/api/v1/admin/mail-log", None)
                .await
                .1
        }
    };
    let mut entry = Value::Null;
    for _ in 0..100 {
        entry = log(s.admin.clone()).await["items"][0].clone();
        if entry["attempts"] == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(entry["status"], "queued", "{entry}");
    assert_eq!(entry["attempts"], 1);
    assert!(entry["last_error"].as_str().is_some_and(|e| !e.is_empty()));
    assert!(entry["next_attempt_at"].is_string());
    // The server comes up; after the 30-second backoff the message goes out.
    let smtp = Smtp::start_on(port).await;
    s.clock.advance(Duration::seconds(31));
    let got = smtp.wait_for(1).await;
    assert_eq!(got.len(), 1);
    assert!(link_in(&decoded(&got[0]), "/sign-in/link").is_some());
    for _ in 0..100 {
        entry = log(s.admin.clone()).await["items"][0].clone();
        if entry["status"] == "sent" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(entry["status"], "sent");
    assert_eq!(entry["attempts"], 2);

    // A plain user may not read the mail log.
    let dev = sign_in_with(&s.app.client, &s.app, DEV, DEV_PASSWORD)
        .await
        .json::<Value>()
        .await
        .unwrap();
    let (code, _) = s
        .app
        .call(
            dev["access_token"].as_str().unwrap(),
            Method::GET,
            "/api/v1/admin/mail-log",
            None,
        )
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn without_smtp_mail_goes_to_the_log_and_the_methods_say_so() {
    let s = start(None).await;
    let methods: Value = s
        .app
        .client
        .get(s.app.url("/api/v1/auth/methods"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(methods["password"], true);
    assert_eq!(methods["magic_link"], true);
    assert_eq!(methods["mail"], "log");
    assert_eq!(ask(&s.app, "magic-link", DEV).await.0, StatusCode::ACCEPTED);
    let mut status = Value::Null;
    for _ in 0..100 {
        let (_, log) = s
            .app
            .call(&s.admin, Method::GET, "/api/v1/admin/mail-log", None)
            .await;
        status = log["items"][0]["status"].clone();
        if status == "logged" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, "logged");
    let _ = (ADMIN_PASSWORD, &s.clock);
}
