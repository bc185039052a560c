//! The LLM gateway's governance, attacked: parallel calls racing the last tenth of a quota,
//! two nodes racing the same counters, the counters gone (fail closed), monthly alerts;
//! secrets in prompts; captured content and who may read it; upstreams and the SSRF rules;
//! oversized bodies.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden_testkit::TestApp;

use crate::identity::{admin_token, audit_rows, database_dump};
use crate::llm::{
    OPENAI_KEY, chat, gateway, hello, member_with_role, records, set_policy, workspace,
};

#[tokio::test]
async fn parallel_calls_racing_the_last_tenth_of_a_token_quota_never_spend_more_than_it() {
    const LIMIT: i64 = 2_000;
    let gw = gateway(json!({"quotas": {"workspace": {"tokens_per_day": LIMIT}}})).await;
    // Nine tenths, one at a time.
    let mut spent = 0;
    while spent < LIMIT * 9 / 10 - 100 {
        let (status, _, body) = chat(&gw, &gw.key, hello("gpt-test")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        spent += 30;
    }
    // Fifty at once for the rest.
    let mut handles = Vec::new();
    for _ in 0..50 {
        let client = gw.app.client.clone();
        let url = gw.app.url("/llm/v1/chat/completions");
        let key = gw.key.clone();
        handles.push(tokio::spawn(async move {
            let res = client
                .post(url)
                .bearer_auth(key)
                .json(&hello("gpt-test"))
                .send()
                .await
                .unwrap();
            (res.status(), res.headers().get("retry-after").cloned())
        }));
    }
    let mut ok = 0;
    let mut refused = 0;
    for h in handles {
        let (status, retry) = h.await.unwrap();
        match status {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                refused += 1;
                assert!(retry.is_some(), "a 429 says when to retry");
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(ok >= 1 && refused >= 1, "ok {ok}, refused {refused}");
    let total_calls = gw.stub.seen().len();
    let calls = records(&gw, total_calls + refused).await;
    let used: i64 = calls
        .iter()
        .map(|c| c["tokens_in"].as_i64().unwrap() + c["tokens_out"].as_i64().unwrap())
        .sum();
    assert!(used <= LIMIT, "{used} tokens spent of {LIMIT}");
    assert!(
        calls
            .iter()
            .any(|c| c["status"] == 429 && c["decisions"].to_string().contains("quota")),
        "a refusal is recorded with the rule that fired"
    );
}

pub(crate) async fn raw_sql(app: &TestApp, sql: &str) {
    match app.db.backend {
        warden_store::Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&app.db.owner_url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        warden_store::Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&app.db.owner_url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }
}

#[tokio::test]
async fn when_the_quota_counters_are_unreachable_calls_are_refused_not_allowed() {
    let gw = gateway(json!({"quotas": {"per_user": {"requests_per_minute": 1000}}})).await;
    raw_sql(
        &gw.app,
        "ALTER TABLE llm_counters RENAME TO llm_counters_gone",
    )
    .await;
    let (status, headers, body) = chat(&gw, &gw.key, hello("gpt-test")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(headers.contains_key("retry-after"));
    assert!(
        gw.stub.seen().is_empty(),
        "fail closed: nothing reached the provider"
    );
    raw_sql(
        &gw.app,
        "ALTER TABLE llm_counters_gone RENAME TO llm_counters",
    )
    .await;
    let (status, _, _) = chat(&gw, &gw.key, hello("gpt-test")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn monthly_quota_alerts_go_out_once_at_80_and_90_percent() {
    let gw = gateway(json!({"quotas": {"workspace": {"requests_per_month": 10}}})).await;
    for _ in 0..9 {
        assert_eq!(
            chat(&gw, &gw.key, hello("gpt-test")).await.0,
            StatusCode::OK
        );
    }
    records(&gw, 9).await;
    let mut alerts = Vec::new();
    for _ in 0..200 {
        alerts = audit_rows(&gw.app, "llm.quota_alert").await;
        if alerts.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let mut thresholds: Vec<String> = alerts
        .iter()
        .map(|a| {
            serde_json::from_str::<Value>(&a.summary).unwrap()["threshold_percent"].to_string()
        })
        .collect();
    thresholds.sort();
    assert_eq!(thresholds, ["80", "90"]);
    // The tenth is the last; the eleventh is refused.
    assert_eq!(
        chat(&gw, &gw.key, hello("gpt-test")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        chat(&gw, &gw.key, hello("gpt-test")).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    records(&gw, 11).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        audit_rows(&gw.app, "llm.quota_alert").await.len(),
        2,
        "each alert once"
    );
}

/// Two nodes (two gateways' quota state) reserving from the same counters at once: together
/// they never grant more than the limit, and a node's unused lease goes back for the other.
#[tokio::test]
async fn two_nodes_share_the_quota_counters_and_never_grant_more_than_the_limit() {
    use std::sync::Arc;
    use warden_core::llm::quota::Quotas;
    let gw = gateway(json!({})).await;
    let store = gw.app.server.store().clone();
    let ws: uuid::Uuid = gw.ws.parse().unwrap();
    let limits: warden_core::llm::policy::Quotas = serde_json::from_value(
        json!({"workspace": {"requests_per_day": 100, "tokens_per_day": 50_000}}),
    )
    .unwrap();
    let limits = Arc::new(limits);
    #[allow(clippy::disallowed_methods)]
    let now = warden_core::op::unix_us(time::OffsetDateTime::now_utc());
    let nodes = [Arc::new(Quotas::default()), Arc::new(Quotas::default())];
    let mut handles = Vec::new();
    for i in 0..300 {
        let node = nodes[i % 2].clone();
        let (store, limits) = (store.clone(), limits.clone());
        handles.push(tokio::spawn(async move {
            node.reserve(&store, ws, None, &limits, [1, 40, 0], now)
                .await
                .is_ok()
        }));
    }
    let mut granted = 0;
    for h in handles {
        granted += usize::from(h.await.unwrap());
    }
    assert!(granted <= 100, "{granted} requests granted of 100");
    assert!(granted >= 90, "only {granted} granted: leases stranded");
    // What the nodes still hold goes back once idle, and the other node can have it.
    for n in &nodes {
        n.release_idle(&store, now + 11_000_000).await;
    }
    let fresh = Quotas::default();
    let mut more = 0;
    while fresh
        .reserve(&store, ws, None, &limits, [1, 40, 0], now + 12_000_000)
        .await
        .is_ok()
    {
        more += 1;
    }
    assert_eq!(
        granted + more,
        100,
        "every request of the limit is used, once"
    );
}

#[tokio::test]
async fn secrets_in_prompts_are_blocked_or_redacted_and_never_stored_or_echoed() {
    let gw = gateway(json!({"filters": {"secrets": "block"}})).await;
    // The workspace also stores the key as its provider secret for sessions.
    let (status, _) = gw
        .app
        .call(
            &gw.admin,
            Method::PUT,
            &format!("/api/v1/workspaces/{}/provider-keys/claude-code", gw.ws),
            Some(json!({"value": "sk-ant-workspace-stored-9f8e7d6c5b4a"})),
        )
        .await;
    assert!(status.is_success(), "{status}");
    let aws = "AKIAZ7QW3ERTY5UIOP2A";
    let pem =
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----";
    let prompts = [
        format!("debug this: {OPENAI_KEY}"),
        "my key sk-ant-workspace-stored-9f8e7d6c5b4a fails".to_owned(),
        format!("aws {aws} please"),
        format!("use {pem}"),
    ];
    for p in &prompts {
        let (status, _, body) = chat(
            &gw,
            &gw.key,
            json!({"model": "gpt-test", "messages": [{"role": "user", "content": p}]}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{p}");
        let shown = body.to_string();
        assert!(shown.contains("rule:"), "{shown}");
        assert!(!shown.contains("sk-") && !shown.contains(aws) && !shown.contains("MIIE"));
    }
    assert!(gw.stub.seen().is_empty(), "a blocked call never leaves");
    let calls = records(&gw, prompts.len()).await;
    let rules: Vec<String> = calls.iter().map(|c| c["decisions"].to_string()).collect();
    assert!(rules.iter().any(|r| r.contains("workspace_secret")));
    assert!(rules.iter().any(|r| r.contains("aws_access_key")));
    assert!(rules.iter().any(|r| r.contains("private_key")));

    // Redaction instead: the call goes ahead without the secrets.
    set_policy(
        &gw.app,
        &gw.admin,
        &gw.ws,
        json!({"enabled": true, "policy": {"filters": {"secrets": "redact", "personal_data": "redact"}}}),
    )
    .await;
    let (status, _, _) = chat(
        &gw,
        &gw.key,
        json!({"model": "gpt-test", "messages": [{"role": "user",
               "content": format!("aws {aws}, mail ana@example.org, key {OPENAI_KEY}")}]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let sent = gw.stub.seen()[0].body.to_string();
    assert!(
        !sent.contains(aws) && !sent.contains(OPENAI_KEY) && !sent.contains("ana@example.org"),
        "{sent}"
    );
    assert!(sent.contains("[REDACTED:aws_access_key]") && sent.contains("[REDACTED:email]"));

    records(&gw, prompts.len() + 1).await;
    let dump = database_dump(&gw.app).await;
    for secret in [
        aws,
        OPENAI_KEY,
        "sk-ant-workspace-stored-9f8e7d6c5b4a",
        "MIIEvQIBADAN",
    ] {
        assert!(!dump.contains(secret), "{secret} is stored somewhere");
    }
}

#[tokio::test]
async fn upstreams_follow_the_ssrf_rules_and_oversized_bodies_never_leave() {
    let gw = gateway(json!({})).await;
    for (base, private) in [
        ("http://169.254.169.254/latest", true),
        ("http://[fe80::1]/v1", true),
        ("https://10.1.2.3/v1", false),
        ("https://user:pw@api.example.com/v1", false),
    ] {
        let (status, body) = gw
            .app
            .call(
                &gw.admin,
                Method::POST,
                &format!("/api/v1/workspaces/{}/llm/upstreams", gw.ws),
                Some(
                    json!({"name": "meta", "kind": "openai_compatible", "base_url": base,
                            "models": ["m"], "allow_private_network": private}),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{base}: {body}");
    }
    // A server that does not allow private upstreams refuses them whatever a workspace says.
    let strict = TestApp::spawn().await.unwrap();
    let admin = admin_token(&strict).await;
    let ws = workspace(&strict, &admin, "Strict").await;
    let (status, _) = strict
        .call(
            &admin,
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/llm/upstreams"),
            Some(json!({"name": "local", "kind": "openai_compatible",
                        "base_url": "http://127.0.0.1:9/v1", "models": ["m"],
                        "allow_private_network": true})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // 10 MB: refused before any upstream call.
    let big = "x".repeat(10 * 1024 * 1024);
    let res = gw
        .app
        .client
        .post(gw.app.url("/llm/v1/chat/completions"))
        .bearer_auth(&gw.key)
        .header("content-type", "application/json")
        .body(format!(
            "{{\"model\":\"gpt-test\",\"messages\":[{{\"role\":\"user\",\"content\":\"{big}\"}}]}}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(gw.stub.seen().is_empty());
}

#[tokio::test]
async fn captured_content_is_sealed_and_shown_only_with_its_own_permission() {
    let gw = gateway(json!({"capture": {"enabled": true, "retention_days": 7}})).await;
    let (status, _, _) = chat(
        &gw,
        &gw.key,
        json!({"model": "gpt-test", "messages": [{"role": "user", "content": "the zebra codeword"}]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let calls = records(&gw, 1).await;
    assert_eq!(calls[0]["captured"], true);
    assert!(!calls[0].to_string().contains("zebra"));
    let dump = database_dump(&gw.app).await;
    assert!(
        !dump.contains("zebra codeword"),
        "content is sealed at rest"
    );
    let id = calls[0]["id"].as_str().unwrap();
    let path = format!("/api/v1/workspaces/{}/llm/calls/{id}/content", gw.ws);
    // A maintainer reads records but not content.
    let maintainer = member_with_role(&gw.app, &gw.admin, &gw.ws, "maintainer").await;
    let (status, _) = gw.app.call(&maintainer, Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = gw
        .app
        .call(
            &maintainer,
            Method::GET,
            &format!("/api/v1/workspaces/{}/llm/calls", gw.ws),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, content) = gw.app.call(&gw.admin, Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        content["request"]
            .as_str()
            .unwrap()
            .contains("zebra codeword")
    );
    assert!(
        content["response"]
            .as_str()
            .unwrap()
            .contains("Hello from the stub")
    );
    assert_eq!(audit_rows(&gw.app, "llm.content_viewed").await.len(), 1);
}

/// Archiving a workspace makes it read-only, not unreadable: members still list their gateway
/// keys (a GET that used to answer 409 `workspace-archived`), viewers still may not, and
/// making a key is refused.
#[tokio::test]
async fn an_archived_workspace_still_lists_gateway_keys_to_who_may_have_them() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let ws = workspace(&app, &admin, "archived keys").await;
    let member = member_with_role(&app, &admin, &ws, "member").await;
    let viewer = member_with_role(&app, &admin, &ws, "viewer").await;
    let (id, _) = crate::llm::new_key(&app, &member, &ws, json!({"name": "laptop"})).await;
    let (status, body) = app
        .call(
            &admin,
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/archive"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let keys = format!("/api/v1/workspaces/{ws}/llm/keys");
    let (status, listed) = app.call(&member, Method::GET, &keys, None).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
    let (status, _) = app.call(&viewer, Method::GET, &keys, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = app
        .call(
            &member,
            Method::POST,
            &keys,
            Some(json!({"name": "another"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "workspace-archived");
}
