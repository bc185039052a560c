//! The directory's users. A User is a Warden account plus what the directory said of it; a
//! POST whose email belongs to an account the directory does not manage yet adopts that
//! account (the directory is the organisation's own), one it already manages is a conflict.
//! In multi-tenant mode a directory is one organization's: it sees only the accounts it
//! provisioned there, adopts only an account that already belongs to the organization, and
//! the accounts it creates join the organization as members.
//! New accounts get the `member` role and no password: they sign in through single sign-on
//! or an emailed link.

use serde_json::{Map, Value, json};
use uuid::Uuid;
use warden_store::scim::ScimUserRow;

use super::model::{UserWrite, fold_keys, user_json};
use super::search::{Resource, translate};
use super::{Listed, Paging, ScimClient, base, check_version, id_of, patch, unique};
use crate::identity::users::admit_user;
use crate::{Code, CoreError, CoreResult, Ctx, Op};
use warden_domain::organizations::OrgRole;

/// A resource and its version (for the `ETag` header).
pub type Versioned = (Value, i64);

/// The only platform role a directory manages: it creates members, and it may neither adopt
/// nor change an account with any other role (else changing an administrator's email would
/// hand the administrator's account to whoever holds the directory's token).
const DIRECTORY_ROLE: &str = "member";

async fn only_members(tx: &mut warden_store::Tx, id: Uuid) -> CoreResult<()> {
    let user = tx.user_by_id(id).await?.ok_or(Code::NotFound)?;
    if user.platform_role == DIRECTORY_ROLE {
        return Ok(());
    }
    Err(CoreError::noted(
        Code::Forbidden,
        "id",
        "this account was given a platform role other than member; an administrator manages it \
         now (make it a member again to hand it back to the directory)"
            .into(),
    ))
}

/// One user.
pub async fn get(ctx: &Ctx, client: &ScimClient, id: &str) -> CoreResult<Versioned> {
    let id = id_of(id)?;
    let mut tx = ctx.store.begin_read().await?;
    let row = tx
        .scim_user(client.organization, id)
        .await?
        .ok_or(Code::NotFound)?;
    tx.commit().await?;
    Ok((user_json(&row, &base(ctx)), row.version))
}

/// Users matching `filter`, a page at a time.
pub async fn list(
    ctx: &Ctx,
    client: &ScimClient,
    filter: Option<&str>,
    paging: Paging,
) -> CoreResult<Listed> {
    let pred = filter.map(|f| translate(f, Resource::Users)).transpose()?;
    let mut tx = ctx.store.begin_read().await?;
    let found = tx
        .search_scim_users(
            client.organization,
            pred.as_ref(),
            paging.start_index - 1,
            paging.count,
        )
        .await?;
    tx.commit().await?;
    let b = base(ctx);
    Ok(Listed {
        total: found.total,
        start_index: paging.start_index,
        resources: found.rows.iter().map(|r| user_json(r, &b)).collect(),
    })
}

