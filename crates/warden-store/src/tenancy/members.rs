//! A workspace's members, read and changed inside its own transaction.

use uuid::Uuid;
use warden_domain::access::WorkspaceRole;

use super::{MemberRow, WorkspaceTx};
use crate::StoreError;
use crate::db::on_tx;

impl WorkspaceTx {
    /// Members, by email.
    pub async fn members(&mut self) -> Result<Vec<MemberRow>, StoreError> {
        let ws = self.workspace.uuid();
        Ok(on_tx!(self.tx, |c| sqlx::query_as::<_, MemberRow>(
            "SELECT m.user_id, u.email, m.role, m.added_by, m.added_at, m.updated_at, \
             m.via_directory \
             FROM workspace_members m JOIN users u ON u.id = m.user_id \
             WHERE m.workspace_id = $1 ORDER BY u.email"
        )
        .bind(ws)
        .fetch_all(c)
        .await)?)
    }

    /// One member.
    pub async fn member(&mut self, user: Uuid) -> Result<Option<MemberRow>, StoreError> {
        let ws = self.workspace.uuid();
        Ok(on_tx!(self.tx, |c| sqlx::query_as::<_, MemberRow>(
            "SELECT m.user_id, u.email, m.role, m.added_by, m.added_at, m.updated_at, \
             m.via_directory \
             FROM workspace_members m JOIN users u ON u.id = m.user_id \
             WHERE m.workspace_id = $1 AND m.user_id = $2"
        )
        .bind(ws)
        .bind(user)
        .fetch_optional(c)
        .await)?)
    }

    /// How many owners the workspace has.
    pub async fn count_owners(&mut self) -> Result<i64, StoreError> {
        let ws = self.workspace.uuid();
        Ok(on_tx!(self.tx, |c| sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM workspace_members WHERE workspace_id = $1 AND role = 'owner'"
        )
        .bind(ws)
        .fetch_one(c)
        .await)?)
    }

    /// Adds a member (`via_directory`: granted through a mapped directory group). Fails with a
    /// unique violation if already one.
    pub async fn add_member(
        &mut self,
        user: Uuid,
        role: WorkspaceRole,
        now: i64,
        via_directory: bool,
    ) -> Result<(), StoreError> {
        let ws = self.workspace.uuid();
        let by = self.user_id;
        on_tx!(self.tx, |c| sqlx::query(
            "INSERT INTO workspace_members (workspace_id, user_id, role, added_by, added_at, \
             updated_at, via_directory) VALUES ($1, $2, $3, $4, $5, $5, $6)"
        )
        .bind(ws)
        .bind(user)
        .bind(role.as_str())
        .bind(by)
        .bind(now)
        .bind(via_directory)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Changes a member's role; `via_directory` says who holds the membership from now on
    /// (a person's change makes a directory-granted membership theirs).
    pub async fn set_member_role(
        &mut self,
        user: Uuid,
        role: WorkspaceRole,
        now: i64,
        via_directory: bool,
    ) -> Result<(), StoreError> {
        let ws = self.workspace.uuid();
        on_tx!(self.tx, |c| sqlx::query(
            "UPDATE workspace_members SET role = $3, updated_at = $4, via_directory = $5 \
             WHERE workspace_id = $1 AND user_id = $2"
        )
        .bind(ws)
        .bind(user)
        .bind(role.as_str())
        .bind(now)
        .bind(via_directory)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Removes a member.
    pub async fn remove_member(&mut self, user: Uuid) -> Result<(), StoreError> {
        let ws = self.workspace.uuid();
        on_tx!(self.tx, |c| sqlx::query(
            "DELETE FROM workspace_members WHERE workspace_id = $1 AND user_id = $2"
        )
        .bind(ws)
        .bind(user)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }
}
