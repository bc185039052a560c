//! Reconnect storm and idle-connection memory (BENCHMARKS.md, hosts): starts `warden serve`
//! (release, embedded SQLite), registers N approved hosts directly in its database (one
//! PBKDF2 key shared by all, each its own key id: a harness shortcut), mints each host's
//! session ticket with the server's own ticket secret, restarts the server, then connects all
//! N hosts at once with their tickets and times until every one is welcomed. With every
//! connection still open it reports the server's resident memory.
//!
//! `host_storm PATH_TO_WARDEN N`
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use warden_crypto::{MasterKey, host_key, host_ticket};
use warden_domain::clock::{Clock, SystemClock};
use warden_protocol::{AgentMessage, PROTOCOL_VERSION, ServerMessage};
use warden_store::hosts::{NewHost, StoredKey};
use warden_store::{ConnectOptions, Store};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start(
    warden: &str,
    dir: &std::path::Path,
    key: &str,
    port: u16,
) -> Result<tokio::process::Child> {
    let child = tokio::process::Command::new(warden)
        .arg("serve")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .env("WARDEN_DATA_DIR", dir)
        .env("WARDEN_ENCRYPTION_KEY", key)
        .env("WARDEN_LOG_LEVEL", "error")
        // Every simulated host connects from 127.0.0.1.
        .env("WARDEN_HTTP_MAX_CONNECTIONS", "20000")
        .env("WARDEN_HTTP_MAX_CONNECTIONS_PER_IP", "20000")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    for _ in 0..400 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(child);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    bail!("warden did not start")
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: String, ticket: String) -> Option<Ws> {
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

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let warden = args.next().context("PATH_TO_WARDEN")?;
    let n: usize = args.next().context("N")?.parse()?;
    let dir = tempfile::tempdir()?;
    let master = MasterKey::generate()?;
    let key_hex = master.to_hex().to_string();
    let port = free_port();

    let mut server = start(&warden, dir.path(), &key_hex, port).await?;
    let url = format!("sqlite://{}", dir.path().join("warden.db").display());
    let store = Store::connect(&ConnectOptions::new(url)).await?;
    let ring = warden_store::keyring::load_or_create(&store, &master, &SystemClock).await?;
    let secret =
        warden_store::keyring::random_server_secret(&store, &ring, &SystemClock, "host_ticket_key")
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
    store.close().await;

    // Restart: stop (and wait for) the old server, start a new one on the same port.
    server.kill().await?;
    let server = start(&warden, dir.path(), &key_hex, port).await?;
    let pid = server.id().context("pid")?;
    let rss_before = rss_mib(pid);
    let url = format!("ws://127.0.0.1:{port}/api/v1/agent/connect");
    let t0 = Instant::now();
    let tasks: Vec<_> = tickets
        .into_iter()
        .map(|t| tokio::spawn(connect(url.clone(), t)))
        .collect();
    let mut held = Vec::with_capacity(n);
    let mut failed = 0;
    for t in tasks {
        match t.await {
            Ok(Some(ws)) => held.push(ws),
            _ => failed += 1,
        }
    }
    let elapsed = t0.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = rss_mib(pid);
    println!(
        "{n} hosts reconnecting at once after a restart: all done in {:.2} s ({} welcomed, {failed} failed)",
        elapsed.as_secs_f64(),
        held.len()
    );
    println!(
        "server resident memory: {rss_before:.1} MiB after restart, {rss:.1} MiB with {} connected hosts",
        held.len()
    );
    drop(held);
    drop(server);
    Ok(())
}
