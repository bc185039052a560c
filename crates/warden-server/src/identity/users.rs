//! Creating users: from the API, the first-run setup page and the command line.

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;
use warden_domain::audit::{Actor, Outcome};
use warden_domain::identity::{PasswordProblem, check_password, normalize_email};

use super::now_us;
use crate::audit::request::RequestMeta;
use crate::http::problem::ApiError;
use crate::state::AppState;
use warden_domain::clock::{Clock, SystemClock};
use warden_store::Store;
use warden_store::audit::ChainKey;

/// Validates, hashes and stores a new user with its audit event.
pub async fn create(
    state: &AppState,
    meta: &RequestMeta,
    actor: Actor,
    email: &str,
    password: String,
    platform_role: &str,
) -> Result<UserView, ApiError> {
    insert(
        &state.store,
        &state.license,
        &state.audit_key,
        state.clock.as_ref(),
        meta,
        actor,
        email,
        password,
        platform_role,
    )
    .await
}

/// `warden user create`: the same, from the command line, audited as the system.
pub async fn create_offline(
    store: &Store,
    license: &warden_core::license::License,
    chain: &ChainKey,
    email: &str,
    password: String,
    platform_role: &str,
) -> Result<UserView, String> {
    insert(
        store,
        license,
        chain,
        &SystemClock,
        &RequestMeta::none(),
        Actor::system(),
        email,
        password,
        platform_role,
    )
    .await
    .map_err(|e| e.0.detail.to_owned())
}

#[allow(clippy::too_many_arguments)]
async fn insert(
    store: &Store,
    license: &warden_core::license::License,
    chain: &ChainKey,
    clock: &dyn Clock,
    meta: &RequestMeta,
    actor: Actor,
    email: &str,
    password: String,
    platform_role: &str,
) -> Result<UserView, ApiError> {
    let email = validate_new_user(email, &password)?;
    let hash = warden_core::costly::passwords()
        .hash(password)
        .await?
        .map_err(|e| ApiError::internal(&e))?;
    let id = Uuid::now_v7();
    let now = clock.now();
    let mut tx = store.begin().await.map_err(|e| ApiError::internal(&e))?;
    if tx
        .user_by_email(&email)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .is_some()
    {
        return Err(ApiError::from(warden_core::Code::EmailTaken));
    }
    if tx
        .role(platform_role)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .is_none()
    {
        return Err(ApiError::from(warden_core::Code::UnknownRole));
    }
    admit_user(license, &mut tx).await?;
    tx.create_user(id, &email, &hash, platform_role, now_us(clock))
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let summary = warden_domain::audit::summarize(&UserCreated {
        email: email.clone(),
        password: "x",
        platform_role: platform_role.to_owned(),
    })
    .map_err(|e| ApiError::internal(&e))?;
    let event = meta.event(
        now,
        actor,
        "user.created",
        "user",
        Some(id.to_string()),
        Outcome::Success,
        summary,
    );
    tx.record(chain, &event)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    tx.commit().await.map_err(|e| ApiError::internal(&e))?;
    Ok(UserView {
        id: id.to_string(),
        email,
        platform_role: platform_role.to_owned(),
    })
}

/// The licence's user limit: every path that adds an active user (creation, reactivation)
/// calls this inside its transaction, before the change, so a refusal leaves nothing behind.
/// Admissions are serialised (so two at once cannot both take the last place). Users already
/// active stay active when a renewal lowers the limit; only new ones are refused.
pub async fn admit_user(
    license: &warden_core::license::License,
    tx: &mut warden_store::Tx,
) -> Result<(), ApiError> {
    let Some(limit) = license.user_limit() else {
        return Ok(());
    };
    tx.lock_user_admission()
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let active = tx
        .active_users()
        .await
        .map_err(|e| ApiError::internal(&e))?;
    if active >= i64::from(limit) {
        return Err(ApiError::from(warden_core::Code::UserLimitReached));
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

/// A created user.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// Id.
    pub id: String,
    /// Email.
    pub email: String,
    /// Platform role.
    pub platform_role: String,
}

/// Normalises the email and checks the password against the policy.
pub fn validate_new_user(email: &str, password: &str) -> Result<String, ApiError> {
    let email =
        normalize_email(email).map_err(|_| ApiError::from(warden_core::Code::InvalidEmail))?;
    check_password(password, &email).map_err(|p| policy_error(&p))?;
    Ok(email)
}

/// The problem document for a password the policy refuses; never echoes the password.
pub fn policy_error(p: &PasswordProblem) -> ApiError {
    use PasswordProblem as P;
    let detail = match p {
        P::TooShort => "The password must be at least 12 characters long.",
        P::TooLong => "The password must be at most 256 characters long.",
        P::Common => {
            "This password is too common; choose one that is not on lists of leaked passwords."
        }
        P::ContainsEmail => "The password must not contain the email address.",
    };
    ApiError(warden_core::CoreError::with_detail(
        warden_core::Code::WeakPassword,
        detail,
    ))
}
