//! A workspace's members and the rules on changing them: a non-owner never touches the owner
//! role, and a workspace always keeps an owner.

use serde_json::json;
use uuid::Uuid;
use warden_domain::access::{Permission, WorkspaceRole, keeps_an_owner, may_change_membership};
use warden_domain::identity::normalize_email;
use warden_store::tenancy::{MemberRow, WorkspaceGrant, WorkspaceTx};

use crate::{Code, CoreError, CoreResult, Ctx, Op};

/// A role as given in a request.
pub fn parse_role(role: &str) -> CoreResult<WorkspaceRole> {
    WorkspaceRole::parse(role)
        .ok_or_else(|| CoreError::invalid("role", "must be owner, maintainer, member or viewer"))
}

/// Who to add: by email or by user id, exactly one.
#[derive(Debug, Clone)]
pub enum Newcomer {
    /// By email.
    Email(String),
    /// By user id (as given; an id that does not parse names no user).
    Id(String),
}

impl Newcomer {
    /// The newcomer named by exactly one of `email` and `user_id`.
    pub fn parse(email: Option<String>, user_id: Option<String>) -> CoreResult<Self> {
        match (email, user_id) {
            (Some(email), None) => Ok(Self::Email(email)),
            (None, Some(id)) => Ok(Self::Id(id)),
            _ => Err(CoreError::invalid(
                "email",
                "give exactly one of email and user_id",
            )),
        }
    }
}

fn unknown_user() -> CoreError {
    CoreError::new(Code::UnknownUser).on_field("email")
}

/// A workspace's members.
pub async fn list(ctx: &Ctx, grant: &WorkspaceGrant) -> CoreResult<Vec<MemberRow>> {
    let mut tx = ctx.store.scoped(grant).await?;
    let rows = tx.members().await?;
    tx.commit().await?;
    Ok(rows)
}

/// Checks a membership change against the actor's role and the last-owner rule.
pub(crate) async fn check_change(
    tx: &mut WorkspaceTx,
    from: Option<WorkspaceRole>,
    to: Option<WorkspaceRole>,
) -> CoreResult<()> {
    let platform_wide = tx.platform_holds(Permission::WORKSPACES_MEMBERS);
    if !may_change_membership(tx.role(), platform_wide, from, to) {
        return Err(Code::OwnerRoleReserved.into());
    }
    let owners = tx.count_owners().await?;
    if !keeps_an_owner(owners, from, to) {
        return Err(Code::LastOwner.into());
    }
    Ok(())
}

/// Adds an active user as a member.
pub async fn add(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    who: Newcomer,
    role: WorkspaceRole,
) -> CoreResult<MemberRow> {
    let mut tx = ctx.store.scoped(grant).await?;
    let user = match who {
        Newcomer::Email(email) => {
            let email = normalize_email(&email).map_err(|_| unknown_user())?;
            tx.user_by_email(&email).await?
        }
        Newcomer::Id(id) => {
            let id: Uuid = id.parse().map_err(|_| unknown_user())?;
            tx.user_by_id(id).await?
        }
    };
    let user = user.filter(|u| u.active).ok_or_else(unknown_user)?;
    // Someone outside the workspace's organization is, here, no account at all.
    if !tx.in_workspace_org(user.id).await? {
        return Err(unknown_user());
    }
    check_change(&mut tx, None, Some(role)).await?;
    if tx.member(user.id).await?.is_some() {
        return Err(Code::AlreadyMember.into());
    }
    tx.add_member(user.id, role, op.now_us(), false).await?;
    let event = op.event(
        "workspace.member_added",
        "user",
        Some(user.id.to_string()),
        json!({ "email": user.email, "role": role.as_str() }),
    );
    tx.record(&ctx.audit_key, event).await?;
    let row = tx
        .member(user.id)
        .await?
        .ok_or_else(|| CoreError::internal(&"member vanished"))?;
    tx.commit().await?;
    Ok(row)
}

/// The member named in the path, and their role; 404 when there is none.
async fn existing_member(tx: &mut WorkspaceTx, user_id: &str) -> CoreResult<(Uuid, WorkspaceRole)> {
    let id: Uuid = user_id.parse().map_err(|_| Code::NotFound)?;
    let row = tx.member(id).await?.ok_or(Code::NotFound)?;
    let role = WorkspaceRole::parse(&row.role)
        .ok_or_else(|| CoreError::internal(&"stored member role is not a role"))?;
    Ok((id, role))
}

/// Changes a member's role. The last owner cannot be demoted.
pub async fn change_role(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    user_id: &str,
    role: WorkspaceRole,
) -> CoreResult<MemberRow> {
    let mut tx = ctx.store.scoped(grant).await?;
    let (id, from) = existing_member(&mut tx, user_id).await?;
    check_change(&mut tx, Some(from), Some(role)).await?;
    tx.set_member_role(id, role, op.now_us(), false).await?;
    let event = op.event(
        "workspace.member_role_changed",
        "user",
        Some(id.to_string()),
        json!({ "role": { "old": from.as_str(), "new": role.as_str() } }),
    );
    tx.record(&ctx.audit_key, event).await?;
    let row = tx
        .member(id)
        .await?
        .ok_or_else(|| CoreError::internal(&"member vanished"))?;
    tx.commit().await?;
    Ok(row)
}

/// Removes a member. The last owner cannot be removed.
pub async fn remove(ctx: &Ctx, op: &Op, grant: &WorkspaceGrant, user_id: &str) -> CoreResult<()> {
    let mut tx = ctx.store.scoped(grant).await?;
    let (id, from) = existing_member(&mut tx, user_id).await?;
    check_change(&mut tx, Some(from), None).await?;
    tx.remove_member(id).await?;
    let event = op.event(
        "workspace.member_removed",
        "user",
        Some(id.to_string()),
        json!({ "role": from.as_str() }),
    );
    tx.record(&ctx.audit_key, event).await?;
    tx.commit().await?;
    Ok(())
}
