//! The keyring: AES-256-GCM encryption of secrets at rest under versioned data keys.
//!
//! Two levels. The master key (`WARDEN_ENCRYPTION_KEY`, 32 bytes) never encrypts secrets; it
//! only wraps the data keys, which are stored wrapped in the database. Each secret's ciphertext
//! names the data-key version that sealed it, so keys can rotate without re-encrypting
//! everything at once, and a wrong master key is detected at boot (the data keys do not unwrap).
//!
//! Ciphertext layout: `0x01 | version (u32, big endian) | nonce (12 bytes) | ciphertext | tag (16)`.
//! The first five bytes are authenticated together with the caller's [`Context`], so changing
//! the version, the context or any byte makes decryption fail.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::RwLock;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use zeroize::{Zeroize, Zeroizing};

const FORMAT_V1: u8 = 0x01;
const HEADER_LEN: usize = 1 + 4;
const TAG_LEN: usize = 16;
/// Length in bytes of every key in the keyring.
pub const KEY_LEN: usize = 32;
/// The version number the master key uses inside its own wrapping of data keys.
const MASTER_WRAP_VERSION: u32 = 0;

/// Where a ciphertext belongs. It is authenticated with the ciphertext (AEAD associated data),
/// so a ciphertext copied to another row, column or tenant does not decrypt.
///
/// Built from a purpose and any number of parts; each part is length-prefixed, so
/// `("ab", "c")` and `("a", "bc")` are different contexts.
#[derive(Clone, PartialEq, Eq)]
pub struct Context(Vec<u8>);

impl Context {
    /// A context for secrets of one kind, e.g. `"workspace.env"`.
    pub fn new(purpose: &str) -> Self {
        let mut ctx = Self(Vec::with_capacity(64));
        ctx.push(purpose.as_bytes());
        ctx
    }

    /// Adds one identifying part, e.g. a workspace id or a variable name.
    #[must_use]
    pub fn with(mut self, part: impl AsRef<[u8]>) -> Self {
        self.push(part.as_ref());
        self
    }

    fn push(&mut self, part: &[u8]) {
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(part);
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Context({} bytes)", self.0.len())
    }
}

/// Why a master key was refused. Messages never contain the key itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MasterKeyError {
    /// The text is not 64 characters long.
    #[error("must be 64 hexadecimal characters (32 bytes); found {found} characters")]
    WrongLength {
        /// How many characters were given.
        found: usize,
    },
    /// The text has the right length but is not hexadecimal.
    #[error("must contain only hexadecimal characters 0-9 and a-f")]
    NotHex,
}

/// The 32-byte master key that wraps the data keys. Zeroized on drop, never printed.
pub struct MasterKey(Zeroizing<[u8; KEY_LEN]>);

impl MasterKey {
    /// Parses 64 hexadecimal characters (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<Self, MasterKeyError> {
        let text = text.trim();
        if text.len() != KEY_LEN * 2 {
            return Err(MasterKeyError::WrongLength {
                found: text.chars().count(),
            });
        }
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        hex::decode_to_slice(text, bytes.as_mut()).map_err(|_| MasterKeyError::NotHex)?;
        Ok(Self(bytes))
    }

    /// A fresh random master key from the operating system's generator.
    pub fn generate() -> Result<Self, KeyringError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(bytes.as_mut())?;
        Ok(Self(bytes))
    }

    /// The key as 64 lowercase hex characters, for writing a key file. Handle with care.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0.as_ref()))
    }

    fn aead(&self) -> Result<LessSafeKey, KeyringError> {
        aead_key(self.0.as_ref())
    }

    /// Wraps a data key for storage.
    pub fn wrap(&self, version: u32, key: &DataKey) -> Result<WrappedDataKey, KeyringError> {
        let sealed = seal_with(
            &self.aead()?,
            MASTER_WRAP_VERSION,
            &wrap_context(version),
            key.0.as_ref(),
        )?;
        Ok(WrappedDataKey(sealed))
    }

    /// Unwraps a stored data key. Fails with [`KeyringError::WrongMasterKey`] when this is not
    /// the master key that wrapped it (or the stored bytes were altered).
    pub fn unwrap_key(&self, version: u32, wrapped: &[u8]) -> Result<DataKey, KeyringError> {
        let plain = open_with(&self.aead()?, &wrap_context(version), wrapped, |v| {
            (v == MASTER_WRAP_VERSION).then_some(())
        })
        .map_err(|_| KeyringError::WrongMasterKey { version })?;
        let bytes: [u8; KEY_LEN] = plain
            .as_slice()
            .try_into()
            .map_err(|_| KeyringError::WrongMasterKey { version })?;
        Ok(DataKey(Zeroizing::new(bytes)))
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

fn wrap_context(version: u32) -> Context {
    Context::new("warden.keyring.data_key").with(version.to_be_bytes())
}

/// A data key in the clear, in memory only. Zeroized on drop, never printed.
pub struct DataKey(Zeroizing<[u8; KEY_LEN]>);

impl DataKey {
    /// A fresh random data key.
    pub fn generate() -> Result<Self, KeyringError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(bytes.as_mut())?;
        Ok(Self(bytes))
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey([redacted])")
    }
}

