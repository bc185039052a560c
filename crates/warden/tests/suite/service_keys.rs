//! Service-to-service requests signed with a workspace's service key, attacked: replays,
//! timestamps six minutes off, a swapped tenant, bytes moved between path and query, a changed
//! body, permissions the key lacks, another workspace, revocation and rotation.

use aws_lc_rs::{digest, hmac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden_testkit::TestApp;

use crate::identity::{admin_token, audit_rows};

struct Key {
    id: String,
    secret: String,
}

fn now() -> i64 {
    #[allow(clippy::disallowed_methods)]
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The `Authorization` value for a request, computed as the README tells a client to.
fn authorization(
    key: &Key,
    (method, path, query): (&str, &str, &str),
    ts: i64,
    tenant: &str,
    body: &[u8],
    nonce: &str,
) -> String {
    let body_hash = hex::encode(digest::digest(&digest::SHA256, body).as_ref());
    let ts_text = ts.to_string();
    let mut form = Vec::new();
    for f in [
        "WARDEN-HMAC-SHA256",
        method,
        path,
        query,
        &ts_text,
        tenant,
        &body_hash,
    ] {
        form.extend_from_slice(format!("{}:{f}\n", f.len()).as_bytes());
    }
    let sig = hex::encode(
        hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, key.secret.as_bytes()),
            &form,
        )
        .as_ref(),
    );
    format!(
        "WARDEN-HMAC-SHA256 keyId={}, ts={ts}, nonce={nonce}, sig={sig}",
        key.id
    )
}

