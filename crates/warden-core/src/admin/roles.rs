//! Custom platform roles: defining, changing and deleting them. Built-in roles are fixed.

use serde_json::json;
use warden_domain::access::{PermissionSet, RoleName, may_manage};
use warden_store::roles::RoleRow;
use warden_store::tenancy::PlatformGrant;

use crate::{Code, CoreError, CoreResult, Ctx, Op};

/// Every platform role: built-in roles first, then custom roles by name.
pub async fn list(ctx: &Ctx, _admin: &PlatformGrant) -> CoreResult<Vec<RoleRow>> {
    let mut tx = ctx.store.begin_read().await?;
    let rows = tx.roles().await?;
    tx.commit().await?;
    Ok(rows)
}

/// A custom role's definition, parsed: its permissions (none the caller lacks) and what it
/// is for.
#[derive(Debug, Clone)]
pub struct Definition {
    permissions: PermissionSet,
    description: String,
}

impl Definition {
    /// Parses permission names (`area.verb`) and a description (at most 200 characters, no
    /// control characters), refusing permissions the caller does not hold.
    pub fn parse(
        grant: &PlatformGrant,
        permissions: &[String],
        description: String,
    ) -> CoreResult<Self> {
        let set = PermissionSet::parse(permissions.iter().map(String::as_str)).map_err(|_| {
            CoreError::invalid(
                "permissions",
                "unknown permission name; GET /api/v1/admin/roles lists them",
            )
        })?;
        if description.chars().count() > 200 || description.chars().any(char::is_control) {
            return Err(CoreError::invalid(
                "description",
                "at most 200 characters, no control characters",
            ));
        }
        if !may_manage(grant.platform(), set) {
            return Err(Code::AboveYourRole.into());
        }
        Ok(Self {
            permissions: set,
            description,
        })
    }
}

/// Defines a custom platform role.
pub async fn create(ctx: &Ctx, op: &Op, name: &RoleName, def: &Definition) -> CoreResult<RoleRow> {
    let perms = def.permissions.names().join(" ");
    let mut tx = ctx.store.begin().await?;
    if tx.role(name.as_str()).await?.is_some() {
        return Err(Code::RoleExists.into());
    }
    tx.create_role(name.as_str(), &perms, &def.description, op.now_us())
        .await?;
    let event = op.event(
        "role.created",
        "role",
        Some(name.as_str().to_owned()),
        json!({ "permissions": def.permissions.names() }),
    );
    tx.record(&ctx.audit_key, &event).await?;
    let row = tx
        .role(name.as_str())
        .await?
        .ok_or_else(|| CoreError::internal(&"role vanished"))?;
    tx.commit().await?;
    Ok(row)
}

/// Replaces a custom role's permissions and description; holders are affected on their
/// next request. Narrowing a role the caller could not define is refused too (it would let
/// them strip a more powerful role).
pub async fn update(
    ctx: &Ctx,
    op: &Op,
    grant: &PlatformGrant,
    name: &str,
    def: &Definition,
) -> CoreResult<RoleRow> {
    let mut tx = ctx.store.begin().await?;
    let before = tx
        .role(name)
        .await?
        .filter(|r| !r.builtin)
        .ok_or(Code::NotFound)?;
    if !may_manage(grant.platform(), before.grants()) {
        return Err(Code::AboveYourRole.into());
    }
    let perms = def.permissions.names().join(" ");
    tx.update_role(name, &perms, &def.description, op.now_us())
        .await?;
    let event = op.event(
        "role.updated",
        "role",
        Some(name.to_owned()),
        json!({ "permissions": { "old": before.grants().names(), "new": def.permissions.names() } }),
    );
    tx.record(&ctx.audit_key, &event).await?;
    let row = tx
        .role(name)
        .await?
        .ok_or_else(|| CoreError::internal(&"role vanished"))?;
    tx.commit().await?;
    Ok(row)
}

/// Deletes a custom role that nobody holds.
pub async fn delete(ctx: &Ctx, op: &Op, grant: &PlatformGrant, name: &str) -> CoreResult<()> {
    let mut tx = ctx.store.begin().await?;
    let role = tx
        .role(name)
        .await?
        .filter(|r| !r.builtin)
        .ok_or(Code::NotFound)?;
    if !may_manage(grant.platform(), role.grants()) {
        return Err(Code::AboveYourRole.into());
    }
    let holders = tx.role_holders(name).await?;
    if holders > 0 || !tx.delete_role(name).await? {
        return Err(Code::RoleInUse.into());
    }
    let event = op.event(
        "role.deleted",
        "role",
        Some(name.to_owned()),
        json!({ "permissions": role.grants().names() }),
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    Ok(())
}
