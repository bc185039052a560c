//! What administrators see of the queue: counts, and the jobs in one state (dead letters
//! above all), and putting a dead job back.

use serde_json::json;
use uuid::Uuid;
use warden_store::jobs::{JobCounts, JobRow};
use warden_store::tenancy::PlatformGrant;

use crate::paging::{Page, page_limit};
use crate::{Code, CoreError, CoreResult, Ctx, Op};

/// How many jobs are in each state.
pub async fn counts(ctx: &Ctx, _grant: &PlatformGrant) -> CoreResult<JobCounts> {
    Ok(ctx.store.job_counts().await?)
}

/// Jobs in `status` (`queued`, `running`, `dead` or `done`), newest first, after the cursor
/// of the previous page.
pub async fn list(
    ctx: &Ctx,
    _grant: &PlatformGrant,
    status: &str,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> CoreResult<Page<JobRow>> {
    if !matches!(status, "queued" | "running" | "dead" | "done") {
        return Err(CoreError::invalid(
            "status",
            "must be queued, running, dead or done",
        ));
    }
    let limit = page_limit(limit)?;
    let before = cursor
        .map(|c| c.parse::<Uuid>())
        .transpose()
        .map_err(|_| CoreError::invalid("cursor", "is not a cursor from this list"))?;
    let rows = ctx.store.jobs_in(status, before, limit).await?;
    let full = i64::try_from(rows.len()).unwrap_or(0) == limit;
    let next_cursor = rows.last().filter(|_| full).map(|r| r.id.to_string());
    Ok(Page {
        items: rows,
        next_cursor,
    })
}

/// Puts a dead job back in the queue with fresh attempts.
pub async fn retry(ctx: &Ctx, op: &Op, _grant: &PlatformGrant, id: &str) -> CoreResult<JobRow> {
    let id: Uuid = id.parse().map_err(|_| CoreError::new(Code::NotFound))?;
    let row = ctx
        .store
        .requeue_dead_job(id, op.now_us())
        .await?
        .ok_or(Code::NotFound)?;
    let mut tx = ctx.store.begin().await?;
    let event = op.event(
        "job.retried",
        "job",
        Some(id.to_string()),
        json!({ "kind": row.kind }),
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    ctx.jobs.wake();
    Ok(row)
}
