//! What a principal may do, as use cases and front ends ask it.

use warden_domain::access::PermissionSet;
use warden_domain::identity::Principal;

use crate::{CoreResult, Ctx};

/// What the principal's platform role grants, as of now.
pub async fn platform_permissions(ctx: &Ctx, principal: &Principal) -> CoreResult<PermissionSet> {
    if principal
        .token
        .as_ref()
        .is_some_and(|t| t.workspace.is_some())
    {
        return Ok(PermissionSet::EMPTY);
    }
    Ok(ctx
        .store
        .platform_permissions(principal.user_id)
        .await?
        .intersect(principal.ceiling()))
}
