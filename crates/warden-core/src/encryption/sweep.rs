//! The re-encryption a master-key rotation runs: every sealed value moves to the rotation's
//! data key version, with the same associated data (so it still opens only in its own row).
//!
//! Batches are committed one by one; each value is swapped only if it still holds what was
//! read (compare and swap), so writes racing the sweep are never overwritten, and a sweep
//! stopped at any point resumes where the values say it stopped — there is no cursor to lose.

use uuid::Uuid;
use warden_crypto::{Context, Keyring};
use warden_domain::clock::Clock;
use warden_domain::tenancy::WorkspaceId;
use warden_store::sealed::{SealedColumn, SealedKey};
use warden_store::tenancy::SecretKind;
use warden_store::{Store, StoreError, Tx};

use crate::identity::now_us;

/// The associated data a sealed value was sealed with: the same functions the features that
/// seal them use.
fn context(column: SealedColumn, workspace: Option<Uuid>, key: &SealedKey) -> Option<Context> {
    let ws = workspace.unwrap_or_default();
    Some(match (column, key) {
        (SealedColumn::ServerSecrets, SealedKey::Name(name)) => {
            warden_store::keyring::server_secret_context(name)
        }
        (SealedColumn::SigningKeys, SealedKey::Name(kid)) => crate::identity::keys::context(kid),
        (SealedColumn::RefreshSuccessors, SealedKey::Id(id)) => {
            crate::identity::flows::successor_context(*id)
        }
        (SealedColumn::MailBodies, SealedKey::Id(id)) => crate::mail::body_context(*id),
        (SealedColumn::SsoClientSecrets, SealedKey::Id(id)) => {
            crate::sso::providers::secret_context(*id)
        }
        (SealedColumn::SsoLogins, SealedKey::Hash(hash)) => crate::sso::flow::login_context(hash),
        (SealedColumn::ServiceKeys, SealedKey::Id(id)) => crate::service_keys::secret_context(*id),
        (SealedColumn::EventSourceSecrets, SealedKey::Id(id)) => {
            crate::webhooks::secret_context(*id)
        }
        (SealedColumn::WorkspaceSecrets, SealedKey::Secret { kind, name }) => {
            crate::secrets::context(WorkspaceId::from_uuid(ws), SecretKind::parse(kind)?, name)
        }
        (SealedColumn::LlmUpstreamKeys, SealedKey::Id(id)) => {
            crate::llm::upstream_key_context(ws, *id)
        }
        (SealedColumn::LlmCallContents, SealedKey::Id(id)) => crate::llm::content_context(ws, *id),
        _ => return None,
    })
}

/// Where each sealed column is read: once for platform columns, once per workspace for
/// workspace columns.
async fn scopes(store: &Store) -> Result<Vec<(SealedColumn, Option<Uuid>)>, StoreError> {
    let workspaces = store.all_workspace_ids().await?;
    let mut out = Vec::new();
    for column in SealedColumn::ALL {
        if column.in_workspaces() {
            out.extend(workspaces.iter().map(|ws| (column, Some(*ws))));
        } else {
            out.push((column, None));
        }
    }
    Ok(out)
}

/// How many values are sealed under another version than `target`, counted in `tx` (one
/// snapshot; each workspace's columns in its own scope).
pub async fn count_in(tx: &mut Tx, target: u32) -> Result<i64, StoreError> {
    let workspaces = tx.workspace_ids_platform().await?;
    let mut left = 0;
    for column in SealedColumn::ALL {
        if column.in_workspaces() {
            for ws in &workspaces {
                tx.enter_workspace_scope(*ws).await?;
                left += tx.count_sealed_not_under(column, Some(*ws), target).await?;
            }
        } else {
            left += tx.count_sealed_not_under(column, None, target).await?;
        }
    }
    Ok(left)
}

/// How many values are sealed under another version than `target`.
pub async fn count(store: &Store, target: u32) -> Result<i64, StoreError> {
    let mut tx = store.begin_read().await?;
    let left = count_in(&mut tx, target).await;
    tx.commit().await?;
    left
}

/// What a sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Values re-encrypted by this run.
    pub moved: i64,
    /// The version they moved to (0: no rotation under way).
    pub target: u32,
}

/// How many passes in a row may find values left yet move none before the sweep gives up
/// (a node keeps sealing with an older key: it cannot read the keyring).
const STUCK_PASSES: u32 = 5;

