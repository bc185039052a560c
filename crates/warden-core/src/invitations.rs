//! Invitations: an administrator invites an address with a platform role they could hold
//! themselves; Warden mails a link (single use, 7 days, prefix `wiv_`, only its hash kept);
//! the invitee chooses a password and is signed in with the role. Invitations can be revoked
//! while pending, and a newer one to the same address revokes the older. Everything is
//! audited (`invitation.sent`, `invitation.revoked`, `invitation.accepted`).

use serde_json::json;
use uuid::Uuid;
use warden_crypto::token;
use warden_domain::audit::Outcome;
use warden_domain::identity::normalize_email;
use warden_store::invitations::{InvitationRow, NewInvitation};
use warden_store::tenancy::PlatformGrant;

use crate::admin::{may_grant_role, user_id};
use crate::identity::flows::{Grant, Refusal, actor_for, start_session};
use crate::identity::users::{admit_user, validate_new_user};
use crate::mail::{self, Outgoing};
use crate::paging::{Page, page_limit, time_cursor};
use crate::{Code, CoreError, CoreResult, Ctx, Op};

/// Prefix of invitation links.
pub const PREFIX: &str = "wiv_";
/// How long an invitation works.
pub const TTL_DAYS: i64 = 7;
/// The page an invitation link opens (under `public_url`).
pub const PATH: &str = "/invitation";
/// The API route that accepts an invitation.
pub const ACCEPT_API: &str = "/api/v1/auth/invitations/accept";

