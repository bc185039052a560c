//! Hosts: registration with a key shown once and stored only as PBKDF2, approval, allow-lists,
//! rotation with a grace period, deletion that takes every key with it.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden_crypto::host_key;
use warden_testkit::TestApp;

use crate::identity::{admin_token, audit_rows, database_dump, sign_in};

async fn call(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The stored (key_id, salt, hash) of every key a host row holds, read as the owner.
async fn stored_keys(app: &TestApp, id: &str) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let id: uuid::Uuid = id.parse().unwrap();
    let sql = "SELECT key_id, key_salt, key_hash, previous_key_id, previous_key_salt, \
               previous_key_hash FROM hosts WHERE id = $1";
    type Row = (
        String,
        Vec<u8>,
        Vec<u8>,
        Option<String>,
        Option<Vec<u8>>,
        Option<Vec<u8>>,
    );
    let row: Option<Row> = match app.db.backend {
        warden_store::Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&app.db.owner_url).await.unwrap();
            sqlx::query_as(sql)
                .bind(id)
                .fetch_optional(&pool)
                .await
                .unwrap()
        }
        warden_store::Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&app.db.owner_url).await.unwrap();
            sqlx::query_as(sql)
                .bind(id)
                .fetch_optional(&pool)
                .await
                .unwrap()
        }
    };
    let Some((k, s, h, pk, ps, ph)) = row else {
        return Vec::new();
    };
    let mut keys = vec![(k, s, h)];
    if let (Some(pk), Some(ps), Some(ph)) = (pk, ps, ph) {
        keys.push((pk, ps, ph));
    }
    keys
}

fn verifies(key: &str, stored: &(String, Vec<u8>, Vec<u8>)) -> bool {
    let p = host_key::parse(key).unwrap();
    p.key_id == stored.0 && host_key::verify(&p, &stored.1, &stored.2)
}

