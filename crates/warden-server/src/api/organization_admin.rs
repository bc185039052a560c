//! An organization's own administration: its settings, its usage report and its audit view,
//! for its admins (and platform administrators). Every rule is
//! `warden_core::organizations::{settings, usage, audit}`'.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use warden_core::organizations::settings::SettingsChange;
use warden_core::organizations::{audit, settings, usage};
use warden_domain::access::Access;
use warden_domain::license::Feature;
use warden_store::tenancy::org_usage::WorkspaceUsage;
use warden_store::tenancy::organizations::OrgRow;

use super::audit::{EventPage, bad_filter};
use super::me::rfc3339;
use crate::audit::filter::AuditQuery;
use crate::http::authz::UserOp;
use crate::http::json::ApiJson;
use crate::http::problem::ApiError;
use crate::http::query::ApiQuery;
use crate::http::routes::Routes;
use crate::identity::Caller;
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    Routes::new()
        .add(Access::SignedIn, routes!(get_settings))
        .add_feature(
            Access::SignedIn,
            Feature::MultiTenant,
            routes!(update_settings),
        )
        .add(Access::SignedIn, routes!(get_usage))
        .add(Access::SignedIn, routes!(audit_events))
}

/// An organization's settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrgSettingsView {
    /// Id.
    pub id: String,
    /// Short name.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// The email domains its members' addresses must be in (empty: any). Checked when a
    /// person is added, by a platform administrator or by the organization's directory.
    pub email_domains: Vec<String>,
    /// How many active workspaces it may hold (absent: no limit).
    pub max_workspaces: Option<i64>,
}

fn settings_view(o: OrgRow) -> OrgSettingsView {
    OrgSettingsView {
        id: o.id.to_string(),
        slug: o.slug,
        name: o.name,
        email_domains: o
            .email_domains
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        max_workspaces: o.max_workspaces,
    }
}

/// The organization's settings (its admins, or a platform administrator). The organization
/// must be the one the sign-in acts in.
#[utoipa::path(get, path = "/api/v1/organizations/{org}/settings", tag = "organizations",
    params(("org" = String, Path, description = "Organization id or slug")),
    responses((status = 200, description = "Settings", body = OrgSettingsView),
        (status = 403, description = "Another organization than the sign-in's (`org-mismatch`), or not its admin", content_type = "application/problem+json"),
        (status = 404, description = "No such organization", content_type = "application/problem+json")))]
pub(crate) async fn get_settings(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
) -> Result<Json<OrgSettingsView>, ApiError> {
    let row = settings::get(&state.ctx, &caller.principal, &org).await?;
    Ok(Json(settings_view(row)))
}

/// What to change in an organization's settings; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgSettingsChange {
    /// Display name, 1–100 characters.
    pub name: Option<String>,
    /// Email domains such as `acme.example` (empty list: any address).
    pub email_domains: Option<Vec<String>>,
    /// How many active workspaces it may hold; `null` for no limit. Platform administrators
    /// only.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub max_workspaces: Option<Option<i64>>,
}

/// A field that is present, possibly as `null` (absent stays `None`).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Changes the organization's settings: its admins change the name and email domains, a
/// platform administrator also the workspace limit. Audited as
/// `organization.settings_changed` with what changed.
#[utoipa::path(patch, path = "/api/v1/organizations/{org}/settings", tag = "organizations",
    params(("org" = String, Path, description = "Organization id or slug")),
    request_body(content = OrgSettingsChange, example = json!({"email_domains": ["acme.example"]})),
    responses((status = 200, description = "The new settings", body = OrgSettingsView),
        (status = 403, description = "Another organization than the sign-in's, not its admin, the workspace limit without being a platform administrator, or the licence lacks `multi-tenant`", content_type = "application/problem+json"),
        (status = 404, description = "No such organization", content_type = "application/problem+json"),
        (status = 409, description = "Email domains for the default organization", content_type = "application/problem+json"),
        (status = 422, description = "Invalid name, domain or limit", content_type = "application/problem+json")))]
pub(crate) async fn update_settings(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    caller: Caller,
    Path(org): Path<String>,
    ApiJson(input): ApiJson<OrgSettingsChange>,
) -> Result<Json<OrgSettingsView>, ApiError> {
    let change = SettingsChange {
        name: input.name,
        email_domains: input.email_domains,
        max_workspaces: input.max_workspaces,
    };
    let row = settings::update(&state.ctx, &op, &caller.principal, &org, change).await?;
    Ok(Json(settings_view(row)))
}

