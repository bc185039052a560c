//! The console's administration pages over HTTP: Users (invite, change a role, deactivate —
//! the same rules as the API, refusals as pages that say why), Roles (the permission matrix,
//! a custom role), the Audit log (filters, keyset paging, CSV export link); a member opening
//! any of them gets the 403 page; and every state-changing console route, found in the
//! OpenAPI document, refuses a cross-site form and a form without its CSRF field.

use reqwest::{Method, StatusCode};
use serde_json::json;
use warden_testkit::TestApp;
use warden_testkit::browser::{Browser, hidden};

use crate::identity::{ADMIN_EMAIL, admin_token, audit_rows};

const MEMBER: &str = "dev@example.com";
const PASSWORD: &str = "quiet harbor 4417 finch";

async fn create_member(app: &TestApp, admin: &str) -> String {
    let (status, body) = app
        .call(
            admin,
            Method::POST,
            "/api/v1/admin/users",
            Some(json!({"email": MEMBER, "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn open(browser: &Browser, path: &str) -> (String, String) {
    let (status, page) = browser.get(path).await;
    assert_eq!(status, StatusCode::OK, "{path}: {page}");
    (page.clone(), hidden(&page, "csrf").unwrap_or_default())
}

#[tokio::test]
async fn administrators_invite_change_roles_and_deactivate_people_from_the_console() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let member_id = create_member(&app, &admin).await;
    let browser = Browser::signed_in(&app, &admin);

    let (page, csrf) = open(&browser, "/console/admin/users").await;
    assert!(
        page.contains(MEMBER) && page.contains(ADMIN_EMAIL),
        "{page}"
    );
    assert!(page.contains("href=\"/console/admin/users\" aria-current=\"page\""));
    // The administrator's own row offers no action on themselves.
    assert!(
        !page.contains(&format!("Deactivate {ADMIN_EMAIL}")),
        "{page}"
    );

    let to = browser
        .submit(
            "/console/admin/users/invite",
            &[
                ("csrf", &csrf),
                ("email", "newcomer@example.com"),
                ("platform_role", "auditor"),
            ],
        )
        .await;
    assert_eq!(to, "/console/admin/users?done=invitation-sent");
    let (page, _) = open(&browser, &to).await;
    assert!(page.contains("The invitation is sent"), "{page}");
    assert!(page.contains("Pending invitations") && page.contains("newcomer@example.com"));
    assert_eq!(audit_rows(&app, "invitation.sent").await.len(), 1);
    // An address that already has an account: refused, with the reason, on a page.
    let (status, page) = browser
        .post(
            "/console/admin/users/invite",
            &[("csrf", &csrf), ("email", MEMBER)],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    assert!(page.contains("<h1>That did not work</h1>"), "{page}");
    assert!(page.contains("class=\"alert\""), "{page}");

    // A role change, effective through the API at once.
    browser
        .submit(
            &format!("/console/admin/users/{member_id}/role"),
            &[("csrf", &csrf), ("platform_role", "auditor")],
        )
        .await;
    let member_token = app.sign_in(MEMBER, PASSWORD).await.unwrap();
    let (status, _) = app
        .call(&member_token, Method::GET, "/api/v1/audit/events", None)
        .await;
    assert_eq!(status, StatusCode::OK, "an auditor reads the audit trail");

    // Deactivated: their sign-ins end at once; reactivated: they may sign in again.
    browser
        .submit(
            &format!("/console/admin/users/{member_id}/deactivate"),
            &[("csrf", &csrf)],
        )
        .await;
    let (status, _) = app
        .call(&member_token, Method::GET, "/api/v1/me", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (page, _) = open(&browser, "/console/admin/users?done=user-deactivated").await;
    assert!(page.contains("deactivated</span>"), "{page}");
    assert!(page.contains(&format!("Reactivate {MEMBER}")), "{page}");
    browser
        .submit(
            &format!("/console/admin/users/{member_id}/reactivate"),
            &[("csrf", &csrf)],
        )
        .await;
    assert!(app.sign_in(MEMBER, PASSWORD).await.is_ok());

    // The last administrator cannot take their own role away, however the form is sent.
    let me = app.call(&admin, Method::GET, "/api/v1/me", None).await.1["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, page) = browser
        .post(
            &format!("/console/admin/users/{me}/deactivate"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    assert!(page.contains("class=\"alert\""), "{page}");
}

#[tokio::test]
async fn the_roles_page_shows_the_matrix_and_defines_a_custom_role_within_the_admins_own() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let browser = Browser::signed_in(&app, &admin);
    let (page, csrf) = open(&browser, "/console/admin/roles").await;
    for needle in [
        "<code>audit.export</code>",
        ">admin<",
        ">auditor<",
        ">member<",
    ] {
        assert!(page.contains(needle), "{needle}: {page}");
    }
    let to = browser
        .submit(
            "/console/admin/roles",
            &[
                ("csrf", &csrf),
                ("name", "helpdesk"),
                ("description", "Reads <people>"),
                ("permission", "users.read"),
                ("permission", "sessions.read"),
            ],
        )
        .await;
    assert_eq!(to, "/console/admin/roles?done=role-created");
    let (page, _) = open(&browser, &to).await;
    assert!(page.contains("<strong>helpdesk</strong>"), "{page}");
    assert!(page.contains("Reads &#60;people&#62;"), "{page}");
    let (_, roles) = app
        .call(&admin, Method::GET, "/api/v1/admin/roles", None)
        .await;
    let helpdesk = roles["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "helpdesk")
        .unwrap()
        .clone();
    assert_eq!(
        helpdesk["permissions"],
        json!(["users.read", "sessions.read"])
    );
    // A permission that does not exist: the reason, on a page.
    let (status, page) = browser
        .post(
            "/console/admin/roles",
            &[
                ("csrf", &csrf),
                ("name", "odd"),
                ("permission", "users.fly"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.contains("permissions: unknown permission name"),
        "{page}"
    );
    browser
        .submit("/console/admin/roles/helpdesk/delete", &[("csrf", &csrf)])
        .await;
    let (page, _) = open(&browser, "/console/admin/roles").await;
    assert!(!page.contains("<strong>helpdesk</strong>"));
}

#[tokio::test]
async fn the_audit_page_filters_pages_through_the_trail_and_offers_the_export() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    for i in 0..60 {
        let (status, _) = app
            .call(
                &admin,
                Method::POST,
                "/api/v1/workspaces",
                Some(json!({"name": format!("ws-{i:02}")})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let browser = Browser::signed_in(&app, &admin);
    let (page, _) = open(&browser, "/console/audit?action=workspace.created").await;
    assert_eq!(
        page.matches("<strong>workspace.created</strong>").count(),
        50
    );
    assert!(!page.contains("<strong>auth.sign_in</strong>"), "filtered");
    assert!(page.contains("The chain"), "the chain's status: {page}");
    assert!(
        page.contains(&format!(">{ADMIN_EMAIL}</a>")),
        "actors by email"
    );
    assert!(
        page.contains("href=\"/api/v1/audit/export.csv?action=workspace.created\""),
        "{page}"
    );
    let start = page
        .find("/console/audit?action=workspace.created&#38;cursor=")
        .unwrap();
    let older = page[start..]
        .split('"')
        .next()
        .unwrap()
        .replace("&#38;", "&");
    let (next, _) = open(&browser, &older).await;
    assert_eq!(
        next.matches("<strong>workspace.created</strong>").count(),
        10
    );
    assert!(
        next.contains("ws-00") && !next.contains("ws-59"),
        "older events"
    );
    assert!(!next.contains("Older events"), "the last page");
    // The export link serves the CSV to the console's own cookie.
    let res = reqwest::Client::new()
        .get(app.url("/api/v1/audit/export.csv?action=workspace.created"))
        .header("cookie", browser.cookie.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.text().await.unwrap().lines().count(), 61);
    // A filter that does not parse: a page that says which.
    let (status, page) = browser.get("/console/audit?outcome=maybe").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("outcome must be one of"), "{page}");
}

#[tokio::test]
async fn a_member_opening_administration_pages_gets_the_403_page_and_no_links_to_them() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    create_member(&app, &admin).await;
    let member = app.sign_in(MEMBER, PASSWORD).await.unwrap();
    let browser = Browser::signed_in(&app, &member);
    let (home, _) = open(&browser, "/console").await;
    for path in [
        "/console/admin/users",
        "/console/admin/roles",
        "/console/audit",
        "/console/hosts",
        "/console/sessions",
    ] {
        assert!(!home.contains(&format!("href=\"{path}\"")), "{path}");
        let (status, page) = browser.get(path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(page.contains("<h1>Not allowed</h1>"), "{path}: {page}");
        assert!(page.starts_with("<!doctype html>"));
    }
    let (_, csrf) = open(&browser, "/console/profile").await;
    let (status, _) = browser
        .post(
            "/console/admin/users/invite",
            &[("csrf", &csrf), ("email", "x@example.com")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(audit_rows(&app, "invitation.sent").await.is_empty());
}

#[tokio::test]
async fn every_state_changing_console_route_refuses_cross_site_forms_and_forms_without_csrf() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let (_, ws) = app
        .call(
            &admin,
            Method::POST,
            "/api/v1/workspaces",
            Some(json!({"name": "Alpha"})),
        )
        .await;
    let ws = ws["id"].as_str().unwrap().to_owned();
    let doc = app.openapi().await.unwrap();
    let browser = Browser::signed_in(&app, &admin);
    let (_, csrf) = open(&browser, "/console/profile").await;
    let mut evil = browser.clone();
    evil.origin = "https://evil.example".to_owned();
    let before = warden_store::audit::newest(
        app.server.store(),
        &app.server.state().ctx.audit_key,
        10_000,
    )
    .await
    .unwrap()
    .iter()
    .filter(|r| r.outcome == "success")
    .count();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/console") || item.get("post").is_none() {
            continue;
        }
        let url = path
            .replace("{workspace_id}", &ws)
            .replace("{name}", "helpdesk")
            .replace("{user_id}", "0190b3b0-0000-7000-8000-00000000beef")
            .replace("{session_id}", "0190b3b0-0000-7000-8000-00000000dead")
            .replace("{host_id}", "0190b3b0-0000-7000-8000-00000000cafe")
            .replace("{id}", "0190b3b0-0000-7000-8000-00000000f00d");
        let fields = [
            ("csrf", csrf.as_str()),
            ("name", "Beta"),
            ("email", "x@example.com"),
        ];
        let (status, page) = evil.post(&url, &fields).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "cross-site {url}: {page}");
        let (status, page) = browser.post(&url, &fields[1..]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "no csrf {url}: {page}");
        checked += 1;
    }
    assert!(checked >= 26, "only {checked} console forms found");
    let after = warden_store::audit::newest(
        app.server.store(),
        &app.server.state().ctx.audit_key,
        10_000,
    )
    .await
    .unwrap()
    .iter()
    .filter(|r| r.outcome == "success")
    .count();
    assert_eq!(before, after, "nothing changed");
}

#[tokio::test]
async fn a_host_is_registered_restricted_rekeyed_and_deleted_from_the_console() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let browser = Browser::signed_in(&app, &admin);
    let (page, csrf) = open(&browser, "/console/hosts").await;
    assert!(page.contains("Register a host"), "{page}");
    // Registered: the key is on the answer page, once.
    let (status, page) = browser
        .post(
            "/console/hosts",
            &[
                ("csrf", &csrf),
                ("name", "build-09"),
                ("kind", "session"),
                ("allow_list", "10.0.0.0/8\r\n127.0.0.1"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let marker = "<pre class=\"snippet key\" tabindex=\"0\">";
    let start = page.find(marker).unwrap() + marker.len();
    let key = page[start..].split('<').next().unwrap().to_owned();
    assert!(key.starts_with("whk_"), "{key}");
    let (_, hosts) = app.call(&admin, Method::GET, "/api/v1/hosts", None).await;
    let host = hosts["items"]
        .as_array()
        .or(hosts.as_array())
        .unwrap()
        .iter()
        .find(|h| h["name"] == "build-09")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (page, csrf) = open(&browser, &format!("/console/hosts/{host}")).await;
    assert!(!page.contains(&key), "the key is never shown again");
    assert!(page.contains("10.0.0.0/8\n127.0.0.1/32"), "{page}");
    for row in
        warden_store::audit::newest(app.server.store(), &app.server.state().ctx.audit_key, 1000)
            .await
            .unwrap()
    {
        assert!(!row.summary.contains(&key[4..]), "{}", row.summary);
    }

    // The allow-list: a bad entry is refused with the reason; a good one is kept.
    let (status, page) = browser
        .post(
            &format!("/console/hosts/{host}/allow-list"),
            &[("csrf", &csrf), ("allow_list", "not-an-address")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(page.contains("class=\"alert\""), "{page}");
    let to = browser
        .submit(
            &format!("/console/hosts/{host}/allow-list"),
            &[("csrf", &csrf), ("allow_list", "192.168.1.0/24")],
        )
        .await;
    let (page, _) = open(&browser, &to).await;
    assert!(page.contains("The allow-list is saved"), "{page}");
    let (_, h) = app
        .call(&admin, Method::GET, &format!("/api/v1/hosts/{host}"), None)
        .await;
    assert_eq!(h["allow_list"], json!(["192.168.1.0/24"]), "{h}");

    // A new key, shown once; the old one kept for the grace period.
    let (status, page) = browser
        .post(
            &format!("/console/hosts/{host}/rotate-key"),
            &[("csrf", &csrf), ("grace_minutes", "5")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("New key for build-09"), "{page}");
    assert!(!page.contains(&key), "a new key");
    let (page, _) = open(&browser, &format!("/console/hosts/{host}")).await;
    assert!(page.contains("the previous key works until"), "{page}");

    // Deleted: gone from the API too.
    let to = browser
        .submit(&format!("/console/hosts/{host}/delete"), &[("csrf", &csrf)])
        .await;
    assert_eq!(to, "/console/hosts?done=host-deleted");
    let (status, _) = app
        .call(&admin, Method::GET, &format!("/api/v1/hosts/{host}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn single_sign_on_providers_are_added_from_the_console_and_appear_on_the_sign_in_page() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let browser = Browser::signed_in(&app, &admin);
    let (page, csrf) = open(&browser, "/console/admin/sso").await;
    assert!(page.contains("None yet"), "{page}");
    let to = browser
        .submit(
            "/console/admin/sso",
            &[
                ("csrf", &csrf),
                ("display_name", "Acme <SSO>"),
                ("slug", "acme"),
                ("preset", "issuer"),
                ("issuer", "https://idp.example.com"),
                ("client_id", "warden-client"),
                ("client_secret", "s3cret-client-value-0123"),
                ("allowed_domains", "example.com, example.org"),
                ("jit", "on"),
                ("default_role", "member"),
            ],
        )
        .await;
    assert_eq!(to, "/console/admin/sso?done=provider-added");
    let (page, _) = open(&browser, &to).await;
    assert!(page.contains("Acme &#60;SSO&#62;"), "{page}");
    assert!(
        page.contains("secret <span class=\"tag\">set</span>"),
        "{page}"
    );
    assert!(!page.contains("s3cret-client-value"), "write-only");
    assert!(page.contains("/api/v1/auth/sso/acme/callback"), "{page}");
    assert!(page.contains("new accounts as member"), "{page}");
    // A preset without what it needs: refused with the reason.
    let (status, page) = browser
        .post(
            "/console/admin/sso",
            &[
                ("csrf", &csrf),
                ("display_name", "Entra"),
                ("slug", "entra"),
                ("preset", "entra"),
                ("tenant", "not a tenant!"),
                ("client_id", "x"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(page.contains("tenant: must be a directory"), "{page}");

    // The sign-in page offers it, returning where the person was going.
    let (status, page) = Browser::anonymous(&app)
        .get("/sign-in?next=%2Fconsole%2Faudit")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(
            "href=\"/api/v1/auth/sso/acme/start?redirect=%2Fconsole%2Faudit\">Sign in with Acme &lt;SSO&gt;</a>"
        ) || page.contains(
            "href=\"/api/v1/auth/sso/acme/start?redirect=%2Fconsole%2Faudit\">Sign in with Acme &#60;SSO&#62;</a>"
        ),
        "{page}"
    );
    // Somewhere else entirely is not a place to return to.
    let (_, page) = Browser::anonymous(&app)
        .get("/sign-in?next=https%3A%2F%2Fevil.example")
        .await;
    assert!(page.contains("redirect=%2Fconsole\""), "{page}");

    let (_, csrf) = open(&browser, "/console/admin/sso").await;
    // Edited with the secret left blank: the name changes, the secret is kept.
    let to = browser
        .submit(
            "/console/admin/sso/acme",
            &[
                ("csrf", &csrf),
                ("preset", "issuer"),
                ("display_name", "Acme Login"),
                ("issuer", "https://idp.example.com"),
                ("client_id", "warden-client"),
                ("client_secret", ""),
            ],
        )
        .await;
    assert_eq!(to, "/console/admin/sso?done=provider-saved");
    let (page, _) = open(&browser, &to).await;
    assert!(page.contains("<strong>Acme Login</strong>"), "{page}");
    assert!(
        page.contains("secret <span class=\"tag\">set</span>"),
        "{page}"
    );
    browser
        .submit("/console/admin/sso/acme/delete", &[("csrf", &csrf)])
        .await;
    let (_, page) = Browser::anonymous(&app).get("/sign-in").await;
    assert!(!page.contains("Acme"), "{page}");
}

#[tokio::test]
async fn the_sign_in_page_emails_a_link_without_javascript_and_the_mail_log_shows_it() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let anonymous = Browser::anonymous(&app);
    let (_, page) = anonymous.get("/sign-in").await;
    assert!(page.contains("action=\"/sign-in/email\""), "{page}");
    for (email, kind) in [(ADMIN_EMAIL, "sign-in"), ("nobody@example.com", "sign-in")] {
        let (status, page) = anonymous
            .post("/sign-in/email", &[("email", email), ("kind", kind)])
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(
            page.contains("a link is on its way"),
            "answered alike: {page}"
        );
    }
    let (status, _) = anonymous
        .post(
            "/sign-in/email",
            &[("email", ADMIN_EMAIL), ("kind", "reset")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // One magic link and one reset for the real account; nothing for the unknown address.
    let browser = Browser::signed_in(&app, &admin);
    let mut page = String::new();
    for _ in 0..50 {
        page = open(&browser, "/console/admin/mail").await.0;
        if page.matches(&format!("to {ADMIN_EMAIL}")).count() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        page.matches(&format!("to {ADMIN_EMAIL}")).count(),
        2,
        "{page}"
    );
    assert!(
        page.contains("magic link to") && page.contains("password reset to"),
        "{page}"
    );
    assert!(!page.contains("nobody@example.com"), "{page}");
    assert!(!page.contains("token="), "no link, no body: {page}");
}

#[tokio::test]
async fn password_sign_in_is_turned_off_from_the_console_and_the_sign_in_page_follows() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let browser = Browser::signed_in(&app, &admin);
    let (page, csrf) = open(&browser, "/console/admin/sso").await;
    assert!(
        page.contains("name=\"password_sign_in\" value=\"on\" checked"),
        "{page}"
    );
    let to = browser
        .submit(
            "/console/admin/sign-in-policy",
            &[("csrf", &csrf), ("break_glass_email", ADMIN_EMAIL)],
        )
        .await;
    let (page, _) = open(&browser, &to).await;
    assert!(page.contains("The sign-in policy is saved"), "{page}");
    assert!(!page.contains("value=\"on\" checked"), "{page}");
    let (_, sign_in) = Browser::anonymous(&app).get("/sign-in").await;
    assert!(!sign_in.contains("name=\"password\""), "{sign_in}");
    assert!(!sign_in.contains("password reset"), "{sign_in}");
    assert!(sign_in.contains("Email me a sign-in link"), "{sign_in}");
    let (_, policy) = app
        .call(&admin, Method::GET, "/api/v1/admin/sign-in-policy", None)
        .await;
    assert_eq!(policy["password_sign_in"], false, "{policy}");
    // Back on.
    browser
        .submit(
            "/console/admin/sign-in-policy",
            &[("csrf", &csrf), ("password_sign_in", "on")],
        )
        .await;
    let (_, sign_in) = Browser::anonymous(&app).get("/sign-in").await;
    assert!(sign_in.contains("name=\"password\""), "{sign_in}");
}

#[tokio::test]
async fn a_workspace_is_renamed_and_archived_from_its_settings_and_then_changes_nothing() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let browser = Browser::signed_in(&app, &admin);
    let (ws, csrf) = browser.new_workspace("Alpha").await;
    let base = format!("/console/workspaces/{ws}");
    browser
        .submit(
            &format!("{base}/rename"),
            &[("csrf", &csrf), ("name", "Gamma")],
        )
        .await;
    let (page, _) = open(&browser, &format!("{base}/settings")).await;
    assert!(page.contains("<h1>Gamma</h1>"), "{page}");
    browser
        .submit(&format!("{base}/archive"), &[("csrf", &csrf)])
        .await;
    let (page, _) = open(&browser, &format!("{base}/settings")).await;
    assert!(page.contains("archived: read-only"), "{page}");
    assert!(
        !page.contains("Save settings"),
        "no forms on an archived workspace"
    );
    let (page, _) = open(&browser, &base).await;
    assert!(!page.contains("Start a session"), "{page}");
    // However the form is sent, an archived workspace changes nothing.
    let (status, page) = browser
        .post(
            &format!("{base}/secrets"),
            &[
                ("csrf", &csrf),
                ("kind", "variable"),
                ("name", "X"),
                ("value", "y"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
}

#[tokio::test]
async fn a_host_is_kept_to_chosen_workspaces_from_its_page() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let mut ids = Vec::new();
    for name in ["Alpha", "Beta"] {
        let (_, ws) = app
            .call(
                &admin,
                Method::POST,
                "/api/v1/workspaces",
                Some(json!({"name": name})),
            )
            .await;
        ids.push(ws["id"].as_str().unwrap().to_owned());
    }
    let (_, created) = app
        .call(
            &admin,
            Method::POST,
            "/api/v1/hosts",
            Some(json!({"name": "build-10", "kind": "session"})),
        )
        .await;
    let host = created["host"]["id"].as_str().unwrap().to_owned();
    let browser = Browser::signed_in(&app, &admin);
    let (page, csrf) = open(&browser, &format!("/console/hosts/{host}")).await;
    assert!(
        page.contains("Every workspace may run sessions on it"),
        "{page}"
    );
    assert!(
        page.contains("> Alpha</label>") && page.contains("> Beta</label>"),
        "{page}"
    );
    let to = browser
        .submit(
            &format!("/console/hosts/{host}/workspaces"),
            &[("csrf", &csrf), ("workspace", &ids[1])],
        )
        .await;
    let (page, _) = open(&browser, &to).await;
    assert!(page.contains("Only the ticked workspaces"), "{page}");
    assert!(
        page.contains(&format!("value=\"{}\" checked> Beta", ids[1])),
        "{page}"
    );
    assert!(
        !page.contains(&format!("value=\"{}\" checked", ids[0])),
        "{page}"
    );
    let changed = audit_rows(&app, "host.workspaces_changed").await;
    assert_eq!(changed.len(), 1);
    // Not a workspace: refused with the reason, nothing changes.
    let (status, page) = browser
        .post(
            &format!("/console/hosts/{host}/workspaces"),
            &[("csrf", &csrf), ("workspace", "not-a-workspace")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert_eq!(audit_rows(&app, "host.workspaces_changed").await.len(), 1);
}

#[tokio::test]
async fn an_administrator_sets_a_password_signs_someone_out_and_edits_a_role_from_the_console() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let member_id = create_member(&app, &admin).await;
    let member_token = app.sign_in(MEMBER, PASSWORD).await.unwrap();
    let browser = Browser::signed_in(&app, &admin);
    let (page, csrf) = open(&browser, "/console/admin/users").await;
    assert!(
        page.contains(&format!("Sign out {MEMBER} everywhere")),
        "{page}"
    );

    // Signed out everywhere: the member's session ends at once.
    let to = browser
        .submit(
            &format!("/console/admin/users/{member_id}/sign-out"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(to, "/console/admin/users?done=signed-out-everywhere");
    let (status, _) = app
        .call(&member_token, Method::GET, "/api/v1/me", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A new password: the policy applies; the old one stops working.
    let (status, page) = browser
        .post(
            &format!("/console/admin/users/{member_id}/password"),
            &[("csrf", &csrf), ("new_password", "short")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    let to = browser
        .submit(
            &format!("/console/admin/users/{member_id}/password"),
            &[
                ("csrf", &csrf),
                ("new_password", "copper kettle 8812 marsh"),
            ],
        )
        .await;
    assert_eq!(to, "/console/admin/users?done=password-reset");
    assert!(
        app.sign_in(MEMBER, "copper kettle 8812 marsh")
            .await
            .is_ok()
    );
    assert!(app.sign_in(MEMBER, PASSWORD).await.is_err());

    // A custom role, edited: its permissions are replaced.
    let (status, _) = app
        .call(
            &admin,
            Method::POST,
            "/api/v1/admin/roles",
            Some(json!({"name": "helpdesk", "permissions": ["users.read", "sessions.read"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (page, csrf) = open(&browser, "/console/admin/roles").await;
    assert!(page.contains("value=\"users.read\" checked"), "{page}");
    let to = browser
        .submit(
            "/console/admin/roles/helpdesk",
            &[
                ("csrf", &csrf),
                ("description", "Reads sessions"),
                ("permission", "sessions.read"),
            ],
        )
        .await;
    assert_eq!(to, "/console/admin/roles?done=role-saved");
    let (_, roles) = app
        .call(&admin, Method::GET, "/api/v1/admin/roles", None)
        .await;
    let helpdesk = roles["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "helpdesk")
        .unwrap()
        .clone();
    assert_eq!(
        helpdesk["permissions"],
        json!(["sessions.read"]),
        "{helpdesk}"
    );
    assert_eq!(helpdesk["description"], "Reads sessions");
}
