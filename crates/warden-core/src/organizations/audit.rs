//! An organization's audit view, for its admins: the events of its workspaces, those about
//! the organization itself (members, settings, sign-ins switching into it), and those its
//! directory (SCIM) made — nothing of another organization's, and no platform-wide event.

use warden_domain::identity::Principal;
use warden_domain::organizations::OrgId;
use warden_store::audit::{Filter, Row};

use super::{check_current, find, require_admin};
use crate::{CoreResult, Ctx};

/// The organization's events matching `filter` before sequence number `before`, newest first,
/// at most `limit`; its admins, or a platform administrator.
pub async fn page(
    ctx: &Ctx,
    principal: &Principal,
    org: &str,
    filter: &Filter,
    before: Option<i64>,
    limit: i64,
) -> CoreResult<Vec<Row>> {
    let row = find(ctx, org).await?;
    let id = OrgId::from_uuid(row.id);
    check_current(principal, id)?;
    require_admin(ctx, principal, id).await?;
    ctx.audit_monitor.chain(&ctx.store, &ctx.audit_key).await;
    Ok(ctx.store.audit_org_page(id, filter, before, limit).await?)
}
