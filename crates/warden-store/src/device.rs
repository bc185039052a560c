//! Device authorization grants in storage: opened by a device, decided by a person, redeemed
//! once. Looked up by the hash of the device code (polling) or of the user code (the
//! verification page).

use uuid::Uuid;

use crate::db::on_tx;
use crate::{StoreError, Tx};

/// A grant.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeviceGrantRow {
    /// Its id.
    pub id: Uuid,
    /// `user` or `host`.
    pub kind: String,
    /// What the device says it is (`warden CLI`, `warden-agent`).
    pub client_name: String,
    /// For a host: the name it asks to be registered under.
    pub host_name: Option<String>,
    /// The address that asked.
    pub requested_ip: Option<String>,
    /// Its user agent.
    pub user_agent: Option<String>,
    /// Opened, µs.
    pub created_at: i64,
    /// Expires, µs.
    pub expires_at: i64,
    /// The polling interval now, seconds.
    pub interval_secs: i64,
    /// The last poll, µs.
    pub last_polled_at: Option<i64>,
    /// `pending`, `approved`, `denied` or `redeemed`.
    pub status: String,
    /// Who approved or denied it.
    pub decided_by: Option<Uuid>,
    /// The workspaces an approved host may serve (space-separated ids).
    pub workspace_ids: String,
}

macro_rules! columns {
    () => {
        "id, kind, client_name, host_name, requested_ip, user_agent, created_at, expires_at, \
         interval_secs, last_polled_at, status, decided_by, workspace_ids"
    };
}

impl Tx {
    /// Opens a grant. `false` when a live grant already uses this user code (draw another).
    pub async fn insert_device_grant(
        &mut self,
        row: &DeviceGrantRow,
        device_hash: &[u8],
        user_code_hash: &[u8],
    ) -> Result<bool, StoreError> {
        let taken = on_tx!(self, |c| sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM device_grants WHERE user_code_hash = $1 AND expires_at > $2"
        )
        .bind(user_code_hash)
        .bind(row.created_at)
        .fetch_one(c)
        .await)?;
        if taken > 0 {
            return Ok(false);
        }
        // Grants a day past their expiry are of no more use to anyone.
        on_tx!(self, |c| sqlx::query(
            "DELETE FROM device_grants WHERE expires_at < $1"
        )
        .bind(row.created_at - 86_400_000_000)
        .execute(c)
        .await
        .map(drop))?;
        on_tx!(self, |c| sqlx::query(
            "INSERT INTO device_grants (id, device_hash, user_code_hash, kind, client_name, \
             host_name, requested_ip, user_agent, created_at, expires_at, interval_secs, status) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        )
        .bind(row.id)
        .bind(device_hash)
        .bind(user_code_hash)
        .bind(&row.kind)
        .bind(&row.client_name)
        .bind(&row.host_name)
        .bind(&row.requested_ip)
        .bind(&row.user_agent)
        .bind(row.created_at)
        .bind(row.expires_at)
        .bind(row.interval_secs)
        .bind(&row.status)
        .execute(c)
        .await
        .map(drop))?;
        Ok(true)
    }

    /// The grant a device code opened (locked for this transaction on PostgreSQL).
    pub async fn device_grant_by_device(
        &mut self,
        device_hash: &[u8],
    ) -> Result<Option<DeviceGrantRow>, StoreError> {
        let lock = if matches!(self.inner, crate::db::TxInner::Postgres(_)) {
            " FOR UPDATE"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {} FROM device_grants WHERE device_hash = $1{lock}",
            columns!()
        );
        Ok(on_tx!(self, |c| sqlx::query_as::<_, DeviceGrantRow>(
            sqlx::AssertSqlSafe(sql.clone())
        )
        .bind(device_hash)
        .fetch_optional(c)
        .await)?)
    }

    /// The unexpired grant a user code names.
    pub async fn device_grant_by_user_code(
        &mut self,
        user_code_hash: &[u8],
        now: i64,
    ) -> Result<Option<DeviceGrantRow>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_as::<_, DeviceGrantRow>(
            concat!(
                "SELECT ",
                columns!(),
                " FROM device_grants WHERE user_code_hash = $1 AND expires_at > $2 \
             ORDER BY created_at DESC LIMIT 1"
            )
        )
        .bind(user_code_hash)
        .bind(now)
        .fetch_optional(c)
        .await)?)
    }

    /// Records a poll and the interval from now on.
    pub async fn device_grant_polled(
        &mut self,
        id: Uuid,
        now: i64,
        interval_secs: i64,
    ) -> Result<(), StoreError> {
        on_tx!(self, |c| sqlx::query(
            "UPDATE device_grants SET last_polled_at = $2, interval_secs = $3 WHERE id = $1"
        )
        .bind(id)
        .bind(now)
        .bind(interval_secs)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Approves or denies a pending, unexpired grant; `false` when it was not pending.
    pub async fn decide_device_grant(
        &mut self,
        id: Uuid,
        status: &str,
        by: Uuid,
        workspace_ids: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query(
            "UPDATE device_grants SET status = $2, decided_by = $3, decided_at = $4, \
             workspace_ids = $5 WHERE id = $1 AND status = 'pending' AND expires_at > $4"
        )
        .bind(id)
        .bind(status)
        .bind(by)
        .bind(now)
        .bind(workspace_ids)
        .execute(c)
        .await
        .map(|r| r.rows_affected() == 1))?)
    }

    /// Makes a redeemed grant redeemable again (its host could not be enrolled).
    pub async fn reopen_device_grant(&mut self, id: Uuid) -> Result<(), StoreError> {
        on_tx!(self, |c| sqlx::query(
            "UPDATE device_grants SET status = 'approved', redeemed_at = NULL \
             WHERE id = $1 AND status = 'redeemed'"
        )
        .bind(id)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Uses an approved grant up; `false` when it was not (or no longer) approved.
    pub async fn redeem_device_grant(&mut self, id: Uuid, now: i64) -> Result<bool, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query(
            "UPDATE device_grants SET status = 'redeemed', redeemed_at = $2 \
             WHERE id = $1 AND status = 'approved'"
        )
        .bind(id)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected() == 1))?)
    }
}
