//! Invitations through a real SMTP server: an administrator invites with a role no higher
//! than their own, the invitee follows the mailed link and chooses a password; invitations
//! are single use, expire after 7 days, can be revoked, and a newer one replaces the older.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::Duration;
use warden_domain::clock::{Clock, ManualClock, SystemClock};
use warden_testkit::smtp::{Smtp, decoded, link_in};
use warden_testkit::{AppOptions, TestApp};

use crate::identity::{ADMIN_EMAIL, ADMIN_PASSWORD, admin_token, audit_rows, sign_in_with};

const PUBLIC: &str = "https://warden.example.test";

struct Setup {
    app: TestApp,
    smtp: Smtp,
    clock: Arc<ManualClock>,
    admin: String,
}

async fn start() -> Setup {
    let smtp = Smtp::start().await;
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let app = TestApp::spawn_with(AppOptions {
        env: vec![
            ("WARDEN_PUBLIC_URL".to_owned(), PUBLIC.to_owned()),
            (
                "WARDEN_SMTP_URL".to_owned(),
                format!("smtp://127.0.0.1:{}", smtp.port),
            ),
        ],
        clock: clock.clone(),
        ..AppOptions::default()
    })
    .await
    .unwrap();
    let admin = admin_token(&app).await;
    Setup {
        app,
        smtp,
        clock,
        admin,
    }
}

async fn invite(s: &Setup, token: &str, email: &str, role: Option<&str>) -> (StatusCode, Value) {
    s.app
        .call(
            token,
            Method::POST,
            "/api/v1/admin/invitations",
            Some(json!({"email": email, "platform_role": role})),
        )
        .await
}

/// The token of the invitation mailed to `email` (the newest when several were).
async fn mailed_token(s: &Setup, n: usize, email: &str) -> String {
    let got = s.smtp.wait_for(n).await;
    let mut tokens: Vec<String> = got
        .iter()
        .map(|m| decoded(m))
        .filter(|m| m.contains(&format!("To: {email}")))
        .filter_map(|m| link_in(&m, "/invitation"))
        .collect();
    assert!(!tokens.is_empty(), "{got:?}");
    let link = tokens.pop().unwrap();
    assert!(
        link.starts_with(&format!("{PUBLIC}/invitation?token=wiv_")),
        "{link}"
    );
    link.split("token=").nth(1).unwrap().to_owned()
}

