//! A flood of host reconnects: one host's agent reconnecting in a tight loop from fifty
//! places at once (each new connection replaces the one before it), with its key and with its
//! session ticket, beside a flood of connections with wrong keys and a protocol message
//! nested 10,000 deep. Afterwards exactly one connection is live, the host is online through
//! it, and the server holds no more descriptors or memory than the one connection needs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::SinkExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use warden_protocol::{PROTOCOL_VERSION, ServerMessage};
use warden_testkit::protocol_host::{Ws, connect_at, hello, next};

use super::{MIB, Server};

/// Agents reconnecting at once, and how many times each.
const AGENTS: usize = 50;
const ROUNDS: usize = 40;
/// Connections presenting a wrong key.
const WRONG: usize = 500;
/// What the flood may add to the server's resident memory (measured: 1.5–1.7 MiB).
const RSS_BOUND_KIB: u64 = 32 * MIB;

/// Connects with `credential` (never refused) and says hello: the welcome's ticket, or `None` when a newer
/// connection replaced this one before its welcome.
async fn reconnect(url: &str, credential: &str) -> (Ws, Option<String>) {
    let mut ws = connect_at(url, credential)
        .await
        .unwrap_or_else(|e| panic!("a host reconnecting was refused: {e}"));
    ws.send(hello(PROTOCOL_VERSION)).await.unwrap();
    let ticket = match next(&mut ws).await {
        Some(ServerMessage::Welcome { ticket, .. }) => Some(ticket),
        _ => None,
    };
    (ws, ticket)
}

async fn online(server: &Server, host: &str) -> bool {
    let res = server
        .client
        .get(format!("{}/api/v1/hosts/{host}", server.url))
        .bearer_auth(&server.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = res.json().await.unwrap();
    v.get("host").unwrap_or(&v)["online"].as_bool().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_host_reconnects_leaves_one_live_connection_and_nothing_behind() {
    super::raise_own_open_files_limit();
    let Some(server) = Server::start(&[]).await else {
        return;
    };
    let server = Arc::new(server);
    let res = server
        .client
        .post(format!("{}/api/v1/hosts", server.url))
        .bearer_auth(&server.admin)
        .json(&json!({"name": "agent-01", "kind": "session"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    let host = created["host"]["id"].as_str().unwrap().to_owned();
    let key = created["api_key"].as_str().unwrap().to_owned();
    let (first, ticket) = reconnect(&server.url, &key).await;
    let ticket = ticket.expect("welcomed");
    drop(first);
    server.serves_healthy_clients("warm-up").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss0, fds0, sockets0) = server.usage();

    // Fifty agents of the same host reconnect forty times each, holding each connection
    // until the next: every tenth round with the key (no hello), the rest with the ticket.
    let welcomed = Arc::new(AtomicUsize::new(0));
    let agents = (0..AGENTS).map(|a| {
        let (url, key, ticket, welcomed) = (
            server.url.clone(),
            key.clone(),
            ticket.clone(),
            welcomed.clone(),
        );
        tokio::spawn(async move {
            let mut held = None;
            for round in 0..ROUNDS {
                if (a + round) % 10 == 0 {
                    // With the key: one check per key id at a time, so a parallel one is
                    // answered 429 (as a parallel guess would be); nothing else.
                    match connect_at(&url, &key).await {
                        Ok(ws) => held = Some(ws),
                        Err(e) => assert!(e.to_string().contains("429"), "{e}"),
                    }
                    continue;
                }
                let (ws, got) = reconnect(&url, &ticket).await;
                if got.is_some() {
                    welcomed.fetch_add(1, Ordering::Relaxed);
                }
                held = Some(ws);
            }
            drop(held);
        })
    });
    let agents = tokio::spawn(futures_util::future::join_all(agents));
    // Wrong keys, all at once beside them: each refused (401, then 429 once the failures
    // add up), none upgraded.
    // They come from another address: failures lock out the address they come from, so a
    // host behind it would be refused too.
    let wrong = (0..WRONG).map(|i| {
        let server = server.clone();
        tokio::spawn(async move {
            let stream = super::connect_from(&server, [127, 0, 33, 1]).await;
            let url = format!("{}/api/v1/agent/connect", server.url).replace("http://", "ws://");
            let mut req = url.into_client_request().unwrap();
            let forged = format!("Bearer whk_{i:032x}");
            req.headers_mut()
                .insert("authorization", forged.parse().unwrap());
            let refused = tokio_tungstenite::client_async(req, stream).await;
            refused.map(|_| ()).unwrap_err().to_string()
        })
    });
    let wrong = futures_util::future::join_all(wrong).await;
    for err in wrong {
        let err = err.unwrap();
        assert!(err.contains("401") || err.contains("429"), "{err}");
    }
    server.serves_healthy_clients("during the flood").await;
    for agent in agents.await.unwrap() {
        agent.unwrap();
    }
    let welcomes = welcomed.load(Ordering::Relaxed);
    assert!(welcomes > 0, "no reconnect was welcomed");

    // One last connection: the live one. Every replaced one has been closed by the server.
    let (mut live, got) = reconnect(&server.url, &ticket).await;
    assert!(got.is_some(), "the last reconnect was not welcomed");
    let sockets1 = server
        .settles_to(sockets0 + 1, Duration::from_secs(10))
        .await;
    let (rss1, fds1, _) = server.usage();
    eprintln!(
        "host flood: {} reconnects ({welcomes} welcomed), {WRONG} wrong keys: \
         RSS {rss0} → {rss1} KiB, descriptors {fds0} → {fds1}",
        AGENTS * ROUNDS
    );
    assert!(
        sockets1 <= sockets0 + 1,
        "sockets open with one host connected"
    );
    assert!(
        fds1 <= fds0 + super::DB_FILES,
        "{fds1} descriptors open ({fds0} before)"
    );
    assert!(
        rss1.saturating_sub(rss0) < RSS_BOUND_KIB,
        "the flood grew the server from {rss0} to {rss1} KiB"
    );
    assert!(
        online(&server, &host).await,
        "the host is not online through its live connection"
    );

    // A message nested 10,000 deep is refused and ends that connection, not the server.
    let deep = "{\"a\":".repeat(10_000) + "1" + &"}".repeat(10_000);
    live.send(Message::text(deep)).await.unwrap();
    let refused = next(&mut live).await;
    assert!(
        matches!(refused, Some(ServerMessage::Refused { .. })),
        "a 10,000-deep message was answered {refused:?}"
    );
    assert!(
        next(&mut live).await.is_none(),
        "the connection survived a 10,000-deep message"
    );
    let (live, got) = reconnect(&server.url, &ticket).await;
    assert!(got.is_some(), "reconnecting after the deep message");
    drop(live);
    server.serves_healthy_clients("after").await;
}
