//! This node's live agent connections, one per host, whatever carries them (the server's
//! WebSocket loop): how use cases reach a connected host (send it work, ask it something,
//! end its connection) without knowing the transport.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use uuid::Uuid;
use warden_protocol::{AgentMessage, Refusal, ServerMessage};

/// What a live connection's task is told.
#[derive(Debug)]
pub enum Signal {
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
#[derive(Debug, Default)]
pub struct Mailbox {
    queue: Mutex<VecDeque<Signal>>,
    notify: Notify,
}

impl Mailbox {
    /// Leaves a signal for the connection (an end replaces everything queued).
    pub fn put(&self, signal: Signal) {
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

    /// The next signal, waiting for one.
    pub async fn recv(&self) -> Signal {
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
    pub fn next_id(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Registers connection `conn` for `host`, replacing (and telling) any older one.
    pub fn register(&self, host: Uuid, conn: u64, protocol: u32) -> Arc<Mailbox> {
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
                Refusal::Replaced,
                "a newer connection of this host replaced this one",
            )));
        }
        mailbox
    }

    /// Forgets connection `conn` of `host`, unless a newer one replaced it.
    pub fn deregister(&self, host: Uuid, conn: u64) {
        if let Ok(mut m) = self.live.lock()
            && m.get(&host).is_some_and(|l| l.conn == conn)
        {
            m.remove(&host);
        }
    }

    /// Ends `host`'s connection on this node, telling the agent why.
    pub fn kick(&self, host: Uuid, code: Refusal, reason: &str) {
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
    pub fn answer(&self, host: Uuid, id: u64, answer: AgentMessage) {
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
