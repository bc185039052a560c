//! Directory groups that grant workspace membership. A workspace reads and changes its own
//! mappings inside its scoped transaction; the directory's changes find a group's mappings in
//! every workspace through one platform-wide read. Two sources feed them: SCIM groups
//! (`scim_group_*`) and the groups a single sign-on provider asserts (`sso_group_*`, see
//! [`crate::sso_groups`]); every read here covers both, so a workspace's directory members are
//! those either source grants.

use uuid::Uuid;
use warden_domain::access::WorkspaceRole;

use crate::db::on_tx;
use crate::tenancy::{WorkspaceTx, set_scope};
use crate::{Store, StoreError, Tx};

/// A directory group mapped to a workspace.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct GroupMappingRow {
    /// The group (SCIM or single sign-on).
    pub group_id: Uuid,
    /// Its display name (a single sign-on group's: the name the provider asserts).
    pub display_name: String,
    /// The single sign-on provider (slug) whose assertions fill the group; `None` for a SCIM
    /// group.
    pub provider: Option<String>,
    /// The workspace.
    pub workspace_id: Uuid,
    /// The role its members get there.
    pub role: String,
    /// Who saved the mapping (the changes act for them).
    pub configured_by: Uuid,
    /// When (µs).
    pub configured_at: i64,
    /// How many members the group has.
    pub members: i64,
}

/// Both sources' mappings as one relation `x` (filter and order on its columns).
const MAPPING_SELECT: &str = "SELECT group_id, display_name, provider, workspace_id, role, \
     configured_by, configured_at, members FROM (\
     SELECT w.group_id, g.display_name, CAST(NULL AS TEXT) AS provider, w.workspace_id, w.role, \
     w.configured_by, w.configured_at, \
     (SELECT COUNT(*) FROM scim_group_members m WHERE m.group_id = w.group_id) AS members, \
     g.display_name_key AS sort_key \
     FROM scim_group_workspaces w JOIN scim_groups g ON g.id = w.group_id \
     UNION ALL \
     SELECT w.group_id, g.name, p.slug, w.workspace_id, w.role, w.configured_by, \
     w.configured_at, \
     (SELECT COUNT(*) FROM sso_group_members m WHERE m.group_id = w.group_id), \
     LOWER(g.name) \
     FROM sso_group_workspaces w JOIN sso_groups g ON g.id = w.group_id \
     JOIN sso_providers p ON p.id = g.provider_id) x";

impl Store {
    /// Every workspace mapping of these groups: a platform-wide read of mapping rows only, in
    /// a read-only transaction of its own.
    pub async fn directory_mappings_of(
        &self,
        groups: &[Uuid],
    ) -> Result<Vec<GroupMappingRow>, StoreError> {
        let mut tx = self.begin_read().await?;
        set_scope(&mut tx, "warden.platform", "on").await?;
        let sql = format!("{MAPPING_SELECT} WHERE x.group_id = $1 ORDER BY x.workspace_id");
        let mut out = Vec::new();
        for g in groups {
            out.extend(on_tx!(tx, |c| sqlx::query_as::<_, GroupMappingRow>(
                sqlx::AssertSqlSafe(sql.clone())
            )
            .bind(*g)
            .fetch_all(c)
            .await)?);
        }
        tx.commit().await?;
        Ok(out)
    }
}

impl Tx {
    /// The directory groups (SCIM and single sign-on) an account is a member of.
    pub async fn scim_groups_of(&mut self, user: Uuid) -> Result<Vec<Uuid>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_scalar::<_, Uuid>(
            "SELECT group_id FROM scim_group_members WHERE user_id = $1 UNION ALL \
             SELECT group_id FROM sso_group_members WHERE user_id = $1 ORDER BY group_id"
        )
        .bind(user)
        .fetch_all(c)
        .await)?)
    }
}

impl WorkspaceTx {
    /// A directory group's display name, if the group exists in the directory of the
    /// workspace's organization (another organization's group is unknown here).
    pub async fn scim_group_name(&mut self, group: Uuid) -> Result<Option<String>, StoreError> {
        let ws = self.workspace().uuid();
        Ok(on_tx!(self.inner(), |c| sqlx::query_scalar::<_, String>(
            "SELECT g.display_name FROM scim_groups g JOIN workspaces w ON w.id = $2 \
             WHERE g.id = $1 AND g.organization_id = w.organization_id"
        )
        .bind(group)
        .bind(ws)
        .fetch_optional(c)
        .await)?)
    }

