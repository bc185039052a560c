//! Console → a workspace's Automations: its automations (create, run now, delete; a page per
//! automation with its runs and their sessions) and its event sources (create with the URL
//! shown once, counters, rotate the URL, delete). Through `warden_core::automations` and
//! `warden_core::webhooks`, exactly as the API; every route needs the licence's
//! `automations` module.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use secrecy::SecretString;
use utoipa_axum::routes;
use warden_core::automations::{self, AutomationInput};
use warden_core::op::rfc3339;
use warden_core::webhooks::{self, NewToken, SourceInput};
use warden_domain::access::{Access, Permission};
use warden_domain::license::Feature;
use warden_store::automations::{AutomationRow, RunRow};
use warden_store::event_sources::SourceRow;
use zeroize::Zeroizing;

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
    let f = Feature::Automations;
    Routes::new()
        .add_feature(Workspace(Permission::AUTOMATIONS_READ), f, routes!(page))
        .add_feature(
            Workspace(Permission::AUTOMATIONS_CREATE),
            f,
            routes!(create),
        )
        .add_feature(
            Workspace(Permission::AUTOMATIONS_READ),
            f,
            routes!(automation_page),
        )
        .add_feature(
            Workspace(Permission::AUTOMATIONS_UPDATE),
            f,
            routes!(run_now),
        )
        .add_feature(
            Workspace(Permission::AUTOMATIONS_DELETE),
            f,
            routes!(delete),
        )
        .add_feature(
            Workspace(Permission::AUTOMATIONS_CREATE),
            f,
            routes!(create_source),
        )
        .add_feature(
            Workspace(Permission::AUTOMATIONS_UPDATE),
            f,
            routes!(rotate_source),
        )
        .add_feature(
            Workspace(Permission::AUTOMATIONS_DELETE),
            f,
            routes!(delete_source),
        )
}

struct AutomationItem {
    id: String,
    name: String,
    kind: String,
    schedule: String,
    next_run: String,
    enabled: bool,
}

/// A time to the second, as the console writes times.
fn when(us: Option<i64>) -> String {
    us.map_or_else(
        || "—".to_owned(),
        |t| {
            let text = rfc3339(t - t.rem_euclid(1_000_000)).replace('T', " ");
            text.strip_suffix('Z').map_or(text.clone(), |s| {
                format!("{} UTC", s.trim_end_matches(".000000"))
            })
        },
    )
}

fn schedule_of(a: &AutomationRow) -> String {
    match a.kind.as_str() {
        "cron" => format!(
            "{} ({})",
            a.cron.as_deref().unwrap_or(""),
            a.timezone.as_deref().unwrap_or("UTC")
        ),
        "once" => format!("once, {}", when(a.run_at)),
        "loop" => format!(
            "every {} s after a run, {} runs",
            a.loop_interval_secs.unwrap_or(0),
            a.loop_max.unwrap_or(0)
        ),
        "trigger" => "when an event source receives a match".to_owned(),
        _ => "only when asked".to_owned(),
    }
}

fn item(a: &AutomationRow) -> AutomationItem {
    AutomationItem {
        id: a.id.to_string(),
        name: a.name.clone(),
        kind: a.kind.clone(),
        schedule: schedule_of(a),
        next_run: when(a.next_run_at),
        enabled: a.enabled,
    }
}

struct SourceItem {
    id: String,
    name: String,
    kind: String,
    enabled: bool,
    signed: bool,
    token: String,
    runs: String,
    accepted: i64,
    ignored: i64,
    replayed: i64,
    dropped: i64,
    waiting: i64,
}

fn source_item(s: SourceRow, automations: &[AutomationRow]) -> SourceItem {
    SourceItem {
        id: s.id.to_string(),
        runs: s
            .automation_id
            .and_then(|a| automations.iter().find(|x| x.id == a))
            .map_or_else(
                || "nothing (it only records)".to_owned(),
                |a| a.name.clone(),
            ),
        name: s.name,
        kind: s.kind,
        enabled: s.enabled,
        signed: s.sealed_secret.is_some(),
        token: s.token_prefix,
        accepted: s.accepted,
        ignored: s.ignored,
        replayed: s.replayed,
        dropped: s.dropped_rate + s.dropped_backlog + s.dropped_signature + s.dropped_paused,
        waiting: s.waiting,
    }
}

