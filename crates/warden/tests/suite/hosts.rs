//! Hosts: registration with a key shown once and stored only as PBKDF2, approval, allow-lists,
//! rotation with a grace period, deletion that takes every key with it.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden_crypto::host_key;
use warden_testkit::{AppOptions, TestApp};

use crate::identity::{admin_token, audit_rows, database_dump, sign_in};

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
    let (status, created) = app.call(&admin, Method::POST, "/api/v1/hosts",
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
    let (_, list) = app.call(&admin, Method::GET, "/api/v1/hosts", None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains(secret));

    // Approval and rejection, audited.
    let (status, host) = app
        .call(
            &admin,
            Method::POST,
            &format!("/api/v1/hosts/{id}/approve"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(host["status"], "approved");
    let (_, host) = app
        .call(
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
    let (_, created) = app
        .call(
            &admin,
            Method::POST,
            "/api/v1/hosts",
            Some(json!({"name": "deploy-01", "kind": "deploy"})),
        )
        .await;
    let first = created["api_key"].as_str().unwrap().to_owned();
    let id = created["host"]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/hosts/{id}/rotate-key");

    let (status, problem) = app
        .call(
            &admin,
            Method::POST,
            &path,
            Some(json!({"grace_minutes": 20000})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "grace_minutes");
    let (status, rotated) = app
        .call(
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
    let (_, again) = app
        .call(
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

    let (status, _) = app
        .call(&admin, Method::DELETE, &format!("/api/v1/hosts/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        stored_keys(&app, &id).await.is_empty(),
        "a deleted host keeps no key"
    );
    let (status, _) = app
        .call(&admin, Method::GET, &format!("/api/v1/hosts/{id}"), None)
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
        let (s, _) = app.call(&admin, Method::POST, "/api/v1/admin/users",
            Some(json!({"email": email, "password": "quiet harbor 4417 finch", "platform_role": role}))).await;
        assert_eq!(s, StatusCode::CREATED);
        let token = sign_in(&app, email, "quiet harbor 4417 finch").await["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let (s, _) = app
            .call(
                &token,
                Method::POST,
                "/api/v1/hosts",
                Some(json!({"name": "x", "kind": "session"})),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{role}");
        let (s, _) = app.call(&token, Method::GET, "/api/v1/hosts", None).await;
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
        let (s, problem) = app
            .call(&admin, Method::POST, "/api/v1/hosts", Some(body.clone()))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(problem["field"], field, "{body}");
    }
    let (_, created) = app
        .call(
            &admin,
            Method::POST,
            "/api/v1/hosts",
            Some(json!({"name": "x", "kind": "session"})),
        )
        .await;
    let id = created["host"]["id"].as_str().unwrap();
    let (s, host) = app
        .call(
            &admin,
            Method::PUT,
            &format!("/api/v1/hosts/{id}/allow-list"),
            Some(json!({"allow_list": ["192.0.2.0/24"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(host["allow_list"], json!(["192.0.2.0/24"]));
    // An IPv4-mapped spelling would never match a peer (peers are compared as IPv4): it is
    // stored as the IPv4 network it means.
    let (s, host) = app
        .call(
            &admin,
            Method::PUT,
            &format!("/api/v1/hosts/{id}/allow-list"),
            Some(json!({"allow_list": ["::ffff:192.0.2.0/120", "::ffff:198.51.100.9"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        host["allow_list"],
        json!(["192.0.2.0/24", "198.51.100.9/32"])
    );
    for missing in ["not-an-id", "0190f5c2-0000-7000-8000-000000000000"] {
        let (s, _) = app
            .call(
                &admin,
                Method::POST,
                &format!("/api/v1/hosts/{missing}/approve"),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }
}

pub(crate) async fn register(app: &TestApp, admin: &str, allow: &[&str]) -> (String, String) {
    let (status, created) = app
        .call(
            admin,
            Method::POST,
            "/api/v1/hosts",
            Some(json!({"name": "build-01", "kind": "session", "allow_list": allow})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    (
        created["host"]["id"].as_str().unwrap().to_owned(),
        created["api_key"].as_str().unwrap().to_owned(),
    )
}

const HELLO: &str = "/api/v1/agent/hello";

fn hello_body() -> Value {
    json!({"hostname": "build-01.internal", "os": "Debian 12", "agent_version": "0.1.0"})
}

async fn hello_from(
    app: &TestApp,
    client: &reqwest::Client,
    key: &str,
    xff: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = client
        .post(app.url(HELLO))
        .bearer_auth(key)
        .json(&hello_body());
    if let Some(x) = xff {
        req = req.header("x-forwarded-for", x);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn hello(app: &TestApp, key: &str) -> (StatusCode, Value) {
    hello_from(app, &app.client, key, None).await
}

fn without_request_id(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("request_id");
    }
    v
}

#[tokio::test]
async fn a_host_key_admits_only_its_host_from_allowed_addresses_and_pending_hosts_get_no_work() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let (id, key) = register(&app, &admin, &["127.0.0.1/32"]).await;

    let (status, answer) = hello(&app, &key).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["host_id"], id.as_str());
    assert_eq!(answer["status"], "pending");
    assert_eq!(answer["may_work"], false);
    let (_, host) = app
        .call(&admin, Method::GET, &format!("/api/v1/hosts/{id}"), None)
        .await;
    assert_eq!(host["hostname"], "build-01.internal");
    assert_eq!(host["os"], "Debian 12");
    assert_eq!(host["agent_version"], "0.1.0");
    assert_eq!(host["last_ip"], "127.0.0.1");
    app.call(
        &admin,
        Method::POST,
        &format!("/api/v1/hosts/{id}/approve"),
        None,
    )
    .await;
    let (_, answer) = hello(&app, &key).await;
    assert_eq!(answer["may_work"], true);
    app.call(
        &admin,
        Method::POST,
        &format!("/api/v1/hosts/{id}/reject"),
        None,
    )
    .await;
    let (_, answer) = hello(&app, &key).await;
    assert_eq!(
        (answer["status"].as_str(), answer["may_work"].as_bool()),
        (Some("rejected"), Some(false))
    );
    assert_eq!(audit_rows(&app, "host.connected").await.len(), 3);

    // Every failure gets one and the same answer.
    let other = host_key::generate().unwrap();
    let wrong_secret = format!("{}{}", &key[..4 + 32 + 1], &other.key[4 + 32 + 1..]);
    let user_token = admin.clone();
    let (_, expected) = hello(&app, &wrong_secret).await;
    let expected = without_request_id(expected);
    assert_eq!(expected["status"], 401);
    for bad in [
        wrong_secret.as_str(),
        other.key.as_str(),
        "whk_nonsense",
        "",
        user_token.as_str(),
    ] {
        let (status, body) = hello(&app, bad).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bad}");
        assert_eq!(without_request_id(body), expected);
    }
    // The right key from an address outside the host's allow-list.
    let (status, body) =
        hello_from(&app, &crate::identity::client_from("127.0.0.2"), &key, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(without_request_id(body), expected);
    // Failures are audited with what was wrong, never the secret.
    let failed = audit_rows(&app, "host.auth_failed").await;
    assert!(!failed.is_empty());
    let all: String = failed.iter().map(|r| r.summary.clone()).collect();
    assert!(
        all.contains("wrong secret") && all.contains("address not allowed"),
        "{all}"
    );
    assert!(!all.contains(&key[4 + 32 + 1..]));
    // A deleted host's key is refused.
    app.call(&admin, Method::DELETE, &format!("/api/v1/hosts/{id}"), None)
        .await;
    let (status, _) =
        hello_from(&app, &crate::identity::client_from("127.0.0.3"), &key, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn forwarded_for_counts_only_behind_a_configured_trusted_proxy() {
    // No trusted proxy: a spoofed X-Forwarded-For changes nothing.
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let (_, key) = register(&app, &admin, &["10.0.0.0/8"]).await;
    let (status, _) = hello_from(&app, &app.client, &key, Some("10.1.1.1")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Behind a trusted proxy on loopback, the forwarded address is the client's.
    let app = TestApp::spawn_with(AppOptions {
        env: vec![(
            "WARDEN_HOSTS_TRUSTED_PROXIES".to_owned(),
            "127.0.0.0/8".to_owned(),
        )],
        ..AppOptions::default()
    })
    .await
    .unwrap();
    let admin = admin_token(&app).await;
    let (id, key) = register(&app, &admin, &["10.0.0.0/8"]).await;
    let (status, _) = hello_from(&app, &app.client, &key, Some("10.1.1.1")).await;
    assert_eq!(status, StatusCode::OK);
    let (_, host) = app
        .call(&admin, Method::GET, &format!("/api/v1/hosts/{id}"), None)
        .await;
    assert_eq!(host["last_ip"], "10.1.1.1");
    let (status, _) = hello_from(&app, &app.client, &key, Some("192.0.2.1")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The global allow-list applies on top of each host's.
    let app = TestApp::spawn_with(AppOptions {
        env: vec![(
            "WARDEN_HOSTS_ALLOW_LIST".to_owned(),
            "192.0.2.0/24".to_owned(),
        )],
        ..AppOptions::default()
    })
    .await
    .unwrap();
    let admin = admin_token(&app).await;
    let (_, key) = register(&app, &admin, &[]).await;
    let (status, _) = hello(&app, &key).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_rotated_key_works_for_its_grace_period_then_is_refused() {
    use std::sync::Arc;
    use warden_domain::clock::{Clock, ManualClock, SystemClock};
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let app = TestApp::spawn_with(AppOptions {
        clock: clock.clone(),
        ..AppOptions::default()
    })
    .await
    .unwrap();
    let admin = admin_token(&app).await;
    let (id, old) = register(&app, &admin, &[]).await;
    let (_, rotated) = app
        .call(
            &admin,
            Method::POST,
            &format!("/api/v1/hosts/{id}/rotate-key"),
            Some(json!({"grace_minutes": 30})),
        )
        .await;
    let new = rotated["api_key"].as_str().unwrap().to_owned();
    assert_eq!(hello(&app, &old).await.0, StatusCode::OK);
    assert_eq!(hello(&app, &new).await.0, StatusCode::OK);
    clock.advance(time::Duration::minutes(29));
    assert_eq!(hello(&app, &old).await.0, StatusCode::OK);
    clock.advance(time::Duration::minutes(2));
    assert_eq!(hello(&app, &old).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(hello(&app, &new).await.0, StatusCode::OK);
}

#[tokio::test]
async fn repeated_failures_are_throttled_with_retry_after_and_audited_sparsely() {
    // A stopped clock: the throttle's windows cannot lapse between requests on a slow machine.
    use std::sync::Arc;
    use warden_domain::clock::{Clock, ManualClock, SystemClock};
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let app = TestApp::spawn_with(AppOptions {
        clock,
        ..AppOptions::default()
    })
    .await
    .unwrap();
    let admin = admin_token(&app).await;
    let (_, key) = register(&app, &admin, &[]).await;
    let wrong = format!(
        "{}{}",
        &key[..4 + 32 + 1],
        &host_key::generate().unwrap().key[4 + 32 + 1..]
    );
    let mut statuses = Vec::new();
    for _ in 0..14 {
        statuses.push(hello(&app, &wrong).await.0);
    }
    assert!(
        statuses[..10]
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    assert_eq!(statuses[13], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    // While closed, even the right key from this address waits.
    let res = app
        .client
        .post(app.url(HELLO))
        .bearer_auth(&key)
        .json(&hello_body())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    // Another address is not held back by this one.
    let (status, _) =
        hello_from(&app, &crate::identity::client_from("127.0.0.9"), &key, None).await;
    assert_eq!(status, StatusCode::OK);
    // 11 counted failures (the throttled ones cost nothing), audited as the 1st, 2nd, 4th, 8th.
    let failed = audit_rows(&app, "host.auth_failed").await;
    assert_eq!(
        failed.len(),
        4,
        "{:?}",
        failed.iter().map(|r| &r.summary).collect::<Vec<_>>()
    );
}

/// 60 wrong secrets for one known key id sent at once get no more PBKDF2 checks than 60 sent
/// one after another (the attempt is reserved first, one check per key id at a time).
#[tokio::test]
async fn parallel_wrong_secrets_for_one_key_get_no_more_checks_than_serial_ones() {
    use std::sync::Arc;
    use warden_domain::clock::{Clock, ManualClock, SystemClock};
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let app = TestApp::spawn_with(AppOptions {
        clock,
        ..AppOptions::default()
    })
    .await
    .unwrap();
    let admin = admin_token(&app).await;
    let (_, key) = register(&app, &admin, &[]).await;
    let wrong = format!(
        "{}{}",
        &key[..4 + 32 + 1],
        &host_key::generate().unwrap().key[4 + 32 + 1..]
    );
    let burst = (0..60).map(|_| {
        let (app, wrong) = (&app, &wrong);
        async move { hello(app, wrong).await.0 }
    });
    let statuses = futures_util::future::join_all(burst).await;
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED || *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    // One after another, ten failures are free and the eleventh closes the address.
    assert!(
        (1..=11).contains(&checked),
        "{checked} checks: {statuses:?}"
    );
    let failed = audit_rows(&app, "host.auth_failed").await;
    let most = failed
        .iter()
        .filter_map(|r| {
            serde_json::from_str::<Value>(&r.summary).ok()?["failures_from_address"].as_u64()
        })
        .max()
        .unwrap();
    assert!(most <= 11, "{most} failures counted");
    // The right key from another address still works.
    let (status, _) =
        hello_from(&app, &crate::identity::client_from("127.0.0.9"), &key, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_ticket_reconnects_without_the_key_until_the_key_is_retired_or_the_host_deleted() {
    use std::sync::Arc;
    use warden_domain::clock::{Clock, ManualClock, SystemClock};
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let app = TestApp::spawn_with(AppOptions {
        clock: clock.clone(),
        ..AppOptions::default()
    })
    .await
    .unwrap();
    let admin = admin_token(&app).await;
    let (id, key) = register(&app, &admin, &["127.0.0.1/32"]).await;
    let (_, answer) = hello(&app, &key).await;
    let ticket = answer["ticket"].as_str().unwrap().to_owned();
    assert!(ticket.starts_with("wht_"));
    // The ticket stands in for the key, and is renewed at each hello.
    let (status, again) = hello(&app, &ticket).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["host_id"], id.as_str());
    // Still subject to the allow-list and to approval.
    let (status, _) = hello_from(
        &app,
        &crate::identity::client_from("127.0.0.2"),
        &ticket,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.call(
        &admin,
        Method::POST,
        &format!("/api/v1/hosts/{id}/reject"),
        None,
    )
    .await;
    let (_, rejected) = hello(&app, &ticket).await;
    assert_eq!(rejected["may_work"], false);
    // Tampered: refused.
    let mut forged = ticket.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(hello(&app, &forged).await.0, StatusCode::UNAUTHORIZED);
    // Expired after 15 minutes.
    let fresh = again["ticket"].as_str().unwrap().to_owned();
    clock.advance(time::Duration::minutes(16));
    assert_eq!(hello(&app, &fresh).await.0, StatusCode::UNAUTHORIZED);
    // (The administrator's access token has expired too.)
    let admin = sign_in(
        &app,
        crate::identity::ADMIN_EMAIL,
        crate::identity::ADMIN_PASSWORD,
    )
    .await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // A rotation past its grace retires the key the ticket proved.
    let (_, answer) = hello(&app, &key).await;
    let ticket = answer["ticket"].as_str().unwrap().to_owned();
    app.call(
        &admin,
        Method::POST,
        &format!("/api/v1/hosts/{id}/rotate-key"),
        Some(json!({"grace_minutes": 0})),
    )
    .await;
    assert_eq!(hello(&app, &ticket).await.0, StatusCode::UNAUTHORIZED);
    // A deleted host's ticket is refused.
    let (_, rotated) = app
        .call(
            &admin,
            Method::POST,
            &format!("/api/v1/hosts/{id}/rotate-key"),
            Some(json!({"grace_minutes": 0})),
        )
        .await;
    let (_, answer) = hello(&app, rotated["api_key"].as_str().unwrap()).await;
    let ticket = answer["ticket"].as_str().unwrap().to_owned();
    assert_eq!(hello(&app, &ticket).await.0, StatusCode::OK);
    app.call(&admin, Method::DELETE, &format!("/api/v1/hosts/{id}"), None)
        .await;
    assert_eq!(hello(&app, &ticket).await.0, StatusCode::UNAUTHORIZED);
}

async fn member(app: &TestApp, admin: &str, email: &str) -> (String, String) {
    let (s, created) = app.call(admin,
        Method::POST,
        "/api/v1/admin/users",
        Some(json!({"email": email, "password": "quiet harbor 4417 finch", "platform_role": "member"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let token = sign_in(app, email, "quiet harbor 4417 finch").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    (created["id"].as_str().unwrap().to_owned(), token)
}

#[tokio::test]
async fn workspace_maintainers_register_and_manage_their_own_hosts_and_only_admins_approve() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let (_, owner) = member(&app, &admin, "olga@example.com").await;
    let (mark_id, mark) = member(&app, &admin, "mark@example.com").await;
    let (mia_id, mia) = member(&app, &admin, "mia@example.com").await;
    let (s, ws) = app
        .call(
            &owner,
            Method::POST,
            "/api/v1/workspaces",
            Some(json!({"name": "Alpha"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{ws}");
    let ws = ws["id"].as_str().unwrap().to_owned();
    for (id, role) in [(&mark_id, "maintainer"), (&mia_id, "member")] {
        let (s, body) = app
            .call(
                &owner,
                Method::POST,
                &format!("/api/v1/workspaces/{ws}/members"),
                Some(json!({"user_id": id, "role": role})),
            )
            .await;
        assert!(s.is_success(), "{s} {body}");
    }
    let (platform_host, _) = register(&app, &admin, &[]).await;
    let hosts = format!("/api/v1/workspaces/{ws}/hosts");
    let body = json!({"name": "alpha-runner", "kind": "session"});

    // A member may not register one; a maintainer may.
    let (s, _) = app
        .call(&mia, Method::POST, &hosts, Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, created) = app.call(&mark, Method::POST, &hosts, Some(body)).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["host"]["id"].as_str().unwrap().to_owned();
    let key = created["api_key"].as_str().unwrap().to_owned();
    assert_eq!(created["host"]["workspace_id"], ws.as_str());
    assert_eq!(created["host"]["status"], "pending");
    let registered = audit_rows(&app, "host.registered").await;
    let event = registered
        .iter()
        .find(|r| r.resource_id.as_deref() == Some(id.as_str()))
        .unwrap();
    assert_eq!(event.workspace_id.as_deref(), Some(ws.as_str()));
    assert_eq!(event.actor_id.as_deref(), Some(mark_id.as_str()));

    // The workspace sees its own host only; the platform list shows both.
    let (s, listed) = app.call(&mia, Method::GET, &hosts, None).await;
    assert_eq!(s, StatusCode::OK);
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id.as_str()]);
    let (_, all) = app.call(&admin, Method::GET, "/api/v1/hosts", None).await;
    assert_eq!(all.as_array().unwrap().len(), 2);
    // A platform host is not the workspace's to manage.
    for (method, suffix) in [
        (Method::GET, ""),
        (Method::DELETE, ""),
        (Method::POST, "/rotate-key"),
    ] {
        let (s, _) = app
            .call(
                &mark,
                method.clone(),
                &format!("{hosts}/{platform_host}{suffix}"),
                (method == Method::POST).then(|| json!({})),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{method} {suffix}");
    }

    // It authenticates like any host, waits for approval, which only an administrator gives.
    let (s, answer) = hello(&app, &key).await;
    assert_eq!(s, StatusCode::OK, "{answer}");
    assert_eq!(answer["may_work"], false);
    let (s, _) = app
        .call(
            &mark,
            Method::POST,
            &format!("/api/v1/hosts/{id}/approve"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app
        .call(
            &admin,
            Method::POST,
            &format!("/api/v1/hosts/{id}/approve"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, answer) = hello(&app, &key).await;
    assert_eq!(answer["may_work"], true);

    // The maintainer rotates its key (without grace) and deletes it; a member may do neither.
    let (s, _) = app
        .call(
            &mia,
            Method::POST,
            &format!("{hosts}/{id}/rotate-key"),
            Some(json!({"grace_minutes": 0})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, rotated) = app
        .call(
            &mark,
            Method::POST,
            &format!("{hosts}/{id}/rotate-key"),
            Some(json!({"grace_minutes": 0})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{rotated}");
    let new_key = rotated["api_key"].as_str().unwrap().to_owned();
    assert_eq!(hello(&app, &key).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(hello(&app, &new_key).await.0, StatusCode::OK);
    let (s, _) = app
        .call(&mia, Method::DELETE, &format!("{hosts}/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app
        .call(&mark, Method::DELETE, &format!("{hosts}/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(hello(&app, &new_key).await.0, StatusCode::UNAUTHORIZED);
    let deleted = audit_rows(&app, "host.deleted").await;
    assert_eq!(deleted[0].workspace_id.as_deref(), Some(ws.as_str()));
}
