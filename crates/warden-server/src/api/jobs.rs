//! The work queue, as administrators see it: counts, jobs by state (dead letters above all),
//! and putting a dead job back. Never a job's payload, which may carry tenant data.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use warden_core::jobs::admin;
use warden_domain::access::{Access, Permission};
use warden_store::jobs::JobRow;

use super::me::rfc3339;
use crate::http::authz::{PlatformAccess, UserOp};
use crate::http::problem::ApiError;
use crate::http::query::ApiQuery;
use crate::http::routes::Routes;
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    Routes::new()
        .add(Access::Platform(Permission::ADMIN_READ), routes!(list))
        .add(Access::Platform(Permission::ADMIN_UPDATE), routes!(retry))
}

/// Which jobs.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobsQuery {
    /// `dead` (default), `queued`, `running` or `done`.
    pub status: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// One job (never its payload).
#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    /// Id.
    pub id: String,
    /// What handles it (`automation.run`, `retention.prune`).
    pub kind: String,
    /// The workspace it acts in.
    pub workspace_id: Option<String>,
    /// `queued`, `running`, `done` or `dead`.
    pub status: String,
    /// Attempts made.
    pub attempts: i32,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Enqueued (RFC 3339).
    pub created_at: String,
    /// Ended (RFC 3339).
    pub finished_at: Option<String>,
}

fn view(j: JobRow) -> JobView {
    JobView {
        id: j.id.to_string(),
        kind: j.kind,
        workspace_id: j.workspace_id.map(|w| w.to_string()),
        status: j.status,
        attempts: j.attempts,
        max_attempts: j.max_attempts,
        last_error: j.last_error,
        created_at: rfc3339(j.created_at),
        finished_at: j.finished_at.map(rfc3339),
    }
}

/// How many jobs wait, run and are dead; one page of jobs in the state asked for.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobsPage {
    /// Waiting (due or not).
    pub queued: i64,
    /// Leased to a node.
    pub running: i64,
    /// Out of attempts.
    pub dead: i64,
    /// Jobs in the state asked for, newest first.
    pub items: Vec<JobView>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// The work queue (platform `admin.read`).
#[utoipa::path(get, path = "/api/v1/admin/jobs", tag = "admin", params(JobsQuery),
    responses((status = 200, description = "Counts and one page of jobs", body = JobsPage),
        (status = 403, description = "Not allowed", content_type = "application/problem+json")))]
pub(crate) async fn list(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    ApiQuery(q): ApiQuery<JobsQuery>,
) -> Result<Json<JobsPage>, ApiError> {
    let status = q.status.as_deref().unwrap_or("dead");
    // Counts first: the page is then at least as new as they are.
    let counts = admin::counts(&state.ctx, &grant).await?;
    let page = admin::list(&state.ctx, &grant, status, q.cursor.as_deref(), q.limit).await?;
    Ok(Json(JobsPage {
        queued: counts.queued,
        running: counts.running,
        dead: counts.dead,
        items: page.items.into_iter().map(view).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Puts a dead job back in the queue with fresh attempts (platform `admin.update`).
#[utoipa::path(post, path = "/api/v1/admin/jobs/{job_id}/retry", tag = "admin",
    params(("job_id" = String, Path, description = "A dead job's id")),
    responses((status = 200, description = "Queued again", body = JobView),
        (status = 404, description = "No dead job with this id", content_type = "application/problem+json")))]
pub(crate) async fn retry(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    Path(job_id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    Ok(Json(view(
        admin::retry(&state.ctx, &op, &grant, &job_id).await?,
    )))
}