#[tokio::test]
async fn a_registered_host_gets_a_key_once_stored_only_as_pbkdf2_and_waits_for_approval() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let (status, created) = call(&app, &admin, Method::POST, "/api/v1/hosts",
        Some(json!({"name": "build-01", "kind": "session", "allow_list": ["10.0.0.0/8", "2001:db8::1"]}))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["api_key"].as_str().unwrap().to_owned();
    let id = created["host"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created["host"]["status"], "pending");
    assert_eq!(
        created["host"]["allow_list"],
        json!(["10.0.0.0/8", "2001:db8::1/128"])
    );
    let parsed = host_key::parse(&key).unwrap();
    assert_eq!(created["host"]["key_id"], parsed.key_id);

    // Stored as PBKDF2 (16-byte salt, 32-byte hash) that the key verifies against; the
    // secret appears nowhere: not in the database, not in the audit trail, not in listings.
    let keys = stored_keys(&app, &id).await;
    assert_eq!(keys.len(), 1);
    assert_eq!((keys[0].1.len(), keys[0].2.len()), (16, 32));
    assert!(verifies(&key, &keys[0]));
    let secret = &key[4 + 32 + 1..];
    assert!(!database_dump(&app).await.contains(secret));
    let registered = audit_rows(&app, "host.registered").await;
    assert_eq!(registered.len(), 1);
    assert!(registered[0].summary.contains(parsed.key_id));
    assert!(!registered[0].summary.contains(secret));
    let (_, list) = call(&app, &admin, Method::GET, "/api/v1/hosts", None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains(secret));

    // Approval and rejection, audited.
    let (status, host) = call(
        &app,
        &admin,
        Method::POST,
        &format!("/api/v1/hosts/{id}/approve"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(host["status"], "approved");
    let (_, host) = call(
        &app,
        &admin,
        Method::POST,
        &format!("/api/v1/hosts/{id}/reject"),
        None,
    )
    .await;
    assert_eq!(host["status"], "rejected");
    assert_eq!(audit_rows(&app, "host.approved").await.len(), 1);
    assert_eq!(audit_rows(&app, "host.rejected").await.len(), 1);
}

#[tokio::test]
async fn rotation_keeps_the_old_key_for_its_grace_period_and_deletion_takes_every_key() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let (_, created) = call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/hosts",
        Some(json!({"name": "deploy-01", "kind": "deploy"})),
    )
    .await;
    let first = created["api_key"].as_str().unwrap().to_owned();
    let id = created["host"]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/hosts/{id}/rotate-key");

    let (status, problem) = call(
        &app,
        &admin,
        Method::POST,
        &path,
        Some(json!({"grace_minutes": 20000})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "grace_minutes");
    let (status, rotated) = call(
        &app,
        &admin,
        Method::POST,
        &path,
        Some(json!({"grace_minutes": 30})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let second = rotated["api_key"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    assert_eq!(
        rotated["host"]["previous_key_id"],
        host_key::parse(&first).unwrap().key_id
    );
    assert!(rotated["host"]["previous_key_until"].is_string());
    let keys = stored_keys(&app, &id).await;
    assert!(verifies(&second, &keys[0]));
    assert!(verifies(&first, &keys[1]));
    assert!(!verifies(&second, &keys[1]));

    // A second rotation ends the first key at once.
    let (_, again) = call(
        &app,
        &admin,
        Method::POST,
        &path,
        Some(json!({"grace_minutes": 0})),
    )
    .await;
    let third = again["api_key"].as_str().unwrap().to_owned();
    let keys = stored_keys(&app, &id).await;
    assert!(verifies(&third, &keys[0]));
    assert!(verifies(&second, &keys[1]));
    assert!(
        keys.iter()
            .all(|k| k.0 != host_key::parse(&first).unwrap().key_id)
    );

    let (status, _) = call(
        &app,
        &admin,
        Method::DELETE,
        &format!("/api/v1/hosts/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        stored_keys(&app, &id).await.is_empty(),
        "a deleted host keeps no key"
    );
    let (status, _) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/hosts/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(audit_rows(&app, "host.key_rotated").await.len(), 2);
    assert_eq!(audit_rows(&app, "host.deleted").await.len(), 1);
}

#[tokio::test]
async fn only_host_administrators_manage_hosts_and_bad_input_names_its_field() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    for (email, role) in [
        ("audra@example.com", "auditor"),
        ("mo@example.com", "member"),
    ] {
        let (s, _) = call(&app, &admin, Method::POST, "/api/v1/admin/users",
            Some(json!({"email": email, "password": "quiet harbor 4417 finch", "platform_role": role}))).await;
        assert_eq!(s, StatusCode::CREATED);
        let token = sign_in(&app, email, "quiet harbor 4417 finch").await["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let (s, _) = call(
            &app,
            &token,
            Method::POST,
            "/api/v1/hosts",
            Some(json!({"name": "x", "kind": "session"})),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{role}");
        let (s, _) = call(&app, &token, Method::GET, "/api/v1/hosts", None).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{role}");
    }
    for (body, field) in [
        (json!({"name": "x", "kind": "build"}), "kind"),
        (json!({"name": " ", "kind": "session"}), "name"),
        (
            json!({"name": "x", "kind": "session", "allow_list": ["10.0.0.1/8"]}),
            "allow_list",
        ),
        (
            json!({"name": "x", "kind": "session", "allow_list": ["example.com"]}),
            "allow_list",
        ),
    ] {
        let (s, problem) = call(
            &app,
            &admin,
            Method::POST,
            "/api/v1/hosts",
            Some(body.clone()),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(problem["field"], field, "{body}");
    }
    let (_, created) = call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/hosts",
        Some(json!({"name": "x", "kind": "session"})),
    )
    .await;
    let id = created["host"]["id"].as_str().unwrap();
    let (s, host) = call(
        &app,
        &admin,
        Method::PUT,
        &format!("/api/v1/hosts/{id}/allow-list"),
        Some(json!({"allow_list": ["192.0.2.0/24"]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(host["allow_list"], json!(["192.0.2.0/24"]));
    for missing in ["not-an-id", "0190f5c2-0000-7000-8000-000000000000"] {
        let (s, _) = call(
            &app,
            &admin,
            Method::POST,
            &format!("/api/v1/hosts/{missing}/approve"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }
}
