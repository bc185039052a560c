//! Organizations (multi-tenant mode): a sign-in acts in one organization at a time; another
//! organization's workspaces do not exist for it on any route, a request naming another
//! organization (`x-org-id`, or the path) is refused and recorded, an organization's admin
//! cannot act as a platform administrator, and on PostgreSQL row-level security hides another
//! organization's rows from a query that forgot to filter by it.

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden_domain::access::{Access, Permission};
use warden_domain::identity::Principal;
use warden_domain::organizations::OrgId;
use warden_domain::tenancy::WorkspaceId;
use warden_store::Backend;
use warden_testkit::TestApp;

use crate::identity::{ADMIN_EMAIL, admin_token, audit_rows, sign_in};
use crate::tenancy::{
    PASSWORD, User, call, denials, example_body, ok_json, refusal_shape, user, workspace,
};

const DEFAULT: &str = "00000000-0000-0000-0000-000000000001";

/// Switches `token`'s sign-in into `org`; the new access token.
pub(crate) async fn switch(app: &TestApp, token: &str, org: &str) -> String {
    let v = ok_json(
        app,
        token,
        Method::POST,
        "/api/v1/auth/organization",
        Some(json!({ "organization": org })),
    )
    .await;
    v["access_token"].as_str().unwrap().to_owned()
}

async fn workspace_ids(app: &TestApp, token: &str) -> Vec<String> {
    let v = ok_json(app, token, Method::GET, "/api/v1/workspaces", None).await;
    let items = v["items"].as_array().or(v.as_array()).unwrap().clone();
    items
        .iter()
        .map(|w| w["id"].as_str().unwrap().to_owned())
        .collect()
}

/// An installation with the default organization and `acme`: bob is acme's admin, carol a
/// member; the administrator owns `home` in the default organization, bob owns `rocket` in
/// acme.
pub(crate) struct World {
    pub(crate) app: TestApp,
    pub(crate) admin: String,
    pub(crate) acme: String,
    pub(crate) bob: User,
    pub(crate) carol: User,
    pub(crate) home: String,
    pub(crate) rocket: String,
}