/// Invites `email` with `platform_role` (`member` when none): refused for a role above the
/// caller's and for an address that already has an account.
pub async fn send(
    ctx: &Ctx,
    op: &Op,
    grant: &PlatformGrant,
    email: &str,
    platform_role: Option<&str>,
) -> CoreResult<InvitationRow> {
    let email =
        normalize_email(email).map_err(|_| CoreError::new(Code::InvalidEmail).on_field("email"))?;
    let role = platform_role.unwrap_or("member");
    let inviter = op
        .actor
        .id
        .as_deref()
        .and_then(|id| id.parse::<Uuid>().ok())
        .ok_or_else(|| CoreError::internal(&"an invitation needs a signed-in inviter"))?;
    let now = op.now_us();
    let issued = token::issue(PREFIX).map_err(|e| CoreError::internal(&e))?;
    let id = Uuid::now_v7();
    let expires_at = now + TTL_DAYS * 86_400 * 1_000_000;
    let mut tx = ctx.store.begin().await?;
    may_grant_role(&mut tx, grant, role).await?;
    if tx.user_by_email(&email).await?.is_some() {
        return Err(Code::EmailTaken.into());
    }
    let revoked = tx
        .create_invitation(&NewInvitation {
            id,
            hash: &issued.hash,
            email: &email,
            platform_role: role,
            invited_by: inviter,
            now,
            expires_at,
        })
        .await?;
    for old in revoked {
        let event = op.event(
            "invitation.revoked",
            "invitation",
            Some(old.to_string()),
            json!({"email": email, "reason": "superseded"}),
        );
        tx.record(&ctx.audit_key, &event).await?;
    }
    let link = format!("{}{PATH}?token={}", ctx.public_url, issued.secret.as_str());
    let body = format!(
        "You are invited to Warden as {role}. Open this link to choose your password and sign \
         in:\n\n{link}\n\nIt works once, for {TTL_DAYS} days. If you did not expect it, ignore \
         this message.\n"
    );
    let m = Outgoing {
        kind: "invitation",
        to: &email,
        subject: "You are invited to Warden",
        body: &body,
    };
    mail::queue(ctx, &mut tx, &m, now).await?;
    let event = op.event(
        "invitation.sent",
        "invitation",
        Some(id.to_string()),
        json!({"email": email, "platform_role": role}),
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    ctx.mail.wake();
    Ok(InvitationRow {
        id,
        email,
        platform_role: role.to_owned(),
        invited_by: Some(inviter),
        created_at: now,
        expires_at,
        accepted_at: None,
        accepted_user: None,
        revoked_at: None,
    })
}

/// Invitations, newest first.
pub async fn list(
    ctx: &Ctx,
    _grant: &PlatformGrant,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> CoreResult<Page<InvitationRow>> {
    let limit = page_limit(limit)?;
    let before = time_cursor(cursor)?;
    let mut tx = ctx.store.begin_read().await?;
    let rows = tx.list_invitations(before, limit).await?;
    tx.commit().await?;
    Ok(Page::by_time(rows, limit, |r| r.created_at))
}

/// Revokes a pending invitation (404 when there is no pending one by that id).
pub async fn revoke(ctx: &Ctx, op: &Op, _grant: &PlatformGrant, id: &str) -> CoreResult<()> {
    let id = user_id(id)?;
    let mut tx = ctx.store.begin().await?;
    if !tx.revoke_invitation(id, op.now_us()).await? {
        return Err(Code::NotFound.into());
    }
    let event = op.event(
        "invitation.revoked",
        "invitation",
        Some(id.to_string()),
        json!({"reason": "revoked"}),
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    Ok(())
}

/// Whether `token` is a pending invitation, and to which address (the page shows it).
pub async fn pending(ctx: &Ctx, op: &Op, secret: &str) -> Result<Option<String>, Refusal> {
    if !token::well_formed(secret, PREFIX) {
        return Ok(None);
    }
    let mut tx = ctx.store.begin_read().await?;
    let row = tx
        .pending_invitation(&token::hash(secret), op.now_us())
        .await?;
    tx.commit().await?;
    Ok(row.map(|r| r.email))
}

/// What accepting an invitation came to.
#[derive(Debug)]
pub enum Accepted {
    /// The account exists and is signed in.
    Done(Grant),
    /// The password breaks the policy, the address got an account meanwhile, or the
    /// licence's user limit is reached (the invitation is not used up).
    Refused(CoreError),
}

/// Accepts an invitation: creates the account with the invited role and the chosen
/// password, and signs it in. Once, within 7 days, unless revoked.
pub async fn accept(
    ctx: &Ctx,
    op: &Op,
    secret: &str,
    password: String,
) -> Result<Accepted, Refusal> {
    let Some(email) = pending(ctx, op, secret).await? else {
        return Err(refuse(ctx, op).await?);
    };
    // New accounts need a valid licence, whichever front end the invitee came through.
    let rule = warden_domain::license::LicenseRule::Required;
    if let Err(r) = ctx.license.gate(ctx.clock.as_ref(), ACCEPT_API, rule) {
        return Ok(Accepted::Refused(r.into()));
    }
    let email = match validate_new_user(&email, &password) {
        Ok(e) => e,
        Err(e) => return Ok(Accepted::Refused(e)),
    };
    let hash = crate::costly::passwords()
        .hash(password)
        .await
        .map_err(|_| Refusal::Busy)??;
    let now = op.now_us();
    let id = Uuid::now_v7();
    let mut tx = ctx.store.begin().await?;
    let Some(invitation) = tx.pending_invitation(&token::hash(secret), now).await? else {
        tx.rollback().await?;
        return Err(refuse(ctx, op).await?);
    };
    if tx.user_by_email(&email).await?.is_some() {
        return Ok(Accepted::Refused(Code::EmailTaken.into()));
    }
    if let Err(e) = admit_user(&ctx.license, &mut tx).await {
        return Ok(Accepted::Refused(e));
    }
    tx.create_user(id, &email, &hash, &invitation.platform_role, now)
        .await?;
    if !tx.accept_invitation(&token::hash(secret), id, now).await? {
        tx.rollback().await?;
        return Err(refuse(ctx, op).await?);
    }
    let event = op.event_by(
        actor_for(Some(id)),
        "invitation.accepted",
        "invitation",
        Some(invitation.id.to_string()),
        Outcome::Success,
        json!({"email": email, "platform_role": invitation.platform_role, "user_id": id}),
    );
    tx.record(&ctx.audit_key, &event).await?;
    let Some(user) = tx.user_by_id(id).await? else {
        return Err(Refusal::Internal("the new account is missing".into()));
    };
    let summary = json!({"email": email, "method": "invitation"});
    Ok(Accepted::Done(
        start_session(ctx, op, tx, &user, summary).await?,
    ))
}

async fn refuse(ctx: &Ctx, op: &Op) -> Result<Refusal, Refusal> {
    let mut tx = ctx.store.begin().await?;
    let event = op.event_by(
        actor_for(None),
        "invitation.accepted",
        "invitation",
        None,
        Outcome::Failed,
        json!({"reason": "invalid_link"}),
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    Ok(Refusal::Invalid)
}
