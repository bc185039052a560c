//! Workflow runs at scale (BENCHMARKS.md): one node (the backend named by `TESTKIT_BACKEND`),
//! a connected host that speaks the agent protocol and ends every session it is given at once
//! (successfully), and RUNS runs of a three-step workflow (command → condition → command)
//! started together. Measures the time until every run has ended and checks that no step
//! ran twice: each run has exactly its three steps, the host was asked for exactly two
//! sessions per run, and no session id came twice.
//! `cargo run --release -p warden-testkit --example workflow_runs [RUNS]`

#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::panic)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use warden_protocol::{AgentMessage, EndStatus, ServerMessage};
use warden_testkit::{AppOptions, TestApp, protocol_host};

const PASSWORD: &str = "bench password 7781 heron";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let app = TestApp::spawn_with(AppOptions {
        env: vec![("WARDEN_LOG_LEVEL".to_owned(), "error".to_owned())],
        ..AppOptions::default()
    })
    .await?;
    let admin = app.first_admin("ops@example.com", PASSWORD).await?;
    let (_, me) = app.call(&admin, Method::GET, "/api/v1/me", None).await;
    let me: uuid::Uuid = me["id"].as_str().unwrap().parse().unwrap();
    let (_, ws) = app
        .call(
            &admin,
            Method::POST,
            "/api/v1/workspaces",
            Some(json!({"name": "Bench"})),
        )
        .await;
    let ws = ws["id"].as_str().unwrap().to_owned();
    let (s, _) = app
        .call(
            &admin,
            Method::PUT,
            &format!("/api/v1/workspaces/{ws}/settings"),
            Some(json!({"repository": "/srv/repo"})),
        )
        .await;
    assert!(s.is_success());
    let (_, w) = app
        .call(
            &admin,
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/workflows"),
            Some(json!({"name": "Three steps", "definition": {"steps": [
                {"id": "build", "kind": "command", "command": ["make", "build"]},
                {"id": "built", "kind": "condition", "if": "succeeded"},
                {"id": "test", "kind": "command", "command": ["make", "test"]}]}})),
        )
        .await;
    let wid = w["id"].as_str().unwrap().to_owned();
    let (_, host) = protocol_host::ready(&app, &admin).await;

    // The host: every session it is given starts and ends at once.
    let (mut sink, mut stream) = host.split();
    let seen = tokio::spawn(async move {
        let mut ids = Vec::new();
        while let Ok(Some(frame)) =
            tokio::time::timeout(Duration::from_secs(3), stream.next()).await
        {
            let Ok(Message::Text(t)) = frame else {
                continue;
            };
            if let Ok(ServerMessage::StartSession { session_id, .. }) =
                ServerMessage::decode(t.as_str())
            {
                for m in [
                    AgentMessage::SessionStarted {
                        session_id: session_id.clone(),
                        isolation: "none".into(),
                    },
                    AgentMessage::SessionEnded {
                        session_id: session_id.clone(),
                        seq: 0,
                        status: EndStatus::Done,
                        exit_code: Some(0),
                        error: None,
                    },
                ] {
                    sink.send(Message::text(m.encode())).await.unwrap();
                }
                ids.push(session_id);
            }
        }
        ids
    });

    let started = Instant::now();
    let mut starts = Vec::new();
    for _ in 0..runs {
        let (client, url, admin) = (
            app.client.clone(),
            app.url(&format!("/api/v1/workspaces/{ws}/workflows/{wid}/runs")),
            admin.clone(),
        );
        starts.push(tokio::spawn(async move {
            let res = client
                .post(url)
                .bearer_auth(admin)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            assert!(res.status().is_success(), "{}", res.status());
        }));
    }
    for s in starts {
        s.await?;
    }
    let all_started = started.elapsed();
    // Until every run has ended.
    let ended = loop {
        let counts = count_runs(&app, me, &ws, false).await;
        if counts.0 == runs {
            break started.elapsed();
        }
        if started.elapsed() > Duration::from_secs(600) {
            panic!("only {} of {runs} runs ended in 10 minutes", counts.0);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let ids = seen.await?;
    let unique: HashSet<&String> = ids.iter().collect();
    let (ended_runs, succeeded, steps) = count_runs(&app, me, &ws, true).await;
    println!(
        "backend: {}",
        std::env::var("TESTKIT_BACKEND").unwrap_or_else(|_| "sqlite".into())
    );
    println!(
        "| {runs} runs of 3 steps | all started in {:.2} s | all ended in {:.2} s | {:.0} steps/s | succeeded {succeeded}/{ended_runs} | steps {steps} (expected {}) | sessions asked {} (expected {}, distinct {}) |",
        all_started.as_secs_f64(),
        ended.as_secs_f64(),
        steps as f64 / ended.as_secs_f64(),
        runs * 3,
        ids.len(),
        runs * 2,
        unique.len(),
    );
    assert_eq!(steps, runs * 3, "a step ran twice or not at all");
    assert_eq!(ids.len(), runs * 2, "a session was asked for twice");
    assert_eq!(unique.len(), ids.len());
    assert_eq!(succeeded, runs);
    Ok(())
}

/// (runs ended, runs succeeded, steps recorded), read from the database as the store sees it.
async fn count_runs(
    app: &TestApp,
    me: uuid::Uuid,
    ws: &str,
    with_steps: bool,
) -> (usize, usize, usize) {
    let ws = warden_domain::tenancy::WorkspaceId::parse(ws).unwrap();
    let store = app.server.store();
    let who = warden_domain::identity::Principal::session(me, uuid::Uuid::nil());
    let grant = store
        .authorize(&who, ws, warden_domain::access::Permission::WORKFLOWS_READ)
        .await
        .unwrap();
    let mut tx = store.scoped(&grant).await.unwrap();
    let rows = tx.workflow_runs(100_000).await.unwrap();
    let mut steps = 0;
    if with_steps {
        for r in &rows {
            steps += tx.workflow_steps(r.id).await.unwrap().len();
        }
    }
    tx.commit().await.unwrap();
    let ended = rows.iter().filter(|r| r.ended_at.is_some()).count();
    let ok = rows.iter().filter(|r| r.status == "succeeded").count();
    (ended, ok, steps)
}
