//! The agent heartbeats at the interval the welcome names whatever the server sends meanwhile:
//! a server confirming a busy session's output many times a second must still hear from the
//! host (it counts a host as online by its heartbeats). Against a small WebSocket server that
//! welcomes with a one-second interval and then sends a confirmation every 50 ms.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use warden_protocol::{AgentMessage, PROTOCOL_VERSION, ServerMessage};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_keep_their_interval_while_the_server_sends_all_the_time() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        // The hello.
        let hello = ws.next().await.unwrap().unwrap();
        assert!(hello.to_text().unwrap().contains("\"hello\""));
        let welcome = ServerMessage::Welcome {
            protocol: PROTOCOL_VERSION,
            host_id: "01234567-89ab-7def-8123-456789abcdef".into(),
            status: "approved".into(),
            may_work: true,
            heartbeat_secs: 1,
            ticket: "wht_test".into(),
        };
        ws.send(Message::text(welcome.encode())).await.unwrap();
        let start = Instant::now();
        let mut beats = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        while start.elapsed() < Duration::from_millis(3_500) {
            tokio::select! {
                _ = tick.tick() => {
                    let busy = ServerMessage::Recorded {
                        session_id: "01234567-89ab-7def-8123-456789abcdef".into(),
                        through: Some(1),
                        ended: false,
                    };
                    ws.send(Message::text(busy.encode())).await.unwrap();
                }
                frame = ws.next() => {
                    let Some(Ok(Message::Text(t))) = frame else { break };
                    if matches!(AgentMessage::decode(t.as_str()), Ok(AgentMessage::Heartbeat { .. })) {
                        beats.push(start.elapsed());
                    }
                }
            }
        }
        beats
    });
    let target = warden_agent::connection::Target::new(&format!("http://{addr}"), None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let runner = Arc::new(warden_agent::work::Runner::new(
        dir.path().to_path_buf(),
        std::path::PathBuf::from("/bin/false"),
        None,
    ));
    let agent = tokio::spawn(async move {
        let _ = warden_agent::connection::run(&target, "whk_test", false, runner).await;
    });
    let beats = server.await.unwrap();
    agent.abort();
    // One a second: at about 1, 2 and 3 s, though the server never paused for one.
    assert!(beats.len() >= 3, "heartbeats at {beats:?}");
}
