//! Host session tickets: after a full key check (PBKDF2), a host gets a short-lived ticket
//! `wht_<payload>.<tag>` so that reconnecting (a server restart makes every host reconnect at
//! once) costs one HMAC and one indexed lookup instead of one PBKDF2 each. The payload names
//! the host, the key it proved and the expiry; the tag is HMAC-SHA256 under a server secret
//! that every node shares. A ticket only vouches for the key: the caller still checks that the
//! host exists, that the key is still one of its keys, its approval and its allow-list.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;

/// Every ticket starts with this.
pub const PREFIX: &str = "wht_";
const DOMAIN: &[u8] = b"warden.host_ticket.v1";
const PAYLOAD_LEN: usize = 16 + 16 + 8;

/// The key tickets are signed with.
pub struct TicketKey(hmac::Key);

impl std::fmt::Debug for TicketKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TicketKey([redacted])")
    }
}

impl TicketKey {
    /// A key from a server secret (32 random bytes).
    pub fn new(secret: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    fn tag(&self, payload: &[u8]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(DOMAIN);
        ctx.update(payload);
        ctx.sign()
    }
}

/// What a valid ticket says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The host's id (UUID bytes).
    pub host_id: [u8; 16],
    /// The key id it proved (32 hex characters).
    pub key_id: String,
    /// Expiry (µs since the epoch).
    pub expires_at: i64,
}

/// Issues a ticket. `key_id` is a host key id (32 hex characters); anything else yields
/// `None`.
pub fn issue(key: &TicketKey, host_id: [u8; 16], key_id: &str, expires_at: i64) -> Option<String> {
    let id_bytes = hex::decode(key_id).ok().filter(|b| b.len() == 16)?;
    let mut payload = Vec::with_capacity(PAYLOAD_LEN);
    payload.extend_from_slice(&host_id);
    payload.extend_from_slice(&id_bytes);
    payload.extend_from_slice(&expires_at.to_be_bytes());
    let tag = key.tag(&payload);
    Some(format!(
        "{PREFIX}{}.{}",
        B64URL.encode(&payload),
        B64URL.encode(tag.as_ref())
    ))
}

/// Checks a ticket's tag (in constant time) and expiry at `now` (µs).
pub fn verify(key: &TicketKey, text: &str, now: i64) -> Option<Ticket> {
    let rest = text.strip_prefix(PREFIX)?;
    if rest.len() > 128 {
        return None;
    }
    let (payload_b64, tag_b64) = rest.split_once('.')?;
    let payload = B64URL.decode(payload_b64).ok()?;
    let tag = B64URL.decode(tag_b64).ok()?;
    if payload.len() != PAYLOAD_LEN {
        return None;
    }
    let mut ctx_input = Vec::with_capacity(DOMAIN.len() + PAYLOAD_LEN);
    ctx_input.extend_from_slice(DOMAIN);
    ctx_input.extend_from_slice(&payload);
    hmac::verify(&key.0, &ctx_input, &tag).ok()?;
    let mut host_id = [0u8; 16];
    host_id.copy_from_slice(&payload[..16]);
    let key_id = hex::encode(&payload[16..32]);
    let mut exp = [0u8; 8];
    exp.copy_from_slice(&payload[32..]);
    let expires_at = i64::from_be_bytes(exp);
    (expires_at > now).then_some(Ticket {
        host_id,
        key_id,
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const KEY_ID: &str = "00112233445566778899aabbccddeeff";

    #[test]
    fn a_ticket_verifies_until_it_expires_and_only_under_its_key() {
        let key = TicketKey::new(&[7u8; 32]);
        let t = issue(&key, [1u8; 16], KEY_ID, 1_000).unwrap();
        assert!(t.starts_with("wht_"));
        let ok = verify(&key, &t, 999).unwrap();
        assert_eq!(ok.host_id, [1u8; 16]);
        assert_eq!(ok.key_id, KEY_ID);
        assert!(verify(&key, &t, 1_000).is_none(), "expired");
        assert!(
            verify(&TicketKey::new(&[8u8; 32]), &t, 0).is_none(),
            "other key"
        );
    }

    #[test]
    fn a_tampered_or_malformed_ticket_is_refused() {
        let key = TicketKey::new(&[7u8; 32]);
        let t = issue(&key, [1u8; 16], KEY_ID, i64::MAX).unwrap();
        // Another host id with the original tag.
        let other = issue(&key, [2u8; 16], KEY_ID, i64::MAX).unwrap();
        let forged = format!(
            "{}.{}",
            other.split_once('.').unwrap().0,
            t.split_once('.').unwrap().1
        );
        assert!(verify(&key, &forged, 0).is_none());
        for bad in [
            "",
            "wht_",
            "wht_.",
            "wht_abc.def",
            &t.replace("wht_", "whk_"),
            &format!("{t}x"),
        ] {
            assert!(verify(&key, bad, 0).is_none(), "{bad}");
        }
        assert!(issue(&key, [1u8; 16], "not-hex", 1).is_none());
    }
}
