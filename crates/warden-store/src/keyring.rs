//! The stored half of the keyring: data keys, wrapped by the master key, one row per version.
//!
//! Loading unwraps every version; a master key that does not unwrap them stops boot, so a
//! changed `WARDEN_ENCRYPTION_KEY` is caught before any secret is read or written.

use warden_crypto::{DataKey, Keyring, KeyringError, MasterKey};
use warden_domain::clock::Clock;

use crate::db::on_tx;
use crate::{Store, StoreError, Tx};

/// One stored data key version.
#[derive(Debug, Clone)]
pub struct StoredKey {
    /// Its version.
    pub version: u32,
    /// Sealed by a master key.
    pub wrapped: Vec<u8>,
    /// During a master-key rotation: sealed by another data key (see migration 0028).
    pub chained: Option<Vec<u8>>,
}

/// Loads the keyring, creating data key version 1 on a fresh database. Safe when several
/// nodes start at once: exactly one version 1 is kept, and all nodes load that one.
///
/// During a master-key rotation some versions open only through another version's key
/// (`chained_key`); they are opened once that version is held, so either master key loads
/// every version.
pub async fn load_or_create(
    store: &Store,
    master: &MasterKey,
    clock: &dyn Clock,
) -> Result<Keyring, StoreError> {
    let mut rows = stored_keys(store).await?;
    if rows.is_empty() {
        let wrapped = master.wrap(1, &DataKey::generate()?)?;
        let mut tx = store.begin().await?;
        let now = clock.now();
        on_tx!(tx, |c| sqlx::query(
            "INSERT INTO keyring_keys (version, wrapped_key, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (version) DO NOTHING"
        )
        .bind(1_i64)
        .bind(&wrapped.0)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        tx.commit().await?;
        rows = stored_keys(store).await?;
    }
    open_all(&rows, master)
}

/// The data keys `master` opens directly (sealed by it), by version.
pub fn unwrap_direct(rows: &[StoredKey], master: &MasterKey) -> Vec<(u32, DataKey)> {
    rows.iter()
        .filter_map(|r| {
            master
                .unwrap_key(r.version, &r.wrapped)
                .ok()
                .map(|k| (r.version, k))
        })
        .collect()
}

fn open_all(rows: &[StoredKey], master: &MasterKey) -> Result<Keyring, StoreError> {
    let first_missing = |held: &[u32]| {
        rows.iter()
            .map(|r| r.version)
            .find(|v| !held.contains(v))
            .unwrap_or(0)
    };
    let direct = unwrap_direct(rows, master);
    if direct.is_empty() {
        return Err(KeyringError::WrongMasterKey {
            version: first_missing(&[]),
        }
        .into());
    }
    let keyring = Keyring::new(direct)?;
    add_chained(&keyring, rows);
    let held = keyring.versions();
    if held.len() < rows.len() {
        return Err(KeyringError::WrongMasterKey {
            version: first_missing(&held),
        }
        .into());
    }
    Ok(keyring)
}

/// Adds every version that opens through a version already held, until none does.
fn add_chained(keyring: &Keyring, rows: &[StoredKey]) -> bool {
    let mut added = false;
    loop {
        let held = keyring.versions();
        let mut progress = false;
        for r in rows.iter().filter(|r| !held.contains(&r.version)) {
            let Some(chained) = &r.chained else { continue };
            if let Ok(key) = keyring.unchain(r.version, chained)
                && keyring.insert(r.version, &key).is_ok()
            {
                progress = true;
            }
        }
        if !progress {
            return added;
        }
        added = true;
    }
}

/// A running node catching up with the stored keyring, without the master key: versions
/// added by a rotation (opened through the chain), versions a finished rotation removed
/// (forgotten). Returns whether anything changed.
pub async fn refresh(store: &Store, keyring: &Keyring) -> Result<bool, StoreError> {
    let rows = stored_keys(store).await?;
    let Some(oldest) = rows.iter().map(|r| r.version).min() else {
        return Ok(false);
    };
    let added = add_chained(keyring, &rows);
    let before = keyring.versions().len();
    keyring.forget_below(oldest);
    Ok(added || keyring.versions().len() != before)
}

/// Every stored data key version, oldest first.
pub async fn stored_keys(store: &Store) -> Result<Vec<StoredKey>, StoreError> {
    let mut tx = store.begin_read().await?;
    let rows = tx.keyring_keys().await?;
    tx.commit().await?;
    Ok(rows)
}

/// The master-key rotation under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Rotation {
    /// The data key version every value moves to.
    pub target_version: i64,
    /// When it started (µs).
    pub started_at: i64,
    /// Values its last pass counted under other versions.
    pub remaining: i64,
    /// Values moved so far.
    pub reencrypted: i64,
    /// When the progress was last written (µs).
    pub updated_at: i64,
}