#[derive(Template)]
#[template(path = "console/automations.html")]
struct AutomationsPage {
    frame: Frame,
    place: Place,
    automations: Vec<AutomationItem>,
    sources: Vec<SourceItem>,
    choices: Vec<(String, String)>,
    may_create: bool,
    may_update: bool,
    may_delete: bool,
}

/// The workspace's automations and event sources, and the forms that make them.
#[utoipa::path(get, path = "/console/workspaces/{workspace_id}/automations", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"), Done),
    responses((status = 200, description = "Page", content_type = "text/html"),
              (status = 404, description = "No such workspace for this person", content_type = "text/html")))]
pub(crate) async fn page(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    caller: Caller,
    ApiQuery(done): ApiQuery<Done>,
) -> Result<Response, ApiError> {
    let rows = automations::list(&state.ctx, &grant).await?;
    let sources = webhooks::list(&state.ctx, &grant).await?;
    let place = Place::of(&state, &grant, "automations").await?;
    let open = !place.archived;
    let page = AutomationsPage {
        frame: frame(
            &state,
            &caller,
            "workspaces",
            super::notice(done.done.as_deref()),
        )
        .await?,
        may_create: open && grant.holds(Permission::AUTOMATIONS_CREATE),
        may_update: open && grant.holds(Permission::AUTOMATIONS_UPDATE),
        may_delete: open && grant.holds(Permission::AUTOMATIONS_DELETE),
        automations: rows.iter().map(item).collect(),
        choices: rows
            .iter()
            .map(|a| (a.id.to_string(), a.name.clone()))
            .collect(),
        sources: sources.into_iter().map(|s| source_item(s, &rows)).collect(),
        place,
    };
    Ok(render(&page, StatusCode::OK))
}

fn automation_input(f: &Fields) -> AutomationInput {
    let given = |n: &str| f.given(n).map(str::to_owned);
    let kind = f.text("kind").to_owned();
    AutomationInput {
        name: f.text("name").to_owned(),
        run_at: given("run_at").filter(|_| kind == "once"),
        cron: given("cron").filter(|_| kind == "cron"),
        timezone: given("timezone").filter(|_| kind == "cron"),
        loop_interval_secs: given("loop_interval_secs")
            .filter(|_| kind == "loop")
            .and_then(|v| v.parse().ok()),
        loop_max: given("loop_max")
            .filter(|_| kind == "loop")
            .and_then(|v| v.parse().ok()),
        prompt: given("prompt").map(|_| f.text("prompt").to_owned()),
        prompt_name: None,
        provider: f.text("provider").to_owned(),
        command: f
            .text("command")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        mode: given("mode"),
        host_id: None,
        missed: given("missed"),
        enabled: Some(true),
        kind,
    }
}

/// Creates an automation from the form.
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/automations", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Created: to its page")))]
pub(crate) async fn create(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    UserOp(op): UserOp,
    body: Bytes,
) -> Result<Response, ApiError> {
    let input = automation_input(&Fields::parse(&body));
    let row = automations::create(&state.ctx, &op, &grant, &input).await?;
    Ok(Redirect::to(&Place::url(
        &grant,
        &format!("/automations/{}?done=automation-created", row.id),
    ))
    .into_response())
}

struct RunItem {
    trigger: String,
    status: String,
    created: String,
    session: Option<String>,
    error: String,
}

fn run_item(r: RunRow) -> RunItem {
    let started = r.started_at.is_some();
    RunItem {
        trigger: r.trigger,
        status: r.status,
        created: when(Some(r.created_at)),
        session: r.session_id.filter(|_| started).map(|s| s.to_string()),
        error: r.error.unwrap_or_default(),
    }
}

#[derive(Template)]
#[template(path = "console/automation.html")]
struct AutomationPage {
    frame: Frame,
    place: Place,
    a: AutomationItem,
    prompt: String,
    provider: String,
    runs: Vec<RunItem>,
    may_update: bool,
    may_delete: bool,
}

/// One automation: what it starts, when, and its latest runs with their sessions.
#[utoipa::path(get, path = "/console/workspaces/{workspace_id}/automations/{automation_id}", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("automation_id" = String, Path, description = "Automation id"), Done),
    responses((status = 200, description = "Page", content_type = "text/html"),
              (status = 404, description = "No such automation", content_type = "text/html")))]