async fn send(
    app: &TestApp,
    method: Method,
    path_and_query: &str,
    auth: &str,
    body: &[u8],
) -> (StatusCode, Value) {
    let res = app
        .client
        .request(method, app.url(path_and_query))
        .header("authorization", auth)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn nonce(n: u32) -> String {
    format!("nonce-{n:012}-{}", uuid::Uuid::now_v7().simple())
}

async fn new_key(app: &TestApp, token: &str, ws: &str, permissions: Value) -> (StatusCode, Value) {
    app.call(
        token,
        Method::POST,
        &format!("/api/v1/workspaces/{ws}/service-keys"),
        Some(json!({"name": "ci", "permissions": permissions})),
    )
    .await
}

#[tokio::test]
async fn signed_requests_act_within_the_key_and_every_bent_copy_is_refused() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let mut workspaces = Vec::new();
    for name in ["Builds", "Elsewhere"] {
        let (_, ws) = app
            .call(
                &admin,
                Method::POST,
                "/api/v1/workspaces",
                Some(json!({"name": name})),
            )
            .await;
        workspaces.push(ws["id"].as_str().unwrap().to_owned());
    }
    let (ws, other) = (&workspaces[0], &workspaces[1]);
    let (_, automation) = app
        .call(
            &admin,
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/automations"),
            Some(
                json!({"name": "after ci", "kind": "manual", "prompt": "Report.",
                        "provider": "claude-code"}),
            ),
        )
        .await;
    let aid = automation["id"].as_str().unwrap().to_owned();
    let res = app
        .client
        .post(app.url(&format!("/api/v1/workspaces/{ws}/service-keys")))
        .bearer_auth(&admin)
        .json(&json!({"name": "ci", "permissions": ["automations.read", "automations.update"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let created: Value = res.json().await.unwrap();
    let key = Key {
        id: created["key"]["key_id"].as_str().unwrap().to_owned(),
        secret: created["secret"].as_str().unwrap().to_owned(),
    };
    let (_, listed) = app
        .call(
            &admin,
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/service-keys"),
            None,
        )
        .await;
    assert!(!listed.to_string().contains(&key.secret), "{listed}");

    let list = format!("/api/v1/workspaces/{ws}/automations");
    let run = format!("{list}/{aid}/runs");
    let t = now();
    // Reads and runs within its permissions, in its workspace.
    let auth = authorization(&key, ("GET", &list, ""), t, ws, b"", &nonce(1));
    let (s, body) = send(&app, Method::GET, &list, &auth, b"").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body[0]["id"], aid.as_str());
    let auth = authorization(&key, ("POST", &run, ""), t, ws, b"", &nonce(2));
    let (s, queued) = send(&app, Method::POST, &run, &auth, b"").await;
    assert_eq!(s, StatusCode::ACCEPTED, "{queued}");
    let requested = audit_rows(&app, "automation.run_requested").await;
    assert_eq!(requested[0].actor_kind, "api_key");

    // The same request again: a replay.
    let (s, _) = send(&app, Method::POST, &run, &auth, b"").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "replayed");

    let q = "?limit=5";
    let with_query = format!("{list}{q}");
    let bent: Vec<(&str, String, String, &[u8])> = vec![
        // Six minutes early, six minutes late.
        (
            "ts -6 min",
            with_query.clone(),
            authorization(&key, ("GET", &list, "limit=5"), t - 360, ws, b"", &nonce(3)),
            b"",
        ),
        (
            "ts +6 min",
            with_query.clone(),
            authorization(&key, ("GET", &list, "limit=5"), t + 360, ws, b"", &nonce(4)),
            b"",
        ),
        // Signed for another tenant.
        (
            "tenant",
            with_query.clone(),
            authorization(&key, ("GET", &list, "limit=5"), t, other, b"", &nonce(5)),
            b"",
        ),
        // A byte moved from the path into the query.
        (
            "boundary",
            with_query.clone(),
            authorization(
                &key,
                ("GET", &list[..list.len() - 1], "slimit=5"),
                t,
                ws,
                b"",
                &nonce(6),
            ),
            b"",
        ),
        // Another method.
        (
            "method",
            with_query.clone(),
            authorization(&key, ("POST", &list, "limit=5"), t, ws, b"", &nonce(7)),
            b"",
        ),
        // A key that does not exist.
        (
            "key",
            with_query.clone(),
            authorization(
                &Key {
                    id: "wsk_000000000000000000000000".into(),
                    secret: key.secret.clone(),
                },
                ("GET", &list, "limit=5"),
                t,
                ws,
                b"",
                &nonce(8),
            ),
            b"",
        ),
        // A secret that is not the key's.
        (
            "secret",
            with_query.clone(),
            authorization(
                &Key {
                    id: key.id.clone(),
                    secret: "not-the-secret".into(),
                },
                ("GET", &list, "limit=5"),
                t,
                ws,
                b"",
                &nonce(9),
            ),
            b"",
        ),
    ];
    for (what, path, auth, body) in &bent {
        let (s, _) = send(&app, Method::GET, path, auth, body).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{what}");
    }
    let good = authorization(&key, ("GET", &list, "limit=5"), t, ws, b"", &nonce(10));
    assert_eq!(
        send(&app, Method::GET, &with_query, &good, b"").await.0,
        StatusCode::OK
    );

    // A changed body.
    let update = format!("{list}/{aid}");
    let signed_body =
        br#"{"name":"after ci","kind":"manual","prompt":"Report.","provider":"claude-code"}"#;
    let sent_body =
        br#"{"name":"after ci","kind":"manual","prompt":"Pwn.","provider":"claude-code"}"#;
    let auth = authorization(&key, ("PUT", &update, ""), t, ws, signed_body, &nonce(11));
    assert_eq!(
        send(&app, Method::PUT, &update, &auth, sent_body).await.0,
        StatusCode::UNAUTHORIZED
    );
    // The signed body passes the signature; the change would make the automation act for
    // the key's creator through the key, which does not carry sessions.create: refused.
    let auth = authorization(&key, ("PUT", &update, ""), t, ws, signed_body, &nonce(12));
    let (s, body) = send(&app, Method::PUT, &update, &auth, signed_body).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "permission-not-held");
    let auth = authorization(&key, ("POST", &list, ""), t, ws, signed_body, &nonce(13));
    assert_eq!(
        send(&app, Method::POST, &list, &auth, signed_body).await.0,
        StatusCode::FORBIDDEN
    );
    // Another workspace, even signed correctly for its path: nothing there for this key.
    let elsewhere = format!("/api/v1/workspaces/{other}/automations");
    let auth = authorization(&key, ("GET", &elsewhere, ""), t, ws, b"", &nonce(14));
    assert_eq!(
        send(&app, Method::GET, &elsewhere, &auth, b"").await.0,
        StatusCode::NOT_FOUND
    );
    // Not a workspace route.
    let auth = authorization(&key, ("GET", "/api/v1/me", ""), t, ws, b"", &nonce(15));
    assert_eq!(
        send(&app, Method::GET, "/api/v1/me", &auth, b"").await.0,
        StatusCode::FORBIDDEN
    );

    // Rotation with an overlap: both sign; then revocation of the old one.
    let (s, rotated) = app
        .call(
            &admin,
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/service-keys/{}/rotate", key.id),
            Some(json!({"overlap_secs": 3600})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{rotated}");
    let fresh = Key {
        id: rotated["key"]["key_id"].as_str().unwrap().to_owned(),
        secret: rotated["secret"].as_str().unwrap().to_owned(),
    };
    for (k, n) in [(&key, 16), (&fresh, 17)] {
        let auth = authorization(k, ("GET", &list, ""), t, ws, b"", &nonce(n));
        assert_eq!(
            send(&app, Method::GET, &list, &auth, b"").await.0,
            StatusCode::OK
        );
    }
    let (s, _) = app
        .call(
            &admin,
            Method::DELETE,
            &format!("/api/v1/workspaces/{ws}/service-keys/{}", key.id),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let auth = authorization(&key, ("GET", &list, ""), t, ws, b"", &nonce(18));
    assert_eq!(
        send(&app, Method::GET, &list, &auth, b"").await.0,
        StatusCode::UNAUTHORIZED
    );
    let auth = authorization(&fresh, ("GET", &list, ""), t, ws, b"", &nonce(19));
    assert_eq!(
        send(&app, Method::GET, &list, &auth, b"").await.0,
        StatusCode::OK
    );
    assert_eq!(audit_rows(&app, "service_key.rotated").await.len(), 1);
    assert_eq!(audit_rows(&app, "service_key.revoked").await.len(), 1);
}

#[tokio::test]
async fn a_key_carries_only_permissions_its_creator_holds() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let (_, ws) = app
        .call(
            &admin,
            Method::POST,
            "/api/v1/workspaces",
            Some(json!({"name": "Keys"})),
        )
        .await;
    let ws = ws["id"].as_str().unwrap().to_owned();
    let (s, u) = app
        .call(
            &admin,
            Method::POST,
            "/api/v1/admin/users",
            Some(json!({"email": "mo@example.com", "password": "quiet harbor 4417 finch"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    app.call(
        &admin,
        Method::POST,
        &format!("/api/v1/workspaces/{ws}/members"),
        Some(json!({"user_id": u["id"], "role": "maintainer"})),
    )
    .await;
    let mo = crate::identity::sign_in(&app, "mo@example.com", "quiet harbor 4417 finch").await
        ["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, problem) = new_key(&app, &mo, &ws, json!(["workspaces.delete"])).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{problem}");
    assert_eq!(problem["code"], "permission-not-held");
    let (s, problem) = new_key(&app, &mo, &ws, json!(["no.such"])).await;
    assert_eq!(
        (s, problem["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("permissions"))
    );
    let (s, created) = new_key(&app, &mo, &ws, json!(["automations.read"])).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!(created["key"]["created_by"], u["id"]);
    let key = Key {
        id: created["key"]["key_id"].as_str().unwrap().to_owned(),
        secret: created["secret"].as_str().unwrap().to_owned(),
    };
    let list = format!("/api/v1/workspaces/{ws}/automations");
    let auth = authorization(&key, ("GET", &list, ""), now(), &ws, b"", &nonce(1));
    assert_eq!(
        send(&app, Method::GET, &list, &auth, b"").await.0,
        StatusCode::OK
    );
    // Its creator is deactivated: the key acts for nobody any more.
    let (s, _) = app
        .call(
            &admin,
            Method::POST,
            &format!(
                "/api/v1/admin/users/{}/deactivate",
                u["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert!(s.is_success());
    let auth = authorization(&key, ("GET", &list, ""), now(), &ws, b"", &nonce(2));
    assert_eq!(
        send(&app, Method::GET, &list, &auth, b"").await.0,
        StatusCode::NOT_FOUND
    );
}
