//! Authorization and the workspace-scoped store handle.
//!
//! [`Store::authorize`] is the only way to obtain a [`WorkspaceGrant`], and
//! [`Store::scoped`] the only way to turn one into a [`WorkspaceTx`]; every query over a
//! workspace's data is a method of [`WorkspaceTx`], so none can run without a prior permission
//! check. On PostgreSQL the transaction also names its workspace (`warden.workspace_id`), and
//! row-level security refuses every row of any other workspace, whatever the query says.
//!
//! Two paths read across workspaces, and both are named so they stand out: a caller's own
//! memberships ([`Store::my_workspaces`]) and the platform-wide read
//! ([`Store::platform_wide`]), which requires a platform grant and records an audit event in
//! its own transaction.

use std::sync::{Arc, Mutex};

use uuid::Uuid;
use warden_domain::access::{
    Decision, Permission, PermissionSet, WorkspaceRole, decide_platform, decide_workspace,
};
use warden_domain::audit::NewEvent;
use warden_domain::identity::Principal;
use warden_domain::organizations::OrgId;
use warden_domain::tenancy::WorkspaceId;

pub(crate) mod decide;
mod members;
pub mod org_usage;
pub mod organizations;
mod secrets;

use warden_domain::organizations::ORG_MANAGER;

use crate::audit::ChainKey;
use crate::db::on_tx;
use crate::{Store, StoreError, Tx};
use decide::{decide, lookup};
pub(crate) use decide::{platform_grants, set_scope};

/// Why an authorization check refused.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The caller may not know the resource exists (or it does not): answer 404.
    #[error("not found")]
    NotFound,
    /// The caller may see it but not do this: answer 403.
    #[error("forbidden")]
    Forbidden,
    /// The workspace is archived and the request would change it: answer 409.
    #[error("the workspace is archived")]
    Archived,
    /// The check itself failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Proof that the caller's platform role grants a permission. Only
/// [`Store::authorize_platform`] makes one.
#[derive(Debug, Clone)]
pub struct PlatformGrant {
    user_id: Uuid,
    permission: Permission,
    platform: PermissionSet,
    organization: OrgId,
}

impl PlatformGrant {
    /// The caller.
    pub fn user_id(&self) -> Uuid {
        self.user_id
    }

    /// The permission checked.
    pub fn permission(&self) -> Permission {
        self.permission
    }

    /// Everything the caller's platform role grants.
    pub fn platform(&self) -> PermissionSet {
        self.platform
    }

    /// The organization the caller acts in.
    pub fn organization(&self) -> OrgId {
        self.organization
    }
}

/// Proof that the caller holds a permission in one workspace. Only [`Store::authorize`]
/// makes one; [`Store::scoped`] turns it into a transaction.
#[derive(Debug, Clone)]
pub struct WorkspaceGrant {
    user_id: Uuid,
    workspace: WorkspaceId,
    permission: Permission,
    role: Option<WorkspaceRole>,
    platform: PermissionSet,
    /// What the credential allows at most (all, except for a personal access token).
    ceiling: PermissionSet,
    /// The organization the caller acts in (`None`: a credential bound to this workspace).
    organization: Option<OrgId>,
    /// For a read permission: the scoped, read-only transaction the check ran in, handed to
    /// the handler so a read costs one transaction. Taken once.
    read_tx: Option<Arc<Mutex<Option<Tx>>>>,
}

impl WorkspaceGrant {
    /// The workspace.
    pub fn workspace(&self) -> WorkspaceId {
        self.workspace
    }

    /// The caller.
    pub fn user_id(&self) -> Uuid {
        self.user_id
    }

    /// The permission checked.
    pub fn permission(&self) -> Permission {
        self.permission
    }

    /// The organization the caller acts in (`None`: a credential bound to this workspace).
    pub fn organization(&self) -> Option<OrgId> {
        self.organization
    }

    /// The caller's role in the workspace, if a member.
    pub fn role(&self) -> Option<WorkspaceRole> {
        self.role
    }

    /// Whether the caller's platform role grants `p` everywhere.
    pub fn platform_holds(&self, p: Permission) -> bool {
        self.platform.contains(p)
    }

