//! What the gateway recorded, as people read it: call records (never their content), a
//! call's captured prompt and response (`llm.export`, every view audited), and usage reports
//! per day, user and model (JSON or CSV).

use serde::Serialize;
use serde_json::json;
use uuid::Uuid;
use warden_store::llm::{CallRow, UsageRow};
use warden_store::tenancy::WorkspaceGrant;

use super::content_context;
use crate::{Code, CoreError, CoreResult, Ctx, Op};

/// A call record, as shown (never the content).
#[derive(Debug, Clone, Serialize)]
pub struct CallView {
    /// Id.
    pub id: Uuid,
    /// When.
    pub at: String,
    /// Correlation id.
    pub request_id: String,
    /// Endpoint.
    pub endpoint: String,
    /// Model.
    pub model: String,
    /// Key.
    pub key_id: Uuid,
    /// User.
    pub user_id: Option<Uuid>,
    /// Agent session.
    pub session_id: Option<Uuid>,
    /// Automation run.
    pub automation_run_id: Option<Uuid>,
    /// Upstream.
    pub upstream_id: Option<Uuid>,
    /// Status answered.
    pub status: i32,
    /// Latency (µs).
    pub latency_us: i64,
    /// Tokens in.
    pub tokens_in: i64,
    /// Tokens out.
    pub tokens_out: i64,
    /// Cost (millionths).
    pub cost_micros: i64,
    /// Filter and quota decisions.
    pub decisions: serde_json::Value,
    /// Whether content was captured.
    pub captured: bool,
}

fn call_view(r: &CallRow) -> CallView {
    CallView {
        id: r.id,
        at: crate::op::rfc3339(r.created_at),
        request_id: r.request_id.clone(),
        endpoint: r.endpoint.clone(),
        model: r.model.clone(),
        key_id: r.key_id,
        user_id: r.user_id,
        session_id: r.session_id,
        automation_run_id: r.automation_run_id,
        upstream_id: r.upstream_id,
        status: r.status,
        latency_us: r.latency_us,
        tokens_in: r.tokens_in,
        tokens_out: r.tokens_out,
        cost_micros: r.cost,
        decisions: serde_json::from_str(&r.decisions).unwrap_or_default(),
        captured: r.sealed_content.is_some(),
    }
}

/// Call records, newest first.
pub async fn calls(
    ctx: &Ctx,
    grant: &WorkspaceGrant,
    before: Option<Uuid>,
    limit: i64,
) -> CoreResult<Vec<CallView>> {
    let mut tx = ctx.store.scoped(grant).await?;
    let rows = tx.llm_calls(before, limit.clamp(1, 500)).await?;
    tx.commit().await?;
    Ok(rows.iter().map(call_view).collect())
}

/// A call's captured prompt and response (`llm.export`); every view is audited.
pub async fn call_content(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    id: Uuid,
) -> CoreResult<serde_json::Value> {
    let mut tx = ctx.store.scoped(grant).await?;
    let row = tx.llm_call(id).await?.ok_or(Code::NotFound)?;
    let sealed = row.sealed_content.as_ref().ok_or(Code::NotFound)?;
    let plain = ctx
        .keyring
        .open(&content_context(row.workspace_id, row.id), sealed)
        .map_err(|e| CoreError::internal(&e))?;
    let content: serde_json::Value =
        serde_json::from_slice(&plain).map_err(|e| CoreError::internal(&e))?;
    tx.commit().await?;
    // The view is recorded before the content is shown (the grant's transaction reads only).
    let event = warden_domain::audit::NewEvent {
        workspace_id: Some(grant.workspace().to_string()),
        ..op.event(
            "llm.content_viewed",
            "llm_call",
            Some(id.to_string()),
            json!({ "request_id": row.request_id }),
        )
    };
    let mut audit = ctx.store.begin().await?;
    audit.record(&ctx.audit_key, &event).await?;
    audit.commit().await?;
    Ok(content)
}

/// One line of a usage report.
#[derive(Debug, Clone, Serialize)]
pub struct UsageLine {
    /// Day (`YYYY-MM-DD`).
    pub day: String,
    /// User (none for workspace keys).
    pub user_id: Option<Uuid>,
    /// Model.
    pub model: String,
    /// Requests.
    pub requests: i64,
    /// Tokens in.
    pub tokens_in: i64,
    /// Tokens out.
    pub tokens_out: i64,
    /// Cost (millionths).
    pub cost_micros: i64,
}

fn day_text(day: i32) -> String {
    time::Date::from_julian_day(day + 2_440_588)
        .map(|d| d.to_string())
        .unwrap_or_default()
}

/// Parses `YYYY-MM-DD` to days since 1970.
pub fn parse_day(s: &str) -> Option<i32> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &fmt)
        .ok()
        .map(|d| d.to_julian_day() - 2_440_588)
}

/// Usage by day, user and model between two days (inclusive; at most 366 days).
pub async fn usage(
    ctx: &Ctx,
    grant: &WorkspaceGrant,
    from: i32,
    to: i32,
) -> CoreResult<Vec<UsageLine>> {
    if to < from || to - from > 366 {
        return Err(CoreError::invalid("to", "A report covers 1 to 367 days."));
    }
    let mut tx = ctx.store.scoped(grant).await?;
    let rows: Vec<UsageRow> = tx.llm_usage(from, to).await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .map(|r| UsageLine {
            day: day_text(r.day),
            user_id: (!r.user_id.is_nil()).then_some(r.user_id),
            model: r.model,
            requests: r.requests,
            tokens_in: r.tokens_in,
            tokens_out: r.tokens_out,
            cost_micros: r.cost,
        })
        .collect())
}

/// A usage report as CSV (cells that a spreadsheet would run as formulas are neutralised).
pub fn usage_csv(lines: &[UsageLine]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record([
        "day",
        "user_id",
        "model",
        "requests",
        "tokens_in",
        "tokens_out",
        "cost_micros",
    ]);
    for l in lines {
        let model = crate::audit::csv::neutralize(&l.model);
        let _ = w.write_record([
            l.day.as_str(),
            &l.user_id.map(|u| u.to_string()).unwrap_or_default(),
            &model,
            &l.requests.to_string(),
            &l.tokens_in.to_string(),
            &l.tokens_out.to_string(),
            &l.cost_micros.to_string(),
        ]);
    }
    w.into_inner().unwrap_or_default()
}