/// Provisions a user (201).
pub async fn create(ctx: &Ctx, op: &Op, client: &ScimClient, body: Value) -> CoreResult<Versioned> {
    let org = client.organization;
    let w = UserWrite::read(&fold_keys(body))?;
    let email = w.account_email();
    let now = op.now_us();
    let mut tx = ctx.store.begin().await?;
    tx.lock_admin_changes().await?;
    if tx.scim_user_by_name(&w.user_name).await?.is_some() {
        return Err(Code::ScimUniqueness.into());
    }
    let existing = tx.user_by_email(&email).await?;
    let mut row = ScimUserRow {
        user_id: existing.as_ref().map_or_else(Uuid::now_v7, |u| u.id),
        email: email.clone(),
        display_name: w.display_name.clone(),
        active: w.active,
        user_name: w.user_name.clone(),
        external_id: w.external_id.clone(),
        attributes: w.attributes(),
        version: 1,
        created_at: now,
        updated_at: now,
    };
    let mut propagate = false;
    match existing {
        Some(user) => {
            if tx.is_scim_user(user.id).await? {
                return Err(Code::ScimUniqueness.into());
            }
            if user.platform_role != DIRECTORY_ROLE {
                return Err(CoreError::noted(
                    Code::ScimUniqueness,
                    "emails",
                    "this email belongs to an account with a platform role other than member, \
                     which Warden does not hand to a directory"
                        .into(),
                ));
            }
            // Another organization's person is not this directory's to take over: the same
            // answer as for an account another directory manages.
            if !org.is_default() && tx.org_member_role(org, user.id).await?.is_none() {
                return Err(Code::ScimUniqueness.into());
            }
            tx.insert_scim_user(org, &row).await.map_err(unique)?;
            tx.update_scim_user(&row, row.version).await?;
            row.version += 1;
            let event = op.event(
                "user.scim_adopted",
                "user",
                Some(user.id.to_string()),
                json!({ "user_name": row.user_name }),
            );
            tx.record(&ctx.audit_key, &event).await?;
            propagate =
                crate::admin::users::change_active(&mut tx, ctx, op, user.id, w.active).await?;
        }
        None => {
            if !org.is_default() {
                let settings = tx
                    .organization(&org.to_string())
                    .await?
                    .ok_or(Code::NotFound)?;
                if !crate::organizations::settings::email_allowed(&settings, &email) {
                    return Err(CoreError::noted(
                        Code::ScimInvalidValue,
                        "emails",
                        "this email is not in one of the organization's email domains".into(),
                    ));
                }
            }
            if w.active {
                admit_user(&ctx.license, &mut tx).await?;
            }
            tx.create_scim_account(org, &row, DIRECTORY_ROLE)
                .await
                .map_err(unique)?;
            let event = op.event(
                "user.created",
                "user",
                Some(row.user_id.to_string()),
                json!({ "email": email, "platform_role": "member", "source": "scim", "active": w.active }),
            );
            tx.record(&ctx.audit_key, &event).await?;
            if !org.is_default() {
                // `added_by` names the directory's token: no person added them.
                tx.put_org_member(org, row.user_id, OrgRole::Member, client.token_id, now)
                    .await?;
                let event = op.event(
                    "organization.member_added",
                    "organization",
                    Some(org.to_string()),
                    json!({ "user_id": row.user_id.to_string(), "role": "member", "source": "scim" }),
                );
                tx.record(&ctx.audit_key, &event).await?;
            }
        }
    }
    let stored = tx
        .scim_user(org, row.user_id)
        .await?
        .ok_or(Code::NotFound)?;
    tx.commit().await?;
    if propagate {
        ctx.identity.propagate(&ctx.store, ctx.clock.as_ref()).await;
    }
    Ok((user_json(&stored, &base(ctx)), stored.version))
}

/// Replaces a user (PUT).
pub async fn replace(
    ctx: &Ctx,
    op: &Op,
    client: &ScimClient,
    id: &str,
    body: Value,
    if_match: Option<&str>,
) -> CoreResult<Versioned> {
    let w = UserWrite::read(&fold_keys(body))?;
    write(ctx, op, client, id, if_match, |_| Ok(w)).await
}

/// Changes a user by PATCH operations.
pub async fn modify(
    ctx: &Ctx,
    op: &Op,
    client: &ScimClient,
    id: &str,
    body: Value,
    if_match: Option<&str>,
) -> CoreResult<Versioned> {
    write(ctx, op, client, id, if_match, move |row| {
        let Value::Object(mut doc) = UserWrite::folded_of(row) else {
            return Err(Code::Internal.into());
        };
        patch::apply(&mut doc, &patch::USER, body)?;
        UserWrite::read(&Value::Object(doc))
    })
    .await
}

