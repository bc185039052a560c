//! Single-use links Warden emails (magic sign-in links, password resets), by purpose. Only
//! hashes are stored; a link is taken at most once, and only while it is the newest of its
//! purpose for its person and unexpired.

use uuid::Uuid;

use crate::db::on_tx;
use crate::{StoreError, Tx};

/// What a link is for. Each purpose is its own namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    /// Signs the person in.
    MagicLink,
    /// Lets the person choose a new password.
    PasswordReset,
}

impl LinkPurpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::MagicLink => "magic_link",
            Self::PasswordReset => "password_reset",
        }
    }
}

impl Tx {
    /// Stores a new link for `user_id`, ending the person's earlier live links of the same
    /// purpose (a newer link supersedes them).
    pub async fn issue_email_link(
        &mut self,
        purpose: LinkPurpose,
        hash: &[u8],
        user_id: Uuid,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        on_tx!(self, |c| sqlx::query(
            "UPDATE email_links SET ended_at = $3, ended_why = 'superseded' \
             WHERE user_id = $1 AND purpose = $2 AND ended_at IS NULL"
        )
        .bind(user_id)
        .bind(purpose.as_str())
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
        on_tx!(self, |c| sqlx::query(
            "INSERT INTO email_links (hash, purpose, user_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)"
        )
        .bind(hash)
        .bind(purpose.as_str())
        .bind(user_id)
        .bind(now)
        .bind(expires_at)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Takes a link: the user it was issued to, only for a live (unused, not superseded,
    /// unexpired) link of this purpose, and only once.
    pub async fn take_email_link(
        &mut self,
        purpose: LinkPurpose,
        hash: &[u8],
        now: i64,
    ) -> Result<Option<Uuid>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_scalar::<_, Uuid>(
            "UPDATE email_links SET ended_at = $3, ended_why = 'used' \
             WHERE hash = $1 AND purpose = $2 AND ended_at IS NULL AND expires_at > $3 \
             RETURNING user_id"
        )
        .bind(hash)
        .bind(purpose.as_str())
        .bind(now)
        .fetch_optional(c)
        .await)?)
    }

    /// Whether a link of this purpose is live (for a page that shows a form before the link
    /// is taken).
    pub async fn email_link_live(
        &mut self,
        purpose: LinkPurpose,
        hash: &[u8],
        now: i64,
    ) -> Result<bool, StoreError> {
        Ok(self.email_link_holder(purpose, hash, now).await?.is_some())
    }

    /// Whom a live link of this purpose was issued to, without taking it.
    pub async fn email_link_holder(
        &mut self,
        purpose: LinkPurpose,
        hash: &[u8],
        now: i64,
    ) -> Result<Option<Uuid>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_scalar::<_, Uuid>(
            "SELECT user_id FROM email_links \
             WHERE hash = $1 AND purpose = $2 AND ended_at IS NULL AND expires_at > $3"
        )
        .bind(hash)
        .bind(purpose.as_str())
        .bind(now)
        .fetch_optional(c)
        .await)?)
    }

    /// Ends every live link of a user (their password changed: a reset link mailed before
    /// must not work after).
    pub async fn end_email_links(&mut self, user_id: Uuid, now: i64) -> Result<(), StoreError> {
        on_tx!(self, |c| sqlx::query(
            "UPDATE email_links SET ended_at = $2, ended_why = 'password_changed' \
             WHERE user_id = $1 AND ended_at IS NULL"
        )
        .bind(user_id)
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }
}
