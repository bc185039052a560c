//! Passkeys in storage: each user's registered WebAuthn credentials, and the ceremonies in
//! progress (registration or sign-in), each found by the hash of its handle and used once.

use uuid::Uuid;

use crate::db::on_tx;
use crate::{StoreError, Tx};

/// A registered passkey.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PasskeyRow {
    /// Its id.
    pub id: Uuid,
    /// Whose it is.
    pub user_id: Uuid,
    /// The credential id the authenticator chose (unique across users).
    pub credential_id: Vec<u8>,
    /// What its owner calls it.
    pub name: String,
    /// The credential as the WebAuthn library keeps it (JSON).
    pub passkey: String,
    /// Registered, µs.
    pub created_at: i64,
    /// Last signed in with, µs.
    pub last_used_at: Option<i64>,
    /// When its sign counter went backwards (it signs nobody in since).
    pub flagged_at: Option<i64>,
    /// Why it was flagged.
    pub flagged_reason: Option<String>,
}

macro_rules! columns {
    () => {
        "id, user_id, credential_id, name, passkey, created_at, last_used_at, flagged_at, \
         flagged_reason"
    };
}

/// A ceremony in progress.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CeremonyRow {
    /// `register` or `sign_in`.
    pub kind: String,
    /// For a registration: who registers.
    pub user_id: Option<Uuid>,
    /// For a registration: the session that started it.
    pub session_id: Option<Uuid>,
    /// The library's state (JSON).
    pub state: String,
    /// Expires, µs.
    pub expires_at: i64,
}

impl Tx {
    /// Stores a ceremony under `hash` (and drops those that expired).
    pub async fn insert_webauthn_ceremony(
        &mut self,
        hash: &[u8],
        row: &CeremonyRow,
        now: i64,
    ) -> Result<(), StoreError> {
        on_tx!(self, |c| sqlx::query(
            "DELETE FROM webauthn_ceremonies WHERE expires_at < $1"
        )
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
        on_tx!(self, |c| sqlx::query(
            "INSERT INTO webauthn_ceremonies (hash, kind, user_id, session_id, state, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        )
        .bind(hash)
        .bind(&row.kind)
        .bind(row.user_id)
        .bind(row.session_id)
        .bind(&row.state)
        .bind(now)
        .bind(row.expires_at)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Takes the ceremony `hash` names (deleting it, so it is used at most once), if it is
    /// of `kind` and unexpired.
    pub async fn take_webauthn_ceremony(
        &mut self,
        hash: &[u8],
        kind: &str,
        now: i64,
    ) -> Result<Option<CeremonyRow>, StoreError> {
        let row = on_tx!(self, |c| sqlx::query_as::<_, CeremonyRow>(
            "DELETE FROM webauthn_ceremonies WHERE hash = $1 \
             RETURNING kind, user_id, session_id, state, expires_at"
        )
        .bind(hash)
        .fetch_optional(c)
        .await)?;
        Ok(row.filter(|r| r.kind == kind && r.expires_at > now))
    }

    /// Registers a passkey; `false` when its credential id is registered already (to anyone).
    pub async fn insert_passkey(&mut self, row: &PasskeyRow) -> Result<bool, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query(
            "INSERT INTO passkeys (id, user_id, credential_id, name, passkey, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (credential_id) DO NOTHING"
        )
        .bind(row.id)
        .bind(row.user_id)
        .bind(&row.credential_id)
        .bind(&row.name)
        .bind(&row.passkey)
        .bind(row.created_at)
        .execute(c)
        .await
        .map(|r| r.rows_affected() == 1))?)
    }

    /// The passkey with this credential id, whoever's it is.
    pub async fn passkey_by_credential(
        &mut self,
        credential_id: &[u8],
    ) -> Result<Option<PasskeyRow>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_as::<_, PasskeyRow>(concat!(
            "SELECT ",
            columns!(),
            " FROM passkeys WHERE credential_id = $1"
        ))
        .bind(credential_id)
        .fetch_optional(c)
        .await)?)
    }

    /// A user's passkeys, oldest first.
    pub async fn passkeys_of(&mut self, user_id: Uuid) -> Result<Vec<PasskeyRow>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_as::<_, PasskeyRow>(concat!(
            "SELECT ",
            columns!(),
            " FROM passkeys WHERE user_id = $1 ORDER BY created_at, id"
        ))
        .bind(user_id)
        .fetch_all(c)
        .await)?)
    }

    /// Records a sign-in with the passkey: its updated credential (sign counter) and the time.
    pub async fn passkey_used(
        &mut self,
        id: Uuid,
        passkey: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        on_tx!(self, |c| sqlx::query(
            "UPDATE passkeys SET passkey = $2, last_used_at = $3 WHERE id = $1"
        )
        .bind(id)
        .bind(passkey)
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Flags a passkey (once); `false` when it was flagged already.
    pub async fn flag_passkey(
        &mut self,
        id: Uuid,
        reason: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query(
            "UPDATE passkeys SET flagged_at = $2, flagged_reason = $3 \
             WHERE id = $1 AND flagged_at IS NULL"
        )
        .bind(id)
        .bind(now)
        .bind(reason)
        .execute(c)
        .await
        .map(|r| r.rows_affected() == 1))?)
    }

    /// Removes one of a user's passkeys; the removed row, or `None` if they have no such one.
    pub async fn delete_passkey(
        &mut self,
        user_id: Uuid,
        id: Uuid,
    ) -> Result<Option<PasskeyRow>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_as::<_, PasskeyRow>(concat!(
            "DELETE FROM passkeys WHERE id = $1 AND user_id = $2 RETURNING ",
            columns!()
        ))
        .bind(id)
        .bind(user_id)
        .fetch_optional(c)
        .await)?)
    }

    /// Every user's passkeys (or one user's), newest first, for administrators.
    pub async fn all_passkeys(
        &mut self,
        user_id: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<PasskeyRow>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_as::<_, PasskeyRow>(concat!(
            "SELECT ",
            columns!(),
            " FROM passkeys WHERE ($1 IS NULL OR user_id = $1) ORDER BY created_at DESC LIMIT $2"
        ))
        .bind(user_id)
        .bind(limit)
        .fetch_all(c)
        .await)?)
    }

    /// Whether the user can sign in through single sign-on (has a linked identity at a
    /// provider that is configured).
    pub async fn user_has_sso(&mut self, user_id: Uuid) -> Result<bool, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM sso_identities WHERE user_id = $1"
        )
        .bind(user_id)
        .fetch_one(c)
        .await)?
            > 0)
    }

    /// When the session was signed in (µs), if it exists and is not revoked.
    pub async fn session_signed_in_at(
        &mut self,
        session_id: Uuid,
    ) -> Result<Option<i64>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_scalar::<_, i64>(
            "SELECT created_at FROM sessions WHERE id = $1 AND revoked_at IS NULL"
        )
        .bind(session_id)
        .fetch_optional(c)
        .await)?)
    }
}
