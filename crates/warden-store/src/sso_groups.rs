//! Groups a single sign-on provider asserts, kept as directory groups: a workspace maps one by
//! the provider and its name, and each sign-in sets the account's memberships among that
//! provider's groups to those asserted. Mapping reads and synchronisation are shared with SCIM
//! groups ([`crate::scim::mappings`]).

use std::collections::BTreeSet;

use uuid::Uuid;
use warden_domain::access::WorkspaceRole;

use crate::db::on_tx;
use crate::tenancy::WorkspaceTx;
use crate::{StoreError, Tx};

impl Tx {
    /// Sets `user`'s memberships among `provider`'s groups to those named in `asserted`
    /// (groups nobody mapped are not kept, so names without a group are ignored). Returns the
    /// groups whose membership changed.
    pub async fn set_sso_memberships(
        &mut self,
        provider: Uuid,
        user: Uuid,
        asserted: &BTreeSet<String>,
    ) -> Result<Vec<Uuid>, StoreError> {
        let groups = on_tx!(self, |c| sqlx::query_as::<_, (Uuid, String)>(
            "SELECT id, name FROM sso_groups WHERE provider_id = $1"
        )
        .bind(provider)
        .fetch_all(c)
        .await)?;
        let current: BTreeSet<Uuid> = on_tx!(self, |c| sqlx::query_scalar::<_, Uuid>(
            "SELECT m.group_id FROM sso_group_members m JOIN sso_groups g ON g.id = m.group_id \
             WHERE g.provider_id = $1 AND m.user_id = $2"
        )
        .bind(provider)
        .bind(user)
        .fetch_all(c)
        .await)?
        .into_iter()
        .collect();
        let mut changed = Vec::new();
        for (id, name) in groups {
            let want = asserted.contains(&name);
            let has = current.contains(&id);
            let sql = match (want, has) {
                (true, false) => {
                    "INSERT INTO sso_group_members (group_id, user_id) VALUES ($1, $2)"
                }
                (false, true) => {
                    "DELETE FROM sso_group_members WHERE group_id = $1 AND user_id = $2"
                }
                _ => continue,
            };
            on_tx!(self, |c| sqlx::query(sql)
                .bind(id)
                .bind(user)
                .execute(c)
                .await
                .map(drop))?;
            changed.push(id);
        }
        Ok(changed)
    }
}

impl Tx {
    /// A provider's groups and everyone in any of them (to end what they granted when the
    /// provider goes).
    pub async fn sso_groups_of_provider(
        &mut self,
        provider: Uuid,
    ) -> Result<(Vec<Uuid>, Vec<Uuid>), StoreError> {
        let groups = on_tx!(self, |c| sqlx::query_scalar::<_, Uuid>(
            "SELECT id FROM sso_groups WHERE provider_id = $1 ORDER BY id"
        )
        .bind(provider)
        .fetch_all(c)
        .await)?;
        let users = on_tx!(self, |c| sqlx::query_scalar::<_, Uuid>(
            "SELECT DISTINCT m.user_id FROM sso_group_members m \
             JOIN sso_groups g ON g.id = m.group_id WHERE g.provider_id = $1 ORDER BY m.user_id"
        )
        .bind(provider)
        .fetch_all(c)
        .await)?;
        Ok((groups, users))
    }
}

impl WorkspaceTx {
    /// A single sign-on provider by slug: its id and protocol — a platform-wide provider or
    /// one of the workspace's organization (another organization's is unknown here).
    pub async fn sso_provider_protocol(
        &mut self,
        slug: &str,
    ) -> Result<Option<(Uuid, String)>, StoreError> {
        let ws = self.workspace().uuid();
        Ok(on_tx!(self.inner(), |c| {
            sqlx::query_as::<_, (Uuid, String)>(
                "SELECT p.id, p.protocol FROM sso_providers p JOIN workspaces w ON w.id = $2 \
                 WHERE p.slug = $1 \
                 AND (p.organization_id IS NULL OR p.organization_id = w.organization_id)",
            )
            .bind(slug)
            .bind(ws)
            .fetch_optional(c)
            .await
        })?)
    }

    /// The provider's group named `name`, created when no workspace mapped it before.
    pub async fn sso_group(
        &mut self,
        provider: Uuid,
        name: &str,
        now: i64,
    ) -> Result<Uuid, StoreError> {
        on_tx!(self.inner(), |c| sqlx::query(
            "INSERT INTO sso_groups (id, provider_id, name, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (provider_id, name) DO NOTHING"
        )
        .bind(Uuid::now_v7())
        .bind(provider)
        .bind(name)
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
        Ok(on_tx!(self.inner(), |c| sqlx::query_scalar::<_, Uuid>(
            "SELECT id FROM sso_groups WHERE provider_id = $1 AND name = $2"
        )
        .bind(provider)
        .bind(name)
        .fetch_one(c)
        .await)?)
    }

    /// Maps a single sign-on group here with `role`, acting for the transaction's caller
    /// (replacing any earlier mapping of the same group).
    pub async fn put_sso_group_mapping(
        &mut self,
        group: Uuid,
        role: WorkspaceRole,
        now: i64,
    ) -> Result<(), StoreError> {
        self.put_mapping("sso_group_workspaces", group, role, now)
            .await
    }
}
