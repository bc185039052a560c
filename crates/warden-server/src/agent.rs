//! The server side of agent connections: a host dials out over a WebSocket, authenticates
//! with its key or ticket (the access guard's host gate), says hello in the versioned
//! protocol (`warden-protocol`), then heartbeats. This node keeps one live connection per host:
//! a reconnect replaces the old connection, never counts twice; deleting or rejecting a host
//! drops its connection at once, on whichever node holds it: each node hears every host
//! change through PostgreSQL (LISTEN/NOTIFY, see [`spawn_watch`]) and checks its connection
//! of that host against the database, as it also does at every heartbeat.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::FutureExt;
use serde_json::json;
use tokio::sync::Notify;
use uuid::Uuid;
use warden_domain::audit::Outcome;
use warden_domain::hosts::{HostKind, HostStatus};
use warden_protocol::{AgentMessage, DecodeError, PROTOCOL_VERSION, SUPPORTED, ServerMessage};
use warden_store::hosts::Claim;
use warden_store::sessions::HostReport;

use crate::audit::request::RequestMeta;
use crate::hosts::HostCaller;
use crate::state::AppState;
use warden_core::identity::now_us;

/// How often agents heartbeat; a connection silent for three intervals is closed.
pub const HEARTBEAT: Duration = Duration::from_secs(20);
/// How long a new connection may take to say hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// What a live connection's task is told.
enum Signal {
    /// End the connection with this refusal.
    End(ServerMessage),
    /// Check against the database whether this connection still holds its host.
    Check,
    /// Send this to the agent (session work).
    Send(ServerMessage),
}

/// One connection's inbox. A `Notify` and a queue that allocates only when used, instead of a
/// channel: idle connections are the common case, and a channel's first block of slots would
/// cost each of them kilobytes. An end outranks everything queued.
#[derive(Default)]
struct Mailbox {
    queue: Mutex<VecDeque<Signal>>,
    notify: Notify,
}

impl Mailbox {
    fn put(&self, signal: Signal) {
        if let Ok(mut q) = self.queue.lock() {
            match signal {
                Signal::End(_) => {
                    q.clear();
                    q.push_back(signal);
                }
                Signal::Check
                    if q.iter()
                        .any(|s| matches!(s, Signal::Check | Signal::End(_))) => {}
                _ if q.iter().any(|s| matches!(s, Signal::End(_))) => {}
                _ => q.push_back(signal),
            }
        }
        self.notify.notify_one();
    }

    async fn recv(&self) -> Signal {
        loop {
            if let Some(s) = self.queue.lock().ok().and_then(|mut q| q.pop_front()) {
                return s;
            }
            self.notify.notified().await;
        }
    }
}

struct Live {
    conn: u64,
    protocol: u32,
    kick: Arc<Mailbox>,
}

/// An answer a handler waits for, and the host that must give it.
type Pending = (Uuid, tokio::sync::oneshot::Sender<AgentMessage>);

/// This node's live agent connections, one per host.
#[derive(Default)]
pub struct Connections {
    live: Mutex<HashMap<Uuid, Live>>,
    next: AtomicU64,
    pending: Mutex<HashMap<u64, Pending>>,
    next_request: AtomicU64,
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections")
            .field("live", &self.count())
            .finish()
    }
}

impl Connections {
    /// How many hosts are connected to this node.
    pub fn count(&self) -> usize {
        self.live.lock().map_or(0, |m| m.len())
    }

