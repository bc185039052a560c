//! The directory's groups and their members (accounts the directory manages).

use std::collections::HashSet;

use serde_json::{Value, json};
use uuid::Uuid;
use warden_store::scim::ScimGroupRow;

use super::model::{GroupWrite, fold_keys, group_json};
use super::search::{Resource, translate};
use super::users::Versioned;
use super::{Listed, Paging, ScimClient, base, check_version, id_of, patch, unique};
use crate::{Code, CoreError, CoreResult, Ctx, Op};
use warden_domain::organizations::OrgId;

async fn check_members(tx: &mut warden_store::Tx, org: OrgId, members: &[Uuid]) -> CoreResult<()> {
    let known = tx.scim_users_existing(org, members).await?;
    if known.len() != members.len() {
        return Err(CoreError::noted(
            Code::ScimInvalidValue,
            "members",
            "every member must be the id of a User provisioned through SCIM".into(),
        ));
    }
    Ok(())
}

async fn stored(
    ctx: &Ctx,
    tx: &mut warden_store::Tx,
    org: OrgId,
    id: Uuid,
    with_members: bool,
) -> CoreResult<Versioned> {
    let row = tx.scim_group(org, id).await?.ok_or(Code::NotFound)?;
    let members = if with_members {
        Some(tx.scim_members(&[id]).await?)
    } else {
        None
    };
    Ok((
        group_json(&row, members.as_deref(), &base(ctx)),
        row.version,
    ))
}

/// One group.
pub async fn get(ctx: &Ctx, client: &ScimClient, id: &str) -> CoreResult<Versioned> {
    let id = id_of(id)?;
    let mut tx = ctx.store.begin_read().await?;
    let out = stored(ctx, &mut tx, client.organization, id, true).await?;
    tx.commit().await?;
    Ok(out)
}

/// Groups matching `filter`, a page at a time (with their members unless `members` is
/// excluded).
pub async fn list(
    ctx: &Ctx,
    client: &ScimClient,
    filter: Option<&str>,
    paging: Paging,
    with_members: bool,
) -> CoreResult<Listed> {
    let pred = filter.map(|f| translate(f, Resource::Groups)).transpose()?;
    let mut tx = ctx.store.begin_read().await?;
    let found = tx
        .search_scim_groups(
            client.organization,
            pred.as_ref(),
            paging.start_index - 1,
            paging.count,
        )
        .await?;
    let ids: Vec<Uuid> = found.rows.iter().map(|g| g.id).collect();
    let members = if with_members {
        tx.scim_members(&ids).await?
    } else {
        Vec::new()
    };
    tx.commit().await?;
    let b = base(ctx);
    let resources = found
        .rows
        .iter()
        .map(|g| {
            let mine: Vec<_> = members
                .iter()
                .filter(|m| m.group_id == g.id)
                .cloned()
                .collect();
            group_json(g, with_members.then_some(mine.as_slice()), &b)
        })
        .collect();
    Ok(Listed {
        total: found.total,
        start_index: paging.start_index,
        resources,
    })
}

/// Creates a group (201).
pub async fn create(ctx: &Ctx, op: &Op, client: &ScimClient, body: Value) -> CoreResult<Versioned> {
    let org = client.organization;
    let w = GroupWrite::read(&fold_keys(body))?;
    let now = op.now_us();
    let mut tx = ctx.store.begin().await?;
    if tx.scim_group_by_name(org, &w.display_name).await?.is_some() {
        return Err(Code::ScimUniqueness.into());
    }
    check_members(&mut tx, org, &w.members).await?;
    let row = ScimGroupRow {
        id: Uuid::now_v7(),
        display_name: w.display_name.clone(),
        external_id: w.external_id.clone(),
        version: 1,
        created_at: now,
        updated_at: now,
    };
    tx.insert_scim_group(org, &row).await.map_err(unique)?;
    tx.change_scim_members(row.id, &w.members, &[]).await?;
    let event = op.event(
        "scim_group.created",
        "scim_group",
        Some(row.id.to_string()),
        json!({ "display_name": row.display_name, "members": w.members.len() }),
    );
    tx.record(&ctx.audit_key, &event).await?;
    let out = stored(ctx, &mut tx, org, row.id, true).await?;
    tx.commit().await?;
    Ok(out)
}

/// Replaces a group (PUT).
pub async fn replace(
    ctx: &Ctx,
    op: &Op,
    client: &ScimClient,
    id: &str,
    body: Value,
    if_match: Option<&str>,
) -> CoreResult<Versioned> {
    let w = GroupWrite::read(&fold_keys(body))?;
    write(ctx, op, client, id, if_match, |_, _| Ok(w)).await
}

