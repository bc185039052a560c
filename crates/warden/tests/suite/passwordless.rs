//! Password-free mode (password sign-in off for everyone but a break-glass administrator)
//! and unfamiliar sign-in alerts, through a real SMTP server.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden_testkit::smtp::{Smtp, decoded, link_in};
use warden_testkit::{AppOptions, TestApp};

use crate::identity::{ADMIN_EMAIL, ADMIN_PASSWORD, admin_token, audit_rows, client_from};

const DEV: &str = "dev@example.com";
const DEV_PASSWORD: &str = "quiet harbor 4417 finch";

async fn app(smtp: Option<&Smtp>) -> (TestApp, String) {
    let mut env = vec![(
        "WARDEN_PUBLIC_URL".to_owned(),
        "https://warden.example.test".to_owned(),
    )];
    if let Some(smtp) = smtp {
        env.push((
            "WARDEN_SMTP_URL".to_owned(),
            format!("smtp://127.0.0.1:{}", smtp.port),
        ));
    }
    let app = TestApp::spawn_with(AppOptions {
        env,
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
    (app, admin)
}

async fn password(
    client: &reqwest::Client,
    app: &TestApp,
    email: &str,
    pw: &str,
    agent: &str,
) -> (StatusCode, Value) {
    let res = client
        .post(app.url("/api/v1/auth/sign-in"))
        .header("user-agent", agent)
        .json(&json!({"email": email, "password": pw}))
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn set_policy(app: &TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    app.call(
        token,
        Method::PUT,
        "/api/v1/admin/sign-in-policy",
        Some(body),
    )
    .await
}

#[tokio::test]
async fn password_free_mode_needs_another_way_in_and_refuses_passwords_alike() {
    // Without mail that reaches people, only a break-glass administrator makes it safe.
    let (app, admin) = app(None).await;
    let (code, body) = set_policy(&app, &admin, json!({"password_sign_in": false})).await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "no-other-way-in");
    let (code, body) = set_policy(
        &app,
        &admin,
        json!({"password_sign_in": false, "break_glass_email": DEV}),
    )
    .await;
    assert_eq!(
        code,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a member cannot be break glass: {body}"
    );
    let (code, body) = set_policy(
        &app,
        &admin,
        json!({"password_sign_in": false, "break_glass_email": ADMIN_EMAIL}),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["break_glass_email"], ADMIN_EMAIL);

    let c = &app.client;
    let right = password(c, &app, DEV, DEV_PASSWORD, "t/1").await;
    let wrong = password(c, &app, DEV, "wrong guess 1234", "t/1").await;
    let glass_wrong = password(c, &app, ADMIN_EMAIL, "wrong guess 1234", "t/1").await;
    let nobody = password(c, &app, "nobody@example.com", "wrong guess 1234", "t/1").await;
    assert_eq!(right.0, StatusCode::FORBIDDEN);
    assert_eq!(right.1["code"], "password-sign-in-disabled");
    // Every refusal answers alike: nobody learns which account is the break-glass one.
    for other in [&wrong, &glass_wrong, &nobody] {
        assert_eq!(other.0, right.0);
        assert_eq!(other.1["code"], right.1["code"]);
    }
    let (code, _) = password(c, &app, ADMIN_EMAIL, ADMIN_PASSWORD, "t/1").await;
    assert_eq!(code, StatusCode::OK, "break glass");
    let refused = audit_rows(&app, "auth.sign_in").await;
    assert!(
        refused
            .iter()
            .any(|r| r.outcome == "failed" && r.summary.contains("password_sign_in_disabled"))
    );
    let methods: Value = c
        .get(app.url("/api/v1/auth/methods"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(methods["password"], false);
    assert_eq!(
        audit_rows(&app, "auth.sign_in_policy_changed").await.len(),
        1
    );
    // A plain user may not change it.
    let (code, _) = set_policy(&app, &admin, json!({"password_sign_in": true})).await;
    assert_eq!(code, StatusCode::OK);
    let dev = password(c, &app, DEV, DEV_PASSWORD, "t/1").await.1;
    let (code, _) = set_policy(
        &app,
        dev["access_token"].as_str().unwrap(),
        json!({"password_sign_in": false, "break_glass_email": ADMIN_EMAIL}),
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn with_passwords_off_magic_links_still_sign_in() {
    let smtp = Smtp::start().await;
    let (app, admin) = app(Some(&smtp)).await;
    let (code, body) = set_policy(&app, &admin, json!({"password_sign_in": false})).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(
        password(&app.client, &app, DEV, DEV_PASSWORD, "t/1")
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let res = app
        .client
        .post(app.url("/api/v1/auth/magic-link"))
        .json(&json!({"email": DEV}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let got = smtp.wait_for(1).await;
    let link = got
        .iter()
        .find_map(|m| link_in(&decoded(m), "/sign-in/link"))
        .unwrap();
    let token = link.split("token=").nth(1).unwrap();
    let res = app
        .client
        .post(app.url("/api/v1/auth/magic-link/sign-in"))
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_sign_in_from_a_new_network_or_client_alerts_the_owner_but_the_first_does_not() {
    let smtp = Smtp::start().await;
    let (app, _admin) = app(Some(&smtp)).await;
    let home = client_from("127.0.0.1");
    let firefox = "Mozilla/5.0 (X11; rv:133.0) Gecko/20100101 Firefox/133.0";
    // The first sign-in and repeats from the same place: nothing.
    for _ in 0..2 {
        let (code, _) = password(&home, &app, DEV, DEV_PASSWORD, firefox).await;
        assert_eq!(code, StatusCode::OK);
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !smtp.messages().iter().any(|m| m.contains(DEV)),
        "no alert on the first sign-in"
    );
    // Another network.
    let away = client_from("127.0.9.5");
    assert_eq!(
        password(&away, &app, DEV, DEV_PASSWORD, firefox).await.0,
        StatusCode::OK
    );
    let got = smtp.wait_for(1).await;
    let alert = decoded(&got[0]);
    assert!(alert.contains(&format!("To: {DEV}")), "{alert}");
    assert!(
        alert.contains("New sign-in") && alert.contains("127.0.9.0/24"),
        "{alert}"
    );
    // Another client family on a known network.
    assert_eq!(
        password(&home, &app, DEV, DEV_PASSWORD, "curl/8.5.0")
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(smtp.wait_for(2).await.len(), 2);
    // Known again: nothing more.
    assert_eq!(
        password(&away, &app, DEV, DEV_PASSWORD, firefox).await.0,
        StatusCode::OK
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(smtp.messages().len(), 2);
    let events = audit_rows(&app, "auth.unfamiliar_sign_in").await;
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e.summary.contains(DEV)));
    assert!(!events.iter().any(|e| e.summary.contains(DEV_PASSWORD)));
    let _ = ADMIN_PASSWORD;
}
