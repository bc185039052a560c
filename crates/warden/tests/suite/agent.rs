//! Agent connections over the WebSocket protocol: hello and welcome, one live connection per
//! host, malformed and oversized messages, revocation that drops a live connection.

use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use warden_protocol::{AgentMessage, AgentState, PROTOCOL_VERSION, ServerMessage};
use warden_testkit::TestApp;

use crate::identity::admin_token;

pub(crate) use warden_testkit::protocol_host::{
    Ws, connect, hello, next, next_message, register, welcomed,
};

async fn api(app: &TestApp, token: &str, method: Method, path: &str, body: Option<Value>) -> Value {
    let mut req = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    assert!(res.status().is_success(), "{path}: {}", res.status());
    res.json().await.unwrap_or(Value::Null)
}

pub(crate) fn refusal_code(m: Option<ServerMessage>) -> String {
    match m {
        Some(ServerMessage::Refused { code, .. }) => code.as_str().to_owned(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn host(app: &TestApp, admin: &str, id: &str) -> Value {
    api(
        app,
        admin,
        Method::GET,
        &format!("/api/v1/hosts/{id}"),
        None,
    )
    .await
}

#[tokio::test]
async fn an_agent_says_hello_gets_a_welcome_and_is_online_until_it_leaves() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let (id, key) = register(&app, &admin).await;
    let (mut ws, welcome) = welcomed(&app, &key).await;
    let ServerMessage::Welcome {
        host_id,
        status,
        may_work,
        heartbeat_secs,
        ticket,
        protocol,
    } = welcome
    else {
        unreachable!()
    };
    assert_eq!(
        (host_id.as_str(), status.as_str(), may_work),
        (id.as_str(), "pending", false)
    );
    assert_eq!((protocol, heartbeat_secs), (PROTOCOL_VERSION, 20));
    assert!(ticket.starts_with("wht_"));
    let h = host(&app, &admin, &id).await;
    assert_eq!(h["online"], true);
    assert_eq!(h["hostname"], "agent-01.internal");
    ws.send(Message::text(
        AgentMessage::Heartbeat {
            state: AgentState::Idle,
        }
        .encode(),
    ))
    .await
    .unwrap();
    ws.close(None).await.unwrap();
    let mut offline = false;
    for _ in 0..200 {
        if host(&app, &admin, &id).await["online"] == false {
            offline = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(offline, "the host stays online after its agent left");
    let connected = crate::identity::audit_rows(&app, "host.connected").await;
    assert_eq!(connected.len(), 1);
    assert!(connected[0].summary.contains("websocket"));
}

#[tokio::test]
async fn a_reconnect_replaces_the_old_connection_and_is_counted_once() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let (id, key) = register(&app, &admin).await;
    let (mut first, welcome) = welcomed(&app, &key).await;
    let ServerMessage::Welcome { ticket, .. } = welcome else {
        unreachable!()
    };
    // The reconnect uses the ticket: no PBKDF2.
    let (_second, _) = welcomed(&app, &ticket).await;
    assert_eq!(refusal_code(next(&mut first).await), "replaced");
    assert!(
        next(&mut first).await.is_none(),
        "the replaced connection is closed"
    );
    assert_eq!(app.server.state().ctx.connections.count(), 1);
    assert_eq!(host(&app, &admin, &id).await["online"], true);
}

#[tokio::test]
async fn bad_messages_end_the_connection_with_a_reason_and_the_server_carries_on() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let (_, key) = register(&app, &admin).await;

    let mut ws = connect(&app, &key).await.unwrap();
    ws.send(hello(PROTOCOL_VERSION + 98)).await.unwrap();
    assert_eq!(refusal_code(next(&mut ws).await), "upgrade-required");

    for bad in [
        Message::text("{not json"),
        Message::text(r#"{"type":"launch","target":"prod"}"#),
        Message::text(r#"{"type":"heartbeat","state":"idle"}"#),
        Message::binary(vec![0u8; 16]),
    ] {
        let mut ws = connect(&app, &key).await.unwrap();
        ws.send(bad).await.unwrap();
        assert_eq!(refusal_code(next(&mut ws).await), "invalid-message");
    }
    // After the hello, too.
    let (mut ws, _) = welcomed(&app, &key).await;
    ws.send(Message::text(r#"{"type":"heartbeat","state":"dancing"}"#))
        .await
        .unwrap();
    assert_eq!(refusal_code(next(&mut ws).await), "invalid-message");

    // Oversized: the connection ends, nothing else does.
    let (mut ws, _) = welcomed(&app, &key).await;
    let huge = format!(
        r#"{{"type":"heartbeat","state":"{}"}}"#,
        "x".repeat(200 * 1024)
    );
    let _ = ws.send(Message::text(huge)).await;
    let mut ended = false;
    for _ in 0..3 {
        match next(&mut ws).await {
            None => {
                ended = true;
                break;
            }
            Some(ServerMessage::Refused { code, .. }) => {
                assert_eq!(code, warden_protocol::Refusal::MessageTooLarge)
            }
            Some(other) => panic!("{other:?}"),
        }
    }
    assert!(ended);
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let (_ws, _) = welcomed(&app, &key).await;
}

#[tokio::test]
async fn credentials_are_checked_before_the_upgrade_and_revocation_drops_a_live_connection() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let (id, key) = register(&app, &admin).await;
    for bad in ["", "whk_nonsense", admin.as_str()] {
        match connect(&app, bad).await {
            Err(WsError::Http(res)) => assert_eq!(res.status(), 401),
            other => panic!("{bad}: {:?}", other.map(|_| ())),
        }
    }
    // Rejection drops the connection at once.
    let (mut ws, _) = welcomed(&app, &key).await;
    api(
        &app,
        &admin,
        Method::POST,
        &format!("/api/v1/hosts/{id}/reject"),
        None,
    )
    .await;
    assert_eq!(refusal_code(next(&mut ws).await), "revoked");
    // So does deletion; afterwards neither the key nor a ticket opens a connection.
    let (mut ws, welcome) = welcomed(&app, &key).await;
    let ServerMessage::Welcome { ticket, .. } = welcome else {
        unreachable!()
    };
    api(
        &app,
        &admin,
        Method::DELETE,
        &format!("/api/v1/hosts/{id}"),
        None,
    )
    .await;
    assert_eq!(refusal_code(next(&mut ws).await), "revoked");
    for credential in [key.as_str(), ticket.as_str()] {
        match connect(&app, credential).await {
            Err(WsError::Http(res)) => assert_eq!(res.status(), 401),
            other => panic!("{:?}", other.map(|_| ())),
        }
    }
    assert_eq!(app.server.state().ctx.connections.count(), 0);
}

#[tokio::test]
async fn the_concurrent_host_cap_holds_across_three_nodes_and_a_reconnect_counts_once() {
    let cap = ("WARDEN_HOSTS_MAX_SESSION_HOSTS".to_owned(), "2".to_owned());
    let a = TestApp::spawn_with(warden_testkit::AppOptions {
        env: vec![cap.clone()],
        ..Default::default()
    })
    .await
    .unwrap();
    // Nodes b and c share node a's database and key.
    let node = || {
        let mut env = a.cluster_env();
        env.push(cap.clone());
        TestApp::spawn_with(warden_testkit::AppOptions {
            env,
            ..Default::default()
        })
    };
    let b = node().await.unwrap();
    let c = node().await.unwrap();
    let admin = admin_token(&a).await;
    let (_, first) = register(&a, &admin).await;
    let (_, second) = register(&a, &admin).await;
    let (_, third) = register(&a, &admin).await;
    let deploy = api(
        &a,
        &admin,
        Method::POST,
        "/api/v1/hosts",
        Some(json!({"name": "deploy-01", "kind": "deploy"})),
    )
    .await;
    let deploy = deploy["api_key"].as_str().unwrap().to_owned();

    // One session host through node c and one through node a fill the cap for all three.
    let (_on_c, _) = welcomed(&c, &third).await;
    let (mut on_a, _) = welcomed(&a, &first).await;
    let mut refused = connect(&b, &second).await.unwrap();
    refused.send(hello(PROTOCOL_VERSION)).await.unwrap();
    assert_eq!(refusal_code(next(&mut refused).await), "host-limit");
    // Other kinds have their own cap.
    let (_deploy_ws, _) = welcomed(&b, &deploy).await;
    // The same host reconnecting through node b takes its own place, not a second one;
    // its old connection on node a learns at its next heartbeat that it was replaced.
    let (on_b, _) = welcomed(&b, &first).await;
    on_a.send(Message::text(
        AgentMessage::Heartbeat {
            state: AgentState::Idle,
        }
        .encode(),
    ))
    .await
    .unwrap();
    assert_eq!(refusal_code(next(&mut on_a).await), "replaced");
    let mut refused = connect(&a, &second).await.unwrap();
    refused.send(hello(PROTOCOL_VERSION)).await.unwrap();
    assert_eq!(refusal_code(next(&mut refused).await), "host-limit");
    // Once it leaves, the place is free.
    drop(on_b);
    let mut admitted = false;
    for _ in 0..200 {
        let mut ws = connect(&a, &second).await.unwrap();
        ws.send(hello(PROTOCOL_VERSION)).await.unwrap();
        if matches!(next(&mut ws).await, Some(ServerMessage::Welcome { .. })) {
            admitted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        admitted,
        "the freed place was never given to the waiting host"
    );
}

#[tokio::test]
async fn deleting_rejecting_or_replacing_a_host_on_one_node_drops_its_connection_on_another_at_once()
 {
    let a = TestApp::spawn().await.unwrap();
    if a.db.backend != warden_store::Backend::Postgres {
        // Several nodes share PostgreSQL; the embedded SQLite default is one node.
        return;
    }
    let mut env = vec![("WARDEN_ENCRYPTION_KEY".to_owned(), a.master_key_hex.clone())];
    env.extend(a.db.env());
    let b = TestApp::spawn_with(warden_testkit::AppOptions {
        env,
        ..Default::default()
    })
    .await
    .unwrap();
    let admin = admin_token(&a).await;
    let (deleted, deleted_key) = register(&a, &admin).await;
    let (rejected, rejected_key) = register(&a, &admin).await;
    let (_, moving_key) = register(&a, &admin).await;

    // The agents never heartbeat here: only the change notice can end their connections
    // within the 10 s `next` waits (a heartbeat check would come after 20 s at the earliest).
    let (mut on_b, _) = welcomed(&b, &deleted_key).await;
    api(
        &a,
        &admin,
        Method::DELETE,
        &format!("/api/v1/hosts/{deleted}"),
        None,
    )
    .await;
    assert_eq!(refusal_code(next(&mut on_b).await), "revoked");

    let (mut on_a, _) = welcomed(&a, &rejected_key).await;
    api(
        &b,
        &admin,
        Method::POST,
        &format!("/api/v1/hosts/{rejected}/reject"),
        None,
    )
    .await;
    assert_eq!(refusal_code(next(&mut on_a).await), "revoked");

    let (mut first, _) = welcomed(&a, &moving_key).await;
    let (mut second, _) = welcomed(&b, &moving_key).await;
    assert_eq!(refusal_code(next(&mut first).await), "replaced");
    // The newer connection is unaffected.
    second
        .send(Message::text(
            AgentMessage::Heartbeat {
                state: AgentState::Idle,
            }
            .encode(),
        ))
        .await
        .unwrap();
    let quiet = tokio::time::timeout(std::time::Duration::from_millis(500), second.next()).await;
    assert!(quiet.is_err(), "the newer connection was ended: {quiet:?}");
}

/// A host reports only on sessions given to it: another host's reports on them are ignored,
/// whether sent alone or inside a burst of its own output. A burst of output sent back to
/// back (recorded together) keeps every chunk, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_reports_only_on_its_own_sessions_and_a_burst_of_output_keeps_its_order() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let ws_id = api(
        &app,
        &admin,
        Method::POST,
        "/api/v1/workspaces",
        Some(json!({"name": "Bursts"})),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api(
        &app,
        &admin,
        Method::PUT,
        &format!("/api/v1/workspaces/{ws_id}/settings"),
        Some(json!({"repository": "/srv/repositories/bursts"})),
    )
    .await;
    let mut hosts = Vec::new();
    for name in ["runner", "intruder"] {
        let created = api(
            &app,
            &admin,
            Method::POST,
            "/api/v1/hosts",
            Some(json!({"name": name, "kind": "session"})),
        )
        .await;
        let id = created["host"]["id"].as_str().unwrap().to_owned();
        api(
            &app,
            &admin,
            Method::POST,
            &format!("/api/v1/hosts/{id}/approve"),
            None,
        )
        .await;
        let (ws, _) = welcomed(&app, created["api_key"].as_str().unwrap()).await;
        hosts.push((id, ws));
    }
    let (intruder_id, mut intruder) = hosts.pop().unwrap();
    let (runner_id, mut runner) = hosts.pop().unwrap();
    let sessions = format!("/api/v1/workspaces/{ws_id}/sessions");
    let session = api(
        &app,
        &admin,
        Method::POST,
        &sessions,
        Some(json!({"provider": "command", "command": ["true"], "host_id": runner_id})),
    )
    .await;
    let sid = session["id"].as_str().unwrap().to_owned();
    assert!(matches!(
        next(&mut runner).await,
        Some(ServerMessage::StartSession { session_id, .. }) if session_id == sid
    ));
    let output = |seq: u64, data: String| {
        Message::text(
            AgentMessage::SessionOutput {
                session_id: sid.clone(),
                seq,
                stream: warden_protocol::Stream::Stdout,
                data,
            }
            .encode(),
        )
    };
    // The intruder claims the session, alone and in a burst.
    intruder
        .send(Message::text(
            AgentMessage::SessionStarted {
                session_id: sid.clone(),
                isolation: "none".into(),
            }
            .encode(),
        ))
        .await
        .unwrap();
    for seq in 0..5 {
        intruder
            .feed(output(1000 + seq, format!("forged-{seq}\n")))
            .await
            .unwrap();
    }
    intruder.flush().await.unwrap();

    // "Done" before it started is not a move the session may make (waiting never becomes
    // done): ignored, so the start below still applies and records its isolation.
    runner
        .send(Message::text(
            AgentMessage::SessionEnded {
                session_id: sid.clone(),
                seq: 0,
                status: warden_protocol::EndStatus::Done,
                exit_code: Some(0),
                error: None,
            }
            .encode(),
        ))
        .await
        .unwrap();
    runner
        .send(Message::text(
            AgentMessage::SessionStarted {
                session_id: sid.clone(),
                isolation: "landlock".into(),
            }
            .encode(),
        ))
        .await
        .unwrap();
    // 300 chunks back to back, with a report on an unknown session in the middle.
    // Line 7 carries a NUL, which PostgreSQL text cannot hold: it is stored replaced.
    let line = |seq: u64, nul: &str| {
        if seq == 7 {
            format!("line {seq:03}{nul}\n")
        } else {
            format!("line {seq:03}\n")
        }
    };
    for seq in 0..300u64 {
        runner.feed(output(seq, line(seq, "\0"))).await.unwrap();
        if seq == 150 {
            runner
                .feed(Message::text(
                    AgentMessage::SessionOutput {
                        session_id: "01234567-89ab-7def-8123-456789abcdef".into(),
                        seq: 0,
                        stream: warden_protocol::Stream::Stdout,
                        data: "nowhere\n".into(),
                    }
                    .encode(),
                ))
                .await
                .unwrap();
        }
    }
    let end = Message::text(
        AgentMessage::SessionEnded {
            session_id: sid.clone(),
            seq: 300,
            status: warden_protocol::EndStatus::Done,
            exit_code: Some(0),
            error: None,
        }
        .encode(),
    );
    runner.feed(end.clone()).await.unwrap();
    // Reported again, as an agent does after a reconnect when the confirmation was lost: the
    // start, some output and the end are already stored, and are neither stored nor audited
    // twice.
    runner
        .feed(Message::text(
            AgentMessage::SessionStarted {
                session_id: sid.clone(),
                isolation: "landlock".into(),
            }
            .encode(),
        ))
        .await
        .unwrap();
    for seq in 295..300u64 {
        runner.feed(output(seq, line(seq, "\0"))).await.unwrap();
    }
    runner.feed(end).await.unwrap();
    runner.flush().await.unwrap();

    let mut done = Value::Null;
    for _ in 0..200 {
        done = api(
            &app,
            &admin,
            Method::GET,
            &format!("{sessions}/{sid}"),
            None,
        )
        .await;
        if done["status"] == "done" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(
        done["isolation"], "landlock",
        "the intruder's report was ignored"
    );
    let page = api(
        &app,
        &admin,
        Method::GET,
        &format!("{sessions}/{sid}/output?limit=1000"),
        None,
    )
    .await;
    let chunks = page["chunks"].as_array().unwrap();
    assert_eq!(chunks.len(), 300, "{page}");
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c["seq"], i as u64);
        assert_eq!(c["data"], line(i as u64, "\u{FFFD}"));
    }
    let started = crate::identity::audit_rows(&app, "session.started").await;
    assert_eq!(started.len(), 1);
    assert_eq!(
        crate::identity::audit_rows(&app, "session.ended")
            .await
            .len(),
        1
    );
    assert_eq!(started[0].actor_id.as_deref(), Some(runner_id.as_str()));
    assert_ne!(started[0].actor_id.as_deref(), Some(intruder_id.as_str()));
    // Both connections are still up: ignoring a report is not a reason to drop a host.
    assert_eq!(app.server.state().ctx.connections.count(), 2);

    // The runner (protocol 3) was told what is stored: its start, its output through the last
    // chunk, its end — so an agent knows what to report again after losing a node. (A report
    // on a session it was not given is "recorded" too — ignored — the same answer whether the
    // session exists or not.)
    let mut told = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(
        std::time::Duration::from_millis(500),
        next_message(&mut runner),
    )
    .await
    {
        if let ServerMessage::Recorded {
            session_id,
            through,
            ended,
        } = m
            && session_id == sid
        {
            told.push((through, ended));
        }
    }
    assert!(told.contains(&(None, false)), "{told:?}");
    assert!(told.contains(&(None, true)), "{told:?}");
    let highest = told.iter().filter_map(|(t, _)| *t).max();
    assert_eq!(highest, Some(299), "{told:?}");
    let throughs: Vec<u64> = told.iter().filter_map(|(t, _)| *t).collect();
    assert!(throughs.windows(2).all(|w| w[0] <= w[1]), "{told:?}");
}

/// An agent of protocol 2 (before confirmations) is welcomed at its own version and never
/// sent a message it does not know.
#[tokio::test]
async fn an_agent_of_protocol_2_is_spoken_to_in_protocol_2() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let (id, key) = register(&app, &admin).await;
    api(
        &app,
        &admin,
        Method::POST,
        &format!("/api/v1/hosts/{id}/approve"),
        None,
    )
    .await;
    let mut ws = connect(&app, &key).await.unwrap();
    ws.send(hello(2)).await.unwrap();
    match next_message(&mut ws).await {
        Some(ServerMessage::Welcome { protocol, .. }) => assert_eq!(protocol, 2),
        other => panic!("no welcome: {other:?}"),
    }
    // A report on a session it was not given is ignored, and not confirmed to a version-2
    // agent (it would not understand the message).
    ws.send(Message::text(
        AgentMessage::SessionStarted {
            session_id: "01234567-89ab-7def-8123-456789abcdef".into(),
            isolation: "none".into(),
        }
        .encode(),
    ))
    .await
    .unwrap();
    let quiet = tokio::time::timeout(std::time::Duration::from_millis(500), ws.next()).await;
    assert!(quiet.is_err(), "a version-2 agent was sent {quiet:?}");
}