/// A data key sealed under the master key: safe to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedDataKey(pub Vec<u8>);

/// What can go wrong in the keyring. Messages never contain key material or plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    /// The operating system's random generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// The ciphertext is malformed, altered, bound to another context, or sealed by another key.
    #[error("the ciphertext could not be decrypted (altered, moved, or sealed with another key)")]
    Decrypt,
    /// The ciphertext names a key version this keyring does not hold.
    #[error("the ciphertext was sealed with key version {0}, which this keyring does not hold")]
    UnknownVersion(u32),
    /// A stored data key did not unwrap: the master key differs from the one that wrapped it.
    #[error(
        "data key version {version} does not unwrap with this master key: the configured \
         encryption key is not the one this database was set up with"
    )]
    WrongMasterKey {
        /// The data-key version that failed.
        version: u32,
    },
    /// A keyring needs at least one key.
    #[error("the keyring holds no data key")]
    Empty,
    /// The AEAD library refused the operation (e.g. a key of the wrong length).
    #[error("the encryption library refused the operation")]
    Crypto,
}

/// Versioned data keys; seals with the newest, opens with whichever version a ciphertext names.
///
/// A running node learns versions added later (a master-key rotation) without the master key:
/// the new data key is stored sealed by the one before it ([`Keyring::chain`]), which every
/// running node holds. Hence the keys sit behind a lock, and a shared keyring sees them at once.
pub struct Keyring {
    inner: RwLock<Versions>,
}

struct Versions {
    current: u32,
    keys: BTreeMap<u32, LessSafeKey>,
}

