//! Administering users: creating them, deactivating and reactivating them, resetting their
//! password, changing their platform role, and ending anyone's sign-in sessions. Every rule
//! is checked inside the transaction that makes the change.

use serde_json::json;
use uuid::Uuid;
use warden_domain::identity::check_password;
use warden_store::identity::DeviceRow;
use warden_store::roles::UserListRow;
use warden_store::tenancy::PlatformGrant;

use super::{may_act_on, may_grant_role, user_id, would_leave_no_admin};
use crate::identity::users::{CreatedUser, admit_user, policy_error};
use crate::identity::{account, flows, tokens};
use crate::paging::{Page, page_limit};
use crate::{Code, CoreError, CoreResult, Ctx, Op};

/// Every user, by email, a page at a time.
pub async fn list(
    ctx: &Ctx,
    _admin: &PlatformGrant,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> CoreResult<Page<UserListRow>> {
    let limit = page_limit(limit)?;
    let mut tx = ctx.store.begin_read().await?;
    let rows = tx.list_users(cursor, limit).await?;
    tx.commit().await?;
    let full = i64::try_from(rows.len()).unwrap_or(0) == limit;
    let next_cursor = rows.last().filter(|_| full).map(|u| u.email.clone());
    Ok(Page {
        items: rows,
        next_cursor,
    })
}

/// Creates a user with a platform role the caller could hold themselves (`member` when none
/// is given).
pub async fn create(
    ctx: &Ctx,
    op: &Op,
    grant: &PlatformGrant,
    email: &str,
    password: String,
    platform_role: Option<&str>,
) -> CoreResult<CreatedUser> {
    let role = platform_role.unwrap_or("member");
    let mut tx = ctx.store.begin_read().await?;
    may_grant_role(&mut tx, grant, role).await?;
    tx.commit().await?;
    crate::identity::users::create(ctx, op, email, password, role).await
}

/// Every active device session, optionally of one user (an id that does not parse is a
/// 400: it is a filter, not a resource).
pub async fn devices(
    ctx: &Ctx,
    op: &Op,
    _admin: &PlatformGrant,
    user: Option<&str>,
) -> CoreResult<Vec<DeviceRow>> {
    let user = match user {
        None => None,
        Some(u) => Some(u.parse::<Uuid>().map_err(|_| Code::BadRequest)?),
    };
    account::active_devices(ctx, op, user).await
}

/// Ends any device session, at once, on every node; 404 when it is not active.
pub async fn revoke_device(ctx: &Ctx, op: &Op, _admin: &PlatformGrant, id: &str) -> CoreResult<()> {
    let id = user_id(id)?;
    if flows::revoke(ctx, op, &[id], "admin_revoked")
        .await?
        .is_empty()
    {
        return Err(Code::NotFound.into());
    }
    Ok(())
}

/// Deactivates (every grant they hold ends at once, on every node) or reactivates a user
/// (their old sessions stay ended). The last active administrator cannot be deactivated; a
/// reactivation counts against the licence's user limit.
pub async fn set_active(
    ctx: &Ctx,
    op: &Op,
    grant: &PlatformGrant,
    id: &str,
    active: bool,
) -> CoreResult<()> {
    let id = user_id(id)?;
    let mut tx = ctx.store.begin().await?;
    tx.lock_admin_changes().await?;
    may_act_on(&mut tx, grant, id).await?;
    let changed = change_active(&mut tx, ctx, op, id, active).await?;
    // Reactivated: its directory groups' workspace mappings apply again (as through SCIM).
    let groups = if changed && active {
        tx.scim_groups_of(id).await?
    } else {
        Vec::new()
    };
    tx.commit().await?;
    if changed {
        ctx.identity.propagate(&ctx.store, ctx.clock.as_ref()).await;
    }
    crate::scim::workspaces::after_reactivation(ctx, op, id, &groups).await
}

/// Inside the caller's transaction (after [`warden_store::Tx::lock_admin_changes`]):
/// deactivates or reactivates `id` with every rule of [`set_active`] — the last active
/// administrator stays, a reactivation counts against the licence, a deactivation ends every
/// device session and token — and audits it. Whether anything changed; the caller
/// propagates the revocations after committing.
pub(crate) async fn change_active(
    tx: &mut warden_store::Tx,
    ctx: &Ctx,
    op: &Op,
    id: Uuid,
    active: bool,
) -> CoreResult<bool> {
    let now = op.now_us();
    let user = tx.user_by_id(id).await?.ok_or(Code::NotFound)?;
    if !active && would_leave_no_admin(tx, &user.platform_role, user.active).await? {
        return Err(Code::LastAdmin.into());
    }
    if active {
        admit_user(&ctx.license, tx).await?;
    }
    let changed = tx.set_active(id, active, now).await?;
    if changed {
        let mut revoked = 0;
        if active {
            tx.log_revocation("user_reactivated", id, now).await?;
        } else {
            tx.log_revocation("user_deactivated", id, now).await?;
            let live = tx.live_device_ids(id, None).await?;
            revoked = flows::revoke_in_tx(tx, ctx, op, &op.actor, &live, "user_deactivated")
                .await?
                .len();
            tokens::revoke_all_of(tx, ctx, op, id, "user_deactivated").await?;
        }
        let action = if active {
            "user.reactivated"
        } else {
            "user.deactivated"
        };
        let event = op.event(
            action,
            "user",
            Some(id.to_string()),
            json!({ "sessions_revoked": revoked }),
        );
        tx.record(&ctx.audit_key, &event).await?;
    }
    Ok(changed)
}

/// Sets a user's password (checked against the policy) and signs them out everywhere, at
/// once, on every node.
pub async fn reset_password(
    ctx: &Ctx,
    op: &Op,
    grant: &PlatformGrant,
    id: &str,
    new_password: String,
) -> CoreResult<()> {
    let id = user_id(id)?;
    let mut tx = ctx.store.begin_read().await?;
    may_act_on(&mut tx, grant, id).await?;
    let user = tx.user_by_id(id).await?.ok_or(Code::NotFound)?;
    tx.commit().await?;
    check_password(&new_password, &user.email).map_err(|p| policy_error(&p))?;
    let hash = crate::costly::passwords()
        .hash(new_password)
        .await?
        .map_err(|e| CoreError::internal(&e))?;
    let mut tx = ctx.store.begin().await?;
    // Checked again where the change is made: the account may have changed hands meanwhile.
    may_act_on(&mut tx, grant, id).await?;
    tx.set_password(id, &hash, op.now_us()).await?;
    let live = tx.live_device_ids(id, None).await?;
    let revoked = flows::revoke_in_tx(&mut tx, ctx, op, &op.actor, &live, "password_reset").await?;
    tokens::revoke_all_of(&mut tx, ctx, op, id, "password_reset").await?;
    let event = op.event(
        "user.password_reset",
        "user",
        Some(id.to_string()),
        json!({ "password": warden_domain::audit::MASK, "sessions_revoked": revoked.len() }),
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    ctx.identity.propagate(&ctx.store, ctx.clock.as_ref()).await;
    Ok(())
}

/// Changes a user's platform role. Effective on their next request, on every node. The
/// caller must be able to hold both the user's current role and the new one; the last
/// active administrator keeps the role.
pub async fn set_role(
    ctx: &Ctx,
    op: &Op,
    grant: &PlatformGrant,
    id: &str,
    platform_role: &str,
) -> CoreResult<()> {
    let id = user_id(id)?;
    let mut tx = ctx.store.begin().await?;
    tx.lock_admin_changes().await?;
    may_act_on(&mut tx, grant, id).await?;
    may_grant_role(&mut tx, grant, platform_role).await?;
    let user = tx.user_by_id(id).await?.ok_or(Code::NotFound)?;
    if user.platform_role == platform_role {
        return Ok(());
    }
    if would_leave_no_admin(&mut tx, &user.platform_role, user.active).await? {
        return Err(Code::LastAdmin.into());
    }
    if !tx.set_platform_role(id, platform_role, op.now_us()).await? {
        return Err(Code::NotFound.into());
    }
    let event = op.event(
        "user.role_changed",
        "user",
        Some(id.to_string()),
        json!({ "platform_role": { "old": user.platform_role, "new": platform_role } }),
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    Ok(())
}
