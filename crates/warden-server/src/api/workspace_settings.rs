//! What a workspace owns besides its members: repository, hooks, ticket configuration,
//! prompts, and the write-only values (environment variables, the personal access token,
//! provider keys). Write-only values are sealed by the keyring, bound to their workspace,
//! kind and name; the API shows their names, who set them and when, never the values.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;
use warden_core::secrets::{self, Saved, Slot};
use warden_core::workspaces::settings::{self, Settings as Parsed};
use warden_domain::access::{Access, Permission};
use warden_domain::tenancy::{Hooks, PromptName};
use warden_store::tenancy::{PromptRow, SecretKind, SecretMeta};

use super::me::rfc3339;
use super::workspaces::{WorkspaceView, view};
use crate::http::authz::{UserOp, WorkspaceAccess};
use crate::http::json::ApiJson;
use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    use Access::Workspace;
    let read = Workspace(Permission::SETTINGS_READ);
    let update = Workspace(Permission::SETTINGS_UPDATE);
    let delete = Workspace(Permission::SETTINGS_DELETE);
    Routes::new()
        .add(update, routes!(put_settings))
        .add(read, routes!(list_variables))
        .add(update, routes!(put_variable))
        .add(delete, routes!(delete_variable))
        .add(read, routes!(list_prompts))
        .add(read, routes!(get_prompt))
        .add(update, routes!(put_prompt))
        .add(delete, routes!(delete_prompt))
        .add(read, routes!(get_pat))
        .add(update, routes!(put_pat))
        .add(delete, routes!(delete_pat))
        .add(read, routes!(list_provider_keys))
        .add(update, routes!(put_provider_key))
        .add(delete, routes!(delete_provider_key))
}

/// A write-only value, described without its value.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretView {
    /// Variable name, provider, or `pat`.
    pub name: String,
    /// Who set it (user id).
    pub set_by: String,
    /// When (RFC 3339).
    pub set_at: String,
}

fn secret_view(m: SecretMeta) -> SecretView {
    SecretView {
        name: m.name,
        set_by: m.set_by.to_string(),
        set_at: rfc3339(m.set_at),
    }
}

/// The settings kept on the workspace itself. Every field is replaced.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `https://…`, `ssh://…`, `git@host:path`, or an absolute local path; null clears it.
    pub repository: Option<String>,
    /// Commands run before and after each agent session.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub hooks: Hooks,
    /// Ticket source: `{"provider": "github"|"gitlab"|"jira"|"linear", "project": "…",
    /// "base_url"?: "https://…", "labels"?: […]}`; null clears it. A GitHub source is
    /// synced (licence module `ticket-sync`), acting for whoever saves it.
    #[schema(value_type = Option<Object>)]
    pub ticket_config: Option<serde_json::Value>,
}

/// Replaces a workspace's repository, hooks and ticket configuration.
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/settings", tag = "workspace settings",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = Settings, example = json!({
        "repository": "https://git.example.test/team/app.git",
        "hooks": {"pre_session": ["make setup"], "post_session": []},
        "ticket_config": {"provider": "github", "project": "team/app"}})),
    responses(
        (status = 200, description = "Saved", body = WorkspaceView),
        (status = 422, description = "Invalid setting", content_type = "application/problem+json")))]
pub(crate) async fn put_settings(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    ApiJson(input): ApiJson<Settings>,
) -> Result<Json<WorkspaceView>, ApiError> {
    let parsed = Parsed::parse(
        input.repository.as_deref(),
        input.hooks,
        input.ticket_config.as_ref(),
    )?;
    Ok(Json(view(
        settings::save(&state.ctx, &op, &grant, parsed).await?,
    )))
}

/// 201 when the value was new, 200 when it replaced one.
fn set_status(saved: Saved) -> StatusCode {
    match saved {
        Saved::Created => StatusCode::CREATED,
        Saved::Replaced => StatusCode::OK,
    }
}

async fn list_secrets(
    state: &AppState,
    grant: &warden_store::tenancy::WorkspaceGrant,
    kind: SecretKind,
) -> Result<Json<Vec<SecretView>>, ApiError> {
    let rows = secrets::list(&state.ctx, grant, kind).await?;
    Ok(Json(rows.into_iter().map(secret_view).collect()))
}

/// Environment variables: names, who set them and when. Never the values.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/variables", tag = "workspace settings",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    responses((status = 200, description = "Variables, without values", body = Vec<SecretView>)))]
pub(crate) async fn list_variables(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
) -> Result<Json<Vec<SecretView>>, ApiError> {
    list_secrets(&state, &grant, SecretKind::Variable).await
}

/// A write-only value.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretValue {
    /// The value. Stored encrypted; never returned.
    pub value: String,
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue([redacted])")
    }
}

/// Sets an environment variable (write-only).
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/variables/{variable}", tag = "workspace settings",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("variable" = String, Path, description = "Name, [A-Z_][A-Z0-9_]*")),
    request_body(content = SecretValue, example = json!({"value": "example-value"})),
    responses(
        (status = 201, description = "Created"), (status = 200, description = "Replaced"),
        (status = 422, description = "Invalid name or value", content_type = "application/problem+json")))]
pub(crate) async fn put_variable(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiJson(input): ApiJson<SecretValue>,
) -> Result<StatusCode, ApiError> {
    let slot = Slot::variable(&path.1)?;
    let saved = secrets::set(&state.ctx, &op, &grant, &slot, &input.value).await?;
    Ok(set_status(saved))
}

/// Deletes an environment variable.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/variables/{variable}", tag = "workspace settings",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("variable" = String, Path, description = "Name")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such variable"),
        (status = 422, description = "Not a variable name", content_type = "application/problem+json")))]
