//! Workflows over HTTP: definitions checked (a cycle or an unknown step kind is a 400 naming
//! it) and versioned; a run going step by step through agent, command, condition and
//! approval steps on a host; approvals attacked (the starter approving a step for others, a
//! member without the permission); cancellation; a ticket move starting a run; a server
//! killed mid-run resuming exactly once. (The licence module off: license.rs's flag table.)

use futures_util::SinkExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use warden_protocol::{AgentMessage, EndStatus, ServerMessage};
use warden_testkit::protocol_host::{self, Ws};
use warden_testkit::{AppOptions, TestApp};

use crate::identity::{admin_token, audit_rows};
use crate::llm::{member_with_role, workspace};

async fn create(
    app: &TestApp,
    token: &str,
    ws: &str,
    name: &str,
    definition: Value,
) -> (StatusCode, Value) {
    app.call(
        token,
        Method::POST,
        &format!("/api/v1/workspaces/{ws}/workflows"),
        Some(json!({"name": name, "definition": definition})),
    )
    .await
}

async fn run_of(app: &TestApp, token: &str, ws: &str, run: &str) -> Value {
    let (s, v) = app
        .call(
            token,
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/workflow-runs/{run}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

/// Waits until the run's status is `status` (10 s at most).
async fn until(app: &TestApp, token: &str, ws: &str, run: &str, status: &str) -> Value {
    for _ in 0..200 {
        let v = run_of(app, token, ws, run).await;
        if v["status"] == status {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "run {run} never became {status}: {}",
        run_of(app, token, ws, run).await
    );
}

/// The next session the host is asked to start: its id and argv.
async fn started(host: &mut Ws) -> (String, Vec<String>) {
    let (id, argv, _) = started_on(host).await;
    (id, argv)
}

/// The next session the host is asked to start: its id, argv and the session whose branch it
/// starts from (checking that it keeps its worktree for the run).
async fn started_on(host: &mut Ws) -> (String, Vec<String>, Option<String>) {
    loop {
        match protocol_host::next(host).await {
            Some(ServerMessage::StartSession {
                session_id,
                argv,
                base_session,
                keep_worktree,
                ..
            }) => {
                assert!(keep_worktree, "a step's worktree stays for the run");
                return (session_id, argv, base_session);
            }
            Some(_) => {}
            None => panic!("the host's connection closed"),
        }
    }
}

/// The host reports a session started and ended.
async fn finish(host: &mut Ws, session: &str, ok: bool) {
    for m in [
        AgentMessage::SessionStarted {
            session_id: session.to_owned(),
            isolation: "none".into(),
        },
        AgentMessage::SessionEnded {
            session_id: session.to_owned(),
            seq: 0,
            status: if ok {
                EndStatus::Done
            } else {
                EndStatus::Failed
            },
            exit_code: Some(if ok { 0 } else { 1 }),
            error: None,
        },
    ] {
        host.send(Message::text(m.encode())).await.unwrap();
    }
}

fn flow() -> Value {
    json!({"steps": [
        {"id": "build", "kind": "agent", "prompt": "Implement it.", "provider": "claude-code"},
        {"id": "tests", "kind": "command", "command": ["make", "test"]},
        {"id": "green", "kind": "condition", "if": "succeeded", "then": "review", "else": "fix"},
        {"id": "fix", "kind": "agent", "prompt": "The tests fail: fix them.", "provider": "codex"},
        {"id": "review", "kind": "approval", "permission": "tickets.approve_qa", "timeout_minutes": 60}
    ]})
}

#[tokio::test]
async fn definitions_are_checked_and_versioned() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let ws = workspace(&app, &admin, "defs").await;
    let (s, w) = create(&app, &admin, &ws, "Ship", flow()).await;
    assert_eq!(s, StatusCode::CREATED, "{w}");
    assert_eq!(w["version"], 1);
    let (s, v) = create(&app, &admin, &ws, "Ship", flow()).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("workflow-exists"))
    );
    // A cycle and an unknown kind: 400, naming the step and the problem.
    let (s, v) = create(
        &app,
        &admin,
        &ws,
        "Loop",
        json!({"steps": [
        {"id": "a", "kind": "command", "command": ["true"]},
        {"id": "again", "kind": "condition", "if": "failed", "then": "a"}]}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["code"], "invalid-workflow");
    assert!(
        v["detail"].as_str().unwrap().contains("cycle")
            && v["detail"].as_str().unwrap().contains("\"again\""),
        "{v}"
    );
    let (s, v) = create(
        &app,
        &admin,
        &ws,
        "Odd",
        json!({"steps": [{"id": "x", "kind": "teleport"}]}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("unknown kind \"teleport\""),
        "{v}"
    );
    // A new version; runs keep the old one.
    let id = w["id"].as_str().unwrap();
    let (s, v) = app
        .call(
            &admin,
            Method::PUT,
            &format!("/api/v1/workspaces/{ws}/workflows/{id}"),
            Some(json!({"name": "Ship it", "definition": {"steps": [{"id": "only", "kind": "command", "command": ["true"]}]}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["version"].as_i64(), v["name"].as_str()),
        (Some(2), Some("Ship it"))
    );
    // A viewer reads but writes nothing.
    let viewer = member_with_role(&app, &admin, &ws, "viewer").await;
    let (s, list) = app
        .call(
            &viewer,
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/workflows"),
            None,
        )
        .await;
    assert_eq!((s, list.as_array().unwrap().len()), (StatusCode::OK, 1));
    let (s, _) = create(&app, &viewer, &ws, "Mine", flow()).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(audit_rows(&app, "workflow.updated").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_takes_each_step_once_and_the_starter_may_not_approve_it() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let ws = workspace(&app, &admin, "flow").await;
    let maintainer = member_with_role(&app, &admin, &ws, "maintainer").await;
    let member = member_with_role(&app, &admin, &ws, "member").await;
    let (_, mut host) = crate::mcp::ready_host(&app, &admin, &ws).await;
    let (_, w) = create(&app, &admin, &ws, "Ship", flow()).await;
    let wid = w["id"].as_str().unwrap();
    let (s, run) = app
        .call(
            &maintainer,
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/workflows/{wid}/runs"),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{run}");
    let rid = run["id"].as_str().unwrap().to_owned();

    // build (agent) → tests (command, fails) → green (condition: else) → fix (agent) → review.
    // Each session step goes on from the branch the one before it left.
    let (build, argv, base) = started_on(&mut host).await;
    assert_eq!(argv[0], "claude");
    assert_eq!(argv.last().unwrap(), "Implement it.");
    assert_eq!(base, None);
    finish(&mut host, &build, true).await;
    let (tests, argv, base) = started_on(&mut host).await;
    assert_eq!(argv, ["make", "test"]);
    assert_eq!(base.as_deref(), Some(build.as_str()));
    finish(&mut host, &tests, false).await;
    let (fix, argv, base) = started_on(&mut host).await;
    assert_eq!(argv[0], "codex");
    assert_eq!(base.as_deref(), Some(tests.as_str()));
    finish(&mut host, &fix, true).await;
    let waiting = until(&app, &admin, &ws, &rid, "waiting").await;
    let steps: Vec<(String, String)> = waiting["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["step_id"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("build", "succeeded"),
            ("tests", "failed"),
            ("green", "succeeded"),
            ("fix", "succeeded"),
            ("review", "waiting")
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );

    let decide = |token: String, body: Value| {
        let app = &app;
        let path = format!("/api/v1/workspaces/{ws}/workflow-runs/{rid}/decide");
        async move { app.call(&token, Method::POST, &path, Some(body)).await }
    };
    // The starter approving a step that needs someone else: 403, audited.
    let (s, v) = decide(maintainer.clone(), json!({"approve": true})).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("approval-by-self")),
        "{v}"
    );
    // A member without tickets.approve_qa (nor workflows.update): 403.
    let (s, _) = decide(member.clone(), json!({"approve": true})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // A rejection needs a reason.
    let (s, _) = decide(admin.clone(), json!({"approve": false})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, v) = decide(admin.clone(), json!({"approve": true})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let done = until(&app, &admin, &ws, &rid, "succeeded").await;
    assert!(done["ended_at"].is_string());
    let (s, _) = decide(admin.clone(), json!({"approve": true})).await;
    assert_eq!(s, StatusCode::CONFLICT, "nothing waits any more");

    // Each step once: three sessions, every step audited.
    let (_, sessions) = app
        .call(
            &admin,
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/sessions"),
            None,
        )
        .await;
    assert_eq!(sessions.as_array().unwrap().len(), 3);
    assert_eq!(audit_rows(&app, "workflow.step_started").await.len(), 5);
    assert_eq!(audit_rows(&app, "workflow.step_ended").await.len(), 3);
    let decided = audit_rows(&app, "workflow.step_decided").await;
    assert!(
        decided
            .iter()
            .any(|r| r.outcome == "denied" && r.summary.contains("approval-by-self"))
    );
    assert!(decided.iter().any(|r| r.outcome == "success"));
    assert_eq!(audit_rows(&app, "workflow.run_ended").await.len(), 1);

    // The run over, its develop sessions' kept worktrees and branches go: the host is told
    // (once each), the sessions are closed and that is audited.
    let mut archived = std::collections::BTreeSet::new();
    while archived.len() < 3 {
        match tokio::time::timeout(
            std::time::Duration::from_secs(20),
            protocol_host::next(&mut host),
        )
        .await
        .expect("the finished run's sessions are archived")
        {
            Some(ServerMessage::ArchiveSession { session_id, .. }) => {
                assert!(archived.insert(session_id), "archived once");
            }
            Some(_) => {}
            None => panic!("the host's connection closed"),
        }
    }
    assert_eq!(archived, [build, tests, fix].into_iter().collect());
    let closed = audit_rows(&app, "session.closed").await;
    assert_eq!(closed.len(), 3);
    assert!(closed.iter().all(|r| r.summary.contains("workflow")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_move_starts_a_run_on_it_and_a_run_can_be_canceled() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let ws = workspace(&app, &admin, "tickets-flow").await;
    let (_, mut host) = crate::mcp::ready_host(&app, &admin, &ws).await;
    let (s, _) = create(&app, &admin, &ws, "On approval", json!({"on_ticket": "ready_for_development", "steps": [
        {"id": "build", "kind": "agent", "prompt": "Implement the ticket.", "provider": "claude-code"},
        {"id": "after", "kind": "command", "command": ["true"]}]})).await;
    assert_eq!(s, StatusCode::CREATED);
    let t = crate::tickets::ticket(
        &app,
        &admin,
        &ws,
        json!({"title": "Export as CSV", "body": "All columns."}),
    )
    .await;
    let (s, _) = app
        .call(
            &admin,
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/tickets/{}/move", t["number"]),
            Some(json!({"to": "ready_for_development"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (session, argv) = started(&mut host).await;
    let prompt = argv.last().unwrap();
    assert!(
        prompt.starts_with("Implement the ticket.") && prompt.contains("Ticket #1: Export as CSV"),
        "{prompt}"
    );
    let (_, runs) = app
        .call(
            &admin,
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/workflow-runs"),
            None,
        )
        .await;
    let rid = runs[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(runs[0]["ticket_id"], t["id"]);
    // Cancel: the run ends, its running session is asked to stop, the step never goes on.
    let (s, v) = app
        .call(
            &admin,
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/workflow-runs/{rid}/cancel"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "canceled");
    finish(&mut host, &session, true).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let after = run_of(&app, &admin, &ws, &rid).await;
    assert_eq!(after["status"], "canceled");
    assert_eq!(after["steps"].as_array().unwrap().len(), 1, "{after}");
    let (s, _) = app
        .call(
            &admin,
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/workflow-runs/{rid}/cancel"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_run_resumes_it_exactly_once() {
    let a = TestApp::spawn().await.unwrap();
    let admin = admin_token(&a).await;
    let ws = workspace(&a, &admin, "durable").await;
    let (host_id, api_key) = protocol_host::register(&a, &admin).await;
    let (s, _) = a
        .call(
            &admin,
            Method::POST,
            &format!("/api/v1/hosts/{host_id}/approve"),
            None,
        )
        .await;
    assert!(s.is_success());
    let (s, _) = a
        .call(
            &admin,
            Method::PUT,
            &format!("/api/v1/workspaces/{ws}/settings"),
            Some(json!({"repository": "/srv/repo"})),
        )
        .await;
    assert!(s.is_success());
    let (mut host, _) = protocol_host::welcomed(&a, &api_key).await;
    let (_, w) = create(
        &a,
        &admin,
        &ws,
        "Two steps",
        json!({"steps": [
        {"id": "one", "kind": "command", "command": ["make", "one"]},
        {"id": "two", "kind": "command", "command": ["make", "two"]}]}),
    )
    .await;
    let (_, run) = a
        .call(
            &admin,
            Method::POST,
            &format!(
                "/api/v1/workspaces/{ws}/workflows/{}/runs",
                w["id"].as_str().unwrap()
            ),
            Some(json!({})),
        )
        .await;
    let rid = run["id"].as_str().unwrap().to_owned();
    let (one, _) = started(&mut host).await;

    // The node dies while step one runs; a new one starts on the same database.
    let mut env = a.db.env();
    env.push(("WARDEN_ENCRYPTION_KEY".to_owned(), a.master_key_hex.clone()));
    let TestApp { server, db, .. } = a;
    server.shutdown().await.unwrap();
    drop(host);
    let b = TestApp::spawn_with(AppOptions {
        env,
        ..AppOptions::default()
    })
    .await
    .unwrap();
    let admin = crate::identity::sign_in(
        &b,
        crate::identity::ADMIN_EMAIL,
        crate::identity::ADMIN_PASSWORD,
    )
    .await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // The host reconnects, still running step one's session, which then ends.
    let (mut host, _) = protocol_host::welcomed(&b, &api_key).await;
    host.send(Message::text(
        AgentMessage::Running {
            session_ids: vec![one.clone()],
        }
        .encode(),
    ))
    .await
    .unwrap();
    finish(&mut host, &one, true).await;
    let (two, argv) = started(&mut host).await;
    assert_eq!(argv, ["make", "two"]);
    assert_ne!(one, two);
    finish(&mut host, &two, true).await;
    let done = until(&b, &admin, &ws, &rid, "succeeded").await;
    assert_eq!(done["steps"].as_array().unwrap().len(), 2, "{done}");
    // No step ran twice: one session each, and no further start reached the host.
    let (_, sessions) = b
        .call(
            &admin,
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/sessions"),
            None,
        )
        .await;
    assert_eq!(sessions.as_array().unwrap().len(), 2);
    let more = tokio::time::timeout(std::time::Duration::from_millis(500), async {
        loop {
            if let Some(ServerMessage::StartSession { .. }) = protocol_host::next(&mut host).await {
                return true;
            }
        }
    })
    .await;
    assert!(more.is_err(), "no step started again");
    drop(db);
}

#[tokio::test]
async fn warden_workflow_saves_runs_and_shows_a_run() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let ws = workspace(&app, &admin, "cli").await;
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("credentials.json");
    let file = dir.path().join("flow.json");
    std::fs::write(
        &file,
        r#"{"steps": [{"id": "ok", "kind": "approval", "others_only": false}]}"#,
    )
    .unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"steps": [{"id": "x", "kind": "teleport"}]}"#).unwrap();
    let run = |args: Vec<String>| {
        crate::cli::run_cli(dir.path(), &creds, args, "violet tractor 93 lagoon\n")
    };
    let a = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let (ok, out) = run(a(&[
        "login",
        "--url",
        &app.base,
        "--email",
        crate::identity::ADMIN_EMAIL,
    ]))
    .await
    .unwrap();
    assert!(ok, "{out}");
    let (ok, out) = run(a(&[
        "workflow",
        "-w",
        &ws,
        "save",
        "--name",
        "Gate",
        "--file",
        bad.to_str().unwrap(),
    ]))
    .await
    .unwrap();
    assert!(
        !ok && out.contains("teleport"),
        "the problem is named: {out}"
    );
    let (ok, out) = run(a(&[
        "workflow",
        "-w",
        &ws,
        "save",
        "--name",
        "Gate",
        "--file",
        file.to_str().unwrap(),
    ]))
    .await
    .unwrap();
    assert!(ok && out.contains("version 1"), "{out}");
    let id = out.split_whitespace().next().unwrap().to_owned();
    let (ok, out) = run(a(&["workflow", "-w", &ws, "run", &id])).await.unwrap();
    assert!(ok, "{out}");
    let rid = out.trim().to_owned();
    until(&app, &admin, &ws, &rid, "waiting").await;
    let (ok, out) = run(a(&["workflow", "-w", &ws, "status", &rid]))
        .await
        .unwrap();
    assert!(ok && out.contains("ok (approval)  waiting"), "{out}");
    let (ok, out) = run(a(&["workflow", "-w", &ws, "approve", &rid]))
        .await
        .unwrap();
    assert!(ok && out.contains("succeeded"), "{out}");
    let (ok, out) = run(a(&["workflow", "-w", &ws, "runs"])).await.unwrap();
    assert!(
        ok && out.contains(&rid) && out.contains("succeeded"),
        "{out}"
    );
}

#[tokio::test]
async fn in_chromium_a_workflow_is_saved_run_and_approved() {
    if crate::browser::skipped() {
        return;
    }
    let (app, public) = crate::browser::console_app(&[]).await;
    let admin = admin_token(&app).await;
    let ws = workspace(&app, &admin, "Console workflows").await;
    let summary = crate::browser::walk("workflows.mjs", &public, &[("WORKSPACE", &ws)], 5).await;
    assert!(
        summary["tabs"]
            .as_array()
            .unwrap()
            .contains(&json!("Workflows")),
        "{summary}"
    );
    let refusal = summary["refusal"].as_str().unwrap();
    assert!(
        refusal.contains("cycle") && refusal.contains("again"),
        "{summary}"
    );
    assert!(
        summary["workflows"]
            .to_string()
            .contains("sign-off → after-sign-off"),
        "{summary}"
    );
    assert!(
        summary["waiting"].as_str().unwrap().contains("waiting"),
        "{summary}"
    );
    assert!(
        summary["done"].as_str().unwrap().contains("succeeded"),
        "{summary}"
    );
    assert_eq!(summary["steps"].as_array().unwrap().len(), 2, "{summary}");
}

#[tokio::test]
async fn an_automation_starts_a_workflow_run_acting_for_its_person() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let ws = workspace(&app, &admin, "auto-flow").await;
    let (_, w) = create(
        &app,
        &admin,
        &ws,
        "Gate",
        json!({"steps": [
        {"id": "ok", "kind": "approval", "others_only": false}]}),
    )
    .await;
    let (s, a) = app
        .call(
            &admin,
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/automations"),
            Some(
                json!({"name": "nightly gate", "kind": "manual", "prompt": "unused",
                          "provider": "claude-code"}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    let aid = a["id"].as_str().unwrap();
    let link = format!("/api/v1/workspaces/{ws}/automations/{aid}/workflow");
    let (s, v) = app
        .call(
            &admin,
            Method::PUT,
            &link,
            Some(json!({"workflow_id": uuid::Uuid::now_v7().to_string()})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = app
        .call(
            &admin,
            Method::PUT,
            &link,
            Some(json!({"workflow_id": w["id"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["name"], "Gate");
    let (s, _) = app
        .call(
            &admin,
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/automations/{aid}/runs"),
            None,
        )
        .await;
    assert!(s.is_success());
    let mut runs = Value::Null;
    for _ in 0..100 {
        let (_, r) = app
            .call(
                &admin,
                Method::GET,
                &format!("/api/v1/workspaces/{ws}/workflow-runs"),
                None,
            )
            .await;
        if r.as_array().is_some_and(|a| !a.is_empty()) {
            runs = r;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        runs.as_array().map(Vec::len),
        Some(1),
        "one workflow run: {runs}"
    );
    let rid = runs[0]["id"].as_str().unwrap().to_owned();
    until(&app, &admin, &ws, &rid, "waiting").await;
    let started = audit_rows(&app, "workflow.run_started").await;
    assert!(
        started[0].summary.contains("\"trigger\":\"automation\""),
        "{started:?}"
    );
    // Linking changes whom its runs act for: the person who linked it, not its first author.
    let maintainer = member_with_role(&app, &admin, &ws, "maintainer").await;
    let (s, _) = app
        .call(
            &maintainer,
            Method::PUT,
            &link,
            Some(json!({"workflow_id": w["id"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, me) = app.call(&maintainer, Method::GET, "/api/v1/me", None).await;
    let (_, a) = app
        .call(
            &admin,
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/automations/{aid}"),
            None,
        )
        .await;
    assert_eq!(a["automation"]["run_as"], me["id"], "{a}");
    // No session was opened for the automation itself.
    let (_, sessions) = app
        .call(
            &admin,
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/sessions"),
            None,
        )
        .await;
    assert_eq!(sessions.as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_whose_session_is_canceled_before_it_starts_fails_and_the_run_ends() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let ws = workspace(&app, &admin, "swept").await;
    let (_, mut host) = crate::mcp::ready_host(&app, &admin, &ws).await;
    let (_, w) = create(
        &app,
        &admin,
        &ws,
        "One",
        json!({"steps": [
        {"id": "build", "kind": "command", "command": ["make"]}]}),
    )
    .await;
    let (_, run) = app
        .call(
            &admin,
            Method::POST,
            &format!(
                "/api/v1/workspaces/{ws}/workflows/{}/runs",
                w["id"].as_str().unwrap()
            ),
            Some(json!({})),
        )
        .await;
    let rid = run["id"].as_str().unwrap().to_owned();
    // The host never starts it and goes away; someone stops the waiting session (no host
    // report follows).
    let (session, _) = started(&mut host).await;
    drop(host);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (s, v) = app
        .call(
            &admin,
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/sessions/{session}/stop"),
            None,
        )
        .await;
    assert!(s.is_success(), "{v}");
    let failed = until_long(&app, &admin, &ws, &rid, "failed").await;
    assert_eq!(failed["steps"][0]["status"], "failed");
}

/// As [`until`], for what a sweep does (up to 20 s).
async fn until_long(app: &TestApp, token: &str, ws: &str, run: &str, status: &str) -> Value {
    for _ in 0..200 {
        let v = run_of(app, token, ws, run).await;
        if v["status"] == status {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("run {run} never became {status}");
}

#[tokio::test]
async fn a_definition_may_be_written_in_yaml_and_bad_yaml_is_refused() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let ws = workspace(&app, &admin, "yaml").await;
    let yaml = "steps:\n  - id: build\n    kind: agent\n    prompt: Implement it.\n    \
                provider: claude-code\n  - {id: review, kind: approval, permission: tickets.approve_qa}\n\
                on_ticket: ready_for_development\n";
    let (s, w) = create(&app, &admin, &ws, "Yaml", json!(yaml)).await;
    assert_eq!(s, StatusCode::CREATED, "{w}");
    assert_eq!(
        w["definition"]["steps"][1]["permission"],
        "tickets.approve_qa"
    );
    assert_eq!(w["definition"]["on_ticket"], "ready_for_development");
    // JSON text works as well.
    let (s, _) = create(&app, &admin, &ws, "Text", json!(flow().to_string())).await;
    assert_eq!(s, StatusCode::CREATED);
    // Refused, naming the problem: a duplicate key, an alias bomb, a cycle, too much text.
    let bomb = "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n\
                c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n\
                e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n\
                g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n";
    let cycle = "steps:\n  - {id: a, kind: command, command: [\"true\"]}\n  \
                 - {id: again, kind: condition, if: failed, then: a}\n";
    for (name, text, says) in [
        ("Dup", "steps: []\nsteps: []\n", "duplicate"),
        ("Bomb", bomb, "budget"),
        ("Cycle", cycle, "cycle"),
        ("Big", &"#".repeat(70 * 1024), "64 KiB"),
    ] {
        let (s, v) = create(&app, &admin, &ws, name, json!(text)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{name}: {v}");
        assert_eq!(v["code"], "invalid-workflow", "{v}");
        assert!(v["detail"].as_str().unwrap().contains(says), "{name}: {v}");
    }
}
