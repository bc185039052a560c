//! Host API keys: `whk_<key id>_<secret>`, shown once. The key id (128 random bits, hex) is
//! public and finds the host in one indexed lookup, so verification cost does not grow with
//! the number of hosts; the secret (256 random bits, base64url) is stored only as
//! PBKDF2-HMAC-SHA256 with 100,000 iterations, a 16-byte random salt and a 32-byte output, and
//! compared in constant time (`aws_lc_rs::pbkdf2::verify`).

use std::num::NonZeroU32;

use aws_lc_rs::pbkdf2;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use zeroize::Zeroizing;

use crate::KeyringError;

/// Every host key starts with this, so secret scanners can recognise a leaked one.
pub const PREFIX: &str = "whk_";
/// PBKDF2 iterations.
pub const ITERATIONS: u32 = 100_000;
/// Salt length in bytes.
pub const SALT_LEN: usize = 16;
/// Derived hash length in bytes.
pub const HASH_LEN: usize = 32;
const KEY_ID_BYTES: usize = 16;
const SECRET_BYTES: usize = 32;
const KEY_ID_CHARS: usize = KEY_ID_BYTES * 2;
const SECRET_CHARS: usize = 43;

fn iterations() -> NonZeroU32 {
    NonZeroU32::MIN.saturating_add(ITERATIONS - 1)
}

/// A new key: give `key` to the host operator once; store `key_id`, `salt` and `hash`.
pub struct NewKey {
    /// The whole key, `whk_<key id>_<secret>`.
    pub key: Zeroizing<String>,
    /// The public key id (32 hex characters).
    pub key_id: String,
    /// PBKDF2 salt.
    pub salt: [u8; SALT_LEN],
    /// PBKDF2-HMAC-SHA256 of the secret.
    pub hash: [u8; HASH_LEN],
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// Generates a key. Costs one PBKDF2 derivation.
pub fn generate() -> Result<NewKey, KeyringError> {
    let mut id = [0u8; KEY_ID_BYTES];
    let mut secret = Zeroizing::new([0u8; SECRET_BYTES]);
    let mut salt = [0u8; SALT_LEN];
    aws_lc_rs::rand::fill(&mut id).map_err(|_| KeyringError::Random)?;
    aws_lc_rs::rand::fill(&mut *secret).map_err(|_| KeyringError::Random)?;
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| KeyringError::Random)?;
    let key_id = hex::encode(id);
    let secret_text = Zeroizing::new(B64URL.encode(*secret));
    let mut hash = [0u8; HASH_LEN];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations(),
        &salt,
        secret_text.as_bytes(),
        &mut hash,
    );
    let key = Zeroizing::new(format!("{PREFIX}{key_id}_{}", secret_text.as_str()));
    Ok(NewKey {
        key,
        key_id,
        salt,
        hash,
    })
}

/// A presented key, split. `Debug` never shows the secret.
pub struct Presented<'a> {
    /// The key id.
    pub key_id: &'a str,
    secret: &'a str,
}

impl std::fmt::Debug for Presented<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presented")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// Splits a presented key, refusing anything not shaped exactly like one [`generate`] makes
/// (so malformed input costs no lookup and no PBKDF2).
pub fn parse(key: &str) -> Option<Presented<'_>> {
    let rest = key.strip_prefix(PREFIX)?;
    if rest.len() != KEY_ID_CHARS + 1 + SECRET_CHARS || !rest.is_char_boundary(KEY_ID_CHARS) {
        return None;
    }
    let (key_id, tail) = rest.split_at(KEY_ID_CHARS);
    let secret = tail.strip_prefix('_')?;
    let id_ok = key_id
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let secret_ok = secret
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then_some(Presented { key_id, secret })
}

/// Whether `presented`'s secret matches the stored salt and hash, in constant time. Costs one
/// PBKDF2 derivation (100,000 iterations): run it off the async workers.
pub fn verify(presented: &Presented<'_>, salt: &[u8], hash: &[u8]) -> bool {
    pbkdf2::verify(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations(),
        salt,
        presented.secret.as_bytes(),
        hash,
    )
    .is_ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_generated_key_parses_and_verifies_and_nothing_else_does() {
        let k = generate().unwrap();
        assert!(k.key.starts_with("whk_"));
        assert_eq!(k.key.len(), 4 + 32 + 1 + 43);
        let p = parse(&k.key).unwrap();
        assert_eq!(p.key_id, k.key_id);
        assert!(verify(&p, &k.salt, &k.hash));
        assert!(!format!("{p:?}").contains(p.secret));
        assert!(!format!("{k:?}").contains(k.key.as_str()));

        // Same key id, another secret.
        let other = generate().unwrap();
        let forged = format!("whk_{}_{}", k.key_id, &other.key[4 + 32 + 1..]);
        assert!(!verify(&parse(&forged).unwrap(), &k.salt, &k.hash));
        // The right secret against another salt.
        assert!(!verify(&p, &other.salt, &k.hash));
        // One character flipped.
        let mut flipped = k.key.to_string();
        let last = flipped.pop().unwrap();
        flipped.push(if last == 'A' { 'B' } else { 'A' });
        assert!(!verify(&parse(&flipped).unwrap(), &k.salt, &k.hash));
    }

    #[test]
    fn malformed_keys_are_refused_before_any_work() {
        let k = generate().unwrap();
        for bad in [
            String::new(),
            "whk_".to_owned(),
            k.key.replace("whk_", "wrt_"),
            format!("{}x", k.key.as_str()),
            k.key[..k.key.len() - 1].to_owned(),
            k.key.replacen('_', "-", 2),
            format!("whk_{}_{}", "G".repeat(32), "a".repeat(43)),
            format!("whk_{}_{}", "a".repeat(32), "é".repeat(21)),
            format!("whk_{}_{}", "A".repeat(32), "a".repeat(43)),
        ] {
            assert!(parse(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn keys_are_unique() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a.key_id, b.key_id);
        assert_ne!(a.salt, b.salt);
        assert_ne!(a.key.as_str(), b.key.as_str());
    }
}
