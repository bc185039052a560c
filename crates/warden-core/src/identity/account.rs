//! The signed-in user's own account: who they are, their devices, their password.

use serde::Serialize;
use serde_json::json;
use uuid::Uuid;
use warden_domain::audit::Outcome;
use warden_domain::identity::{Principal, check_password};
use warden_store::identity::DeviceRow;

use super::flows;
use super::users::policy_error;
use crate::{Code, CoreError, CoreResult, Ctx, Op};

/// The signed-in user's email; `Unauthenticated` when the account is gone or inactive.
pub async fn email(ctx: &Ctx, principal: &Principal) -> CoreResult<String> {
    ctx.identity
        .user_email(&ctx.store, principal.user_id)
        .await?
        .ok_or_else(|| Code::Unauthenticated.into())
}

/// The person's display name, if they gave one.
pub async fn display_name(ctx: &Ctx, principal: &Principal) -> CoreResult<Option<String>> {
    let mut tx = ctx.store.begin_read().await?;
    let name = tx.display_name(principal.user_id).await?;
    tx.commit().await?;
    Ok(name)
}

/// Sets the person's display name (1 to 100 characters without control characters; blank
/// clears it), recorded with the old and new names.
pub async fn set_display_name(
    ctx: &Ctx,
    op: &Op,
    principal: &Principal,
    name: &str,
) -> CoreResult<Option<String>> {
    let name = name.trim();
    if name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(crate::CoreError::invalid(
            "name",
            "at most 100 characters, without control characters",
        ));
    }
    let new = Some(name).filter(|n| !n.is_empty());
    let mut tx = ctx.store.begin().await?;
    let old = tx.display_name(principal.user_id).await?;
    if !tx
        .set_display_name(principal.user_id, new, op.now_us())
        .await?
    {
        return Err(Code::Unauthenticated.into());
    }
    let event = op.event(
        "user.name_changed",
        "user",
        Some(principal.user_id.to_string()),
        serde_json::json!({ "name": { "old": old, "new": new } }),
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    Ok(new.map(str::to_owned))
}

/// Active device sessions, of one user or (for administrators) everyone's.
pub async fn active_devices(ctx: &Ctx, op: &Op, user: Option<Uuid>) -> CoreResult<Vec<DeviceRow>> {
    let idle = i64::try_from(ctx.identity.config.session_idle.as_micros()).unwrap_or(i64::MAX);
    let now = op.now_us();
    let mut tx = ctx.store.begin_read().await?;
    let rows = tx.active_devices(user, now, now - idle).await?;
    tx.commit().await?;
    Ok(rows)
}

/// Ends one of the user's own device sessions, at once, on every node; 404 when it is not
/// one of theirs.
pub async fn revoke_device(ctx: &Ctx, op: &Op, principal: &Principal, id: &str) -> CoreResult<()> {
    super::tokens::require_session(principal)?;
    let id: Uuid = id.parse().map_err(|_| Code::NotFound)?;
    let rows = active_devices(ctx, op, Some(principal.user_id)).await?;
    if !rows.iter().any(|s| s.id == id) {
        return Err(Code::NotFound.into());
    }
    flows::revoke(ctx, op, &[id], "user_revoked_device").await?;
    Ok(())
}

/// Ends every other device session of the user ("sign out everywhere else"); how many.
pub async fn revoke_others(ctx: &Ctx, op: &Op, principal: &Principal) -> CoreResult<usize> {
    super::tokens::require_session(principal)?;
    let mut tx = ctx.store.begin_read().await?;
    let others = tx
        .live_device_ids(principal.user_id, Some(principal.session_id))
        .await?;
    tx.commit().await?;
    let revoked = flows::revoke(ctx, op, &others, "user_revoked_others").await?;
    Ok(revoked.len())
}

/// What a password change's audit event keeps: that it changed, never the values.
#[derive(Debug, Serialize)]
pub struct PasswordChanged {
    /// Masked.
    pub password: &'static str,
}
warden_domain::audited!(PasswordChanged { password: Changed });

/// Changes the user's password (after checking the current one, audited when wrong) and
/// ends every other session of theirs.
pub async fn change_password(
    ctx: &Ctx,
    op: &Op,
    principal: &Principal,
    current: String,
    new: String,
) -> CoreResult<()> {
    super::tokens::require_session(principal)?;
    let user = principal.user_id;
    let mut tx = ctx.store.begin_read().await?;
    let row = tx.user_by_id(user).await?.ok_or(Code::Unauthenticated)?;
    tx.commit().await?;
    check_password(&new, &row.email).map_err(|p| policy_error(&p))?;
    let stored = row.password_hash.clone().unwrap_or_default();
    let hashed = crate::costly::passwords()
        .run(move |scratch| {
            let ok =
                warden_crypto::password::verify_in(&current, &stored, scratch).unwrap_or(false);
            ok.then(|| warden_crypto::password::hash_in(&new, scratch))
        })
        .await?;
    let Some(hash) = hashed else {
        let mut tx = ctx.store.begin().await?;
        let event = op.event_with(
            "user.password_changed",
            "user",
            Some(user.to_string()),
            Outcome::Denied,
            json!({"reason": "wrong_current_password"}),
        );
        tx.record(&ctx.audit_key, &event).await?;
        tx.commit().await?;
        return Err(CoreError::with_detail(
            Code::InvalidCredentials,
            "The current password is not correct.",
        ));
    };
    let hash = hash.map_err(|e| CoreError::internal(&e))?;
    let mut tx = ctx.store.begin().await?;
    tx.set_password(user, &hash, op.now_us()).await?;
    let others = tx.live_device_ids(user, Some(principal.session_id)).await?;
    let revoked =
        flows::revoke_in_tx(&mut tx, ctx, op, &op.actor, &others, "password_changed").await?;
    let mut summary = warden_domain::audit::summarize(&PasswordChanged { password: "x" })
        .unwrap_or_else(|_| json!({}));
    if let Some(obj) = summary.as_object_mut() {
        obj.insert("sessions_revoked".to_owned(), json!(revoked.len()));
    }
    let event = op.event(
        "user.password_changed",
        "user",
        Some(user.to_string()),
        summary,
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    ctx.identity.propagate(&ctx.store, ctx.clock.as_ref()).await;
    Ok(())
}
