//! A workspace's service keys: how trusted internal systems sign requests to its API
//! (`Authorization: WARDEN-HMAC-SHA256 …`, see `warden_core::service_keys`). A key acts for
//! its creator within the permissions it was given; its secret is shown once.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;
use warden_core::service_keys::{self, NewKey};
use warden_domain::access::{Access, Permission};
use warden_store::service_keys::ServiceKeyRow;

use super::me::rfc3339;
use crate::http::authz::{UserOp, WorkspaceAccess};
use crate::http::json::ApiJson;
use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    use Access::Workspace;
    Routes::new()
        .add(Workspace(Permission::SETTINGS_READ), routes!(list))
        .add(Workspace(Permission::SETTINGS_UPDATE), routes!(create))
        .add(Workspace(Permission::SETTINGS_UPDATE), routes!(rotate))
        .add(Workspace(Permission::SETTINGS_DELETE), routes!(revoke))
}

/// A service key, never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceKeyView {
    /// The public key id clients send as `keyId`.
    pub key_id: String,
    /// Name.
    pub name: String,
    /// What it may do (within what its creator holds).
    pub permissions: Vec<String>,
    /// Whom it acts for.
    pub created_by: String,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Stops signing then (after a rotation), RFC 3339.
    pub expires_at: Option<String>,
    /// Revoked (RFC 3339).
    pub revoked_at: Option<String>,
}

fn view(k: ServiceKeyRow) -> ServiceKeyView {
    ServiceKeyView {
        key_id: k.key_id,
        name: k.name,
        permissions: k
            .permissions
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        created_by: k.created_by.to_string(),
        created_at: rfc3339(k.created_at),
        expires_at: k.expires_at.map(rfc3339),
        revoked_at: k.revoked_at.map(rfc3339),
    }
}

/// A key with its secret, shown this once.
#[derive(Serialize, ToSchema)]
pub struct ServiceKeyWithSecret {
    /// The key.
    pub key: ServiceKeyView,
    /// The HMAC key (use the text as it is); shown this once.
    pub secret: String,
}

impl std::fmt::Debug for ServiceKeyWithSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceKeyWithSecret")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

fn shown_once(k: NewKey) -> Response {
    let body = ServiceKeyWithSecret {
        secret: k.secret.expose_secret().to_owned(),
        key: view(k.row),
    };
    let mut res = Json(body).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// A new key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewServiceKey {
    /// Name (what calls with it).
    pub name: String,
    /// Permission names, each one you hold in this workspace.
    pub permissions: Vec<String>,
}

/// The workspace's service keys.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/service-keys", tag = "service keys",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    responses((status = 200, description = "Keys, newest first", body = Vec<ServiceKeyView>)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
) -> Result<Json<Vec<ServiceKeyView>>, ApiError> {
    let rows = service_keys::list(&state.ctx, &grant).await?;
    Ok(Json(rows.into_iter().map(view).collect()))
}

/// Creates a service key acting for you; its secret is shown once.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/service-keys", tag = "service keys",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = NewServiceKey, example = json!({
        "name": "ci", "permissions": ["automations.read", "automations.update"]})),
    responses((status = 201, description = "Created; the secret is shown once", body = ServiceKeyWithSecret),
        (status = 403, description = "A permission you do not hold", content_type = "application/problem+json"),
        (status = 422, description = "Invalid input", content_type = "application/problem+json")))]
pub(crate) async fn create(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    ApiJson(body): ApiJson<NewServiceKey>,
) -> Result<(StatusCode, Response), ApiError> {
    let key = service_keys::create(&state.ctx, &op, &grant, &body.name, &body.permissions).await?;
    Ok((StatusCode::CREATED, shown_once(key)))
}

/// How long the old key keeps signing.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// Seconds the old key still signs (0–604800; default 86400).
    pub overlap_secs: Option<i64>,
}

/// Replaces a key: a new one with the same name and permissions (acting for you); the old one
/// keeps signing for the overlap. The new secret is shown once.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/service-keys/{key_id}/rotate", tag = "service keys",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("key_id" = String, Path, description = "Key id (wsk_…)")),
    request_body(content = Rotation, example = json!({"overlap_secs": 3600})),
    responses((status = 200, description = "The new key; its secret is shown once", body = ServiceKeyWithSecret),
        (status = 404, description = "No such live key", content_type = "application/problem+json")))]
pub(crate) async fn rotate(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiJson(body): ApiJson<Rotation>,
) -> Result<Response, ApiError> {
    let overlap = body.overlap_secs.unwrap_or(86_400);
    let key = service_keys::rotate(&state.ctx, &op, &grant, &path.1, overlap).await?;
    Ok(shown_once(key))
}

/// Revokes a key at once.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/service-keys/{key_id}", tag = "service keys",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("key_id" = String, Path, description = "Key id (wsk_…)")),
    responses((status = 204, description = "Revoked"),
        (status = 404, description = "No such live key", content_type = "application/problem+json")))]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    service_keys::revoke(&state.ctx, &op, &grant, &path.1).await?;
    Ok(StatusCode::NO_CONTENT)
}
