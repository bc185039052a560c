//! Console → a workspace's Settings: repository and hooks, the write-only values
//! (environment variables, provider keys, the personal access token: shown as "set", by whom
//! and when — never a value), and prompt templates. Through `warden_core::workspaces::settings`
//! and `warden_core::secrets`, as the API.

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use utoipa_axum::routes;
use uuid::Uuid;
use warden_core::secrets::{self, Slot};
use warden_core::workspaces::{self as core, settings};
use warden_domain::access::{Access, Permission};
use warden_domain::tenancy::{Hooks, PromptName, Repository, WorkspaceName};
use warden_store::tenancy::{SecretKind, SecretMeta, WorkspaceGrant};

use super::workspaces::Place;
use super::{Done, Fields, Frame, email_of, frame, render, when};
use crate::http::authz::{UserOp, WorkspaceAccess};
use crate::http::problem::ApiError;
use crate::http::query::ApiQuery;
use crate::http::routes::Routes;
use crate::identity::Caller;
use crate::state::AppState;

pub(super) fn routes() -> Routes<AppState> {
    use Access::Workspace;
    let update = Workspace(Permission::SETTINGS_UPDATE);
    let delete = Workspace(Permission::SETTINGS_DELETE);
    Routes::new()
        .add(Workspace(Permission::SETTINGS_READ), routes!(settings_page))
        .add(update, routes!(save_settings))
        .add(update, routes!(set_secret))
        .add(delete, routes!(remove_secret))
        .add(update, routes!(save_prompt))
        .add(update, routes!(save_mcp))
        .add(delete, routes!(remove_prompt))
        .add(Workspace(Permission::WORKSPACES_UPDATE), routes!(rename))
        .add(Workspace(Permission::WORKSPACES_DELETE), routes!(archive))
}

struct SecretItem {
    name: String,
    set_by: String,
    set_at: String,
}

struct PromptItem {
    name: String,
    template: String,
}

#[derive(Template)]
#[template(path = "console/workspace_settings.html")]
struct SettingsPage {
    frame: Frame,
    place: Place,
    repository: String,
    pre_session: String,
    post_session: String,
    ticket_config: String,
    variables: Vec<SecretItem>,
    keys: Vec<SecretItem>,
    pat: Option<SecretItem>,
    prompts: Vec<PromptItem>,
    may_update: bool,
    may_delete: bool,
    may_rename: bool,
    may_archive: bool,
    providers: &'static [&'static str],
    mcp_enabled: bool,
    mcp_url: String,
}

const KEY_PROVIDERS: &[&str] = &[
    "claude-code",
    "codex",
    "gemini-cli",
    "opencode",
    "kilo-cli",
    "qwen-code",
];

async fn described(
    state: &AppState,
    grant: &WorkspaceGrant,
    kind: SecretKind,
    names: &mut HashMap<Uuid, String>,
) -> Result<Vec<SecretItem>, ApiError> {
    let rows: Vec<SecretMeta> = secrets::list(&state.ctx, grant, kind).await?;
    let mut out = Vec::with_capacity(rows.len());
    for m in rows {
        let set_by = match names.get(&m.set_by) {
            Some(e) => e.clone(),
            None => {
                let e = email_of(state, m.set_by).await?;
                names.insert(m.set_by, e.clone());
                e
            }
        };
        out.push(SecretItem {
            name: m.name,
            set_by,
            set_at: when(m.set_at),
        });
    }
    Ok(out)
}

/// A workspace's settings.
#[utoipa::path(get, path = "/console/workspaces/{workspace_id}/settings", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"), Done),
    responses((status = 200, description = "Page", content_type = "text/html"),
              (status = 404, description = "No such workspace for this person", content_type = "text/html")))]
pub(crate) async fn settings_page(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    caller: Caller,
    ApiQuery(done): ApiQuery<Done>,
) -> Result<Response, ApiError> {
    let w = core::get(&state.ctx, &grant).await?;
    let mut names = HashMap::new();
    let variables = described(&state, &grant, SecretKind::Variable, &mut names).await?;
    let keys = described(&state, &grant, SecretKind::Provider, &mut names).await?;
    let pat = described(&state, &grant, SecretKind::Pat, &mut names)
        .await?
        .into_iter()
        .next();
    let prompts = settings::prompts(&state.ctx, &grant)
        .await?
        .into_iter()
        .map(|p| PromptItem {
            name: p.name,
            template: p.template,
        })
        .collect();
    let mcp = warden_core::mcp::settings(&state.ctx, &grant).await?;
    let place = Place::of(&state, &grant, "settings").await?;
    let page = SettingsPage {
        mcp_enabled: mcp.enabled,
        mcp_url: mcp.url,
        frame: frame(
            &state,
            &caller,
            "workspaces",
            super::notice(done.done.as_deref()),
        )
        .await?,
        repository: match w.repository {
            Some(Repository::Url(r) | Repository::Path(r)) => r,
            None => String::new(),
        },
        ticket_config: w
            .ticket_config
            .as_ref()
            .map(|t| serde_json::to_string_pretty(t).unwrap_or_default())
            .unwrap_or_default(),
        pre_session: w.hooks.pre_session.join("\n"),
        post_session: w.hooks.post_session.join("\n"),
        variables,
        keys,
        pat,
        prompts,
        may_update: grant.holds(Permission::SETTINGS_UPDATE) && !place.archived,
        may_delete: grant.holds(Permission::SETTINGS_DELETE) && !place.archived,
        may_rename: grant.holds(Permission::WORKSPACES_UPDATE) && !place.archived,
        may_archive: grant.holds(Permission::WORKSPACES_DELETE) && !place.archived,
        place,
        providers: KEY_PROVIDERS,
    };
    Ok(render(&page, StatusCode::OK))
}

