//! Bots over HTTP, on a host speaking the agent protocol: messages answered one at a time in
//! order, each turn's prompt carrying the instructions and the conversation so far, the
//! session's output becoming the answer; who may make a bot and talk to it.

use futures_util::SinkExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use warden_protocol::{AgentMessage, EndStatus, ServerMessage, Stream};
use warden_testkit::TestApp;
use warden_testkit::protocol_host::{self, Ws};

use crate::identity::{admin_token, audit_rows};
use crate::llm::{member_with_role, workspace};

async fn started(host: &mut Ws) -> (String, Vec<String>) {
    started_within(host, std::time::Duration::from_secs(10)).await
}

/// [`started`], waiting up to `limit` for the session.
async fn started_within(host: &mut Ws, limit: std::time::Duration) -> (String, Vec<String>) {
    loop {
        match protocol_host::next_within(host, limit).await {
            Some(ServerMessage::StartSession {
                session_id, argv, ..
            }) => return (session_id, argv),
            Some(_) => {}
            None => panic!("the host's connection closed"),
        }
    }
}

/// The host answers a session: it says `answer` on standard output and ends.
async fn answer(host: &mut Ws, session: &str, answer: &str) {
    for m in [
        AgentMessage::SessionStarted {
            session_id: session.to_owned(),
            isolation: "none".into(),
        },
        AgentMessage::SessionOutput {
            session_id: session.to_owned(),
            seq: 0,
            stream: Stream::Stdout,
            data: answer.to_owned(),
        },
        AgentMessage::SessionEnded {
            session_id: session.to_owned(),
            seq: 1,
            status: EndStatus::Done,
            exit_code: Some(0),
            error: None,
        },
    ] {
        host.send(Message::text(m.encode())).await.unwrap();
    }
}

