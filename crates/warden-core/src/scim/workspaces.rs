//! Directory groups that grant workspace membership. A workspace administrator maps a SCIM
//! group to their workspace with a role; from then on the directory's changes to the group
//! add, re-role and remove members there.
//!
//! The rules:
//! - Changes act for whoever saved the mapping, and their right to manage the workspace's
//!   members is checked on every change, not only when they saved it. A mapping whose author
//!   may no longer manage members grants nothing (and removes nothing).
//! - The directory touches only the memberships it granted (`via_directory`); a membership a
//!   person added, or changed since, is theirs and stays as it is.
//! - Several groups mapped to one workspace give the highest of their roles.
//! - Mapping a group with the owner role needs someone who may grant it (an owner or a
//!   platform administrator), and the last owner is never removed by the directory.
//! - A deactivated account is not added; deactivation alone removes nothing (its sessions end,
//!   and every permission check refuses an inactive account). Reactivating it brings it in
//!   line with the groups it is in, including those it joined while inactive.
//! - The directory cannot reach platform roles: no group, and no SCIM token, makes anyone a
//!   platform administrator.

use std::collections::{BTreeMap, HashMap};

use serde_json::json;
use uuid::Uuid;
use warden_domain::access::{Permission, WorkspaceRole, may_change_membership};
use warden_domain::identity::Principal;
use warden_domain::tenancy::WorkspaceId;
use warden_store::scim::mappings::GroupMappingRow;
use warden_store::tenancy::{WorkspaceGrant, WorkspaceTx};

use crate::workspaces::members::check_change;
use crate::{Code, CoreError, CoreResult, Ctx, Op};

/// What a synchronisation changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Synced {
    /// Memberships added.
    pub added: usize,
    /// Roles changed.
    pub changed: usize,
    /// Memberships removed.
    pub removed: usize,
    /// Changes not made: the mapping's author may not make them (or no longer manages
    /// members there), or they would leave the workspace without an owner.
    pub skipped: usize,
}

impl Synced {
    fn add(&mut self, other: Synced) {
        self.added += other.added;
        self.changed += other.changed;
        self.removed += other.removed;
        self.skipped += other.skipped;
    }
}

fn group_id(text: &str) -> CoreResult<Uuid> {
    text.parse().map_err(|_| Code::NotFound.into())
}

/// The groups mapped to a workspace.
pub async fn list(ctx: &Ctx, grant: &WorkspaceGrant) -> CoreResult<Vec<GroupMappingRow>> {
    let mut tx = ctx.store.scoped(grant).await?;
    let rows = tx.directory_groups().await?;
    tx.commit().await?;
    Ok(rows)
}

/// Maps a group to the workspace with `role` (or changes the role), then brings every member
/// of the group in line. Saving a mapping again resynchronises it.
pub async fn put(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    group: &str,
    role: WorkspaceRole,
) -> CoreResult<(GroupMappingRow, Synced)> {
    let group = group_id(group)?;
    let mut tx = ctx.store.scoped(grant).await?;
    let name = tx.scim_group_name(group).await?.ok_or(Code::NotFound)?;
    check_grantable(&tx, role)?;
    let before = tx.directory_group(group).await?;
    tx.put_directory_group(group, role, op.now_us()).await?;
    mapped(ctx, op, grant, tx, (group, name, None), before, role).await
}

/// Maps the group `name` of the single sign-on provider `provider` (a SAML provider's slug)
/// to the workspace with `role`, as [`put`] does a SCIM group: from the next sign-in through
/// the provider, whoever it says is in the group is a member here. The group need not have
/// been asserted yet (it is created, empty).
pub async fn put_sso(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    provider: &str,
    name: &str,
    role: WorkspaceRole,
) -> CoreResult<(GroupMappingRow, Synced)> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 256 || name.chars().any(char::is_control) {
        return Err(CoreError::invalid(
            "group",
            "must be 1 to 256 characters without control characters",
        ));
    }
    let mut tx = ctx.store.scoped(grant).await?;
    let (provider_id, protocol) = tx.sso_provider_protocol(provider).await?.ok_or_else(|| {
        CoreError::invalid("provider", "must be a single sign-on provider's slug")
    })?;
    if protocol != "saml" {
        return Err(CoreError::invalid(
            "provider",
            "must be a SAML provider (groups are read from SAML assertions)",
        ));
    }
    check_grantable(&tx, role)?;
    let group = tx.sso_group(provider_id, name, op.now_us()).await?;
    let before = tx.directory_group(group).await?;
    tx.put_sso_group_mapping(group, role, op.now_us()).await?;
    let source = (group, name.to_owned(), Some(provider.to_owned()));
    mapped(ctx, op, grant, tx, source, before, role).await
}

/// Whether the caller may grant `role` through a mapping (the owner role is reserved).
fn check_grantable(tx: &WorkspaceTx, role: WorkspaceRole) -> CoreResult<()> {
    let platform_wide = tx.platform_holds(Permission::WORKSPACES_MEMBERS);
    if may_change_membership(tx.role(), platform_wide, None, Some(role)) {
        Ok(())
    } else {
        Err(Code::OwnerRoleReserved.into())
    }
}