    /// Whether the caller holds `p` in this workspace as the grant was checked (membership
    /// or platform role, within the credential's ceiling): what a page may offer. Every
    /// action is still checked on its own request.
    pub fn holds(&self, p: Permission) -> bool {
        self.ceiling.contains(p) && decide_workspace(self.platform, self.role, p) == Decision::Allow
    }
}

impl Store {
    /// PostgreSQL: refuses to serve through a role that row-level security would not bind (a
    /// superuser, a role with BYPASSRLS, or the owner of Warden's tables), or one that is not
    /// a member of `warden_app`. SQLite: nothing to check.
    pub async fn check_serving_role(&self) -> Result<(), StoreError> {
        let Some(pool) = self.pool_postgres() else {
            return Ok(());
        };
        let (user, superuser, bypass, owns, granted): (String, bool, bool, bool, bool) =
            sqlx::query_as(
                "SELECT current_user::text, r.rolsuper, r.rolbypassrls, \
                 EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = 'public' \
                     AND tablename = 'workspaces' AND tableowner = current_user), \
                 has_table_privilege('public.workspaces', 'SELECT') \
                 FROM pg_roles r WHERE r.rolname = current_user",
            )
            .fetch_one(pool)
            .await?;
        let why = if superuser {
            "is a superuser"
        } else if bypass {
            "has BYPASSRLS"
        } else if owns {
            "owns Warden's tables"
        } else if !granted {
            return Err(StoreError::Invalid(format!(
                "database.url: role {user:?} may not read Warden's tables; grant it the \
                 application role: GRANT warden_app TO \"{user}\""
            )));
        } else {
            return Ok(());
        };
        Err(StoreError::Invalid(format!(
            "database.url: role {user:?} {why}, so PostgreSQL's row-level security would not \
             apply to it. Serve through a role that owns nothing (CREATE ROLE warden_web LOGIN \
             PASSWORD '...' IN ROLE warden_app) and give the owning role as \
             database.owner_url, which Warden uses only to migrate"
        )))
    }

    /// What the caller's platform role grants (empty for an unknown or inactive user).
    pub async fn platform_permissions(&self, user: Uuid) -> Result<PermissionSet, StoreError> {
        let mut tx = self.begin_read().await?;
        let row = on_tx!(tx, |c| sqlx::query_as::<_, (bool, String, bool, String)>(
            "SELECT u.active, u.platform_role, COALESCE(r.builtin, FALSE), \
             COALESCE(r.permissions, '') FROM users u LEFT JOIN roles r \
             ON r.name = u.platform_role WHERE u.id = $1"
        )
        .bind(user)
        .fetch_optional(c)
        .await)?;
        tx.commit().await?;
        Ok(
            row.map_or(PermissionSet::EMPTY, |(active, role, builtin, perms)| {
                platform_grants(active, &role, builtin, &perms)
            }),
        )
    }

    /// Checks that `who`'s platform role grants `permission`.
    pub async fn authorize_platform(
        &self,
        who: &Principal,
        permission: Permission,
    ) -> Result<PlatformGrant, Refusal> {
        // A token bound to one workspace reaches no platform-wide route; any token reaches
        // at most its own permissions.
        if who.token.as_ref().is_some_and(|t| t.workspace.is_some()) {
            return Err(Refusal::Forbidden);
        }
        let platform = self
            .platform_permissions(who.user_id)
            .await?
            .intersect(who.ceiling());
        if !decide_platform(platform, permission) {
            return Err(Refusal::Forbidden);
        }
        let organization = who.organization.unwrap_or(OrgId::DEFAULT);
        if !organization.is_default()
            && !platform.contains(ORG_MANAGER)
            && self.org_role(organization, who.user_id).await?.is_none()
        {
            // Removed from the organization their session still names.
            return Err(Refusal::Forbidden);
        }
        Ok(PlatformGrant {
            user_id: who.user_id,
            permission,
            platform,
            organization,
        })
    }