async fn conversation(app: &TestApp, token: &str, ws: &str, bot: &str) -> Value {
    let (s, v) = app
        .call(
            token,
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/bots/{bot}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_answers_its_messages_one_at_a_time_in_order_keeping_the_conversation() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let ws = workspace(&app, &admin, "bots").await;
    let member = member_with_role(&app, &admin, &ws, "member").await;
    let viewer = member_with_role(&app, &admin, &ws, "viewer").await;
    let (_, mut host) = crate::mcp::ready_host(&app, &admin, &ws).await;
    let make = json!({"name": "Release helper", "provider": "claude-code",
                      "instructions": "You answer questions about releases."});
    let (s, _) = app
        .call(
            &member,
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/bots"),
            Some(make.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "members do not make bots");
    let (s, bot) = app
        .call(
            &admin,
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/bots"),
            Some(make.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{bot}");
    let (s, v) = app
        .call(
            &admin,
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/bots"),
            Some(make),
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("bot-exists"))
    );
    let bid = bot["id"].as_str().unwrap().to_owned();
    let say = |token: String, text: &'static str| {
        let app = &app;
        let path = format!("/api/v1/workspaces/{ws}/bots/{bid}/messages");
        async move {
            app.call(&token, Method::POST, &path, Some(json!({"message": text})))
                .await
        }
    };
    let (s, _) = say(viewer.clone(), "hello?").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a viewer cannot talk to a bot");
    // Two messages at once: the second waits for the first's answer.
    let (s, first) = say(member.clone(), "How do I cut a release?").await;
    assert_eq!(s, StatusCode::ACCEPTED, "{first}");
    let (s, _) = say(member.clone(), "And how do I roll one back?").await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (one, argv) = started(&mut host).await;
    let prompt = argv.last().unwrap().clone();
    assert!(
        prompt.starts_with("You answer questions about releases."),
        "{prompt}"
    );
    assert!(
        prompt.ends_with("User: How do I cut a release?"),
        "{prompt}"
    );
    // Nothing else starts while the first is being answered.
    let early =
        tokio::time::timeout(std::time::Duration::from_millis(700), started(&mut host)).await;
    assert!(
        early.is_err(),
        "a second turn started before the first ended"
    );
    answer(&mut host, &one, "Run make release.").await;
    let (two, argv) = started(&mut host).await;
    let prompt = argv.last().unwrap();
    assert!(
        prompt.contains("User: How do I cut a release?\nYou: Run make release.")
            && prompt.ends_with("User: And how do I roll one back?"),
        "the conversation is kept: {prompt}"
    );
    answer(
        &mut host,
        &two,
        "{\"type\":\"result\",\"result\":\"Revert the tag.\"}\n",
    )
    .await;
    let mut convo = Value::Null;
    for _ in 0..100 {
        convo = conversation(&app, &viewer, &ws, &bid).await;
        if convo["messages"][1]["status"] == "answered" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let messages = convo["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["answer"], "Run make release.");
    assert_eq!(messages[1]["answer"], "Revert the tag.");
    assert_eq!(messages[0]["session_id"], one.as_str());
    assert_eq!(audit_rows(&app, "bot.message_received").await.len(), 2);
    assert_eq!(audit_rows(&app, "bot.message_answered").await.len(), 2);
    // Its sessions act for its maker, in bot mode.
    let (_, s) = app
        .call(
            &admin,
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/sessions/{one}"),
            None,
        )
        .await;
    assert_eq!(s["mode"], "bot");
    // Its worktree is closed once the answer is in: the conversation lives in Warden.
    assert!(s["archived_at"].is_string(), "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhooks_deliveries_are_messages_to_the_bot_its_source_names() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let ws = workspace(&app, &admin, "bot-hooks").await;
    let (_, mut host) = crate::mcp::ready_host(&app, &admin, &ws).await;
    let (_, bot) = app
        .call(&admin, Method::POST, &format!("/api/v1/workspaces/{ws}/bots"),
              Some(json!({"name": "Triage", "provider": "codex", "instructions": "Triage incoming alerts."})))
        .await;
    let bid = bot["id"].as_str().unwrap().to_owned();
    let (s, created) = app
        .call(
            &admin,
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/event-sources"),
            Some(json!({"name": "alerts", "kind": "generic"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let sid = created["source"]["id"].as_str().unwrap();
    let url = created["url"].as_str().unwrap().to_owned();
    let link = format!("/api/v1/workspaces/{ws}/event-sources/{sid}/bot");
    let (s, v) = app
        .call(&admin, Method::PUT, &link, Some(json!({"bot_id": bid})))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let res = app
        .client
        .post(&url)
        .body(r#"{"alert":"disk full on db-2"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (session, argv) = started(&mut host).await;
    let prompt = argv.last().unwrap();
    assert!(
        prompt.starts_with("Triage incoming alerts.") && prompt.contains("disk full on db-2"),
        "{prompt}"
    );
    answer(&mut host, &session, "Page the on-call DBA.").await;
    let mut convo = Value::Null;
    for _ in 0..100 {
        convo = conversation(&app, &admin, &ws, &bid).await;
        if convo["messages"][0]["status"] == "answered" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(convo["messages"][0]["channel"], "webhook");
    assert_eq!(convo["messages"][0]["answer"], "Page the on-call DBA.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_whose_session_is_canceled_before_it_starts_fails_and_the_bot_goes_on() {
    let app = TestApp::spawn().await.unwrap();
    let admin = admin_token(&app).await;
    let ws = workspace(&app, &admin, "bot-sweep").await;
    let (_, mut host) = crate::mcp::ready_host(&app, &admin, &ws).await;
    let (_, bot) = app
        .call(
            &admin,
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/bots"),
            Some(json!({"name": "Helper", "provider": "codex", "instructions": "Help."})),
        )
        .await;
    let bid = bot["id"].as_str().unwrap().to_owned();
    for text in ["first", "second"] {
        let (s, _) = app
            .call(
                &admin,
                Method::POST,
                &format!("/api/v1/workspaces/{ws}/bots/{bid}/messages"),
                Some(json!({"message": text})),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED);
    }
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
    // The sweep ends the first; the second then gets its turn (and fails: no host is left).
    for _ in 0..200 {
        let c = conversation(&app, &admin, &ws, &bid).await;
        if c["messages"][0]["status"] == "failed" && c["messages"][1]["status"] == "failed" {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{}", conversation(&app, &admin, &ws, &bid).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_chromium_a_bot_is_made_written_to_and_answers() {
    if crate::browser::skipped() {
        return;
    }
    let (app, public) = crate::browser::console_app(&[]).await;
    let admin = admin_token(&app).await;
    let ws = workspace(&app, &admin, "Console bots").await;
    let (_, mut host) = crate::mcp::ready_host(&app, &admin, &ws).await;
    // The host answers the first turn it is given, once the browser (launched, signed in,
    // checking every page) has got that far: minutes on a busy machine, not the usual 10 s.
    let answering = tokio::spawn(async move {
        let (session, argv) = started_within(&mut host, std::time::Duration::from_secs(300)).await;
        answer(&mut host, &session, "Run make release, then push the tag.").await;
        (argv, host)
    });
    let summary = crate::browser::walk("bots.mjs", &public, &[("WORKSPACE", &ws)], 4).await;
    let (argv, _host) = answering.await.unwrap();
    assert!(
        argv.last()
            .unwrap()
            .ends_with("User: How do I cut a release?"),
        "{argv:?}"
    );
    assert!(
        summary["tabs"].as_array().unwrap().contains(&json!("Bots")),
        "{summary}"
    );
    let convo = summary["conversation"].as_str().unwrap();
    assert!(
        convo.contains("How do I cut a release?")
            && convo.contains("Run make release, then push the tag."),
        "{summary}"
    );
}