async fn accept(app: &TestApp, token: &str, password: &str) -> (StatusCode, Value) {
    let res = app
        .client
        .post(app.url("/api/v1/auth/invitations/accept"))
        .json(&json!({"token": token, "password": password}))
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_invitee_follows_the_mailed_link_chooses_a_password_and_gets_the_role() {
    let s = start().await;
    let (code, inv) = invite(&s, &s.admin, "Nia@Example.com", Some("auditor")).await;
    assert_eq!(code, StatusCode::CREATED, "{inv}");
    assert_eq!(inv["status"], "pending");
    assert_eq!(inv["email"], "nia@example.com");
    let token = mailed_token(&s, 1, "nia@example.com").await;
    let page = s
        .app
        .client
        .get(s.app.url(&format!("/invitation?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("nia@example.com"));
    // Another site posting the page's form is refused, and the invitation survives it.
    let res = s
        .app
        .client
        .post(s.app.url("/invitation"))
        .header("origin", "https://evil.example")
        .form(&[
            ("token", token.as_str()),
            ("password", "silver comet 62 orchard"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // A weak password leaves the invitation usable.
    assert_eq!(
        accept(&s.app, &token, "short").await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let (code, body) = accept(&s.app, &token, "silver comet 62 orchard").await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (code, me) = s
        .app
        .call(
            body["access_token"].as_str().unwrap(),
            Method::GET,
            "/api/v1/me",
            None,
        )
        .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(me["email"], "nia@example.com");
    let (_, users) = s
        .app
        .call(&s.admin, Method::GET, "/api/v1/admin/users", None)
        .await;
    let nia = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "nia@example.com")
        .unwrap();
    assert_eq!(nia["platform_role"], "auditor");
    // Once.
    let (code, body) = accept(&s.app, &token, "silver comet 62 orchard").await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "invalid-link");
    assert_eq!(
        sign_in_with(
            &s.app.client,
            &s.app,
            "nia@example.com",
            "silver comet 62 orchard"
        )
        .await
        .status(),
        StatusCode::OK
    );
    let (_, list) = s
        .app
        .call(&s.admin, Method::GET, "/api/v1/admin/invitations", None)
        .await;
    assert_eq!(list["items"][0]["status"], "accepted");
    assert_eq!(list["items"][0]["accepted_user"], me["id"]);
    assert_eq!(audit_rows(&s.app, "invitation.sent").await.len(), 1);
    let accepted = audit_rows(&s.app, "invitation.accepted").await;
    assert!(accepted.iter().any(|r| r.outcome == "success"));
    assert!(accepted.iter().any(|r| r.outcome == "failed"));
    assert!(!list.to_string().contains(&token));
}

#[tokio::test]
async fn invitations_are_refused_above_your_role_and_die_when_revoked_replaced_or_expired() {
    let s = start().await;
    // A helpdesk role that may invite, but not make administrators.
    let (code, _) = s
        .app
        .call(
            &s.admin,
            Method::POST,
            "/api/v1/admin/roles",
            Some(json!({"name": "helpdesk", "permissions": ["users.read", "users.create"]})),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED);
    let (code, _) = invite(&s, &s.admin, "helen@example.com", Some("helpdesk")).await;
    assert_eq!(code, StatusCode::CREATED);
    let helen = mailed_token(&s, 1, "helen@example.com").await;
    let (_, helen) = accept(&s.app, &helen, "maroon kite 19 ferry").await;
    let helen = helen["access_token"].as_str().unwrap().to_owned();
    let (code, body) = invite(&s, &helen, "eve@example.com", Some("admin")).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "above-your-role");
    // `member` grants workspace permissions helpdesk lacks; her own role is within it.
    assert_eq!(
        invite(&s, &helen, "eve@example.com", None).await.0,
        StatusCode::FORBIDDEN
    );
    let (code, _) = invite(&s, &helen, "eve@example.com", Some("helpdesk")).await;
    assert_eq!(code, StatusCode::CREATED, "her own role");
    // An address with an account, and a malformed one.
    assert_eq!(
        invite(&s, &s.admin, "helen@example.com", None).await.0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        invite(&s, &s.admin, "not an address", None).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // A newer invitation replaces the older; a revoked one stops working.
    let older = mailed_token(&s, 2, "eve@example.com").await;
    let (_, newer_inv) = invite(&s, &s.admin, "eve@example.com", None).await;
    let got = s.smtp.wait_for(3).await;
    let newer = got
        .iter()
        .map(|m| decoded(m))
        .filter(|m| m.contains("To: eve@example.com"))
        .filter_map(|m| link_in(&m, "/invitation"))
        .map(|l| l.split("token=").nth(1).unwrap().to_owned())
        .find(|t| *t != older)
        .unwrap();
    assert_eq!(
        accept(&s.app, &older, "olive pepper 44 tundra").await.0,
        StatusCode::UNAUTHORIZED
    );
    let id = newer_inv["id"].as_str().unwrap();
    let path = format!("/api/v1/admin/invitations/{id}");
    assert_eq!(
        s.app.call(&s.admin, Method::DELETE, &path, None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.app.call(&s.admin, Method::DELETE, &path, None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        accept(&s.app, &newer, "olive pepper 44 tundra").await.0,
        StatusCode::UNAUTHORIZED
    );
    let revoked = audit_rows(&s.app, "invitation.revoked").await;
    assert_eq!(revoked.len(), 2, "superseded and revoked");

    // Seven days later a pending invitation is dead; a magic-link-shaped token never passes.
    let (_, _) = invite(&s, &s.admin, "late@example.com", None).await;
    let late = mailed_token(&s, 4, "late@example.com").await;
    assert_eq!(
        accept(
            &s.app,
            &format!("wml_{}", &late[4..]),
            "olive pepper 44 tundra"
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    s.clock.advance(Duration::days(7) + Duration::seconds(1));
    assert_eq!(
        accept(&s.app, &late, "olive pepper 44 tundra").await.0,
        StatusCode::UNAUTHORIZED
    );
    // (A week on, the admin's session has ended too.)
    let admin = crate::identity::sign_in(&s.app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let admin = admin["access_token"].as_str().unwrap().to_owned();
    let (_, list) = s
        .app
        .call(&admin, Method::GET, "/api/v1/admin/invitations", None)
        .await;
    assert_eq!(list["items"][0]["status"], "expired");

    // A plain member may not invite or list.
    let (code, _) = s
        .app
        .call(
            &admin,
            Method::POST,
            "/api/v1/admin/users",
            Some(json!({"email": "mo@example.com", "password": "quiet harbor 4417 finch"})),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED);
    let mo = sign_in_with(
        &s.app.client,
        &s.app,
        "mo@example.com",
        "quiet harbor 4417 finch",
    )
    .await
    .json::<Value>()
    .await
    .unwrap();
    let mo = mo["access_token"].as_str().unwrap();
    assert_eq!(
        invite(&s, mo, "x@example.com", None).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.app
            .call(mo, Method::GET, "/api/v1/admin/invitations", None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
}
