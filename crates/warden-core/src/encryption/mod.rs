//! Encryption at rest over time: master-key rotation and the re-encryption it runs.
//!
//! The master key only seals the data keys; every stored secret is sealed by a data key. A
//! rotation (`warden keys rotate-master`) therefore:
//!
//! 1. adds a data key version sealed by the **new** master key, chained to the data key
//!    before it, and chains every older data key to the new one — in one transaction, audited.
//!    A node that holds either master key loads every version; a running node learns the new
//!    version from the chain within a second ([`spawn_watch`]) and seals with it from then on;
//! 2. re-encrypts every sealed value under the new version ([`sweep`]), in small committed
//!    batches that swap a value only if nobody changed it meanwhile (so a stop at any point —
//!    even `kill -9` — loses nothing, and running it again resumes);
//! 3. once no value is left under an older version and the new master key is configured,
//!    ends ([`finish_rotation`]): the older data keys and every chained copy are deleted, so
//!    the old master key opens nothing. Audited.

pub mod sweep;

use std::sync::Arc;
use std::time::Duration;

use warden_crypto::{DataKey, Keyring, MasterKey};
use warden_domain::audit::{Actor, Outcome};
use warden_domain::clock::Clock;
use warden_store::audit::ChainKey;
use warden_store::keyring::{Rotation, StoredKey};
use warden_store::{Store, StoreError};

use crate::identity::now_us;
use crate::{Op, Origin};

/// What starting a rotation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// A new data key version, sealed by the new master key.
    New {
        /// The version every value moves to.
        target: u32,
    },
    /// A rotation to this same new master key was under way: it goes on.
    Resumed {
        /// The version every value moves to.
        target: u32,
    },
}

impl Started {
    /// The version every value moves to.
    pub fn target(self) -> u32 {
        match self {
            Self::New { target } | Self::Resumed { target } => target,
        }
    }
}

fn refused(message: impl Into<String>) -> StoreError {
    StoreError::Invalid(message.into())
}

/// Starts (or resumes) a rotation to `new_master`. `keyring` was loaded with `current`, the
/// configured master key; it holds the new version afterwards.
pub async fn start_rotation(
    store: &Store,
    keyring: &Keyring,
    current: &MasterKey,
    new_master: &MasterKey,
    chain: &ChainKey,
    clock: &dyn Clock,
) -> Result<Started, StoreError> {
    let mut tx = store.begin().await?;
    let rows = tx.keyring_keys().await?;
    if let Some(rotation) = tx.keyring_rotation().await? {
        tx.commit().await?;
        let target = u32::try_from(rotation.target_version).unwrap_or(0);
        let opens = rows
            .iter()
            .find(|r| r.version == target)
            .is_some_and(|r| new_master.unwrap_key(target, &r.wrapped).is_ok());
        if !opens {
            return Err(refused(
                "a rotation to another master key is under way: run this again with that key's \
                 file to finish re-encrypting, then `warden keys finish-rotation`",
            ));
        }
        return Ok(Started::Resumed { target });
    }
    if !warden_store::keyring::unwrap_direct(&rows, new_master).is_empty() {
        return Err(refused(
            "the new master key is the one already in use; generate a new one (64 hexadecimal \
             characters, e.g. `openssl rand -hex 32`)",
        ));
    }
    let old = warden_store::keyring::unwrap_direct(&rows, current);
    if old.len() != rows.len() {
        return Err(refused(
            "the configured master key does not open every data key directly",
        ));
    }
    let newest = rows.iter().map(|r| r.version).max().unwrap_or(0);
    if keyring.current_version() != newest {
        return Err(refused("the keyring in memory is not the stored one"));
    }
    let target = newest + 1;
    let key = DataKey::generate()?;
    tx.insert_keyring_key(
        &StoredKey {
            version: target,
            wrapped: new_master.wrap(target, &key)?.0,
            chained: Some(keyring.chain(target, &key)?),
        },
        clock.now(),
    )
    .await?;
    keyring.insert(target, &key)?;
    for (version, old_key) in &old {
        let chained = keyring.chain(*version, old_key)?;
        tx.set_chained_key(*version, Some(&chained)).await?;
    }
    let now = now_us(clock);
    tx.begin_keyring_rotation(target, 0, now).await?;
    let event = Op::new(Actor::system(), Origin::default(), clock).event_with(
        "keyring.rotation_started",
        "keyring",
        Some(target.to_string()),
        Outcome::Success,
        serde_json::json!({
            "target_version": target,
            "older_versions": old.iter().map(|(v, _)| v).collect::<Vec<_>>(),
        }),
    );
    tx.record(chain, &event).await?;
    tx.commit().await?;
    Ok(Started::New { target })
}

