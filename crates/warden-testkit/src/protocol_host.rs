//! A host that speaks the agent protocol itself over the WebSocket — registered, approved and
//! welcomed — so a test or a benchmark sees exactly what the server sends a host (a session's
//! start, its environment) without running a real `warden-agent`.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use warden_protocol::{AgentMessage, PROTOCOL_VERSION, ServerMessage};

use crate::TestApp;

/// A host's connection.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Registers a session host as `admin`: its id and API key.
pub async fn register(app: &TestApp, admin: &str) -> (String, String) {
    let (status, created) = app
        .call(
            admin,
            Method::POST,
            "/api/v1/hosts",
            Some(json!({"name": "agent-01", "kind": "session"})),
        )
        .await;
    assert!(
        status.is_success(),
        "registering a host: {status} {created}"
    );
    (
        created["host"]["id"].as_str().unwrap().to_owned(),
        created["api_key"].as_str().unwrap().to_owned(),
    )
}

/// Opens the agent WebSocket with `credential`.
pub async fn connect(app: &TestApp, credential: &str) -> Result<Ws, WsError> {
    connect_at(&app.base, credential).await
}

/// [`connect`] to the server at `base` (`http://127.0.0.1:PORT`), which may be another process.
pub async fn connect_at(base: &str, credential: &str) -> Result<Ws, WsError> {
    let url = format!("{base}/api/v1/agent/connect").replace("http://", "ws://");
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {credential}").parse().unwrap(),
    );
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
}

/// The agent's hello for protocol version `protocol`.
pub fn hello(protocol: u32) -> Message {
    Message::text(
        AgentMessage::Hello {
            protocol,
            hostname: "agent-01.internal".into(),
            os: "Debian 12".into(),
            agent_version: "0.1.0".into(),
        }
        .encode(),
    )
}

/// The next protocol message other than a confirmation of what the host reported
/// (`Recorded`, which this host does not need), or `None` once the connection is closed.
pub async fn next(ws: &mut Ws) -> Option<ServerMessage> {
    next_within(ws, ANSWER_WITHIN).await
}

/// [`next`], waiting up to `limit` for it: for a host whose next work comes from something
/// slower than the server itself (a browser walking through the console).
pub async fn next_within(ws: &mut Ws, limit: std::time::Duration) -> Option<ServerMessage> {
    loop {
        match next_message_within(ws, limit).await {
            Some(ServerMessage::Recorded { .. }) => {}
            other => return other,
        }
    }
}

/// The next protocol message, whatever it is, or `None` once the connection is closed.
pub async fn next_message(ws: &mut Ws) -> Option<ServerMessage> {
    next_message_within(ws, ANSWER_WITHIN).await
}

/// How long a host waits for the server's next message before the test fails.
const ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

async fn next_message_within(ws: &mut Ws, limit: std::time::Duration) -> Option<ServerMessage> {
    loop {
        let frame = tokio::time::timeout(limit, ws.next())
            .await
            .unwrap_or_else(|_| panic!("the server answers within {limit:?}"));
        match frame {
            Some(Ok(Message::Text(t))) => return Some(ServerMessage::decode(t.as_str()).unwrap()),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

/// Connects with `credential`, says hello and reads the welcome.
pub async fn welcomed(app: &TestApp, credential: &str) -> (Ws, ServerMessage) {
    let mut ws = connect(app, credential).await.unwrap();
    ws.send(hello(PROTOCOL_VERSION)).await.unwrap();
    let welcome = next(&mut ws).await.unwrap();
    assert!(
        matches!(welcome, ServerMessage::Welcome { .. }),
        "{welcome:?}"
    );
    (ws, welcome)
}

/// Registers, approves and connects a host for `admin`: its id and connection.
pub async fn ready(app: &TestApp, admin: &str) -> (String, Ws) {
    let (host_id, api_key) = register(app, admin).await;
    let (status, _) = app
        .call(
            admin,
            Method::POST,
            &format!("/api/v1/hosts/{host_id}/approve"),
            None,
        )
        .await;
    assert!(status.is_success(), "approving the host: {status}");
    let (ws, _) = welcomed(app, &api_key).await;
    (host_id, ws)
}