/// Asserts that `email` is a member (role member) of acme, as acme's admin `token` lists it.
pub(crate) async fn assert_acme_member(app: &TestApp, token: &str, email: &str) {
    let members = ok_json(
        app,
        token,
        Method::GET,
        "/api/v1/organizations/acme/members",
        None,
    )
    .await;
    assert!(
        members["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["email"] == email && m["role"] == "member"),
        "{members}"
    );
}

pub(crate) async fn world() -> World {
    world_in(TestApp::spawn().await.unwrap()).await
}

/// [`world`] on `app` (a console app for a browser test, say).
pub(crate) async fn world_in(app: TestApp) -> World {
    let admin = admin_token(&app).await;
    let bob = user(&app, &admin, "bob@acme.example", "member").await;
    let carol = user(&app, &admin, "carol@acme.example", "member").await;
    let home = workspace(
        &app,
        &User {
            id: String::new(),
            token: admin.clone(),
        },
        "Home",
    )
    .await;
    let org = ok_json(
        &app,
        &admin,
        Method::POST,
        "/api/v1/organizations",
        Some(json!({"slug": "acme", "name": "Acme Corp"})),
    )
    .await;
    let acme = org["id"].as_str().unwrap().to_owned();
    // Adding members names the organization the sign-in acts in: the administrator switches.
    let admin_in_acme = switch(&app, &admin, "acme").await;
    for (who, role) in [
        ("bob@acme.example", "admin"),
        ("carol@acme.example", "member"),
    ] {
        ok_json(
            &app,
            &admin_in_acme,
            Method::POST,
            &format!("/api/v1/organizations/{acme}/members"),
            Some(json!({"email": who, "role": role})),
        )
        .await;
    }
    let admin = switch(&app, &admin_in_acme, "default").await;
    let bob = User {
        token: switch(&app, &bob.token, "acme").await,
        ..bob
    };
    let carol = User {
        token: switch(&app, &carol.token, &acme).await,
        ..carol
    };
    let rocket = workspace(&app, &bob, "Rocket").await;
    World {
        app,
        admin,
        acme,
        bob,
        carol,
        home,
        rocket,
    }
}

#[tokio::test]
async fn a_sign_in_acts_in_one_organization_and_sees_only_its_workspaces() {
    let w = world().await;
    let app = &w.app;
    // Each sign-in lists the workspaces of the organization it acts in.
    assert_eq!(
        workspace_ids(app, &w.bob.token).await,
        vec![w.rocket.clone()]
    );
    assert_eq!(workspace_ids(app, &w.admin).await, vec![w.home.clone()]);
    let orgs = ok_json(
        app,
        &w.bob.token,
        Method::GET,
        "/api/v1/organizations",
        None,
    )
    .await;
    let listed: Vec<(&str, bool, Value)> = orgs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["slug"].as_str().unwrap(),
                o["current"].as_bool().unwrap(),
                o["role"].clone(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            ("default", false, Value::Null),
            ("acme", true, json!("admin"))
        ]
    );
    // A refresh keeps the organization: the session remembers it.
    let signed = sign_in(app, "bob@acme.example", PASSWORD).await;
    let fresh = signed["access_token"].as_str().unwrap();
    assert_eq!(workspace_ids(app, fresh).await, Vec::<String>::new());
    switch(app, fresh, "acme").await;
    let refreshed = ok_json(
        app,
        "",
        Method::POST,
        "/api/v1/auth/refresh",
        Some(json!({"refresh_token": signed["refresh_token"]})),
    )
    .await;
    let refreshed = refreshed["access_token"].as_str().unwrap();
    assert_eq!(workspace_ids(app, refreshed).await, vec![w.rocket.clone()]);
    // A personal access token acts in the organization it was made in, and cannot switch.
    let pat = ok_json(
        app,
        &w.bob.token,
        Method::POST,
        "/api/v1/me/tokens",
        Some(json!({"name": "ci", "permissions": ["workspaces.read"], "expires_in_days": 30})),
    )
    .await;
    let pat = pat["token"].as_str().unwrap();
    assert_eq!(workspace_ids(app, pat).await, vec![w.rocket.clone()]);
    let (s, v) = app
        .call(
            pat,
            Method::POST,
            "/api/v1/auth/organization",
            Some(json!({"organization": "default"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    // Carol belongs to acme only as a member; she cannot enter an organization she is not in.
    let admin = ok_json(
        app,
        &w.admin,
        Method::POST,
        "/api/v1/organizations",
        Some(json!({"slug": "globex", "name": "Globex"})),
    )
    .await;
    let (s, v) = app
        .call(
            &w.carol.token,
            Method::POST,
            "/api/v1/auth/organization",
            Some(json!({"organization": admin["id"]})),
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not-org-member"))
    );
    let (s, _) = app
        .call(
            &w.carol.token,
            Method::POST,
            "/api/v1/auth/organization",
            Some(json!({"organization": "no-such-org"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A workspace's members come from its organization: someone outside it is, there, no
    // account at all.
    let members = format!("/api/v1/workspaces/{}/members", w.rocket);
    let (s1, outsider) = app
        .call(
            &w.bob.token,
            Method::POST,
            &members,
            Some(json!({"email": ADMIN_EMAIL, "role": "member"})),
        )
        .await;
    let (s2, nobody) = app
        .call(
            &w.bob.token,
            Method::POST,
            &members,
            Some(json!({"email": "nobody-4e1a@acme.example", "role": "member"})),
        )
        .await;
    assert_eq!(
        (s1, &outsider["code"]),
        (s2, &nobody["code"]),
        "{outsider} {nobody}"
    );
    assert!(s1.is_client_error());
    let (s, v) = app
        .call(
            &w.bob.token,
            Method::POST,
            &members,
            Some(json!({"email": "carol@acme.example", "role": "member"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // Slugs are checked and unique.
    for (slug, expected) in [
        ("acme", StatusCode::CONFLICT),
        ("Acme", StatusCode::UNPROCESSABLE_ENTITY),
        ("a", StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let (s, v) = app
            .call(
                &w.admin,
                Method::POST,
                "/api/v1/organizations",
                Some(json!({"slug": slug, "name": "X"})),
            )
            .await;
        assert_eq!(s, expected, "{slug}: {v}");
    }
    // Switching is recorded.
    let switched = audit_rows(app, "session.organization_switched").await;
    assert!(
        switched
            .iter()
            .any(|r| r.actor_id.as_deref() == Some(w.bob.id.as_str())
                && r.resource_id.as_deref() == Some(w.acme.as_str())),
        "{switched:?}"
    );
}

#[tokio::test]
async fn an_organization_header_or_path_naming_another_organization_is_refused_and_recorded() {
    let w = world().await;
    let app = &w.app;
    let path = format!("/api/v1/workspaces/{}", w.rocket);
    for (header, expected) in [
        (Some(w.acme.clone()), StatusCode::OK),
        (None, StatusCode::OK),
        (Some(DEFAULT.to_owned()), StatusCode::FORBIDDEN),
        (Some("acme".to_owned()), StatusCode::FORBIDDEN),
        (Some(String::new()), StatusCode::FORBIDDEN),
    ] {
        let mut req = app.client.get(app.url(&path)).bearer_auth(&w.bob.token);
        if let Some(h) = &header {
            req = req.header("x-org-id", h);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), expected, "x-org-id: {header:?}");
        if expected == StatusCode::FORBIDDEN {
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["code"], "org-mismatch", "{body}");
        }
    }
    // Two headers: every one must name the organization.
    let res = app
        .client
        .get(app.url("/api/v1/me"))
        .bearer_auth(&w.bob.token)
        .header("x-org-id", &w.acme)
        .header("x-org-id", DEFAULT)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // The refusal is on record with who asked and the route (denials are written in the
    // background: wait for both).
    let mut denied = denials(app, 2).await;
    for _ in 0..100 {
        if denied
            .iter()
            .filter(|r| r.summary.contains("org-mismatch"))
            .count()
            >= 2
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        denied = denials(app, 2).await;
    }
    let ours: Vec<_> = denied
        .iter()
        .filter(|r| r.summary.contains("org-mismatch"))
        .collect();
    assert!(ours.len() >= 2, "{denied:?}");
    assert!(
        ours.iter()
            .all(|r| r.actor_id.as_deref() == Some(w.bob.id.as_str())),
        "{ours:?}"
    );
    // The path names an organization the same way.
    let (s, v) = app
        .call(
            &w.bob.token,
            Method::GET,
            &format!("/api/v1/organizations/{DEFAULT}/members"),
            None,
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("org-mismatch"))
    );
    let (s, v) = app
        .call(
            &w.bob.token,
            Method::GET,
            "/api/v1/organizations/acme/members",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let emails: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["bob@acme.example", "carol@acme.example"]);
}

#[tokio::test]
async fn every_workspace_route_hides_another_organizations_workspace() {
    let w = world().await;
    let app = &w.app;
    let doc = app.openapi().await.unwrap();
    // The administrator owns `home` and holds every platform permission, but acts in acme
    // now: for this sign-in, `home` does not exist.
    let admin_in_acme = switch(app, &w.admin, "acme").await;
    let (_, _, table) = warden_server::api::routes().into_parts();
    let missing = WorkspaceId::generate().to_string();
    let mut checked = 0;
    for (method, path, rule) in table.entries() {
        if !matches!(rule, Access::Workspace(_)) {
            continue;
        }
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let body = example_body(&doc, path, method);
        // Every other parameter gets a fresh id: the workspace is checked before them.
        let fill = |ws: &str| {
            let sub: BTreeMap<&str, String> = BTreeMap::new();
            path.split('/')
                .map(|seg| {
                    if seg == "{workspace_id}" {
                        ws.to_owned()
                    } else if seg.starts_with('{') {
                        sub.get(seg)
                            .cloned()
                            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
                    } else {
                        seg.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join("/")
        };
        let absent = call(
            app,
            &admin_in_acme,
            m.clone(),
            &fill(&missing),
            body.clone(),
        )
        .await;
        assert_eq!(absent.status(), StatusCode::NOT_FOUND, "{method} {path}");
        let absent = refusal_shape(absent).await;
        let res = call(app, &admin_in_acme, m.clone(), &fill(&w.home), body.clone()).await;
        assert_eq!(
            res.status(),
            StatusCode::NOT_FOUND,
            "{method} {path}: another organization's workspace"
        );
        assert_eq!(refusal_shape(res).await, absent, "{method} {path} leaks");
        checked += 1;
    }
    assert!(checked >= 60, "only {checked} workspace routes");
    // The same sign-in back in the default organization reaches `home` again, and bob's own
    // workspace is hidden from his sign-in once it acts in the default organization.
    let admin_home = switch(app, &admin_in_acme, "default").await;
    ok_json(
        app,
        &admin_home,
        Method::GET,
        &format!("/api/v1/workspaces/{}", w.home),
        None,
    )
    .await;
    let bob_default = switch(app, &w.bob.token, "default").await;
    let (s, _) = app
        .call(
            &bob_default,
            Method::GET,
            &format!("/api/v1/workspaces/{}", w.rocket),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .call(
            &bob_default,
            Method::GET,
            &format!("/api/v1/workspaces/{}/members", w.rocket),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_organization_admin_manages_its_members_but_is_no_platform_administrator() {
    let w = world().await;
    let app = &w.app;
    let bob = &w.bob.token;
    // Platform actions: refused.
    for (method, path, body) in [
        (
            Method::POST,
            "/api/v1/organizations".to_owned(),
            Some(json!({"slug": "bobcorp", "name": "Bob"})),
        ),
        (Method::GET, "/api/v1/admin/users".to_owned(), None),
        (
            Method::PUT,
            format!("/api/v1/admin/users/{}/role", w.carol.id),
            Some(json!({"platform_role": "admin"})),
        ),
        (Method::GET, "/api/v1/admin/roles".to_owned(), None),
        (
            Method::POST,
            format!("/api/v1/organizations/{}/members", w.acme),
            Some(json!({"email": ADMIN_EMAIL, "role": "member"})),
        ),
    ] {
        let (s, v) = app.call(bob, method.clone(), &path, body).await;
        assert!(
            s == StatusCode::FORBIDDEN || s == StatusCode::NOT_FOUND,
            "{method} {path}: {s} {v}"
        );
    }
    // Adding the administrator would have told bob the account exists: it is a 404 as for
    // any address, and nothing changed.
    let members = |token: String| async move {
        ok_json(
            app,
            &token,
            Method::GET,
            "/api/v1/organizations/acme/members",
            None,
        )
        .await["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["email"].as_str().unwrap().to_owned(),
                    m["role"].as_str().unwrap().to_owned(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(members(bob.clone()).await.len(), 2);
    // A member is not an admin: no member list.
    let (s, _) = app
        .call(
            &w.carol.token,
            Method::GET,
            "/api/v1/organizations/acme/members",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // The admin promotes and demotes; the last admin stays.
    ok_json(
        app,
        bob,
        Method::POST,
        "/api/v1/organizations/acme/members",
        Some(json!({"email": "carol@acme.example", "role": "admin"})),
    )
    .await;
    ok_json(
        app,
        bob,
        Method::POST,
        "/api/v1/organizations/acme/members",
        Some(json!({"email": "carol@acme.example", "role": "member"})),
    )
    .await;
    let (s, v) = app
        .call(
            bob,
            Method::POST,
            "/api/v1/organizations/acme/members",
            Some(json!({"email": "bob@acme.example", "role": "member"})),
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("last-org-admin"))
    );
    // Removing carol takes the organization from her sign-in on its next request.
    let carol_ws = workspace(app, &w.carol, "Carol's").await;
    let (s, _) = app
        .call(
            bob,
            Method::DELETE,
            &format!("/api/v1/organizations/acme/members/{}", w.carol.id),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app
        .call(
            &w.carol.token,
            Method::GET,
            &format!("/api/v1/workspaces/{carol_ws}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "a removed member's sign-in");
    let (s, _) = app
        .call(
            &w.carol.token,
            Method::POST,
            "/api/v1/workspaces",
            Some(json!({"name": "smuggled"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(
        members(bob.clone()).await,
        vec![("bob@acme.example".to_owned(), "admin".to_owned())]
    );
    let removed = audit_rows(app, "organization.member_removed").await;
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].actor_id.as_deref(), Some(w.bob.id.as_str()));
    // The default organization has no member list to change.
    let (s, v) = app
        .call(
            &w.admin,
            Method::POST,
            &format!("/api/v1/organizations/{DEFAULT}/members"),
            Some(json!({"email": "carol@acme.example", "role": "member"})),
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("default-org"))
    );
}

#[tokio::test]
async fn row_level_security_hides_another_organizations_rows_from_an_unfiltered_query() {
    let w = world().await;
    if w.app.db.backend != Backend::Postgres {
        // SQLite has no row-level security; there the explicit filters are the only wall.
        return;
    }
    let store = w.app.server.store();
    let bob = Principal::session(w.bob.id.parse().unwrap(), uuid::Uuid::nil())
        .in_org(OrgId::parse(&w.acme).unwrap());
    let rocket = WorkspaceId::parse(&w.rocket).unwrap();
    let grant = store
        .authorize(&bob, rocket, Permission::SETTINGS_READ)
        .await
        .unwrap();
    let mut tx = store.scoped(&grant).await.unwrap();
    for (sql, expected) in [
        ("SELECT COUNT(*) FROM workspaces", 1),
        ("SELECT COUNT(*) FROM workspace_members", 1),
    ] {
        assert_eq!(
            tx.unfiltered_count_for_rls_test(sql).await.unwrap(),
            expected,
            "{sql}"
        );
    }
    drop(tx);
    // The application role, by hand, entering workspaces the way the store does: a
    // transaction naming acme and a workspace of the default organization is left naming no
    // workspace, and sees none of that workspace's rows — the query has no organization filter.
    let pool = sqlx::PgPool::connect(&w.app.db.url).await.unwrap();
    for (org, ws, expected) in [
        (w.acme.as_str(), w.home.as_str(), 0),
        (DEFAULT, w.home.as_str(), 1),
        (w.acme.as_str(), w.rocket.as_str(), 1),
        (DEFAULT, w.rocket.as_str(), 0),
    ] {
        let mut conn = pool.begin().await.unwrap();
        let entered: bool = sqlx::query_scalar("SELECT warden_enter_workspace($1::uuid, $2::uuid)")
            .bind(ws)
            .bind(org)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(entered, expected == 1, "entering {ws} as org {org}");
        let named: String = sqlx::query_scalar("SELECT current_setting('warden.workspace_id')")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(named, if expected == 1 { ws } else { "" });
        for table in ["workspaces", "workspace_members"] {
            let n: i64 =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                    .fetch_one(&mut *conn)
                    .await
                    .unwrap();
            assert_eq!(n, expected, "{table} as org {org} in workspace {ws}");
        }
    }
    // The platform-wide path too: naming acme, it lists acme's workspaces only.
    let mut conn = pool.begin().await.unwrap();
    sqlx::query(
        "SELECT set_config('warden.platform', 'on', true), set_config('warden.org_id', $1, true)",
    )
    .bind(&w.acme)
    .execute(&mut *conn)
    .await
    .unwrap();
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT id FROM workspaces")
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    assert_eq!(ids, vec![rocket.uuid()]);
    drop(conn);
    // And a row cannot be moved into another organization.
    let mut conn = pool.begin().await.unwrap();
    sqlx::query(
        "SELECT set_config('warden.workspace_id', $1, true), set_config('warden.org_id', $2, true)",
    )
    .bind(&w.rocket)
    .bind(&w.acme)
    .execute(&mut *conn)
    .await
    .unwrap();
    let err = sqlx::query("UPDATE workspaces SET organization_id = $1")
        .bind(OrgId::DEFAULT.uuid())
        .execute(&mut *conn)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("row-level security"), "{err}");
    drop(conn);
    pool.close().await;
}

#[tokio::test]
async fn warden_org_lists_switches_and_manages_members() {
    let w = world().await;
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("credentials.json");
    let run = |args: &[&str], stdin: &'static str| {
        crate::cli::run_cli(
            dir.path(),
            &creds,
            args.iter().map(|s| (*s).to_owned()).collect(),
            stdin,
        )
    };
    let (ok, out) = run(
        &["login", "--url", &w.app.base, "--email", "bob@acme.example"],
        "quiet harbor 4417 finch\n",
    )
    .await
    .unwrap();
    assert!(ok, "{out}");
    // A new sign-in starts in the default organization.
    let (ok, out) = run(&["org", "list"], "").await.unwrap();
    assert!(ok, "{out}");
    assert!(out.contains("*  default  Default organization"), "{out}");
    assert!(out.contains("   acme  Acme Corp  admin"), "{out}");
    let (ok, out) = run(&["org", "members", "acme"], "").await.unwrap();
    assert!(!ok && out.contains("names another organization"), "{out}");
    let (ok, out) = run(&["org", "switch", "acme"], "").await.unwrap();
    assert!(
        ok && out.contains("now acting in acme (Acme Corp)"),
        "{out}"
    );
    // The next command (a new refresh) acts in acme.
    let (ok, out) = run(&["org", "list"], "").await.unwrap();
    assert!(ok && out.contains("*  acme"), "{out}");
    let (ok, out) = run(
        &[
            "org",
            "add-member",
            "acme",
            "carol@acme.example",
            "--role",
            "admin",
        ],
        "",
    )
    .await
    .unwrap();
    assert!(
        ok && out.contains("carol@acme.example is admin of acme"),
        "{out}"
    );
    let (ok, out) = run(&["org", "members", "acme"], "").await.unwrap();
    assert!(ok, "{out}");
    assert!(out.contains("bob@acme.example  admin"), "{out}");
    assert!(out.contains("carol@acme.example  admin"), "{out}");
    let (ok, out) = run(&["org", "provider", "acme", "no-such-provider"], "")
        .await
        .unwrap();
    assert!(!ok, "bob holds no platform permission: {out}");
    let (ok, out) = run(&["org", "remove-member", "acme", &w.carol.id], "")
        .await
        .unwrap();
    assert!(ok, "{out}");
    // Settings, usage and the audit view from a terminal.
    let (ok, out) = run(
        &[
            "org",
            "settings",
            "acme",
            "--name",
            "Acme Rockets",
            "--email-domains",
            "acme.example, acme.test",
        ],
        "",
    )
    .await
    .unwrap();
    assert!(ok, "{out}");
    assert!(out.contains("name            Acme Rockets"), "{out}");
    assert!(
        out.contains("email domains   acme.example, acme.test"),
        "{out}"
    );
    assert!(out.contains("max workspaces  no limit"), "{out}");
    let (ok, out) = run(&["org", "settings", "acme", "--max-workspaces", "9"], "")
        .await
        .unwrap();
    assert!(!ok, "an organization admin does not set its limit: {out}");
    let (ok, out) = run(&["org", "usage", "acme", "--days", "7"], "")
        .await
        .unwrap();
    assert!(ok, "{out}");
    assert!(out.contains("Rocket  1  0  0  0  0  0"), "{out}");
    assert!(out.contains("TOTAL  1  0  0  0  0  0"), "{out}");
    let (ok, out) = run(&["org", "audit", "acme", "--action", "organization."], "")
        .await
        .unwrap();
    assert!(ok, "{out}");
    assert!(
        out.contains("organization.settings_changed  success"),
        "{out}"
    );
    assert!(
        out.contains("organization.member_removed  success"),
        "{out}"
    );
    assert!(!out.contains("workspace.created"), "{out}");
    let (ok, out) = run(&["org", "create", "--slug", "bobcorp", "--name", "Bob"], "")
        .await
        .unwrap();
    assert!(
        !ok,
        "an organization admin is no platform administrator: {out}"
    );
}

/// The access token a browser was handed (its `__Host-warden_access` cookie).
fn access_cookie(res: &reqwest::Response) -> String {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("__Host-warden_access="))
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_sign_in_through_an_organizations_provider_joins_it_and_acts_in_it() {
    use warden_testkit::oidc::{OidcProvider, browse};
    const SECRET: &str = "oidc-client-secret-org-7c1e";
    let w = world().await;
    let app = &w.app;
    let idp = OidcProvider::start(
        "warden",
        SECRET,
        &app.url("/api/v1/auth/sso/acme-idp/callback"),
    );
    ok_json(
        app,
        &w.admin,
        Method::POST,
        "/api/v1/admin/sso/providers",
        Some(json!({
            "slug": "acme-idp", "display_name": "Acme", "preset": "oidc", "issuer": idp.issuer,
            "client_id": "warden", "client_secret": SECRET, "allow_private_network": true,
            "allowed_domains": ["acme.example"], "jit": true,
        })),
    )
    .await;
    let path = "/api/v1/organizations/acme/sso-providers/acme-idp";
    // Naming acme while acting in the default organization; an organization admin; then the
    // platform administrator acting in acme.
    let (s, v) = app.call(&w.admin, Method::PUT, path, None).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("org-mismatch"))
    );
    let (s, _) = app.call(&w.bob.token, Method::PUT, path, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let admin_in_acme = switch(app, &w.admin, "acme").await;
    let (s, v) = app.call(&admin_in_acme, Method::PUT, path, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let listed = ok_json(
        app,
        &w.admin,
        Method::GET,
        "/api/v1/admin/sso/providers",
        None,
    )
    .await;
    let listed = listed
        .as_array()
        .or(listed["items"].as_array())
        .unwrap()
        .clone();
    assert_eq!(listed[0]["organization_id"], w.acme.as_str(), "{listed:?}");

    // Dave signs in through it for the first time: a new account, a member of acme, and his
    // sign-in acts there.
    let b = browse(
        &app.url("/api/v1/auth/sso/acme-idp/start"),
        &app.base,
        "dave@acme.example",
    )
    .await;
    let back = warden_testkit::no_redirect_client()
        .get(&b.callback)
        .header("cookie", &b.binding)
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), StatusCode::SEE_OTHER);
    let dave = access_cookie(&back);
    let orgs = ok_json(app, &dave, Method::GET, "/api/v1/organizations", None).await;
    let current: Vec<(&str, &Value)> = orgs["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["current"] == true)
        .map(|o| (o["slug"].as_str().unwrap(), &o["role"]))
        .collect();
    assert_eq!(current, vec![("acme", &json!("member"))]);
    assert_acme_member(app, &w.bob.token, "dave@acme.example").await;
    let added = audit_rows(app, "organization.member_added").await;
    assert!(
        added.iter().any(|r| r.summary.contains("acme-idp")),
        "{added:?}"
    );
    // Taken back, the provider signs people in for the installation again.
    let (s, _) = app.call(&admin_in_acme, Method::DELETE, path, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.call(&admin_in_acme, Method::DELETE, path, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let b = browse(
        &app.url("/api/v1/auth/sso/acme-idp/start"),
        &app.base,
        "erin@acme.example",
    )
    .await;
    let back = warden_testkit::no_redirect_client()
        .get(&b.callback)
        .header("cookie", &b.binding)
        .send()
        .await
        .unwrap();
    let erin = access_cookie(&back);
    let orgs = ok_json(app, &erin, Method::GET, "/api/v1/organizations", None).await;
    assert_eq!(orgs["items"].as_array().unwrap().len(), 1, "{orgs}");
    assert_eq!(orgs["items"][0]["slug"], "default");
}

#[tokio::test]
async fn the_console_switches_organizations_from_its_header() {
    if crate::browser::skipped() {
        return;
    }
    let (app, public) = crate::browser::console_app(&[]).await;
    let admin = admin_token(&app).await;
    let admin_user = User {
        id: String::new(),
        token: admin.clone(),
    };
    let home = workspace(&app, &admin_user, "Home").await;
    ok_json(
        &app,
        &admin,
        Method::POST,
        "/api/v1/organizations",
        Some(json!({"slug": "acme", "name": "Acme Corp"})),
    )
    .await;
    let in_acme = User {
        id: String::new(),
        token: switch(&app, &admin, "acme").await,
    };
    let rocket = workspace(&app, &in_acme, "Rocket").await;
    let summary = crate::browser::walk(
        "organizations.mjs",
        &public,
        &[("HOME_WS", &home), ("ACME_WS", &rocket)],
        2,
    )
    .await;
    assert_eq!(
        summary["options"],
        json!(["Default organization", "Acme Corp"]),
        "{summary}"
    );
    assert_eq!(summary["selected_before"], "Default organization");
    assert!(summary["home_listed"].as_u64().unwrap() > 0, "{summary}");
    assert_eq!(summary["selected_after"], "Acme Corp");
    assert!(
        summary["notice"]
            .as_str()
            .unwrap()
            .contains("You now act in this organization"),
        "{summary}"
    );
    assert!(summary["acme_listed"].as_u64().unwrap() > 0, "{summary}");
    assert_eq!(summary["home_listed_in_acme"], 0);
    assert_eq!(summary["home_status"], 404);
    assert!(
        summary["home_listed_again"].as_u64().unwrap() > 0,
        "{summary}"
    );
    let switched = audit_rows(&app, "session.organization_switched").await;
    assert!(switched.len() >= 3, "{switched:?}");
}
