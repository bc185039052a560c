//! SCIM 2.0 provisioning at `/scim/v2`, judged by `scim2-tester` (PyPI) and attacked: tokens
//! (missing, malformed, revoked), filter injection, PATCH of read-only attributes, a
//! deactivated account's open session and personal token, unknown filter attributes, ETags.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden_testkit::TestApp;

use crate::identity::{admin_token, audit_rows, sign_in};

/// Creates a SCIM token as the administrator; its secret.
pub(crate) async fn scim_token(app: &TestApp, admin: &str) -> String {
    let (s, v) = app
        .call(
            admin,
            Method::POST,
            "/api/v1/scim/tokens",
            Some(json!({"name": "Entra ID"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(v["scim_url"].as_str().unwrap().ends_with("/scim/v2"));
    v["secret"].as_str().unwrap().to_owned()
}

pub(crate) async fn scim(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = app
        .client
        .request(method, app.url(&format!("/scim/v2{path}")))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req
            .header("content-type", "application/scim+json")
            .body(b.to_string());
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

pub(crate) fn user(name: &str, email: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name,
        "externalId": format!("ext-{name}"),
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "displayName": "Ada Lovelace",
        "emails": [{"value": email, "type": "work", "primary": true}],
        "active": true,
    })
}

#[tokio::test]
async fn scim2_tester_passes_every_check() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let token = scim_token(&app, &admin).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/scim_tester.py");
    let out = tokio::process::Command::new(warden_testkit::smtp::python())
        .arg(script)
        .arg(app.url("/scim/v2"))
        .arg(&token)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let failed: Vec<&Value> = results
        .iter()
        .filter(|r| r["status"] != "SUCCESS" && r["status"] != "SKIPPED")
        .collect();
    let ran = results.iter().filter(|r| r["status"] == "SUCCESS").count();
    assert!(
        failed.is_empty(),
        "{} of {} checks failed: {failed:#?}",
        failed.len(),
        results.len()
    );
    assert!(ran >= 40, "only {ran} checks ran: {results:#?}");
    // Every change it made is in the audit trail under its token.
    let created = audit_rows(&app, "user.created").await;
    assert!(
        created.iter().any(|r| r
            .actor_id
            .as_deref()
            .is_some_and(|a| a.starts_with("scim:"))),
        "{created:?}"
    );
}

/// The administrator revokes the one directory token there is (`DELETE /api/v1/scim/tokens/{id}`).
async fn revoke_the_token(app: &TestApp, admin: &str) {
    let (_, list) = app
        .call(admin, Method::GET, "/api/v1/scim/tokens", None)
        .await;
    let id = list[0]["id"].as_str().unwrap().to_owned();
    let (s, _) = app
        .call(
            admin,
            Method::DELETE,
            &format!("/api/v1/scim/tokens/{id}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}

/// Nodes trust a token they read from memory for up to a minute; a revocation on one node
/// still stops it on the very next request at every other.
#[tokio::test]
async fn a_revoked_token_is_refused_at_once_by_a_node_that_had_it_in_memory() {
    let a = TestApp::spawn().await.unwrap();
    let admin = admin_token(&a).await;
    let token = scim_token(&a, &admin).await;
    let b = a.another_node().await.unwrap();
    for _ in 0..3 {
        let (s, _, v) = scim(&b, &token, Method::GET, "/Users?count=1", None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    revoke_the_token(&a, &admin).await;
    for node in [&b, &a] {
        let (s, _, _) = scim(node, &token, Method::GET, "/Users?count=1", None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    // A node started afterwards refuses it too (from the database).
    let c = a.another_node().await.unwrap();
    let (s, _, _) = scim(&c, &token, Method::GET, "/Users?count=1", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn tokens_are_checked_and_revocable() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let token = scim_token(&app, &admin).await;
    for bad in ["", "wdn_scim_", "Bearer", &token[..token.len() - 1], &admin] {
        let (s, h, v) = scim(&app, bad, Method::GET, "/Users", None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{bad}: {v}");
        assert_eq!(h["content-type"], "application/scim+json");
        assert!(h.contains_key("www-authenticate"));
        assert_eq!(
            v["schemas"][0],
            "urn:ietf:params:scim:api:messages:2.0:Error"
        );
    }
    let (s, _, _) = scim(&app, &token, Method::GET, "/ServiceProviderConfig", None).await;
    assert_eq!(s, StatusCode::OK);
    // A member cannot create one; the administrator revokes it and it stops at once.
    revoke_the_token(&app, &admin).await;
    let (s, _, _) = scim(&app, &token, Method::GET, "/Users", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(audit_rows(&app, "scim_token.revoked").await.len(), 1);
    // The secret is in no audit row.
    let rows =
        warden_store::audit::newest(app.server.store(), &app.server.state().ctx.audit_key, 1000)
            .await
            .unwrap();
    assert!(!format!("{rows:?}").contains(&token));
}

#[tokio::test]
async fn filters_find_users_and_refuse_injection() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let token = scim_token(&app, &admin).await;
    for (n, e) in [
        ("Ada@Corp.example", "ada@corp.example"),
        ("bob@corp.example", "bob@corp.example"),
        ("carol", "carol@other.example"),
    ] {
        let (s, h, v) = scim(&app, &token, Method::POST, "/Users", Some(user(n, e))).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert!(
            h["location"]
                .to_str()
                .unwrap()
                .ends_with(v["id"].as_str().unwrap())
        );
        assert_eq!(h["etag"], "W/\"1\"");
    }
    let q = |f: &str| {
        format!(
            "/Users?filter={}",
            percent_encoding::utf8_percent_encode(f, percent_encoding::NON_ALPHANUMERIC)
        )
    };
    // userName is compared without case.
    let (s, _, v) = scim(
        &app,
        &token,
        Method::GET,
        &q(r#"userName eq "ada@corp.EXAMPLE""#),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["totalResults"], 1);
    assert_eq!(v["Resources"][0]["userName"], "Ada@Corp.example");
    let (_, _, v) = scim(
        &app,
        &token,
        Method::GET,
        &q(r#"emails.value ew "@corp.example" and not (userName sw "bob")"#),
        None,
    )
    .await;
    assert_eq!(v["totalResults"], 1, "{v}");
    let (_, _, v) = scim(
        &app,
        &token,
        Method::GET,
        &q(r#"userName eq "carol" or externalId eq "ext-bob@corp.example""#),
        None,
    )
    .await;
    assert_eq!(v["totalResults"], 2, "{v}");
    // Injection: the quoted text is one value, matching nobody; an unquoted tautology is not a filter.
    let (s, _, v) = scim(
        &app,
        &token,
        Method::GET,
        &q(r#"userName eq "x\" or \"1\" eq \"1""#),
        None,
    )
    .await;
    assert_eq!(
        (s, v["totalResults"].clone()),
        (StatusCode::OK, json!(0)),
        "{v}"
    );
    for bad in [
        r#"userName eq "x" or "1" eq "1""#,
        r#"password eq "x""#,
        "userName eq x'; DROP TABLE users; --",
        r#"active eq "yes""#,
    ] {
        let (s, _, v) = scim(&app, &token, Method::GET, &q(bad), None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert_eq!(v["scimType"], "invalidFilter", "{bad}");
    }
    // Pages: startIndex is 1-based; count is capped.
    let (_, _, v) = scim(
        &app,
        &token,
        Method::GET,
        "/Users?startIndex=2&count=1",
        None,
    )
    .await;
    assert_eq!(
        (
            v["totalResults"].clone(),
            v["itemsPerPage"].clone(),
            v["startIndex"].clone()
        ),
        (json!(3), json!(1), json!(2))
    );
    assert_eq!(v["Resources"][0]["userName"], "bob@corp.example");
    // A second user with a taken userName or email is a conflict.
    let (s, _, v) = scim(
        &app,
        &token,
        Method::POST,
        "/Users",
        Some(user("ADA@corp.example", "new@corp.example")),
    )
    .await;
    assert_eq!(
        (s, v["scimType"].clone()),
        (StatusCode::CONFLICT, json!("uniqueness"))
    );
    let (s, _, _) = scim(
        &app,
        &token,
        Method::POST,
        "/Users",
        Some(user("other", "bob@corp.example")),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
}

#[tokio::test]
async fn patch_cannot_touch_read_only_attributes_and_honours_etags() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let token = scim_token(&app, &admin).await;
    let (_, _, u) = scim(
        &app,
        &token,
        Method::POST,
        "/Users",
        Some(user("dan", "dan@corp.example")),
    )
    .await;
    let id = u["id"].as_str().unwrap().to_owned();
    let patch = |ops: Value| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
    for ops in [
        json!([{"op": "replace", "path": "id", "value": "00000000-0000-0000-0000-000000000000"}]),
        json!([{"op": "replace", "path": "meta.created", "value": "2000-01-01T00:00:00Z"}]),
        json!([{"op": "add", "value": {"id": "x", "userName": "dan2"}}]),
        json!([{"op": "replace", "value": {"meta": {"version": "W/\"9\""}}}]),
    ] {
        let (s, _, v) = scim(
            &app,
            &token,
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(patch(ops.clone())),
        )
        .await;
        assert_eq!(
            (s, v["scimType"].clone()),
            (StatusCode::BAD_REQUEST, json!("mutability")),
            "{ops}: {v}"
        );
    }
    let (_, _, v) = scim(&app, &token, Method::GET, &format!("/Users/{id}"), None).await;
    assert_eq!(
        (
            v["id"].as_str().unwrap(),
            v["userName"].clone(),
            v["meta"]["version"].clone()
        ),
        (id.as_str(), json!("dan"), json!("W/\"1\""))
    );
    // If-Match with a stale version: 412, nothing changed.
    let res = app
        .client
        .patch(app.url(&format!("/scim/v2/Users/{id}")))
        .bearer_auth(&token)
        .header("if-match", "W/\"7\"")
        .header("content-type", "application/scim+json")
        .body(patch(json!([{"op": "replace", "path": "displayName", "value": "X"}])).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
    // If-None-Match with the current version: 304.
    let res = app
        .client
        .get(app.url(&format!("/scim/v2/Users/{id}")))
        .bearer_auth(&token)
        .header("if-none-match", "W/\"1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn a_deactivated_users_session_and_token_stop_on_the_next_request() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let token = scim_token(&app, &admin).await;
    // An existing account (with a password) is adopted by the directory by its email.
    let email = "erin@corp.example";
    let (s, _) = app
        .call(
            &admin,
            Method::POST,
            "/api/v1/admin/users",
            Some(json!({"email": email, "password": "quiet harbor 4417 finch"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let session = sign_in(&app, email, "quiet harbor 4417 finch").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, w) = app
        .call(
            &session,
            Method::POST,
            "/api/v1/workspaces",
            Some(json!({"name": "Erin's"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{w}");
    let (s, pat) = app
        .call(&session, Method::POST, "/api/v1/me/tokens", Some(json!({"name": "script", "permissions": ["workspaces.read"], "expires_in_days": 30})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{pat}");
    let pat = pat["token"].as_str().unwrap().to_owned();
    let (s, _) = app.call(&pat, Method::GET, "/api/v1/me", None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, u) = scim(
        &app,
        &token,
        Method::POST,
        "/Users",
        Some(user("erin", email)),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{u}");
    assert_eq!(audit_rows(&app, "user.scim_adopted").await.len(), 1);
    let id = u["id"].as_str().unwrap();
    // Entra ID deactivates with a string boolean.
    let (s, _, v) = scim(
        &app,
        &token,
        Method::PATCH,
        &format!("/Users/{id}"),
        Some(
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "Replace", "path": "active", "value": "False"}]}),
        ),
    )
    .await;
    assert_eq!(
        (s, v["active"].clone()),
        (StatusCode::OK, json!(false)),
        "{v}"
    );
    for t in [&session, &pat] {
        let (s, _) = app.call(t, Method::GET, "/api/v1/me", None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    // Promoted by an administrator, the account is no longer the directory's to change.
    let (s, _) = app
        .call(
            &admin,
            Method::PUT,
            &format!("/api/v1/admin/users/{id}/role"),
            Some(json!({"platform_role": "auditor"})),
        )
        .await;
    assert!(s.is_success(), "{s}");
    let (s, _, v) = scim(&app, &token, Method::PATCH, &format!("/Users/{id}"), Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "attacker@evil.example"}]}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, _, v) = scim(&app, &token, Method::PUT, &format!("/Users/{id}"), Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "attacker@evil.example", "emails": [{"value": "attacker@evil.example", "type": "work", "primary": true}]}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, _, v) = scim(&app, &token, Method::DELETE, &format!("/Users/{id}"), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    // The OpenAPI document declares that answer on each of the three.
    let doc = app.openapi().await.unwrap();
    for method in ["put", "patch", "delete"] {
        assert!(
            doc["paths"]["/scim/v2/Users/{id}"][method]["responses"]
                .get("403")
                .is_some(),
            "{method}"
        );
    }
    let (s, _) = app
        .call(
            &admin,
            Method::PUT,
            &format!("/api/v1/admin/users/{id}/role"),
            Some(json!({"platform_role": "member"})),
        )
        .await;
    assert!(s.is_success(), "{s}");
    let deactivated = audit_rows(&app, "user.deactivated").await;
    assert_eq!(deactivated.len(), 1);
    assert!(
        deactivated[0]
            .actor_id
            .as_deref()
            .unwrap()
            .starts_with("scim:")
    );
    // Deleting keeps the account for the trail; the directory no longer sees it.
    let (s, _, _) = scim(&app, &token, Method::DELETE, &format!("/Users/{id}"), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, _) = scim(&app, &token, Method::GET, &format!("/Users/{id}"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn warden_scim_creates_lists_and_revokes_tokens() {
    let app = TestApp::spawn().await.unwrap();
    admin_token(&app).await;
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
    let login = [
        "login",
        "--url",
        &app.base,
        "--email",
        crate::identity::ADMIN_EMAIL,
    ];
    let (ok, out) = run(&login, "violet tractor 93 lagoon\n").await.unwrap();
    assert!(ok, "{out}");
    let (ok, out) = run(&["scim", "create-token", "--name", "Okta"], "")
        .await
        .unwrap();
    assert!(ok, "{out}");
    assert!(out.contains("/scim/v2"), "{out}");
    let secret = out
        .split_whitespace()
        .find(|w| w.starts_with("wdn_scim_"))
        .unwrap()
        .to_owned();
    let (s, _, _) = scim(&app, &secret, Method::GET, "/Users", None).await;
    assert_eq!(s, StatusCode::OK);
    let (ok, out) = run(&["scim", "tokens"], "").await.unwrap();
    assert!(
        ok && out.contains("Okta") && !out.contains("wdn_scim_"),
        "{out}"
    );
    let id = out
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let (ok, out) = run(&["scim", "revoke-token", &id], "").await.unwrap();
    assert!(ok, "{out}");
    let (s, _, _) = scim(&app, &secret, Method::GET, "/Users", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn groups_keep_their_members_as_a_directory_patches_them() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let token = scim_token(&app, &admin).await;
    let mut ids = Vec::new();
    for n in ["fay", "gus"] {
        let (_, _, u) = scim(
            &app,
            &token,
            Method::POST,
            "/Users",
            Some(user(n, &format!("{n}@corp.example"))),
        )
        .await;
        ids.push(u["id"].as_str().unwrap().to_owned());
    }
    let (s, _, g) = scim(
        &app,
        &token,
        Method::POST,
        "/Groups",
        Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Engineering"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    let gid = g["id"].as_str().unwrap().to_owned();
    let patch = |ops: Value| {
        Some(
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}),
        )
    };
    // Entra ID adds members, then removes one by a filtered path.
    let (s, _, v) = scim(
        &app,
        &token,
        Method::PATCH,
        &format!("/Groups/{gid}"),
        patch(json!([{"op": "Add", "path": "members", "value": [{"value": ids[0]}, {"value": ids[1]}]}])),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["members"].as_array().unwrap().len(), 2);
    let q = format!(
        "/Groups?filter=members%5Bvalue%20eq%20%22{}%22%5D&excludedAttributes=members",
        ids[1]
    );
    let (_, _, v) = scim(&app, &token, Method::GET, &q, None).await;
    assert_eq!(v["totalResults"], 1, "{v}");
    assert!(v["Resources"][0].get("members").is_none(), "{v}");
    let (s, _, v) = scim(
        &app,
        &token,
        Method::PATCH,
        &format!("/Groups/{gid}"),
        patch(json!([{"op": "Remove", "path": format!("members[value eq \"{}\"]", ids[1])}])),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["members"][0]["value"], ids[0].as_str());
    assert_eq!(v["members"].as_array().unwrap().len(), 1);
    let (_, _, v) = scim(&app, &token, Method::GET, &q, None).await;
    assert_eq!(v["totalResults"], 0, "{v}");
    // A member must be a provisioned User: an account the directory does not manage, or no id.
    let (_, me) = app.call(&admin, Method::GET, "/api/v1/me", None).await;
    for bad in [
        me["id"].as_str().unwrap(),
        "00000000-0000-0000-0000-000000000000",
    ] {
        let (s, _, v) = scim(
            &app,
            &token,
            Method::PATCH,
            &format!("/Groups/{gid}"),
            patch(json!([{"op": "add", "path": "members", "value": [{"value": bad}]}])),
        )
        .await;
        assert_eq!(
            (s, v["scimType"].clone()),
            (StatusCode::BAD_REQUEST, json!("invalidValue")),
            "{v}"
        );
    }
    let updated = audit_rows(&app, "scim_group.updated").await;
    assert_eq!(updated.len(), 2);
    let (s, _, _) = scim(
        &app,
        &token,
        Method::DELETE,
        &format!("/Groups/{gid}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, _) = scim(&app, &token, Method::GET, &format!("/Groups/{gid}"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // The members' accounts stay.
    let (s, _, _) = scim(
        &app,
        &token,
        Method::GET,
        &format!("/Users/{}", ids[1]),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
}
