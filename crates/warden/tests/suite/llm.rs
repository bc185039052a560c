//! The LLM gateway, against a stub provider at the network boundary (OpenAI and Anthropic
//! wire formats): pass-through, streaming, keys attacked, allow-lists, quotas raced and with
//! their counters gone, filters with real secrets in prompts, a client that hangs up
//! mid-stream, SSRF, oversized bodies, kill switches, captured content, usage reports and
//! alerts.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden_testkit::llm_stub::LlmStub;
use warden_testkit::{AppOptions, TestApp};

use crate::identity::{admin_token, audit_rows, database_dump};

const OPENAI_KEY: &str = "sk-upstream-openai-key-0123456789abcdef";
const ANTHROPIC_KEY: &str = "sk-ant-upstream-key-0123456789abcdefgh";

pub(crate) struct Gw {
    pub app: TestApp,
    pub admin: String,
    pub ws: String,
    pub stub: LlmStub,
    pub key: String,
}

async fn app_allowing_private() -> TestApp {
    TestApp::spawn_with(AppOptions {
        env: vec![(
            "WARDEN_LLM_ALLOW_PRIVATE_UPSTREAMS".to_owned(),
            "true".to_owned(),
        )],
        ..AppOptions::default()
    })
    .await
    .unwrap()
}