    /// Checks that `who` holds `permission` in `workspace`: by membership or platform role.
    /// A caller who may not know the workspace exists gets [`Refusal::NotFound`], exactly as
    /// for a workspace that does not exist. The check runs in a read-only transaction scoped
    /// to the workspace; for a read permission that transaction stays open in the grant and
    /// serves the request.
    pub async fn authorize(
        &self,
        who: &Principal,
        workspace: WorkspaceId,
        permission: Permission,
    ) -> Result<WorkspaceGrant, Refusal> {
        if let Some(limits) = &who.token {
            // A token bound to another workspace learns nothing of this one.
            if limits.workspace.is_some_and(|w| w != workspace) {
                return Err(Refusal::NotFound);
            }
        }
        let mut tx = self.begin_read().await?;
        let row = lookup(&mut tx, who.user_id, workspace, who.organization).await?;
        let mut decided =
            decide(row.as_ref(), permission, who.organization).and(row.ok_or(Refusal::NotFound));
        if decided.is_ok() && !who.ceiling().contains(permission) {
            decided = Err(Refusal::Forbidden);
        }
        let row = match decided {
            Ok(row) => row,
            Err(refusal) => {
                tx.rollback().await?;
                return Err(refusal);
            }
        };
        let read_tx = if permission.is_read_only() {
            Some(Arc::new(Mutex::new(Some(tx))))
        } else {
            tx.commit().await?;
            None
        };
        Ok(WorkspaceGrant {
            user_id: who.user_id,
            workspace,
            permission,
            role: row.membership(),
            platform: row.platform().intersect(who.ceiling()),
            ceiling: who.ceiling(),
            organization: who.organization,
            read_tx,
        })
    }

    /// Opens the transaction a grant allows, scoped to its workspace: for a read, the one the
    /// check ran in; for a change, a new read-write transaction in which the grant is checked
    /// again, so a membership removed since (say, during a slow upload) is honoured.
    pub async fn scoped(&self, grant: &WorkspaceGrant) -> Result<WorkspaceTx, Refusal> {
        let taken = grant
            .read_tx
            .as_ref()
            .and_then(|slot| slot.lock().ok().and_then(|mut s| s.take()));
        if let Some(tx) = taken {
            return Ok(WorkspaceTx {
                tx,
                workspace: grant.workspace,
                user_id: grant.user_id,
                role: grant.role,
                platform: grant.platform,
            });
        }
        let mut tx = if grant.permission.is_read_only() {
            self.begin_read().await?
        } else {
            self.begin().await?
        };
        let row = lookup(&mut tx, grant.user_id, grant.workspace, grant.organization).await?;
        decide(row.as_ref(), grant.permission, grant.organization)?;
        let row = row.ok_or(Refusal::NotFound)?;
        Ok(WorkspaceTx {
            tx,
            workspace: grant.workspace,
            user_id: grant.user_id,
            role: row.membership(),
            platform: row.platform().intersect(grant.ceiling),
        })
    }

