//! The audit trail over HTTP: status, paginated query, streamed CSV export.

use crate::http::query::ApiQuery;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::routes;
use warden_domain::access::{Access, Permission};
use warden_store::audit::Row;

use crate::audit::filter::AuditQuery;
use crate::http::authz::PlatformAccess;
use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::state::AppState;
use warden_core::audit::{self as core, AuditStatus};

pub(crate) fn routes() -> Routes<AppState> {
    Routes::new()
        .add(Access::Platform(Permission::AUDIT_READ), routes!(status))
        .add(Access::Platform(Permission::AUDIT_READ), routes!(events))
        .add_feature(
            Access::Platform(Permission::AUDIT_EXPORT),
            warden_domain::license::Feature::AuditExport,
            routes!(export_csv),
        )
}

/// The audit chain as this node last verified it.
#[utoipa::path(get, path = "/api/v1/audit/status", tag = "audit",
    responses(
        (status = 200, description = "Chain status", body = AuditStatus),
        (status = 401, description = "Not signed in", content_type = "application/problem+json")))]
pub(crate) async fn status(State(state): State<AppState>) -> Json<AuditStatus> {
    Json(state.ctx.audit_monitor.status())
}

/// One audit event as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// Position in the chain.
    pub seq: i64,
    /// The event's id.
    pub event_id: String,
    /// When it happened (RFC 3339).
    pub time: String,
    /// `user`, `host`, `api_key` or `system`.
    pub actor_kind: String,
    /// The actor's id.
    pub actor_id: Option<String>,
    /// The workspace.
    pub workspace_id: Option<String>,
    /// Dotted action name.
    pub action: String,
    /// Kind of resource.
    pub resource_type: String,
    /// Resource id.
    pub resource_id: Option<String>,
    /// `success`, `denied` or `failed`.
    pub outcome: String,
    /// Client address.
    pub client_ip: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// Request id.
    pub request_id: Option<String>,
    /// Duration in milliseconds.
    pub duration_ms: i64,
    /// Redacted input summary.
    #[schema(value_type = Object)]
    pub summary: serde_json::Value,
}

impl From<Row> for EventView {
    fn from(r: Row) -> Self {
        let time =
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(r.occurred_at_us) * 1_000)
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default();
        Self {
            seq: r.seq,
            event_id: r.event_id,
            time,
            actor_kind: r.actor_kind,
            actor_id: r.actor_id,
            workspace_id: r.workspace_id,
            action: r.action,
            resource_type: r.resource_type,
            resource_id: r.resource_id,
            outcome: r.outcome,
            client_ip: r.client_ip,
            user_agent: r.user_agent,
            request_id: r.request_id,
            duration_ms: r.duration_ms,
            summary: serde_json::from_str(&r.summary).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// A page of events, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    /// The events.
    pub events: Vec<EventView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

pub(crate) fn bad_filter(e: crate::audit::filter::FilterError) -> ApiError {
    tracing::debug!(reason = %e, "audit filter refused");
    ApiError(warden_core::CoreError::with_detail(
        warden_core::Code::InvalidFilter,
        match e {
            crate::audit::filter::FilterError::ActorKind => {
                "actor_kind must be one of user, host, api_key, system."
            }
            crate::audit::filter::FilterError::Outcome => {
                "outcome must be one of success, denied, failed."
            }
            crate::audit::filter::FilterError::Action => {
                "action must be a prefix of a dotted action name."
            }
            crate::audit::filter::FilterError::Time => "since and until must be RFC 3339 times.",
            crate::audit::filter::FilterError::Cursor => {
                "cursor must be the next_cursor of a previous page."
            }
            crate::audit::filter::FilterError::Limit => "limit must be a positive number.",
            crate::audit::filter::FilterError::TooLong => {
                "filter values are at most 200 characters."
            }
        },
    ))
}

/// Audit events matching the filters, newest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/audit/events", tag = "audit", params(AuditQuery),
    responses(
        (status = 200, description = "A page of events", body = EventPage),
        (status = 400, description = "Malformed filter", content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", content_type = "application/problem+json")))]
pub(crate) async fn events(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<EventPage>, ApiError> {
    let parsed = query.parse().map_err(bad_filter)?;
    let (filter, before, limit) = (&parsed.filter, parsed.before, parsed.limit);
    let rows = core::page(&state.ctx, &grant, filter, before, limit).await?;
    Ok(Json(EventPage::of(rows, limit)))
}

impl EventPage {
    /// A page of `rows` asked for with page size `limit`: a full page has a next one.
    pub(crate) fn of(rows: Vec<Row>, limit: i64) -> Self {
        let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) == limit;
        let next_cursor = rows.last().filter(|_| full).map(|r| r.seq.to_string());
        Self {
            events: rows.into_iter().map(EventView::from).collect(),
            next_cursor,
        }
    }
}

/// Every event matching the filters as CSV, oldest first, streamed.
#[utoipa::path(get, path = "/api/v1/audit/export.csv", tag = "audit", params(AuditQuery),
    responses(
        (status = 200, description = "CSV (RFC 4180)", content_type = "text/csv"),
        (status = 400, description = "Malformed filter", content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", content_type = "application/problem+json")))]
pub(crate) async fn export_csv(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Response, ApiError> {
    let parsed = query.parse().map_err(bad_filter)?;
    let chunks = core::export(&state.ctx, &grant, parsed.filter).await;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"audit.csv\"",
            ),
        ],
        Body::from_stream(chunks),
    )
        .into_response())
}
