//! What an organization uses, for its admins: per workspace, members, agent sessions,
//! automation runs and language-model traffic over a period, and the totals.

use warden_domain::identity::Principal;
use warden_domain::organizations::OrgId;
use warden_store::tenancy::org_usage::WorkspaceUsage;
use warden_store::tenancy::organizations::OrgRow;

use super::{check_current, find, require_admin};
use crate::{CoreError, CoreResult, Ctx, Op};

const DAY_US: i64 = 86_400_000_000;

/// The longest period a report covers, days.
pub const MAX_DAYS: u32 = 366;

/// An organization's use over the last `days` days.
#[derive(Debug, Clone)]
pub struct Usage {
    /// The organization.
    pub org: OrgRow,
    /// The period's start, µs (model traffic counts whole days from this one's).
    pub since_us: i64,
    /// Its members (the default organization has none listed: every account belongs to it).
    pub members: i64,
    /// Its workspaces' use, by name.
    pub workspaces: Vec<WorkspaceUsage>,
    /// The sums over its workspaces (`id` nil, `name` empty).
    pub totals: WorkspaceUsage,
}

/// The organization's use over the last `days` days (1 to [`MAX_DAYS`]); its admins, or a
/// platform administrator.
pub async fn report(
    ctx: &Ctx,
    op: &Op,
    principal: &Principal,
    org: &str,
    days: u32,
) -> CoreResult<Usage> {
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(CoreError::invalid("days", "must be between 1 and 366"));
    }
    let row = find(ctx, org).await?;
    let id = OrgId::from_uuid(row.id);
    check_current(principal, id)?;
    require_admin(ctx, principal, id).await?;
    let since_us = op.now_us() - i64::from(days) * DAY_US;
    let since_day = i32::try_from(since_us.div_euclid(DAY_US)).unwrap_or(0);
    let workspaces = ctx.store.org_usage(id, since_us, since_day).await?;
    let mut tx = ctx.store.begin_read().await?;
    let members = i64::try_from(tx.org_members(id).await?.len()).unwrap_or(i64::MAX);
    tx.commit().await?;
    let mut totals = WorkspaceUsage::default();
    for w in &workspaces {
        totals.members += w.members;
        totals.sessions += w.sessions;
        totals.active_sessions += w.active_sessions;
        totals.automation_runs += w.automation_runs;
        totals.llm_requests += w.llm_requests;
        totals.llm_tokens += w.llm_tokens;
        totals.llm_cost += w.llm_cost;
    }
    Ok(Usage {
        org: row,
        since_us,
        members,
        workspaces,
        totals,
    })
}
