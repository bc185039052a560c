//! Organizations and their members (multi-tenant mode). The tables are platform-level, like
//! `users`: the use cases check who may read or change them. The default organization has no
//! member rows — every account belongs to it.

use uuid::Uuid;
use warden_domain::organizations::{OrgId, OrgRole};

use crate::db::on_tx;
use crate::{Store, StoreError, Tx};

/// An organization.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrgRow {
    /// Its id.
    pub id: Uuid,
    /// Its short name.
    pub slug: String,
    /// Its display name.
    pub name: String,
    /// Who made it (`None` for the default organization).
    pub created_by: Option<Uuid>,
    /// Made, µs.
    pub created_at: i64,
    /// The email domains its members' addresses must be in (space-separated; empty: any).
    pub email_domains: String,
    /// How many active workspaces it may hold (`None`: no limit).
    pub max_workspaces: Option<i64>,
}

/// An organization's settings, as its admins change them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgSettings {
    /// Its display name.
    pub name: String,
    /// The email domains its members' addresses must be in (space-separated; empty: any).
    pub email_domains: String,
    /// How many active workspaces it may hold (`None`: no limit).
    pub max_workspaces: Option<i64>,
}

/// An organization with the caller's role in it (`None`: the default organization, or one
/// the caller manages without belonging to it).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MyOrgRow {
    /// Its id.
    pub id: Uuid,
    /// Its short name.
    pub slug: String,
    /// Its display name.
    pub name: String,
    /// The caller's role.
    pub role: Option<String>,
}

/// A member of an organization.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrgMemberRow {
    /// The account.
    pub user_id: Uuid,
    /// Its email.
    pub email: String,
    /// `admin` or `member`.
    pub role: String,
    /// Who added them.
    pub added_by: Uuid,
    /// When, µs.
    pub added_at: i64,
}

/// An organization already holds as many active workspaces as its settings allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrgFull {
    /// Its limit.
    pub limit: i64,
}

/// Whether `org` has room for one more active workspace (`Some`: it has not). On PostgreSQL
/// the organization's row stays locked to the end of the transaction, so two creations
/// cannot both take the last place (SQLite runs one writer at a time). The count sees every
/// workspace of the organization for this one statement only.
pub(super) async fn workspace_room(tx: &mut Tx, org: OrgId) -> Result<Option<OrgFull>, StoreError> {
    let lock = if matches!(tx.inner, crate::db::TxInner::Postgres(_)) {
        " FOR UPDATE"
    } else {
        ""
    };
    let sql = format!("SELECT max_workspaces FROM organizations WHERE id = $1{lock}");
    let limit = on_tx!(tx, |c| sqlx::query_scalar::<_, Option<i64>>(
        sqlx::AssertSqlSafe(sql.clone())
    )
    .bind(org.uuid())
    .fetch_optional(c)
    .await)?
    .flatten();
    let Some(limit) = limit else {
        return Ok(None);
    };
    super::decide::set_scope(tx, "warden.platform", "on").await?;
    let active = on_tx!(tx, |c| sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM workspaces WHERE organization_id = $1 AND archived_at IS NULL"
    )
    .bind(org.uuid())
    .fetch_one(c)
    .await)?;
    super::decide::set_scope(tx, "warden.platform", "").await?;
    Ok((active >= limit).then_some(OrgFull { limit }))
}

const ORG_COLUMNS: &str = "id, slug, name, created_by, created_at, email_domains, max_workspaces";

impl Tx {
    /// Every organization, the default one first, then by slug.
    pub async fn organizations(&mut self) -> Result<Vec<OrgRow>, StoreError> {
        let sql = format!(
            "SELECT {ORG_COLUMNS} FROM organizations ORDER BY (id = $1) DESC, slug LIMIT 10000"
        );
        Ok(on_tx!(self, |c| sqlx::query_as::<_, OrgRow>(
            sqlx::AssertSqlSafe(sql.clone())
        )
        .bind(OrgId::DEFAULT.uuid())
        .fetch_all(c)
        .await)?)
    }