pub(crate) async fn workspace(app: &TestApp, admin: &str, name: &str) -> String {
    let (status, ws) = app
        .call(
            admin,
            Method::POST,
            "/api/v1/workspaces",
            Some(json!({"name": name})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ws}");
    ws["id"].as_str().unwrap().to_owned()
}

pub(crate) async fn add_upstreams(app: &TestApp, admin: &str, ws: &str, stub: &LlmStub) {
    for body in [
        json!({"name": "openai", "kind": "openai", "base_url": stub.openai_base(),
               "api_key": OPENAI_KEY, "allow_private_network": true,
               "models": ["gpt-test", "gpt-test-endless", "gpt-test-error", "gpt-test-slow"],
               "aliases": {"fast": "gpt-test"}}),
        json!({"name": "anthropic", "kind": "anthropic", "base_url": stub.anthropic_base(),
               "api_key": ANTHROPIC_KEY, "allow_private_network": true,
               "models": ["claude-test"]}),
    ] {
        let (status, up) = app
            .call(
                admin,
                Method::POST,
                &format!("/api/v1/workspaces/{ws}/llm/upstreams"),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{up}");
        assert_eq!(up["has_key"], true);
        assert!(
            !up.to_string().contains("sk-"),
            "a provider key is write-only: {up}"
        );
    }
}

pub(crate) async fn set_policy(app: &TestApp, admin: &str, ws: &str, body: Value) {
    let (status, saved) = app
        .call(
            admin,
            Method::PUT,
            &format!("/api/v1/workspaces/{ws}/llm/policy"),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
}

pub(crate) async fn new_key(app: &TestApp, token: &str, ws: &str, body: Value) -> (String, String) {
    let (status, made) = app
        .call(
            token,
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/llm/keys"),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    (
        made["key"]["id"].as_str().unwrap().to_owned(),
        made["secret"].as_str().unwrap().to_owned(),
    )
}

pub(crate) async fn gateway(policy: Value) -> Gw {
    let app = app_allowing_private().await;
    let admin = admin_token(&app).await;
    let stub = LlmStub::start().await.unwrap();
    let ws = workspace(&app, &admin, "Agents").await;
    add_upstreams(&app, &admin, &ws, &stub).await;
    set_policy(
        &app,
        &admin,
        &ws,
        json!({"enabled": true, "policy": policy}),
    )
    .await;
    let (_, key) = new_key(&app, &admin, &ws, json!({"name": "tests"})).await;
    Gw {
        app,
        admin,
        ws,
        stub,
        key,
    }
}

async fn chat(gw: &Gw, key: &str, body: Value) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let res = gw
        .app
        .client
        .post(gw.app.url("/llm/v1/chat/completions"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    (status, headers, res.json().await.unwrap_or(Value::Null))
}

fn hello(model: &str) -> Value {
    json!({"model": model, "max_tokens": 20,
           "messages": [{"role": "user", "content": "Say hello."}]})
}

/// The call records, once the writer has stored `n` of them.
async fn records(gw: &Gw, n: usize) -> Vec<Value> {
    for _ in 0..200 {
        let (_, page) = gw
            .app
            .call(
                &gw.admin,
                Method::GET,
                &format!("/api/v1/workspaces/{}/llm/calls?limit=500", gw.ws),
                None,
            )
            .await;
        let calls = page["calls"].as_array().cloned().unwrap_or_default();
        if calls.len() >= n {
            return calls;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (_, page) = gw
        .app
        .call(
            &gw.admin,
            Method::GET,
            &format!("/api/v1/workspaces/{}/llm/calls?limit=500", gw.ws),
            None,
        )
        .await;
    panic!(
        "fewer than {n} call records were written: {}",
        page["calls"].as_array().map_or(0, Vec::len)
    );
}

#[tokio::test]
async fn calls_pass_through_with_the_workspace_key_and_are_recorded_and_audited() {
    let gw = gateway(json!({})).await;
    // Non-streaming, with the client's correlation id.
    let res = gw
        .app
        .client
        .post(gw.app.url("/llm/v1/chat/completions"))
        .bearer_auth(&gw.key)
        .header("x-request-id", "corr-0001-abcdef")
        .json(&hello("fast"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-request-id"], "corr-0001-abcdef");
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from the stub"
    );
    assert_eq!(body["usage"]["completion_tokens"], 20);
    let seen = gw.stub.seen();
    assert_eq!(seen.len(), 1);
    // The provider got the workspace's key (never the gateway key), the real model for the
    // alias, and the correlation id.
    assert_eq!(seen[0].key, format!("Bearer {OPENAI_KEY}"));
    assert_eq!(seen[0].body["model"], "gpt-test");
    assert_eq!(seen[0].request_id, "corr-0001-abcdef");

    // Streaming passes the events through.
    let res = gw
        .app
        .client
        .post(gw.app.url("/llm/v1/chat/completions"))
        .bearer_auth(&gw.key)
        .json(
            &json!({"model": "gpt-test", "stream": true, "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = res.text().await.unwrap();
    assert!(
        text.contains("\" stub\"") && text.ends_with("data: [DONE]\n\n"),
        "{text}"
    );

    // Anthropic's format, with x-api-key, both ways.
    let res = gw
        .app
        .client
        .post(gw.app.url("/llm/anthropic/v1/messages"))
        .header("x-api-key", &gw.key)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "claude-test", "max_tokens": 30,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["usage"]["output_tokens"], 30);
    assert_eq!(gw.stub.seen()[2].key, ANTHROPIC_KEY);
    let res = gw
        .app
        .client
        .post(gw.app.url("/llm/anthropic/v1/messages"))
        .header("x-api-key", &gw.key)
        .json(
            &json!({"model": "claude-test", "max_tokens": 30, "stream": true,
                      "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .unwrap();
    let text = res.text().await.unwrap();
    assert!(text.contains("event: message_stop"), "{text}");

    // Models the key may call.
    let res = gw
        .app
        .client
        .get(gw.app.url("/llm/v1/models"))
        .bearer_auth(&gw.key)
        .send()
        .await
        .unwrap();
    let models: Value = res.json().await.unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"gpt-test") && ids.contains(&"fast") && ids.contains(&"claude-test"));

    // Every call is recorded with its usage, and audited with its correlation id.
    let calls = records(&gw, 4).await;
    let first = calls
        .iter()
        .find(|c| c["request_id"] == "corr-0001-abcdef")
        .unwrap();
    assert_eq!(first["model"], "gpt-test");
    assert_eq!(
        (first["tokens_in"].as_i64(), first["tokens_out"].as_i64()),
        (Some(10), Some(20))
    );
    assert_eq!(first["status"], 200);
    let streamed = calls
        .iter()
        .find(|c| c["endpoint"] == "chat.completions" && c["request_id"] != "corr-0001-abcdef")
        .unwrap();
    assert_eq!(streamed["tokens_out"], 16);
    let anthropic_streamed = calls.iter().filter(|c| c["endpoint"] == "messages").count();
    assert_eq!(anthropic_streamed, 2);
    let audited = audit_rows(&gw.app, "llm.call").await;
    assert!(
        audited
            .iter()
            .any(|r| r.request_id.as_deref() == Some("corr-0001-abcdef")),
        "the call's audit event carries its correlation id"
    );

    // Usage: per day, user and model, as JSON and CSV.
    let (_, usage) = gw
        .app
        .call(
            &gw.admin,
            Method::GET,
            &format!("/api/v1/workspaces/{}/llm/usage", gw.ws),
            None,
        )
        .await;
    let gpt = usage["usage"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["model"] == "gpt-test")
        .unwrap();
    assert_eq!(gpt["requests"], 2);
    let csv = gw
        .app
        .client
        .get(gw.app.url(&format!(
            "/api/v1/workspaces/{}/llm/usage?format=csv",
            gw.ws
        )))
        .bearer_auth(&gw.admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("day,user_id,model,requests,tokens_in,tokens_out,cost_micros"));
    assert!(csv.contains(",claude-test,2,20,"), "{csv}");
}

#[tokio::test]
async fn every_bad_key_gets_the_same_401_and_keys_stay_in_their_workspace() {
    let gw = gateway(json!({})).await;
    let (revoked_id, revoked) = new_key(&gw.app, &gw.admin, &gw.ws, json!({"name": "old"})).await;
    let (status, _) = gw
        .app
        .call(
            &gw.admin,
            Method::DELETE,
            &format!("/api/v1/workspaces/{}/llm/keys/{revoked_id}", gw.ws),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let well_formed_unknown = format!("wdn_llm_{}", "A".repeat(43));
    let mut answers = Vec::new();
    for key in [
        well_formed_unknown.as_str(),
        "garbage",
        "",
        revoked.as_str(),
        &gw.key[..gw.key.len() - 1],
    ] {
        let (status, _, body) = chat(&gw, key, hello("gpt-test")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{key}");
        answers.push(body);
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    assert_eq!(answers[0]["error"]["type"], "authentication_error");
    // Anthropic's endpoint refuses in Anthropic's format, alike too.
    let res = gw
        .app
        .client
        .post(gw.app.url("/llm/anthropic/v1/messages"))
        .header("x-api-key", &revoked)
        .json(&json!({"model": "claude-test", "max_tokens": 5, "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "authentication_error");

    // A model outside the allow-list never reaches the provider.
    let (status, _, body) = chat(&gw, &gw.key, hello("gpt-5-secret")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // Another workspace's key reaches only its own workspace's upstreams.
    let other = workspace(&gw.app, &gw.admin, "Other").await;
    let (_, other_key) = new_key(&gw.app, &gw.admin, &other, json!({"name": "x"})).await;
    let (status, _, body2) = chat(&gw, &other_key, hello("gpt-test")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body, body2,
        "an unknown model and another workspace's model answer alike"
    );
    assert!(
        gw.stub.seen().is_empty(),
        "nothing refused reached the provider"
    );
    // A workspace key needs llm.update; the secret is never stored in clear.
    let dump = database_dump(&gw.app).await;
    assert!(!dump.contains(&gw.key) && !dump.contains(OPENAI_KEY) && !dump.contains(ANTHROPIC_KEY));
}

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

/// A new user holding `role` in `ws`; their access token.
pub(crate) async fn member_with_role(app: &TestApp, admin: &str, ws: &str, role: &str) -> String {
    let email = format!("{role}-{}@example.com", uuid::Uuid::now_v7().simple());
    let (s, created) = app
        .call(
            admin,
            Method::POST,
            "/api/v1/admin/users",
            Some(json!({"email": email, "password": "quiet harbor 4417 finch", "platform_role": "member"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let (s, body) = app
        .call(
            admin,
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/members"),
            Some(json!({"user_id": created["id"], "role": role})),
        )
        .await;
    assert!(s.is_success(), "{s} {body}");
    crate::identity::sign_in(app, &email, "quiet harbor 4417 finch").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn raw_sql(app: &TestApp, sql: &str) {
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
async fn a_client_that_hangs_up_mid_stream_cancels_the_upstream_call_and_is_settled() {
    let gw = gateway(json!({"quotas": {"workspace": {"tokens_per_day": 1_000_000}}})).await;
    let res = gw
        .app
        .client
        .post(gw.app.url("/llm/v1/chat/completions"))
        .bearer_auth(&gw.key)
        .json(&json!({"model": "gpt-test-endless", "stream": true,
                      "messages": [{"role": "user", "content": "go on forever"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let mut stream = res.bytes_stream();
    use futures_util::StreamExt;
    let mut got = 0;
    while got < 3 {
        stream.next().await.unwrap().unwrap();
        got += 1;
    }
    drop(stream);
    for _ in 0..200 {
        if gw.stub.cancelled() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        gw.stub.cancelled(),
        1,
        "the upstream stream was cut when the client left"
    );
    assert_eq!(gw.stub.finished(), 0);
    let calls = records(&gw, 1).await;
    assert_eq!(calls[0]["status"], 499);
    assert!(
        calls[0]["tokens_out"].as_i64().unwrap() >= 3,
        "{}",
        calls[0]
    );
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
async fn kill_switches_stop_the_workspace_or_everything() {
    let gw = gateway(json!({})).await;
    assert_eq!(
        chat(&gw, &gw.key, hello("gpt-test")).await.0,
        StatusCode::OK
    );
    set_policy(&gw.app, &gw.admin, &gw.ws, json!({"enabled": false})).await;
    let (status, _, body) = chat(&gw, &gw.key, hello("gpt-test")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    set_policy(&gw.app, &gw.admin, &gw.ws, json!({"enabled": true})).await;
    assert_eq!(
        chat(&gw, &gw.key, hello("gpt-test")).await.0,
        StatusCode::OK
    );
    let (status, _) = gw
        .app
        .call(
            &gw.admin,
            Method::PUT,
            "/api/v1/admin/llm",
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        chat(&gw, &gw.key, hello("gpt-test")).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(audit_rows(&gw.app, "llm.gateway_disabled").await.len(), 1);
    gw.app
        .call(
            &gw.admin,
            Method::PUT,
            "/api/v1/admin/llm",
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(
        chat(&gw, &gw.key, hello("gpt-test")).await.0,
        StatusCode::OK
    );
    assert_eq!(gw.stub.seen().len(), 3);
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

#[tokio::test]
async fn the_official_openai_and_anthropic_sdks_work_through_the_gateway_streaming_too() {
    let gw = gateway(json!({"filters": {"secrets": "block"}})).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/llm_clients.py");
    let base = gw.app.url("");
    let out = tokio::process::Command::new(warden_testkit::smtp::python())
        .arg(script)
        .arg(base.trim_end_matches('/'))
        .arg(&gw.key)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["openai_text"], "Hello from the stub");
    assert_eq!(seen["openai_usage"], json!([10, 12]));
    assert_eq!(seen["openai_stream"], "Hello from the stub");
    assert_eq!(seen["openai_stream_chunks"], 4);
    assert_eq!(seen["openai_stream_usage"], 16);
    assert!(
        seen["openai_models"]
            .as_array()
            .unwrap()
            .contains(&json!("claude-test"))
    );
    assert_eq!(seen["openai_embedding"], 3);
    assert_eq!(seen["openai_bad_key"], 401);
    assert_eq!(seen["openai_bad_model"], 403);
    assert_eq!(seen["anthropic_text"], "Hello from the stub");
    assert_eq!(seen["anthropic_usage"], json!([10, 21]));
    assert_eq!(seen["anthropic_stream"], "Hello from the stub");
    assert_eq!(seen["anthropic_stream_usage"], 22);
    assert_eq!(seen["anthropic_bad_key"], 401);
    // The streamed calls were metered from their usage events.
    // Six calls reached the gateway with a good key (the refused model is recorded too).
    let calls = records(&gw, 6).await;
    let anthropic_stream = calls
        .iter()
        .find(|c| c["endpoint"] == "messages" && c["tokens_out"] == 22)
        .unwrap();
    assert_eq!(anthropic_stream["tokens_in"], 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_gets_the_gateway_and_a_token_of_its_own_which_ends_with_it() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    use warden_protocol::{AgentMessage, EndStatus, ServerMessage};

    let gw = gateway(json!({})).await;
    set_policy(
        &gw.app,
        &gw.admin,
        &gw.ws,
        json!({"enabled": true, "session_gateway": true}),
    )
    .await;
    let ws = &gw.ws;
    let provider_key = "sk-ant-provider-held-by-warden-123456";
    for (method, path, body) in [
        (
            Method::PUT,
            format!("/api/v1/workspaces/{ws}/settings"),
            json!({"repository": "/srv/repositories/agents"}),
        ),
        (
            Method::PUT,
            format!("/api/v1/workspaces/{ws}/provider-keys/claude-code"),
            json!({"value": provider_key}),
        ),
    ] {
        let (status, b) = gw.app.call(&gw.admin, method, &path, Some(body)).await;
        assert!(status.is_success(), "{path}: {b}");
    }
    let (host_id, api_key) = crate::agent::register(&gw.app, &gw.admin).await;
    let (status, _) = gw
        .app
        .call(
            &gw.admin,
            Method::POST,
            &format!("/api/v1/hosts/{host_id}/approve"),
            None,
        )
        .await;
    assert!(status.is_success());
    let (mut host, _) = crate::agent::welcomed(&gw.app, &api_key).await;
    let (status, session) = gw
        .app
        .call(
            &gw.admin,
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/sessions"),
            Some(json!({"provider": "claude-code", "prompt": "Tidy the README.", "host_id": host_id})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let sid = session["id"].as_str().unwrap().to_owned();
    let Some(ServerMessage::StartSession { env, .. }) = crate::agent::next(&mut host).await else {
        panic!("no session start");
    };
    let var = |name: &str| {
        env.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.0.clone())
            .unwrap_or_default()
    };
    let token = var("ANTHROPIC_API_KEY");
    assert!(
        token.starts_with("wdn_llm_"),
        "the session got a gateway token"
    );
    assert_eq!(var("OPENAI_API_KEY"), token);
    assert!(var("ANTHROPIC_BASE_URL").ends_with("/llm/anthropic"));
    assert!(var("OPENAI_BASE_URL").ends_with("/llm/v1"));
    assert!(
        env.iter().all(|(_, v)| v.0 != provider_key),
        "the provider key never reaches the host"
    );

    // The token calls the gateway; the record names the session.
    let res = gw
        .app
        .client
        .post(gw.app.url("/llm/anthropic/v1/messages"))
        .header("x-api-key", &token)
        .json(&json!({"model": "claude-test", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(gw.stub.seen()[0].key, ANTHROPIC_KEY);
    let calls = records(&gw, 1).await;
    assert_eq!(calls[0]["session_id"], sid.as_str());

    // The session ends: so does its token, at once.
    for m in [
        AgentMessage::SessionStarted {
            session_id: sid.clone(),
            isolation: "none".into(),
        },
        AgentMessage::SessionEnded {
            session_id: sid.clone(),
            seq: 0,
            status: EndStatus::Done,
            exit_code: Some(0),
            error: None,
        },
    ] {
        host.send(Message::text(m.encode())).await.unwrap();
    }
    let mut refused = false;
    for _ in 0..100 {
        let res = gw
            .app
            .client
            .post(gw.app.url("/llm/anthropic/v1/messages"))
            .header("x-api-key", &token)
            .json(&json!({"model": "claude-test", "max_tokens": 8, "messages": []}))
            .send()
            .await
            .unwrap();
        if res.status() == StatusCode::UNAUTHORIZED {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refused, "a finished session's token is refused");
}

#[tokio::test]
async fn in_chromium_a_maintainer_sets_up_the_gateway_makes_a_key_and_sees_the_usage() {
    if std::env::var("TESTKIT_BACKEND").as_deref() == Ok("postgres") {
        eprintln!("the browser test runs on the SQLite pass");
        return;
    }
    use warden_testkit::browser::{screenshots, walk_through};
    let port = crate::browser::free_port();
    let public = format!("http://localhost:{port}");
    let app = TestApp::spawn_with(AppOptions {
        env: vec![
            ("WARDEN_LISTEN".to_owned(), format!("127.0.0.1:{port}")),
            ("WARDEN_PUBLIC_URL".to_owned(), public.clone()),
            (
                "WARDEN_LLM_ALLOW_PRIVATE_UPSTREAMS".to_owned(),
                "true".to_owned(),
            ),
        ],
        ..AppOptions::default()
    })
    .await
    .unwrap();
    let admin = admin_token(&app).await;
    let ws = workspace(&app, &admin, "Console LLM").await;
    let stub = LlmStub::start().await.unwrap();
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let stub_addr = stub.addr.to_string();
    let summary = walk_through(
        &dir,
        "llm.mjs",
        &[
            ("WARDEN_URL", public.as_ref()),
            ("EMAIL", crate::identity::ADMIN_EMAIL.as_ref()),
            ("PASSWORD", crate::identity::ADMIN_PASSWORD.as_ref()),
            ("WORKSPACE", ws.as_ref()),
            ("STUB", stub_addr.as_ref()),
            ("SHOTS", shots.as_os_str()),
        ],
    )
    .await;
    assert_eq!(summary["problems"], json!([]), "{summary}");
    assert_eq!(screenshots(&summary, &shots), 5, "{summary}");
    assert!(
        summary["tabs"]
            .as_array()
            .unwrap()
            .contains(&json!("LLM gateway")),
        "{summary}"
    );
    assert!(
        summary["upstreams"].to_string().contains("key stored"),
        "{summary}"
    );
    assert_eq!(summary["session_gateway"], true);
    assert_eq!(summary["tokens_per_month"], "5000000");
    let key = summary["key"].as_str().unwrap();
    assert!(key.starts_with("wdn_llm_"), "{summary}");
    assert_eq!(summary["call_status"], 200, "{summary}");
    // The provider got the upstream's key and the prompt with the address redacted.
    let seen = stub.seen();
    assert_eq!(seen[0].key, "Bearer sk-console-upstream-0123456789abcdef");
    assert!(seen[0].body.to_string().contains("[REDACTED:email]"));
    assert!(
        summary["usage"].to_string().contains("gpt-test"),
        "{summary}"
    );
    assert!(
        summary["calls"].to_string().contains("email (redact)"),
        "{summary}"
    );
    assert!(
        summary["revoked"].to_string().contains("revoked"),
        "{summary}"
    );
    let (status, _, _) = {
        let res = app
            .client
            .post(app.url("/llm/v1/chat/completions"))
            .bearer_auth(key)
            .json(&hello("gpt-test"))
            .send()
            .await
            .unwrap();
        (res.status(), (), ())
    };
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a revoked key is refused");
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
