//! The console's pages over HTTP (the browser itself drives them in `browser.rs`): without a
//! session a page sends the browser to sign in and back; refusals are pages, not JSON; forms
//! need the session's CSRF field and Warden's own origin; what people typed (a user agent
//! here) is shown escaped; signing a device out from the profile ends that session at once.

use reqwest::StatusCode;
use warden_testkit::TestApp;
use warden_testkit::browser::{Browser, hidden};

use crate::identity::{ADMIN_EMAIL, ADMIN_PASSWORD, admin_token};

const MEMBER: &str = "dev@example.com";
const MEMBER_PASSWORD: &str = "quiet harbor 4417 finch";

/// Creates a member (no platform permissions beyond their own) and signs them in: the
/// sign-in answer (tokens and session id).
async fn member(app: &TestApp, admin: &str) -> serde_json::Value {
    let (status, _) = app
        .call(
            admin,
            reqwest::Method::POST,
            "/api/v1/admin/users",
            Some(serde_json::json!({"email": MEMBER, "password": MEMBER_PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    app.client
        .post(app.url("/api/v1/auth/sign-in"))
        .json(&serde_json::json!({"email": MEMBER, "password": MEMBER_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn without_a_session_a_console_page_sends_the_browser_to_sign_in_and_back() {
    let app = TestApp::spawn().await.unwrap();
    let res = no_redirects()
        .get(app.url("/console/profile?done=token-revoked"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        res.headers()["location"],
        "/sign-in?next=%2Fconsole%2Fprofile%3Fdone%3Dtoken-revoked"
    );
    // A console path that does not exist: a page in the layout, not a problem document.
    let admin = admin_token(&app).await;
    let browser = Browser::signed_in(&app, &admin);
    let (status, page) = browser.get("/console/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(page.contains("<h1>Not found</h1>"), "{page}");
    assert!(page.starts_with("<!doctype html>"), "{page}");
    let (status, page) = browser.get("/console").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(ADMIN_EMAIL), "{page}");
}

#[tokio::test]
async fn the_profile_signs_a_device_out_only_by_a_same_origin_form_with_its_csrf_field() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    // A second device whose user agent is markup: shown as text.
    let other: serde_json::Value = app
        .client
        .post(app.url("/api/v1/auth/sign-in"))
        .header(
            "user-agent",
            "{{7*7}}<script>alert(1)</script>\"><img src=x onerror=alert(2)>",
        )
        .json(&serde_json::json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let other_token = other["access_token"].as_str().unwrap().to_owned();
    let other_id = other["session_id"].as_str().unwrap().to_owned();

    let browser = Browser::signed_in(&app, &admin);
    let (status, page) = browser.get("/console/profile").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(!page.contains("<img src=x"), "{page}");
    assert!(
        page.contains("{{7*7}}"),
        "shown as typed, not evaluated: {page}"
    );
    assert!(page.contains("&#60;script&#62;"), "escaped: {page}");
    let csrf = hidden(&page, "csrf").unwrap();
    let action = format!("/console/profile/devices/{other_id}/revoke");
    assert!(page.contains(&action), "{page}");

    // Cross-site, even with the token; same origin without it; another session's token.
    let mut evil = browser.clone();
    evil.origin = "https://evil.example".to_owned();
    let (status, _) = evil.post(&action, &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, page) = browser.post(&action, &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("<h1>"), "a page, not JSON: {page}");
    let third = app.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await.unwrap();
    let (_, third_page) = Browser::signed_in(&app, &third)
        .get("/console/profile")
        .await;
    let third_csrf = hidden(&third_page, "csrf").unwrap();
    let (status, _) = browser.post(&action, &[("csrf", &third_csrf)]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .call(&other_token, reqwest::Method::GET, "/api/v1/me", None)
        .await;
    assert_eq!(status, StatusCode::OK, "nothing was signed out");

    // The profile's own form: the device is signed out at once.
    let (status, _) = browser.post(&action, &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _) = app
        .call(&other_token, reqwest::Method::GET, "/api/v1/me", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, page) = browser.get("/console/profile?done=device-signed-out").await;
    assert!(page.contains("That device is signed out."));
    assert!(!page.contains(&action));
    // Only fixed sentences: whatever else `done` says is not shown.
    let (_, page) = browser.get("/console/profile?done=%3Cb%3Ehi").await;
    assert!(!page.contains("hi</b>") && !page.contains("class=\"notice\""));
}

#[tokio::test]
async fn hosts_waiting_for_approval_are_approved_from_the_console_and_hidden_from_members() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let (status, created) = app
        .call(
            &admin,
            reqwest::Method::POST,
            "/api/v1/hosts",
            Some(serde_json::json!({"name": "<b>build-09</b>", "kind": "session"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["host"]["id"].as_str().unwrap().to_owned();

    let browser = Browser::signed_in(&app, &admin);
    let (status, page) = browser.get("/console").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("href=\"/console/hosts\""),
        "the admin's navigation: {page}"
    );
    let (status, page) = browser.get("/console/hosts").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Waiting for approval"), "{page}");
    assert!(page.contains("&#60;b&#62;build-09&#60;/b&#62;"), "{page}");
    let csrf = hidden(&page, "csrf").unwrap();
    let (status, _) = browser
        .post(&format!("/console/hosts/{id}/approve"), &[("csrf", &csrf)])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, host) = app
        .call(
            &admin,
            reqwest::Method::GET,
            &format!("/api/v1/hosts/{id}"),
            None,
        )
        .await;
    assert_eq!(host["status"], "approved");
    let (_, page) = browser.get("/console/hosts?done=host-approved").await;
    assert!(page.contains("The host is approved"), "{page}");
    assert!(!page.contains("Waiting for approval"), "{page}");

    // A member: no Hosts in the navigation, and the page itself is a 403 page.
    let member = member(&app, &admin).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let member_browser = Browser::signed_in(&app, &member);
    let (_, page) = member_browser.get("/console").await;
    assert!(!page.contains("/console/hosts"), "{page}");
    let (status, page) = member_browser.get("/console/hosts").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("<h1>Not allowed</h1>"), "{page}");
    let (_, member_page) = member_browser.get("/console/profile").await;
    let member_csrf = hidden(&member_page, "csrf").unwrap();
    let (status, _) = member_browser
        .post(
            &format!("/console/hosts/{id}/reject"),
            &[("csrf", &member_csrf)],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, host) = app
        .call(
            &admin,
            reqwest::Method::GET,
            &format!("/api/v1/hosts/{id}"),
            None,
        )
        .await;
    assert_eq!(host["status"], "approved");
}

#[tokio::test]
async fn an_administrator_signs_anyone_out_from_active_sessions_and_a_member_cannot() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let member = member(&app, &admin).await;
    let member_token = member["access_token"].as_str().unwrap().to_owned();
    let member_session = member["session_id"].as_str().unwrap().to_owned();

    let browser = Browser::signed_in(&app, &admin);
    let (status, page) = browser.get("/console/sessions").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(MEMBER) && page.contains(ADMIN_EMAIL),
        "{page}"
    );
    let action = format!("/console/sessions/{member_session}/revoke");
    assert!(page.contains(&action), "{page}");

    // The member sees no Sessions entry, gets the 403 page, and cannot sign the admin out.
    let member_browser = Browser::signed_in(&app, &member_token);
    let (_, page) = member_browser.get("/console").await;
    assert!(!page.contains("/console/sessions"), "{page}");
    let (status, _) = member_browser.get("/console/sessions").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let csrf = hidden(&browser.get("/console/sessions").await.1, "csrf").unwrap();
    let (status, _) = browser.post(&action, &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _) = app
        .call(&member_token, reqwest::Method::GET, "/api/v1/me", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "signed out at once");
    let (_, page) = browser
        .get("/console/sessions?done=device-signed-out")
        .await;
    assert!(!page.contains(MEMBER), "{page}");
}

#[tokio::test]
async fn the_profile_creates_a_token_shown_once_and_changes_the_password() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let signed_in = member(&app, &admin).await;
    let token = signed_in["access_token"].as_str().unwrap().to_owned();
    let browser = Browser::signed_in(&app, &token);
    let (_, page) = browser.get("/console/profile").await;
    let csrf = hidden(&page, "csrf").unwrap();
    // A member may hand a token only what they hold themselves.
    assert!(page.contains("value=\"workspaces.create\""), "{page}");
    assert!(!page.contains("value=\"users.read\""), "{page}");
    let (status, page) = browser
        .post(
            "/console/profile/tokens",
            &[
                ("csrf", &csrf),
                ("name", "ci <deploys>"),
                ("expires_in_days", "30"),
                ("permission", "workspaces.create"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("ci &#60;deploys&#62;"), "{page}");
    let marker = "<pre class=\"snippet key\" tabindex=\"0\">";
    let start = page.find(marker).unwrap() + marker.len();
    let secret = page[start..].split('<').next().unwrap().to_owned();
    assert!(secret.starts_with("wdn_pat_"), "{secret}");
    let (status, _) = app
        .call(&secret, reqwest::Method::GET, "/api/v1/me", None)
        .await;
    assert_eq!(status, StatusCode::OK, "the token works");
    let (_, page) = browser.get("/console/profile").await;
    assert!(!page.contains(&secret), "shown once");
    // More than the member holds: refused with the reason.
    let (status, page) = browser
        .post(
            "/console/profile/tokens",
            &[
                ("csrf", &csrf),
                ("name", "too much"),
                ("expires_in_days", "30"),
                ("permission", "users.read"),
            ],
        )
        .await;
    assert!(status.is_client_error(), "{status}: {page}");

    // The password: the two copies must agree, the current one must be right.
    let (status, page) = browser
        .post(
            "/console/profile/password",
            &[
                ("csrf", &csrf),
                ("current_password", MEMBER_PASSWORD),
                ("new_password", "brisk lantern 5520 otter"),
                ("confirm", "brisk lantern 5520 otteR"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(
        page.contains("confirm: the two new passwords differ"),
        "{page}"
    );
    let (status, page) = browser
        .post(
            "/console/profile/password",
            &[
                ("csrf", &csrf),
                ("current_password", "not it at all 123"),
                ("new_password", "brisk lantern 5520 otter"),
                ("confirm", "brisk lantern 5520 otter"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(
        page.contains("current_password: is not your current password"),
        "{page}"
    );
    let to = browser
        .submit(
            "/console/profile/password",
            &[
                ("csrf", &csrf),
                ("current_password", MEMBER_PASSWORD),
                ("new_password", "brisk lantern 5520 otter"),
                ("confirm", "brisk lantern 5520 otter"),
            ],
        )
        .await;
    assert_eq!(to, "/console/profile?done=password-changed");
    assert!(
        app.sign_in(MEMBER, "brisk lantern 5520 otter")
            .await
            .is_ok()
    );
    assert!(app.sign_in(MEMBER, MEMBER_PASSWORD).await.is_err());
}

#[tokio::test]
async fn a_workspace_ticket_source_is_set_refused_when_malformed_and_cleared_from_its_settings() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let browser = Browser::signed_in(&app, &admin);
    let (ws, csrf) = browser.new_workspace("Alpha").await;
    let settings = format!("/console/workspaces/{ws}/settings");
    let tickets = r#"{"provider": "github", "project": "acme/payments"}"#;
    browser
        .submit(
            &settings,
            &[
                ("csrf", &csrf),
                ("repository", "/srv/repo"),
                ("ticket_config", tickets),
            ],
        )
        .await;
    let (_, w) = app
        .call(
            &admin,
            reqwest::Method::GET,
            &format!("/api/v1/workspaces/{ws}"),
            None,
        )
        .await;
    assert_eq!(w["ticket_config"]["project"], "acme/payments", "{w}");
    let (_, page) = browser.get(&settings).await;
    assert!(page.contains("acme/payments"), "{page}");
    // Not JSON, or not a ticket source: refused with the reason, nothing changes.
    for bad in [
        "{not json",
        r#"{"provider": "carrier-pigeon", "project": "x"}"#,
    ] {
        let (status, page) = browser
            .post(
                &settings,
                &[
                    ("csrf", &csrf),
                    ("repository", "/srv/repo"),
                    ("ticket_config", bad),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {page}");
        assert!(page.contains("class=\"alert\""), "{page}");
    }
    // A form without the field (an older page) keeps it; a blank field clears it.
    browser
        .submit(&settings, &[("csrf", &csrf), ("repository", "/srv/repo")])
        .await;
    let (_, w) = app
        .call(
            &admin,
            reqwest::Method::GET,
            &format!("/api/v1/workspaces/{ws}"),
            None,
        )
        .await;
    assert_eq!(w["ticket_config"]["provider"], "github", "{w}");
    browser
        .submit(
            &settings,
            &[
                ("csrf", &csrf),
                ("repository", "/srv/repo"),
                ("ticket_config", ""),
            ],
        )
        .await;
    let (_, w) = app
        .call(
            &admin,
            reqwest::Method::GET,
            &format!("/api/v1/workspaces/{ws}"),
            None,
        )
        .await;
    assert!(w["ticket_config"].is_null(), "{w}");
}

#[tokio::test]
async fn a_workspace_registers_and_deletes_a_host_of_its_own_from_the_console() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let browser = Browser::signed_in(&app, &admin);
    let (ws, csrf) = browser.new_workspace("Alpha").await;
    let hosts = format!("/console/workspaces/{ws}/hosts");
    let (status, page) = browser.get(&hosts).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("Register a host for this workspace"),
        "{page}"
    );
    let (status, page) = browser
        .post(
            &hosts,
            &[
                ("csrf", &csrf),
                ("name", "alpha-runner"),
                ("kind", "session"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("whk_"), "the key, once: {page}");
    assert!(page.contains(&format!("href=\"{hosts}\"")), "{page}");
    let (_, page) = browser.get(&hosts).await;
    assert!(page.contains("<strong>alpha-runner</strong>"), "{page}");
    assert!(!page.contains("whk_"), "{page}");
    let (_, listed) = app
        .call(
            &admin,
            reqwest::Method::GET,
            &format!("/api/v1/workspaces/{ws}/hosts"),
            None,
        )
        .await;
    let id = listed.as_array().or(listed["items"].as_array()).unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Its page: the allow-list and a new key, in this workspace's scope.
    let (status, page) = browser.get(&format!("{hosts}/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains(&format!("action=\"{hosts}/{id}/allow-list\"")),
        "{page}"
    );
    assert!(
        !page.contains("Workspaces it serves"),
        "a workspace's own host serves it alone"
    );
    let to = browser
        .submit(
            &format!("{hosts}/{id}/allow-list"),
            &[("csrf", &csrf), ("allow_list", "10.1.0.0/16")],
        )
        .await;
    let (_, page) = browser.get(&to).await;
    assert!(
        page.contains("The allow-list is saved") && page.contains("10.1.0.0/16"),
        "{page}"
    );
    let (status, page) = browser
        .post(
            &format!("{hosts}/{id}/rotate-key"),
            &[("csrf", &csrf), ("grace_minutes", "0")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("New key for alpha-runner") && page.contains("whk_"),
        "{page}"
    );
    // Another workspace's URL for it is a 404.
    let (other, _) = browser.new_workspace("Beta").await;
    let (status, _) = browser
        .get(&format!("/console/workspaces/{other}/hosts/{id}"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let to = browser
        .submit(&format!("{hosts}/{id}/delete"), &[("csrf", &csrf)])
        .await;
    let (_, page) = browser.get(&to).await;
    assert!(page.contains("The host is deleted"), "{page}");
    assert!(!page.contains("<strong>alpha-runner</strong>"), "{page}");
}

#[tokio::test]
async fn a_name_with_markup_is_shown_as_text_wherever_the_console_shows_it() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let browser = Browser::signed_in(&app, &admin);
    let (status, page) = browser.get("/console/profile").await;
    let csrf = hidden(&page, "csrf").unwrap_or_else(|| panic!("{status} {page}"));
    let hostile = "Ada <script>alert(1)</script>\"><img src=x onerror=alert(2)> {{7*7}}";
    let to = browser
        .submit(
            "/console/profile/name",
            &[("csrf", &csrf), ("name", hostile)],
        )
        .await;
    assert_eq!(to, "/console/profile?done=name-saved");
    for path in [
        "/console",
        "/console/profile",
        "/console/workspaces",
        "/console/hosts",
    ] {
        let (status, page) = browser.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(
            !page.contains("<script>alert") && !page.contains("<img src=x"),
            "{path}: {page}"
        );
        assert!(
            page.contains("Ada &#60;script&#62;alert(1)&#60;/script&#62;&#34;&#62;&#60;img src=x onerror=alert(2)&#62; {{7*7}} · "),
            "{path}: {page}"
        );
    }
    let changed = crate::identity::audit_rows(&app, "user.name_changed").await;
    assert_eq!(changed.len(), 1);
    // Too long, or with a control character: refused with the reason; blank clears it.
    let (status, page) = browser
        .post(
            "/console/profile/name",
            &[("csrf", &csrf), ("name", &"x".repeat(101))],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    let (status, body) = app
        .call(
            &admin,
            reqwest::Method::PUT,
            "/api/v1/me/name",
            Some(serde_json::json!({"name": "bell\u{7}"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = app
        .call(
            &admin,
            reqwest::Method::PUT,
            "/api/v1/me/name",
            Some(serde_json::json!({"name": "  "})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["name"].is_null(), "{body}");
    let (_, page) = browser.get("/console").await;
    assert!(!page.contains("Ada"), "{page}");
}

#[tokio::test]
async fn every_workspace_is_listed_for_those_who_may_and_a_token_is_kept_to_one_workspace() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let signed_in = member(&app, &admin).await;
    let member_token = signed_in["access_token"].as_str().unwrap().to_owned();
    // The member's own workspace, which the administrator does not belong to.
    let (_, theirs) = app
        .call(
            &member_token,
            reqwest::Method::POST,
            "/api/v1/workspaces",
            Some(serde_json::json!({"name": "Theirs"})),
        )
        .await;
    let theirs = theirs["id"].as_str().unwrap().to_owned();
    let browser = Browser::signed_in(&app, &admin);
    let (_, page) = browser.get("/console/workspaces").await;
    assert!(!page.contains("Theirs"), "{page}");
    assert!(
        page.contains("href=\"/console/workspaces?all=true\""),
        "{page}"
    );
    let (_, page) = browser.get("/console/workspaces?all=true").await;
    assert!(
        page.contains(&format!("href=\"/console/workspaces/{theirs}\"")),
        "{page}"
    );
    assert_eq!(
        crate::identity::audit_rows(&app, "workspace.listed_all")
            .await
            .len(),
        1
    );
    let (_, page) = Browser::signed_in(&app, &member_token)
        .get("/console/workspaces")
        .await;
    assert!(!page.contains("all=true"), "{page}");
    let (status, _) = Browser::signed_in(&app, &member_token)
        .get("/console/workspaces?all=true")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A token kept to one workspace reaches no other.
    let member_browser = Browser::signed_in(&app, &member_token);
    let (_, page) = member_browser.get("/console/profile").await;
    assert!(
        page.contains(&format!("<option value=\"{theirs}\">only Theirs</option>")),
        "{page}"
    );
    let csrf = hidden(&page, "csrf").unwrap();
    let (status, page) = member_browser
        .post(
            "/console/profile/tokens",
            &[
                ("csrf", &csrf),
                ("name", "theirs only"),
                ("expires_in_days", "7"),
                ("workspace_id", &theirs),
                ("permission", "workspaces.create"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let marker = "<pre class=\"snippet key\" tabindex=\"0\">";
    let start = page.find(marker).unwrap() + marker.len();
    let secret = page[start..].split('<').next().unwrap().to_owned();
    let (status, _) = app
        .call(&secret, reqwest::Method::GET, "/api/v1/admin/users", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no platform routes");
}