/// The period of a usage report.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// Days back from now (1–366, default 30).
    #[param(minimum = 1, maximum = 366)]
    pub days: Option<u32>,
}

/// One workspace's use in the period.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceUsageView {
    /// The workspace (absent in the totals).
    pub workspace_id: Option<String>,
    /// Its name (absent in the totals).
    pub name: Option<String>,
    /// Whether it is archived.
    pub archived: bool,
    /// Its members.
    pub members: i64,
    /// Agent sessions started in the period.
    pub sessions: i64,
    /// Agent sessions waiting or running now.
    pub active_sessions: i64,
    /// Automation runs started in the period.
    pub automation_runs: i64,
    /// Calls through the LLM gateway in the period (whole days).
    pub llm_requests: i64,
    /// Their tokens, in and out.
    pub llm_tokens: i64,
    /// Their cost, in the price table's units.
    pub llm_cost: i64,
}

fn usage_view(w: WorkspaceUsage, total: bool) -> WorkspaceUsageView {
    WorkspaceUsageView {
        workspace_id: (!total).then(|| w.id.to_string()),
        name: (!total).then_some(w.name),
        archived: w.archived,
        members: w.members,
        sessions: w.sessions,
        active_sessions: w.active_sessions,
        automation_runs: w.automation_runs,
        llm_requests: w.llm_requests,
        llm_tokens: w.llm_tokens,
        llm_cost: w.llm_cost,
    }
}

/// An organization's use over a period.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrgUsageView {
    /// The organization's id.
    pub organization_id: String,
    /// The period's start (RFC 3339).
    pub since: String,
    /// Its members (the default organization lists none: every account belongs to it).
    pub members: i64,
    /// Its workspaces' use, by name (at most 1,000).
    pub workspaces: Vec<WorkspaceUsageView>,
    /// The sums.
    pub totals: WorkspaceUsageView,
}

/// The organization's usage over the last `days` days: per workspace and in total (its
/// admins, or a platform administrator).
#[utoipa::path(get, path = "/api/v1/organizations/{org}/usage", tag = "organizations",
    params(("org" = String, Path, description = "Organization id or slug"), UsageQuery),
    responses((status = 200, description = "Usage", body = OrgUsageView),
        (status = 403, description = "Another organization than the sign-in's, or not its admin", content_type = "application/problem+json"),
        (status = 404, description = "No such organization", content_type = "application/problem+json"),
        (status = 422, description = "days out of range", content_type = "application/problem+json")))]
pub(crate) async fn get_usage(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    caller: Caller,
    Path(org): Path<String>,
    ApiQuery(q): ApiQuery<UsageQuery>,
) -> Result<Json<OrgUsageView>, ApiError> {
    let report = usage::report(
        &state.ctx,
        &op,
        &caller.principal,
        &org,
        q.days.unwrap_or(30),
    )
    .await?;
    Ok(Json(OrgUsageView {
        organization_id: report.org.id.to_string(),
        since: rfc3339(report.since_us),
        members: report.members,
        workspaces: report
            .workspaces
            .into_iter()
            .map(|w| usage_view(w, false))
            .collect(),
        totals: usage_view(report.totals, true),
    }))
}

/// The organization's audit events, newest first, a page at a time: its workspaces' events,
/// those about the organization (members, settings, sign-ins switching into it) and those its
/// directory (SCIM) made. The same filters as `/api/v1/audit/events`; its admins, or a
/// platform administrator.
#[utoipa::path(get, path = "/api/v1/organizations/{org}/audit/events", tag = "organizations",
    params(("org" = String, Path, description = "Organization id or slug"), AuditQuery),
    responses((status = 200, description = "A page of events", body = EventPage),
        (status = 400, description = "Malformed filter", content_type = "application/problem+json"),
        (status = 403, description = "Another organization than the sign-in's, or not its admin", content_type = "application/problem+json"),
        (status = 404, description = "No such organization", content_type = "application/problem+json")))]
pub(crate) async fn audit_events(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<EventPage>, ApiError> {
    let parsed = query.parse().map_err(bad_filter)?;
    let rows = audit::page(
        &state.ctx,
        &caller.principal,
        &org,
        &parsed.filter,
        parsed.before,
        parsed.limit,
    )
    .await?;
    Ok(Json(EventPage::of(rows, parsed.limit)))
}
