//! What a workspace owns besides its members: repository, hooks, ticket configuration,
//! prompts, and the write-only values (environment variables, the personal access token,
//! provider keys). Write-only values are sealed by the keyring, bound to their workspace,
//! kind and name; the API shows their names, who set them and when, never the values.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::routes;
use warden_crypto::keyring::Context;
use warden_domain::access::{Access, Permission};
use warden_domain::audit::Outcome;
use warden_domain::tenancy::{
    Hooks, PROMPT_MAX, PromptName, Provider, Repository, TOKEN_MAX, TicketConfig,
    VARIABLE_VALUE_MAX, VariableName, WorkspaceId, check_prompt, check_secret_value,
};
use warden_store::tenancy::{PromptRow, SecretKind, SecretMeta};

use super::me::rfc3339;
use super::workspaces::{WorkspaceView, db, view};
use crate::audit::request::RequestMeta;
use crate::http::authz::WorkspaceAccess;
use crate::http::json::ApiJson;
use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::identity::{Caller, now_us};
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

/// The associated data that binds a sealed value to its place: moved to another workspace,
/// kind or name, it no longer opens.
pub fn secret_context(workspace: WorkspaceId, kind: SecretKind, name: &str) -> Context {
    Context::new("warden.workspace_secret")
        .with(workspace.uuid().as_bytes())
        .with(kind.as_str())
        .with(name)
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
    /// "base_url"?: "https://…", "labels"?: […]}`; null clears it.
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
    meta: RequestMeta,
    caller: Caller,
    access: WorkspaceAccess,
    ApiJson(input): ApiJson<Settings>,
) -> Result<Json<WorkspaceView>, ApiError> {
    let invalid = |e: warden_domain::tenancy::Invalid| ApiError::invalid(&e);
    let repository = input
        .repository
        .as_deref()
        .map(Repository::parse)
        .transpose()
        .map_err(invalid)?;
    input.hooks.check().map_err(invalid)?;
    let tickets = input
        .ticket_config
        .as_ref()
        .map(TicketConfig::parse)
        .transpose()
        .map_err(invalid)?;
    let repository_json = repository.as_ref().map(to_json).transpose()?;
    let hooks_json = to_json(&input.hooks)?;
    let tickets_json = tickets.as_ref().map(to_json).transpose()?;

    let mut tx = access.open(&state).await?;
    tx.set_settings(
        repository_json.as_deref(),
        &hooks_json,
        tickets_json.as_deref(),
        now_us(state.clock.as_ref()),
    )
    .await
    .map_err(db)?;
    // Repository URLs carry no credentials (refused above), so the summary may name them.
    let event = meta.event(
        state.clock.now(),
        caller.actor(),
        "workspace.settings_changed",
        "workspace",
        Some(tx.workspace().to_string()),
        Outcome::Success,
        json!({
            "repository": repository,
            "pre_session_hooks": input.hooks.pre_session.len(),
            "post_session_hooks": input.hooks.post_session.len(),
            "ticket_provider": tickets.as_ref().map(|t| t.provider),
        }),
    );
    tx.record(&state.audit_key, event).await.map_err(db)?;
    let row = tx.get().await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(Json(view(row)))
}

/// Serialising our own value types cannot fail in practice; if it does, it is a 500.
fn to_json<T: Serialize>(v: &T) -> Result<String, ApiError> {
    serde_json::to_string(v).map_err(|e| ApiError::internal(&e))
}

async fn list_secrets(
    state: &AppState,
    access: &WorkspaceAccess,
    kind: SecretKind,
) -> Result<Json<Vec<SecretView>>, ApiError> {
    let mut tx = access.open(state).await?;
    let rows = tx.secrets(kind).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(Json(rows.into_iter().map(secret_view).collect()))
}

/// Seals `value` for (workspace, kind, name), stores it and records the change, without the
/// value, in one transaction. 201 when new, 200 when it replaced one.
async fn store_secret(
    state: &AppState,
    meta: &RequestMeta,
    caller: &Caller,
    access: &WorkspaceAccess,
    kind: SecretKind,
    name: &str,
    value: &str,
) -> Result<StatusCode, ApiError> {
    let mut tx = access.open(state).await?;
    let sealed = state
        .keyring
        .seal(
            &secret_context(tx.workspace(), kind, name),
            value.as_bytes(),
        )
        .map_err(|e| ApiError::internal(&e))?;
    let replaced = tx
        .put_secret(kind, name, &sealed, now_us(state.clock.as_ref()))
        .await
        .map_err(db)?;
    let event = meta.event(
        state.clock.now(),
        caller.actor(),
        "workspace.secret_set",
        "workspace_secret",
        Some(format!("{}:{name}", kind.as_str())),
        Outcome::Success,
        json!({ "kind": kind.as_str(), "name": name, "value": "[changed]", "replaced": replaced }),
    );
    tx.record(&state.audit_key, event).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(set_status(replaced))
}

