//! Event sources (their public URL is served by [`super::webhooks`]). Every route needs the
//! licence's `automations` module.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;
use warden_core::webhooks::{self, NewToken, SourceInput};
use warden_domain::access::{Access, Permission};
use warden_domain::license::Feature;
use warden_store::event_sources::SourceRow;

use super::me::rfc3339;
use crate::http::authz::{UserOp, WorkspaceAccess};
use crate::http::json::ApiJson;
use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    use Access::Workspace;
    let f = Feature::Automations;
    Routes::new()
        .add_feature(Workspace(Permission::AUTOMATIONS_READ), f, routes!(list))
        .add_feature(
            Workspace(Permission::AUTOMATIONS_CREATE),
            f,
            routes!(create),
        )
        .add_feature(Workspace(Permission::AUTOMATIONS_READ), f, routes!(get))
        .add_feature(
            Workspace(Permission::AUTOMATIONS_UPDATE),
            f,
            routes!(update),
        )
        .add_feature(
            Workspace(Permission::AUTOMATIONS_DELETE),
            f,
            routes!(delete),
        )
        .add_feature(
            Workspace(Permission::AUTOMATIONS_UPDATE),
            f,
            routes!(rotate_token),
        )
        .add_feature(
            Workspace(Permission::AUTOMATIONS_UPDATE),
            f,
            routes!(put_secret),
        )
        .add_feature(
            Workspace(Permission::AUTOMATIONS_UPDATE),
            f,
            routes!(delete_secret),
        )
}

/// What an event source is (its token and secret have routes of their own).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceBody {
    /// Name, unique in the workspace.
    pub name: String,
    /// `generic`, `github`, `stripe` or `standard` (Standard Webhooks): how deliveries are
    /// signed, when the source has a secret.
    pub kind: String,
    /// Default true.
    pub enabled: Option<bool>,
    /// Generic only: the header with the hex HMAC-SHA256 of the body (default `X-Signature`).
    pub signature_header: Option<String>,
    /// Generic only: a header with a delivery id (a repeated id is processed once).
    pub delivery_header: Option<String>,
    /// Accept only these event types (GitHub's `X-GitHub-Event`, otherwise the body's `type`).
    pub events: Option<Vec<String>>,
    /// Accept only deliveries whose JSON body holds `match_value` at this JSON pointer.
    pub match_pointer: Option<String>,
    /// The value expected at `match_pointer`.
    #[schema(value_type = Option<Object>)]
    pub match_value: Option<serde_json::Value>,
    /// The automation a matching delivery runs (the body is its template's `event`).
    pub automation_id: Option<String>,
    /// Deliveries accepted per minute (default 60).
    pub rate_per_minute: Option<i64>,
    /// Deliveries waiting at once per node (default 100); more are dropped and counted.
    pub backlog: Option<i64>,
    /// Creation only: the signing secret (write-only; never returned).
    pub secret: Option<String>,
}

impl std::fmt::Debug for SourceBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceBody")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl SourceBody {
    fn split(self) -> (SourceInput, Option<SecretString>) {
        let secret = self.secret.map(SecretString::from);
        (
            SourceInput {
                name: self.name,
                kind: self.kind,
                enabled: self.enabled,
                signature_header: self.signature_header,
                delivery_header: self.delivery_header,
                events: self.events,
                match_pointer: self.match_pointer,
                match_value: self.match_value,
                automation_id: self.automation_id,
                rate_per_minute: self.rate_per_minute,
                backlog: self.backlog,
            },
            secret,
        )
    }
}

/// What became of deliveries.
#[derive(Debug, Serialize, ToSchema)]
pub struct Counters {
    /// Accepted and stored.
    pub accepted: i64,
    /// Valid, but not matching the filter.
    pub ignored: i64,
    /// A delivery id seen before (processed once).
    pub replayed: i64,
    /// Over the per-minute limit.
    pub dropped_rate: i64,
    /// Over the backlog.
    pub dropped_backlog: i64,
    /// Missing or bad signature.
    pub dropped_signature: i64,
    /// While background work was paused (licence).
    pub dropped_paused: i64,
    /// Received and answered, not processed yet (in the inbox).
    pub waiting: i64,
}

