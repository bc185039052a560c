//! The LLM gateway, against a stub provider at the network boundary (OpenAI and Anthropic
//! wire formats): pass-through, streaming, keys attacked, allow-lists, filters with real
//! secrets in prompts, a client that hangs up mid-stream, SSRF, oversized bodies, kill
//! switches, captured content, usage reports, sessions' tokens, the official SDKs and the
//! console. Quotas, filters, capture and the SSRF rules are in `llm_governance.rs`.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden_testkit::llm_stub::LlmStub;
use warden_testkit::{AppOptions, TestApp};

use crate::identity::{admin_token, audit_rows, database_dump};

pub(crate) const OPENAI_KEY: &str = "sk-upstream-openai-key-0123456789abcdef";
pub(crate) const ANTHROPIC_KEY: &str = "sk-ant-upstream-key-0123456789abcdefgh";

pub(crate) struct Gw {
    pub app: TestApp,
    pub admin: String,
    pub ws: String,
    pub stub: LlmStub,
    pub key: String,
}

/// An app whose upstreams may be on this machine, with more settings.
pub(crate) async fn app_allowing_private_with(mut env: Vec<(String, String)>) -> TestApp {
    env.push((
        "WARDEN_LLM_ALLOW_PRIVATE_UPSTREAMS".to_owned(),
        "true".to_owned(),
    ));
    TestApp::spawn_with(AppOptions {
        env,
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
    gateway_with(Vec::new(), policy).await
}

/// [`gateway`] on an app with more settings.
pub(crate) async fn gateway_with(env: Vec<(String, String)>, policy: Value) -> Gw {
    let app = app_allowing_private_with(env).await;
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

pub(crate) async fn chat(
    gw: &Gw,
    key: &str,
    body: Value,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
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

pub(crate) fn hello(model: &str) -> Value {
    json!({"model": model, "max_tokens": 20,
           "messages": [{"role": "user", "content": "Say hello."}]})
}

/// The call records, once the writer has stored `n` of them.
pub(crate) async fn records(gw: &Gw, n: usize) -> Vec<Value> {
    let mut calls = Vec::new();
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
        calls = page["calls"].as_array().cloned().unwrap_or_default();
        if calls.len() >= n {
            return calls;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("fewer than {n} call records were written: {}", calls.len());
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
async fn the_official_openai_and_anthropic_sdks_work_through_the_gateway_streaming_too() {
    let gw = gateway(json!({"filters": {"secrets": "block"}})).await;
    let seen = sdk_clients(&gw.app.url("/llm"), &gw.key).await;
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

/// What the official SDKs saw, calling the gateway at `url` (origin and prefix) with `key`
/// (`tests/python/llm_clients.py`).
pub(crate) async fn sdk_clients(url: &str, key: &str) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/llm_clients.py");
    let out = tokio::process::Command::new(warden_testkit::smtp::python())
        .arg(script)
        .arg(url)
        .arg(key)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_gets_the_gateway_and_a_token_of_its_own_which_ends_with_it() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    use warden_protocol::{AgentMessage, EndStatus, ServerMessage};

    // The gateway on a listener and under a prefix of its own: the session is given them.
    let gw = gateway_with(
        vec![
            ("WARDEN_LLM_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
            (
                "WARDEN_LLM_PATH_PREFIX".to_owned(),
                "/ai/gateway".to_owned(),
            ),
        ],
        json!({}),
    )
    .await;
    let gateway_url = format!("{}/ai/gateway", gw.app.server.gateway_base_url().unwrap());
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
    assert_eq!(
        var("ANTHROPIC_BASE_URL"),
        format!("{gateway_url}/anthropic")
    );
    assert_eq!(var("OPENAI_BASE_URL"), format!("{gateway_url}/v1"));
    assert!(
        env.iter().all(|(_, v)| v.0 != provider_key),
        "the provider key never reaches the host"
    );

    // The token calls the gateway; the record names the session.
    let res = gw
        .app
        .client
        .post(format!("{}/v1/messages", var("ANTHROPIC_BASE_URL")))
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
            .post(format!("{}/v1/messages", var("ANTHROPIC_BASE_URL")))
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