async fn remove_secret(
    state: &AppState,
    meta: &RequestMeta,
    caller: &Caller,
    access: &WorkspaceAccess,
    kind: SecretKind,
    name: &str,
) -> Result<StatusCode, ApiError> {
    let mut tx = access.open(state).await?;
    if !tx.delete_secret(kind, name).await.map_err(db)? {
        return Err(ApiError::from_status(StatusCode::NOT_FOUND));
    }
    let event = meta.event(
        state.clock.now(),
        caller.actor(),
        "workspace.secret_deleted",
        "workspace_secret",
        Some(format!("{}:{name}", kind.as_str())),
        Outcome::Success,
        json!({ "kind": kind.as_str(), "name": name }),
    );
    tx.record(&state.audit_key, event).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(StatusCode::NO_CONTENT)
}

fn set_status(replaced: bool) -> StatusCode {
    if replaced {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    }
}

/// Environment variables: names, who set them and when. Never the values.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/variables", tag = "workspace settings",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    responses((status = 200, description = "Variables, without values", body = Vec<SecretView>)))]
pub(crate) async fn list_variables(
    State(state): State<AppState>,
    access: WorkspaceAccess,
) -> Result<Json<Vec<SecretView>>, ApiError> {
    list_secrets(&state, &access, SecretKind::Variable).await
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
    meta: RequestMeta,
    caller: Caller,
    access: WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiJson(input): ApiJson<SecretValue>,
) -> Result<StatusCode, ApiError> {
    let name = path.1;
    let name = VariableName::parse(&name).map_err(|e| ApiError::invalid(&e))?;
    check_secret_value("value", &input.value, VARIABLE_VALUE_MAX)
        .map_err(|e| ApiError::invalid(&e))?;
    store_secret(
        &state,
        &meta,
        &caller,
        &access,
        SecretKind::Variable,
        name.as_str(),
        &input.value,
    )
    .await
}

/// Deletes an environment variable.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/variables/{variable}", tag = "workspace settings",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("variable" = String, Path, description = "Name")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such variable")))]
pub(crate) async fn delete_variable(
    State(state): State<AppState>,
    meta: RequestMeta,
    caller: Caller,
    access: WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let name = path.1;
    remove_secret(&state, &meta, &caller, &access, SecretKind::Variable, &name).await
}

/// Whether the personal access token is set, and by whom. Never the token.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/pat", tag = "workspace settings",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    responses((status = 200, description = "The PAT's metadata (empty when unset)", body = Vec<SecretView>)))]
pub(crate) async fn get_pat(
    State(state): State<AppState>,
    access: WorkspaceAccess,
) -> Result<Json<Vec<SecretView>>, ApiError> {
    list_secrets(&state, &access, SecretKind::Pat).await
}

/// Sets the workspace's personal access token (write-only).
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/pat", tag = "workspace settings",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = SecretValue, example = json!({"value": "example-token"})),
    responses((status = 201, description = "Set"), (status = 200, description = "Replaced")))]
pub(crate) async fn put_pat(
    State(state): State<AppState>,
    meta: RequestMeta,
    caller: Caller,
    access: WorkspaceAccess,
    ApiJson(input): ApiJson<SecretValue>,
) -> Result<StatusCode, ApiError> {
    check_secret_value("value", &input.value, TOKEN_MAX).map_err(|e| ApiError::invalid(&e))?;
    store_secret(
        &state,
        &meta,
        &caller,
        &access,
        SecretKind::Pat,
        "pat",
        &input.value,
    )
    .await
}

/// Removes the personal access token.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/pat", tag = "workspace settings",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    responses((status = 204, description = "Removed"), (status = 404, description = "Not set")))]
pub(crate) async fn delete_pat(
    State(state): State<AppState>,
    meta: RequestMeta,
    caller: Caller,
    access: WorkspaceAccess,
) -> Result<StatusCode, ApiError> {
    remove_secret(&state, &meta, &caller, &access, SecretKind::Pat, "pat").await
}

