//! First run: creating the first platform administrator through the one-time setup link
//! (single use, expiring), once.

use serde_json::json;
use uuid::Uuid;
use warden_domain::audit::{Actor, Outcome};

use super::SETUP_PREFIX;
use super::users::{UserCreated, validate_new_user};
use crate::{CoreError, CoreResult, Ctx, Op};

/// What a setup attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// The administrator was created.
    Created(Uuid),
    /// The link is not valid: used, expired or mistyped.
    BadLink,
    /// An administrator exists already.
    Done,
}

/// How long a setup link stays valid.
const SETUP_LINK_TTL_SECS: i64 = 3600;

/// With no administrator yet, makes a one-time setup token (valid for an hour; only its hash
/// is stored) and returns it; `None` once an administrator exists. Run by `warden serve` at
/// start-up, as the system.
pub async fn issue_link(
    store: &warden_store::Store,
    clock: &dyn warden_domain::clock::Clock,
) -> CoreResult<Option<zeroize::Zeroizing<String>>> {
    let mut tx = store.begin().await?;
    if tx.count_admins().await? > 0 {
        tx.rollback().await?;
        return Ok(None);
    }
    let issued = warden_crypto::token::issue(SETUP_PREFIX).map_err(|e| CoreError::internal(&e))?;
    let now = super::now_us(clock);
    tx.insert_setup_token(&issued.hash, now, now + SETUP_LINK_TTL_SECS * 1_000_000)
        .await?;
    tx.commit().await?;
    Ok(Some(issued.secret))
}

/// Whether an administrator exists (setup is complete).
pub async fn admin_exists(ctx: &Ctx) -> CoreResult<bool> {
    let mut tx = ctx.store.begin_read().await?;
    let n = tx.count_admins().await?;
    tx.commit().await?;
    Ok(n > 0)
}

/// Whether `token` has the shape of a setup token (checked before any work).
pub fn well_formed(token: &str) -> bool {
    warden_crypto::token::well_formed(token, SETUP_PREFIX)
}

/// Creates the first administrator, audited as the system: the email and password are
/// checked first, then the link is claimed in the transaction that creates the account.
pub async fn create_first_admin(
    ctx: &Ctx,
    op: &Op,
    token: &str,
    email: &str,
    password: String,
) -> CoreResult<Setup> {
    let email = validate_new_user(email, &password)?;
    if !well_formed(token) {
        return Ok(Setup::BadLink);
    }
    let hash = crate::costly::passwords()
        .hash(password)
        .await?
        .map_err(|e| CoreError::internal(&e))?;
    let now_us = op.now_us();
    let mut tx = ctx.store.begin().await?;
    if tx.count_admins().await? > 0 {
        return Ok(Setup::Done);
    }
    if !tx
        .claim_setup_token(&warden_crypto::token::hash(token), now_us)
        .await?
    {
        return Ok(Setup::BadLink);
    }
    let id = Uuid::now_v7();
    tx.create_user(id, &email, &hash, "admin", now_us).await?;
    let summary = warden_domain::audit::summarize(&UserCreated {
        email: email.clone(),
        password: "x",
        platform_role: "admin".to_owned(),
    })
    .unwrap_or_default();
    let event = op.event_by(
        Actor::system(),
        "user.created",
        "user",
        Some(id.to_string()),
        Outcome::Success,
        json!({"via": "setup_link", "input": summary}),
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    Ok(Setup::Created(id))
}
