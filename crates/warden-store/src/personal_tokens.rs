//! Personal access tokens in storage: looked up by the SHA-256 of the secret, listed per
//! owner, revoked through the revocation log (the token's id is its "session" there, so every
//! node drops it the way it drops a device session).

use uuid::Uuid;

use crate::db::on_tx;
use crate::{StoreError, Tx};

/// A stored token (never its secret).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PersonalTokenRow {
    /// Its id (also its subject in the revocation log).
    pub id: Uuid,
    /// The owner.
    pub user_id: Uuid,
    /// What the owner called it.
    pub name: String,
    /// Space-separated permission names.
    pub permissions: String,
    /// The one workspace it may reach, if bound.
    pub workspace_id: Option<Uuid>,
    /// Created, µs.
    pub created_at: i64,
    /// Expires, µs.
    pub expires_at: i64,
    /// Last used, µs (kept to within a minute).
    pub last_used_at: Option<i64>,
    /// The address of the last use.
    pub last_used_ip: Option<String>,
    /// Revoked, µs.
    pub revoked_at: Option<i64>,
    /// Why.
    pub revoked_reason: Option<String>,
    /// The organization it acts in (the one its creator's session was in).
    pub organization_id: Uuid,
}

macro_rules! columns {
    () => {
        "id, user_id, name, permissions, workspace_id, created_at, expires_at, last_used_at, \
         last_used_ip, revoked_at, revoked_reason, organization_id"
    };
}

impl Tx {
    /// Stores a new token under the hash of its secret.
    pub async fn insert_personal_token(
        &mut self,
        row: &PersonalTokenRow,
        hash: &[u8],
    ) -> Result<(), StoreError> {
        on_tx!(self, |c| sqlx::query(
            "INSERT INTO personal_tokens (id, user_id, name, hash, permissions, workspace_id, \
             created_at, expires_at, organization_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        )
        .bind(row.id)
        .bind(row.user_id)
        .bind(&row.name)
        .bind(hash)
        .bind(&row.permissions)
        .bind(row.workspace_id)
        .bind(row.created_at)
        .bind(row.expires_at)
        .bind(row.organization_id)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Serialises changes to one user's tokens until this transaction ends (PostgreSQL; a
    /// SQLite write transaction is already exclusive).
    pub async fn lock_user_tokens(&mut self, user: Uuid) -> Result<(), StoreError> {
        if let crate::db::TxInner::Postgres(t) = &mut self.inner {
            sqlx::query("SELECT id FROM users WHERE id = $1 FOR UPDATE")
                .bind(user)
                .execute(&mut **t)
                .await?;
        }
        Ok(())
    }

    /// How many of `user`'s tokens are neither revoked nor expired.
    pub async fn count_live_personal_tokens(
        &mut self,
        user: Uuid,
        now: i64,
    ) -> Result<i64, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM personal_tokens WHERE user_id = $1 AND revoked_at IS NULL \
             AND expires_at > $2"
        )
        .bind(user)
        .bind(now)
        .fetch_one(c)
        .await)?)
    }

    /// The token whose secret hashes to `hash`, with whether its expiry was already recorded.
    pub async fn personal_token_by_hash(
        &mut self,
        hash: &[u8],
    ) -> Result<Option<(PersonalTokenRow, bool)>, StoreError> {
        let row = on_tx!(self, |c| sqlx::query_as::<_, PersonalTokenRow>(concat!(
            "SELECT ",
            columns!(),
            " FROM personal_tokens WHERE hash = $1"
        ))
        .bind(hash)
        .fetch_optional(c)
        .await)?;
        let Some(row) = row else { return Ok(None) };
        let recorded = on_tx!(self, |c| sqlx::query_scalar::<_, bool>(
            "SELECT expiry_recorded FROM personal_tokens WHERE id = $1"
        )
        .bind(row.id)
        .fetch_one(c)
        .await)?;
        Ok(Some((row, recorded)))
    }

    /// One token by id.
    pub async fn personal_token(
        &mut self,
        id: Uuid,
    ) -> Result<Option<PersonalTokenRow>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_as::<_, PersonalTokenRow>(
            concat!("SELECT ", columns!(), " FROM personal_tokens WHERE id = $1")
        )
        .bind(id)
        .fetch_optional(c)
        .await)?)
    }

    /// Tokens of `user` (every user's when `None`), newest first, at most 1,000: live ones and
    /// those that ended (revoked or expired) after `ended_since`.
    pub async fn personal_tokens(
        &mut self,
        user: Option<Uuid>,
        ended_since: i64,
    ) -> Result<Vec<PersonalTokenRow>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_as::<_, PersonalTokenRow>(
            concat!(
                "SELECT ",
                columns!(),
                " FROM personal_tokens WHERE ($1 IS NULL OR user_id = $1) \
             AND COALESCE(revoked_at, expires_at) > $2 ORDER BY created_at DESC LIMIT 1000"
            )
        )
        .bind(user)
        .bind(ended_since)
        .fetch_all(c)
        .await)?)
    }

    /// Ids of `user`'s tokens that are not revoked.
    pub async fn unrevoked_personal_token_ids(
        &mut self,
        user: Uuid,
    ) -> Result<Vec<Uuid>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_scalar::<_, Uuid>(
            "SELECT id FROM personal_tokens WHERE user_id = $1 AND revoked_at IS NULL"
        )
        .bind(user)
        .fetch_all(c)
        .await)?)
    }

    /// Revokes the given tokens that are not yet revoked and logs each revocation (as a
    /// session, so every node refuses it at once). Returns the ids revoked and the last log
    /// position written.
    pub async fn revoke_personal_tokens(
        &mut self,
        ids: &[Uuid],
        now: i64,
        reason: &str,
    ) -> Result<(Vec<Uuid>, Option<i64>), StoreError> {
        let mut revoked = Vec::new();
        let mut last = None;
        for id in ids {
            let n = on_tx!(self, |c| sqlx::query(
                "UPDATE personal_tokens SET revoked_at = $2, revoked_reason = $3 \
                 WHERE id = $1 AND revoked_at IS NULL"
            )
            .bind(id)
            .bind(now)
            .bind(reason)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
            if n == 1 {
                revoked.push(*id);
                last = Some(self.log_revocation("session", *id, now).await?);
            }
        }
        Ok((revoked, last))
    }

    /// Marks a token's expiry as recorded; `true` the first time only.
    pub async fn record_personal_token_expiry(&mut self, id: Uuid) -> Result<bool, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query(
            "UPDATE personal_tokens SET expiry_recorded = TRUE \
             WHERE id = $1 AND expiry_recorded = FALSE"
        )
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected() == 1))?)
    }

    /// Notes a use: the time and address of the last use, and the address among those seen.
    /// `true` when the address is new for this token.
    pub async fn note_personal_token_use(
        &mut self,
        id: Uuid,
        ip: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        on_tx!(self, |c| sqlx::query(
            "UPDATE personal_tokens SET last_used_at = $2, last_used_ip = $3 WHERE id = $1"
        )
        .bind(id)
        .bind(now)
        .bind(ip)
        .execute(c)
        .await
        .map(drop))?;
        Ok(on_tx!(self, |c| sqlx::query(
            "INSERT INTO personal_token_addresses (token_id, ip, first_seen) VALUES ($1, $2, $3) \
             ON CONFLICT (token_id, ip) DO NOTHING"
        )
        .bind(id)
        .bind(ip)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected() == 1))?)
    }
}
