//! The sign-in policy (password sign-in on or off, the break-glass account) and where each
//! account has signed in from.

use uuid::Uuid;

use crate::db::on_tx;
use crate::{StoreError, Tx};

/// The sign-in policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct SignInPolicy {
    /// Whether password sign-in is on for everyone.
    pub password_sign_in: bool,
    /// The one account that may use its password while it is off.
    pub break_glass_user: Option<Uuid>,
}

/// Whether a sign-in came from somewhere the account has been before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeenBefore {
    /// This network and user-agent family, before.
    Yes,
    /// Never from here, but the account has signed in before: unfamiliar.
    No,
    /// The account's first sign-in.
    First,
}

impl Tx {
    /// The sign-in policy.
    pub async fn sign_in_policy(&mut self) -> Result<SignInPolicy, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_as::<_, SignInPolicy>(
            "SELECT password_sign_in, break_glass_user FROM sign_in_policy WHERE id = 1"
        )
        .fetch_one(c)
        .await)?)
    }

    /// Sets the sign-in policy.
    pub async fn set_sign_in_policy(
        &mut self,
        policy: SignInPolicy,
        now: i64,
    ) -> Result<(), StoreError> {
        on_tx!(self, |c| sqlx::query(
            "UPDATE sign_in_policy SET password_sign_in = $1, break_glass_user = $2, \
             updated_at = $3 WHERE id = 1"
        )
        .bind(policy.password_sign_in)
        .bind(policy.break_glass_user)
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Records a sign-in from (`network`, `family`) and says whether the account had been
    /// there before.
    pub async fn note_sign_in_origin(
        &mut self,
        user_id: Uuid,
        network: &str,
        family: &str,
        now: i64,
    ) -> Result<SeenBefore, StoreError> {
        let known = on_tx!(self, |c| sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM sign_in_origins WHERE user_id = $1"
        )
        .bind(user_id)
        .fetch_one(c)
        .await)?;
        let existed = on_tx!(self, |c| sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM sign_in_origins \
             WHERE user_id = $1 AND network = $2 AND agent_family = $3"
        )
        .bind(user_id)
        .bind(network)
        .bind(family)
        .fetch_one(c)
        .await)?
            > 0;
        on_tx!(self, |c| sqlx::query(
            "INSERT INTO sign_in_origins (user_id, network, agent_family, first_seen, last_seen) \
             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (user_id, network, agent_family) \
             DO UPDATE SET last_seen = $4"
        )
        .bind(user_id)
        .bind(network)
        .bind(family)
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
        Ok(match (known, existed) {
            (0, _) => SeenBefore::First,
            (_, true) => SeenBefore::Yes,
            (_, false) => SeenBefore::No,
        })
    }
}