    /// Creates a workspace with `grant`'s holder as its owner, in a transaction scoped to the
    /// new workspace; the caller records the audit event and commits. `Ok(Err(_))`: the
    /// organization already holds as many active workspaces as its settings allow.
    pub async fn create_workspace(
        &self,
        grant: &PlatformGrant,
        name: &str,
        now: i64,
    ) -> Result<Result<WorkspaceTx, organizations::OrgFull>, StoreError> {
        if grant.permission != Permission::WORKSPACES_CREATE {
            return Err(StoreError::Invalid(
                "creating a workspace needs a workspaces.create grant".to_owned(),
            ));
        }
        let id = WorkspaceId::generate();
        let mut tx = self.begin().await?;
        set_scope(&mut tx, "warden.org_id", &grant.organization.to_string()).await?;
        if let Some(full) = organizations::workspace_room(&mut tx, grant.organization).await? {
            return Ok(Err(full));
        }
        set_scope(&mut tx, "warden.workspace_id", &id.to_string()).await?;
        on_tx!(tx, |c| sqlx::query(
            "INSERT INTO workspaces (id, name, repository, hooks, ticket_config, created_by, \
             created_at, updated_at, archived_at, organization_id) \
             VALUES ($1, $2, NULL, '{}', NULL, $3, $4, $4, NULL, $5)"
        )
        .bind(id.uuid())
        .bind(name)
        .bind(grant.user_id)
        .bind(now)
        .bind(grant.organization.uuid())
        .execute(c)
        .await
        .map(drop))?;
        on_tx!(tx, |c| sqlx::query(
            "INSERT INTO workspace_members (workspace_id, user_id, role, added_by, added_at, \
             updated_at) VALUES ($1, $2, 'owner', $2, $3, $3)"
        )
        .bind(id.uuid())
        .bind(grant.user_id)
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
        Ok(Ok(WorkspaceTx {
            tx,
            workspace: id,
            user_id: grant.user_id,
            role: Some(WorkspaceRole::Owner),
            platform: grant.platform,
        }))
    }

    /// The workspaces `who` is a member of, with their role, after `after` (by id), at most
    /// `limit`. Reads only the caller's own memberships (`warden.user_id` on PostgreSQL).
    pub async fn my_workspaces(
        &self,
        who: &Principal,
        after: Option<WorkspaceId>,
        limit: i64,
        include_archived: bool,
    ) -> Result<Vec<WorkspaceRow>, StoreError> {
        let mut tx = self.begin_read().await?;
        set_scope(&mut tx, "warden.user_id", &who.user_id.to_string()).await?;
        if let Some(org) = who.organization {
            set_scope(&mut tx, "warden.org_id", &org.to_string()).await?;
        }
        if matches!(tx.inner, crate::db::TxInner::Postgres(_)) {
            // Row-level security shows the caller's memberships; the workspaces they name
            // are then opened by id.
            let ids = on_tx!(tx, |c| sqlx::query_scalar::<_, Uuid>(
                "SELECT workspace_id FROM workspace_members WHERE user_id = $1"
            )
            .bind(who.user_id)
            .fetch_all(c)
            .await)?;
            let list: Vec<String> = ids.iter().map(Uuid::to_string).collect();
            set_scope(&mut tx, "warden.workspace_ids", &list.join(",")).await?;
        }
        // The memberships are walked in workspace order along (user_id, workspace_id), and a
        // later page starts as a plain range there (an `IS NULL OR` would make SQLite sort
        // every membership the person has, on every page).
        let after_range = if after.is_some() {
            "m.workspace_id > $2"
        } else {
            "$2 IS NULL"
        };
        let sql = format!(
            "SELECT w.id, w.name, w.repository, w.hooks, w.ticket_config, w.created_by, \
             w.created_at, w.updated_at, w.archived_at, m.role AS my_role \
             FROM workspace_members m JOIN workspaces w ON w.id = m.workspace_id \
             WHERE m.user_id = $1 AND {after_range} \
             AND ($3 OR w.archived_at IS NULL) AND ($5 IS NULL OR w.id = $5) \
             AND ($6 IS NULL OR w.organization_id = $6) \
             ORDER BY m.workspace_id LIMIT $4"
        );
        let rows = on_tx!(tx, |c| sqlx::query_as::<_, WorkspaceRow>(
            sqlx::AssertSqlSafe(sql.clone())
        )
        .bind(who.user_id)
        .bind(after.map(WorkspaceId::uuid))
        .bind(include_archived)
        .bind(limit)
        .bind(
            who.token
                .as_ref()
                .and_then(|t| t.workspace)
                .map(WorkspaceId::uuid),
        )
        .bind(who.organization.map(OrgId::uuid))
        .fetch_all(c)
        .await)?;
        tx.commit().await?;
        Ok(rows)
    }

    /// The explicit platform-wide read path: every workspace of the caller's organization, for a holder of a platform
    /// grant of `workspaces.read`. `event` (the caller's audit record of this read) is written
    /// in the same transaction, so the read is never unrecorded.
    pub async fn platform_wide(
        &self,
        grant: &PlatformGrant,
        key: &ChainKey,
        event: &NewEvent,
        after: Option<WorkspaceId>,
        limit: i64,
        include_archived: bool,
    ) -> Result<Vec<WorkspaceRow>, StoreError> {
        if grant.permission != Permission::WORKSPACES_READ {
            return Err(StoreError::Invalid(
                "the platform-wide read needs a workspaces.read grant".to_owned(),
            ));
        }
        let mut tx = self.begin().await?;
        set_scope(&mut tx, "warden.platform", "on").await?;
        set_scope(&mut tx, "warden.org_id", &grant.organization.to_string()).await?;
        let rows = on_tx!(tx, |c| sqlx::query_as::<_, WorkspaceRow>(
            "SELECT w.id, w.name, w.repository, w.hooks, w.ticket_config, w.created_by, \
             w.created_at, w.updated_at, w.archived_at, \
             (SELECT m.role FROM workspace_members m WHERE m.workspace_id = w.id \
              AND m.user_id = $1) AS my_role \
             FROM workspaces w WHERE ($2 IS NULL OR w.id > $2) \
             AND ($3 OR w.archived_at IS NULL) AND w.organization_id = $5 \
             ORDER BY w.id LIMIT $4"
        )
        .bind(grant.user_id)
        .bind(after.map(WorkspaceId::uuid))
        .bind(include_archived)
        .bind(limit)
        .bind(grant.organization.uuid())
        .fetch_all(c)
        .await)?;
        tx.record(key, event).await?;
        tx.commit().await?;
        Ok(rows)
    }
}

/// A transaction confined to one workspace, obtained only through a grant. Dropped without
/// [`WorkspaceTx::commit`], it rolls back.
#[derive(Debug)]
pub struct WorkspaceTx {
    tx: Tx,
    workspace: WorkspaceId,
    user_id: Uuid,
    role: Option<WorkspaceRole>,
    platform: PermissionSet,
}

/// A workspace as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WorkspaceRow {
    /// Id.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// Repository (JSON of `Repository`), if set.
    pub repository: Option<String>,
    /// Hooks (JSON of `Hooks`).
    pub hooks: String,
    /// Ticket configuration (JSON), if set.
    pub ticket_config: Option<String>,
    /// Creator.
    pub created_by: Uuid,
    /// Created (µs).
    pub created_at: i64,
    /// Last changed (µs).
    pub updated_at: i64,
    /// Archived (µs).
    pub archived_at: Option<i64>,
    /// The reader's own role in it, if a member.
    pub my_role: Option<String>,
}

