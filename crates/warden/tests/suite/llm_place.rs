//! Where the LLM gateway is served: under a prefix of the operator's choosing on the main
//! listener, or on a listener of its own that serves nothing else (`llm.path_prefix`,
//! `llm.listen`). The official SDKs call it there; the old place answers 404; a prefix among
//! Warden's own routes is refused at start.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden_testkit::{AppOptions, TestApp};

use crate::llm::{Gw, gateway_with, hello, sdk_clients};

fn setting(name: &str, value: &str) -> (String, String) {
    (name.to_owned(), value.to_owned())
}

async fn status_of(app: &TestApp, method: Method, url: &str, key: &str) -> (StatusCode, Value) {
    let res = app
        .client
        .request(method, url)
        .bearer_auth(key)
        .json(&hello("gpt-test"))
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn openapi(gw: &Gw) -> Value {
    let res = gw
        .app
        .client
        .get(gw.app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

#[tokio::test]
async fn the_gateway_moves_under_the_prefix_the_operator_chooses() {
    let gw = gateway_with(
        vec![setting("WARDEN_LLM_PATH_PREFIX", "/ai/gateway")],
        json!({}),
    )
    .await;
    let at = |path: &str| gw.app.url(&format!("/ai/gateway{path}"));
    let (status, answer) =
        status_of(&gw.app, Method::POST, &at("/v1/chat/completions"), &gw.key).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // The access rule moved with the route: a wrong key gets the gateway's 401, in OpenAI's
    // format.
    let (status, refused) = status_of(
        &gw.app,
        Method::POST,
        &at("/v1/chat/completions"),
        "wdn_llm_nope",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused["error"]["type"], "authentication_error");
    // Nothing is left where it used to be.
    for old in ["/llm/v1/chat/completions", "/llm/anthropic/v1/messages"] {
        let (status, _) = status_of(&gw.app, Method::POST, &gw.app.url(old), &gw.key).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{old}");
    }
    let doc = openapi(&gw).await;
    assert!(doc["paths"]["/ai/gateway/v1/chat/completions"]["post"].is_object());
    assert!(doc["paths"]["/ai/gateway/anthropic/v1/messages"]["post"].is_object());
    assert!(doc["paths"]["/llm/v1/chat/completions"].is_null());
    // The official SDKs find it there, streaming too.
    let seen = sdk_clients(&at(""), &gw.key).await;
    assert_eq!(seen["openai_stream"], "Hello from the stub");
    assert_eq!(seen["anthropic_stream"], "Hello from the stub");
}

#[tokio::test]
async fn on_a_listener_of_its_own_the_gateway_serves_nothing_else_and_nothing_else_serves_it() {
    let gw = gateway_with(vec![setting("WARDEN_LLM_LISTEN", "127.0.0.1:0")], json!({})).await;
    let own = gw.app.server.gateway_base_url().unwrap();
    assert_ne!(own, gw.app.base);

    // The official SDKs, streaming too, at the gateway's own listener.
    let seen = sdk_clients(&format!("{own}/llm"), &gw.key).await;
    assert_eq!(seen["openai_text"], "Hello from the stub");
    assert_eq!(seen["openai_stream"], "Hello from the stub");
    assert_eq!(seen["anthropic_stream"], "Hello from the stub");
    assert_eq!(seen["openai_bad_key"], 401);

    // The main listener has no gateway any more.
    let (status, _) = status_of(
        &gw.app,
        Method::POST,
        &gw.app.url("/llm/v1/chat/completions"),
        &gw.key,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The gateway's listener has nothing but the gateway and its health checks: not the API,
    // not the console, not webhooks, not the OpenAPI document.
    for path in [
        "/api/v1/me",
        "/api/v1/openapi.json",
        "/console",
        "/sign-in",
        "/mcp",
    ] {
        let res = gw
            .app
            .client
            .get(format!("{own}{path}"))
            .bearer_auth(&gw.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
    }
    for path in ["/healthz", "/readyz"] {
        let res = gw
            .app
            .client
            .get(format!("{own}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
    }
    // The main document lists the gateway's endpoints with the server they are on.
    let doc = openapi(&gw).await;
    let chat = &doc["paths"]["/llm/v1/chat/completions"];
    assert!(chat["post"].is_object(), "{chat}");
    assert_eq!(chat["servers"], json!([{"url": own}]));
    assert!(doc["paths"]["/healthz"]["servers"].is_null());
    // Every call was recorded as usual.
    crate::llm::records(&gw, 5).await;
}

#[tokio::test]
async fn a_prefix_among_wardens_own_routes_is_refused_at_start() {
    for prefix in ["/api", "/api/v1", "/console", "/webhooks", "/mcp"] {
        let err = TestApp::spawn_with(AppOptions {
            env: vec![setting("WARDEN_LLM_PATH_PREFIX", prefix)],
            ..AppOptions::default()
        })
        .await
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("llm.path_prefix") && err.contains(prefix),
            "{prefix}: {err}"
        );
    }
    // On a listener of its own, the same prefix is nobody else's.
    let app = TestApp::spawn_with(AppOptions {
        env: vec![
            setting("WARDEN_LLM_PATH_PREFIX", "/api"),
            setting("WARDEN_LLM_LISTEN", "127.0.0.1:0"),
        ],
        ..AppOptions::default()
    })
    .await
    .unwrap();
    let res = app
        .client
        .get(format!(
            "{}/api/v1/models",
            app.server.gateway_base_url().unwrap()
        ))
        .bearer_auth("wdn_llm_nope")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}
