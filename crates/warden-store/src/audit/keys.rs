//! The audit trail's keys: the chain's HMAC key and the checkpoint signing key, both server
//! secrets sealed by the keyring, and the signed checkpoints themselves.

use std::fmt;

use aws_lc_rs::{hmac, signature};
use warden_crypto::Keyring;
use warden_domain::clock::Clock;

use super::{HASH_LEN, Row};
use crate::db::on_tx;
use crate::{Store, StoreError};

/// What a seal's MAC starts with (a chain hash starts with the 32-byte previous hash instead,
/// so neither can stand in for the other).
const SEAL_TAG: &[u8] = b"warden.audit.seal.v1";
const CHAIN_KEY_NAME: &str = "audit_chain_key";

/// The key of the audit chain's HMAC. Never printed.
pub struct ChainKey(hmac::Key);

impl fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChainKey([redacted])")
    }
}

impl ChainKey {
    /// Loads the chain key, creating it on a fresh database (safe when nodes start together).
    pub async fn load_or_create(
        store: &Store,
        keyring: &Keyring,
        clock: &dyn Clock,
    ) -> Result<Self, StoreError> {
        let key = server_secret(store, keyring, clock, CHAIN_KEY_NAME, || {
            let mut bytes = vec![0u8; 32];
            aws_lc_rs::rand::fill(&mut bytes)
                .map(|()| bytes)
                .map_err(|_| warden_crypto::KeyringError::Random)
        })
        .await?;
        Ok(Self(hmac::Key::new(hmac::HMAC_SHA256, &key)))
    }

