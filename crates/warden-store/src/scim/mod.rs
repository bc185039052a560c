//! SCIM provisioning in storage: the directory's tokens, the accounts and groups it manages,
//! and searches over them (`search`: a filter as SQL with every value bound).

pub mod mappings;
mod search;

use search::Over;
pub use search::{Field, Found, Op, Pred, Val};

use uuid::Uuid;
use warden_domain::organizations::OrgId;

use crate::db::on_tx;
use crate::{StoreError, Tx};

/// A directory's bearer token as stored (never its secret).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScimTokenRow {
    /// Id.
    pub id: Uuid,
    /// What the administrator called it.
    pub name: String,
    /// The organization whose directory it is.
    pub organization_id: Uuid,
    /// Who created it.
    pub created_by: Uuid,
    /// Created, µs.
    pub created_at: i64,
    /// Last used, µs (kept to within a minute).
    pub last_used_at: Option<i64>,
    /// Revoked, µs.
    pub revoked_at: Option<i64>,
}

/// An account the directory manages, with what it said of it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScimUserRow {
    /// The account's id (the SCIM `id`).
    pub user_id: Uuid,
    /// The account's email.
    pub email: String,
    /// The account's display name.
    pub display_name: Option<String>,
    /// Whether the account is active.
    pub active: bool,
    /// The SCIM `userName`, as the directory wrote it.
    pub user_name: String,
    /// The directory's own id for it.
    pub external_id: Option<String>,
    /// Further SCIM attributes (JSON object text).
    pub attributes: String,
    /// Bumped on every change (the ETag).
    pub version: i64,
    /// Provisioned, µs.
    pub created_at: i64,
    /// Last changed through SCIM, µs.
    pub updated_at: i64,
}

/// A directory group.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScimGroupRow {
    /// Id.
    pub id: Uuid,
    /// Its name.
    pub display_name: String,
    /// The directory's own id for it.
    pub external_id: Option<String>,
    /// Bumped on every change (the ETag).
    pub version: i64,
    /// Created, µs.
    pub created_at: i64,
    /// Last changed, µs.
    pub updated_at: i64,
}

/// A group member, with what identifies them to a person.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRow {
    /// The group.
    pub group_id: Uuid,
    /// The member's account.
    pub user_id: Uuid,
    /// Their SCIM userName (their email when the directory does not manage them).
    pub user_name: String,
}

const USER_COLUMNS: &str = "s.user_id, u.email, u.display_name, u.active, s.user_name, \
     s.external_id, s.attributes, s.version, s.created_at, s.updated_at";
const USER_FROM: &str = "FROM scim_users s JOIN users u ON u.id = s.user_id";
const GROUP_COLUMNS: &str =
    "g.id, g.display_name, g.external_id, g.version, g.created_at, g.updated_at";

/// The key a group's name is unique under: its lower-case form, prefixed (outside the default
/// organization) with its organization's id, so two organizations may name a group alike.
fn group_key(org: OrgId, name: &str) -> String {
    if org.is_default() {
        name.to_lowercase()
    } else {
        format!("{org}/{}", name.to_lowercase())
    }
}

impl Tx {
    // ---- tokens -------------------------------------------------------------------------