/// A mapping just saved in `tx`: audits it, commits, and brings the group's members in line.
async fn mapped(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    mut tx: WorkspaceTx,
    (group, name, provider): (Uuid, String, Option<String>),
    before: Option<GroupMappingRow>,
    role: WorkspaceRole,
) -> CoreResult<(GroupMappingRow, Synced)> {
    let event = op.event(
        "workspace.directory_group_mapped",
        if provider.is_some() {
            "sso_group"
        } else {
            "scim_group"
        },
        Some(group.to_string()),
        json!({
            "display_name": name,
            "provider": provider,
            "role": { "old": before.as_ref().map(|b| b.role.clone()), "new": role.as_str() },
        }),
    );
    tx.record(&ctx.audit_key, event).await?;
    let members = tx.directory_group_members(group).await?;
    tx.commit().await?;
    let mapping = GroupMappingRow {
        group_id: group,
        display_name: name,
        provider,
        workspace_id: grant.workspace().uuid(),
        role: role.as_str().to_owned(),
        configured_by: grant.user_id(),
        configured_at: op.now_us(),
        members: i64::try_from(members.len()).unwrap_or(i64::MAX),
    };
    let synced = sync(ctx, op, std::slice::from_ref(&mapping), &members).await?;
    let mut tx = ctx.store.scoped(grant).await?;
    let stored = tx.directory_group(group).await?;
    tx.commit().await?;
    Ok((stored.unwrap_or(mapping), synced))
}

/// Removes a group's mapping; the memberships it alone granted end.
pub async fn remove(ctx: &Ctx, op: &Op, grant: &WorkspaceGrant, group: &str) -> CoreResult<Synced> {
    let group = group_id(group)?;
    let mut tx = ctx.store.scoped(grant).await?;
    let mapping = tx.directory_group(group).await?.ok_or(Code::NotFound)?;
    tx.delete_directory_group(group).await?;
    let event = op.event(
        "workspace.directory_group_unmapped",
        if mapping.provider.is_some() {
            "sso_group"
        } else {
            "scim_group"
        },
        Some(group.to_string()),
        json!({ "display_name": mapping.display_name, "provider": mapping.provider,
                "role": mapping.role }),
    );
    tx.record(&ctx.audit_key, event).await?;
    let members = tx.directory_group_members(group).await?;
    tx.commit().await?;
    // Acting for the person removing it, not the mapping's author.
    let acting = GroupMappingRow {
        configured_by: grant.user_id(),
        ..mapping
    };
    sync(ctx, op, &[acting], &members).await
}

/// After an account was reactivated (by the directory or by an administrator), with the
/// directory groups it is in (read in the reactivating transaction): the groups it joined
/// while inactive, which added nothing then, grant now.
pub(crate) async fn after_reactivation(
    ctx: &Ctx,
    op: &Op,
    user: Uuid,
    groups: &[Uuid],
) -> CoreResult<()> {
    if groups.is_empty() {
        return Ok(());
    }
    let mappings = ctx.store.directory_mappings_of(groups).await?;
    sync(ctx, op, &mappings, &[user]).await?;
    Ok(())
}

/// After the directory changed who is in groups: brings `users`' memberships in line in every
/// workspace one of `mappings` names.
pub(crate) async fn sync(
    ctx: &Ctx,
    op: &Op,
    mappings: &[GroupMappingRow],
    users: &[Uuid],
) -> CoreResult<Synced> {
    let mut total = Synced::default();
    if users.is_empty() {
        return Ok(total);
    }
    let mut by_workspace: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
    for m in mappings {
        let authors = by_workspace.entry(m.workspace_id).or_default();
        if !authors.contains(&m.configured_by) {
            authors.push(m.configured_by);
        }
    }
    for (ws, authors) in by_workspace {
        total.add(sync_workspace(ctx, op, WorkspaceId::from_uuid(ws), &authors, users).await?);
    }
    Ok(total)
}

/// A grant for `user` to manage `ws`'s members, if they still may.
async fn acting_grant(ctx: &Ctx, ws: WorkspaceId, user: Uuid) -> Option<WorkspaceGrant> {
    let who = Principal::for_job(user, ws.uuid());
    ctx.store
        .authorize(&who, ws, Permission::WORKSPACES_MEMBERS)
        .await
        .ok()
}

/// Who may do the most: a platform-wide grant, then an owner.
fn strength(g: &WorkspaceGrant) -> (bool, bool) {
    (
        g.platform_holds(Permission::WORKSPACES_MEMBERS),
        g.role() == Some(WorkspaceRole::Owner),
    )
}

