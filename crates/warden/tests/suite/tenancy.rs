//! Workspaces as the tenant boundary: every workspace route attacked from another workspace
//! and by a viewer, row-level security on PostgreSQL, write-only secrets, roles that cannot
//! be escalated.

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden_domain::access::{Access, Permission};
use warden_domain::identity::Principal;
use warden_domain::tenancy::WorkspaceId;
use warden_store::Backend;
use warden_testkit::{AppOptions, TestApp};

use crate::identity::{ADMIN_EMAIL, admin_token, database_dump, sign_in};

pub(crate) const PASSWORD: &str = "quiet harbor 4417 finch";

/// A signed-in user of the app under test.
pub(crate) struct User {
    pub(crate) id: String,
    pub(crate) token: String,
}

pub(crate) async fn call(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app
        .client
        .request(method.clone(), app.url(path))
        .bearer_auth(token);
    if path.starts_with("/console") && method == Method::POST {
        // The console's forms: one plausible value for every field any of them reads.
        req = req
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                "role=viewer&name=X_ONE&value=y&kind=variable&path=README.md&content=x\
                 &email=nobody%40example.com&provider=command&prompt=x&command=true\
                 &template=t&repository=%2Ftmp%2Frepo",
            );
    } else if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

/// A refusal's body without what differs between two requests: a problem document without
/// its request id, or a console page as it is.
pub(crate) async fn refusal_shape(res: reqwest::Response) -> Value {
    let text = res.text().await.unwrap();
    match serde_json::from_str::<Value>(&text) {
        Ok(v) => problem_shape(&v),
        Err(_) => Value::String(text),
    }
}

pub(crate) async fn ok_json(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let (status, v) = app.call(token, method.clone(), path, body).await;
    assert!(status.is_success(), "{method} {path}: {status} {v}");
    v
}

pub(crate) async fn user(app: &TestApp, admin: &str, email: &str, role: &str) -> User {
    let created = ok_json(
        app,
        admin,
        Method::POST,
        "/api/v1/admin/users",
        Some(json!({"email": email, "password": PASSWORD, "platform_role": role})),
    )
    .await;
    let token = sign_in(app, email, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    User {
        id: created["id"].as_str().unwrap().to_owned(),
        token,
    }
}

pub(crate) async fn workspace(app: &TestApp, owner: &User, name: &str) -> String {
    let ws = ok_json(
        app,
        &owner.token,
        Method::POST,
        "/api/v1/workspaces",
        Some(json!({"name": name})),
    )
    .await;
    assert_eq!(ws["my_role"], "owner");
    ws["id"].as_str().unwrap().to_owned()
}

async fn add_member(app: &TestApp, owner: &User, ws: &str, member: &User, role: &str) {
    ok_json(
        app,
        &owner.token,
        Method::POST,
        &format!("/api/v1/workspaces/{ws}/members"),
        Some(json!({"user_id": member.id, "role": role})),
    )
    .await;
}

/// Everything a workspace holds, as its owner sees it through the API.
async fn snapshot(app: &TestApp, owner: &User, ws: &str) -> Value {
    let mut all = serde_json::Map::new();
    for part in [
        "",
        "/members",
        "/directory-groups",
        "/variables",
        "/prompts",
        "/pat",
        "/provider-keys",
        "/hosts",
        "/sessions",
    ] {
        let v = ok_json(
            app,
            &owner.token,
            Method::GET,
            &format!("/api/v1/workspaces/{ws}{part}"),
            None,
        )
        .await;
        all.insert(part.to_owned(), v);
    }
    Value::Object(all)
}

/// Problem documents compared without their request id.
fn problem_shape(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("request_id");
    }
    v
}

/// Two workspaces: A (owner alice, viewer vera) and B (owner bob, member bert), with a
/// variable, a prompt, a provider key, a PAT and a workspace-bound host in B.
struct World {
    app: TestApp,
    alice: User,
    vera: User,
    bob: User,
    bert: User,
    a: String,
    b: String,
    b_host: String,
    b_session: String,
    /// A directory group mapped to B.
    group: String,
}

