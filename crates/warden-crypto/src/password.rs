//! Password hashing: argon2id with OWASP's parameters (19 MiB, 2 passes, 1 lane), stored in
//! the PHC string format so that stronger parameters can be introduced later and old hashes
//! still verify.

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::KeyringError;

const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;
/// Memory cost in KiB (OWASP Password Storage Cheat Sheet, argon2id option 2).
pub const M_COST: u32 = 19 * 1024;
/// Passes.
pub const T_COST: u32 = 2;
/// Lanes.
pub const P_COST: u32 = 1;
/// Longest password accepted, in bytes: argon2 is fed the whole input, so a limit keeps a
/// megabyte "password" from costing more than a normal one.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A stored password hash could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// The stored string is not an argon2id PHC string this build understands.
    #[error("the stored password hash is malformed")]
    Malformed,
    /// The password is longer than [`MAX_PASSWORD_BYTES`].
    #[error("the password is too long")]
    TooLong,
    /// Randomness or hashing failed.
    #[error("password hashing failed")]
    Hashing,
}

impl From<KeyringError> for PasswordError {
    fn from(_: KeyringError) -> Self {
        Self::Hashing
    }
}

fn hasher(m: u32, t: u32, p: u32) -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(m, t, p, Some(HASH_LEN)).map_err(|_| PasswordError::Malformed)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// The most memory a stored hash may ask for (KiB): a stored string naming more is refused as
/// malformed rather than allocated.
const MAX_M_COST: u32 = 256 * 1024;

/// Working memory for argon2 (19 MiB at today's parameters), reused from one computation to
/// the next so that a busy server does not allocate and fragment it per sign-in. Wiped after
/// each use.
pub struct Scratch(Vec<argon2::Block>);

impl std::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scratch({} KiB)", self.0.len())
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl Scratch {
    /// Empty; it grows to what the first computation needs.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    fn blocks(&mut self, m: u32) -> &mut [argon2::Block] {
        let n = usize::try_from(m).unwrap_or(0);
        self.0.resize(n, argon2::Block::default());
        &mut self.0
    }

    fn wipe(&mut self) {
        self.0.fill(argon2::Block::default());
    }
}

/// Hashes `password` with a fresh random salt. Returns a PHC string.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    hash_in(password, &mut Scratch::new())
}

/// [`hash`], in the given working memory.
pub fn hash_in(password: &str, scratch: &mut Scratch) -> Result<String, PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    let mut salt = [0u8; SALT_LEN];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| PasswordError::Hashing)?;
    let mut out = Zeroizing::new([0u8; HASH_LEN]);
    let done = hasher(M_COST, T_COST, P_COST)?.hash_password_into_with_memory(
        password.as_bytes(),
        &salt,
        &mut *out,
        scratch.blocks(M_COST),
    );
    scratch.wipe();
    done.map_err(|_| PasswordError::Hashing)?;
    Ok(format!(
        "$argon2id$v=19$m={M_COST},t={T_COST},p={P_COST}${}${}",
        B64.encode(salt),
        B64.encode(*out)
    ))
}

/// Whether `password` matches the PHC string `stored`. Compares in constant time.
pub fn verify(password: &str, stored: &str) -> Result<bool, PasswordError> {
    verify_in(password, stored, &mut Scratch::new())
}

/// [`verify`], in the given working memory.
pub fn verify_in(
    password: &str,
    stored: &str,
    scratch: &mut Scratch,
) -> Result<bool, PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Ok(false);
    }
    let parsed = parse(stored)?;
    if parsed.m > MAX_M_COST {
        return Err(PasswordError::Malformed);
    }
    let mut out = Zeroizing::new(vec![0u8; parsed.hash.len()]);
    let done = hasher(parsed.m, parsed.t, parsed.p)?.hash_password_into_with_memory(
        password.as_bytes(),
        &parsed.salt,
        &mut out,
        scratch.blocks(parsed.m),
    );
    scratch.wipe();
    done.map_err(|_| PasswordError::Hashing)?;
    Ok(bool::from(out.as_slice().ct_eq(&parsed.hash)))
}

/// Spends the same time as [`verify`] against a real hash, for a sign-in whose account does
/// not exist, so the answer's timing does not tell whether it does.
pub fn verify_dummy(password: &str) {
    verify_dummy_in(password, &mut Scratch::new());
}

