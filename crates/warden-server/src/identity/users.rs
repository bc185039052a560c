//! Creating users: from the API, the first-run setup page and the command line.

use axum::http::StatusCode;
use uuid::Uuid;
use warden_domain::audit::{Actor, Outcome};

use super::now_us;
use crate::api::admin::{UserCreated, UserView, validate_new_user};
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
    platform_admin: bool,
) -> Result<UserView, ApiError> {
    insert(
        &state.store,
        &state.audit_key,
        state.clock.as_ref(),
        meta,
        actor,
        email,
        password,
        platform_admin,
    )
    .await
}

/// `warden user create`: the same, from the command line, audited as the system.
pub async fn create_offline(
    store: &Store,
    _keyring: &warden_crypto::Keyring,
    chain: &ChainKey,
    email: &str,
    password: String,
    platform_admin: bool,
) -> Result<UserView, String> {
    insert(
        store,
        chain,
        &SystemClock,
        &RequestMeta::none(),
        Actor::system(),
        email,
        password,
        platform_admin,
    )
    .await
    .map_err(|e| e.detail.to_owned())
}

#[allow(clippy::too_many_arguments)]
async fn insert(
    store: &Store,
    chain: &ChainKey,
    clock: &dyn Clock,
    meta: &RequestMeta,
    actor: Actor,
    email: &str,
    password: String,
    platform_admin: bool,
) -> Result<UserView, ApiError> {
    let email = validate_new_user(email, &password)?;
    let hash = tokio::task::spawn_blocking(move || warden_crypto::password::hash(&password))
        .await
        .map_err(|e| ApiError::internal(&e))?
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
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "email-taken",
            "A user with this email already exists.",
        ));
    }
    tx.create_user(id, &email, &hash, platform_admin, now_us(clock))
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let summary = warden_domain::audit::summarize(&UserCreated {
        email: email.clone(),
        password: "x",
        platform_admin,
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
        platform_admin,
    })
}