/// Turns the MCP endpoint on or off for the workspace's new sessions.
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/settings/mcp", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Saved: back to the settings")))]
pub(crate) async fn save_mcp(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    UserOp(op): UserOp,
    body: Bytes,
) -> Result<Response, ApiError> {
    let on = Fields::parse(&body).text("enabled") == "on";
    warden_core::mcp::set_enabled(&state.ctx, &op, &grant, on).await?;
    Ok(Redirect::to(&Place::url(&grant, "/settings?done=mcp-saved")).into_response())
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

fn to_settings(grant: &WorkspaceGrant, done: &str) -> Response {
    Redirect::to(&Place::url(grant, &format!("/settings?done={done}"))).into_response()
}

/// Saves the repository (`repository`, blank clears it), hooks (`pre_session`,
/// `post_session`: one command per line) and ticket source (`ticket_config`, JSON; blank
/// clears it, a form without the field keeps it).
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/settings", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Saved: back to the settings")))]
pub(crate) async fn save_settings(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    body: Bytes,
) -> Result<Response, ApiError> {
    let form = Fields::parse(&body);
    let current = core::get(&state.ctx, &grant).await?;
    let hooks = Hooks {
        pre_session: lines(form.text("pre_session")),
        post_session: lines(form.text("post_session")),
    };
    // The ticket source, as JSON (blank clears it); a page without the field keeps it.
    let tickets = match form.has("ticket_config") {
        false => current.ticket_config,
        true => match form.given("ticket_config") {
            None => None,
            Some(text) => Some(
                serde_json::from_str::<serde_json::Value>(text).map_err(|_| {
                    warden_core::CoreError::invalid(
                        "ticket_config",
                        "must be JSON: {\"provider\": \"github\", \"project\": \"owner/repo\"}",
                    )
                })?,
            ),
        },
    };
    let parsed = settings::Settings::parse(form.given("repository"), hooks, tickets.as_ref())?;
    settings::save(&state.ctx, &op, &grant, parsed).await?;
    Ok(to_settings(&grant, "settings-saved"))
}

/// The write-only value a form names (`kind`: variable, provider or pat; `name`).
fn slot(form: &Fields) -> Result<Slot, ApiError> {
    Ok(match form.text("kind") {
        "variable" => Slot::variable(form.text("name").trim())?,
        "provider" => Slot::provider(form.text("name"))?,
        "pat" => Slot::pat(),
        _ => {
            return Err(warden_core::CoreError::invalid(
                "kind",
                "must be variable, provider or pat",
            )
            .into());
        }
    })
}

/// Sets a write-only value (`kind`, `name`, `value`); the value is never shown again.
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/secrets", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Saved: back to the settings")))]
pub(crate) async fn set_secret(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    body: Bytes,
) -> Result<Response, ApiError> {
    let form = Fields::parse(&body);
    let slot = slot(&form)?;
    secrets::set(&state.ctx, &op, &grant, &slot, form.text("value")).await?;
    Ok(to_settings(&grant, "secret-set"))
}

/// Removes a write-only value (`kind`, `name`).
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/secrets/remove", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Removed: back to the settings")))]
pub(crate) async fn remove_secret(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    body: Bytes,
) -> Result<Response, ApiError> {
    let slot = slot(&Fields::parse(&body))?;
    secrets::remove(&state.ctx, &op, &grant, &slot).await?;
    Ok(to_settings(&grant, "secret-removed"))
}

/// Creates or replaces a prompt template (`name`, `template`).
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/prompts", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Saved: back to the settings")))]
pub(crate) async fn save_prompt(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    body: Bytes,
) -> Result<Response, ApiError> {
    let form = Fields::parse(&body);
    let name = PromptName::parse(form.text("name").trim())?;
    let template = form.text("template").replace("\r\n", "\n");
    settings::save_prompt(&state.ctx, &op, &grant, &name, &template).await?;
    Ok(to_settings(&grant, "prompt-saved"))
}

/// Deletes a prompt template (`name`).
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/prompts/remove", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Removed: back to the settings")))]
pub(crate) async fn remove_prompt(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    body: Bytes,
) -> Result<Response, ApiError> {
    let form = Fields::parse(&body);
    settings::delete_prompt(&state.ctx, &op, &grant, form.text("name")).await?;
    Ok(to_settings(&grant, "prompt-removed"))
}

/// Renames the workspace (`name`).
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/rename", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Renamed: back to the settings")))]
pub(crate) async fn rename(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    body: Bytes,
) -> Result<Response, ApiError> {
    let name = WorkspaceName::parse(Fields::parse(&body).text("name"))?;
    core::rename(&state.ctx, &op, &grant, &name).await?;
    Ok(to_settings(&grant, "workspace-renamed"))
}

/// Archives the workspace: it stays readable, and nothing in it can change.
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/archive", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Archived: back to the settings")))]
pub(crate) async fn archive(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
) -> Result<Response, ApiError> {
    core::archive(&state.ctx, &op, &grant).await?;
    Ok(to_settings(&grant, "workspace-archived"))
}