/// What ending a rotation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finished {
    /// The data key version left.
    pub version: u32,
    /// How many older versions were deleted.
    pub removed: u64,
}

/// Ends the rotation under way: refused while any value is sealed under an older version, or
/// when `configured` (the configured master key) is still the outgoing one.
pub async fn finish_rotation(
    store: &Store,
    keyring: &Keyring,
    configured: &MasterKey,
    chain: &ChainKey,
    clock: &dyn Clock,
) -> Result<Finished, StoreError> {
    let mut tx = store.begin().await?;
    let Some(rotation) = tx.keyring_rotation().await? else {
        return Err(refused("no master-key rotation is under way"));
    };
    let target = u32::try_from(rotation.target_version).unwrap_or(0);
    let rows = tx.keyring_keys().await?;
    let new_configured = rows
        .iter()
        .find(|r| r.version == target)
        .is_some_and(|r| configured.unwrap_key(target, &r.wrapped).is_ok());
    if !new_configured {
        return Err(refused(
            "the configured encryption key is the outgoing one: configure the new key (the \
             file given to `warden keys rotate-master`) here and on every node first; after \
             this step the old key opens nothing",
        ));
    }
    let left = sweep::count_in(&mut tx, target).await?;
    if left > 0 {
        return Err(refused(format!(
            "{left} values are still sealed with an older data key; run `warden keys \
             rotate-master --new-key-file FILE` again to re-encrypt them first"
        )));
    }
    let removed = tx.end_keyring_rotation(target).await?;
    let event = Op::new(Actor::system(), Origin::default(), clock).event_with(
        "keyring.rotation_finished",
        "keyring",
        Some(target.to_string()),
        Outcome::Success,
        serde_json::json!({ "version": target, "removed_versions": removed }),
    );
    tx.record(chain, &event).await?;
    tx.commit().await?;
    keyring.forget_below(target);
    Ok(Finished {
        version: target,
        removed,
    })
}

/// The data key sealing new values, and the rotation under way if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// The version this node seals with.
    pub version: u32,
    /// The rotation under way.
    pub rotation: Option<Rotation>,
}

/// This node's keyring status (one small read).
pub async fn status(store: &Store, keyring: &Keyring) -> Result<Status, StoreError> {
    let mut tx = store.begin_read().await?;
    let rotation = tx.keyring_rotation().await?;
    tx.commit().await?;
    Ok(Status {
        version: keyring.current_version(),
        rotation,
    })
}

/// The keyring as `/readyz` shows it: versions and counts, never key material.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyringStatus {
    /// The data key version this node seals new values with.
    pub version: u32,
    /// The master-key rotation under way, if any.
    pub rotation: Option<RotationProgress>,
}

/// A rotation's progress, as its re-encryption last wrote it.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RotationProgress {
    /// The data key version every value moves to.
    pub target_version: i64,
    /// Values still sealed with an older version (as last counted).
    pub remaining: i64,
    /// Values re-encrypted so far.
    pub reencrypted: i64,
    /// When the rotation started (RFC 3339).
    pub started_at: String,
    /// When the progress was last written (RFC 3339).
    pub updated_at: String,
}

impl Status {
    /// The form `/readyz` shows.
    pub fn public(&self) -> KeyringStatus {
        KeyringStatus {
            version: self.version,
            rotation: self.rotation.map(|r| RotationProgress {
                target_version: r.target_version,
                remaining: r.remaining,
                reencrypted: r.reencrypted,
                started_at: crate::op::rfc3339(r.started_at),
                updated_at: crate::op::rfc3339(r.updated_at),
            }),
        }
    }
}

/// Keeps this node's keyring in step with the stored one, every second: a rotation's new
/// data key is sealing here within a second of its start; the versions a finished rotation
/// removed are forgotten.
pub fn spawn_watch(ctx: Arc<crate::Ctx>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let before = ctx.keyring.current_version();
            match warden_store::keyring::refresh(&ctx.store, &ctx.keyring).await {
                Ok(true) => tracing::info!(
                    from = before,
                    to = ctx.keyring.current_version(),
                    versions = ?ctx.keyring.versions(),
                    "keyring changed: new values are sealed with the newest data key"
                ),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "cannot read the keyring"),
            }
        }
    })
}
