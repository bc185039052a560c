//! Directory groups that grant workspace membership. A workspace reads and changes its own
//! mappings inside its scoped transaction; the directory's changes find a group's mappings in
//! every workspace through one platform-wide read.

use uuid::Uuid;
use warden_domain::access::WorkspaceRole;

use crate::db::on_tx;
use crate::tenancy::{WorkspaceTx, set_scope};
use crate::{Store, StoreError, Tx};

/// A directory group mapped to a workspace.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct GroupMappingRow {
    /// The SCIM group.
    pub group_id: Uuid,
    /// Its display name.
    pub display_name: String,
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

const MAPPING_SELECT: &str = "SELECT w.group_id, g.display_name, w.workspace_id, w.role, \
     w.configured_by, w.configured_at, \
     (SELECT COUNT(*) FROM scim_group_members m WHERE m.group_id = w.group_id) AS members \
     FROM scim_group_workspaces w JOIN scim_groups g ON g.id = w.group_id";

impl Store {
    /// Every workspace mapping of these groups: a platform-wide read of mapping rows only, in
    /// a read-only transaction of its own.
    pub async fn directory_mappings_of(
        &self,
        groups: &[Uuid],
    ) -> Result<Vec<GroupMappingRow>, StoreError> {
        let mut tx = self.begin_read().await?;
        set_scope(&mut tx, "warden.platform", "on").await?;
        let sql = format!("{MAPPING_SELECT} WHERE w.group_id = $1 ORDER BY w.workspace_id");
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
    /// The groups an account is a member of.
    pub async fn scim_groups_of(&mut self, user: Uuid) -> Result<Vec<Uuid>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_scalar::<_, Uuid>(
            "SELECT group_id FROM scim_group_members WHERE user_id = $1 ORDER BY group_id"
        )
        .bind(user)
        .fetch_all(c)
        .await)?)
    }
}

impl WorkspaceTx {
    /// A directory group's display name, if the group exists (groups are platform-wide).
    pub async fn scim_group_name(&mut self, group: Uuid) -> Result<Option<String>, StoreError> {
        Ok(on_tx!(self.inner(), |c| sqlx::query_scalar::<_, String>(
            "SELECT display_name FROM scim_groups WHERE id = $1"
        )
        .bind(group)
        .fetch_optional(c)
        .await)?)
    }

    /// The directory groups mapped to this workspace, by name.
    pub async fn directory_groups(&mut self) -> Result<Vec<GroupMappingRow>, StoreError> {
        let ws = self.workspace().uuid();
        let sql = format!("{MAPPING_SELECT} WHERE w.workspace_id = $1 ORDER BY g.display_name_key");
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
        let sql = format!("{MAPPING_SELECT} WHERE w.workspace_id = $1 AND w.group_id = $2");
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

    /// Maps a group here with `role`, acting for the transaction's caller (replacing any
    /// earlier mapping of the same group).
    pub async fn put_directory_group(
        &mut self,
        group: Uuid,
        role: WorkspaceRole,
        now: i64,
    ) -> Result<(), StoreError> {
        let ws = self.workspace().uuid();
        let by = self.user_id();
        on_tx!(self.inner(), |c| sqlx::query(
            "INSERT INTO scim_group_workspaces (group_id, workspace_id, role, configured_by, \
             configured_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (group_id, workspace_id) DO UPDATE SET role = excluded.role, \
             configured_by = excluded.configured_by, configured_at = excluded.configured_at"
        )
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

    /// Removes a group's mapping here; whether there was one.
    pub async fn delete_directory_group(&mut self, group: Uuid) -> Result<bool, StoreError> {
        let ws = self.workspace().uuid();
        let n = on_tx!(self.inner(), |c| sqlx::query(
            "DELETE FROM scim_group_workspaces WHERE workspace_id = $1 AND group_id = $2"
        )
        .bind(ws)
        .bind(group)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
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
            "SELECT user_id FROM scim_group_members WHERE group_id = $1 ORDER BY user_id"
        )
        .bind(group)
        .fetch_all(c)
        .await)?)
    }
}