impl Tx {
    /// Every stored data key version, oldest first.
    pub async fn keyring_keys(&mut self) -> Result<Vec<StoredKey>, StoreError> {
        let rows = on_tx!(self, |c| {
            sqlx::query_as::<_, (i64, Vec<u8>, Option<Vec<u8>>)>(
                "SELECT version, wrapped_key, chained_key FROM keyring_keys ORDER BY version",
            )
            .fetch_all(c)
            .await
        })?;
        rows.into_iter()
            .map(|(version, wrapped, chained)| {
                Ok(StoredKey {
                    version: u32::try_from(version)
                        .map_err(|_| StoreError::Invalid("keyring version out of range".into()))?,
                    wrapped,
                    chained,
                })
            })
            .collect()
    }

    /// Stores a data key version (sealed by a master key, and maybe chained).
    pub async fn insert_keyring_key(
        &mut self,
        key: &StoredKey,
        now: time::OffsetDateTime,
    ) -> Result<(), StoreError> {
        on_tx!(self, |c| sqlx::query(
            "INSERT INTO keyring_keys (version, wrapped_key, chained_key, created_at) \
             VALUES ($1, $2, $3, $4)"
        )
        .bind(i64::from(key.version))
        .bind(&key.wrapped)
        .bind(key.chained.as_deref())
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Sets (or clears) the chained copy of a version.
    pub async fn set_chained_key(
        &mut self,
        version: u32,
        chained: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        on_tx!(self, |c| sqlx::query(
            "UPDATE keyring_keys SET chained_key = $1 WHERE version = $2"
        )
        .bind(chained)
        .bind(i64::from(version))
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The rotation under way, if any.
    pub async fn keyring_rotation(&mut self) -> Result<Option<Rotation>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_as::<_, Rotation>(
            "SELECT target_version, started_at, remaining, reencrypted, updated_at \
             FROM keyring_rotation WHERE id = 1"
        )
        .fetch_optional(c)
        .await)?)
    }

    /// Records a rotation's start.
    pub async fn begin_keyring_rotation(
        &mut self,
        target: u32,
        remaining: i64,
        now_us: i64,
    ) -> Result<(), StoreError> {
        on_tx!(self, |c| sqlx::query(
            "INSERT INTO keyring_rotation \
             (id, target_version, started_at, remaining, reencrypted, updated_at) \
             VALUES (1, $1, $2, $3, 0, $2)"
        )
        .bind(i64::from(target))
        .bind(now_us)
        .bind(remaining)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Records a re-encryption's progress: `moved` more values, `remaining` left.
    pub async fn keyring_rotation_progress(
        &mut self,
        moved: i64,
        remaining: i64,
        now_us: i64,
    ) -> Result<(), StoreError> {
        on_tx!(self, |c| sqlx::query(
            "UPDATE keyring_rotation SET reencrypted = reencrypted + $1, remaining = $2, \
             updated_at = $3 WHERE id = 1"
        )
        .bind(moved)
        .bind(remaining)
        .bind(now_us)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Ends a rotation: every version below `target` and every chained copy go.
    pub async fn end_keyring_rotation(&mut self, target: u32) -> Result<u64, StoreError> {
        let removed = on_tx!(self, |c| sqlx::query(
            "DELETE FROM keyring_keys WHERE version < $1"
        )
        .bind(i64::from(target))
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        on_tx!(self, |c| sqlx::query(
            "UPDATE keyring_keys SET chained_key = NULL"
        )
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        on_tx!(self, |c| sqlx::query(
            "DELETE FROM keyring_rotation WHERE id = 1"
        )
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(removed)
    }
}

/// The associated data sealing server secret `name`.
pub fn server_secret_context(name: &str) -> warden_crypto::Context {
    warden_crypto::Context::new("warden.server_secret").with(name)
}

/// Loads the 32-byte random server secret `name` (sealed by the keyring), creating it on a
/// fresh database. Nodes starting together agree on one value.
pub async fn random_server_secret(
    store: &crate::Store,
    keyring: &warden_crypto::Keyring,
    clock: &dyn warden_domain::clock::Clock,
    name: &'static str,
) -> Result<zeroize::Zeroizing<Vec<u8>>, crate::StoreError> {
    crate::audit::server_secret(store, keyring, clock, name, || {
        let mut bytes = vec![0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes)
            .map(|()| bytes)
            .map_err(|_| warden_crypto::KeyringError::Random)
    })
    .await
}