/// An event source. Never its token or secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct SourceView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: String,
    /// Whether deliveries are accepted.
    pub enabled: bool,
    /// The URL token's first characters, to tell tokens apart (`wwh_abcd…`).
    pub token_hint: String,
    /// Whether deliveries must be signed (a secret is set).
    pub signed: bool,
    /// Who set the secret, and when.
    pub secret_set_by: Option<String>,
    /// When (RFC 3339).
    pub secret_set_at: Option<String>,
    /// Generic: signature header.
    pub signature_header: Option<String>,
    /// Generic: delivery-id header.
    pub delivery_header: Option<String>,
    /// Event types accepted.
    pub events: Option<Vec<String>>,
    /// JSON pointer filter.
    pub match_pointer: Option<String>,
    /// Its value.
    #[schema(value_type = Option<Object>)]
    pub match_value: Option<serde_json::Value>,
    /// Automation run on a match.
    pub automation_id: Option<String>,
    /// Per-minute limit.
    pub rate_per_minute: i64,
    /// Backlog.
    pub backlog: i64,
    /// What became of deliveries.
    pub counters: Counters,
    /// Token last replaced (RFC 3339).
    pub token_rotated_at: Option<String>,
    /// Created (RFC 3339).
    pub created_at: String,
}

pub(crate) fn view(s: SourceRow) -> SourceView {
    SourceView {
        id: s.id.to_string(),
        name: s.name,
        kind: s.kind,
        enabled: s.enabled,
        token_hint: s.token_prefix,
        signed: s.sealed_secret.is_some(),
        secret_set_by: s.secret_set_by.map(|u| u.to_string()),
        secret_set_at: s.secret_set_at.map(rfc3339),
        signature_header: s.signature_header,
        delivery_header: s.delivery_header,
        events: s.filter_events.and_then(|e| serde_json::from_str(&e).ok()),
        match_pointer: s.filter_pointer,
        match_value: s.filter_value.and_then(|v| serde_json::from_str(&v).ok()),
        automation_id: s.automation_id.map(|a| a.to_string()),
        rate_per_minute: s.rate_per_minute,
        backlog: s.backlog,
        counters: Counters {
            accepted: s.accepted,
            ignored: s.ignored,
            replayed: s.replayed,
            dropped_rate: s.dropped_rate,
            dropped_backlog: s.dropped_backlog,
            dropped_signature: s.dropped_signature,
            dropped_paused: s.dropped_paused,
            waiting: s.waiting,
        },
        token_rotated_at: s.token_rotated_at.map(rfc3339),
        created_at: rfc3339(s.created_at),
    }
}

/// A source with its URL, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct SourceWithUrl {
    /// The source.
    pub source: SourceView,
    /// The public URL (its path is the credential: keep it secret; shown this once).
    pub url: String,
}

fn with_url(state: &AppState, row: SourceRow, token: NewToken) -> Response {
    let body = SourceWithUrl {
        url: format!(
            "{}/webhooks/{}",
            state.ctx.public_url.trim_end_matches('/'),
            token.0.as_str()
        ),
        source: view(row),
    };
    let mut res = Json(body).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The workspace's event sources.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/event-sources", tag = "event sources",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    responses((status = 200, description = "Event sources, by name", body = Vec<SourceView>)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
) -> Result<Json<Vec<SourceView>>, ApiError> {
    let rows = webhooks::list(&state.ctx, &grant).await?;
    Ok(Json(rows.into_iter().map(view).collect()))
}

/// Creates an event source; the answer carries its URL, shown this once.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/event-sources", tag = "event sources",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = SourceBody, example = json!({
        "name": "github pushes", "kind": "github", "secret": "a-long-random-signing-secret",
        "events": ["push"]})),
    responses((status = 201, description = "Created; the URL is shown once", body = SourceWithUrl),
        (status = 409, description = "Name taken", content_type = "application/problem+json"),
        (status = 422, description = "Invalid input", content_type = "application/problem+json")))]
