//! A session marked lost while its host was away is the server's guess: the host, back, says
//! what really happened — it still runs the session (running again), or how it ended (that end
//! is recorded and audited). Only the session's own host can correct it.

use futures_util::SinkExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use warden_protocol::{AgentMessage, EndStatus, ServerMessage};
use warden_testkit::TestApp;
use warden_testkit::protocol_host::{Ws, next, register, welcomed};

use crate::identity::admin_token;

async fn api(app: &TestApp, token: &str, method: Method, path: &str, body: Option<Value>) -> Value {
    let (status, body) = app.call(token, method, path, body).await;
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

async fn say(ws: &mut Ws, message: AgentMessage) {
    ws.send(Message::text(message.encode())).await.unwrap();
}

async fn status_becomes(app: &TestApp, token: &str, path: &str, want: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..100 {
        last = api(app, token, Method::GET, path, None).await;
        if last["status"] == want {
            return last;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("status never became {want}: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_back_from_an_absence_corrects_the_sessions_marked_lost_and_only_it_can() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let ws_id = api(
        &app,
        &admin,
        Method::POST,
        "/api/v1/workspaces",
        Some(json!({"name": "Absences"})),
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
        Some(json!({"repository": "/srv/repositories/absences"})),
    )
    .await;
    let mut keys = Vec::new();
    for _ in 0..2 {
        let (id, key) = register(&app, &admin).await;
        api(
            &app,
            &admin,
            Method::POST,
            &format!("/api/v1/hosts/{id}/approve"),
            None,
        )
        .await;
        keys.push((id, key));
    }
    let (host_id, key) = keys[0].clone();
    let (_, intruder_key) = keys[1].clone();
    let (mut host, _) = welcomed(&app, &key).await;
    let sessions = format!("/api/v1/workspaces/{ws_id}/sessions");
    // Three sessions start on the host: one will end while it is away, one keeps running,
    // one it will no longer have.
    let mut ids = Vec::new();
    for _ in 0..3 {
        let sid = api(
            &app,
            &admin,
            Method::POST,
            &sessions,
            Some(json!({"provider": "command", "command": ["true"], "host_id": host_id})),
        )
        .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(matches!(
            next(&mut host).await,
            Some(ServerMessage::StartSession { session_id, .. }) if session_id == sid
        ));
        say(
            &mut host,
            AgentMessage::SessionStarted {
                session_id: sid.clone(),
                isolation: "landlock".into(),
            },
        )
        .await;
        status_becomes(&app, &admin, &format!("{sessions}/{sid}"), "running").await;
        ids.push(sid);
    }
    let (ended, still_running, gone) = (ids[0].clone(), ids[1].clone(), ids[2].clone());

    // The host goes away; the sweep (after three missed heartbeats) marks its sessions lost.
    host.close(None).await.unwrap();
    drop(host);
    let ctx = app.server.state().ctx.clone();
    let mut lost = 0;
    for _ in 0..100 {
        let now = warden_core::identity::now_us(ctx.clock.as_ref());
        lost += ctx
            .store
            .lose_sessions_of_absent_hosts(warden_core::hosts::connected_since(now), now)
            .await
            .unwrap();
        if lost == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(lost, 3);
    for sid in &ids {
        let s = api(
            &app,
            &admin,
            Method::GET,
            &format!("{sessions}/{sid}"),
            None,
        )
        .await;
        assert_eq!(s["status"], "lost", "{s}");
    }
    // Nobody but the host revives one: stopping a lost session is refused.
    let (status, body) = app
        .call(
            &admin,
            Method::POST,
            &format!("{sessions}/{ended}/stop"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // Another host claims the sessions run on it and reports an end: ignored.
    let (mut intruder, _) = welcomed(&app, &intruder_key).await;
    say(
        &mut intruder,
        AgentMessage::Running {
            session_ids: ids.clone(),
        },
    )
    .await;
    say(
        &mut intruder,
        AgentMessage::SessionEnded {
            session_id: gone.clone(),
            seq: 0,
            status: EndStatus::Done,
            exit_code: Some(0),
            error: None,
        },
    )
    .await;

    // The host, back: it still runs one, and reports again the end it had not had confirmed
    // (as the agent does after a reconnect, listing that session among those it runs).
    let (mut host, _) = welcomed(&app, &key).await;
    say(
        &mut host,
        AgentMessage::Running {
            session_ids: vec![ended.clone(), still_running.clone()],
        },
    )
    .await;
    say(
        &mut host,
        AgentMessage::SessionEnded {
            session_id: ended.clone(),
            seq: 12,
            status: EndStatus::Failed,
            exit_code: Some(3),
            error: Some("exit status 3".into()),
        },
    )
    .await;
    let done = status_becomes(&app, &admin, &format!("{sessions}/{ended}"), "failed").await;
    assert_eq!(done["exit_code"], 3, "{done}");
    let running = api(
        &app,
        &admin,
        Method::GET,
        &format!("{sessions}/{still_running}"),
        None,
    )
    .await;
    assert_eq!(running["status"], "running", "{running}");
    assert!(running["ended_at"].is_null(), "{running}");
    // The one it no longer runs stays lost, whatever the intruder said.
    let gone_now = api(
        &app,
        &admin,
        Method::GET,
        &format!("{sessions}/{gone}"),
        None,
    )
    .await;
    assert_eq!(gone_now["status"], "lost", "{gone_now}");
    assert!(gone_now["exit_code"].is_null(), "{gone_now}");

    // The revived session ends the usual way, and can be stopped meanwhile.
    api(
        &app,
        &admin,
        Method::POST,
        &format!("{sessions}/{still_running}/stop"),
        None,
    )
    .await;
    assert!(matches!(
        next(&mut host).await,
        Some(ServerMessage::StopSession { session_id }) if session_id == still_running
    ));
    say(
        &mut host,
        AgentMessage::SessionEnded {
            session_id: still_running.clone(),
            seq: 0,
            status: EndStatus::Canceled,
            exit_code: None,
            error: None,
        },
    )
    .await;
    status_becomes(
        &app,
        &admin,
        &format!("{sessions}/{still_running}"),
        "canceled",
    )
    .await;

    // The audit trail has the real end of the session that was lost, once.
    let ends = crate::identity::audit_rows(&app, "session.ended").await;
    let of_ended: Vec<_> = ends
        .iter()
        .filter(|e| e.resource_id.as_deref() == Some(ended.as_str()))
        .collect();
    assert_eq!(of_ended.len(), 1, "{ends:?}");
    assert!(of_ended[0].summary.contains("failed"), "{of_ended:?}");
    assert_eq!(of_ended[0].actor_id.as_deref(), Some(host_id.as_str()));
    assert!(
        !ends
            .iter()
            .any(|e| e.resource_id.as_deref() == Some(gone.as_str())),
        "{ends:?}"
    );
}
