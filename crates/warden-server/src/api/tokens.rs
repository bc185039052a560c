//! Personal access tokens: each user creates, lists and revokes their own; administrators
//! list and revoke anyone's, and can end everything a user is signed in with. Rules are
//! `warden_core::identity::tokens`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;
use warden_core::identity::tokens::{self, NewToken};
use warden_domain::access::{Access, Permission};
use warden_store::personal_tokens::PersonalTokenRow;

use super::admin::SessionFilter;
use crate::http::authz::{PlatformAccess, UserOp};
use crate::http::json::ApiJson;
use crate::http::problem::ApiError;
use crate::http::query::ApiQuery;
use crate::http::routes::Routes;
use crate::identity::Caller;
use crate::state::AppState;
use warden_core::op::rfc3339;

pub(crate) fn routes() -> Routes<AppState> {
    use Access::Platform;
    Routes::new()
        .add(Access::SignedIn, routes!(create))
        .add(Access::SignedIn, routes!(mine))
        .add(Access::SignedIn, routes!(revoke_mine))
        .add(Platform(Permission::SESSIONS_READ), routes!(all))
        .add(Platform(Permission::SESSIONS_DELETE), routes!(revoke_any))
        .add(
            Platform(Permission::SESSIONS_DELETE),
            routes!(revoke_everything),
        )
}

/// A token to create.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateToken {
    /// A name to recognise it by (1–100 characters).
    pub name: String,
    /// Permission names (`area.verb`), each one you hold.
    pub permissions: Vec<String>,
    /// Bind the token to this workspace (platform-wide routes are then refused).
    pub workspace_id: Option<String>,
    /// Lifetime in days, 7 to 365. Required: tokens always expire.
    pub expires_in_days: u32,
}

/// A personal access token (never its secret, except once in [`CreatedToken`]).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    /// Its id.
    pub id: String,
    /// The owner.
    pub user_id: String,
    /// Its name.
    pub name: String,
    /// What it may do at most (intersected with the owner's grants on every use).
    pub permissions: Vec<String>,
    /// The one workspace it may reach, if bound.
    pub workspace_id: Option<String>,
    /// `active`, `expired` or `revoked`.
    pub status: &'static str,
    /// Created, RFC 3339.
    pub created_at: String,
    /// Expires, RFC 3339.
    pub expires_at: String,
    /// Last used (to within a minute), RFC 3339.
    pub last_used_at: Option<String>,
    /// The address of the last use.
    pub last_used_ip: Option<String>,
    /// Revoked, RFC 3339.
    pub revoked_at: Option<String>,
}

/// A token just created: the secret is shown here once and never again.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// The secret (`wdn_pat_…`). Store it now: Warden keeps only its hash.
    pub token: String,
    /// The token.
    #[serde(flatten)]
    pub details: TokenView,
}

fn view(r: PersonalTokenRow, now_us: i64) -> TokenView {
    let status = if r.revoked_at.is_some() {
        "revoked"
    } else if r.expires_at <= now_us {
        "expired"
    } else {
        "active"
    };
    TokenView {
        id: r.id.to_string(),
        user_id: r.user_id.to_string(),
        name: r.name,
        permissions: r.permissions.split(' ').map(str::to_owned).collect(),
        workspace_id: r.workspace_id.map(|w| w.to_string()),
        status,
        created_at: rfc3339(r.created_at),
        expires_at: rfc3339(r.expires_at),
        last_used_at: r.last_used_at.map(rfc3339),
        last_used_ip: r.last_used_ip,
        revoked_at: r.revoked_at.map(rfc3339),
    }
}

/// Creates a personal access token for the signed-in user. Needs a signed-in session (a
/// token cannot make tokens); at most 25 active per user.
#[utoipa::path(post, path = "/api/v1/me/tokens", tag = "me", request_body = CreateToken,
    responses(
        (status = 201, description = "Created; the secret is in `token`, shown once", body = CreatedToken),
        (status = 403, description = "A permission you do not hold, or asked with a token", content_type = "application/problem+json"),
        (status = 409, description = "25 active tokens already", content_type = "application/problem+json"),
        (status = 422, description = "Invalid name, permissions or lifetime", content_type = "application/problem+json")))]
pub(crate) async fn create(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    caller: Caller,
    ApiJson(input): ApiJson<CreateToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let input = NewToken {
        name: input.name,
        permissions: input.permissions,
        workspace_id: input.workspace_id,
        expires_in_days: input.expires_in_days,
    };
    let created = tokens::create(&state.ctx, &op, &caller.principal, input).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token: created.secret.to_string(),
            details: view(created.row, op.now_us()),
        }),
    ))
}

/// The signed-in user's tokens: active ones and those ended in the last 30 days.
#[utoipa::path(get, path = "/api/v1/me/tokens", tag = "me",
    responses((status = 200, description = "Tokens, newest first", body = Vec<TokenView>)))]
pub(crate) async fn mine(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    caller: Caller,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    let rows = tokens::mine(&state.ctx, &op, &caller.principal).await?;
    let now = op.now_us();
    Ok(Json(rows.into_iter().map(|r| view(r, now)).collect()))
}

/// Revokes one of the signed-in user's tokens, at once, on every node.
#[utoipa::path(delete, path = "/api/v1/me/tokens/{id}", tag = "me",
    params(("id" = String, Path, description = "Token id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such token of yours", content_type = "application/problem+json")))]
pub(crate) async fn revoke_mine(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    tokens::revoke_mine(&state.ctx, &op, &caller.principal, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every user's personal access tokens, optionally of one user.
#[utoipa::path(get, path = "/api/v1/admin/tokens", tag = "admin", params(SessionFilter),
    responses((status = 200, description = "Tokens, newest first", body = Vec<TokenView>),
        (status = 404, description = "`user_id` names no user", content_type = "application/problem+json")))]
pub(crate) async fn all(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    ApiQuery(filter): ApiQuery<SessionFilter>,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    let rows = tokens::all(&state.ctx, &op, &grant, filter.user_id.as_deref()).await?;
    let now = op.now_us();
    Ok(Json(rows.into_iter().map(|r| view(r, now)).collect()))
}

/// Revokes anyone's personal access token, at once, on every node.
#[utoipa::path(delete, path = "/api/v1/admin/tokens/{id}", tag = "admin",
    params(("id" = String, Path, description = "Token id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such token", content_type = "application/problem+json")))]
pub(crate) async fn revoke_any(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    tokens::revoke_any(&state.ctx, &op, &grant, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What "revoke everything" ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevokedEverything {
    /// Device sessions ended.
    pub sessions: usize,
    /// Personal access tokens revoked.
    pub tokens: usize,
}

/// Ends every device session and revokes every personal access token of a user, at once,
/// on every node.
#[utoipa::path(post, path = "/api/v1/admin/users/{id}/revoke-all", tag = "admin",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "Ended", body = RevokedEverything),
        (status = 404, description = "No such user", content_type = "application/problem+json")))]
pub(crate) async fn revoke_everything(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    Path(id): Path<String>,
) -> Result<Json<RevokedEverything>, ApiError> {
    let (sessions, tokens) = tokens::revoke_everything(&state.ctx, &op, &grant, &id).await?;
    Ok(Json(RevokedEverything { sessions, tokens }))
}