    /// A key from raw bytes (tests and benchmarks).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    pub(super) fn hash(&self, row: &Row) -> [u8; HASH_LEN] {
        self.hash_as(row, row.seq)
    }

    pub(super) fn hash_as(&self, row: &Row, seq: i64) -> [u8; HASH_LEN] {
        self.mac(&[&row.prev_hash, &seq.to_be_bytes()], row)
    }

    /// The seal a writer puts on an event waiting to be chained: its content alone.
    pub(super) fn seal(&self, row: &Row) -> [u8; HASH_LEN] {
        self.mac(&[SEAL_TAG], row)
    }

    /// HMAC over `prefix` and the event's content, each length-prefixed.
    fn mac(&self, prefix: &[&[u8]], row: &Row) -> [u8; HASH_LEN] {
        let mut ctx = hmac::Context::with_key(&self.0);
        let mut put = |bytes: &[u8]| {
            ctx.update(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
            ctx.update(bytes);
        };
        for p in prefix {
            put(p);
        }
        put(row.event_id.as_bytes());
        put(&row.occurred_at_us.to_be_bytes());
        put(row.actor_kind.as_bytes());
        opt(&mut put, row.actor_id.as_deref());
        opt(&mut put, row.workspace_id.as_deref());
        put(row.action.as_bytes());
        put(row.resource_type.as_bytes());
        opt(&mut put, row.resource_id.as_deref());
        put(row.outcome.as_bytes());
        opt(&mut put, row.client_ip.as_deref());
        opt(&mut put, row.user_agent.as_deref());
        opt(&mut put, row.request_id.as_deref());
        put(&row.duration_ms.to_be_bytes());
        put(row.summary.as_bytes());
        let tag = ctx.sign();
        let mut out = [0u8; HASH_LEN];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

fn opt(put: &mut impl FnMut(&[u8]), value: Option<&str>) {
    match value {
        None => put(&[0]),
        Some(v) => {
            put(&[1]);
            put(v.as_bytes());
        }
    }
}

/// Loads the server secret `name`, creating it with `generate` on a fresh database. Sealed by
/// the keyring and bound to its name; when several nodes create it at once, one value wins
/// and all of them load that one.
pub(crate) async fn server_secret(
    store: &Store,
    keyring: &Keyring,
    clock: &dyn Clock,
    name: &'static str,
    generate: impl FnOnce() -> Result<Vec<u8>, warden_crypto::KeyringError>,
) -> Result<zeroize::Zeroizing<Vec<u8>>, StoreError> {
    let ctx = crate::keyring::server_secret_context(name);
    let mut sealed = read_secret(store, name).await?;
    if sealed.is_none() {
        let value = zeroize::Zeroizing::new(generate()?);
        let value = keyring.seal(&ctx, &value)?;
        let now = clock.now();
        let mut tx = store.begin().await?;
        on_tx!(tx, |c| sqlx::query(
            "INSERT INTO server_secrets (name, sealed, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING"
        )
        .bind(name)
        .bind(&value)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        tx.commit().await?;
        sealed = read_secret(store, name).await?;
    }
    let sealed = sealed.ok_or(StoreError::Keyring(warden_crypto::KeyringError::Decrypt))?;
    Ok(keyring.open(&ctx, &sealed)?)
}

async fn read_secret(store: &Store, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
    let mut tx = store.begin_read().await?;
    let row = on_tx!(tx, |c| sqlx::query_scalar::<_, Vec<u8>>(
        "SELECT sealed FROM server_secrets WHERE name = $1"
    )
    .bind(name)
    .fetch_optional(c)
    .await)?;
    tx.commit().await?;
    Ok(row)
}

const CHECKPOINT_KEY_NAME: &str = "audit_checkpoint_key";

/// Signs audit checkpoints with the server's ECDSA P-256 key (sealed by the keyring). Anyone
/// holding the public key can check a checkpoint; nobody without the private key can make one.
pub struct CheckpointSigner {
    pair: signature::EcdsaKeyPair,
}

impl fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CheckpointSigner([redacted])")
    }
}

impl CheckpointSigner {
    /// Loads the signing key, creating it on a fresh database.
    pub async fn load_or_create(
        store: &Store,
        keyring: &Keyring,
        clock: &dyn Clock,
    ) -> Result<Self, StoreError> {
        let pkcs8 = server_secret(store, keyring, clock, CHECKPOINT_KEY_NAME, || {
            signature::EcdsaKeyPair::generate_pkcs8(
                CHECKPOINT_ALG,
                &aws_lc_rs::rand::SystemRandom::new(),
            )
            .map(|doc| doc.as_ref().to_vec())
            .map_err(|_| warden_crypto::KeyringError::Random)
        })
        .await?;
        let pair = signature::EcdsaKeyPair::from_pkcs8(CHECKPOINT_ALG, &pkcs8)
            .map_err(|_| warden_crypto::KeyringError::Crypto)?;
        Ok(Self { pair })
    }

    /// The public key (uncompressed SEC1 point) that verifies checkpoints.
    pub fn public_key(&self) -> Vec<u8> {
        signature::KeyPair::public_key(&self.pair).as_ref().to_vec()
    }

    pub(super) fn sign(&self, seq: i64, hash: &[u8]) -> Result<Vec<u8>, StoreError> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        self.pair
            .sign(&rng, &checkpoint_message(seq, hash))
            .map(|sig| sig.as_ref().to_vec())
            .map_err(|_| StoreError::Keyring(warden_crypto::KeyringError::Crypto))
    }
}

const CHECKPOINT_ALG: &signature::EcdsaSigningAlgorithm =
    &signature::ECDSA_P256_SHA256_FIXED_SIGNING;

fn checkpoint_message(seq: i64, hash: &[u8]) -> Vec<u8> {
    let mut msg = b"warden.audit.checkpoint.v1".to_vec();
    msg.extend_from_slice(&seq.to_be_bytes());
    msg.extend_from_slice(hash);
    msg
}

/// A signed checkpoint: the chain's hash at `seq`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Checkpoint {
    /// The event it vouches for.
    pub seq: i64,
    /// That event's hash.
    pub hash: Vec<u8>,
    /// When it was signed (unix microseconds).
    pub signed_at_us: i64,
    /// ECDSA P-256 / SHA-256 signature (fixed-length r‖s).
    pub signature: Vec<u8>,
}

impl Checkpoint {
    /// Whether `public_key` signed this checkpoint.
    pub fn verifies(&self, public_key: &[u8]) -> bool {
        signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, public_key)
            .verify(&checkpoint_message(self.seq, &self.hash), &self.signature)
            .is_ok()
    }
}
