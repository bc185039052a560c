//! Creating users: from the API, the first-run setup page and the command line.

use serde::Serialize;
use uuid::Uuid;
use warden_domain::audit::{Actor, Outcome};
use warden_domain::identity::{PasswordProblem, check_password, normalize_email};

use crate::license::License;
use crate::{Code, CoreError, CoreResult, Ctx, Op, Origin};
use warden_domain::clock::SystemClock;
use warden_store::Store;
use warden_store::audit::ChainKey;

/// A created user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedUser {
    /// Id.
    pub id: Uuid,
    /// Email (normalised).
    pub email: String,
    /// Platform role.
    pub platform_role: String,
}

/// Validates, hashes and stores a new user with its audit event.
pub async fn create(
    ctx: &Ctx,
    op: &Op,
    email: &str,
    password: String,
    platform_role: &str,
) -> CoreResult<CreatedUser> {
    insert(
        &ctx.store,
        &ctx.license,
        &ctx.audit_key,
        op,
        email,
        password,
        platform_role,
    )
    .await
}

/// `warden user create`: the same, from the command line, audited as the system.
pub async fn create_offline(
    store: &Store,
    license: &License,
    chain: &ChainKey,
    email: &str,
    password: String,
    platform_role: &str,
) -> Result<CreatedUser, String> {
    let op = Op::new(Actor::system(), Origin::default(), &SystemClock);
    insert(store, license, chain, &op, email, password, platform_role)
        .await
        .map_err(|e| e.detail.to_owned())
}

async fn insert(
    store: &Store,
    license: &License,
    chain: &ChainKey,
    op: &Op,
    email: &str,
    password: String,
    platform_role: &str,
) -> CoreResult<CreatedUser> {
    let email = validate_new_user(email, &password)?;
    let hash = crate::costly::passwords()
        .hash(password)
        .await?
        .map_err(|e| CoreError::internal(&e))?;
    let id = Uuid::now_v7();
    let mut tx = store.begin().await?;
    if tx.user_by_email(&email).await?.is_some() {
        return Err(Code::EmailTaken.into());
    }
    if tx.role(platform_role).await?.is_none() {
        return Err(Code::UnknownRole.into());
    }
    admit_user(license, &mut tx).await?;
    tx.create_user(id, &email, &hash, platform_role, op.now_us())
        .await?;
    let summary = warden_domain::audit::summarize(&UserCreated {
        email: email.clone(),
        password: "x",
        platform_role: platform_role.to_owned(),
    })
    .map_err(|e| CoreError::internal(&e))?;
    let event = op.event_with(
        "user.created",
        "user",
        Some(id.to_string()),
        Outcome::Success,
        summary,
    );
    tx.record(chain, &event).await?;
    tx.commit().await?;
    Ok(CreatedUser {
        id,
        email,
        platform_role: platform_role.to_owned(),
    })
}

/// The licence's user limit: every path that adds an active user (creation, reactivation)
/// calls this inside its transaction, before the change, so a refusal leaves nothing behind.
/// Admissions are serialised (so two at once cannot both take the last place). Users already
/// active stay active when a renewal lowers the limit; only new ones are refused.
pub async fn admit_user(license: &License, tx: &mut warden_store::Tx) -> CoreResult<()> {
    let Some(limit) = license.user_limit() else {
        return Ok(());
    };
    tx.lock_user_admission().await?;
    let active = tx.active_users().await?;
    if active >= i64::from(limit) {
        return Err(Code::UserLimitReached.into());
    }
    Ok(())
}

/// What a user creation's audit event keeps.
#[derive(Debug, Serialize)]
pub struct UserCreated {
    /// Email.
    pub email: String,
    /// Masked.
    pub password: &'static str,
    /// Platform role.
    pub platform_role: String,
}
warden_domain::audited!(UserCreated {
    email: Value,
    password: Changed,
    platform_role: Value
});

/// Normalises the email and checks the password against the policy.
pub fn validate_new_user(email: &str, password: &str) -> CoreResult<String> {
    let email = normalize_email(email).map_err(|_| CoreError::new(Code::InvalidEmail))?;
    check_password(password, &email).map_err(|p| policy_error(&p))?;
    Ok(email)
}

/// The error for a password the policy refuses; never echoes the password.
pub fn policy_error(p: &PasswordProblem) -> CoreError {
    use PasswordProblem as P;
    let detail = match p {
        P::TooShort => "The password must be at least 12 characters long.",
        P::TooLong => "The password must be at most 256 characters long.",
        P::Common => {
            "This password is too common; choose one that is not on lists of leaked passwords."
        }
        P::ContainsEmail => "The password must not contain the email address.",
    };
    CoreError::with_detail(Code::WeakPassword, detail)
}
