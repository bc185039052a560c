//! MCP tool-call round trip (BENCHMARKS.md): one Warden node (the backend named by
//! `TESTKIT_BACKEND`), a workspace with MCP on and 200 tickets, one session's token; then
//! `tools/call` over Streamable HTTP (JSON answers, keep-alive) measured call by call — read
//! tools (`get_ticket_details`, `search_tickets`, `get_session_details`), a write
//! (`send_message`) — beside the REST read of the same ticket as its peer, sequentially and
//! with 16 callers at once. Every call is audited, as in production.
//! `cargo run --release -p warden-testkit --example mcp_roundtrip [CALLS]`

// A benchmark harness: a failed call ends the run loudly, and it prints its table.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::panic)]

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use warden_protocol::ServerMessage;
use warden_testkit::{AppOptions, TestApp, protocol_host};

const PASSWORD: &str = "bench password 7781 heron";

fn pct(sorted: &[Duration], p: f64) -> f64 {
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// One `tools/call`; panics unless it succeeded.
async fn call(client: &reqwest::Client, url: &str, token: &str, tool: &str, args: &Value) {
    let res = client
        .post(url)
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": tool, "arguments": args}}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{tool}: {}", res.status());
    let v: Value = res.json().await.unwrap();
    assert!(v["result"]["isError"] == false, "{tool}: {v}");
}

async fn rest(client: &reqwest::Client, url: &str, token: &str) {
    let res = client.get(url).bearer_auth(token).send().await.unwrap();
    assert!(res.status().is_success());
    let _ = res.bytes().await.unwrap();
}

fn report(name: &str, mut samples: Vec<Duration>, wall: Duration) {
    samples.sort();
    #[allow(clippy::cast_precision_loss)]
    let rate = samples.len() as f64 / wall.as_secs_f64();
    println!(
        "| {name} | {} | {:.2} | {:.2} | {:.2} | {rate:.0} |",
        samples.len(),
        pct(&samples, 0.5),
        pct(&samples, 0.99),
        pct(&samples, 1.0),
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let calls: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let app = TestApp::spawn_with(AppOptions {
        env: vec![("WARDEN_LOG_LEVEL".to_owned(), "error".to_owned())],
        ..AppOptions::default()
    })
    .await?;
    let admin = app.first_admin("ops@example.com", PASSWORD).await?;
    let (_, ws) = app
        .call(
            &admin,
            Method::POST,
            "/api/v1/workspaces",
            Some(json!({"name": "Bench"})),
        )
        .await;
    let ws = ws["id"].as_str().unwrap().to_owned();
    for (method, path, body) in [
        (
            Method::PUT,
            format!("/api/v1/workspaces/{ws}/settings"),
            json!({"repository": "/srv/repo"}),
        ),
        (
            Method::PUT,
            format!("/api/v1/workspaces/{ws}/mcp"),
            json!({"enabled": true}),
        ),
    ] {
        let (s, v) = app.call(&admin, method, &path, Some(body)).await;
        assert!(s.is_success(), "{v}");
    }
    for i in 0..200 {
        let (s, _) = app
            .call(
                &admin,
                Method::POST,
                &format!("/api/v1/workspaces/{ws}/tickets"),
                Some(json!({"title": format!("Ticket number {i} about the login flow"),
                            "body": "Steps to reproduce:\n\n1. sign in\n2. look", "labels": ["bench"]})),
            )
            .await;
        assert!(s.is_success());
    }
    let (host_id, mut host) = protocol_host::ready(&app, &admin).await;
    let (s, v) = app
        .call(
            &admin,
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/sessions"),
            Some(json!({"provider": "claude-code", "prompt": "bench", "host_id": host_id})),
        )
        .await;
    assert!(s.is_success(), "{v}");
    let Some(ServerMessage::StartSession { env, .. }) = protocol_host::next(&mut host).await else {
        panic!("no session start");
    };
    let token = env
        .iter()
        .find(|(k, _)| k == "WARDEN_MCP_TOKEN")
        .map(|(_, v)| v.0.clone())
        .unwrap();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let url = app.url("/mcp");
    let rest_url = app.url(&format!("/api/v1/workspaces/{ws}/tickets/100"));
    let cases: Vec<(&str, &str, Value)> = vec![
        (
            "MCP get_ticket_details (read)",
            "get_ticket_details",
            json!({"ticket": "100"}),
        ),
        (
            "MCP search_tickets (read, 20 of 200)",
            "search_tickets",
            json!({"query": "login"}),
        ),
        (
            "MCP get_session_details (read)",
            "get_session_details",
            json!({}),
        ),
        (
            "MCP send_message (write)",
            "send_message",
            json!({"message": "progress"}),
        ),
    ];
    // Warm up.
    for _ in 0..100 {
        call(&client, &url, &token, "get_ticket_details", &cases[0].2).await;
        rest(&client, &rest_url, &admin).await;
    }
    println!(
        "backend: {}",
        std::env::var("TESTKIT_BACKEND").unwrap_or_else(|_| "sqlite".into())
    );
    println!("| one caller, one call after another | calls | p50 ms | p99 ms | max ms | calls/s |");
    println!("|---|---|---|---|---|---|");
    let mut samples = Vec::with_capacity(calls);
    let wall = Instant::now();
    for _ in 0..calls {
        let t = Instant::now();
        rest(&client, &rest_url, &admin).await;
        samples.push(t.elapsed());
    }
    report("REST GET ticket (peer)", samples, wall.elapsed());
    for (name, tool, args) in &cases {
        let mut samples = Vec::with_capacity(calls);
        let wall = Instant::now();
        for _ in 0..calls {
            let t = Instant::now();
            call(&client, &url, &token, tool, args).await;
            samples.push(t.elapsed());
        }
        report(name, samples, wall.elapsed());
    }
    println!();
    println!("| 16 callers at once | calls | p50 ms | p99 ms | max ms | calls/s |");
    println!("|---|---|---|---|---|---|");
    for (name, tool) in [
        ("REST GET ticket (peer)", None),
        ("MCP get_ticket_details (read)", Some("get_ticket_details")),
    ] {
        let wall = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (client, url, rest_url, token, admin) = (
                client.clone(),
                url.clone(),
                rest_url.clone(),
                token.clone(),
                admin.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::with_capacity(calls / 16);
                let args = json!({"ticket": "100"});
                for _ in 0..calls / 16 {
                    let t = Instant::now();
                    match tool {
                        Some(tool) => call(&client, &url, &token, tool, &args).await,
                        None => rest(&client, &rest_url, &admin).await,
                    }
                    out.push(t.elapsed());
                }
                out
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await?);
        }
        report(name, all, wall.elapsed());
    }
    Ok(())
}