    /// A new connection number.
    fn next_id(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Registers connection `conn` for `host`, replacing (and telling) any older one.
    fn register(&self, host: Uuid, conn: u64, protocol: u32) -> Arc<Mailbox> {
        let mailbox = Arc::new(Mailbox::default());
        let tx = mailbox.clone();
        let old = self.live.lock().ok().and_then(|mut m| {
            m.insert(
                host,
                Live {
                    conn,
                    protocol,
                    kick: tx,
                },
            )
        });
        if let Some(old) = old {
            old.kick.put(Signal::End(ServerMessage::refused(
                "replaced",
                "a newer connection of this host replaced this one",
            )));
        }
        mailbox
    }

    fn deregister(&self, host: Uuid, conn: u64) {
        if let Ok(mut m) = self.live.lock()
            && m.get(&host).is_some_and(|l| l.conn == conn)
        {
            m.remove(&host);
        }
    }

    /// Ends `host`'s connection on this node, telling the agent why.
    pub fn kick(&self, host: Uuid, code: &str, reason: &str) {
        let live = self.live.lock().ok().and_then(|mut m| m.remove(&host));
        if let Some(live) = live {
            live.kick
                .put(Signal::End(ServerMessage::refused(code, reason)));
        }
    }

    /// Sends `msg` to `host`'s agent if it is connected to this node and runs sessions.
    pub fn send(&self, host: Uuid, msg: ServerMessage) -> bool {
        let Ok(m) = self.live.lock() else {
            return false;
        };
        match m.get(&host) {
            Some(live) if live.protocol >= warden_protocol::SESSIONS_SINCE => {
                live.kick.put(Signal::Send(msg));
                true
            }
            _ => false,
        }
    }

    /// Sends the request `build` makes (given its id) to `host`'s agent and returns where its
    /// answer will arrive; `None` when the host is not connected here.
    pub fn request(
        &self,
        host: Uuid,
        build: impl FnOnce(u64) -> ServerMessage,
    ) -> Option<tokio::sync::oneshot::Receiver<AgentMessage>> {
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = tokio::sync::oneshot::channel();
        if let Ok(mut p) = self.pending.lock() {
            p.insert(id, (host, tx));
        }
        if self.send(host, build(id)) {
            Some(rx)
        } else {
            self.forget(id);
            None
        }
    }

    /// Drops a pending request (answered, timed out, or never sent).
    pub fn forget(&self, id: u64) {
        if let Ok(mut p) = self.pending.lock() {
            p.remove(&id);
        }
    }

    /// Hands `answer` to whoever waits for request `id`, if `host` is the one asked.
    fn answer(&self, host: Uuid, id: u64, answer: AgentMessage) {
        let waiting = self.pending.lock().ok().and_then(|mut p| {
            if p.get(&id).is_some_and(|(h, _)| *h == host) {
                p.remove(&id)
            } else {
                None
            }
        });
        if let Some((_, tx)) = waiting {
            let _ = tx.send(answer);
        }
    }

    /// The hosts connected to this node whose agents run sessions.
    pub fn session_hosts(&self) -> Vec<Uuid> {
        self.live.lock().map_or_else(
            |_| Vec::new(),
            |m| {
                m.iter()
                    .filter(|(_, l)| l.protocol >= warden_protocol::SESSIONS_SINCE)
                    .map(|(h, _)| *h)
                    .collect()
            },
        )
    }

    /// Has `host`'s connection on this node, if any, check whether it still holds the host.
    pub fn check(&self, host: Uuid) {
        if let Ok(m) = self.live.lock()
            && let Some(live) = m.get(&host)
        {
            // A full channel already holds a signal that will make the task look.
            live.kick.put(Signal::Check);
        }
    }
}

/// Listens for host changes made on any node and has this node's connection of each changed
/// host check itself at once. On SQLite (one node) there is nothing to listen to: handlers
/// end local connections directly.
pub fn spawn_watch(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mine = format!("{}/", state.identity.node_id.simple());
        loop {
            let mut changes = match state.store.host_changes().await {
                Ok(Some(c)) => c,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for host changes; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            loop {
                match changes.next().await {
                    // A takeover by a connection of this node was handled when it registered.
                    Ok((_, Some(holder))) if holder.starts_with(&mine) => {}
                    Ok((host, _)) => state.connections.check(host),
                    Err(e) => {
                        tracing::warn!(error = %e, "host change listener failed; reconnecting");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        break;
                    }
                }
            }
        }
    })
}

/// Whether connection `node` still holds `host`, by the database: `Some(refusal)` when the host
/// is gone, connected anew elsewhere, or rejected since this connection began. Refreshes the
/// host's last-seen time when it does hold it.
async fn verdict(state: &AppState, host: &HostCaller, node: &str) -> Option<ServerMessage> {
    let beat = state
        .store
        .host_heartbeat(&host.grant, node, now_us(state.clock.as_ref()))
        .await;
    match beat {
        Ok(None) => Some(ServerMessage::refused(
            "revoked",
            "this host is no longer registered",
        )),
        Ok(Some((_, holder))) if holder.as_deref() != Some(node) => Some(ServerMessage::refused(
            "replaced",
            "a newer connection of this host replaced this one",
        )),
        Ok(Some((s, _)))
            if HostStatus::parse(&s) == Some(HostStatus::Rejected)
                && host.status != HostStatus::Rejected =>
        {
            Some(ServerMessage::refused("revoked", "this host was rejected"))
        }
        _ => None,
    }
}

