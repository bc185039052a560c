//! Service keys and the nonces their signed requests used. A workspace manages its keys
//! through its scoped transaction; a signature check reads a key by its public id under the
//! `warden.service_auth` scope (PostgreSQL row-level security), before any workspace is known.

use uuid::Uuid;

use crate::db::on_tx;
use crate::tenancy::{WorkspaceTx, set_scope};
use crate::{Store, StoreError};

/// A service key as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ServiceKeyRow {
    /// Row id.
    pub id: Uuid,
    /// Workspace.
    pub workspace_id: Uuid,
    /// The public key id clients send (`wsk_…`).
    pub key_id: String,
    /// Name.
    pub name: String,
    /// The secret, sealed.
    pub sealed_secret: Vec<u8>,
    /// Permission names, space-separated.
    pub permissions: String,
    /// Who created it (whom it acts for).
    pub created_by: Uuid,
    /// Created (µs).
    pub created_at: i64,
    /// Stops signing then (µs), after a rotation.
    pub expires_at: Option<i64>,
    /// Revoked (µs).
    pub revoked_at: Option<i64>,
}

const COLUMNS: &str = "id, workspace_id, key_id, name, sealed_secret, permissions, created_by, \
     created_at, expires_at, revoked_at";

impl WorkspaceTx {
    /// Stores a new key.
    pub async fn insert_service_key(&mut self, k: &ServiceKeyRow) -> Result<(), StoreError> {
        let ws = self.workspace().uuid();
        on_tx!(self.tx_mut(), |c| sqlx::query(
            "INSERT INTO service_keys (id, workspace_id, key_id, name, sealed_secret, \
             permissions, created_by, created_at, expires_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL)"
        )
        .bind(k.id)
        .bind(ws)
        .bind(&k.key_id)
        .bind(&k.name)
        .bind(&k.sealed_secret)
        .bind(&k.permissions)
        .bind(k.created_by)
        .bind(k.created_at)
        .bind(k.expires_at)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// The workspace's keys, newest first.
    pub async fn service_keys(&mut self) -> Result<Vec<ServiceKeyRow>, StoreError> {
        let ws = self.workspace().uuid();
        let sql = format!(
            "SELECT {COLUMNS} FROM service_keys WHERE workspace_id = $1 ORDER BY created_at DESC"
        );
        Ok(on_tx!(self.tx_mut(), |c| {
            sqlx::query_as::<_, ServiceKeyRow>(sqlx::AssertSqlSafe(sql))
                .bind(ws)
                .fetch_all(c)
                .await
        })?)
    }

    /// One of the workspace's keys, by its public id.
    pub async fn service_key(&mut self, key_id: &str) -> Result<Option<ServiceKeyRow>, StoreError> {
        let ws = self.workspace().uuid();
        let sql =
            format!("SELECT {COLUMNS} FROM service_keys WHERE workspace_id = $1 AND key_id = $2");
        Ok(on_tx!(self.tx_mut(), |c| {
            sqlx::query_as::<_, ServiceKeyRow>(sqlx::AssertSqlSafe(sql))
                .bind(ws)
                .bind(key_id)
                .fetch_optional(c)
                .await
        })?)
    }

    /// Revokes a key now (`true` when it was live).
    pub async fn revoke_service_key(&mut self, key_id: &str, now: i64) -> Result<bool, StoreError> {
        let ws = self.workspace().uuid();
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query(
            "UPDATE service_keys SET revoked_at = $3 WHERE workspace_id = $1 AND key_id = $2 \
             AND revoked_at IS NULL"
        )
        .bind(ws)
        .bind(key_id)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?
            == 1)
    }

    /// Gives a key an end (a rotation's overlap), unless it ends sooner already.
    pub async fn expire_service_key(&mut self, key_id: &str, at: i64) -> Result<(), StoreError> {
        let ws = self.workspace().uuid();
        on_tx!(self.tx_mut(), |c| sqlx::query(
            "UPDATE service_keys SET expires_at = $3 WHERE workspace_id = $1 AND key_id = $2 \
             AND (expires_at IS NULL OR expires_at > $3)"
        )
        .bind(ws)
        .bind(key_id)
        .bind(at)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }
}

impl Store {
    /// A key by its public id, for a signature check.
    pub async fn service_key_for_signature(
        &self,
        key_id: &str,
    ) -> Result<Option<ServiceKeyRow>, StoreError> {
        let mut tx = self.begin_read().await?;
        set_scope(&mut tx, "warden.service_auth", "on").await?;
        let sql = format!("SELECT {COLUMNS} FROM service_keys WHERE key_id = $1");
        let row = on_tx!(tx, |c| sqlx::query_as::<_, ServiceKeyRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(key_id)
        .fetch_optional(c)
        .await)?;
        tx.commit().await?;
        Ok(row)
    }

    /// Records a nonce of `key_id` until `expires_at` (µs); `false` when it was seen before
    /// (a replay). Forgets nonces whose window has passed.
    pub async fn use_service_nonce(
        &self,
        key_id: &str,
        nonce: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        on_tx!(tx, |c| sqlx::query(
            "DELETE FROM service_nonces WHERE key_id = $1 AND expires_at < $2"
        )
        .bind(key_id)
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
        let fresh = on_tx!(tx, |c| sqlx::query(
            "INSERT INTO service_nonces (key_id, nonce, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key_id, nonce) DO NOTHING"
        )
        .bind(key_id)
        .bind(nonce)
        .bind(expires_at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?
            == 1;
        tx.commit().await?;
        Ok(fresh)
    }
}