/// Provider keys (bring-your-own-key): which providers have one, who set it and when.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/provider-keys", tag = "workspace settings",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    responses((status = 200, description = "Providers with a key, without the keys", body = Vec<SecretView>)))]
pub(crate) async fn list_provider_keys(
    State(state): State<AppState>,
    access: WorkspaceAccess,
) -> Result<Json<Vec<SecretView>>, ApiError> {
    list_secrets(&state, &access, SecretKind::Provider).await
}

fn provider(name: &str) -> Result<Provider, ApiError> {
    Provider::parse(name).ok_or(ApiError::from_status(StatusCode::NOT_FOUND))
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
    meta: RequestMeta,
    caller: Caller,
    access: WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiJson(input): ApiJson<SecretValue>,
) -> Result<StatusCode, ApiError> {
    let name = path.1;
    let provider = provider(&name)?;
    check_secret_value("value", &input.value, TOKEN_MAX).map_err(|e| ApiError::invalid(&e))?;
    store_secret(
        &state,
        &meta,
        &caller,
        &access,
        SecretKind::Provider,
        provider.as_str(),
        &input.value,
    )
    .await
}

/// Removes a provider's key.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/provider-keys/{provider}", tag = "workspace settings",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("provider" = String, Path, description = "Provider")),
    responses((status = 204, description = "Removed"), (status = 404, description = "Not set")))]
pub(crate) async fn delete_provider_key(
    State(state): State<AppState>,
    meta: RequestMeta,
    caller: Caller,
    access: WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let name = path.1;
    let provider = provider(&name)?;
    remove_secret(
        &state,
        &meta,
        &caller,
        &access,
        SecretKind::Provider,
        provider.as_str(),
    )
    .await
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
    access: WorkspaceAccess,
) -> Result<Json<Vec<PromptView>>, ApiError> {
    let mut tx = access.open(&state).await?;
    let rows = tx.prompts().await.map_err(db)?;
    tx.commit().await.map_err(db)?;
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
    access: WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<Json<PromptView>, ApiError> {
    let name = path.1;
    let mut tx = access.open(&state).await?;
    let row = tx
        .prompt(&name)
        .await
        .map_err(db)?
        .ok_or(ApiError::from_status(StatusCode::NOT_FOUND))?;
    tx.commit().await.map_err(db)?;
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
    meta: RequestMeta,
    caller: Caller,
    access: WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiJson(input): ApiJson<PromptText>,
) -> Result<(StatusCode, Json<PromptView>), ApiError> {
    let name = path.1;
    let name = PromptName::parse(&name).map_err(|e| ApiError::invalid(&e))?;
    check_prompt(&input.template).map_err(|e| ApiError::invalid(&e))?;
    debug_assert!(input.template.len() <= PROMPT_MAX);
    let mut tx = access.open(&state).await?;
    let replaced = tx
        .put_prompt(name.as_str(), &input.template, now_us(state.clock.as_ref()))
        .await
        .map_err(db)?;
    let event = meta.event(
        state.clock.now(),
        caller.actor(),
        "workspace.prompt_saved",
        "prompt",
        Some(name.as_str().to_owned()),
        Outcome::Success,
        json!({ "name": name.as_str(), "bytes": input.template.len(), "replaced": replaced }),
    );
    tx.record(&state.audit_key, event).await.map_err(db)?;
    let row = tx
        .prompt(name.as_str())
        .await
        .map_err(db)?
        .ok_or_else(|| ApiError::internal(&"prompt vanished"))?;
    tx.commit().await.map_err(db)?;
    Ok((set_status(replaced), Json(prompt_view(row))))
}

/// Deletes a prompt template.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/prompts/{prompt}", tag = "workspace settings",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("prompt" = String, Path, description = "Prompt name")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such prompt")))]
pub(crate) async fn delete_prompt(
    State(state): State<AppState>,
    meta: RequestMeta,
    caller: Caller,
    access: WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let name = path.1;
    let mut tx = access.open(&state).await?;
    if !tx.delete_prompt(&name).await.map_err(db)? {
        return Err(ApiError::from_status(StatusCode::NOT_FOUND));
    }
    let event = meta.event(
        state.clock.now(),
        caller.actor(),
        "workspace.prompt_deleted",
        "prompt",
        Some(name.clone()),
        Outcome::Success,
        json!({ "name": name }),
    );
    tx.record(&state.audit_key, event).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(StatusCode::NO_CONTENT)
}
