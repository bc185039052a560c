//! Administering the LLM gateway (`warden_core::llm::admin`): a workspace's policy
//! (quotas, prices, filters, capture, kill switch, whether sessions use the gateway), its
//! upstreams (provider keys write-only), gateway keys (shown once), call records, captured
//! content (`llm.export`, every view audited), usage reports (JSON or CSV); and the
//! platform's kill switch.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use uuid::Uuid;
use warden_core::llm::admin::{self, PolicyView, UpstreamInput};
use warden_core::llm::policy::Policy;
use warden_core::llm::reports;
use warden_core::{Code, CoreError};
use warden_domain::access::{Access, Permission};
use zeroize::Zeroizing;

use crate::http::authz::{PlatformAccess, UserOp, WorkspaceAccess};
use crate::http::json::ApiJson;
use crate::http::problem::ApiError;
use crate::http::query::ApiQuery;
use crate::http::routes::Routes;
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    use Access::{Platform, Workspace};
    use Permission as P;
    let f = warden_domain::license::Feature::LlmGateway;
    Routes::new()
        .add_feature(Workspace(P::LLM_READ), f, routes!(get_policy))
        .add_feature(Workspace(P::LLM_UPDATE), f, routes!(put_policy))
        .add_feature(Workspace(P::LLM_READ), f, routes!(list_upstreams))
        .add_feature(Workspace(P::LLM_UPDATE), f, routes!(create_upstream))
        .add_feature(Workspace(P::LLM_UPDATE), f, routes!(update_upstream))
        .add_feature(Workspace(P::LLM_UPDATE), f, routes!(delete_upstream))
        .add_feature(Workspace(P::WORKSPACES_READ), f, routes!(list_keys))
        .add_feature(Workspace(P::LLM_CREATE), f, routes!(create_key))
        // Revoking and reading what was recorded stay possible without the licence.
        .add(Workspace(P::LLM_CREATE), routes!(revoke_key))
        .add(Workspace(P::LLM_READ), routes!(list_calls))
        .add(Workspace(P::LLM_EXPORT), routes!(call_content))
        .add(Workspace(P::LLM_READ), routes!(usage))
        .add(Platform(P::ADMIN_READ), routes!(get_switch))
        .add(Platform(P::ADMIN_UPDATE), routes!(put_switch))
}

fn value<T: serde::Serialize>(v: &T) -> Json<Value> {
    Json(serde_json::to_value(v).unwrap_or(Value::Null))
}

fn id(s: &str) -> Result<Uuid, ApiError> {
    s.parse().map_err(|_| ApiError(Code::NotFound.into()))
}

/// A workspace's gateway settings.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyBody {
    /// Whether the gateway serves the workspace (its kill switch).
    pub enabled: bool,
    /// Whether agent sessions get the gateway URL and a token of their own instead of the
    /// provider key.
    #[serde(default)]
    pub session_gateway: bool,
    /// Quotas, prices, filters, capture (see the README's "LLM gateway"); absent or null:
    /// none.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub policy: Option<Value>,
}

/// The workspace's gateway settings (defaults when never set).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/llm/policy", tag = "llm gateway",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    responses((status = 200, description = "Settings", body = Object)))]
pub(crate) async fn get_policy(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
) -> Result<Json<Value>, ApiError> {
    Ok(value(&admin::policy(&state.ctx, &grant).await?))
}

/// Sets the workspace's gateway settings.
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/llm/policy", tag = "llm gateway",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = PolicyBody, example = json!({"enabled": true, "session_gateway": true,
        "policy": {"quotas": {"workspace": {"tokens_per_month": 5000000}, "per_user": {"requests_per_minute": 60}},
                   "filters": {"secrets": "block", "personal_data": "redact"}}})),
    responses((status = 200, description = "Saved", body = Object),
        (status = 422, description = "Invalid settings", content_type = "application/problem+json")))]
pub(crate) async fn put_policy(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    ApiJson(body): ApiJson<PolicyBody>,
) -> Result<Json<Value>, ApiError> {
    let policy: Policy = match body.policy {
        None => Policy::default(),
        Some(v) => serde_json::from_value(v).map_err(|_| {
            ApiError(CoreError::invalid(
                "policy",
                "The policy has an unknown member or a value of the wrong type.",
            ))
        })?,
    };
    let view = PolicyView {
        enabled: body.enabled,
        session_gateway: body.session_gateway,
        policy,
    };
    Ok(value(
        &admin::set_policy(&state.ctx, &op, &grant, view).await?,
    ))
}

/// An upstream to add or change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamBody {
    /// Name (a-z, 0-9, `-`, `_`).
    pub name: String,
    /// `openai`, `anthropic` or `openai_compatible`.
    pub kind: String,
    /// Base URL (the preset's when absent: `https://api.openai.com/v1`,
    /// `https://api.anthropic.com`).
    #[serde(default)]
    pub base_url: Option<String>,
    /// The provider key (write-only): absent keeps the stored one, `""` removes it.
    #[serde(default)]
    pub api_key: Option<String>,
    /// Models it serves (the allow-list).
    pub models: Vec<String>,
    /// Aliases: a name clients use → one of `models`.
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
    /// Whether the base URL may be a private address (only where the server allows it).
    #[serde(default)]
    pub allow_private_network: bool,
}

