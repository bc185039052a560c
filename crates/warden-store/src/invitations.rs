//! Invitations: who was invited with which platform role, by whom, and what became of it.
//! Only the hash of an invitation's secret is stored; it is taken at most once.

use uuid::Uuid;

use crate::db::on_tx;
use crate::{StoreError, Tx};

/// An invitation.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvitationRow {
    /// Its id.
    pub id: Uuid,
    /// The invited address (normalised).
    pub email: String,
    /// The platform role the account gets.
    pub platform_role: String,
    /// Who invited (absent if that account is gone).
    pub invited_by: Option<Uuid>,
    /// When sent, µs.
    pub created_at: i64,
    /// When it stops working, µs.
    pub expires_at: i64,
    /// When accepted, µs.
    pub accepted_at: Option<i64>,
    /// The account it created.
    pub accepted_user: Option<Uuid>,
    /// When revoked, µs.
    pub revoked_at: Option<i64>,
}

/// A new invitation.
#[derive(Debug)]
pub struct NewInvitation<'a> {
    /// Its id.
    pub id: Uuid,
    /// SHA-256 of its secret.
    pub hash: &'a [u8],
    /// The invited address (normalised).
    pub email: &'a str,
    /// The platform role.
    pub platform_role: &'a str,
    /// Who invites.
    pub invited_by: Uuid,
    /// Now, µs.
    pub now: i64,
    /// When it stops working, µs.
    pub expires_at: i64,
}

macro_rules! columns {
    () => {
        "id, email, platform_role, invited_by, created_at, expires_at, accepted_at, \
         accepted_user, revoked_at"
    };
}

impl Tx {
    /// Stores an invitation, revoking any pending one to the same address (returned).
    pub async fn create_invitation(
        &mut self,
        i: &NewInvitation<'_>,
    ) -> Result<Vec<Uuid>, StoreError> {
        let revoked = on_tx!(self, |c| sqlx::query_scalar::<_, Uuid>(
            "UPDATE invitations SET revoked_at = $2 WHERE email = $1 AND accepted_at IS NULL \
             AND revoked_at IS NULL AND expires_at > $2 RETURNING id"
        )
        .bind(i.email)
        .bind(i.now)
        .fetch_all(c)
        .await)?;
        on_tx!(self, |c| sqlx::query(
            "INSERT INTO invitations (id, hash, email, platform_role, invited_by, created_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        )
        .bind(i.id)
        .bind(i.hash)
        .bind(i.email)
        .bind(i.platform_role)
        .bind(i.invited_by)
        .bind(i.now)
        .bind(i.expires_at)
        .execute(c)
        .await
        .map(drop))?;
        Ok(revoked)
    }

    /// Invitations, newest first, before the cursor (a creation time, µs).
    pub async fn list_invitations(
        &mut self,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<InvitationRow>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_as::<_, InvitationRow>(
            concat!(
                "SELECT ",
                columns!(),
                " FROM invitations WHERE created_at < $1 ORDER BY created_at DESC, id DESC LIMIT $2"
            )
        )
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(c)
        .await)?)
    }

    /// Revokes a pending invitation. False when there is none by that id, or it is no
    /// longer pending.
    pub async fn revoke_invitation(&mut self, id: Uuid, now: i64) -> Result<bool, StoreError> {
        let n = on_tx!(self, |c| sqlx::query(
            "UPDATE invitations SET revoked_at = $2 WHERE id = $1 AND accepted_at IS NULL \
             AND revoked_at IS NULL AND expires_at > $2"
        )
        .bind(id)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// A pending invitation by its secret's hash, without taking it.
    pub async fn pending_invitation(
        &mut self,
        hash: &[u8],
        now: i64,
    ) -> Result<Option<InvitationRow>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_as::<_, InvitationRow>(
            concat!(
                "SELECT ",
                columns!(),
                " FROM invitations WHERE hash = $1 AND accepted_at IS NULL AND revoked_at IS NULL \
             AND expires_at > $2"
            )
        )
        .bind(hash)
        .bind(now)
        .fetch_optional(c)
        .await)?)
    }

    /// Takes a pending invitation for the account it created: once.
    pub async fn accept_invitation(
        &mut self,
        hash: &[u8],
        user_id: Uuid,
        now: i64,
    ) -> Result<bool, StoreError> {
        let n = on_tx!(self, |c| sqlx::query(
            "UPDATE invitations SET accepted_at = $3, accepted_user = $2 WHERE hash = $1 \
             AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $3"
        )
        .bind(hash)
        .bind(user_id)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}