/// A member as stored, with their email.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MemberRow {
    /// The user.
    pub user_id: Uuid,
    /// Their email.
    pub email: String,
    /// Their role here.
    pub role: String,
    /// Who added them.
    pub added_by: Uuid,
    /// When (µs).
    pub added_at: i64,
    /// Role last changed (µs).
    pub updated_at: i64,
    /// Granted through a mapped directory group (the directory changes and removes it).
    pub via_directory: bool,
}

/// What may be shown about a write-only value: never the value.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SecretMeta {
    /// `variable`, `pat` or `provider`.
    pub kind: String,
    /// The variable name, provider name, or `pat`.
    pub name: String,
    /// Who set it.
    pub set_by: Uuid,
    /// When (µs).
    pub set_at: i64,
}

/// A prompt template.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PromptRow {
    /// Name.
    pub name: String,
    /// Template text.
    pub template: String,
    /// Who changed it last.
    pub updated_by: Uuid,
    /// When (µs).
    pub updated_at: i64,
}

/// The kinds of write-only value a workspace holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// An environment variable.
    Variable,
    /// The personal access token.
    Pat,
    /// A provider API key.
    Provider,
}

impl SecretKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Variable => "variable",
            Self::Pat => "pat",
            Self::Provider => "provider",
        }
    }

    /// The kind a stored name stands for.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "variable" => Some(Self::Variable),
            "pat" => Some(Self::Pat),
            "provider" => Some(Self::Provider),
            _ => None,
        }
    }
}

const WORKSPACE_COLUMNS: &str = "w.id, w.name, w.repository, w.hooks, w.ticket_config, \
     w.created_by, w.created_at, w.updated_at, w.archived_at";

impl WorkspaceTx {
    /// The workspace this transaction is confined to.
    pub fn workspace(&self) -> WorkspaceId {
        self.workspace
    }

