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

/// A user code for the device grant: `len` characters drawn uniformly from `alphabet` (by
/// rejection, so no character is likelier than another).
pub fn user_code(alphabet: &[u8], len: usize) -> Result<Zeroizing<String>, KeyringError> {
    let n = u8::try_from(alphabet.len()).map_err(|_| KeyringError::Random)?;
    // The largest multiple of n a byte can hold: bytes at or above it are drawn again.
    let limit = 256 - (256 % u16::from(n));
    let mut out = Zeroizing::new(String::with_capacity(len));
    while out.len() < len {
        let mut buf = [0u8; 32];
        aws_lc_rs::rand::fill(&mut buf).map_err(|_| KeyringError::Random)?;
        for b in buf {
            if u16::from(b) < limit && out.len() < len {
                out.push(char::from(alphabet[usize::from(b % n)]));
            }
        }
    }
    Ok(out)
}

/// The digits of the checked form, in order: `0-9A-Za-z`.
const BASE62: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// 32 bytes in base 62 take at most 43 digits.
const CHECKED_BODY: usize = 43;
/// A CRC-32 in base 62 takes at most 6 digits.
const CHECKED_SUM: usize = 6;
const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// Generates a secret in the *checked* form: `<prefix>` + 32 random bytes in base 62 (43
/// digits, zero-padded) + the CRC-32 of those digits in base 62 (6 digits). Secret scanners
/// recognise the prefix and confirm a find by its checksum, without asking Warden; Warden
/// refuses a mistyped one before any lookup.
pub fn issue_checked(prefix: &str) -> Result<Issued, KeyringError> {
    let mut bytes = Zeroizing::new([0u8; RANDOM_BYTES]);
    aws_lc_rs::rand::fill(&mut *bytes).map_err(|_| KeyringError::Random)?;
    let body = Zeroizing::new(padded(&base_x::encode(BASE62, &*bytes), CHECKED_BODY));
    let sum = padded(
        &base_x::encode(BASE62, &CRC32.checksum(body.as_bytes()).to_be_bytes()),
        CHECKED_SUM,
    );
    let secret = Zeroizing::new(format!("{prefix}{}{sum}", body.as_str()));
    let hash = hash(&secret);
    Ok(Issued { secret, hash })
}

fn padded(digits: &str, width: usize) -> String {
    format!("{}{digits}", "0".repeat(width.saturating_sub(digits.len())))
}

/// Whether `secret` has the shape of one [`issue_checked`] made with `prefix` and its
/// checksum matches, so mistyped or made-up input is refused before any lookup.
pub fn checked_well_formed(secret: &str, prefix: &str) -> bool {
    let Some(rest) = secret.strip_prefix(prefix) else {
        return false;
    };
    if rest.len() != CHECKED_BODY + CHECKED_SUM || !rest.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return false;
    }
    let (body, sum) = rest.split_at(CHECKED_BODY);
    let expected = padded(
        &base_x::encode(BASE62, &CRC32.checksum(body.as_bytes()).to_be_bytes()),
        CHECKED_SUM,
    );
    expected == sum
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

    #[test]
    fn user_codes_use_only_the_alphabet_and_every_letter_of_it() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let c = user_code(b"BCDFGHJKLMNPQRSTVWXZ", 8).unwrap();
            assert_eq!(c.len(), 8);
            assert!(c.bytes().all(|b| b"BCDFGHJKLMNPQRSTVWXZ".contains(&b)));
            seen.extend(c.bytes());
        }
        assert_eq!(seen.len(), 20);
    }

    #[test]
    fn checked_secrets_carry_a_checksum_that_catches_any_typo() {
        let a = issue_checked("wdn_pat_").unwrap();
        let b = issue_checked("wdn_pat_").unwrap();
        assert_ne!(*a.secret, *b.secret);
        assert_eq!(a.secret.len(), "wdn_pat_".len() + 49);
        assert!(checked_well_formed(&a.secret, "wdn_pat_"));
        assert!(!checked_well_formed(&a.secret, "wdn_llm_"));
        assert_eq!(hash(&a.secret), a.hash);
        // Any one character changed fails the checksum.
        let s = a.secret.as_str();
        for i in "wdn_pat_".len()..s.len() {
            let mut t = s.as_bytes().to_vec();
            t[i] = if t[i] == b'x' { b'y' } else { b'x' };
            let t = String::from_utf8(t).unwrap();
            assert!(!checked_well_formed(&t, "wdn_pat_"), "{i}");
        }
        assert!(!checked_well_formed("wdn_pat_", "wdn_pat_"));
        assert!(!checked_well_formed(
            &format!("{}=", &s[..s.len() - 1]),
            "wdn_pat_"
        ));
        // Many in a row: every one well formed (padding holds the length).
        for _ in 0..200 {
            let t = issue_checked("wdn_pat_").unwrap();
            assert!(checked_well_formed(&t.secret, "wdn_pat_"));
        }
    }
}