/// Close codes (RFC 6455): 1008 policy, 1002 protocol error, 1009 too big, 1000 normal.
async fn refuse(socket: &mut WebSocket, close_code: u16, message: ServerMessage) {
    let reason = match &message {
        ServerMessage::Refused { code, .. } => code.clone(),
        _ => String::new(),
    };
    let _ = socket
        .send(Message::Text(Utf8Bytes::from(message.encode())))
        .await;
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: close_code,
            reason: Utf8Bytes::from(reason),
        })))
        .await;
}

fn invalid(e: &DecodeError) -> (u16, ServerMessage) {
    match e {
        DecodeError::TooLarge => (
            1009,
            ServerMessage::refused("message-too-large", "messages are at most 64 KiB"),
        ),
        DecodeError::Invalid => (
            1002,
            ServerMessage::refused("invalid-message", "not a message of this protocol version"),
        ),
    }
}

/// Runs one agent connection to its end.
pub async fn session(state: AppState, meta: RequestMeta, host: HostCaller, mut socket: WebSocket) {
    // 1. Hello, within the timeout, in a version this server speaks.
    let first = tokio::time::timeout(HELLO_TIMEOUT, socket.recv()).await;
    let hello = match first {
        Ok(Some(Ok(Message::Text(text)))) => AgentMessage::decode(text.as_str()),
        Ok(Some(Ok(_))) => Err(DecodeError::Invalid),
        Ok(Some(Err(_))) => Err(DecodeError::TooLarge),
        Ok(None) => return,
        Err(_) => {
            refuse(
                &mut socket,
                1008,
                ServerMessage::refused("hello-timeout", "say hello first"),
            )
            .await;
            return;
        }
    };
    let (protocol, hostname, os, agent_version) = match hello {
        Ok(AgentMessage::Hello {
            protocol,
            hostname,
            os,
            agent_version,
        }) => {
            if !SUPPORTED.contains(&protocol) {
                refuse(
                    &mut socket,
                    1008,
                    ServerMessage::refused(
                        "upgrade-required",
                        &format!(
                            "this server speaks protocol versions {}..={}; upgrade warden-agent",
                            SUPPORTED.start(),
                            SUPPORTED.end()
                        ),
                    ),
                )
                .await;
                return;
            }
            (protocol, hostname, os, agent_version)
        }
        Ok(_) => {
            let (code, msg) = invalid(&DecodeError::Invalid);
            refuse(&mut socket, code, msg).await;
            return;
        }
        Err(e) => {
            let (code, msg) = invalid(&e);
            refuse(&mut socket, code, msg).await;
            return;
        }
    };
    let field_ok = |v: &str| {
        !v.trim().is_empty() && v.chars().count() <= 200 && !v.chars().any(char::is_control)
    };
    if ![&hostname, &os, &agent_version].iter().all(|v| field_ok(v)) {
        let (code, msg) = invalid(&DecodeError::Invalid);
        refuse(&mut socket, code, msg).await;
        return;
    }

    // 2. Record it, register this connection (replacing an older one), welcome.
    let node = state.identity.node_id.simple().to_string();
    let recorded = record_connect(&state, &meta, &host, &hostname, &os, &agent_version).await;
    if !recorded {
        refuse(
            &mut socket,
            1008,
            ServerMessage::refused("revoked", "this host is no longer registered"),
        )
        .await;
        return;
    }
    // Claim a place under the concurrent-host cap of this kind (a reconnect of this host
    // takes its own place), then register locally, replacing an older connection here.
    let conn = state.connections.next_id();
    let node = format!("{node}/{conn}");
    let now = now_us(state.clock.as_ref());
    let fresh = i64::try_from((HEARTBEAT * 3).as_micros()).unwrap_or(i64::MAX);
    let configured = match host.kind {
        HostKind::Session => state.hosts.max_session_hosts,
        HostKind::Deploy => state.hosts.max_deploy_hosts,
    };
    let cap = state.license.host_cap(host.kind, configured);
    match state
        .store
        .claim_connection(
            &host.grant,
            host.kind.as_str(),
            &node,
            now,
            now - fresh,
            cap,
        )
        .await
    {
        Ok(Claim::Claimed(_)) => {}
        Ok(Claim::LimitReached) => {
            refuse(
                &mut socket,
                1008,
                ServerMessage::refused(
                    "host-limit",
                    "concurrent host limit reached; try again when a host of this kind disconnects",
                ),
            )
            .await;
            return;
        }
        Ok(Claim::Gone) | Err(_) => {
            refuse(
                &mut socket,
                1008,
                ServerMessage::refused("revoked", "this host is no longer registered"),
            )
            .await;
            return;
        }
    }
    let kicks = state.connections.register(host.host_id, conn, protocol);
    let connected_at = now_us(state.clock.as_ref());
    let ticket = crate::hosts::ticket_for(&state.host_tickets, state.clock.as_ref(), &host)
        .unwrap_or_default();
    let welcome = ServerMessage::Welcome {
        protocol: PROTOCOL_VERSION,
        host_id: host.host_id.to_string(),
        status: host.status.as_str().to_owned(),
        may_work: host.status.may_work(),
        heartbeat_secs: HEARTBEAT.as_secs(),
        ticket,
    };
    if socket
        .send(Message::Text(Utf8Bytes::from(welcome.encode())))
        .await
        .is_err()
    {
        state.connections.deregister(host.host_id, conn);
        return;
    }

    // 3. Heartbeats until the agent leaves, misbehaves, goes silent, or is kicked.
    // A frame read ahead while gathering a burst of output, handled next.
    let mut stash: Option<Option<Result<Message, axum::Error>>> = None;
    loop {
        let frame = if let Some(f) = stash.take() {
            Ok(f)
        } else {
            tokio::select! {
            signal = kicks.recv() => {
                let msg = match signal {
                    Signal::End(msg) => msg,
                    Signal::Check => match verdict(&state, &host, &node).await {
                        Some(msg) => msg,
                        None => continue,
                    },
                    Signal::Send(msg) => {
                        if socket.send(Message::Text(Utf8Bytes::from(msg.encode()))).await.is_err() {
                            break;
                        }
                        continue;
                    }
                };
                refuse(&mut socket, 1008, msg).await;
                break;
            }
            frame = tokio::time::timeout(HEARTBEAT * 3, socket.recv()) => frame,
            }
        };
        {
            {
                match frame {
                    Err(_) => {
                        refuse(
                            &mut socket,
                            1008,
                            ServerMessage::refused(
                                "heartbeat-timeout",
                                "no heartbeat for three intervals",
                            ),
                        )
                        .await;
                        break;
                    }
                    Ok(None) | Ok(Some(Ok(Message::Close(_)))) => break,
                    Ok(Some(Err(_))) => {
                        let (code, msg) = invalid(&DecodeError::TooLarge);
                        refuse(&mut socket, code, msg).await;
                        break;
                    }
                    Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
                    Ok(Some(Ok(Message::Binary(_)))) => {
                        let (code, msg) = invalid(&DecodeError::Invalid);
                        refuse(&mut socket, code, msg).await;
                        break;
                    }
                    Ok(Some(Ok(Message::Text(text)))) => {
                        match AgentMessage::decode(text.as_str()) {
                            Ok(AgentMessage::Heartbeat { .. }) => {
                                if let Some(msg) = verdict(&state, &host, &node).await {
                                    refuse(&mut socket, 1008, msg).await;
                                    break;
                                }
                            }
                            Ok(AgentMessage::Running { session_ids }) => {
                                let ids: Vec<Uuid> =
                                    session_ids.iter().filter_map(|s| s.parse().ok()).collect();
                                match state
                                    .store
                                    .reconcile_host_sessions(
                                        &host.grant,
                                        &ids,
                                        connected_at,
                                        now_us(state.clock.as_ref()),
                                    )
                                    .await
                                {
                                    Ok(0) => {}
                                    Ok(n) => {
                                        tracing::warn!(host = %host.host_id, sessions = n, "sessions lost: the host no longer runs them")
                                    }
                                    Err(e) => {
                                        tracing::warn!(error = %e, "cannot reconcile a host's sessions")
                                    }
                                }
                            }
                            Ok(AgentMessage::SessionStarted {
                                session_id,
                                isolation,
                            }) => {
                                crate::sessions::report(
                                    &state,
                                    &meta,
                                    &host,
                                    &session_id,
                                    HostReport::Started {
                                        isolation: &isolation,
                                    },
                                )
                                .await;
                            }
                            Ok(AgentMessage::SessionOutput {
                                session_id,
                                seq,
                                stream,
                                data,
                            }) => {
                                // Output comes in bursts: take what has already arrived with it
                                // and record it in one transaction.
                                let mut burst = vec![(session_id, seq, stream, data)];
                                let mut bytes = 0;
                                while burst.len() < OUTPUT_BURST && bytes < OUTPUT_BURST_BYTES {
                                    match socket.recv().now_or_never() {
                                        None => break,
                                        Some(Some(Ok(Message::Text(t)))) => {
                                            match AgentMessage::decode(t.as_str()) {
                                                Ok(AgentMessage::SessionOutput {
                                                    session_id,
                                                    seq,
                                                    stream,
                                                    data,
                                                }) => {
                                                    bytes += data.len();
                                                    burst.push((session_id, seq, stream, data));
                                                }
                                                _ => {
                                                    stash = Some(Some(Ok(Message::Text(t))));
                                                    break;
                                                }
                                            }
                                        }
                                        Some(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
                                        Some(other) => {
                                            stash = Some(other);
                                            break;
                                        }
                                    }
                                }
                                crate::sessions::report_output(&state, &host, &burst).await;
                            }
                            Ok(AgentMessage::SessionEnded {
                                session_id,
                                status,
                                exit_code,
                                error,
                                ..
                            }) => {
                                let status = match status.as_str() {
                                    "done" => "done",
                                    "canceled" => "canceled",
                                    _ => "failed",
                                };
                                crate::sessions::report(
                                    &state,
                                    &meta,
                                    &host,
                                    &session_id,
                                    HostReport::Ended {
                                        status,
                                        exit_code,
                                        error: error.as_deref(),
                                    },
                                )
                                .await;
                            }
                            Ok(answer @ AgentMessage::FileResponse { .. }) => {
                                if let AgentMessage::FileResponse { request_id, .. } = &answer {
                                    let id = *request_id;
                                    state.connections.answer(host.host_id, id, answer);
                                }
                            }
                            Ok(AgentMessage::Hello { .. }) => {
                                let (code, msg) = invalid(&DecodeError::Invalid);
                                refuse(&mut socket, code, msg).await;
                                break;
                            }
                            Err(e) => {
                                let (code, msg) = invalid(&e);
                                refuse(&mut socket, code, msg).await;
                                break;
                            }
                        }
                    }
                }
            }
        }
    }
    state.connections.deregister(host.host_id, conn);
    let now = now_us(state.clock.as_ref());
    // Its sessions are not lost yet: the agent may be back in a moment (or, after a server
    // restart, already connected elsewhere) and say it still runs them. The sweep
    // (`spawn_session_sweep`) marks them lost once the host stays away.
    let _ = state.store.host_disconnected(&host.grant, &node, now).await;
}

/// At most this many output chunks (and about this many bytes) are recorded together.
const OUTPUT_BURST: usize = 64;
const OUTPUT_BURST_BYTES: usize = 1 << 20;

/// Every heartbeat interval: sessions whose host has been away for three heartbeats (or was
/// deleted) are lost.
pub fn spawn_session_sweep(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(HEARTBEAT).await;
            let now = now_us(state.clock.as_ref());
            let away = i64::try_from((HEARTBEAT * 3).as_micros()).unwrap_or(i64::MAX);
            match state
                .store
                .lose_sessions_of_absent_hosts(now - away, now)
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::warn!(sessions = n, "sessions lost: their host went away"),
                Err(e) => tracing::warn!(error = %e, "cannot sweep sessions of absent hosts"),
            }
        }
    })
}