impl std::fmt::Debug for UpstreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamBody")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl From<UpstreamBody> for UpstreamInput {
    fn from(b: UpstreamBody) -> Self {
        Self {
            name: b.name,
            kind: b.kind,
            base_url: b.base_url,
            api_key: b.api_key.map(Zeroizing::new),
            models: b.models,
            aliases: b.aliases,
            allow_private_network: b.allow_private_network,
        }
    }
}

/// The workspace's upstreams (never their keys).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/llm/upstreams", tag = "llm gateway",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    responses((status = 200, description = "Upstreams", body = Vec<Object>)))]
pub(crate) async fn list_upstreams(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
) -> Result<Json<Value>, ApiError> {
    Ok(value(&admin::upstreams(&state.ctx, &grant).await?))
}

/// Adds an upstream.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/llm/upstreams", tag = "llm gateway",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = UpstreamBody, example = json!({"name": "openai", "kind": "openai",
        "api_key": "sk-…", "models": ["gpt-4o", "gpt-4o-mini"], "aliases": {"fast": "gpt-4o-mini"}})),
    responses((status = 201, description = "Added", body = Object),
        (status = 409, description = "Name taken", content_type = "application/problem+json"),
        (status = 422, description = "Invalid (including a base URL the SSRF rules refuse)", content_type = "application/problem+json")))]
pub(crate) async fn create_upstream(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    ApiJson(body): ApiJson<UpstreamBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let view = admin::put_upstream(&state.ctx, &op, &grant, None, body.into()).await?;
    Ok((StatusCode::CREATED, value(&view)))
}

/// Changes an upstream.
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/llm/upstreams/{upstream_id}", tag = "llm gateway",
    params(("workspace_id" = String, Path, description = "Workspace id"),
        ("upstream_id" = String, Path, description = "Upstream id")),
    request_body(content = UpstreamBody, example = json!({"name": "openai", "kind": "openai",
        "models": ["gpt-4o", "gpt-4o-mini"]})),
    responses((status = 200, description = "Saved", body = Object),
        (status = 422, description = "Invalid", content_type = "application/problem+json")))]
pub(crate) async fn update_upstream(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiJson(body): ApiJson<UpstreamBody>,
) -> Result<Json<Value>, ApiError> {
    let view =
        admin::put_upstream(&state.ctx, &op, &grant, Some(id(&path.1)?), body.into()).await?;
    Ok(value(&view))
}

/// Removes an upstream.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/llm/upstreams/{upstream_id}", tag = "llm gateway",
    params(("workspace_id" = String, Path, description = "Workspace id"),
        ("upstream_id" = String, Path, description = "Upstream id")),
    responses((status = 204, description = "Removed")))]
pub(crate) async fn delete_upstream(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    admin::delete_upstream(&state.ctx, &op, &grant, id(&path.1)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A gateway key to make.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyBody {
    /// Name.
    pub name: String,
    /// `user` (yours; the default) or `workspace` (needs `llm.update`).
    #[serde(default)]
    pub scope: Option<String>,
    /// Lifetime in days (1–366); none: until revoked.
    #[serde(default)]
    pub expires_in_days: Option<i64>,
}

/// Gateway keys: all of the workspace's with `llm.read`, else your own.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/llm/keys", tag = "llm gateway",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    responses((status = 200, description = "Keys, newest first (never their secrets)", body = Vec<Object>)))]
pub(crate) async fn list_keys(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
) -> Result<Json<Value>, ApiError> {
    Ok(value(&admin::keys(&state.ctx, &grant).await?))
}

/// Makes a gateway key; its secret is shown once.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/llm/keys", tag = "llm gateway",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = KeyBody, example = json!({"name": "laptop", "expires_in_days": 90})),
    responses((status = 201, description = "Made; `secret` is shown this once", body = Object),
        (status = 403, description = "A workspace key needs llm.update", content_type = "application/problem+json")))]
pub(crate) async fn create_key(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    ApiJson(body): ApiJson<KeyBody>,
) -> Result<(StatusCode, Response), ApiError> {
    let workspace_key = match body.scope.as_deref() {
        None | Some("user") => false,
        Some("workspace") => true,
        Some(_) => {
            return Err(ApiError(CoreError::invalid("scope", "user or workspace")));
        }
    };
    let made = admin::create_key(
        &state.ctx,
        &op,
        &grant,
        &body.name,
        workspace_key,
        body.expires_in_days,
    )
    .await?;
    let mut res = Json(json!({ "key": made.view, "secret": made.secret.as_str() })).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok((StatusCode::CREATED, res))
}

