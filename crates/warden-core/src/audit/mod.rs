//! The audit trail's use cases: background chaining and verification, recording refused
//! requests, reading pages of events and exporting them as CSV.

pub mod batch;
pub mod csv;
pub mod denials;
mod monitor;

use warden_store::audit::{Filter, Row};
use warden_store::tenancy::PlatformGrant;

pub use monitor::{AuditMonitor, AuditStatus, GATHER, Schedule};
pub use warden_store::audit::Tamper;

use crate::{CoreResult, Ctx};

/// Events matching `filter` before sequence number `before`, newest first, at most `limit`.
/// Whatever was committed before this call is in the chain, and so on the page.
pub async fn page(
    ctx: &Ctx,
    _reader: &PlatformGrant,
    filter: &Filter,
    before: Option<i64>,
    limit: i64,
) -> CoreResult<Vec<Row>> {
    ctx.audit_monitor.chain(&ctx.store, &ctx.audit_key).await;
    Ok(ctx.store.audit_page(filter, before, limit).await?)
}

/// Every event matching `filter` as CSV (RFC 4180, cells that a spreadsheet would run as
/// formulas neutralised), oldest first, streamed.
pub async fn export(
    ctx: &Ctx,
    _exporter: &PlatformGrant,
    filter: Filter,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static + use<> {
    ctx.audit_monitor.chain(&ctx.store, &ctx.audit_key).await;
    csv::stream(ctx.store.clone(), filter, None)
}

/// Records one event in a transaction of its own (what background work reports).
pub async fn record_system(
    ctx: &Ctx,
    event: warden_domain::audit::NewEvent,
) -> Result<(), warden_store::StoreError> {
    let mut tx = ctx.store.begin().await?;
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await
}
