//! Platform administration: users, their roles and sign-in sessions, and custom roles.
//! Nobody grants more than they hold: a role can only be defined, assigned or taken away by
//! someone whose own role covers it, and Warden always keeps an active administrator.

pub mod roles;
pub mod users;

use uuid::Uuid;
use warden_domain::access::may_manage;
use warden_store::Tx;
use warden_store::tenancy::PlatformGrant;

use crate::{Code, CoreError, CoreResult};

/// Refuses acting on an account whose platform role grants anything the caller lacks (404
/// for no such user). Read inside the transaction that makes the change.
pub(crate) async fn may_act_on(tx: &mut Tx, grant: &PlatformGrant, target: Uuid) -> CoreResult<()> {
    match tx.role_grants_of(target).await? {
        None => Err(Code::NotFound.into()),
        Some(t) if may_manage(grant.platform(), t) => Ok(()),
        Some(_) => Err(Code::AboveYourRole.into()),
    }
}

/// Refuses a role the caller could not hold themselves, or one that does not exist.
pub(crate) async fn may_grant_role(
    tx: &mut Tx,
    grant: &PlatformGrant,
    role: &str,
) -> CoreResult<()> {
    let row = tx.role(role).await?.ok_or_else(|| {
        CoreError::with_detail(Code::UnknownRole, "no platform role has this name")
            .on_field("platform_role")
    })?;
    if may_manage(grant.platform(), row.grants()) {
        Ok(())
    } else {
        Err(Code::AboveYourRole.into())
    }
}

/// Whether taking `user` out of the active administrators would leave none. Call after
/// [`Tx::lock_admin_changes`], in the transaction that makes the change.
pub(crate) async fn would_leave_no_admin(
    tx: &mut Tx,
    platform_role: &str,
    active: bool,
) -> CoreResult<bool> {
    Ok(platform_role == "admin" && active && tx.count_admins().await? <= 1)
}

/// A user id from a path: one that does not parse names no user.
pub(crate) fn user_id(id: &str) -> CoreResult<Uuid> {
    id.parse().map_err(|_| Code::NotFound.into())
}
