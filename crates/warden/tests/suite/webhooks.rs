//! Event sources and the public webhook intake, attacked: every signature scheme bent one way
//! at a time, replays, the same answer for unknown and valid tokens, rotation, rate limits
//! with rotating `X-Forwarded-For`, oversized and slow bodies, and the token kept out of the
//! audit trail. A matching delivery runs its automation with the payload escaped.

use std::time::Duration;

use aws_lc_rs::hmac;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use warden_testkit::{AppOptions, TestApp};

use crate::automations::{agent, repository, wait_for, workspace};
use crate::identity::{admin_token, audit_rows};

fn sign_hex(secret: &[u8], parts: &[&[u8]]) -> String {
    let mut ctx = hmac::Context::with_key(&hmac::Key::new(hmac::HMAC_SHA256, secret));
    for p in parts {
        ctx.update(p);
    }
    hex::encode(ctx.sign().as_ref())
}

/// Posts a delivery; returns the status and the exact body.
async fn deliver(app: &TestApp, url: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let mut req = app.client.post(url).body(body.to_vec());
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// Request headers, as (name, value).
type Headers<'a> = Vec<(&'a str, &'a str)>;

const RECEIVED: (u16, &str) = (200, "{\"received\":true}");

async fn create_source(app: &TestApp, admin: &str, ws: &str, body: Value) -> (Value, String) {
    let res = app
        .client
        .post(app.url(&format!("/api/v1/workspaces/{ws}/event-sources")))
        .bearer_auth(admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let created: Value = res.json().await.unwrap();
    let url = created["url"].as_str().unwrap().to_owned();
    assert!(url.contains("/webhooks/wwh_"), "{url}");
    (created["source"].clone(), url)
}

/// Waits until the source's counters satisfy `done` (the worker writes them in batches).
async fn counters(
    app: &TestApp,
    admin: &str,
    ws: &str,
    id: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Value::Null;
    for _ in 0..100 {
        let (s, source) = app
            .call(
                admin,
                Method::GET,
                &format!("/api/v1/workspaces/{ws}/event-sources/{id}"),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{source}");
        if done(&source["counters"]) {
            return source["counters"].clone();
        }
        last = source;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the counters never got there: {last}");
}

#[tokio::test]
async fn github_deliveries_are_verified_over_the_raw_bytes_and_a_match_runs_its_automation() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let _agent = agent(&app, &admin).await;
    let repo = repository();
    let ws = workspace(&app, &admin, repo.path()).await;
    let (s, automation) = app
        .call(
            &admin,
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/automations"),
            Some(json!({"name": "on push", "kind": "trigger",
                        "prompt": "Push to {{ event.ref }} by {{ event.pusher.name }}",
                        "provider": "command", "command": ["true"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{automation}");
    let automation_id = automation["id"].as_str().unwrap();
    let secret = "It's a Secret to Everybody";
    let (source, url) = create_source(
        &app,
        &admin,
        &ws,
        json!({"name": "github", "kind": "github", "secret": secret, "events": ["push"],
               "automation_id": automation_id}),
    )
    .await;
    assert_eq!(source["signed"], true);
    assert!(source.get("secret").is_none() && !source.to_string().contains(secret));
    let sid = source["id"].as_str().unwrap();
    let token = url.rsplit('/').next().unwrap().to_owned();

    // GitHub's documented test vector, as a positive control: verified, then ignored (a
    // `ping` is not among the events this source takes).
    let vector_sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    assert_eq!(
        deliver(
            &app,
            &url,
            &[
                ("x-hub-signature-256", vector_sig),
                ("x-github-event", "ping")
            ],
            b"Hello, World!"
        )
        .await,
        (RECEIVED.0, RECEIVED.1.to_owned())
    );
    let body = br#"{"ref": "refs/heads/main", "pusher": {"name": "Mallory \"); rm -rf / #"}}"#;
    let good = format!("sha256={}", sign_hex(secret.as_bytes(), &[body]));
    let zeros = format!("sha256={}", "0".repeat(64));
    let reserialised = serde_json::to_vec(&serde_json::from_slice::<Value>(body).unwrap()).unwrap();
    let mut flipped = body.to_vec();
    flipped[10] ^= 1;
    let legacy = format!("sha1={}", "ab".repeat(20));
    let bent: Vec<(Headers, &[u8])> = vec![
        (vec![("x-github-event", "push")], body),
        (
            vec![("x-github-event", "push"), ("x-hub-signature-256", &zeros)],
            body,
        ),
        (
            vec![("x-github-event", "push"), ("x-hub-signature-256", &good)],
            &flipped,
        ),
        (
            vec![("x-github-event", "push"), ("x-hub-signature-256", &good)],
            &reserialised,
        ),
        (
            vec![("x-github-event", "push"), ("x-hub-signature", &legacy)],
            body,
        ),
    ];
    for (headers, b) in &bent {
        assert_eq!(
            deliver(&app, &url, headers, b).await,
            (RECEIVED.0, RECEIVED.1.to_owned())
        );
    }
    let valid = [
        ("x-github-event", "push"),
        ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ("x-hub-signature-256", good.as_str()),
    ];
    // The same delivery twice: processed once.
    for _ in 0..2 {
        assert_eq!(deliver(&app, &url, &valid, body).await.0, 200);
    }
    // An unknown token gets the very same answer.
    let unknown = url.replace(&token[4..12], "AAAAAAAA");
    assert_eq!(
        deliver(&app, &unknown, &valid, body).await,
        (RECEIVED.0, RECEIVED.1.to_owned())
    );

    let c = counters(&app, &admin, &ws, sid, |c| {
        c["accepted"] == 1 && c["replayed"] == 1 && c["dropped_signature"] == 5 && c["ignored"] == 1
    })
    .await;
    assert_eq!(c["dropped_rate"], 0, "{c}");

    let detail = wait_for(&app, &admin, &ws, automation_id, |d| {
        d["runs"][0]["status"] == "done"
    })
    .await;
    assert_eq!(detail["runs"].as_array().unwrap().len(), 1, "{detail}");
    assert_eq!(detail["runs"][0]["trigger"], "event");
    let session = detail["runs"][0]["session_id"].as_str().unwrap();
    let (_, session) = app
        .call(
            &admin,
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/sessions/{session}"),
            None,
        )
        .await;
    assert_eq!(
        session["prompt"],
        r#"Push to "refs/heads/main" by "Mallory \"); rm -rf / #""#
    );

    // Failures are audited, at most once a minute per source, and no audit line carries the
    // token or the secret.
    let failed = audit_rows(&app, "event_source.signature_failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].outcome, "denied");
    for row in
        warden_store::audit::newest(app.server.store(), &app.server.state().ctx.audit_key, 1000)
            .await
            .unwrap()
    {
        let text = format!("{row:?}");
        assert!(
            !text.contains(&token[4..]) && !text.contains(secret),
            "{text}"
        );
    }
}

#[tokio::test]
async fn stripe_signatures_hold_to_300_seconds_either_way_and_one_valid_v1_is_enough() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let repo = repository();
    let ws = workspace(&app, &admin, repo.path()).await;
    let secret = b"whsec_stripe_like_secret_123456";
    let (source, url) = create_source(
        &app,
        &admin,
        &ws,
        json!({"name": "billing", "kind": "stripe", "secret": std::str::from_utf8(secret).unwrap()}),
    )
    .await;
    let sid = source["id"].as_str().unwrap();
    #[allow(clippy::disallowed_methods)]
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let body = br#"{"id":"evt_1","type":"invoice.paid"}"#;
    let header = |t: i64| {
        let v1 = sign_hex(secret, &[t.to_string().as_bytes(), b".", body]);
        format!("t={t},v1={v1}")
    };
    let good = header(now);
    let v1 = good.split("v1=").nth(1).unwrap().to_owned();
    for sig in [
        header(now - 301),
        header(now + 3600),
        format!("t={now},v0={v1}"),
        format!("t={now},v1={}", "ab".repeat(32)),
    ] {
        assert_eq!(
            deliver(&app, &url, &[("stripe-signature", &sig)], body)
                .await
                .0,
            200
        );
    }
    let two = format!("t={now},v1={},v1={v1}", "ab".repeat(32));
    for _ in 0..2 {
        assert_eq!(
            deliver(&app, &url, &[("stripe-signature", &two)], body)
                .await
                .0,
            200
        );
    }
    counters(&app, &admin, &ws, sid, |c| {
        c["accepted"] == 1 && c["replayed"] == 1 && c["dropped_signature"] == 4
    })
    .await;
}

/// The inbox: a delivery whose id no column can hold (a NUL byte, which PostgreSQL's text
/// refuses; 4,000 characters, over its index row limit) is ignored, not retried forever, and
/// the deliveries behind it are processed; once they are, nothing is left waiting.
#[tokio::test]
async fn an_unstorable_delivery_id_does_not_hold_up_the_inbox() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let repo = repository();
    let ws = workspace(&app, &admin, repo.path()).await;
    let (source, url) = create_source(
        &app,
        &admin,
        &ws,
        json!({"name": "unsigned billing", "kind": "stripe"}),
    )
    .await;
    let sid = source["id"].as_str().unwrap();
    let long = format!(
        r#"{{"id":"evt_{}","type":"invoice.paid"}}"#,
        "x".repeat(4000)
    );
    let bodies: [&[u8]; 4] = [
        br#"{"id":"evt_\u0000nul","type":"invoice.paid"}"#,
        long.as_bytes(),
        br#"{"id":"evt_fine","type":"invoice\u0000paid"}"#,
        br#"{"id":"evt_ok","type":"invoice.paid"}"#,
    ];
    for body in bodies {
        assert_eq!(
            deliver(&app, &url, &[], body).await,
            (RECEIVED.0, RECEIVED.1.to_owned())
        );
    }
    let c = counters(&app, &admin, &ws, sid, |c| {
        c["accepted"] == 1 && c["ignored"] == 3
    })
    .await;
    assert_eq!(c["waiting"], 0, "{c}");
    assert_eq!(c["dropped_signature"], 0, "{c}");
}

#[tokio::test]
async fn the_url_tells_a_prober_nothing_and_rotation_limits_and_body_rules_hold() {
    let app = TestApp::spawn_with(AppOptions {
        env: vec![(
            "WARDEN_AUTOMATIONS_WEBHOOK_BODY_TIMEOUT_SECS".to_owned(),
            "1".to_owned(),
        )],
        ..AppOptions::default()
    })
    .await
    .unwrap();
    let admin = admin_token(&app).await;
    let repo = repository();
    let ws = workspace(&app, &admin, repo.path()).await;
    let (limited, limited_url) = create_source(
        &app,
        &admin,
        &ws,
        json!({"name": "limited", "kind": "generic", "rate_per_minute": 5}),
    )
    .await;
    // 8 deliveries from 8 "addresses": the limit is the source's, whoever sends.
    for n in 0..8 {
        let ip = format!("198.51.100.{n}");
        let got = deliver(
            &app,
            &limited_url,
            &[("x-forwarded-for", &ip)],
            b"{\"n\":1}",
        )
        .await;
        assert_eq!(got, (RECEIVED.0, RECEIVED.1.to_owned()));
    }
    let lid = limited["id"].as_str().unwrap();
    let c = counters(&app, &admin, &ws, lid, |c| {
        c["accepted"] == 5 && c["dropped_rate"] == 3
    })
    .await;
    assert_eq!(c["dropped_backlog"], 0);

    // Rotation: the old URL stops at once; the new one works.
    let (source, old_url) = create_source(
        &app,
        &admin,
        &ws,
        json!({"name": "rotating", "kind": "generic"}),
    )
    .await;
    let sid = source["id"].as_str().unwrap();
    let res = app
        .client
        .post(app.url(&format!(
            "/api/v1/workspaces/{ws}/event-sources/{sid}/rotate-token"
        )))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let rotated: Value = res.json().await.unwrap();
    let new_url = rotated["url"].as_str().unwrap().to_owned();
    assert_ne!(new_url, old_url);
    assert_eq!(
        deliver(&app, &old_url, &[], b"{}").await,
        (RECEIVED.0, RECEIVED.1.to_owned())
    );
    assert_eq!(
        deliver(&app, &new_url, &[], b"{}").await,
        (RECEIVED.0, RECEIVED.1.to_owned())
    );
    counters(&app, &admin, &ws, sid, |c| c["accepted"] == 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let c = counters(&app, &admin, &ws, sid, |_| true).await;
    assert_eq!(c["accepted"], 1, "the old URL still worked: {c}");

    // Disabled: the same answer, nothing accepted.
    let mut settings = json!({"name": "rotating", "kind": "generic", "enabled": false});
    let (s, _) = app
        .call(
            &admin,
            Method::PUT,
            &format!("/api/v1/workspaces/{ws}/event-sources/{sid}"),
            Some(settings.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        deliver(&app, &new_url, &[], b"{}").await,
        (RECEIVED.0, RECEIVED.1.to_owned())
    );
    settings["enabled"] = json!(true);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        counters(&app, &admin, &ws, sid, |_| true).await["accepted"],
        1
    );

    // 30 MB: refused after the first 256 KiB, before any work on the token.
    let big = vec![b'x'; 30 << 20];
    let res = app.client.post(&new_url).body(big).send().await;
    match res {
        Ok(r) => assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE),
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
    // A body that trickles is cut off.
    let addr = app.base.trim_start_matches("http://").to_owned();
    let path = new_url.split(&app.base).nth(1).unwrap().to_owned();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(
        format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\n\
             Content-Type: application/json\r\n\r\n1\r\n{{\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut answer = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut answer))
        .await
        .expect("the slow body was never cut off")
        .unwrap();
    let head = String::from_utf8_lossy(&answer[..n]).to_string();
    assert!(
        head.is_empty() || head.starts_with("HTTP/1.1 408"),
        "{head}"
    );

    // The token is in no audit line; its first characters are, to tell URLs apart.
    let created = audit_rows(&app, "event_source.created").await;
    assert_eq!(created.len(), 2);
    let token = old_url.rsplit('/').next().unwrap();
    for row in created
        .iter()
        .chain(audit_rows(&app, "event_source.token_rotated").await.iter())
    {
        assert!(!row.summary.contains(&token[4..]), "{}", row.summary);
        assert!(row.summary.contains("wwh_"), "{}", row.summary);
    }
}

#[tokio::test]
async fn event_sources_refuse_bad_settings_and_stay_in_their_workspace() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let repo = repository();
    let ws = workspace(&app, &admin, repo.path()).await;
    let other = workspace(&app, &admin, repo.path()).await;
    let path = format!("/api/v1/workspaces/{ws}/event-sources");
    for (body, field) in [
        (json!({"name": "a", "kind": "gitlab"}), "kind"),
        (
            json!({"name": "a", "kind": "github", "secret": "short"}),
            "secret",
        ),
        (
            json!({"name": "a", "kind": "standard", "secret": "not-whsec-0123456789"}),
            "secret",
        ),
        (
            json!({"name": "a", "kind": "github", "signature_header": "X-Sig"}),
            "signature_header",
        ),
        (
            json!({"name": "a", "kind": "generic", "signature_header": "Bad Header"}),
            "signature_header",
        ),
        // Credential headers are never kept with a delivery, so no scheme reads them.
        (
            json!({"name": "a", "kind": "generic", "signature_header": "Authorization"}),
            "signature_header",
        ),
        (
            json!({"name": "a", "kind": "generic", "delivery_header": "cookie"}),
            "delivery_header",
        ),
        (
            json!({"name": "a", "kind": "generic", "match_pointer": "action"}),
            "match_pointer",
        ),
        (
            json!({"name": "a", "kind": "generic", "rate_per_minute": 0}),
            "rate_per_minute",
        ),
        (
            json!({"name": "a", "kind": "generic", "automation_id": uuid::Uuid::now_v7()}),
            "automation_id",
        ),
    ] {
        let (s, problem) = app
            .call(&admin, Method::POST, &path, Some(body.clone()))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {problem}");
        assert_eq!(problem["field"], field, "{body}: {problem}");
        assert!(!problem.to_string().contains("not-whsec"), "{problem}");
    }
    let (source, _) =
        create_source(&app, &admin, &ws, json!({"name": "a", "kind": "generic"})).await;
    let sid = source["id"].as_str().unwrap();
    for (method, suffix) in [
        (Method::GET, ""),
        (Method::DELETE, ""),
        (Method::POST, "/rotate-token"),
        (Method::DELETE, "/secret"),
    ] {
        let (s, _) = app
            .call(
                &admin,
                method.clone(),
                &format!("/api/v1/workspaces/{other}/event-sources/{sid}{suffix}"),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{method} {suffix}");
    }
    let (s, body) = app
        .call(
            &admin,
            Method::PUT,
            &format!("{path}/{sid}/secret"),
            Some(json!({"secret": "0123456789abcdef-generic"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["signed"], true);
    assert_eq!(audit_rows(&app, "event_source.secret_set").await.len(), 1);
}