/// Changes a group by PATCH operations (adding and removing members, renaming).
pub async fn modify(
    ctx: &Ctx,
    op: &Op,
    client: &ScimClient,
    id: &str,
    body: Value,
    if_match: Option<&str>,
) -> CoreResult<Versioned> {
    write(ctx, op, client, id, if_match, move |current, _| {
        let Value::Object(mut doc) = fold_keys(current.clone()) else {
            return Err(Code::Internal.into());
        };
        patch::apply(&mut doc, &patch::GROUP, body)?;
        GroupWrite::read(&Value::Object(doc))
    })
    .await
}

async fn write(
    ctx: &Ctx,
    op: &Op,
    client: &ScimClient,
    id: &str,
    if_match: Option<&str>,
    change: impl FnOnce(&Value, &ScimGroupRow) -> CoreResult<GroupWrite>,
) -> CoreResult<Versioned> {
    let org = client.organization;
    let id = id_of(id)?;
    let mut tx = ctx.store.begin().await?;
    let row = tx.scim_group(org, id).await?.ok_or(Code::NotFound)?;
    check_version(if_match, row.version)?;
    let (current, _) = stored(ctx, &mut tx, org, id, true).await?;
    let before: Vec<Uuid> = tx
        .scim_members(&[id])
        .await?
        .iter()
        .map(|m| m.user_id)
        .collect();
    let w = change(&current, &row)?;
    if let Some(other) = tx.scim_group_by_name(org, &w.display_name).await?
        && other != id
    {
        return Err(Code::ScimUniqueness.into());
    }
    let (was, now): (HashSet<&Uuid>, HashSet<&Uuid>) =
        (before.iter().collect(), w.members.iter().collect());
    let added: Vec<Uuid> = w
        .members
        .iter()
        .filter(|m| !was.contains(m))
        .copied()
        .collect();
    let removed: Vec<Uuid> = before
        .iter()
        .filter(|m| !now.contains(m))
        .copied()
        .collect();
    check_members(&mut tx, org, &added).await?;
    let new = ScimGroupRow {
        display_name: w.display_name.clone(),
        external_id: w.external_id.clone(),
        updated_at: op.now_us(),
        ..row.clone()
    };
    if !tx
        .update_scim_group(org, &new, row.version)
        .await
        .map_err(unique)?
    {
        return Err(Code::ScimVersionMismatch.into());
    }
    tx.change_scim_members(id, &added, &removed).await?;
    // The ids changed (the first 100 of each), and how many.
    let ids = |v: &[Uuid]| v.iter().take(100).map(Uuid::to_string).collect::<Vec<_>>();
    let event = op.event(
        "scim_group.updated",
        "scim_group",
        Some(id.to_string()),
        json!({
            "display_name": new.display_name,
            "members_added": ids(&added), "added": added.len(),
            "members_removed": ids(&removed), "removed": removed.len(),
        }),
    );
    tx.record(&ctx.audit_key, &event).await?;
    let out = stored(ctx, &mut tx, org, id, true).await?;
    tx.commit().await?;
    if !added.is_empty() || !removed.is_empty() {
        let changed: Vec<Uuid> = added.iter().chain(&removed).copied().collect();
        let mappings = ctx.store.directory_mappings_of(&[id]).await?;
        super::workspaces::sync(ctx, op, &mappings, &changed).await?;
    }
    Ok(out)
}

/// Deletes a group (its members' accounts stay).
pub async fn delete(
    ctx: &Ctx,
    op: &Op,
    client: &ScimClient,
    id: &str,
    if_match: Option<&str>,
) -> CoreResult<()> {
    let id = id_of(id)?;
    let mut tx = ctx.store.begin_read().await?;
    tx.scim_group(client.organization, id)
        .await?
        .ok_or(Code::NotFound)?;
    tx.commit().await?;
    // Read first: the group's mappings go with it (a read of its own, outside the write).
    let mappings = ctx.store.directory_mappings_of(&[id]).await?;
    let mut tx = ctx.store.begin().await?;
    let row = tx
        .scim_group(client.organization, id)
        .await?
        .ok_or(Code::NotFound)?;
    check_version(if_match, row.version)?;
    let members: Vec<Uuid> = tx
        .scim_members(&[id])
        .await?
        .iter()
        .map(|m| m.user_id)
        .collect();
    tx.delete_scim_group(id).await?;
    let event = op.event(
        "scim_group.deleted",
        "scim_group",
        Some(id.to_string()),
        json!({ "display_name": row.display_name }),
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    // Its mappings went with it: the memberships they alone granted end.
    super::workspaces::sync(ctx, op, &mappings, &members).await?;
    Ok(())
}