pub(crate) async fn automation_page(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    caller: Caller,
    Path(path): Path<(String, String)>,
    ApiQuery(done): ApiQuery<Done>,
) -> Result<Response, ApiError> {
    let (row, runs) = automations::get(&state.ctx, &grant, &path.1).await?;
    let place = Place::of(&state, &grant, "automations").await?;
    let open = !place.archived;
    let page = AutomationPage {
        frame: frame(
            &state,
            &caller,
            "workspaces",
            super::notice(done.done.as_deref()),
        )
        .await?,
        a: item(&row),
        prompt: row.prompt_name.as_ref().map_or_else(
            || row.prompt.clone(),
            |n| format!("(the stored prompt “{n}”)"),
        ),
        provider: row.provider.clone(),
        runs: runs.into_iter().map(run_item).collect(),
        may_update: open && grant.holds(Permission::AUTOMATIONS_UPDATE),
        may_delete: open && grant.holds(Permission::AUTOMATIONS_DELETE),
        place,
    };
    Ok(render(&page, StatusCode::OK))
}

/// Queues a run now.
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/automations/{automation_id}/run", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("automation_id" = String, Path, description = "Automation id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Queued: back to the automation")))]
pub(crate) async fn run_now(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    UserOp(op): UserOp,
    Path(path): Path<(String, String)>,
) -> Result<Response, ApiError> {
    automations::run_now(&state.ctx, &op, &grant, &path.1).await?;
    Ok(Redirect::to(&Place::url(
        &grant,
        &format!("/automations/{}?done=run-queued", path.1),
    ))
    .into_response())
}

/// Deletes an automation.
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/automations/{automation_id}/delete", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("automation_id" = String, Path, description = "Automation id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Deleted: back to the automations")))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    UserOp(op): UserOp,
    Path(path): Path<(String, String)>,
) -> Result<Response, ApiError> {
    automations::delete(&state.ctx, &op, &grant, &path.1).await?;
    Ok(Redirect::to(&Place::url(&grant, "/automations?done=automation-deleted")).into_response())
}

#[derive(Template)]
#[template(path = "console/source_url.html")]
struct SourceUrlPage {
    frame: Frame,
    name: String,
    url: Zeroizing<String>,
    rotated: bool,
    back: String,
}

async fn show_url(
    state: &AppState,
    caller: &Caller,
    grant: &warden_store::tenancy::WorkspaceGrant,
    row: SourceRow,
    token: NewToken,
    rotated: bool,
) -> Result<Response, ApiError> {
    let page = SourceUrlPage {
        frame: frame(state, caller, "workspaces", None).await?,
        name: row.name,
        url: Zeroizing::new(format!(
            "{}/webhooks/{}",
            state.ctx.public_url.trim_end_matches('/'),
            token.0.as_str()
        )),
        rotated,
        back: Place::url(grant, "/automations"),
    };
    Ok(render(&page, StatusCode::OK))
}

/// Creates an event source from the form and shows its URL once.
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/event-sources", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Created: its URL, shown once", content_type = "text/html")))]
pub(crate) async fn create_source(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    UserOp(op): UserOp,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    let f = Fields::parse(&body);
    let events: Vec<String> = f
        .text("events")
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect();
    let input = SourceInput {
        name: f.text("name").to_owned(),
        kind: f.text("kind").to_owned(),
        events: (!events.is_empty()).then_some(events),
        automation_id: f.given("automation_id").map(str::to_owned),
        ..SourceInput::default()
    };
    let secret = f.given("secret").map(|s| SecretString::from(s.to_owned()));
    let (row, token) = webhooks::create(&state.ctx, &op, &grant, &input, secret).await?;
    show_url(&state, &caller, &grant, row, token, false).await
}

/// Replaces an event source's URL and shows the new one once.
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/event-sources/{source_id}/rotate", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("source_id" = String, Path, description = "Event source id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "The new URL, shown once", content_type = "text/html")))]
pub(crate) async fn rotate_source(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    UserOp(op): UserOp,
    caller: Caller,
    Path(path): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (row, token) = webhooks::rotate_token(&state.ctx, &op, &grant, &path.1).await?;
    show_url(&state, &caller, &grant, row, token, true).await
}

/// Deletes an event source.
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/event-sources/{source_id}/delete", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("source_id" = String, Path, description = "Event source id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Deleted: back to the automations")))]
pub(crate) async fn delete_source(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    UserOp(op): UserOp,
    Path(path): Path<(String, String)>,
) -> Result<Response, ApiError> {
    webhooks::delete(&state.ctx, &op, &grant, &path.1).await?;
    Ok(Redirect::to(&Place::url(&grant, "/automations?done=source-deleted")).into_response())
}
