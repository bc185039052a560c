//! A workspace's bots and their conversations: make a bot (its sessions act for its maker),
//! send it messages (answered one at a time, in order), read the conversation. Every route
//! needs the licence's `bots` module.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::routes;
use warden_core::bots::{self, Bot, BotDetail, BotMessage};
use warden_domain::access::{Access, Permission};
use warden_domain::license::Feature;

use crate::http::authz::{UserOp, WorkspaceAccess};
use crate::http::json::ApiJson;
use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    use Access::Workspace;
    let f = Feature::Bots;
    Routes::new()
        .add_feature(Workspace(Permission::BOTS_READ), f, routes!(list))
        .add_feature(Workspace(Permission::BOTS_CREATE), f, routes!(create))
        .add_feature(Workspace(Permission::BOTS_READ), f, routes!(get))
        .add_feature(Workspace(Permission::BOTS_DELETE), f, routes!(delete))
        .add_feature(Workspace(Permission::SESSIONS_CREATE), f, routes!(say))
        .add_feature(
            Workspace(Permission::AUTOMATIONS_UPDATE),
            f,
            routes!(link_source),
        )
}

/// A new bot.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BotInput {
    /// 1 to 100 characters.
    pub name: String,
    /// The coding agent that answers (`claude-code`, `codex`, …).
    pub provider: String,
    /// What it is told before the conversation (at most 16 KiB).
    pub instructions: String,
}

/// The workspace's bots.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/bots", tag = "bots",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    responses((status = 200, description = "Bots", body = Vec<Bot>)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
) -> Result<Json<Vec<Bot>>, ApiError> {
    Ok(Json(bots::list(&state.ctx, &grant).await?))
}

/// Makes a bot; its sessions act for the caller.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/bots", tag = "bots",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = BotInput, example = json!({"name": "Release helper", "provider": "claude-code",
        "instructions": "You answer questions about this repository's release process."})),
    responses((status = 201, description = "Made", body = Bot),
              (status = 409, description = "The name is taken", content_type = "application/problem+json")))]
pub(crate) async fn create(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    ApiJson(input): ApiJson<BotInput>,
) -> Result<(StatusCode, Json<Bot>), ApiError> {
    let bot = bots::create(
        &state.ctx,
        &op,
        &grant,
        &input.name,
        &input.provider,
        &input.instructions,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(bot)))
}

/// One bot and its conversation (the newest 200 messages, oldest first).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/bots/{bot_id}", tag = "bots",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("bot_id" = String, Path, description = "Bot id")),
    responses((status = 200, description = "The bot", body = BotDetail)))]
pub(crate) async fn get(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<Json<BotDetail>, ApiError> {
    Ok(Json(bots::get(&state.ctx, &grant, &path.1).await?))
}

/// Deletes a bot and its conversation.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/bots/{bot_id}", tag = "bots",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("bot_id" = String, Path, description = "Bot id")),
    responses((status = 204, description = "Deleted")))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    bots::delete(&state.ctx, &op, &grant, &path.1).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A message for a bot.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SayInput {
    /// The message (at most 16 KiB).
    pub message: String,
}

/// Sends a bot a message: queued behind earlier ones, answered in turn.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/bots/{bot_id}/messages", tag = "bots",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("bot_id" = String, Path, description = "Bot id")),
    request_body(content = SayInput, example = json!({"message": "How do I cut a release?"})),
    responses((status = 202, description = "Queued", body = BotMessage)))]
pub(crate) async fn say(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiJson(input): ApiJson<SayInput>,
) -> Result<(StatusCode, Json<BotMessage>), ApiError> {
    let m = bots::say(&state.ctx, &op, &grant, &path.1, &input.message).await?;
    Ok((StatusCode::ACCEPTED, Json(m)))
}

/// The bot an event source's deliveries go to.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceBot {
    /// A bot of the workspace; null: deliveries go to no bot.
    pub bot_id: Option<String>,
}

/// Makes an event source's deliveries messages to a bot (the webhook channel): each accepted
/// delivery's body is a message, answered in turn.
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/event-sources/{source_id}/bot", tag = "bots",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("source_id" = String, Path, description = "Event source id")),
    request_body(content = SourceBot, example = json!({"bot_id": "01939c6e-5f0a-7c3e-9a51-2f4d8b7e1c20"})),
    responses((status = 200, description = "Saved: the bot, or null", body = Option<Bot>)))]
pub(crate) async fn link_source(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiJson(input): ApiJson<SourceBot>,
) -> Result<Json<Option<Bot>>, ApiError> {
    Ok(Json(
        bots::link_source(&state.ctx, &op, &grant, &path.1, input.bot_id.as_deref()).await?,
    ))
}