    /// The default organization and those `user` is a member of, with their role.
    pub async fn organizations_of(&mut self, user: Uuid) -> Result<Vec<MyOrgRow>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_as::<_, MyOrgRow>(
            "SELECT o.id, o.slug, o.name, m.role FROM organizations o \
             LEFT JOIN organization_members m ON m.organization_id = o.id AND m.user_id = $1 \
             WHERE o.id = $2 OR m.user_id IS NOT NULL \
             ORDER BY (o.id = $2) DESC, o.slug"
        )
        .bind(user)
        .bind(OrgId::DEFAULT.uuid())
        .fetch_all(c)
        .await)?)
    }

    /// The organization with this id or slug.
    pub async fn organization(&mut self, id_or_slug: &str) -> Result<Option<OrgRow>, StoreError> {
        let id = Uuid::try_parse(id_or_slug).ok();
        let sql = format!(
            "SELECT {ORG_COLUMNS} FROM organizations WHERE ($1 IS NOT NULL AND id = $1) \
             OR ($1 IS NULL AND slug = $2)"
        );
        Ok(on_tx!(self, |c| sqlx::query_as::<_, OrgRow>(
            sqlx::AssertSqlSafe(sql.clone())
        )
        .bind(id)
        .bind(id_or_slug)
        .fetch_optional(c)
        .await)?)
    }

    /// Adds an organization. Fails with a unique violation if the slug is taken.
    pub async fn insert_organization(&mut self, row: &OrgRow) -> Result<(), StoreError> {
        on_tx!(self, |c| sqlx::query(
            "INSERT INTO organizations (id, slug, name, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5)"
        )
        .bind(row.id)
        .bind(&row.slug)
        .bind(&row.name)
        .bind(row.created_by)
        .bind(row.created_at)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Changes an organization's settings. Returns whether it exists.
    pub async fn set_org_settings(
        &mut self,
        org: OrgId,
        settings: &OrgSettings,
        now: i64,
    ) -> Result<bool, StoreError> {
        let n = on_tx!(self, |c| sqlx::query(
            "UPDATE organizations SET name = $2, email_domains = $3, max_workspaces = $4, \
             updated_at = $5 WHERE id = $1"
        )
        .bind(org.uuid())
        .bind(&settings.name)
        .bind(&settings.email_domains)
        .bind(settings.max_workspaces)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// An organization's members, by email.
    pub async fn org_members(&mut self, org: OrgId) -> Result<Vec<OrgMemberRow>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_as::<_, OrgMemberRow>(
            "SELECT m.user_id, u.email, m.role, m.added_by, m.added_at \
             FROM organization_members m JOIN users u ON u.id = m.user_id \
             WHERE m.organization_id = $1 ORDER BY u.email LIMIT 10000"
        )
        .bind(org.uuid())
        .fetch_all(c)
        .await)?)
    }

    /// One member's role.
    pub async fn org_member_role(
        &mut self,
        org: OrgId,
        user: Uuid,
    ) -> Result<Option<OrgRole>, StoreError> {
        let role = on_tx!(self, |c| sqlx::query_scalar::<_, String>(
            "SELECT role FROM organization_members WHERE organization_id = $1 AND user_id = $2"
        )
        .bind(org.uuid())
        .bind(user)
        .fetch_optional(c)
        .await)?;
        Ok(role.as_deref().and_then(OrgRole::parse))
    }

    /// Adds or re-roles a member. Returns whether they were a member before.
    pub async fn put_org_member(
        &mut self,
        org: OrgId,
        user: Uuid,
        role: OrgRole,
        by: Uuid,
        now: i64,
    ) -> Result<bool, StoreError> {
        let before = self.org_member_role(org, user).await?.is_some();
        on_tx!(self, |c| sqlx::query(
            "INSERT INTO organization_members (organization_id, user_id, role, added_by, \
             added_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) \
             ON CONFLICT (organization_id, user_id) DO UPDATE SET role = excluded.role, \
             updated_at = excluded.updated_at"
        )
        .bind(org.uuid())
        .bind(user)
        .bind(role.as_str())
        .bind(by)
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
        Ok(before)
    }

    /// Removes a member; the sessions acting in the organization go back to the default one.
    /// Returns whether they were a member.
    pub async fn remove_org_member(&mut self, org: OrgId, user: Uuid) -> Result<bool, StoreError> {
        let n = on_tx!(self, |c| sqlx::query(
            "DELETE FROM organization_members WHERE organization_id = $1 AND user_id = $2"
        )
        .bind(org.uuid())
        .bind(user)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        on_tx!(self, |c| sqlx::query(
            "UPDATE sessions SET organization_id = NULL \
             WHERE user_id = $2 AND organization_id = $1"
        )
        .bind(org.uuid())
        .bind(user)
        .execute(c)
        .await
        .map(drop))?;
        Ok(n == 1)
    }

    /// How many admins an organization has.
    pub async fn count_org_admins(&mut self, org: OrgId) -> Result<i64, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM organization_members \
             WHERE organization_id = $1 AND role = 'admin'"
        )
        .bind(org.uuid())
        .fetch_one(c)
        .await)?)
    }

    /// Makes a live sign-in session act in `org` from its next refresh on. Returns whether the
    /// session (of `user`, not revoked) exists.
    pub async fn set_session_org(
        &mut self,
        session: Uuid,
        user: Uuid,
        org: OrgId,
    ) -> Result<bool, StoreError> {
        let stored = (!org.is_default()).then(|| org.uuid());
        let n = on_tx!(self, |c| sqlx::query(
            "UPDATE sessions SET organization_id = $3 \
             WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL"
        )
        .bind(session)
        .bind(user)
        .bind(stored)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}

impl Store {
    /// `user`'s role in `org`, if a member (the default organization has no member rows).
    pub async fn org_role(&self, org: OrgId, user: Uuid) -> Result<Option<OrgRole>, StoreError> {
        let mut tx = self.begin_read().await?;
        let role = tx.org_member_role(org, user).await?;
        tx.commit().await?;
        Ok(role)
    }
}

impl super::WorkspaceTx {
    /// Whether `user` belongs to the organization holding this workspace (everyone belongs
    /// to the default one): a workspace's members come from its organization.
    pub async fn in_workspace_org(&mut self, user: Uuid) -> Result<bool, StoreError> {
        let ws = self.workspace.uuid();
        Ok(on_tx!(self.tx, |c| sqlx::query_scalar::<_, bool>(
            "SELECT w.organization_id = $3 OR EXISTS (SELECT 1 FROM organization_members m \
             WHERE m.organization_id = w.organization_id AND m.user_id = $2) \
             FROM workspaces w WHERE w.id = $1"
        )
        .bind(ws)
        .bind(user)
        .bind(OrgId::DEFAULT.uuid())
        .fetch_optional(c)
        .await)?
        .unwrap_or(false))
    }
}
