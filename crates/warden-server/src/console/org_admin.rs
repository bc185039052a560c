//! Console → Organization: for the admins of the organization the sign-in acts in (and
//! platform administrators acting there), its settings, members, usage over the last 30 days
//! and its audit view, a page at a time. The same use cases as
//! `/api/v1/organizations/{org}/…`; the navigation shows the page only to them.

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use utoipa_axum::routes;
use warden_core::organizations::settings::SettingsChange;
use warden_core::organizations::{self, audit, settings, usage};
use warden_core::{Code, CoreError};
use warden_domain::access::{Access, Permission};
use warden_domain::organizations::ORG_MANAGER;
use warden_store::audit::Filter;

use super::audit::{EventItem, items};
use super::{Fields, Frame, frame, render, when};
use crate::http::authz::UserOp;
use crate::http::problem::ApiError;
use crate::http::query::ApiQuery;
use crate::http::routes::Routes;
use crate::identity::Caller;
use crate::state::AppState;

pub(super) fn routes() -> Routes<AppState> {
    Routes::new()
        .add(Access::SignedIn, routes!(org_page))
        .add(Access::SignedIn, routes!(save_settings))
}

/// The page's query: a notice after a redirect, and which audit page.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrgQuery {
    /// `settings-saved` after saving.
    pub done: Option<String>,
    /// Events older than this sequence number (the "older" link).
    pub cursor: Option<i64>,
}

struct MemberItem {
    email: String,
    role: String,
    added_at: String,
}

struct UsageItem {
    name: String,
    archived: bool,
    members: i64,
    sessions: i64,
    active_sessions: i64,
    automation_runs: i64,
    llm_requests: i64,
    llm_tokens: i64,
}

#[derive(Template)]
#[template(path = "console/org.html")]
struct OrgPage {
    frame: Frame,
    name: String,
    slug: String,
    domains: String,
    /// The workspace limit's field is editable (a platform administrator).
    manager: bool,
    limit: String,
    active_workspaces: i64,
    members: Vec<MemberItem>,
    usage: Vec<UsageItem>,
    totals: UsageItem,
    events: Vec<EventItem>,
    older: Option<String>,
    paged: bool,
    link_actors: bool,
}

const EVENTS_PER_PAGE: i64 = 25;

fn usage_item(w: warden_store::tenancy::org_usage::WorkspaceUsage) -> UsageItem {
    UsageItem {
        name: w.name,
        archived: w.archived,
        members: w.members,
        sessions: w.sessions,
        active_sessions: w.active_sessions,
        automation_runs: w.automation_runs,
        llm_requests: w.llm_requests,
        llm_tokens: w.llm_tokens,
    }
}

/// The key the use cases take for the organization the sign-in acts in.
fn current(caller: &Caller) -> Result<String, ApiError> {
    caller
        .principal
        .organization
        .map(|o| o.to_string())
        .ok_or_else(|| ApiError::from(CoreError::from(Code::NotFound)))
}

/// The organization the sign-in acts in: settings, members, usage, audit view.
#[utoipa::path(get, path = "/console/org", tag = "console", params(OrgQuery),
    responses((status = 200, description = "Page", content_type = "text/html"),
              (status = 403, description = "Not the organization's admin", content_type = "text/html")))]
pub(crate) async fn org_page(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    caller: Caller,
    ApiQuery(q): ApiQuery<OrgQuery>,
) -> Result<Response, ApiError> {
    let key = current(&caller)?;
    let ctx = &state.ctx;
    let row = settings::get(ctx, &caller.principal, &key).await?;
    let (_, members) = organizations::members(ctx, &caller.principal, &key).await?;
    let report = usage::report(ctx, &op, &caller.principal, &key, 30).await?;
    let rows = audit::page(
        ctx,
        &caller.principal,
        &key,
        &Filter::default(),
        q.cursor,
        EVENTS_PER_PAGE,
    )
    .await?;
    let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) == EVENTS_PER_PAGE;
    let older = rows
        .last()
        .filter(|_| full)
        .map(|r| format!("/console/org?cursor={}", r.seq));
    let events = items(&state, rows).await?;
    let frame = frame(&state, &caller, "org", super::notice(q.done.as_deref())).await?;
    let page = OrgPage {
        manager: frame.may.contains(ORG_MANAGER),
        name: row.name,
        slug: row.slug,
        domains: row.email_domains.replace(' ', ", "),
        limit: row
            .max_workspaces
            .map(|n| n.to_string())
            .unwrap_or_default(),
        active_workspaces: report.workspaces.iter().filter(|w| !w.archived).count() as i64,
        members: members
            .into_iter()
            .map(|m| MemberItem {
                email: m.email,
                role: m.role,
                added_at: when(m.added_at),
            })
            .collect(),
        usage: report.workspaces.into_iter().map(usage_item).collect(),
        totals: usage_item(report.totals),
        events,
        older,
        paged: q.cursor.is_some(),
        link_actors: false,
        frame,
    };
    Ok(render(&page, StatusCode::OK))
}

/// Saves the settings form (`name`, `email_domains`; `max_workspaces` from a platform
/// administrator, blank for no limit).
#[utoipa::path(post, path = "/console/org/settings", tag = "console",
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Saved: back to the organization")))]
pub(crate) async fn save_settings(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = current(&caller)?;
    let form = Fields::parse(&body);
    let max_workspaces = if form.has("max_workspaces") {
        Some(match form.given("max_workspaces") {
            None => None,
            Some(n) => Some(n.parse::<i64>().map_err(|_| {
                CoreError::invalid("max_workspaces", "must be a whole number, or blank")
            })?),
        })
    } else {
        None
    };
    let change = SettingsChange {
        name: Some(form.text("name").to_owned()),
        email_domains: Some(form.words("email_domains")),
        max_workspaces,
    };
    settings::update(&state.ctx, &op, &caller.principal, &key, change).await?;
    Ok(Redirect::to("/console/org?done=settings-saved").into_response())
}
