//! Console → a workspace's Bots: its bots (a new one acts for its maker) and a page per bot
//! with its conversation and a box to write to it — the console channel. Through
//! `warden_core::bots`, exactly as the API; every route needs the licence's `bots` module.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use utoipa_axum::routes;
use warden_core::bots;
use warden_domain::access::{Access, Permission};
use warden_domain::license::Feature;

use super::workspaces::Place;
use super::{Done, Fields, Frame, frame, render};
use crate::http::authz::{UserOp, WorkspaceAccess};
use crate::http::problem::ApiError;
use crate::http::query::ApiQuery;
use crate::http::routes::Routes;
use crate::identity::Caller;
use crate::state::AppState;

pub(super) fn routes() -> Routes<AppState> {
    use Access::Workspace;
    let f = Feature::Bots;
    Routes::new()
        .add_feature(Workspace(Permission::BOTS_READ), f, routes!(page))
        .add_feature(Workspace(Permission::BOTS_CREATE), f, routes!(create))
        .add_feature(Workspace(Permission::BOTS_READ), f, routes!(bot_page))
        .add_feature(Workspace(Permission::SESSIONS_CREATE), f, routes!(say))
}

struct BotItem {
    id: String,
    name: String,
    provider: String,
}

#[derive(Template)]
#[template(path = "console/bots.html")]
struct BotsPage {
    frame: Frame,
    place: Place,
    bots: Vec<BotItem>,
    may_create: bool,
    providers: &'static [&'static str],
}

const PROVIDERS: &[&str] = &[
    "claude-code",
    "codex",
    "gemini-cli",
    "opencode",
    "kilo-cli",
    "qwen-code",
];

/// The workspace's bots.
#[utoipa::path(get, path = "/console/workspaces/{workspace_id}/bots", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"), Done),
    responses((status = 200, description = "Page", content_type = "text/html"),
              (status = 404, description = "No such workspace for this person", content_type = "text/html")))]
pub(crate) async fn page(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    caller: Caller,
    ApiQuery(done): ApiQuery<Done>,
) -> Result<Response, ApiError> {
    let list = bots::list(&state.ctx, &grant).await?;
    let place = Place::of(&state, &grant, "bots").await?;
    let page = BotsPage {
        frame: frame(
            &state,
            &caller,
            "workspaces",
            super::notice(done.done.as_deref()),
        )
        .await?,
        bots: list
            .into_iter()
            .map(|b| BotItem {
                id: b.id.to_string(),
                name: b.name,
                provider: b.provider,
            })
            .collect(),
        may_create: !place.archived && grant.holds(Permission::BOTS_CREATE),
        providers: PROVIDERS,
        place,
    };
    Ok(render(&page, StatusCode::OK))
}

/// Makes a bot from the form; to its page.
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/bots", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Made: to its page")))]
pub(crate) async fn create(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    UserOp(op): UserOp,
    body: Bytes,
) -> Result<Response, ApiError> {
    let f = Fields::parse(&body);
    let bot = bots::create(
        &state.ctx,
        &op,
        &grant,
        f.text("name"),
        f.text("provider"),
        f.text("instructions"),
    )
    .await?;
    Ok(Redirect::to(&Place::url(
        &grant,
        &format!("/bots/{}?done=bot-created", bot.id),
    ))
    .into_response())
}

struct MessageItem {
    body: String,
    channel: String,
    status: String,
    answer: String,
    at: String,
}

#[derive(Template)]
#[template(path = "console/bot.html")]
struct BotPage {
    frame: Frame,
    place: Place,
    id: String,
    name: String,
    provider: String,
    instructions: String,
    messages: Vec<MessageItem>,
    busy: bool,
    may_say: bool,
}

/// One bot: its conversation, and the box to write to it.
#[utoipa::path(get, path = "/console/workspaces/{workspace_id}/bots/{bot_id}", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("bot_id" = String, Path, description = "Bot id"), Done),
    responses((status = 200, description = "Page", content_type = "text/html"),
              (status = 404, description = "No such bot", content_type = "text/html")))]
pub(crate) async fn bot_page(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    caller: Caller,
    Path(path): Path<(String, String)>,
    ApiQuery(done): ApiQuery<Done>,
) -> Result<Response, ApiError> {
    let d = bots::get(&state.ctx, &grant, &path.1).await?;
    let place = Place::of(&state, &grant, "bots").await?;
    let messages: Vec<MessageItem> = d
        .messages
        .into_iter()
        .map(|m| MessageItem {
            body: m.body,
            channel: m.channel,
            status: m.status,
            answer: m.answer.unwrap_or_default(),
            at: m.created_at.replace('T', " ").chars().take(16).collect(),
        })
        .collect();
    let page = BotPage {
        frame: frame(
            &state,
            &caller,
            "workspaces",
            super::notice(done.done.as_deref()),
        )
        .await?,
        id: d.bot.id.to_string(),
        name: d.bot.name,
        provider: d.bot.provider,
        instructions: d.bot.instructions,
        busy: messages
            .iter()
            .any(|m| matches!(m.status.as_str(), "queued" | "answering")),
        messages,
        may_say: !place.archived && grant.holds(Permission::SESSIONS_CREATE),
        place,
    };
    Ok(render(&page, StatusCode::OK))
}

/// Writes to a bot from its page.
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/bots/{bot_id}/messages", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("bot_id" = String, Path, description = "Bot id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Queued: back to the conversation")))]
pub(crate) async fn say(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    UserOp(op): UserOp,
    Path(path): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let f = Fields::parse(&body);
    bots::say(&state.ctx, &op, &grant, &path.1, f.text("message")).await?;
    Ok(Redirect::to(&Place::url(
        &grant,
        &format!("/bots/{}?done=bot-message-sent", path.1),
    ))
    .into_response())
}
