//! The node-to-node envelope: a relayed message sealed with the keyring every node of one
//! installation shares (AES-256-GCM), bound to the node it is for, fresh for
//! [`MAX_AGE_US`], and accepted once. Whoever lacks the keyring can neither read one (a start
//! carries a session's secrets) nor make one; a captured one is refused when replayed, sent to
//! another node, or kept past its age.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use uuid::Uuid;
use warden_crypto::{Context, Keyring};
use warden_protocol::{AgentMessage, ServerMessage};

/// How old an envelope may be when it arrives (and how far ahead of the receiver's clock).
pub const MAX_AGE_US: i64 = 30_000_000;

/// What one node asks another: deliver `message` to `host`, and with `ask`, wait for the
/// host's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Relay {
    /// The node it is for.
    pub to: Uuid,
    /// When it was sealed (µs).
    pub sent_at: i64,
    /// Random, once per envelope.
    pub nonce: String,
    /// The host to reach.
    pub host: Uuid,
    /// What to send it.
    pub message: ServerMessage,
    /// Whether to wait for its answer (a request carrying a `request_id`).
    pub ask: bool,
}

/// What the other node did.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delivered {
    /// Whether the host was connected there and the message went to it.
    pub sent: bool,
    /// The host's answer, when one was asked for and came.
    pub answer: Option<AgentMessage>,
    /// `timeout` when the host did not answer in time.
    pub error: Option<String>,
}

/// Why an envelope was refused. Never says more than which rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Not sealed with this installation's keyring, altered, or for another node.
    #[error("not a node-to-node message for this node")]
    Sealed,
    /// Older (or further ahead) than [`MAX_AGE_US`].
    #[error("the node-to-node message is too old")]
    Stale,
    /// Seen before.
    #[error("the node-to-node message was already used")]
    Replayed,
}

fn request_context(to: Uuid) -> Context {
    Context::new("warden.cluster.relay").with(to.as_bytes())
}

fn answer_context(nonce: &str) -> Context {
    Context::new("warden.cluster.relay_answer").with(nonce)
}

/// A fresh nonce (128 random bits, hex).
pub fn nonce() -> String {
    let mut bytes = [0u8; 16];
    // The system generator failing leaves zeros; the envelope is then refused as replayed
    // after its first use, never accepted twice.
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    hex::encode(bytes)
}

/// Seals a relay for its node.
pub fn seal(keyring: &Keyring, relay: &Relay) -> Result<Vec<u8>, String> {
    let json = serde_json::to_vec(relay).map_err(|e| e.to_string())?;
    keyring
        .seal(&request_context(relay.to), &json)
        .map_err(|e| e.to_string())
}

/// Seals the answer to the relay that carried `nonce`.
pub fn seal_answer(keyring: &Keyring, nonce: &str, d: &Delivered) -> Result<Vec<u8>, String> {
    let json = serde_json::to_vec(d).map_err(|e| e.to_string())?;
    keyring
        .seal(&answer_context(nonce), &json)
        .map_err(|e| e.to_string())
}

/// Opens the answer to the relay that carried `nonce`.
pub fn open_answer(keyring: &Keyring, nonce: &str, sealed: &[u8]) -> Result<Delivered, String> {
    let plain = keyring
        .open(&answer_context(nonce), sealed)
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&plain).map_err(|e| e.to_string())
}

/// The nonces this node accepted while they could still be fresh.
#[derive(Debug, Default)]
pub struct Seen {
    nonces: Mutex<HashMap<String, i64>>,
}

impl Seen {
    /// Opens an envelope for node `me` at `now` (µs): refused unless sealed for `me`, fresh,
    /// and never seen before.
    pub fn open(
        &self,
        keyring: &Keyring,
        me: Uuid,
        now: i64,
        sealed: &[u8],
    ) -> Result<Relay, Refused> {
        let plain = keyring
            .open(&request_context(me), sealed)
            .map_err(|_| Refused::Sealed)?;
        let relay: Relay = serde_json::from_slice(&plain).map_err(|_| Refused::Sealed)?;
        if relay.to != me {
            return Err(Refused::Sealed);
        }
        if (now - relay.sent_at).abs() > MAX_AGE_US {
            return Err(Refused::Stale);
        }
        let mut seen = self
            .nonces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Forget what can no longer be fresh (at most a minute's worth is kept).
        seen.retain(|_, at| now - *at <= 2 * MAX_AGE_US);
        if seen.insert(relay.nonce.clone(), relay.sent_at).is_some() {
            return Err(Refused::Replayed);
        }
        Ok(relay)
    }
}
