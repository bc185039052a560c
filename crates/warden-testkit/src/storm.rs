//! Many hosts at once, for the reconnect-storm benchmarks (`host_storm`, `cluster_storm`):
//! approved hosts registered directly in the database with their session tickets already
//! minted (a harness shortcut: one PBKDF2 key shared by all, each its own key id), and a
//! host's connection that says hello and waits for the welcome.

#![allow(clippy::unwrap_used)]

use anyhow::{Context as _, Result};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use warden_crypto::{MasterKey, host_key, host_ticket};
use warden_domain::clock::{Clock, SystemClock};
use warden_protocol::{AgentMessage, PROTOCOL_VERSION, ServerMessage};
use warden_store::Store;
use warden_store::hosts::{NewHost, StoredKey};

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Registers `n` approved session hosts in `store` (whose keyring `master` opens, made by a
/// server already) and returns a valid session ticket for each.
pub async fn approved_hosts(store: &Store, master: &MasterKey, n: usize) -> Result<Vec<String>> {
    let ring = warden_store::keyring::load_or_create(store, master, &SystemClock).await?;
    let secret =
        warden_store::keyring::random_server_secret(store, &ring, &SystemClock, "host_ticket_key")
            .await?;
    let tickets_key = host_ticket::TicketKey::new(&secret);
    let shared = host_key::generate()?;
    let now = i64::try_from(SystemClock.now().unix_timestamp_nanos() / 1000)?;
    let mut tickets = Vec::with_capacity(n);
    let mut tx = store.hosts_as_system().await?;
    for i in 0..n {
        let id = uuid::Uuid::now_v7();
        let key_id = format!("{i:032x}");
        tx.all_hosts()
            .insert(&NewHost {
                id,
                name: &format!("storm-{i}"),
                kind: "session",
                allow_list: "",
                key: StoredKey {
                    key_id: &key_id,
                    salt: &shared.salt,
                    hash: &shared.hash,
                },
                created_by: id,
                now,
            })
            .await?;
        tx.all_hosts().decide(id, "approved", id, now).await?;
        tickets.push(
            host_ticket::issue(&tickets_key, *id.as_bytes(), &key_id, now + 3_600_000_000)
                .context("ticket")?,
        );
    }
    tx.commit().await?;
    Ok(tickets)
}

/// A host's WebSocket.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects to the agent endpoint `url` (`ws://…/api/v1/agent/connect`) with `ticket`, says
/// hello and waits for the welcome: the open connection, or `None` when refused.
pub async fn connect(url: String, ticket: String) -> Option<Ws> {
    let mut req = url.into_client_request().ok()?;
    req.headers_mut()
        .insert("authorization", format!("Bearer {ticket}").parse().ok()?);
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.ok()?;
    let hello = AgentMessage::Hello {
        protocol: PROTOCOL_VERSION,
        hostname: "storm".into(),
        os: "Linux".into(),
        agent_version: "bench".into(),
    };
    ws.send(Message::text(hello.encode())).await.ok()?;
    while let Some(Ok(frame)) = ws.next().await {
        if let Message::Text(t) = frame {
            return match ServerMessage::decode(t.as_str()) {
                Ok(ServerMessage::Welcome { .. }) => Some(ws),
                _ => None,
            };
        }
    }
    None
}
