//! The tokens directories provision with over SCIM (`/scim/v2`): created by an administrator
//! who manages users, shown once, revoked at once.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;
use warden_domain::access::{Access, Permission};
use warden_store::scim::ScimTokenRow;

use super::me::rfc3339;
use crate::http::authz::{PlatformAccess, UserOp};
use crate::http::json::ApiJson;
use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    use Access::Platform;
    Routes::new()
        .add(Platform(Permission::USERS_READ), routes!(list))
        .add(Platform(Permission::USERS_UPDATE), routes!(create))
        .add(Platform(Permission::USERS_UPDATE), routes!(revoke))
}

/// A SCIM token, never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScimTokenView {
    /// Id.
    pub id: String,
    /// Name (which directory uses it).
    pub name: String,
    /// Who created it.
    pub created_by: String,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Last used, to within a minute (RFC 3339).
    pub last_used_at: Option<String>,
    /// Revoked (RFC 3339).
    pub revoked_at: Option<String>,
}

fn view(t: ScimTokenRow) -> ScimTokenView {
    ScimTokenView {
        id: t.id.to_string(),
        name: t.name,
        created_by: t.created_by.to_string(),
        created_at: rfc3339(t.created_at),
        last_used_at: t.last_used_at.map(rfc3339),
        revoked_at: t.revoked_at.map(rfc3339),
    }
}

/// A new token with its secret, shown this once.
#[derive(Serialize, ToSchema)]
pub struct ScimTokenWithSecret {
    /// The token.
    pub token: ScimTokenView,
    /// The bearer secret (`wdn_scim_…`) to give the directory; shown this once.
    pub secret: String,
    /// The SCIM base URL to give the directory.
    pub scim_url: String,
}

impl std::fmt::Debug for ScimTokenWithSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimTokenWithSecret")
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// A new token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewScimToken {
    /// Name (which directory will use it), 1–100 characters.
    pub name: String,
}

/// Every SCIM token, newest first.
#[utoipa::path(get, path = "/api/v1/scim/tokens", tag = "scim",
    responses((status = 200, description = "Tokens, newest first", body = Vec<ScimTokenView>)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
) -> Result<Json<Vec<ScimTokenView>>, ApiError> {
    let rows = warden_core::scim::tokens(&state.ctx, &grant).await?;
    Ok(Json(rows.into_iter().map(view).collect()))
}

/// Creates a SCIM token for a directory; its secret is shown once.
#[utoipa::path(post, path = "/api/v1/scim/tokens", tag = "scim",
    request_body(content = NewScimToken, example = json!({"name": "Entra ID"})),
    responses((status = 201, description = "Created; the secret is shown once", body = ScimTokenWithSecret),
        (status = 422, description = "Invalid input", content_type = "application/problem+json")))]
pub(crate) async fn create(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    ApiJson(body): ApiJson<NewScimToken>,
) -> Result<(StatusCode, Response), ApiError> {
    let t = warden_core::scim::create_token(&state.ctx, &op, &grant, &body.name).await?;
    let body = ScimTokenWithSecret {
        secret: t.secret.to_string(),
        token: view(t.row),
        scim_url: warden_core::scim::base(&state.ctx),
    };
    let mut res = Json(body).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok((StatusCode::CREATED, res))
}

/// Revokes a SCIM token at once.
#[utoipa::path(delete, path = "/api/v1/scim/tokens/{id}", tag = "scim",
    params(("id" = String, Path, description = "Token id")),
    responses((status = 204, description = "Revoked"),
        (status = 404, description = "No such live token", content_type = "application/problem+json")))]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    warden_core::scim::revoke_token(&state.ctx, &op, &grant, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