async fn write(
    ctx: &Ctx,
    op: &Op,
    client: &ScimClient,
    id: &str,
    if_match: Option<&str>,
    change: impl FnOnce(&ScimUserRow) -> CoreResult<UserWrite>,
) -> CoreResult<Versioned> {
    let id = id_of(id)?;
    let now = op.now_us();
    let mut tx = ctx.store.begin().await?;
    tx.lock_admin_changes().await?;
    let row = tx
        .scim_user(client.organization, id)
        .await?
        .ok_or(Code::NotFound)?;
    check_version(if_match, row.version)?;
    only_members(&mut tx, id).await?;
    let w = change(&row)?;
    let email = w.account_email();
    if let Some(other) = tx.scim_user_by_name(&w.user_name).await?
        && other != id
    {
        return Err(Code::ScimUniqueness.into());
    }
    if let Some(other) = tx.user_by_email(&email).await?
        && other.id != id
    {
        return Err(Code::ScimUniqueness.into());
    }
    let new = ScimUserRow {
        email: email.clone(),
        display_name: w.display_name.clone(),
        active: w.active,
        user_name: w.user_name.clone(),
        external_id: w.external_id.clone(),
        attributes: w.attributes(),
        updated_at: now,
        ..row.clone()
    };
    if !tx
        .update_scim_user(&new, row.version)
        .await
        .map_err(unique)?
    {
        return Err(Code::ScimVersionMismatch.into());
    }
    let mut changed = Map::new();
    if row.email != new.email {
        changed.insert(
            "email".into(),
            json!({ "old": row.email, "new": new.email }),
        );
    }
    if row.user_name != new.user_name {
        changed.insert(
            "user_name".into(),
            json!({ "old": row.user_name, "new": new.user_name }),
        );
    }
    if row.display_name != new.display_name {
        changed.insert("display_name".into(), json!(true));
    }
    let event = op.event(
        "user.scim_updated",
        "user",
        Some(id.to_string()),
        Value::Object(changed),
    );
    tx.record(&ctx.audit_key, &event).await?;
    let propagate = if row.active == w.active {
        false
    } else {
        crate::admin::users::change_active(&mut tx, ctx, op, id, w.active).await?
    };
    // Reactivated: the groups it joined while inactive (which added nothing) grant now.
    let groups = if !row.active && w.active {
        tx.scim_groups_of(id).await?
    } else {
        Vec::new()
    };
    let stored = tx
        .scim_user(client.organization, id)
        .await?
        .ok_or(Code::NotFound)?;
    tx.commit().await?;
    if propagate {
        ctx.identity.propagate(&ctx.store, ctx.clock.as_ref()).await;
    }
    super::workspaces::after_reactivation(ctx, op, id, &groups).await?;
    Ok((user_json(&stored, &base(ctx)), stored.version))
}

/// Deletes a user: the account is deactivated (its sessions and tokens end) and kept for the
/// audit trail; the directory no longer sees it (404 afterwards).
pub async fn delete(
    ctx: &Ctx,
    op: &Op,
    client: &ScimClient,
    id: &str,
    if_match: Option<&str>,
) -> CoreResult<()> {
    let id = id_of(id)?;
    let mut tx = ctx.store.begin().await?;
    tx.lock_admin_changes().await?;
    let row = tx
        .scim_user(client.organization, id)
        .await?
        .ok_or(Code::NotFound)?;
    check_version(if_match, row.version)?;
    only_members(&mut tx, id).await?;
    let propagate = crate::admin::users::change_active(&mut tx, ctx, op, id, false).await?;
    let groups = tx.scim_groups_of(id).await?;
    tx.delete_scim_user(id).await?;
    let event = op.event(
        "user.scim_deleted",
        "user",
        Some(id.to_string()),
        json!({ "user_name": row.user_name }),
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    if propagate {
        ctx.identity.propagate(&ctx.store, ctx.clock.as_ref()).await;
    }
    // Out of every group: the workspace memberships those groups granted end.
    let mappings = ctx.store.directory_mappings_of(&groups).await?;
    super::workspaces::sync(ctx, op, &mappings, &[id]).await?;
    Ok(())
}