    /// Stores a new directory token under the hash of its secret.
    pub async fn insert_scim_token(
        &mut self,
        row: &ScimTokenRow,
        hash: &[u8],
    ) -> Result<(), StoreError> {
        on_tx!(self, |c| sqlx::query(
            "INSERT INTO scim_tokens (id, name, hash, created_by, created_at, organization_id) \
             VALUES ($1, $2, $3, $4, $5, $6)"
        )
        .bind(row.id)
        .bind(&row.name)
        .bind(hash)
        .bind(row.created_by)
        .bind(row.created_at)
        .bind(row.organization_id)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// An organization's directory tokens, newest first.
    pub async fn scim_tokens(&mut self, org: OrgId) -> Result<Vec<ScimTokenRow>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_as::<_, ScimTokenRow>(
            "SELECT id, name, organization_id, created_by, created_at, last_used_at, revoked_at \
             FROM scim_tokens WHERE organization_id = $1 ORDER BY created_at DESC, id"
        )
        .bind(org.uuid())
        .fetch_all(c)
        .await)?)
    }

    /// Revokes one of an organization's tokens; whether it was live.
    pub async fn revoke_scim_token(
        &mut self,
        org: OrgId,
        id: Uuid,
        now: i64,
    ) -> Result<bool, StoreError> {
        let n = on_tx!(self, |c| sqlx::query(
            "UPDATE scim_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL \
             AND organization_id = $3"
        )
        .bind(id)
        .bind(now)
        .bind(org.uuid())
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// The live token whose secret hashes to `hash`.
    pub async fn scim_token_by_hash(
        &mut self,
        hash: &[u8],
    ) -> Result<Option<ScimTokenRow>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_as::<_, ScimTokenRow>(
            "SELECT id, name, organization_id, created_by, created_at, last_used_at, revoked_at \
             FROM scim_tokens WHERE hash = $1 AND revoked_at IS NULL"
        )
        .bind(hash)
        .fetch_optional(c)
        .await)?)
    }

    /// Records a token's use.
    pub async fn touch_scim_token(&mut self, id: Uuid, now: i64) -> Result<(), StoreError> {
        on_tx!(self, |c| sqlx::query(
            "UPDATE scim_tokens SET last_used_at = $2 WHERE id = $1"
        )
        .bind(id)
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    // ---- users --------------------------------------------------------------------------

    /// Creates an account the directory manages (no password: it signs in through single
    /// sign-on or an emailed link).
    pub async fn create_scim_account(
        &mut self,
        org: OrgId,
        row: &ScimUserRow,
        platform_role: &str,
    ) -> Result<(), StoreError> {
        on_tx!(self, |c| sqlx::query(
            "INSERT INTO users (id, email, password_hash, platform_role, active, created_at, \
             updated_at, display_name) VALUES ($1, $2, NULL, $3, $4, $5, $5, $6)"
        )
        .bind(row.user_id)
        .bind(&row.email)
        .bind(platform_role)
        .bind(row.active)
        .bind(row.created_at)
        .bind(&row.display_name)
        .execute(c)
        .await
        .map(drop))?;
        self.insert_scim_user(org, row).await
    }

    /// Records that an organization's directory manages an account (new, or one that already
    /// existed).
    pub async fn insert_scim_user(
        &mut self,
        org: OrgId,
        row: &ScimUserRow,
    ) -> Result<(), StoreError> {
        on_tx!(self, |c| sqlx::query(
            "INSERT INTO scim_users (user_id, user_name, user_name_key, external_id, attributes, \
             version, created_at, updated_at, organization_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)"
        )
        .bind(row.user_id)
        .bind(&row.user_name)
        .bind(row.user_name.to_lowercase())
        .bind(&row.external_id)
        .bind(&row.attributes)
        .bind(row.version)
        .bind(row.created_at)
        .bind(org.uuid())
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Replaces what the directory said of an account, and the account's email and display
    /// name, when its version is still `expected`; whether it was.
    pub async fn update_scim_user(
        &mut self,
        row: &ScimUserRow,
        expected: i64,
    ) -> Result<bool, StoreError> {
        let n = on_tx!(self, |c| sqlx::query(
            "UPDATE scim_users SET user_name = $2, user_name_key = $3, external_id = $4, \
             attributes = $5, version = version + 1, updated_at = $6 \
             WHERE user_id = $1 AND version = $7"
        )
        .bind(row.user_id)
        .bind(&row.user_name)
        .bind(row.user_name.to_lowercase())
        .bind(&row.external_id)
        .bind(&row.attributes)
        .bind(row.updated_at)
        .bind(expected)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        if n != 1 {
            return Ok(false);
        }
        on_tx!(self, |c| sqlx::query(
            "UPDATE users SET email = $2, display_name = $3, updated_at = $4 WHERE id = $1"
        )
        .bind(row.user_id)
        .bind(&row.email)
        .bind(&row.display_name)
        .bind(row.updated_at)
        .execute(c)
        .await
        .map(drop))?;
        Ok(true)
    }

    /// The directory lets go of an account (it stays, deactivated, for the audit trail).
    pub async fn delete_scim_user(&mut self, user: Uuid) -> Result<bool, StoreError> {
        on_tx!(self, |c| sqlx::query(
            "DELETE FROM scim_group_members WHERE user_id = $1"
        )
        .bind(user)
        .execute(c)
        .await
        .map(drop))?;
        let n = on_tx!(self, |c| sqlx::query(
            "DELETE FROM scim_users WHERE user_id = $1"
        )
        .bind(user)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// One account an organization's directory manages.
    pub async fn scim_user(
        &mut self,
        org: OrgId,
        user: Uuid,
    ) -> Result<Option<ScimUserRow>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS} {USER_FROM} WHERE s.user_id = $1 AND s.organization_id = $2"
        );
        Ok(on_tx!(self, |c| sqlx::query_as::<_, ScimUserRow>(
            sqlx::AssertSqlSafe(sql.clone())
        )
        .bind(user)
        .bind(org.uuid())
        .fetch_optional(c)
        .await)?)
    }

    /// The managed account with this userName (without case), if any, in any organization
    /// (a userName names one account on the whole platform).
    pub async fn scim_user_by_name(&mut self, user_name: &str) -> Result<Option<Uuid>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_scalar::<_, Uuid>(
            "SELECT user_id FROM scim_users WHERE user_name_key = $1"
        )
        .bind(user_name.to_lowercase())
        .fetch_optional(c)
        .await)?)
    }

    /// Whether a directory (of any organization) already manages this account.
    pub async fn is_scim_user(&mut self, user: Uuid) -> Result<bool, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM scim_users WHERE user_id = $1"
        )
        .bind(user)
        .fetch_one(c)
        .await)?
            > 0)
    }

    /// Accounts an organization's directory manages matching `filter`, oldest first, `count`
    /// from the `offset`-th.
    pub async fn search_scim_users(
        &mut self,
        org: OrgId,
        filter: Option<&Pred>,
        offset: i64,
        count: i64,
    ) -> Result<Found<ScimUserRow>, StoreError> {
        self.search(Over::Users, org, filter, offset, count).await
    }

    // ---- groups -------------------------------------------------------------------------

    /// Creates a group in an organization's directory.
    pub async fn insert_scim_group(
        &mut self,
        org: OrgId,
        row: &ScimGroupRow,
    ) -> Result<(), StoreError> {
        on_tx!(self, |c| sqlx::query(
            "INSERT INTO scim_groups (id, display_name, display_name_key, external_id, version, \
             created_at, updated_at, organization_id) VALUES ($1, $2, $3, $4, $5, $6, $6, $7)"
        )
        .bind(row.id)
        .bind(&row.display_name)
        .bind(group_key(org, &row.display_name))
        .bind(&row.external_id)
        .bind(row.version)
        .bind(row.created_at)
        .bind(org.uuid())
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Replaces a group's attributes when its version is still `expected`; whether it was.
    pub async fn update_scim_group(
        &mut self,
        org: OrgId,
        row: &ScimGroupRow,
        expected: i64,
    ) -> Result<bool, StoreError> {
        let n = on_tx!(self, |c| {
            sqlx::query(
            "UPDATE scim_groups SET display_name = $2, display_name_key = $3, external_id = $4, \
             version = version + 1, updated_at = $5 WHERE id = $1 AND version = $6 \
             AND organization_id = $7"
        )
        .bind(row.id)
        .bind(&row.display_name)
        .bind(group_key(org, &row.display_name))
        .bind(&row.external_id)
        .bind(row.updated_at)
        .bind(expected)
        .bind(org.uuid())
        .execute(c)
        .await
        .map(|r| r.rows_affected())
        })?;
        Ok(n == 1)
    }

    /// Changes a group's members: adds `added`, removes `removed`.
    pub async fn change_scim_members(
        &mut self,
        group: Uuid,
        added: &[Uuid],
        removed: &[Uuid],
    ) -> Result<(), StoreError> {
        for user in removed {
            on_tx!(self, |c| sqlx::query(
                "DELETE FROM scim_group_members WHERE group_id = $1 AND user_id = $2"
            )
            .bind(group)
            .bind(*user)
            .execute(c)
            .await
            .map(drop))?;
        }
        for user in added {
            on_tx!(self, |c| sqlx::query(
                "INSERT INTO scim_group_members (group_id, user_id) VALUES ($1, $2)"
            )
            .bind(group)
            .bind(*user)
            .execute(c)
            .await
            .map(drop))?;
        }
        Ok(())
    }

    /// Deletes a group; whether it existed.
    pub async fn delete_scim_group(&mut self, group: Uuid) -> Result<bool, StoreError> {
        on_tx!(self, |c| sqlx::query(
            "DELETE FROM scim_group_members WHERE group_id = $1"
        )
        .bind(group)
        .execute(c)
        .await
        .map(drop))?;
        let n = on_tx!(self, |c| sqlx::query(
            "DELETE FROM scim_groups WHERE id = $1"
        )
        .bind(group)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// One group of an organization's directory.
    pub async fn scim_group(
        &mut self,
        org: OrgId,
        group: Uuid,
    ) -> Result<Option<ScimGroupRow>, StoreError> {
        let sql = format!(
            "SELECT {GROUP_COLUMNS} FROM scim_groups g WHERE g.id = $1 AND g.organization_id = $2"
        );
        Ok(on_tx!(self, |c| sqlx::query_as::<_, ScimGroupRow>(
            sqlx::AssertSqlSafe(sql.clone())
        )
        .bind(group)
        .bind(org.uuid())
        .fetch_optional(c)
        .await)?)
    }

    /// An organization's group with this name (without case), if any.
    pub async fn scim_group_by_name(
        &mut self,
        org: OrgId,
        name: &str,
    ) -> Result<Option<Uuid>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_scalar::<_, Uuid>(
            "SELECT id FROM scim_groups WHERE display_name_key = $1"
        )
        .bind(group_key(org, name))
        .fetch_optional(c)
        .await)?)
    }

    /// The members of these groups, by group then userName.
    pub async fn scim_members(&mut self, groups: &[Uuid]) -> Result<Vec<MemberRow>, StoreError> {
        let mut out = Vec::new();
        for g in groups {
            out.extend(on_tx!(self, |c| sqlx::query_as::<_, MemberRow>(
                "SELECT m.group_id, m.user_id, COALESCE(s.user_name, u.email) AS user_name \
                 FROM scim_group_members m JOIN users u ON u.id = m.user_id \
                 LEFT JOIN scim_users s ON s.user_id = m.user_id \
                 WHERE m.group_id = $1 ORDER BY 3"
            )
            .bind(*g)
            .fetch_all(c)
            .await)?);
        }
        Ok(out)
    }

    /// Which of these ids are accounts an organization's directory manages.
    pub async fn scim_users_existing(
        &mut self,
        org: OrgId,
        ids: &[Uuid],
    ) -> Result<Vec<Uuid>, StoreError> {
        let mut out = Vec::new();
        for id in ids {
            let n = on_tx!(self, |c| sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM scim_users WHERE user_id = $1 AND organization_id = $2"
            )
            .bind(*id)
            .bind(org.uuid())
            .fetch_one(c)
            .await)?;
            if n > 0 {
                out.push(*id);
            }
        }
        Ok(out)
    }

    /// Groups matching `filter`, oldest first, `count` from the `offset`-th.
    pub async fn search_scim_groups(
        &mut self,
        org: OrgId,
        filter: Option<&Pred>,
        offset: i64,
        count: i64,
    ) -> Result<Found<ScimGroupRow>, StoreError> {
        self.search(Over::Groups, org, filter, offset, count).await
    }
}