    /// The caller.
    pub fn user_id(&self) -> Uuid {
        self.user_id
    }

    /// The caller's role in the workspace, if a member.
    pub fn role(&self) -> Option<WorkspaceRole> {
        self.role
    }

    /// Whether the caller's platform role grants `p` everywhere.
    pub fn platform_holds(&self, p: Permission) -> bool {
        self.platform.contains(p)
    }

    /// Appends `event` to the audit trail in this transaction, marked with this workspace.
    pub async fn record(&mut self, key: &ChainKey, event: NewEvent) -> Result<String, StoreError> {
        let event = NewEvent {
            workspace_id: Some(self.workspace.to_string()),
            ..event
        };
        self.tx.record(key, &event).await
    }

    /// Commits.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await
    }

    /// The underlying transaction, for this crate's other workspace-scoped modules.
    pub(crate) fn tx_mut(&mut self) -> &mut Tx {
        &mut self.tx
    }

    /// The transaction itself, for the other store modules' workspace-scoped queries.
    pub(crate) fn inner(&mut self) -> &mut Tx {
        &mut self.tx
    }

    /// A user by (normalised) email, to add as a member. Users are platform-wide.
    pub async fn user_by_email(
        &mut self,
        email: &str,
    ) -> Result<Option<crate::identity::UserRow>, StoreError> {
        self.tx.user_by_email(email).await
    }

    /// A user by id, to add as a member.
    pub async fn user_by_id(
        &mut self,
        id: Uuid,
    ) -> Result<Option<crate::identity::UserRow>, StoreError> {
        self.tx.user_by_id(id).await
    }

    /// The workspace.
    pub async fn get(&mut self) -> Result<WorkspaceRow, StoreError> {
        let sql = format!(
            "SELECT {WORKSPACE_COLUMNS}, (SELECT m.role FROM workspace_members m \
             WHERE m.workspace_id = w.id AND m.user_id = $2) AS my_role \
             FROM workspaces w WHERE w.id = $1"
        );
        let ws = self.workspace.uuid();
        let user = self.user_id;
        Ok(on_tx!(self.tx, |c| sqlx::query_as::<_, WorkspaceRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(ws)
        .bind(user)
        .fetch_one(c)
        .await)?)
    }

    /// Renames the workspace.
    pub async fn rename(&mut self, name: &str, now: i64) -> Result<(), StoreError> {
        let ws = self.workspace.uuid();
        on_tx!(self.tx, |c| sqlx::query(
            "UPDATE workspaces SET name = $2, updated_at = $3 WHERE id = $1"
        )
        .bind(ws)
        .bind(name)
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Replaces the settings kept on the workspace row (JSON texts; `None` clears).
    pub async fn set_settings(
        &mut self,
        repository: Option<&str>,
        hooks: &str,
        ticket_config: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let ws = self.workspace.uuid();
        on_tx!(self.tx, |c| sqlx::query(
            "UPDATE workspaces SET repository = $2, hooks = $3, ticket_config = $4, \
             updated_at = $5 WHERE id = $1"
        )
        .bind(ws)
        .bind(repository)
        .bind(hooks)
        .bind(ticket_config)
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Archives the workspace. Returns false if it already was.
    pub async fn archive(&mut self, now: i64) -> Result<bool, StoreError> {
        let ws = self.workspace.uuid();
        let n = on_tx!(self.tx, |c| sqlx::query(
            "UPDATE workspaces SET archived_at = $2, updated_at = $2 \
             WHERE id = $1 AND archived_at IS NULL"
        )
        .bind(ws)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Runs `sql` unfiltered inside this scoped transaction and counts the rows it returns.
    /// For the test that proves row-level security holds when a query forgets its workspace
    /// filter; compiled only with the `rls-test-hook` feature, which only that test enables.
    #[cfg(feature = "rls-test-hook")]
    pub async fn unfiltered_count_for_rls_test(
        &mut self,
        sql: &'static str,
    ) -> Result<i64, StoreError> {
        Ok(on_tx!(self.tx, |c| sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(c)
            .await)?)
    }
}
