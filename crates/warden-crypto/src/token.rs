//! Opaque bearer secrets (refresh tokens, setup links): 256 random bits, shown once, stored
//! only as their SHA-256. A prefix names the kind so secret scanners can recognise a leak.

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use zeroize::Zeroizing;

use crate::KeyringError;

const RANDOM_BYTES: usize = 32;
/// Length of a [`hash`].
pub const HASH_LEN: usize = 32;

/// A freshly generated secret: give `secret` to the client, store `hash`.
pub struct Issued {
    /// The secret, `<prefix><43 base64url characters>`.
    pub secret: Zeroizing<String>,
    /// Its SHA-256.
    pub hash: [u8; HASH_LEN],
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Issued([redacted])")
    }
}

/// Generates a secret starting with `prefix`.
pub fn issue(prefix: &str) -> Result<Issued, KeyringError> {
    let mut bytes = Zeroizing::new([0u8; RANDOM_BYTES]);
    aws_lc_rs::rand::fill(&mut *bytes).map_err(|_| KeyringError::Random)?;
    let secret = Zeroizing::new(format!("{prefix}{}", B64URL.encode(*bytes)));
    let hash = hash(&secret);
    Ok(Issued { secret, hash })
}

/// The SHA-256 of a presented secret, to look it up by. The secrets carry 256 bits of
/// entropy, so a fast hash is enough: there is nothing to brute-force.
pub fn hash(secret: &str) -> [u8; HASH_LEN] {
    let d = digest::digest(&digest::SHA256, secret.as_bytes());
    let mut out = [0u8; HASH_LEN];
    out.copy_from_slice(d.as_ref());
    out
}

/// Whether `secret` has the shape of one [`issue`] made with `prefix`, so malformed input is
/// refused before any lookup.
pub fn well_formed(secret: &str, prefix: &str) -> bool {
    secret.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == 43
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn issued_secrets_are_unique_well_formed_and_hash_to_what_is_stored() {
        let a = issue("wrt_").unwrap();
        let b = issue("wrt_").unwrap();
        assert_ne!(*a.secret, *b.secret);
        assert!(well_formed(&a.secret, "wrt_"));
        assert!(!well_formed(&a.secret, "wst_"));
        assert_eq!(hash(&a.secret), a.hash);
        assert_ne!(a.hash, b.hash);
        assert!(!well_formed("wrt_short", "wrt_"));
        assert!(!format!("{a:?}").contains(a.secret.as_str()));
    }
}
