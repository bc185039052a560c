//! The MCP endpoint for agents, with the official MCP Python SDK as the agent: a session of a
//! workspace that offers MCP gets a token and its provider the endpoint; the SDK lists the
//! tools and calls each (the owner answers a question while the tool waits); and the token is
//! attacked — another session's id, another workspace's tickets, expired, after the session
//! ended, a browser origin.

use futures_util::SinkExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use warden_protocol::{AgentMessage, EndStatus, ServerMessage};
use warden_testkit::TestApp;

use crate::agent::Ws;
use crate::identity::{admin_token, audit_rows};
use crate::llm::workspace;

/// A workspace with a repository and an approved, connected (protocol-level) host.
pub(crate) async fn ready_host(app: &TestApp, admin: &str, ws: &str) -> (String, Ws) {
    let (s, b) = app
        .call(
            admin,
            Method::PUT,
            &format!("/api/v1/workspaces/{ws}/settings"),
            Some(json!({"repository": "/srv/repositories/agents"})),
        )
        .await;
    assert!(s.is_success(), "{b}");
    warden_testkit::protocol_host::ready(app, admin).await
}

/// Starts a session and returns its id, its MCP token (if it got one) and its argv.
async fn session(
    app: &TestApp,
    token: &str,
    ws: &str,
    host_id: &str,
    host: &mut Ws,
) -> (String, Option<String>, Vec<String>) {
    let (s, v) = app
        .call(
            token,
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/sessions"),
            Some(json!({"provider": "claude-code", "prompt": "Fix the login test.", "host_id": host_id})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let Some(ServerMessage::StartSession {
        env,
        argv,
        session_id,
        ..
    }) = crate::agent::next(host).await
    else {
        panic!("no session start");
    };
    let token = env
        .iter()
        .find(|(k, _)| k == "WARDEN_MCP_TOKEN")
        .map(|(_, v)| v.0.clone());
    (session_id, token, argv)
}

async fn enable(app: &TestApp, admin: &str, ws: &str) {
    let (s, v) = app
        .call(
            admin,
            Method::PUT,
            &format!("/api/v1/workspaces/{ws}/mcp"),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["enabled"], true);
    assert!(v["url"].as_str().unwrap().ends_with("/mcp"));
}

async fn python(app: &TestApp, token: &str, args: &[&str]) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/mcp_client.py");
    let out = tokio::process::Command::new(warden_testkit::smtp::python())
        .arg(script)
        .arg(app.url("/mcp"))
        .arg(token)
        .args(args)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// One JSON-RPC `tools/call` over plain HTTP.
async fn rpc(app: &TestApp, token: &str, tool: &str, args: Value) -> (StatusCode, Value) {
    let res = app
        .client
        .post(app.url("/mcp"))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": tool, "arguments": args}}))
        .send()
        .await
        .unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn tool_error(v: &Value) -> Option<String> {
    (v["result"]["isError"] == true).then(|| v["result"]["content"][0]["text"].to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_uses_every_tool_through_the_official_python_sdk() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let ws = workspace(&app, &admin, "agents").await;
    let (host_id, mut host) = ready_host(&app, &admin, &ws).await;
    // Off by default: no token.
    let (_, none, _) = session(&app, &admin, &ws, &host_id, &mut host).await;
    assert_eq!(none, None);
    enable(&app, &admin, &ws).await;
    let (sid, token, argv) = session(&app, &admin, &ws, &host_id, &mut host).await;
    let token = token.expect("the session got an MCP token");
    assert!(token.starts_with("wdn_mcp_"));
    // Claude Code is configured with the endpoint, naming the variable, never the token.
    let at = argv.iter().position(|a| a == "--mcp-config").unwrap();
    assert!(argv[at + 1].contains("${WARDEN_MCP_TOKEN}"), "{argv:?}");
    assert!(argv.iter().all(|a| !a.contains(&token)));
    assert_eq!(argv.last().unwrap(), "Fix the login test.");

    // The owner answers the question while the tool waits.
    let answerer = {
        let app_client = app.client.clone();
        let base = app.url("");
        let admin = admin.clone();
        let ws = ws.clone();
        let sid = sid.clone();
        tokio::spawn(async move {
            for _ in 0..400 {
                let list: Value = app_client
                    .get(format!(
                        "{base}/api/v1/workspaces/{ws}/sessions/{sid}/messages"
                    ))
                    .bearer_auth(&admin)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                if let Some(q) = list
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|m| m["kind"] == "question")
                {
                    assert_eq!(q["state"], "open");
                    let res = app_client
                        .post(format!(
                            "{base}/api/v1/workspaces/{ws}/sessions/{sid}/messages/{}/answer",
                            q["id"].as_str().unwrap()
                        ))
                        .bearer_auth(&admin)
                        .json(&json!({"answer": "Use SQLite."}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), StatusCode::OK);
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            panic!("no question arrived");
        })
    };
    let out = python(&app, &token, &["tools"]).await;
    answerer.await.unwrap();
    assert_eq!(
        out["tools"],
        json!([
            "ask_user_question",
            "create_ticket",
            "get_session_details",
            "get_ticket_details",
            "read_plan",
            "search_tickets",
            "send_message",
            "write_plan"
        ])
    );
    for tool in [
        "create_ticket",
        "search_tickets",
        "get_ticket_details",
        "get_session_details",
        "send_message",
        "write_plan",
        "read_plan",
        "ask_user_question",
    ] {
        assert_eq!(out[tool]["is_error"], false, "{tool}: {}", out[tool]);
    }
    assert_eq!(out["create_ticket"]["structured"]["number"], 1);
    assert_eq!(
        out["search_tickets"]["structured"]["tickets"][0]["title"],
        "Flaky login test"
    );
    assert_eq!(
        out["get_ticket_details"]["structured"]["body"],
        "Fails **sometimes**."
    );
    assert_eq!(
        out["get_ticket_details"]["structured"]["session_ids"],
        json!([sid])
    );
    assert_eq!(out["get_session_details"]["structured"]["id"], sid.as_str());
    assert_eq!(
        out["get_session_details"]["structured"]["tickets"][0]["number"],
        1
    );
    assert_eq!(
        out["read_plan"]["structured"]["content"],
        "1. Reproduce\n2. Fix"
    );
    assert_eq!(
        out["ask_user_question"]["structured"]["answer"],
        "Use SQLite."
    );

    // What the agent said is on the session, for its owner.
    let (_, msgs) = app
        .call(
            &admin,
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/sessions/{sid}/messages"),
            None,
        )
        .await;
    let kinds: Vec<_> = msgs
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["message", "question"]);
    assert_eq!(msgs[1]["state"], "answered");
    let (_, plan) = app
        .call(
            &admin,
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/sessions/{sid}/plan"),
            None,
        )
        .await;
    assert_eq!(plan["content"], "1. Reproduce\n2. Fix");
    // A question is answered once.
    let q = msgs[1]["id"].as_str().unwrap();
    let (s, _) = app
        .call(
            &admin,
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/sessions/{sid}/messages/{q}/answer"),
            Some(json!({"answer": "again"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);

    // Every tool call is audited, naming the session and the tool (reads in the next batch).
    let mut calls = audit_rows(&app, "mcp.tool_called").await;
    for _ in 0..100 {
        if calls.len() >= 8 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        calls = audit_rows(&app, "mcp.tool_called").await;
    }
    assert_eq!(calls.len(), 8, "{calls:?}");
    assert!(
        calls
            .iter()
            .all(|r| r.resource_id.as_deref() == Some(sid.as_str())
                && r.outcome == "success"
                && r.actor_kind == "api_key")
    );
    let created = audit_rows(&app, "ticket.created").await;
    assert!(created[0].actor_id.as_deref().unwrap().starts_with("mcp:"));
    // The token never reaches the audit trail.
    let all =
        warden_store::audit::newest(app.server.store(), &app.server.state().ctx.audit_key, 1000)
            .await
            .unwrap();
    assert!(all.iter().all(|r| !r.summary.contains(&token)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_reaches_only_its_own_session_and_workspace_and_ends_with_the_session() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let a = workspace(&app, &admin, "team-a").await;
    let b = workspace(&app, &admin, "team-b").await;
    let (host_a, mut ha) = ready_host(&app, &admin, &a).await;
    let (host_b, mut hb) = ready_host(&app, &admin, &b).await;
    enable(&app, &admin, &a).await;
    enable(&app, &admin, &b).await;
    let (sid_a, token_a, _) = session(&app, &admin, &a, &host_a, &mut ha).await;
    let (sid_a2, _, _) = session(&app, &admin, &a, &host_a, &mut ha).await;
    let (sid_b, token_b, _) = session(&app, &admin, &b, &host_b, &mut hb).await;
    let (token_a, token_b) = (token_a.unwrap(), token_b.unwrap());
    crate::tickets::ticket(&app, &admin, &b, json!({"title": "Secret plans of team B"})).await;
    crate::tickets::ticket(&app, &admin, &a, json!({"title": "Team A work"})).await;

    // Session A reading session B, or another session of its own workspace: not found.
    for other in [&sid_b, &sid_a2] {
        let (s, v) = rpc(
            &app,
            &token_a,
            "get_session_details",
            json!({"session_id": other}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert!(
            tool_error(&v).is_some_and(|e| e.contains("not-found")),
            "{v}"
        );
    }
    // Its searches and reads see only its workspace.
    let (_, v) = rpc(&app, &token_a, "search_tickets", json!({})).await;
    let titles: Vec<_> = v["result"]["structuredContent"]["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(titles, ["Team A work"]);
    let (_, v) = rpc(&app, &token_b, "get_ticket_details", json!({"ticket": "1"})).await;
    assert_eq!(
        v["result"]["structuredContent"]["title"],
        "Secret plans of team B"
    );
    // Session A's plan is its own: B's token writes B's plan only.
    rpc(&app, &token_b, "write_plan", json!({"content": "B's plan"})).await;
    let (_, v) = rpc(&app, &token_a, "read_plan", json!({})).await;
    assert_eq!(v["result"]["structuredContent"]["content"], "");
    // Bad input is a tool error naming the problem.
    let (_, v) = rpc(
        &app,
        &token_a,
        "ask_user_question",
        json!({"question": "?", "timeout_seconds": 100000}),
    )
    .await;
    assert!(
        tool_error(&v).is_some_and(|e| e.contains("timeout_seconds")),
        "{v}"
    );
    let (_, v) = rpc(&app, &token_a, "create_ticket", json!({"title": ""})).await;
    assert!(tool_error(&v).is_some_and(|e| e.contains("title")), "{v}");

    // Bad tokens: the same 401 for each, before any tool runs.
    // The last character changed (the checksum then fails): never the same token.
    let last = if token_a.ends_with('x') { "y" } else { "x" };
    let mangled = format!("{}{last}", &token_a[..token_a.len() - 1]);
    for bad in ["", "wdn_mcp_nope", mangled.as_str(), "wdn_llm_000"] {
        let (s, _) = rpc(&app, bad, "read_plan", json!({})).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{bad}");
    }
    // A browser page cannot call it with a valid token.
    let res = app
        .client
        .post(app.url("/mcp"))
        .bearer_auth(&token_a)
        .header("origin", "https://evil.example")
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // Expired: refused.
    crate::llm_governance::raw_sql(
        &app,
        &format!(
            "UPDATE mcp_tokens SET expires_at = 1 WHERE session_id = {}",
            match app.db.backend {
                warden_store::Backend::Sqlite => format!("X'{}'", sid_b.replace('-', "")),
                warden_store::Backend::Postgres => format!("'{sid_b}'"),
            }
        ),
    )
    .await;
    let out = python(&app, &token_b, &["refused"]).await;
    assert_eq!(
        (&out["refused"], &out["status"]),
        (&json!(true), &json!(401)),
        "{out}"
    );

    // Session A ends: its token is refused at once, by the SDK too.
    for m in [
        AgentMessage::SessionStarted {
            session_id: sid_a.clone(),
            isolation: "none".into(),
        },
        AgentMessage::SessionEnded {
            session_id: sid_a.clone(),
            seq: 0,
            status: EndStatus::Done,
            exit_code: Some(0),
            error: None,
        },
    ] {
        ha.send(Message::text(m.encode())).await.unwrap();
    }
    let mut refused = false;
    for _ in 0..100 {
        let (s, _) = rpc(&app, &token_a, "read_plan", json!({})).await;
        if s == StatusCode::UNAUTHORIZED {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(refused, "an ended session's token is refused");
    let out = python(&app, &token_a, &["refused"]).await;
    assert_eq!(
        (&out["refused"], &out["status"]),
        (&json!(true), &json!(401)),
        "{out}"
    );
    // The refused calls inside tools were audited as denied.
    let calls = audit_rows(&app, "mcp.tool_called").await;
    assert!(
        calls.iter().filter(|r| r.outcome == "denied").count() >= 2,
        "{calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_nobody_answers_times_out_and_only_the_owner_may_answer() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let ws = workspace(&app, &admin, "questions").await;
    let maintainer = crate::llm::member_with_role(&app, &admin, &ws, "maintainer").await;
    let (host_id, mut host) = ready_host(&app, &admin, &ws).await;
    enable(&app, &admin, &ws).await;
    let (sid, token, _) = session(&app, &admin, &ws, &host_id, &mut host).await;
    let token = token.unwrap();
    let (s, v) = rpc(
        &app,
        &token,
        "ask_user_question",
        json!({"question": "Ship it?", "timeout_seconds": 1}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["result"]["structuredContent"]["answered"], false, "{v}");
    let (_, msgs) = app
        .call(
            &admin,
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/sessions/{sid}/messages"),
            None,
        )
        .await;
    assert_eq!(msgs[0]["state"], "expired");
    let q = msgs[0]["id"].as_str().unwrap();
    let path = format!("/api/v1/workspaces/{ws}/sessions/{sid}/messages/{q}/answer");
    // Someone else in the workspace may not answer the owner's question.
    let (s, _) = app
        .call(
            &maintainer,
            Method::POST,
            &path,
            Some(json!({"answer": "yes"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Expired: too late for the owner too.
    let (s, _) = app
        .call(&admin, Method::POST, &path, Some(json!({"answer": "yes"})))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_chromium_tickets_are_written_and_moved_and_an_agents_question_is_answered() {
    if crate::browser::skipped() {
        return;
    }
    let (app, public) = crate::browser::console_app(&[]).await;
    let admin = admin_token(&app).await;
    let ws = workspace(&app, &admin, "Console tickets").await;
    let (host_id, mut host) = ready_host(&app, &admin, &ws).await;
    enable(&app, &admin, &ws).await;
    let (sid, token, _) = session(&app, &admin, &ws, &host_id, &mut host).await;
    let token = token.unwrap();
    // The agent asks, and waits.
    let asking = {
        let client = app.client.clone();
        let url = app.url("/mcp");
        let token = token.clone();
        tokio::spawn(async move {
            let res = client
                .post(url)
                .bearer_auth(token)
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", "2025-06-18")
                .json(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
                    "name": "ask_user_question",
                    "arguments": {"question": "Which database may the tests use?", "timeout_seconds": 120}}}))
                .send()
                .await
                .unwrap();
            res.json::<Value>().await.unwrap()
        })
    };
    for _ in 0..100 {
        let (_, msgs) = app
            .call(
                &admin,
                Method::GET,
                &format!("/api/v1/workspaces/{ws}/sessions/{sid}/messages"),
                None,
            )
            .await;
        if msgs.as_array().is_some_and(|m| !m.is_empty()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let summary = crate::browser::walk(
        "tickets.mjs",
        &public,
        &[("WORKSPACE", &ws), ("SESSION", &sid)],
        7,
    )
    .await;
    assert!(
        summary["tabs"]
            .as_array()
            .unwrap()
            .contains(&json!("Tickets")),
        "{summary}"
    );
    assert_eq!(summary["heading"], "#1 Dark mode for the dashboard");
    assert_eq!(summary["rendered_h2"], json!(["Why"]));
    assert_eq!(summary["scripts_in_body"], 0);
    assert_eq!(summary["pwned"], false);
    assert_eq!(
        summary["link_hrefs"],
        json!([null, "https://example.com/dark"]),
        "{summary}"
    );
    assert_eq!(summary["status"], "In development");
    assert_eq!(summary["mcp_checked"], true);
    assert_eq!(summary["question"], "Which database may the tests use?");
    let answered = asking.await.unwrap();
    assert_eq!(
        answered["result"]["structuredContent"]["answer"], "Use the staging database, please.",
        "{answered}"
    );
    let (_, t) = app
        .call(
            &admin,
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/tickets/1"),
            None,
        )
        .await;
    assert_eq!(t["status"], "in_development");
    assert_eq!(t["labels"], json!(["ui", "accessibility"]));
}