impl Keyring {
    /// Builds a keyring from unwrapped data keys. The highest version seals new secrets.
    pub fn new(keys: impl IntoIterator<Item = (u32, DataKey)>) -> Result<Self, KeyringError> {
        let keys = keys
            .into_iter()
            .map(|(version, key)| Ok((version, aead_key(key.0.as_ref())?)))
            .collect::<Result<BTreeMap<_, _>, KeyringError>>()?;
        let current = *keys.keys().next_back().ok_or(KeyringError::Empty)?;
        Ok(Self {
            inner: RwLock::new(Versions { current, keys }),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Versions> {
        // A writer only inserts or removes a map entry; a panic there leaves a usable map.
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Versions> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The version that seals new secrets.
    pub fn current_version(&self) -> u32 {
        self.read().current
    }

    /// Every version held, oldest first.
    pub fn versions(&self) -> Vec<u32> {
        self.read().keys.keys().copied().collect()
    }

    /// Encrypts `plaintext` for the place `context` names.
    pub fn seal(&self, context: &Context, plaintext: &[u8]) -> Result<Vec<u8>, KeyringError> {
        let versions = self.read();
        let key = versions
            .keys
            .get(&versions.current)
            .ok_or(KeyringError::UnknownVersion(versions.current))?;
        seal_with(key, versions.current, context, plaintext)
    }

    /// Decrypts a ciphertext sealed for `context`.
    pub fn open(
        &self,
        context: &Context,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KeyringError> {
        let version = header_version(ciphertext)?;
        let versions = self.read();
        let key = versions
            .keys
            .get(&version)
            .ok_or(KeyringError::UnknownVersion(version))?;
        open_with(key, context, ciphertext, |_| Some(()))
    }

    /// The key version a ciphertext names, without decrypting it (for re-encryption sweeps).
    pub fn version_of(ciphertext: &[u8]) -> Result<u32, KeyringError> {
        header_version(ciphertext)
    }

    /// Seals data key `key`, to be stored as `version`, with the current data key: a node that
    /// holds the current key learns the new one from this without the master key.
    pub fn chain(&self, version: u32, key: &DataKey) -> Result<Vec<u8>, KeyringError> {
        self.seal(&chain_context(version), key.0.as_ref())
    }

    /// Opens what [`Self::chain`] sealed for `version`.
    pub fn unchain(&self, version: u32, chained: &[u8]) -> Result<DataKey, KeyringError> {
        let plain = self.open(&chain_context(version), chained)?;
        let bytes: [u8; KEY_LEN] = plain
            .as_slice()
            .try_into()
            .map_err(|_| KeyringError::Decrypt)?;
        Ok(DataKey(Zeroizing::new(bytes)))
    }

    /// Adds a data key; the highest version seals from now on.
    pub fn insert(&self, version: u32, key: &DataKey) -> Result<(), KeyringError> {
        let aead = aead_key(key.0.as_ref())?;
        let mut versions = self.write();
        versions.keys.insert(version, aead);
        versions.current = versions.current.max(version);
        Ok(())
    }

    /// Forgets every version below `version` (never the one sealing).
    pub fn forget_below(&self, version: u32) {
        let mut versions = self.write();
        let keep = version.min(versions.current);
        versions.keys.retain(|v, _| *v >= keep);
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let versions = self.read();
        f.debug_struct("Keyring")
            .field("current", &versions.current)
            .field("versions", &versions.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn chain_context(version: u32) -> Context {
    Context::new("warden.keyring.chained_data_key").with(version.to_be_bytes())
}

fn aead_key(bytes: &[u8]) -> Result<LessSafeKey, KeyringError> {
    UnboundKey::new(&AES_256_GCM, bytes)
        .map(LessSafeKey::new)
        .map_err(|_| KeyringError::Crypto)
}

fn fill_random(buf: &mut [u8]) -> Result<(), KeyringError> {
    SystemRandom::new()
        .fill(buf)
        .map_err(|_| KeyringError::Random)
}

fn header_version(ciphertext: &[u8]) -> Result<u32, KeyringError> {
    if ciphertext.len() < HEADER_LEN + NONCE_LEN + TAG_LEN || ciphertext[0] != FORMAT_V1 {
        return Err(KeyringError::Decrypt);
    }
    let mut version = [0u8; 4];
    version.copy_from_slice(&ciphertext[1..HEADER_LEN]);
    Ok(u32::from_be_bytes(version))
}

fn associated_data(header: &[u8], context: &Context) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + context.0.len());
    aad.extend_from_slice(header);
    aad.extend_from_slice(&context.0);
    aad
}

fn seal_with(
    key: &LessSafeKey,
    version: u32,
    context: &Context,
    plaintext: &[u8],
) -> Result<Vec<u8>, KeyringError> {
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce)?;
    let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + plaintext.len() + TAG_LEN);
    out.push(FORMAT_V1);
    out.extend_from_slice(&version.to_be_bytes());
    let aad = associated_data(&out, context);
    out.extend_from_slice(&nonce);
    let mut body = plaintext.to_vec();
    let sealed = key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad.as_slice()),
        &mut body,
    );
    if sealed.is_err() {
        body.zeroize();
        return Err(KeyringError::Crypto);
    }
    out.extend_from_slice(&body);
    Ok(out)
}

fn open_with(
    key: &LessSafeKey,
    context: &Context,
    ciphertext: &[u8],
    accept_version: impl Fn(u32) -> Option<()>,
) -> Result<Zeroizing<Vec<u8>>, KeyringError> {
    let version = header_version(ciphertext)?;
    accept_version(version).ok_or(KeyringError::Decrypt)?;
    let (header, rest) = ciphertext.split_at(HEADER_LEN);
    let (nonce, body) = rest.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| KeyringError::Decrypt)?;
    let aad = associated_data(header, context);
    let mut buf = Zeroizing::new(body.to_vec());
    let len = key
        .open_in_place(nonce, Aad::from(aad.as_slice()), buf.as_mut_slice())
        .map_err(|_| KeyringError::Decrypt)?
        .len();
    buf.truncate(len);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring_with(versions: &[u32]) -> Keyring {
        Keyring::new(versions.iter().map(|v| (*v, DataKey::generate().unwrap()))).unwrap()
    }

    fn ctx() -> Context {
        Context::new("workspace.env")
            .with("0192f0c4-ws")
            .with("API_TOKEN")
    }

    #[test]
    fn a_chained_data_key_is_learned_without_the_master_key_and_seals_from_then_on() {
        let ring = keyring_with(&[1]);
        let old = ring.seal(&ctx(), b"before").unwrap();
        // Another node: same version 1 (as if unwrapped from the same stored key).
        let new = DataKey::generate().unwrap();
        let chained = ring.chain(2, &new).unwrap();
        assert_eq!(Keyring::version_of(&chained).unwrap(), 1);
        // Bound to the version it is stored as.
        assert!(ring.unchain(3, &chained).is_err());
        let learned = ring.unchain(2, &chained).unwrap();
        ring.insert(2, &learned).unwrap();
        assert_eq!(ring.current_version(), 2);
        let fresh = ring.seal(&ctx(), b"after").unwrap();
        assert_eq!(Keyring::version_of(&fresh).unwrap(), 2);
        // A keyring without version 1 cannot learn version 2 from the chain.
        assert!(keyring_with(&[1]).unchain(2, &chained).is_err());
        // Forgetting the older version: what it sealed no longer opens; the new one does.
        ring.forget_below(2);
        assert_eq!(ring.versions(), [2]);
        assert_eq!(
            ring.open(&ctx(), &old),
            Err(KeyringError::UnknownVersion(1))
        );
        assert_eq!(ring.open(&ctx(), &fresh).unwrap().as_slice(), b"after");
        // The sealing version is never forgotten.
        ring.forget_below(9);
        assert_eq!(ring.versions(), [2]);
    }

    #[test]
    fn a_sealed_secret_opens_in_its_own_context() {
        let ring = keyring_with(&[1]);
        let sealed = ring.seal(&ctx(), b"hunter2").unwrap();
        assert_eq!(ring.open(&ctx(), &sealed).unwrap().as_slice(), b"hunter2");
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
    }

    #[test]
    fn every_ciphertext_carries_the_key_version_and_a_fresh_nonce() {
        let ring = keyring_with(&[1, 7]);
        let a = ring.seal(&ctx(), b"x").unwrap();
        let b = ring.seal(&ctx(), b"x").unwrap();
        assert_eq!(Keyring::version_of(&a).unwrap(), 7);
        assert_eq!(a.len(), HEADER_LEN + NONCE_LEN + 1 + TAG_LEN);
        assert_ne!(
            a[HEADER_LEN..HEADER_LEN + NONCE_LEN],
            b[HEADER_LEN..HEADER_LEN + NONCE_LEN]
        );
    }

    #[test]
    fn flipping_any_byte_of_a_ciphertext_makes_it_fail_to_decrypt() {
        let ring = keyring_with(&[1]);
        let sealed = ring.seal(&ctx(), b"a secret value").unwrap();
        for i in 0..sealed.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = sealed.clone();
                bad[i] ^= bit;
                assert!(ring.open(&ctx(), &bad).is_err(), "byte {i} bit {bit:#x}");
            }
        }
        assert!(ring.open(&ctx(), &sealed[..sealed.len() - 1]).is_err());
        assert!(ring.open(&ctx(), &[]).is_err());
    }

    #[test]
    fn a_ciphertext_moved_to_another_context_does_not_decrypt() {
        let ring = keyring_with(&[1]);
        let sealed = ring.seal(&ctx(), b"value").unwrap();
        let elsewhere = [
            Context::new("workspace.env")
                .with("0192f0c4-ws")
                .with("OTHER"),
            Context::new("workspace.env")
                .with("other-ws")
                .with("API_TOKEN"),
            Context::new("workspace.pat")
                .with("0192f0c4-ws")
                .with("API_TOKEN"),
            Context::new("workspace.env").with("0192f0c4-wsAPI_TOKEN"),
        ];
        for other in elsewhere {
            assert_eq!(ring.open(&other, &sealed), Err(KeyringError::Decrypt));
        }
    }

    #[test]
    fn another_key_cannot_decrypt() {
        let sealed = keyring_with(&[1]).seal(&ctx(), b"value").unwrap();
        assert_eq!(
            keyring_with(&[1]).open(&ctx(), &sealed),
            Err(KeyringError::Decrypt)
        );
        assert_eq!(
            keyring_with(&[2]).open(&ctx(), &sealed),
            Err(KeyringError::UnknownVersion(1))
        );
    }

    #[test]
    fn older_versions_still_open_after_a_new_key_is_added() {
        let master = MasterKey::generate().unwrap();
        let k1 = DataKey::generate().unwrap();
        let w1 = master.wrap(1, &k1).unwrap();
        let old = Keyring::new([(1, k1)]).unwrap();
        let sealed = old.seal(&ctx(), b"v").unwrap();
        let k2 = DataKey::generate().unwrap();
        let w2 = master.wrap(2, &k2).unwrap();
        let ring = Keyring::new([
            (1, master.unwrap_key(1, &w1.0).unwrap()),
            (2, master.unwrap_key(2, &w2.0).unwrap()),
        ])
        .unwrap();
        assert_eq!(ring.current_version(), 2);
        assert_eq!(ring.open(&ctx(), &sealed).unwrap().as_slice(), b"v");
    }

    #[test]
    fn a_data_key_does_not_unwrap_with_another_master_key_or_version() {
        let master = MasterKey::generate().unwrap();
        let wrapped = master.wrap(3, &DataKey::generate().unwrap()).unwrap();
        let other = MasterKey::generate().unwrap();
        assert_eq!(
            other.unwrap_key(3, &wrapped.0).unwrap_err(),
            KeyringError::WrongMasterKey { version: 3 }
        );
        assert!(master.unwrap_key(4, &wrapped.0).is_err());
        assert!(master.unwrap_key(3, &wrapped.0).is_ok());
    }

    #[test]
    fn master_keys_must_be_64_hex_characters() {
        assert_eq!(
            MasterKey::from_hex("abcd").unwrap_err(),
            MasterKeyError::WrongLength { found: 4 }
        );
        assert_eq!(
            MasterKey::from_hex(&"g".repeat(64)).unwrap_err(),
            MasterKeyError::NotHex
        );
        let key = MasterKey::generate().unwrap();
        let text = key.to_hex();
        assert_eq!(text.len(), 64);
        let again = MasterKey::from_hex(&format!(" {}\n", text.as_str())).unwrap();
        assert_eq!(again.to_hex().as_str(), text.as_str());
    }

    #[test]
    fn errors_and_debug_output_never_contain_key_material() {
        let key = MasterKey::generate().unwrap();
        let hex = key.to_hex();
        assert!(!format!("{key:?}").contains(hex.as_str()));
        let err = MasterKey::from_hex(&format!("{}zz", &hex[..62])).unwrap_err();
        assert!(!err.to_string().contains(&hex[..62]));
        assert_eq!(
            format!("{:?}", DataKey::generate().unwrap()),
            "DataKey([redacted])"
        );
    }
}