/// [`verify_dummy`], in the given working memory.
pub fn verify_dummy_in(password: &str, scratch: &mut Scratch) {
    static DUMMY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if let Some(stored) = DUMMY
        .get_or_init(|| hash("warden dummy password for timing").ok())
        .as_deref()
    {
        let _ = verify_in(password, stored, scratch);
    }
}

/// Whether a stored hash uses weaker parameters than today's and should be replaced at the
/// next successful sign-in.
pub fn needs_rehash(stored: &str) -> bool {
    parse(stored).is_ok_and(|p| p.m < M_COST || p.t < T_COST)
}

struct Parsed {
    m: u32,
    t: u32,
    p: u32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

fn parse(stored: &str) -> Result<Parsed, PasswordError> {
    let mut parts = stored.split('$');
    let (Some(""), Some("argon2id"), Some("v=19"), Some(params), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(PasswordError::Malformed);
    };
    let (mut m, mut t, mut p) = (None, None, None);
    for kv in params.split(',') {
        let (k, v) = kv.split_once('=').ok_or(PasswordError::Malformed)?;
        let v: u32 = v.parse().map_err(|_| PasswordError::Malformed)?;
        match k {
            "m" => m = Some(v),
            "t" => t = Some(v),
            "p" => p = Some(v),
            _ => return Err(PasswordError::Malformed),
        }
    }
    let salt = B64.decode(salt).map_err(|_| PasswordError::Malformed)?;
    let hash = B64.decode(hash).map_err(|_| PasswordError::Malformed)?;
    if salt.len() < 8 || hash.len() < 16 || hash.len() > 64 {
        return Err(PasswordError::Malformed);
    }
    Ok(Parsed {
        m: m.ok_or(PasswordError::Malformed)?,
        t: t.ok_or(PasswordError::Malformed)?,
        p: p.ok_or(PasswordError::Malformed)?,
        salt,
        hash,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_and_nothing_else() {
        let stored = hash("correct horse battery staple").unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify("correct horse battery staple", &stored).unwrap());
        assert!(!verify("correct horse battery stapl", &stored).unwrap());
        assert!(!verify("", &stored).unwrap());
    }

    #[test]
    fn two_hashes_of_one_password_differ_by_salt() {
        assert_ne!(
            hash("same password 123").unwrap(),
            hash("same password 123").unwrap()
        );
    }

    #[test]
    fn malformed_stored_hashes_are_errors_not_matches() {
        for bad in [
            "",
            "plain",
            "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=19456,t=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=19456,t=2,p=1$!!$aGFzaGhhc2hoYXNoaGFzaA",
        ] {
            assert_eq!(verify("x", bad), Err(PasswordError::Malformed), "{bad}");
        }
    }

    #[test]
    fn an_overlong_password_is_refused_not_hashed() {
        let long = "a".repeat(MAX_PASSWORD_BYTES + 1);
        assert_eq!(hash(&long), Err(PasswordError::TooLong));
        let stored = hash("short enough pw").unwrap();
        assert!(!verify(&long, &stored).unwrap());
    }

    #[test]
    fn one_scratch_serves_many_computations_and_absurd_memory_costs_are_refused() {
        let mut scratch = Scratch::new();
        let stored = hash_in("first password 1", &mut scratch).unwrap();
        assert!(verify_in("first password 1", &stored, &mut scratch).unwrap());
        assert!(!verify_in("other password 2", &stored, &mut scratch).unwrap());
        // A hash with other (older) parameters needs another amount of memory.
        let mut out = [0u8; HASH_LEN];
        hasher(4096, 1, 1)
            .unwrap()
            .hash_password_into(b"old password 3", b"saltsaltsalt", &mut out)
            .unwrap();
        let weak = format!(
            "$argon2id$v=19$m=4096,t=1,p=1${}${}",
            B64.encode(b"saltsaltsalt"),
            B64.encode(out)
        );
        assert!(verify_in("old password 3", &weak, &mut scratch).unwrap());
        assert!(!verify_in("x", &weak, &mut scratch).unwrap());
        assert!(verify_in("first password 1", &stored, &mut scratch).unwrap());
        let huge = "$argon2id$v=19$m=4000000,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
        assert_eq!(
            verify_in("x", huge, &mut scratch),
            Err(PasswordError::Malformed)
        );
    }

    #[test]
    fn weaker_parameters_are_flagged_for_rehash() {
        let stored = hash("some password 1").unwrap();
        assert!(!needs_rehash(&stored));
        let weak = stored.replace("m=19456", "m=4096");
        assert!(needs_rehash(&weak));
    }
}