pub(crate) async fn delete_variable(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let slot = Slot::variable(&path.1)?;
    secrets::remove(&state.ctx, &op, &grant, &slot).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Whether the personal access token is set, and by whom. Never the token.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/pat", tag = "workspace settings",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    responses((status = 200, description = "The PAT's metadata (empty when unset)", body = Vec<SecretView>)))]
pub(crate) async fn get_pat(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
) -> Result<Json<Vec<SecretView>>, ApiError> {
    list_secrets(&state, &grant, SecretKind::Pat).await
}

/// Sets the workspace's personal access token (write-only).
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/pat", tag = "workspace settings",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = SecretValue, example = json!({"value": "example-token"})),
    responses((status = 201, description = "Set"), (status = 200, description = "Replaced")))]
pub(crate) async fn put_pat(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    ApiJson(input): ApiJson<SecretValue>,
) -> Result<StatusCode, ApiError> {
    let slot = Slot::pat();
    let saved = secrets::set(&state.ctx, &op, &grant, &slot, &input.value).await?;
    Ok(set_status(saved))
}

/// Removes the personal access token.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/pat", tag = "workspace settings",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    responses((status = 204, description = "Removed"), (status = 404, description = "Not set")))]
pub(crate) async fn delete_pat(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
) -> Result<StatusCode, ApiError> {
    let slot = Slot::pat();
    secrets::remove(&state.ctx, &op, &grant, &slot).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Provider keys (bring-your-own-key): which providers have one, who set it and when.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/provider-keys", tag = "workspace settings",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    responses((status = 200, description = "Providers with a key, without the keys", body = Vec<SecretView>)))]
pub(crate) async fn list_provider_keys(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
) -> Result<Json<Vec<SecretView>>, ApiError> {
    list_secrets(&state, &grant, SecretKind::Provider).await
}

/// Sets a provider's API key (write-only): claude-code, gemini-cli, codex, opencode,
/// kilo-cli or qwen-code.
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/provider-keys/{provider}", tag = "workspace settings",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("provider" = String, Path, description = "claude-code, gemini-cli, codex, opencode, kilo-cli or qwen-code")),
    request_body(content = SecretValue, example = json!({"value": "example-key"})),
    responses((status = 201, description = "Set"), (status = 200, description = "Replaced"),
        (status = 404, description = "Unknown provider")))]
pub(crate) async fn put_provider_key(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiJson(input): ApiJson<SecretValue>,
) -> Result<StatusCode, ApiError> {
    let slot = Slot::provider(&path.1)?;
    let saved = secrets::set(&state.ctx, &op, &grant, &slot, &input.value).await?;
    Ok(set_status(saved))
}

/// Removes a provider's key.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/provider-keys/{provider}", tag = "workspace settings",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("provider" = String, Path, description = "Provider")),
    responses((status = 204, description = "Removed"), (status = 404, description = "Not set")))]
pub(crate) async fn delete_provider_key(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let slot = Slot::provider(&path.1)?;
    secrets::remove(&state.ctx, &op, &grant, &slot).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A prompt template.
#[derive(Debug, Serialize, ToSchema)]
pub struct PromptView {
    /// Name.
    pub name: String,
    /// Template text.
    pub template: String,
    /// Who changed it last (user id).
    pub updated_by: String,
    /// When (RFC 3339).
    pub updated_at: String,
}

fn prompt_view(p: PromptRow) -> PromptView {
    PromptView {
        name: p.name,
        template: p.template,
        updated_by: p.updated_by.to_string(),
        updated_at: rfc3339(p.updated_at),
    }
}

/// A workspace's prompt templates.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/prompts", tag = "workspace settings",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    responses((status = 200, description = "Prompts", body = Vec<PromptView>)))]
pub(crate) async fn list_prompts(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
) -> Result<Json<Vec<PromptView>>, ApiError> {
    let rows = settings::prompts(&state.ctx, &grant).await?;
    Ok(Json(rows.into_iter().map(prompt_view).collect()))
}

/// One prompt template.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/prompts/{prompt}", tag = "workspace settings",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("prompt" = String, Path, description = "Prompt name")),
    responses((status = 200, description = "The prompt", body = PromptView),
        (status = 404, description = "No such prompt")))]
pub(crate) async fn get_prompt(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<Json<PromptView>, ApiError> {
    let row = settings::prompt(&state.ctx, &grant, &path.1).await?;
    Ok(Json(prompt_view(row)))
}

/// A prompt template's text.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromptText {
    /// Up to 64 KiB.
    pub template: String,
}

/// Creates or replaces a prompt template.
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/prompts/{prompt}", tag = "workspace settings",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("prompt" = String, Path, description = "Prompt name, [a-z0-9][a-z0-9_-]*")),
    request_body(content = PromptText, example = json!({"template": "Fix the failing test in {{file}}."})),
    responses((status = 201, description = "Created", body = PromptView),
        (status = 200, description = "Replaced", body = PromptView),
        (status = 422, description = "Invalid name or template", content_type = "application/problem+json")))]
pub(crate) async fn put_prompt(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiJson(input): ApiJson<PromptText>,
) -> Result<(StatusCode, Json<PromptView>), ApiError> {
    let name = PromptName::parse(&path.1)?;
    let (saved, row) =
        settings::save_prompt(&state.ctx, &op, &grant, &name, &input.template).await?;
    Ok((set_status(saved), Json(prompt_view(row))))
}

/// Deletes a prompt template.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/prompts/{prompt}", tag = "workspace settings",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("prompt" = String, Path, description = "Prompt name")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such prompt")))]
pub(crate) async fn delete_prompt(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    settings::delete_prompt(&state.ctx, &op, &grant, &path.1).await?;
    Ok(StatusCode::NO_CONTENT)
}