    /// The directory groups mapped to this workspace, by name.
    pub async fn directory_groups(&mut self) -> Result<Vec<GroupMappingRow>, StoreError> {
        let ws = self.workspace().uuid();
        let sql = format!(
            "{MAPPING_SELECT} WHERE x.workspace_id = $1 ORDER BY x.sort_key, x.provider, x.group_id"
        );
        Ok(on_tx!(self.inner(), |c| sqlx::query_as::<
            _,
            GroupMappingRow,
        >(sqlx::AssertSqlSafe(
            sql.clone()
        ))
        .bind(ws)
        .fetch_all(c)
        .await)?)
    }

    /// One group's mapping here.
    pub async fn directory_group(
        &mut self,
        group: Uuid,
    ) -> Result<Option<GroupMappingRow>, StoreError> {
        let ws = self.workspace().uuid();
        let sql = format!("{MAPPING_SELECT} WHERE x.workspace_id = $1 AND x.group_id = $2");
        Ok(on_tx!(self.inner(), |c| sqlx::query_as::<
            _,
            GroupMappingRow,
        >(sqlx::AssertSqlSafe(
            sql.clone()
        ))
        .bind(ws)
        .bind(group)
        .fetch_optional(c)
        .await)?)
    }

    /// Maps a SCIM group here with `role`, acting for the transaction's caller (replacing any
    /// earlier mapping of the same group).
    pub async fn put_directory_group(
        &mut self,
        group: Uuid,
        role: WorkspaceRole,
        now: i64,
    ) -> Result<(), StoreError> {
        self.put_mapping("scim_group_workspaces", group, role, now)
            .await
    }

    /// Writes a mapping into `table` (`scim_group_workspaces` or `sso_group_workspaces`).
    pub(crate) async fn put_mapping(
        &mut self,
        table: &'static str,
        group: Uuid,
        role: WorkspaceRole,
        now: i64,
    ) -> Result<(), StoreError> {
        let ws = self.workspace().uuid();
        let by = self.user_id();
        let sql = format!(
            "INSERT INTO {table} (group_id, workspace_id, role, configured_by, configured_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (group_id, workspace_id) DO UPDATE SET role = excluded.role, \
             configured_by = excluded.configured_by, configured_at = excluded.configured_at"
        );
        on_tx!(self.inner(), |c| sqlx::query(sqlx::AssertSqlSafe(
            sql.clone()
        ))
        .bind(group)
        .bind(ws)
        .bind(role.as_str())
        .bind(by)
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Removes a group's mapping here (of either source); whether there was one.
    pub async fn delete_directory_group(&mut self, group: Uuid) -> Result<bool, StoreError> {
        let ws = self.workspace().uuid();
        let mut n = 0;
        for sql in [
            "DELETE FROM scim_group_workspaces WHERE workspace_id = $1 AND group_id = $2",
            "DELETE FROM sso_group_workspaces WHERE workspace_id = $1 AND group_id = $2",
        ] {
            n += on_tx!(self.inner(), |c| sqlx::query(sql)
                .bind(ws)
                .bind(group)
                .execute(c)
                .await
                .map(|r| r.rows_affected()))?;
        }
        Ok(n == 1)
    }

    /// For each of `users` in a group mapped here: the user, the mapped role, and the group
    /// (one row per user and group).
    pub async fn directory_roles(
        &mut self,
        users: &[Uuid],
    ) -> Result<Vec<(Uuid, String, Uuid)>, StoreError> {
        let ws = self.workspace().uuid();
        let mut out = Vec::new();
        for u in users {
            out.extend(on_tx!(self.inner(), |c| sqlx::query_as::<
                _,
                (Uuid, String, Uuid),
            >(
                "SELECT m.user_id, w.role, w.group_id FROM scim_group_workspaces w \
                 JOIN scim_group_members m ON m.group_id = w.group_id \
                 WHERE w.workspace_id = $1 AND m.user_id = $2 \
                 UNION ALL \
                 SELECT m.user_id, w.role, w.group_id FROM sso_group_workspaces w \
                 JOIN sso_group_members m ON m.group_id = w.group_id \
                 WHERE w.workspace_id = $1 AND m.user_id = $2"
            )
            .bind(ws)
            .bind(*u)
            .fetch_all(c)
            .await)?);
        }
        Ok(out)
    }

    /// The members of a group (for a mapping's first synchronisation).
    pub async fn directory_group_members(&mut self, group: Uuid) -> Result<Vec<Uuid>, StoreError> {
        Ok(on_tx!(self.inner(), |c| sqlx::query_scalar::<_, Uuid>(
            "SELECT user_id FROM scim_group_members WHERE group_id = $1 UNION ALL \
             SELECT user_id FROM sso_group_members WHERE group_id = $1 ORDER BY user_id"
        )
        .bind(group)
        .fetch_all(c)
        .await)?)
    }
}