async fn sync_workspace(
    ctx: &Ctx,
    op: &Op,
    ws: WorkspaceId,
    authors: &[Uuid],
    users: &[Uuid],
) -> CoreResult<Synced> {
    // Someone who may still act here, to read the workspace's mappings at all.
    let mut grants: HashMap<Uuid, WorkspaceGrant> = HashMap::new();
    for a in authors {
        if let Some(g) = acting_grant(ctx, ws, *a).await {
            grants.insert(*a, g);
            break;
        }
    }
    let Some(first) = grants.values().next().cloned() else {
        return Ok(Synced {
            skipped: users.len(),
            ..Synced::default()
        });
    };
    let all = {
        let mut tx = ctx.store.scoped(&first).await?;
        let rows = tx.directory_groups().await?;
        tx.commit().await?;
        rows
    };
    // Only mappings whose author may still manage members here grant anything.
    let mut valid = Vec::new();
    for m in &all {
        if !grants.contains_key(&m.configured_by)
            && let Some(g) = acting_grant(ctx, ws, m.configured_by).await
        {
            grants.insert(m.configured_by, g);
        }
        if grants.contains_key(&m.configured_by) {
            valid.push(m.group_id);
        }
    }
    let writer = grants
        .values()
        .max_by_key(|g| strength(g))
        .cloned()
        .unwrap_or(first);
    let mut tx = match ctx.store.scoped(&writer).await {
        Ok(tx) => tx,
        // Archived, or the author's rights ended just now: nothing changes.
        Err(_) => {
            return Ok(Synced {
                skipped: users.len(),
                ..Synced::default()
            });
        }
    };
    let names: HashMap<Uuid, String> = all
        .iter()
        .map(|m| (m.group_id, m.display_name.clone()))
        .collect();
    let mut desired: HashMap<Uuid, (WorkspaceRole, Uuid)> = HashMap::new();
    for (user, role, group) in tx.directory_roles(users).await? {
        let Some(role) = WorkspaceRole::parse(&role).filter(|_| valid.contains(&group)) else {
            continue;
        };
        let best = desired.entry(user).or_insert((role, group));
        if role > best.0 {
            *best = (role, group);
        }
    }
    let mut out = Synced::default();
    for user in users {
        let want = desired.get(user).copied();
        let group = want.map(|(_, g)| names.get(&g).cloned().unwrap_or_default());
        apply(
            ctx,
            op,
            &mut tx,
            *user,
            want.map(|(r, _)| r),
            group,
            &mut out,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(out)
}

/// Brings one user's membership to `want` (None: no directory membership).
async fn apply(
    ctx: &Ctx,
    op: &Op,
    tx: &mut WorkspaceTx,
    user: Uuid,
    want: Option<WorkspaceRole>,
    group: Option<String>,
    out: &mut Synced,
) -> CoreResult<()> {
    let current = tx.member(user).await?;
    if current.as_ref().is_some_and(|m| !m.via_directory) {
        return Ok(()); // a person's membership: theirs
    }
    let from = match &current {
        Some(m) => Some(
            WorkspaceRole::parse(&m.role)
                .ok_or_else(|| CoreError::internal(&"stored member role is not a role"))?,
        ),
        None => None,
    };
    if from == want {
        return Ok(());
    }
    if from.is_none() {
        let active = tx.user_by_id(user).await?.is_some_and(|u| u.active);
        if !active {
            return Ok(());
        }
    }
    if check_change(tx, from, want).await.is_err() {
        out.skipped += 1;
        let event = op.event(
            "workspace.directory_change_refused",
            "user",
            Some(user.to_string()),
            json!({
                "role": { "old": from.map(WorkspaceRole::as_str), "new": want.map(WorkspaceRole::as_str) },
                "reason": "the mapping's author may not make this change, or it would leave no owner",
            }),
        );
        tx.record(&ctx.audit_key, event).await?;
        return Ok(());
    }
    let now = op.now_us();
    let (action, summary) = match (from, want) {
        (None, Some(role)) => {
            tx.add_member(user, role, now, true).await?;
            out.added += 1;
            (
                "workspace.member_added",
                json!({ "role": role.as_str(), "via": "directory", "group": group }),
            )
        }
        (Some(old), Some(role)) => {
            tx.set_member_role(user, role, now, true).await?;
            out.changed += 1;
            (
                "workspace.member_role_changed",
                json!({ "role": { "old": old.as_str(), "new": role.as_str() },
                        "via": "directory", "group": group }),
            )
        }
        (Some(old), None) => {
            tx.remove_member(user).await?;
            out.removed += 1;
            (
                "workspace.member_removed",
                json!({ "role": old.as_str(), "via": "directory" }),
            )
        }
        (None, None) => return Ok(()),
    };
    tx.record(
        &ctx.audit_key,
        op.event(action, "user", Some(user.to_string()), summary),
    )
    .await?;
    Ok(())
}

/// The directory's groups (of the organization the administrator acts in), for an
/// administrator choosing one to map: `count` of them (at most [`super::MAX_RESULTS`]) from
/// the `offset`-th, oldest first, and how many there are.
pub async fn directory_groups(
    ctx: &Ctx,
    grant: &warden_store::tenancy::PlatformGrant,
    offset: i64,
    count: i64,
) -> CoreResult<warden_store::scim::Found<warden_store::scim::ScimGroupRow>> {
    let mut tx = ctx.store.begin_read().await?;
    let found = tx
        .search_scim_groups(
            grant.organization(),
            None,
            offset.max(0),
            count.clamp(1, super::MAX_RESULTS),
        )
        .await?;
    tx.commit().await?;
    Ok(found)
}
