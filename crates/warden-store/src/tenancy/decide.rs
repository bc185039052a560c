//! The authorization decision: what one lookup reads about a caller and a workspace, and
//! what it allows. Used by [`Store::authorize`](crate::Store::authorize) and
//! [`Store::scoped`](crate::Store::scoped) alone.

use uuid::Uuid;
use warden_domain::access::{
    BuiltinRole, Decision, Permission, PermissionSet, WorkspaceRole, decide_workspace,
};
use warden_domain::organizations::{ORG_MANAGER, OrgId};
use warden_domain::tenancy::WorkspaceId;

use super::Refusal;
use crate::db::on_tx;
use crate::{StoreError, Tx};

#[derive(Debug, sqlx::FromRow)]
pub(super) struct Lookup {
    active: bool,
    platform_role: String,
    builtin: bool,
    permissions: String,
    membership: Option<String>,
    archived_at: Option<i64>,
    ws_exists: bool,
    ws_org: Option<Uuid>,
    org_member: bool,
}

impl Lookup {
    pub(super) fn platform(&self) -> PermissionSet {
        platform_grants(
            self.active,
            &self.platform_role,
            self.builtin,
            &self.permissions,
        )
    }

    pub(super) fn membership(&self) -> Option<WorkspaceRole> {
        self.membership.as_deref().and_then(WorkspaceRole::parse)
    }
}

/// What a platform role grants: built-in roles from code, custom roles from their stored
/// names. An inactive user, or a role that no longer exists, grants nothing.
pub(crate) fn platform_grants(
    active: bool,
    role: &str,
    builtin: bool,
    permissions: &str,
) -> PermissionSet {
    if !active {
        return PermissionSet::EMPTY;
    }
    match (builtin, BuiltinRole::parse(role)) {
        (true, Some(b)) => b.grants(),
        (false, None) => PermissionSet::from_stored(permissions.split_whitespace()),
        _ => PermissionSet::EMPTY,
    }
}

const LOOKUP_SQL: &str = "SELECT u.active, u.platform_role, \
     COALESCE(r.builtin, FALSE) AS builtin, COALESCE(r.permissions, '') AS permissions, \
     m.role AS membership, w.archived_at, w.id IS NOT NULL AS ws_exists, \
     w.organization_id AS ws_org, EXISTS (SELECT 1 FROM organization_members om \
         WHERE om.organization_id = $3 AND om.user_id = u.id) AS org_member \
     FROM users u LEFT JOIN roles r ON r.name = u.platform_role \
     LEFT JOIN workspaces w ON w.id = $2 \
     LEFT JOIN workspace_members m ON m.workspace_id = w.id AND m.user_id = u.id \
     WHERE u.id = $1";

/// Sets the transaction's PostgreSQL scope settings (no-op on SQLite, which has no row-level
/// security and relies on the explicit filters every query carries).
pub(crate) async fn set_scope(
    tx: &mut Tx,
    name: &'static str,
    value: &str,
) -> Result<(), StoreError> {
    if let crate::db::TxInner::Postgres(t) = &mut tx.inner {
        sqlx::query("SELECT set_config($1, $2, true)")
            .bind(name)
            .bind(value)
            .execute(&mut **t)
            .await?;
    }
    Ok(())
}

/// Names the transaction's workspace (and on PostgreSQL its organization, when the caller acts
/// in one). With an organization, PostgreSQL keeps the workspace named only if it lies in that
/// organization (`warden_enter_workspace`, checked once here rather than in every policy), so
/// the rest of the transaction sees none of another organization's rows even through a query
/// that forgot its filter.
pub(crate) async fn enter_workspace(
    tx: &mut Tx,
    ws: WorkspaceId,
    org: Option<OrgId>,
) -> Result<(), StoreError> {
    match (&mut tx.inner, org) {
        (crate::db::TxInner::Postgres(t), Some(org)) => {
            sqlx::query("SELECT warden_enter_workspace($1, $2)")
                .bind(ws.uuid())
                .bind(org.uuid())
                .execute(&mut **t)
                .await?;
            Ok(())
        }
        _ => set_scope(tx, "warden.workspace_id", &ws.to_string()).await,
    }
}

/// Reads what deciding needs, in a transaction scoped to `ws` (and on PostgreSQL to `org`,
/// when the caller acts in one: row-level security then hides a workspace of any other).
pub(super) async fn lookup(
    tx: &mut Tx,
    user: Uuid,
    ws: WorkspaceId,
    org: Option<OrgId>,
) -> Result<Option<Lookup>, StoreError> {
    enter_workspace(tx, ws, org).await?;
    Ok(on_tx!(tx, |c| sqlx::query_as::<_, Lookup>(LOOKUP_SQL)
        .bind(user)
        .bind(ws.uuid())
        .bind(org.map(OrgId::uuid))
        .fetch_optional(c)
        .await)?)
}

pub(super) fn decide(
    row: Option<&Lookup>,
    permission: Permission,
    org: Option<OrgId>,
) -> Result<(), Refusal> {
    let Some(row) = row else {
        return Err(Refusal::NotFound);
    };
    // A workspace of another organization does not exist for this caller; neither does any
    // in an organization they no longer belong to (unless they manage organizations).
    if let Some(org) = org {
        if row.ws_org != Some(org.uuid()) {
            return Err(Refusal::NotFound);
        }
        if !org.is_default() && !row.org_member && !row.platform().contains(ORG_MANAGER) {
            return Err(Refusal::NotFound);
        }
    }
    // A deactivated user holds nothing anywhere: not through a platform role, and not through
    // a membership (what acts for them without a session — an automation's runs, a service
    // key — stops with them).
    if !row.ws_exists || !row.active {
        return Err(Refusal::NotFound);
    }
    match decide_workspace(row.platform(), row.membership(), permission) {
        Decision::Allow => {}
        Decision::Forbidden => return Err(Refusal::Forbidden),
        Decision::NotFound => return Err(Refusal::NotFound),
    }
    if row.archived_at.is_some() && !permission.is_read_only() {
        return Err(Refusal::Archived);
    }
    Ok(())
}