async fn record_connect(
    state: &AppState,
    meta: &RequestMeta,
    host: &HostCaller,
    hostname: &str,
    os: &str,
    agent_version: &str,
) -> bool {
    let ip = host.ip.to_string();
    let run = async {
        let mut tx = state.store.as_host(&host.grant).await?;
        let known = tx
            .record_hello(
                &host.grant,
                &warden_store::hosts::Hello {
                    hostname: hostname.trim(),
                    os: os.trim(),
                    agent_version: agent_version.trim(),
                    ip: &ip,
                    now: now_us(state.clock.as_ref()),
                },
            )
            .await?;
        if !known {
            return Ok::<bool, warden_store::StoreError>(false);
        }
        let mut event = meta.event(
            state.clock.now(),
            host.actor(),
            "host.connected",
            "host",
            Some(host.host_id.to_string()),
            Outcome::Success,
            json!({ "key_id": host.key_id, "status": host.status.as_str(), "via": "websocket",
                    "hostname": hostname.trim(), "agent_version": agent_version.trim() }),
        );
        event.client_ip = Some(host.ip);
        tx.record(&state.audit_key, &event).await?;
        tx.commit().await?;
        Ok(true)
    };
    match run.await {
        Ok(known) => known,
        Err(e) => {
            tracing::error!(error = %e, "cannot record an agent connection");
            false
        }
    }
}