async fn world() -> World {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let alice = user(&app, &admin, "alice@example.com", "member").await;
    let vera = user(&app, &admin, "vera@example.com", "member").await;
    let bob = user(&app, &admin, "bob@example.com", "member").await;
    let bert = user(&app, &admin, "bert@example.com", "member").await;
    let a = workspace(&app, &alice, "Alpha").await;
    let b = workspace(&app, &bob, "Bravo").await;
    add_member(&app, &alice, &a, &vera, "viewer").await;
    add_member(&app, &bob, &b, &bert, "member").await;
    let scim = crate::scim::scim_token(&app, &admin).await;
    let (_, _, g) = crate::scim::scim(
        &app,
        &scim,
        Method::POST,
        "/Groups",
        Some(
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": "Bravo team"}),
        ),
    )
    .await;
    let group = g["id"].as_str().unwrap().to_owned();
    ok_json(
        &app,
        &bob.token,
        Method::PUT,
        &format!("/api/v1/workspaces/{b}/directory-groups/{group}"),
        Some(json!({"role": "viewer"})),
    )
    .await;
    for (path, body) in [
        (
            format!("/api/v1/workspaces/{b}/variables/VICTIM_ONLY"),
            json!({"value": "bravo-variable-secret"}),
        ),
        (
            format!("/api/v1/workspaces/{b}/prompts/victim-only"),
            json!({"template": "Bravo's prompt"}),
        ),
        (
            format!("/api/v1/workspaces/{b}/provider-keys/claude-code"),
            json!({"value": "bravo-provider-secret"}),
        ),
        (
            format!("/api/v1/workspaces/{b}/pat"),
            json!({"value": "bravo-pat-secret"}),
        ),
    ] {
        let res = call(&app, &bob.token, Method::PUT, &path, Some(body)).await;
        assert_eq!(res.status(), StatusCode::CREATED, "{path}");
    }
    let b_host = ok_json(
        &app,
        &bob.token,
        Method::POST,
        &format!("/api/v1/workspaces/{b}/hosts"),
        Some(json!({"name": "bravo-runner", "kind": "session"})),
    )
    .await["host"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b_session = insert_waiting_session(&app, &b, &b_host, &bob.id).await;
    World {
        b_session,
        group,
        b_host,
        app,
        alice,
        vera,
        bob,
        bert,
        a,
        b,
    }
}

/// A waiting session in workspace `ws`, written straight to the database (opening one
/// through the API needs a connected agent, which this matrix does not run).
async fn insert_waiting_session(app: &TestApp, ws: &str, host: &str, by: &str) -> String {
    let id = uuid::Uuid::now_v7();
    let ws: uuid::Uuid = ws.parse().unwrap();
    let host: uuid::Uuid = host.parse().unwrap();
    let by: uuid::Uuid = by.parse().unwrap();
    let sql = "INSERT INTO agent_sessions (id, workspace_id, host_id, provider, mode, status, \
               prompt, created_by, created_at) VALUES ($1, $2, $3, 'command', 'chat', \
               'waiting', 'victim', $4, 0)";
    if app.db.backend == Backend::Postgres {
        let pool = sqlx::PgPool::connect(&app.db.owner_url).await.unwrap();
        sqlx::query(sql)
            .bind(id)
            .bind(ws)
            .bind(host)
            .bind(by)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::SqlitePool::connect(&app.db.url).await.unwrap();
        sqlx::query(sql)
            .bind(id)
            .bind(ws)
            .bind(host)
            .bind(by)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
    id.to_string()
}

/// The example request body the OpenAPI document gives for a route, if it takes one.
pub(crate) fn example_body(doc: &Value, path: &str, method: &str) -> Option<Value> {
    let op = &doc["paths"][path][method.to_lowercase()];
    let body = &op["requestBody"]["content"]["application/json"];
    if body.is_null() {
        return None;
    }
    let example = body["example"].clone();
    assert!(
        !example.is_null(),
        "{method} {path} takes a body but documents no example; add one so the tenancy \
         matrix can call it"
    );
    Some(example)
}

/// Fills a route pattern's parameters. `sub` gives the value of every parameter other than
/// `{workspace_id}`; a parameter with no value fails the test (add it here, once per kind).
fn fill(pattern: &str, ws: &str, sub: &BTreeMap<&str, String>) -> String {
    pattern
        .split('/')
        .map(|seg| {
            if seg == "{workspace_id}" {
                ws.to_owned()
            } else if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                sub.get(name)
                    .unwrap_or_else(|| panic!("no test value for path parameter {{{name}}}"))
                    .clone()
            } else {
                seg.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_workspace_route_hides_other_workspaces_and_refuses_viewer_writes() {
    let w = world().await;
    let app = &w.app;
    let doc = app.openapi().await.unwrap();

    // The route table itself: a route is workspace-scoped exactly when its path names a
    // workspace, and then its rule is a workspace permission.
    let (_, _, table) = warden_server::api::routes().into_parts();
    let mut routes = Vec::new();
    for (method, path, rule) in table.entries() {
        let scoped = path.contains("{workspace_id}");
        assert_eq!(
            scoped,
            matches!(rule, Access::Workspace(_)),
            "{method} {path}: a path naming a workspace needs a workspace rule, and only it"
        );
        if scoped {
            routes.push((method.to_owned(), path.to_owned(), rule));
        }
    }
    assert!(routes.len() >= 20, "only {} workspace routes", routes.len());

    // An automation and an event source of B's.
    let (s, automation) = app
        .call(
            &w.bob.token,
            Method::POST,
            &format!("/api/v1/workspaces/{}/automations", w.b),
            Some(
                json!({"name": "victim-only", "kind": "manual", "prompt": "x",
                        "provider": "claude-code"}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{automation}");
    let (s, source) = app
        .call(
            &w.bob.token,
            Method::POST,
            &format!("/api/v1/workspaces/{}/event-sources", w.b),
            Some(json!({"name": "victim-only", "kind": "generic"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{source}");

    let (s, key) = app
        .call(
            &w.bob.token,
            Method::POST,
            &format!("/api/v1/workspaces/{}/service-keys", w.b),
            Some(json!({"name": "victim-only", "permissions": ["settings.read"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{key}");

    let (s, upstream) = app
        .call(
            &w.bob.token,
            Method::POST,
            &format!("/api/v1/workspaces/{}/llm/upstreams", w.b),
            Some(json!({"name": "victim-only", "kind": "openai", "models": ["gpt-4o"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{upstream}");
    let (s, llm_key) = app
        .call(
            &w.bob.token,
            Method::POST,
            &format!("/api/v1/workspaces/{}/llm/keys", w.b),
            Some(json!({"name": "victim-only"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{llm_key}");
    let (s, ticket) = app
        .call(
            &w.bob.token,
            Method::POST,
            &format!("/api/v1/workspaces/{}/tickets", w.b),
            Some(json!({"title": "victim-only"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{ticket}");
    let (s, workflow) = app
        .call(
            &w.bob.token,
            Method::POST,
            &format!("/api/v1/workspaces/{}/workflows", w.b),
            Some(json!({"name": "victim-only", "definition":
                {"steps": [{"id": "ok", "kind": "approval"}]}})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{workflow}");
    let (s, run) = app
        .call(
            &w.bob.token,
            Method::POST,
            &format!(
                "/api/v1/workspaces/{}/workflows/{}/runs",
                w.b,
                workflow["id"].as_str().unwrap()
            ),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{run}");
    let (s, bot) = app
        .call(
            &w.bob.token,
            Method::POST,
            &format!("/api/v1/workspaces/{}/bots", w.b),
            Some(json!({"name": "victim-only", "provider": "claude-code", "instructions": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{bot}");

    // Ids that exist, but in workspace B.
    let victim: BTreeMap<&str, String> = [
        ("key_id", key["key"]["key_id"].as_str().unwrap().to_owned()),
        (
            "automation_id",
            automation["id"].as_str().unwrap().to_owned(),
        ),
        (
            "source_id",
            source["source"]["id"].as_str().unwrap().to_owned(),
        ),
        ("user_id", w.bert.id.clone()),
        ("variable", "VICTIM_ONLY".to_owned()),
        ("prompt", "victim-only".to_owned()),
        ("provider", "claude-code".to_owned()),
        ("host_id", w.b_host.clone()),
        ("session_id", w.b_session.clone()),
        ("upstream_id", upstream["id"].as_str().unwrap().to_owned()),
        (
            "llm_key_id",
            llm_key["key"]["id"].as_str().unwrap().to_owned(),
        ),
        ("call_id", uuid::Uuid::now_v7().to_string()),
        ("ticket", ticket["id"].as_str().unwrap().to_owned()),
        ("message_id", uuid::Uuid::now_v7().to_string()),
        ("workflow_id", workflow["id"].as_str().unwrap().to_owned()),
        ("run_id", run["id"].as_str().unwrap().to_owned()),
        ("bot_id", bot["id"].as_str().unwrap().to_owned()),
        ("group_id", w.group.clone()),
    ]
    .into_iter()
    .collect();
    let before = snapshot(app, &w.bob, &w.b).await;
    let missing = WorkspaceId::generate().to_string();

    for (method, path, rule) in &routes {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let body = example_body(&doc, path, method);
        let has_sub_ids = path.matches('{').count() > 1;

        // What a workspace that does not exist looks like.
        let absent = call(
            app,
            &w.bob.token,
            m.clone(),
            &fill(path, &missing, &victim),
            body.clone(),
        )
        .await;
        assert_eq!(
            absent.status(),
            StatusCode::NOT_FOUND,
            "{method} {path} on a missing workspace"
        );
        let absent = refusal_shape(absent).await;

        // (1) A user of another workspace (bob, owner of B) calls A's route.
        let res = call(
            app,
            &w.bob.token,
            m.clone(),
            &fill(path, &w.a, &victim),
            body.clone(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "(1) {method} {path}");
        assert_eq!(
            refusal_shape(res).await,
            absent,
            "(1) {method} {path} leaks"
        );

        // (2) Ids of another workspace: alice names B, or names B's sub-resources inside A.
        let res = call(
            app,
            &w.alice.token,
            m.clone(),
            &fill(path, &w.b, &victim),
            body.clone(),
        )
        .await;
        assert_eq!(
            res.status(),
            StatusCode::NOT_FOUND,
            "(2) {method} {path} with B's id"
        );
        assert_eq!(
            refusal_shape(res).await,
            absent,
            "(2) {method} {path} leaks"
        );
        if has_sub_ids {
            // Directory groups are platform-wide: once the upsert above mapped B's group in
            // A too, naming it in A reaches A's own mapping (B's is checked below).
            let own_group = path.contains("{group_id}")
                && ok_json(
                    app,
                    &w.alice.token,
                    Method::GET,
                    &format!("/api/v1/workspaces/{}/directory-groups", w.a),
                    None,
                )
                .await
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g["group_id"] == w.group.as_str());
            let res = call(
                app,
                &w.alice.token,
                m.clone(),
                &fill(path, &w.a, &victim),
                body.clone(),
            )
            .await;
            let by_id = [
                "{host_id}",
                "{session_id}",
                "{automation_id}",
                "{source_id}",
                "{upstream_id}",
                "{llm_key_id}",
                "{call_id}",
                "{ticket}",
                "{message_id}",
                "{workflow_id}",
                "{run_id}",
                "{bot_id}",
            ]
            .iter()
            .any(|p| path.contains(p));
            if (m == Method::PUT && !by_id) || own_group {
                // An upsert by name creates alice's own item in A; B must stay untouched
                // (checked below).
                assert!(
                    res.status().is_success(),
                    "(2) {method} {path}: {}",
                    res.status()
                );
            } else {
                let status = res.status();
                let text = res.text().await.unwrap();
                assert_eq!(
                    status,
                    StatusCode::NOT_FOUND,
                    "(2) {method} {path} with B's sub-ids: {text}"
                );
            }
        }

        // (3) A viewer of A writes.
        if m != Method::GET {
            let res = call(
                app,
                &w.vera.token,
                m.clone(),
                &fill(path, &w.a, &victim),
                body.clone(),
            )
            .await;
            assert_eq!(
                res.status(),
                StatusCode::FORBIDDEN,
                "(3) viewer {method} {path} ({rule:?})"
            );
        } else {
            let res = call(
                app,
                &w.vera.token,
                m.clone(),
                &fill(path, &w.a, &victim),
                None,
            )
            .await;
            // A viewer reads what the viewer role grants, and nothing more. Listing gateway
            // keys admits every reader (so an archived workspace's keys can be listed) but
            // answers only who may hold keys: the use case refuses a viewer.
            let narrowed =
                path.ends_with("/{workspace_id}/llm/keys") || path.ends_with("/{workspace_id}/llm");
            let granted = !narrowed
                && match rule {
                    Access::Workspace(p) => warden_domain::access::WorkspaceRole::Viewer
                        .grants()
                        .contains(*p),
                    _ => true,
                };
            if granted {
                assert_ne!(
                    res.status(),
                    StatusCode::FORBIDDEN,
                    "viewer may read {path}"
                );
            } else {
                assert_eq!(
                    res.status(),
                    StatusCode::FORBIDDEN,
                    "viewer may not read {path} ({rule:?})"
                );
            }
        }
    }
    assert_eq!(
        snapshot(app, &w.bob, &w.b).await,
        before,
        "workspace B changed"
    );
}

#[tokio::test]
async fn the_workspace_header_must_match_the_path() {
    let w = world().await;
    let path = format!("/api/v1/workspaces/{}", w.a);
    for (header, expected) in [
        (w.a.clone(), StatusCode::OK),
        (w.b.clone(), StatusCode::BAD_REQUEST),
        ("not-a-uuid".to_owned(), StatusCode::BAD_REQUEST),
    ] {
        let res = w
            .app
            .client
            .get(w.app.url(&path))
            .bearer_auth(&w.alice.token)
            .header("x-workspace-id", &header)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), expected, "X-Workspace-Id: {header}");
        if expected == StatusCode::BAD_REQUEST {
            assert_eq!(
                res.json::<Value>().await.unwrap()["code"],
                "workspace-mismatch"
            );
        }
    }
}

#[tokio::test]
async fn row_level_security_hides_other_workspaces_from_a_query_without_its_filter() {
    let w = world().await;
    if w.app.db.backend != Backend::Postgres {
        // SQLite has no row-level security; there the explicit filters are the only wall.
        return;
    }
    let store = w.app.server.store();
    let alice = Principal::session(w.alice.id.parse().unwrap(), uuid::Uuid::nil());
    let a = WorkspaceId::parse(&w.a).unwrap();
    let grant = store
        .authorize(&alice, a, Permission::SETTINGS_READ)
        .await
        .unwrap();
    let mut tx = store.scoped(&grant).await.unwrap();
    // Deliberately unfiltered queries, run through the application role in A's transaction.
    for (sql, expected) in [
        ("SELECT COUNT(*) FROM workspace_secrets", 0),
        ("SELECT COUNT(*) FROM workspace_prompts", 0),
        ("SELECT COUNT(*) FROM workspace_members", 2),
        ("SELECT COUNT(*) FROM workspaces", 1),
        ("SELECT COUNT(*) FROM hosts", 0),
        ("SELECT COUNT(*) FROM agent_sessions", 0),
        (
            "SELECT COUNT(*) FROM workspace_members m JOIN workspaces w \
             ON w.id = m.workspace_id WHERE w.name = 'Bravo'",
            0,
        ),
    ] {
        assert_eq!(
            tx.unfiltered_count_for_rls_test(sql).await.unwrap(),
            expected,
            "{sql}"
        );
    }
    drop(tx);

    // The same holds outside Warden's code, for anyone connecting as the application role:
    // no scope, no rows; B's scope, only B's rows; writing into another workspace refused.
    let pool = sqlx::PgPool::connect(&w.app.db.url).await.unwrap();
    let unscoped: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM workspace_secrets")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(unscoped, 0);
    let unscoped: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM hosts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(unscoped, 0, "B's workspace-bound host seen without a scope");
    let mut conn = pool.begin().await.unwrap();
    sqlx::query("SELECT set_config('warden.workspace_id', $1, true)")
        .bind(&w.b)
        .execute(&mut *conn)
        .await
        .unwrap();
    let in_b: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM workspace_secrets")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(in_b, 3);
    let in_b: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM hosts")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(in_b, 1);
    let a_id: uuid::Uuid = w.a.parse().unwrap();
    let err = sqlx::query("UPDATE hosts SET workspace_id = $1")
        .bind(a_id)
        .execute(&mut *conn)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("row-level security"), "{err}");
    drop(conn);
    let mut conn = pool.begin().await.unwrap();
    sqlx::query("SELECT set_config('warden.workspace_id', $1, true)")
        .bind(&w.b)
        .execute(&mut *conn)
        .await
        .unwrap();
    let err = sqlx::query(
        "INSERT INTO workspace_prompts (workspace_id, name, template, updated_by, updated_at) \
         VALUES ($1, 'smuggled', 'x', $1, 0)",
    )
    .bind(a_id)
    .execute(&mut *conn)
    .await
    .unwrap_err();
    assert!(err.to_string().contains("row-level security"), "{err}");
    drop(conn);
    pool.close().await;
}

#[tokio::test]
async fn serving_through_a_role_that_bypasses_row_level_security_is_refused() {
    if warden_testkit::backend() != Backend::Postgres {
        return;
    }
    let owner_app = TestApp::spawn().await.unwrap();
    let owner_url = owner_app.db.owner_url.clone();
    let err = TestApp::spawn_with(AppOptions {
        env: vec![("WARDEN_DATABASE_URL".to_owned(), owner_url)],
        ..AppOptions::default()
    })
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("row-level security"), "{err}");
    assert!(err.contains("database.owner_url"), "{err}");
}

#[tokio::test]
async fn secrets_are_write_only_bound_to_their_workspace_and_never_stored_in_plaintext() {
    let w = world().await;
    let app = &w.app;
    let secrets = [
        "bravo-variable-secret",
        "bravo-provider-secret",
        "bravo-pat-secret",
    ];
    for part in ["variables", "provider-keys", "pat"] {
        let v = ok_json(
            app,
            &w.bob.token,
            Method::GET,
            &format!("/api/v1/workspaces/{}/{part}", w.b),
            None,
        )
        .await;
        let text = v.to_string();
        assert_eq!(v.as_array().unwrap().len(), 1, "{part}: {text}");
        assert_eq!(v[0]["set_by"], w.bob.id.as_str());
        for s in secrets {
            assert!(!text.contains(s), "{part} shows a value");
        }
    }
    let dump = database_dump(app).await;
    for s in secrets {
        assert!(!dump.contains(s), "{s} is stored in plaintext");
    }
    assert!(dump.contains("victim-only"), "the dump sees workspace rows");
    let audit = crate::identity::audit_rows(app, "workspace.secret_set").await;
    assert_eq!(audit.len(), 3);
    for row in &audit {
        assert_eq!(row.workspace_id.as_deref(), Some(w.b.as_str()));
        for s in secrets {
            assert!(!row.summary.contains(s));
        }
    }

    // A sealed value copied into another workspace's row does not open there.
    let master = warden_crypto::MasterKey::from_hex(&app.master_key_hex).unwrap();
    let store = app.server.store();
    let ring =
        warden_store::keyring::load_or_create(store, &master, &warden_domain::clock::SystemClock)
            .await
            .unwrap();
    let bob = Principal::session(w.bob.id.parse().unwrap(), uuid::Uuid::nil());
    let b = WorkspaceId::parse(&w.b).unwrap();
    let a = WorkspaceId::parse(&w.a).unwrap();
    let grant = store
        .authorize(&bob, b, Permission::SETTINGS_READ)
        .await
        .unwrap();
    let mut tx = store.scoped(&grant).await.unwrap();
    let sealed = tx
        .sealed_secret(warden_store::tenancy::SecretKind::Pat, "pat")
        .await
        .unwrap()
        .unwrap();
    drop(tx);
    use warden_core::secrets::context as secret_context;
    use warden_store::tenancy::SecretKind;
    let opened = ring
        .open(&secret_context(b, SecretKind::Pat, "pat"), &sealed)
        .unwrap();
    assert_eq!(&opened[..], b"bravo-pat-secret");
    assert!(
        ring.open(&secret_context(a, SecretKind::Pat, "pat"), &sealed)
            .is_err()
    );
    assert!(
        ring.open(&secret_context(b, SecretKind::Variable, "pat"), &sealed)
            .is_err()
    );
}

#[tokio::test]
async fn members_follow_the_role_rules_and_a_workspace_always_keeps_an_owner() {
    let w = world().await;
    let app = &w.app;
    let ws = &w.a;
    let members = format!("/api/v1/workspaces/{ws}/members");
    let admin = sign_in(app, ADMIN_EMAIL, crate::identity::ADMIN_PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let max = user(app, &admin, "max@example.com", "member").await;
    let mia = user(app, &admin, "mia@example.com", "member").await;
    add_member(app, &w.alice, ws, &max, "maintainer").await;

    // A maintainer manages members but never the owner role.
    let res = call(
        app,
        &max.token,
        Method::POST,
        &members,
        Some(json!({"email": "mia@example.com", "role": "owner"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        res.json::<Value>().await.unwrap()["code"],
        "owner-role-reserved"
    );
    let res = call(
        app,
        &max.token,
        Method::POST,
        &members,
        Some(json!({"email": "MIA@example.com", "role": "member"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = call(
        app,
        &max.token,
        Method::DELETE,
        &format!("{members}/{}", w.alice.id),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = call(
        app,
        &max.token,
        Method::POST,
        &members,
        Some(json!({"email": "mia@example.com", "role": "viewer"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CONFLICT, "already a member");
    // A plain member cannot manage members at all.
    let res = call(
        app,
        &mia.token,
        Method::PATCH,
        &format!("{members}/{}", w.vera.id),
        Some(json!({"role": "member"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // Bad input names the field.
    let res = call(
        app,
        &w.alice.token,
        Method::PATCH,
        &format!("{members}/{}", mia.id),
        Some(json!({"role": "emperor"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(res.json::<Value>().await.unwrap()["field"], "role");

    // The last owner can be neither demoted nor removed.
    let me = format!("{members}/{}", w.alice.id);
    let res = call(
        app,
        &w.alice.token,
        Method::PATCH,
        &me,
        Some(json!({"role": "maintainer"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "last-owner");
    let res = call(app, &w.alice.token, Method::DELETE, &me, None).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    // With a second owner, the first may step down, and then loses owner powers at once.
    let res = call(
        app,
        &w.alice.token,
        Method::PATCH,
        &format!("{members}/{}", max.id),
        Some(json!({"role": "owner"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = call(
        app,
        &w.alice.token,
        Method::PATCH,
        &me,
        Some(json!({"role": "viewer"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = call(
        app,
        &w.alice.token,
        Method::PATCH,
        &format!("/api/v1/workspaces/{ws}"),
        Some(json!({"name": "Mine again"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // Removed members lose the workspace entirely.
    let res = call(app, &max.token, Method::DELETE, &me, None).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = call(
        app,
        &w.alice.token,
        Method::GET,
        &format!("/api/v1/workspaces/{ws}"),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    let changes = crate::identity::audit_rows(app, "workspace.member_role_changed").await;
    assert_eq!(changes.len(), 2);
    assert!(
        changes
            .iter()
            .all(|r| r.workspace_id.as_deref() == Some(ws.as_str()))
    );
    assert_eq!(
        crate::identity::audit_rows(app, "workspace.member_removed")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn workspaces_are_listed_to_their_members_and_archived_ones_are_read_only() {
    let w = world().await;
    let app = &w.app;
    let mine = ok_json(app, &w.vera.token, Method::GET, "/api/v1/workspaces", None).await;
    let names: Vec<&str> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Alpha"]);
    assert_eq!(mine["items"][0]["my_role"], "viewer");
    let res = call(
        app,
        &w.vera.token,
        Method::GET,
        "/api/v1/workspaces?all=true",
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // The platform-wide read is for platform roles holding workspaces.read, and audited.
    let admin = sign_in(app, ADMIN_EMAIL, crate::identity::ADMIN_PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let all = ok_json(
        app,
        &admin,
        Method::GET,
        "/api/v1/workspaces?all=true&limit=1",
        None,
    )
    .await;
    assert_eq!(all["items"].as_array().unwrap().len(), 1);
    let cursor = all["next_cursor"].as_str().unwrap();
    let rest = ok_json(
        app,
        &admin,
        Method::GET,
        &format!("/api/v1/workspaces?all=true&limit=1&cursor={cursor}"),
        None,
    )
    .await;
    assert_eq!(rest["items"][0]["name"], "Bravo");
    assert_eq!(
        crate::identity::audit_rows(app, "workspace.listed_all")
            .await
            .len(),
        2
    );

    // Settings are validated, stored and shown; bad input names its field.
    let settings = format!("/api/v1/workspaces/{}/settings", w.a);
    for (body, field) in [
        (
            json!({"repository": "https://user:pw@git.example.test/x.git"}),
            "repository",
        ),
        (json!({"repository": "relative/path"}), "repository"),
        (
            json!({"ticket_config": {"provider": "trello", "project": "x"}}),
            "ticket_config",
        ),
        (json!({"hooks": {"pre_session": [""]}}), "hooks"),
    ] {
        let res = call(
            app,
            &w.alice.token,
            Method::PUT,
            &settings,
            Some(body.clone()),
        )
        .await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let problem: Value = res.json().await.unwrap();
        assert_eq!(problem["field"], field, "{body}");
        assert!(
            !problem.to_string().contains("pw@"),
            "the problem echoes input"
        );
    }
    let saved = ok_json(
        app,
        &w.alice.token,
        Method::PUT,
        &settings,
        Some(
            json!({"repository": "/srv/repos/alpha", "hooks": {"pre_session": ["make setup"]},
            "ticket_config": {"provider": "github", "project": "team/alpha"}}),
        ),
    )
    .await;
    assert_eq!(
        saved["repository"],
        json!({"kind": "path", "location": "/srv/repos/alpha"})
    );
    assert_eq!(saved["hooks"]["pre_session"][0], "make setup");
    assert_eq!(saved["ticket_config"]["provider"], "github");

    // Archived: readable, not writable, and out of the default list.
    let res = call(
        app,
        &w.alice.token,
        Method::POST,
        &format!("/api/v1/workspaces/{}/archive", w.a),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = call(
        app,
        &w.alice.token,
        Method::GET,
        &format!("/api/v1/workspaces/{}", w.a),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.json::<Value>().await.unwrap()["archived_at"].is_string());
    let res = call(
        app,
        &w.alice.token,
        Method::PUT,
        &format!("/api/v1/workspaces/{}/variables/X", w.a),
        Some(json!({"value": "v"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert_eq!(
        res.json::<Value>().await.unwrap()["code"],
        "workspace-archived"
    );
    let mine = ok_json(app, &w.alice.token, Method::GET, "/api/v1/workspaces", None).await;
    assert!(mine["items"].as_array().unwrap().is_empty());
    let mine = ok_json(
        app,
        &w.alice.token,
        Method::GET,
        "/api/v1/workspaces?archived=true",
        None,
    )
    .await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        crate::identity::audit_rows(app, "workspace.archived")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn platform_roles_apply_at_once_and_nobody_grants_more_than_they_hold() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let auditor = user(&app, &admin, "audra@example.com", "auditor").await;
    let res = call(
        &app,
        &auditor.token,
        Method::GET,
        "/api/v1/audit/events",
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    for (m, path) in [
        (Method::GET, "/api/v1/admin/users"),
        (Method::GET, "/api/v1/admin/sessions"),
        (Method::POST, "/api/v1/workspaces"),
    ] {
        let res = call(
            &app,
            &auditor.token,
            m.clone(),
            path,
            Some(json!({"name": "x"})),
        )
        .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "auditor {m} {path}");
    }

    // A custom role, defined by an administrator.
    let res = call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/admin/roles",
        Some(json!({
        "name": "helpdesk", "description": "Looks after accounts",
        "permissions": ["users.read", "users.update", "workspaces.create"]})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/admin/roles",
        Some(json!({
        "name": "broken", "permissions": ["users.fly"]})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let helen = user(&app, &admin, "helen@example.com", "helpdesk").await;
    let member = user(&app, &admin, "mo@example.com", "member").await;
    let admin_id = ok_json(&app, &admin, Method::GET, "/api/v1/admin/users", None).await["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == ADMIN_EMAIL)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let users = ok_json(&app, &helen.token, Method::GET, "/api/v1/admin/users", None).await;
    assert_eq!(users["items"].as_array().unwrap().len(), 4);
    // Escalation attempts: to admin, onto an admin, beyond her own grants.
    for (path, body) in [
        (
            format!("/api/v1/admin/users/{}/role", helen.id),
            json!({"platform_role": "admin"}),
        ),
        (
            format!("/api/v1/admin/users/{}/role", member.id),
            json!({"platform_role": "auditor"}),
        ),
        (
            format!("/api/v1/admin/users/{admin_id}/role"),
            json!({"platform_role": "member"}),
        ),
        (
            format!("/api/v1/admin/users/{admin_id}/password"),
            json!({"new_password": "a completely new phrase 77"}),
        ),
    ] {
        let m = if path.ends_with("/password") {
            Method::POST
        } else {
            Method::PUT
        };
        let res = call(&app, &helen.token, m, &path, Some(body)).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let res = call(
        &app,
        &helen.token,
        Method::POST,
        &format!("/api/v1/admin/users/{admin_id}/deactivate"),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // Within her grants she may act.
    let res = call(
        &app,
        &helen.token,
        Method::PUT,
        &format!("/api/v1/admin/users/{}/role", member.id),
        Some(json!({"platform_role": "helpdesk"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = call(
        &app,
        &member.token,
        Method::GET,
        "/api/v1/admin/users",
        None,
    )
    .await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "a new role applies on the next request"
    );

    // Demotion applies at once too, with the same token.
    let res = call(
        &app,
        &admin,
        Method::PUT,
        &format!("/api/v1/admin/users/{}/role", helen.id),
        Some(json!({"platform_role": "member"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = call(&app, &helen.token, Method::GET, "/api/v1/admin/users", None).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // A role in use cannot be deleted; the last administrator cannot be demoted.
    let res = call(
        &app,
        &admin,
        Method::DELETE,
        "/api/v1/admin/roles/helpdesk",
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let res = call(
        &app,
        &admin,
        Method::PUT,
        &format!("/api/v1/admin/users/{admin_id}/role"),
        Some(json!({"platform_role": "member"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "last-admin");
    let res = call(
        &app,
        &admin,
        Method::POST,
        &format!("/api/v1/admin/users/{admin_id}/deactivate"),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let changed = crate::identity::audit_rows(&app, "user.role_changed").await;
    assert_eq!(changed.len(), 2);
    assert!(changed[0].summary.contains("helpdesk"));
    let perms = ok_json(
        &app,
        &member.token,
        Method::GET,
        "/api/v1/me/permissions",
        None,
    )
    .await;
    assert!(
        perms["platform"]
            .as_array()
            .unwrap()
            .contains(&json!("users.read"))
    );
}

/// Waits (up to 5 s) until `n` `access.denied` events are on record; returns them, newest
/// first. Denials are written beside the response, so they may trail it by a moment.
pub(crate) async fn denials(app: &TestApp, n: usize) -> Vec<warden_store::audit::Row> {
    for _ in 0..100 {
        let rows = crate::identity::audit_rows(app, "access.denied").await;
        if rows.len() >= n {
            return rows;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    crate::identity::audit_rows(app, "access.denied").await
}

/// Refused requests leave a trace: a forged token, a viewer's write, an outsider probing
/// another workspace and a member reading the audit log each become an `access.denied` event
/// (actor when known, route template, reason, request id), and a flood is written sparsely.
#[tokio::test]
async fn refused_requests_are_audited_as_access_denied_and_a_flood_stays_small() {
    let w = world().await;
    let app = &w.app;
    // A token with a forged signature, and one with `alg: none`.
    let parts: Vec<&str> = w.alice.token.split('.').collect();
    let forged = format!("{}.{}.{}", parts[0], parts[1], "AAAA".repeat(64));
    let none = format!(
        "{}.{}.",
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            br#"{"alg":"none","typ":"JWT"}"#
        ),
        parts[1]
    );
    for token in [&forged, &none] {
        let res = call(app, token, Method::GET, "/api/v1/me", None).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    // A viewer's write, an outsider's probe, a member reading the audit log.
    let res = call(
        app,
        &w.vera.token,
        Method::PUT,
        &format!("/api/v1/workspaces/{}/variables/X", w.a),
        Some(json!({"value": "v"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = call(
        app,
        &w.alice.token,
        Method::GET,
        &format!("/api/v1/workspaces/{}/members", w.b),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = call(
        app,
        &w.bert.token,
        Method::GET,
        "/api/v1/audit/events",
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // Two forged tokens (counts 1 and 2 of one key), the viewer, the outsider, the reader.
    let rows = denials(app, 5).await;
    assert_eq!(rows.len(), 5);
    let find = |route: &str, reason: &str| {
        rows.iter()
            .find(|r| r.resource_id.as_deref() == Some(route) && r.summary.contains(reason))
            .unwrap_or_else(|| panic!("no denial for {route} {reason}: {rows:#?}"))
    };
    let forged_row = find("/api/v1/me", "unauthenticated");
    assert_eq!(forged_row.actor_id, None);
    assert_eq!(forged_row.client_ip.as_deref(), Some("127.0.0.1"));
    assert!(forged_row.request_id.is_some());
    assert_eq!(forged_row.outcome, "denied");
    let viewer = find(
        "/api/v1/workspaces/{workspace_id}/variables/{variable}",
        "forbidden",
    );
    assert_eq!(viewer.actor_id.as_deref(), Some(w.vera.id.as_str()));
    let outsider = find("/api/v1/workspaces/{workspace_id}/members", "not-found");
    assert_eq!(outsider.actor_id.as_deref(), Some(w.alice.id.as_str()));
    let reader = find("/api/v1/audit/events", "forbidden");
    assert_eq!(reader.actor_id.as_deref(), Some(w.bert.id.as_str()));
    // The raw path (with the workspace id) is not what is recorded: the template is.
    assert!(rows.iter().all(|r| !r.summary.contains(&w.b)));
    // No token and no secret reaches the audit trail.
    assert!(
        rows.iter()
            .all(|r| !r.summary.contains("AAAA") && !r.summary.contains("eyJ"))
    );

    // A flood of 200 forged tokens from one address: the 1st, 2nd, 4th… are written.
    let before = rows.len();
    for _ in 0..200 {
        let res = call(app, &forged, Method::GET, "/api/v1/me", None).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let _ = denials(app, before + 6).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let after = denials(app, before + 6).await;
    let added = after.len() - before;
    // Counts 3..=202 of one key: 4, 8, 16, 32, 64, 128.
    assert_eq!(added, 6, "{added} events for a flood of 200");
    assert!(after.iter().any(|r| r.summary.contains("\"count\":128")));
}

#[tokio::test]
async fn only_a_hosts_grant_opens_every_hosts_row_on_storage() {
    let w = world().await;
    let store = w.app.server.store();
    // The platform grants an administrator holds in other areas do not open every host
    // (on PostgreSQL, the transaction that sees all workspaces' hosts and sessions).
    let signed_in = sign_in(&w.app, ADMIN_EMAIL, crate::identity::ADMIN_PASSWORD).await;
    let token = signed_in["access_token"].as_str().unwrap();
    let me: Value = w
        .app
        .client
        .get(format!("{}/api/v1/me", w.app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin = Principal::session(
        me["id"].as_str().unwrap().parse().unwrap(),
        uuid::Uuid::nil(),
    );
    for other in [
        Permission::WORKSPACES_CREATE,
        Permission::USERS_READ,
        Permission::AUDIT_READ,
    ] {
        let grant = store.authorize_platform(&admin, other).await.unwrap();
        assert!(matches!(
            store.hosts_admin(&grant).await,
            Err(warden_store::tenancy::Refusal::Forbidden)
        ));
        assert!(matches!(
            store.hosts_admin_read(&grant).await,
            Err(warden_store::tenancy::Refusal::Forbidden)
        ));
    }
    let grant = store
        .authorize_platform(&admin, Permission::HOSTS_READ)
        .await
        .unwrap();
    let mut tx = store.hosts_admin_read(&grant).await.unwrap();
    let all = tx.all_hosts().list().await.unwrap();
    assert!(
        all.iter().any(|h| h.id.to_string() == w.b_host),
        "sees workspace hosts"
    );
}

#[tokio::test]
async fn two_administrators_taking_each_other_out_at_once_leave_one_in_charge() {
    // The last-administrator rule is checked where the change is made, serialised with every
    // other such change: of two admins deactivating (or demoting) each other in parallel,
    // one is refused.
    for round in 0..6 {
        let app = TestApp::spawn().await.unwrap();
        let root = admin_token(&app).await;
        let a = user(&app, &root, "a@example.com", "admin").await;
        let b = user(&app, &root, "b@example.com", "admin").await;
        let me: Value = call(&app, &root, Method::GET, "/api/v1/me", None)
            .await
            .json()
            .await
            .unwrap();
        let res = call(
            &app,
            &a.token,
            Method::PUT,
            &format!("/api/v1/admin/users/{}/role", me["id"].as_str().unwrap()),
            Some(json!({"platform_role": "member"})),
        )
        .await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        let (method, what, body) = if round % 2 == 0 {
            (Method::POST, "deactivate", None)
        } else {
            (
                Method::PUT,
                "role",
                Some(json!({"platform_role": "member"})),
            )
        };
        let (on_b, on_a) = (
            format!("/api/v1/admin/users/{}/{what}", b.id),
            format!("/api/v1/admin/users/{}/{what}", a.id),
        );
        let (x, y) = tokio::join!(
            call(&app, &a.token, method.clone(), &on_b, body.clone()),
            call(&app, &b.token, method, &on_a, body),
        );
        let statuses = [x.status(), y.status()];
        assert!(
            statuses.iter().any(|s| *s != StatusCode::NO_CONTENT),
            "round {round}: both succeeded"
        );
        let mut tx = app.server.store().begin_read().await.unwrap();
        let admins = tx.count_admins().await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(admins, 1, "round {round} ({what}): {statuses:?}");
    }
}

#[tokio::test]
async fn my_workspaces_page_in_id_order_by_cursor_without_gaps_or_repeats() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let owner = user(&app, &admin, "pager@example.com", "member").await;
    let mut made = Vec::new();
    for n in 0..7 {
        made.push(workspace(&app, &owner, &format!("W{n}")).await);
    }
    // Someone else's workspaces never appear in the pages.
    let other = user(&app, &admin, "other@example.com", "member").await;
    workspace(&app, &other, "Not mine").await;
    made.sort();
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = ok_json(
            &app,
            &owner.token,
            Method::GET,
            &format!("/api/v1/workspaces?limit=3{cursor}"),
            None,
        )
        .await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 3, "{page}");
        seen.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, made);
}