pub(crate) async fn create(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    ApiJson(body): ApiJson<SourceBody>,
) -> Result<(StatusCode, Response), ApiError> {
    let (input, secret) = body.split();
    let (row, token) = webhooks::create(&state.ctx, &op, &grant, &input, secret).await?;
    Ok((StatusCode::CREATED, with_url(&state, row, token)))
}

/// An event source and its counters.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/event-sources/{source_id}", tag = "event sources",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("source_id" = String, Path, description = "Event source id")),
    responses((status = 200, description = "The source", body = SourceView),
        (status = 404, description = "No such source", content_type = "application/problem+json")))]
pub(crate) async fn get(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<Json<SourceView>, ApiError> {
    Ok(Json(view(
        webhooks::get(&state.ctx, &grant, &path.1).await?,
    )))
}

/// Replaces an event source's settings (not its token or secret: `secret` is refused here).
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/event-sources/{source_id}", tag = "event sources",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("source_id" = String, Path, description = "Event source id")),
    request_body(content = SourceBody, example = json!({
        "name": "github pushes", "kind": "github", "events": ["push", "pull_request"],
        "enabled": true})),
    responses((status = 200, description = "Saved", body = SourceView),
        (status = 404, description = "No such source", content_type = "application/problem+json"),
        (status = 422, description = "Invalid input", content_type = "application/problem+json")))]
pub(crate) async fn update(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiJson(body): ApiJson<SourceBody>,
) -> Result<Json<SourceView>, ApiError> {
    let (input, secret) = body.split();
    if secret.is_some() {
        return Err(warden_core::CoreError::invalid(
            "secret",
            "set the secret with PUT …/secret, not with the source's settings",
        )
        .into());
    }
    let row = webhooks::update(&state.ctx, &op, &grant, &path.1, &input).await?;
    Ok(Json(view(row)))
}

/// Deletes an event source and the deliveries it accepted.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/event-sources/{source_id}", tag = "event sources",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("source_id" = String, Path, description = "Event source id")),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "No such source", content_type = "application/problem+json")))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    webhooks::delete(&state.ctx, &op, &grant, &path.1).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces the URL token: the old URL stops working at once, on every node. The new URL is
/// shown this once.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/event-sources/{source_id}/rotate-token", tag = "event sources",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("source_id" = String, Path, description = "Event source id")),
    responses((status = 200, description = "Rotated; the new URL is shown once", body = SourceWithUrl),
        (status = 404, description = "No such source", content_type = "application/problem+json")))]
pub(crate) async fn rotate_token(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (row, token) = webhooks::rotate_token(&state.ctx, &op, &grant, &path.1).await?;
    Ok(with_url(&state, row, token))
}

/// A signing secret.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretBody {
    /// The secret (16–512 bytes; Standard Webhooks: `whsec_` + base64 of 24–64 bytes).
    pub secret: String,
}

impl std::fmt::Debug for SecretBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBody([redacted])")
    }
}

/// Sets the signing secret (write-only): from now on only signed deliveries are accepted.
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/event-sources/{source_id}/secret", tag = "event sources",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("source_id" = String, Path, description = "Event source id")),
    request_body(content = SecretBody, example = json!({"secret": "a-long-random-signing-secret"})),
    responses((status = 200, description = "Set", body = SourceView),
        (status = 422, description = "Not a usable secret for this kind", content_type = "application/problem+json")))]
pub(crate) async fn put_secret(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiJson(body): ApiJson<SecretBody>,
) -> Result<Json<SourceView>, ApiError> {
    let secret = Some(SecretString::from(body.secret));
    let row = webhooks::set_secret(&state.ctx, &op, &grant, &path.1, secret).await?;
    Ok(Json(view(row)))
}

/// Removes the signing secret: deliveries are then accepted unsigned.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/event-sources/{source_id}/secret", tag = "event sources",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("source_id" = String, Path, description = "Event source id")),
    responses((status = 200, description = "Removed", body = SourceView)))]
pub(crate) async fn delete_secret(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<Json<SourceView>, ApiError> {
    let row = webhooks::set_secret(&state.ctx, &op, &grant, &path.1, None).await?;
    Ok(Json(view(row)))
}
