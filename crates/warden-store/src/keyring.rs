//! The stored half of the keyring: data keys, wrapped by the master key, one row per version.
//!
//! Loading unwraps every version; a master key that does not unwrap them stops boot, so a
//! changed `WARDEN_ENCRYPTION_KEY` is caught before any secret is read or written.

use warden_crypto::{DataKey, Keyring, KeyringError, MasterKey};
use warden_domain::clock::Clock;

use crate::db::on_tx;
use crate::{Store, StoreError};

/// Loads the keyring, creating data key version 1 on a fresh database. Safe when several
/// nodes start at once: exactly one version 1 is kept, and all nodes load that one.
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
    let keys = rows
        .into_iter()
        .map(|(version, wrapped)| {
            let version =
                u32::try_from(version).map_err(|_| KeyringError::WrongMasterKey { version: 0 })?;
            Ok((version, master.unwrap_key(version, &wrapped)?))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Keyring::new(keys)?)
}

async fn stored_keys(store: &Store) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
    let mut tx = store.begin().await?;
    let rows = on_tx!(tx, |c| sqlx::query_as::<_, (i64, Vec<u8>)>(
        "SELECT version, wrapped_key FROM keyring_keys ORDER BY version"
    )
    .fetch_all(c)
    .await)?;
    tx.commit().await?;
    Ok(rows)
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