/// Revokes a gateway key (yours, or any with `llm.delete`); every node refuses it at once.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/llm/keys/{llm_key_id}", tag = "llm gateway",
    params(("workspace_id" = String, Path, description = "Workspace id"),
        ("llm_key_id" = String, Path, description = "Gateway key id")),
    responses((status = 204, description = "Revoked")))]
pub(crate) async fn revoke_key(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    admin::revoke_key(&state.ctx, &op, &grant, id(&path.1)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Paging of call records.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CallsQuery {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Records per page (1–500, default 100).
    pub limit: Option<i64>,
}

/// Call records, newest first (never their content).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/llm/calls", tag = "llm gateway",
    params(("workspace_id" = String, Path, description = "Workspace id"), CallsQuery),
    responses((status = 200, description = "A page of records", body = Object)))]
pub(crate) async fn list_calls(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    ApiQuery(q): ApiQuery<CallsQuery>,
) -> Result<Json<Value>, ApiError> {
    let before = match q.cursor.as_deref() {
        None => None,
        Some(c) => Some(c.parse::<Uuid>().map_err(|_| {
            ApiError(CoreError::invalid(
                "cursor",
                "Pass the next_cursor of a previous page.",
            ))
        })?),
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    let calls = reports::calls(&state.ctx, &grant, before, limit).await?;
    let next = (i64::try_from(calls.len()).unwrap_or(0) == limit)
        .then(|| calls.last().map(|c| c.id.to_string()))
        .flatten();
    Ok(Json(json!({ "calls": calls, "next_cursor": next })))
}

/// A call's captured prompt and response (needs `llm.export`; every view is audited).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/llm/calls/{call_id}/content", tag = "llm gateway",
    params(("workspace_id" = String, Path, description = "Workspace id"),
        ("call_id" = String, Path, description = "Call id")),
    responses((status = 200, description = "The captured request and response", body = Object),
        (status = 404, description = "No such call, or nothing captured", content_type = "application/problem+json")))]
pub(crate) async fn call_content(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let content = reports::call_content(&state.ctx, &op, &grant, id(&path.1)?).await?;
    let mut res = Json(content).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// The days and format of a usage report.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    /// First day (`YYYY-MM-DD`, UTC); default: 30 days ago.
    pub from: Option<String>,
    /// Last day (`YYYY-MM-DD`, UTC); default: today.
    pub to: Option<String>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// Usage by day, user and model.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/llm/usage", tag = "llm gateway",
    params(("workspace_id" = String, Path, description = "Workspace id"), UsageQuery),
    responses((status = 200, description = "Usage (JSON, or CSV with format=csv)", body = Object)))]
pub(crate) async fn usage(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    ApiQuery(q): ApiQuery<UsageQuery>,
) -> Result<Response, ApiError> {
    let today =
        i32::try_from(warden_core::op::unix_us(state.ctx.clock.now()).div_euclid(86_400_000_000))
            .unwrap_or(0);
    let day = |s: Option<&str>, field: &'static str, default: i32| match s {
        None => Ok(default),
        Some(s) => reports::parse_day(s)
            .ok_or_else(|| ApiError(CoreError::invalid(field, "A day is written YYYY-MM-DD."))),
    };
    let to = day(q.to.as_deref(), "to", today)?;
    let from = day(q.from.as_deref(), "from", to - 30)?;
    let lines = reports::usage(&state.ctx, &grant, from, to).await?;
    match q.format.as_deref() {
        None | Some("json") => Ok(Json(json!({ "usage": lines })).into_response()),
        Some("csv") => Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"llm-usage.csv\"",
                ),
            ],
            reports::usage_csv(&lines),
        )
            .into_response()),
        Some(_) => Err(ApiError(CoreError::invalid("format", "json or csv"))),
    }
}

/// The platform's kill switch.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchBody {
    /// Whether the gateway serves any workspace.
    pub enabled: bool,
}

/// Whether the gateway serves any workspace.
#[utoipa::path(get, path = "/api/v1/admin/llm", tag = "llm gateway",
    responses((status = 200, description = "The switch", body = Object)))]
pub(crate) async fn get_switch(
    State(state): State<AppState>,
    PlatformAccess(_grant): PlatformAccess,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "enabled": admin::switch(&state.ctx).await? })))
}

/// Turns the gateway on or off for every workspace, on every node within 2 seconds.
#[utoipa::path(put, path = "/api/v1/admin/llm", tag = "llm gateway",
    request_body(content = SwitchBody, example = json!({"enabled": false})),
    responses((status = 200, description = "Saved", body = Object)))]
pub(crate) async fn put_switch(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    ApiJson(body): ApiJson<SwitchBody>,
) -> Result<Json<Value>, ApiError> {
    let on = admin::set_switch(&state.ctx, &op, &grant, body.enabled).await?;
    Ok(Json(json!({ "enabled": on })))
}
