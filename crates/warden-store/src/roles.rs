//! Platform roles and users' platform role assignments.

use uuid::Uuid;

use crate::db::on_tx;
use crate::{StoreError, Tx};

/// A platform role as stored. Built-in roles keep their grants in code.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RoleRow {
    /// Name.
    pub name: String,
    /// Built in (admin, member, auditor).
    pub builtin: bool,
    /// A custom role's permission names, space-separated.
    pub permissions: String,
    /// What it is for.
    pub description: String,
    /// Created (µs).
    pub created_at: i64,
    /// Last changed (µs).
    pub updated_at: i64,
}

impl RoleRow {
    /// What the role grants.
    pub fn grants(&self) -> warden_domain::access::PermissionSet {
        crate::tenancy::platform_grants(true, &self.name, self.builtin, &self.permissions)
    }
}

/// A user as the administration list shows them.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserListRow {
    /// Id.
    pub id: Uuid,
    /// Email.
    pub email: String,
    /// Platform role.
    pub platform_role: String,
    /// Active.
    pub active: bool,
    /// Created (µs).
    pub created_at: i64,
}

impl Tx {
    /// Every platform role, by name.
    pub async fn roles(&mut self) -> Result<Vec<RoleRow>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_as::<_, RoleRow>(
            "SELECT name, builtin, permissions, description, created_at, updated_at FROM roles \
             ORDER BY builtin DESC, name"
        )
        .fetch_all(c)
        .await)?)
    }

    /// One platform role.
    pub async fn role(&mut self, name: &str) -> Result<Option<RoleRow>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_as::<_, RoleRow>(
            "SELECT name, builtin, permissions, description, created_at, updated_at FROM roles \
             WHERE name = $1"
        )
        .bind(name)
        .fetch_optional(c)
        .await)?)
    }

    /// Creates a custom role. Fails with a unique violation if the name is taken.
    pub async fn create_role(
        &mut self,
        name: &str,
        permissions: &str,
        description: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        on_tx!(self, |c| sqlx::query(
            "INSERT INTO roles (name, builtin, permissions, description, created_at, updated_at) \
             VALUES ($1, FALSE, $2, $3, $4, $4)"
        )
        .bind(name)
        .bind(permissions)
        .bind(description)
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Replaces a custom role's permissions and description. Returns whether it exists.
    pub async fn update_role(
        &mut self,
        name: &str,
        permissions: &str,
        description: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let n = on_tx!(self, |c| sqlx::query(
            "UPDATE roles SET permissions = $2, description = $3, updated_at = $4 \
             WHERE name = $1 AND builtin = FALSE"
        )
        .bind(name)
        .bind(permissions)
        .bind(description)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Deletes a custom role nobody holds. Returns whether it was deleted.
    pub async fn delete_role(&mut self, name: &str) -> Result<bool, StoreError> {
        let n = on_tx!(self, |c| sqlx::query(
            "DELETE FROM roles WHERE name = $1 AND builtin = FALSE \
             AND NOT EXISTS (SELECT 1 FROM users WHERE platform_role = $1)"
        )
        .bind(name)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// How many users hold a role.
    pub async fn role_holders(&mut self, name: &str) -> Result<i64, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM users WHERE platform_role = $1"
        )
        .bind(name)
        .fetch_one(c)
        .await)?)
    }

    /// A user's display name, if they gave one.
    pub async fn display_name(&mut self, user: Uuid) -> Result<Option<String>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_scalar::<_, Option<String>>(
            "SELECT display_name FROM users WHERE id = $1"
        )
        .bind(user)
        .fetch_optional(c)
        .await)?
        .flatten())
    }

    /// Sets (or, with `None`, clears) a user's display name. Returns whether the user exists.
    pub async fn set_display_name(
        &mut self,
        user: Uuid,
        name: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let n = on_tx!(self, |c| sqlx::query(
            "UPDATE users SET display_name = $2, updated_at = $3 WHERE id = $1"
        )
        .bind(user)
        .bind(name)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Sets a user's platform role (which must exist). Returns whether the user exists.
    pub async fn set_platform_role(
        &mut self,
        user: Uuid,
        role: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let n = on_tx!(self, |c| sqlx::query(
            "UPDATE users SET platform_role = $2, updated_at = $3 WHERE id = $1 \
             AND EXISTS (SELECT 1 FROM roles WHERE name = $2)"
        )
        .bind(user)
        .bind(role)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// The emails of up to `limit` active administrators (built-in `admin` role), by email:
    /// whom people are told to ask when the licence has run out.
    pub async fn admin_emails(&mut self, limit: i64) -> Result<Vec<String>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_scalar::<_, String>(
            "SELECT email FROM users WHERE active AND platform_role = 'admin' \
             ORDER BY email LIMIT $1"
        )
        .bind(limit)
        .fetch_all(c)
        .await)?)
    }

    /// Users ordered by email, after `after` (an email), at most `limit`.
    pub async fn list_users(
        &mut self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<UserListRow>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_as::<_, UserListRow>(
            "SELECT id, email, platform_role, active, created_at FROM users \
             WHERE ($1 IS NULL OR email > $1) ORDER BY email LIMIT $2"
        )
        .bind(after)
        .bind(limit)
        .fetch_all(c)
        .await)?)
    }
}

impl Tx {
    /// Serialises changes that could take away the last active administrator (deactivation,
    /// a role change) across nodes: held to the end of the transaction, so "count the
    /// administrators, then change one" cannot interleave with another such change. SQLite's
    /// write transactions are serialised already.
    pub async fn lock_admin_changes(&mut self) -> Result<(), StoreError> {
        if let crate::db::TxInner::Postgres(t) = &mut self.inner {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext('warden.admin_changes')::bigint)")
                .execute(&mut **t)
                .await?;
        }
        Ok(())
    }

    /// What user `user`'s platform role grants, read in this transaction (`None`: no such
    /// user). Inactive users' roles are read as granted, to compare what acting on them
    /// means.
    pub async fn role_grants_of(
        &mut self,
        user: uuid::Uuid,
    ) -> Result<Option<warden_domain::access::PermissionSet>, StoreError> {
        let row = on_tx!(self, |c| sqlx::query_as::<_, (String, bool, String)>(
            "SELECT u.platform_role, COALESCE(r.builtin, FALSE), COALESCE(r.permissions, '') \
             FROM users u LEFT JOIN roles r ON r.name = u.platform_role WHERE u.id = $1"
        )
        .bind(user)
        .fetch_optional(c)
        .await)?;
        Ok(row.map(|(role, builtin, perms)| {
            crate::tenancy::platform_grants(true, &role, builtin, &perms)
        }))
    }
}