/// Re-encrypts every value sealed under another version than the rotation's target, `batch`
/// values per transaction, until none is left. `progress(done, total)` is called after each
/// batch. With no rotation under way it does nothing.
pub async fn run(
    store: &Store,
    keyring: &Keyring,
    clock: &dyn Clock,
    batch: u32,
    mut progress: impl FnMut(i64, i64),
) -> Result<Swept, StoreError> {
    let mut tx = store.begin_read().await?;
    let rotation = tx.keyring_rotation().await?;
    tx.commit().await?;
    let Some(rotation) = rotation else {
        return Ok(Swept::default());
    };
    let target = u32::try_from(rotation.target_version).unwrap_or(0);
    if keyring.current_version() != target {
        return Err(StoreError::Invalid(format!(
            "this keyring seals with data key version {}, not the rotation's version {target}",
            keyring.current_version()
        )));
    }
    let mut swept = Swept { moved: 0, target };
    let mut stuck = 0;
    loop {
        let mut left = count(store, target).await?;
        let mut tx = store.begin().await?;
        tx.keyring_rotation_progress(0, left, now_us(clock)).await?;
        tx.commit().await?;
        if left == 0 {
            progress(swept.moved, swept.moved);
            return Ok(swept);
        }
        let total = swept.moved + left;
        progress(swept.moved, total);
        let before = swept.moved;
        for (column, workspace) in scopes(store).await? {
            // A page is read without the write lock and re-encrypted outside any
            // transaction; only the swaps hold it, briefly.
            let mut after = None;
            loop {
                let mut tx = store.begin_sealed_read(workspace).await?;
                let values = tx
                    .sealed_not_under(column, workspace, target, after.as_ref(), i64::from(batch))
                    .await?;
                tx.commit().await?;
                let Some(last) = values.last() else { break };
                after = Some(last.key.clone());
                let swaps = values
                    .into_iter()
                    .map(|v| {
                        let fresh = reseal(keyring, column, workspace, &v.key, &v.sealed)?;
                        Ok((v.key, v.sealed, fresh))
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?;
                let mut tx = store.begin_sealed(workspace).await?;
                // A value changed meanwhile is not swapped: left for the next pass.
                let moved = i64::try_from(tx.replace_sealed(column, workspace, &swaps).await?)
                    .unwrap_or(i64::MAX);
                left = (left - moved).max(0);
                tx.keyring_rotation_progress(moved, left, now_us(clock))
                    .await?;
                tx.commit().await?;
                swept.moved += moved;
                progress(swept.moved, total);
            }
        }
        if swept.moved == before {
            stuck += 1;
            if stuck >= STUCK_PASSES {
                return Err(StoreError::Invalid(format!(
                    "{left} values keep being sealed with an older data key: some node has \
                     not loaded the new one (can every node reach the database?)"
                )));
            }
        } else {
            stuck = 0;
        }
    }
}

/// Opens every sealed value with its associated data (and nothing else): the number opened,
/// or an error naming the first row that does not open. What a rotation leaves is checked
/// with it.
pub async fn check(store: &Store, keyring: &Keyring) -> Result<i64, StoreError> {
    let mut opened = 0;
    for (column, workspace) in scopes(store).await? {
        let mut tx = store.begin_sealed_read(workspace).await?;
        // Version 0 seals nothing: every value is "under another version".
        let values = tx
            .sealed_not_under(column, workspace, 0, None, i64::MAX)
            .await?;
        tx.commit().await?;
        for value in &values {
            reseal(keyring, column, workspace, &value.key, &value.sealed)?;
            opened += 1;
        }
    }
    Ok(opened)
}

/// One value, opened with its associated data and sealed again under the current version.
/// A value that does not open stops the sweep, naming the row (never the value): nothing is
/// changed, and it resumes once the row is dealt with.
fn reseal(
    keyring: &Keyring,
    column: SealedColumn,
    workspace: Option<Uuid>,
    key: &SealedKey,
    sealed: &[u8],
) -> Result<Vec<u8>, StoreError> {
    let row = || match key {
        SealedKey::Name(n) => n.clone(),
        SealedKey::Id(id) => id.to_string(),
        SealedKey::Hash(h) => hex::encode(h),
        SealedKey::Secret { kind, name } => format!("{kind} {name}"),
    };
    let at = || match workspace {
        Some(ws) => format!("{} row {} (workspace {ws})", column.name(), row()),
        None => format!("{} row {}", column.name(), row()),
    };
    let context = context(column, workspace, key)
        .ok_or_else(|| StoreError::Invalid(format!("{}: unexpected key", at())))?;
    let plain = keyring.open(&context, sealed).map_err(|e| {
        StoreError::Invalid(format!(
            "{} does not decrypt ({e}); nothing was changed",
            at()
        ))
    })?;
    Ok(keyring.seal(&context, &plain)?)
}
