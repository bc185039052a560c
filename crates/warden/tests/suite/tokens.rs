//! Personal access tokens: created by a signed-in person with permissions they hold, shown
//! once, limited on every request by what the owner holds now, revoked at once (by the owner,
//! an administrator, deactivation), refused when expired, mistyped, in the query string or
//! asked to mint another token; a new address is audited once.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::Duration;
use warden_domain::clock::{Clock, ManualClock, SystemClock};
use warden_testkit::{AppOptions, TestApp};

use crate::identity::{admin_token, audit_rows, client_from, sign_in};

const PASSWORD: &str = "quiet harbor 4417 finch";

async fn user(app: &TestApp, admin: &str, email: &str, role: &str) -> (String, String) {
    let (status, body) = app
        .call(
            admin,
            Method::POST,
            "/api/v1/admin/users",
            Some(json!({"email": email, "password": PASSWORD, "platform_role": role})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let token = sign_in(app, email, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    (id, token)
}

async fn mint(app: &TestApp, session: &str, body: Value) -> (StatusCode, Value) {
    app.call(session, Method::POST, "/api/v1/me/tokens", Some(body))
        .await
}

async fn minted(
    app: &TestApp,
    session: &str,
    permissions: &[&str],
    workspace: Option<&str>,
) -> (String, String) {
    let (status, body) = mint(
        app,
        session,
        json!({"name": "ci", "permissions": permissions, "workspace_id": workspace,
               "expires_in_days": 30}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (
        body["token"].as_str().unwrap().to_owned(),
        body["id"].as_str().unwrap().to_owned(),
    )
}

async fn workspace(app: &TestApp, session: &str, name: &str) -> String {
    let (status, body) = app
        .call(
            session,
            Method::POST,
            "/api/v1/workspaces",
            Some(json!({"name": name})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn status(app: &TestApp, token: &str, method: Method, path: &str) -> StatusCode {
    app.call(token, method, path, None).await.0
}

#[tokio::test]
async fn a_token_acts_for_its_owner_within_its_permissions_and_is_shown_once() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let (bob_id, bob) = user(&app, &admin, "bob@example.com", "member").await;
    let ws = workspace(&app, &bob, "Payments").await;
    let (status_code, created) = mint(
        &app,
        &bob,
        json!({"name": "deploy bot", "permissions": ["workspaces.read", "sessions.read"],
               "expires_in_days": 90}),
    )
    .await;
    assert_eq!(status_code, StatusCode::CREATED, "{created}");
    let pat = created["token"].as_str().unwrap().to_owned();
    assert!(pat.starts_with("wdn_pat_") && pat.len() == 8 + 49, "{pat}");
    assert_eq!(created["status"], "active");
    assert_eq!(
        created["permissions"],
        json!(["sessions.read", "workspaces.read"])
    );
    let id = created["id"].as_str().unwrap();

    // It acts as bob.
    let (s, me) = app.call(&pat, Method::GET, "/api/v1/me", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["id"], bob_id.as_str());
    assert_eq!(me["session_id"], id);
    let path = format!("/api/v1/workspaces/{ws}");
    assert_eq!(status(&app, &pat, Method::GET, &path).await, StatusCode::OK);
    // Bob owns the workspace, but the token was not given `workspaces.update`.
    let (s, body) = app
        .call(&pat, Method::PATCH, &path, Some(json!({"name": "Renamed"})))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    let (_, perms) = app
        .call(&pat, Method::GET, "/api/v1/me/permissions", None)
        .await;
    assert!(
        !perms["platform"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "workspaces.create"),
        "{perms}"
    );

    // Listed without its secret, and audited.
    let (s, list) = app.call(&bob, Method::GET, "/api/v1/me/tokens", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(list[0].get("token").is_none());
    assert!(!list.to_string().contains(&pat));
    let events = audit_rows(&app, "personal_token.created").await;
    assert_eq!(events.len(), 1);
    assert!(!events[0].summary.to_string().contains(&pat));
}

#[tokio::test]
async fn a_token_carries_only_what_its_creator_holds_and_always_expires() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let (_, bob) = user(&app, &admin, "bob@example.com", "member").await;
    let ws = workspace(&app, &bob, "Payments").await;
    let other = workspace(&app, &admin, "Not bob's").await;
    let base = |perms: Value, days: Value, ws: Option<&str>| json!({"name": "t", "permissions": perms, "expires_in_days": days, "workspace_id": ws});
    // A member does not hold users.create.
    let (s, body) = mint(&app, &bob, base(json!(["users.create"]), json!(30), None)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "permission-not-held");
    // Unknown names, no permission, lifetimes out of range, no lifetime at all.
    for (body, field) in [
        (base(json!(["users.fly"]), json!(30), None), "permissions"),
        (base(json!([]), json!(30), None), "permissions"),
        (
            base(json!(["workspaces.read"]), json!(6), None),
            "expires_in_days",
        ),
        (
            base(json!(["workspaces.read"]), json!(366), None),
            "expires_in_days",
        ),
    ] {
        let (s, got) = mint(&app, &bob, body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{got}");
        assert!(got.to_string().contains(field), "{got}");
    }
    let (s, _) = mint(
        &app,
        &bob,
        json!({"name": "t", "permissions": ["workspaces.read"]}),
    )
    .await;
    assert!(s.is_client_error());
    // As owner of his workspace, bob may bind a token there with owner permissions; not to a
    // workspace he cannot see (answered as if it did not exist).
    let (s, _) = mint(
        &app,
        &bob,
        base(json!(["workspaces.update"]), json!(7), Some(&ws)),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, body) = mint(
        &app,
        &bob,
        base(json!(["workspaces.read"]), json!(7), Some(&other)),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn a_workspace_token_reaches_that_workspace_only() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let a = workspace(&app, &admin, "A").await;
    let b = workspace(&app, &admin, "B").await;
    let (pat, _) = minted(&app, &admin, &["workspaces.read", "users.read"], Some(&a)).await;
    let get = |w: &str| format!("/api/v1/workspaces/{w}");
    assert_eq!(
        status(&app, &pat, Method::GET, &get(&a)).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&app, &pat, Method::GET, &get(&b)).await,
        StatusCode::NOT_FOUND
    );
    let (_, list) = app
        .call(&pat, Method::GET, "/api/v1/workspaces", None)
        .await;
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![a.as_str()]);
    // Platform-wide routes are out of its reach, even with a permission the admin holds.
    assert_eq!(
        status(&app, &pat, Method::GET, "/api/v1/admin/users").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(&app, &pat, Method::GET, "/api/v1/workspaces?all=true").await,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn a_token_cannot_mint_tokens_or_touch_its_owners_credentials() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let (pat, id) = minted(
        &app,
        &admin,
        &["users.read", "users.update", "sessions.delete"],
        None,
    )
    .await;
    let (s, body) = mint(
        &app,
        &pat,
        json!({"name": "child", "permissions": ["users.read"], "expires_in_days": 30}),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "session-required");
    let (s, body) = app
        .call(
            &pat,
            Method::POST,
            "/api/v1/me/password",
            Some(json!({"current_password": crate::identity::ADMIN_PASSWORD,
                        "new_password": "a completely new secret 77"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    for (method, path) in [
        (Method::DELETE, format!("/api/v1/me/tokens/{id}")),
        (Method::POST, "/api/v1/me/devices/revoke-others".to_owned()),
        (Method::POST, "/api/v1/auth/sign-out".to_owned()),
    ] {
        assert_eq!(
            status(&app, &pat, method, &path).await,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    // It still works: nothing above happened.
    assert_eq!(
        status(&app, &pat, Method::GET, "/api/v1/me").await,
        StatusCode::OK
    );
    assert_eq!(audit_rows(&app, "personal_token.created").await.len(), 1);
    assert!(audit_rows(&app, "user.password_changed").await.is_empty());
}

#[tokio::test]
async fn revoked_tokens_are_refused_on_the_next_request() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let (bob_id, bob) = user(&app, &admin, "bob@example.com", "member").await;
    workspace(&app, &bob, "Bob's").await;
    let (pat, id) = minted(&app, &bob, &["workspaces.read"], None).await;
    // Cached by the first use; the revocation must still win at once.
    assert_eq!(
        status(&app, &pat, Method::GET, "/api/v1/me").await,
        StatusCode::OK
    );
    let revoke = format!("/api/v1/me/tokens/{id}");
    assert_eq!(
        status(&app, &bob, Method::DELETE, &revoke).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        status(&app, &pat, Method::GET, "/api/v1/me").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(audit_rows(&app, "personal_token.revoked").await.len(), 1);
    // Another user's token is not yours to revoke (and not even shown to exist).
    let (other, other_id) = minted(&app, &admin, &["users.read"], None).await;
    assert_eq!(
        status(
            &app,
            &bob,
            Method::DELETE,
            &format!("/api/v1/me/tokens/{other_id}")
        )
        .await,
        StatusCode::NOT_FOUND
    );
    // An administrator revokes anyone's.
    let (pat2, id2) = minted(&app, &bob, &["workspaces.read"], None).await;
    assert_eq!(
        status(&app, &pat2, Method::GET, "/api/v1/me").await,
        StatusCode::OK
    );
    let (s, list) = app
        .call(
            &admin,
            Method::GET,
            &format!("/api/v1/admin/tokens?user_id={bob_id}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    assert_eq!(
        status(
            &app,
            &admin,
            Method::DELETE,
            &format!("/api/v1/admin/tokens/{id2}")
        )
        .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        status(&app, &pat2, Method::GET, "/api/v1/me").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(&app, &other, Method::GET, "/api/v1/me").await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn deactivating_a_user_or_revoking_everything_ends_their_tokens() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let (bob_id, bob) = user(&app, &admin, "bob@example.com", "member").await;
    workspace(&app, &bob, "Bob's").await;
    let (pat, _) = minted(&app, &bob, &["workspaces.read"], None).await;
    assert_eq!(
        status(&app, &pat, Method::GET, "/api/v1/me").await,
        StatusCode::OK
    );
    let users = format!("/api/v1/admin/users/{bob_id}");
    assert_eq!(
        status(&app, &admin, Method::POST, &format!("{users}/deactivate")).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        status(&app, &pat, Method::GET, "/api/v1/me").await,
        StatusCode::UNAUTHORIZED
    );
    // Reactivation does not bring the token back.
    assert_eq!(
        status(&app, &admin, Method::POST, &format!("{users}/reactivate")).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        status(&app, &pat, Method::GET, "/api/v1/me").await,
        StatusCode::UNAUTHORIZED
    );

    let bob = sign_in(&app, "bob@example.com", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (pat, _) = minted(&app, &bob, &["workspaces.read"], None).await;
    assert_eq!(
        status(&app, &pat, Method::GET, "/api/v1/me").await,
        StatusCode::OK
    );
    let (s, ended) = app
        .call(&admin, Method::POST, &format!("{users}/revoke-all"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{ended}");
    assert_eq!(ended, json!({"sessions": 1, "tokens": 1}));
    assert_eq!(
        status(&app, &pat, Method::GET, "/api/v1/me").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(&app, &bob, Method::GET, "/api/v1/me").await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_role_downgrade_narrows_existing_tokens_at_once() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let (carol_id, carol) = user(&app, &admin, "carol@example.com", "admin").await;
    let (pat, _) = minted(&app, &carol, &["users.read"], None).await;
    assert_eq!(
        status(&app, &pat, Method::GET, "/api/v1/admin/users").await,
        StatusCode::OK
    );
    let (s, body) = app
        .call(
            &admin,
            Method::PUT,
            &format!("/api/v1/admin/users/{carol_id}/role"),
            Some(json!({"platform_role": "member"})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        status(&app, &pat, Method::GET, "/api/v1/admin/users").await,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn expired_mistyped_and_query_string_tokens_are_refused() {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let app = TestApp::spawn_with(AppOptions {
        clock: clock.clone(),
        ..AppOptions::default()
    })
    .await
    .unwrap();
    let admin = admin_token(&app).await;
    let (s, body) = mint(
        &app,
        &admin,
        json!({"name": "short", "permissions": ["users.read"], "expires_in_days": 7}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let pat = body["token"].as_str().unwrap().to_owned();
    assert_eq!(
        status(&app, &pat, Method::GET, "/api/v1/me").await,
        StatusCode::OK
    );

    // In the query string: never read from there.
    let res = app
        .client
        .get(app.url(&format!("/api/v1/me?access_token={pat}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // One character changed fails the checksum; a well-formed unknown one is simply unknown.
    let mut typo = pat.clone().into_bytes();
    let i = typo.len() - 10;
    typo[i] = if typo[i] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    assert_eq!(
        status(&app, &typo, Method::GET, "/api/v1/me").await,
        StatusCode::UNAUTHORIZED
    );

    // Past its expiry (after an access token's lifetime, so the admin signs in again).
    clock.advance(Duration::days(8));
    let admin = sign_in(
        &app,
        crate::identity::ADMIN_EMAIL,
        crate::identity::ADMIN_PASSWORD,
    )
    .await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..3 {
        assert_eq!(
            status(&app, &pat, Method::GET, "/api/v1/me").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(audit_rows(&app, "personal_token.expired").await.len(), 1);
    let (_, list) = app
        .call(&admin, Method::GET, "/api/v1/me/tokens", None)
        .await;
    assert_eq!(list[0]["status"], "expired");
}

#[tokio::test]
async fn at_most_25_active_tokens_per_user() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let mut first = None;
    for _ in 0..25 {
        let (_, id) = minted(&app, &admin, &["users.read"], None).await;
        first.get_or_insert(id);
    }
    let body = json!({"name": "26th", "permissions": ["users.read"], "expires_in_days": 30});
    let (s, got) = mint(&app, &admin, body.clone()).await;
    assert_eq!(s, StatusCode::CONFLICT, "{got}");
    assert_eq!(got["code"], "token-limit-reached");
    let first = first.unwrap();
    assert_eq!(
        status(
            &app,
            &admin,
            Method::DELETE,
            &format!("/api/v1/me/tokens/{first}")
        )
        .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(mint(&app, &admin, body).await.0, StatusCode::CREATED);
}

#[tokio::test]
async fn each_new_address_is_audited_once_and_the_last_use_is_listed() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let (pat, _) = minted(&app, &admin, &["users.read"], None).await;
    for ip in ["127.0.0.1", "127.0.0.2", "127.0.0.1", "127.0.0.2"] {
        let res = client_from(ip)
            .get(app.url("/api/v1/admin/users"))
            .bearer_auth(&pat)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
    // Written in the background: wait for it.
    let mut events = Vec::new();
    for _ in 0..100 {
        events = audit_rows(&app, "personal_token.used_from_new_address").await;
        if events.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut ips: Vec<String> = events
        .iter()
        .map(|e| {
            let summary: Value = serde_json::from_str(&e.summary).unwrap();
            summary["ip"].as_str().unwrap().to_owned()
        })
        .collect();
    ips.sort();
    assert_eq!(ips, vec!["127.0.0.1", "127.0.0.2"]);
    let (_, list) = app
        .call(&admin, Method::GET, "/api/v1/me/tokens", None)
        .await;
    assert!(list[0]["last_used_at"].is_string(), "{list}");
    assert!(
        list[0]["last_used_ip"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.")
    );
}
