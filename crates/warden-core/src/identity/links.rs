//! Signing in by emailed link: magic links (sign in) and password resets (choose a password;
//! every other session ends). A link is 256 random bits, stored as a hash, single use,
//! short-lived, and superseded by the next one of its kind; each kind has its own prefix and
//! is looked up in its own namespace, so no other single-use token (a setup link, a refresh
//! token, a link of the other kind) is ever accepted as one.
//!
//! Asking for a link answers the same whether or not the account exists: the request is
//! throttled the same way for every address, and the link is issued after the answer, off
//! the request and after a random delay, so neither the answer's timing nor the load the
//! issuing puts on the next requests tells (BENCHMARKS.md measures both). Throttles count per (address, client), per
//! client and per address; the last is loose and short, so a stranger asking for links can
//! delay a person's next link, never lock them out of signing in.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use warden_crypto::token;
use warden_domain::audit::Outcome;
use warden_domain::identity::{check_password, normalize_email};
use warden_store::links::LinkPurpose;

use super::flows::{Grant, Refusal, actor_for, micros, revoke_in_tx, start_session};
use super::users::policy_error;
use crate::mail::{self, Outgoing};
use crate::{CoreError, Ctx, Op};

/// Prefix of magic sign-in links.
pub const MAGIC_PREFIX: &str = "wml_";
/// Prefix of password-reset links.
pub const RESET_PREFIX: &str = "wpr_";

/// The kinds of emailed link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// Signs the person in (15 minutes).
    MagicLink,
    /// Lets the person choose a new password (30 minutes).
    PasswordReset,
}

impl LinkKind {
    fn prefix(self) -> &'static str {
        match self {
            Self::MagicLink => MAGIC_PREFIX,
            Self::PasswordReset => RESET_PREFIX,
        }
    }

    fn purpose(self) -> LinkPurpose {
        match self {
            Self::MagicLink => LinkPurpose::MagicLink,
            Self::PasswordReset => LinkPurpose::PasswordReset,
        }
    }

    /// How long a link stays valid.
    pub fn ttl(self) -> Duration {
        match self {
            Self::MagicLink => Duration::from_secs(15 * 60),
            Self::PasswordReset => Duration::from_secs(30 * 60),
        }
    }

    /// The page the link opens (under `public_url`).
    pub fn path(self) -> &'static str {
        match self {
            Self::MagicLink => "/sign-in/link",
            Self::PasswordReset => "/reset-password",
        }
    }

    /// Its name in audit events and the mail log.
    pub fn name(self) -> &'static str {
        match self {
            Self::MagicLink => "magic_link",
            Self::PasswordReset => "password_reset",
        }
    }

    fn mail(self, link: &str) -> (&'static str, String) {
        let minutes = self.ttl().as_secs() / 60;
        match self {
            Self::MagicLink => (
                "Your Warden sign-in link",
                format!(
                    "Open this link to sign in to Warden:\n\n{link}\n\nIt works once, for \
                     {minutes} minutes, and only until you ask for another. If you did not ask \
                     for it, ignore this message: nobody can use it without access to your \
                     mailbox.\n"
                ),
            ),
            Self::PasswordReset => (
                "Reset your Warden password",
                format!(
                    "Open this link to choose a new Warden password:\n\n{link}\n\nIt works \
                     once, for {minutes} minutes. Choosing a new password signs you out \
                     everywhere else. If you did not ask for it, ignore this message.\n"
                ),
            ),
        }
    }
}

/// (scope, most requests, window): per address and client, per client, per address.
fn limits(email: &str, ip: &str) -> [(String, u32, Duration); 3] {
    [
        (
            format!("link:pair:{email}|{ip}"),
            3,
            Duration::from_secs(15 * 60),
        ),
        (
            format!("link:client:{ip}"),
            20,
            Duration::from_secs(15 * 60),
        ),
        (
            format!("link:account:{email}"),
            10,
            Duration::from_secs(3600),
        ),
    ]
}

/// At most this many links are waiting or being issued at once on a node; past it,
/// requests are answered alike and their link is dropped (logged), so a flood cannot pile up
/// work.
static ISSUING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1024);

/// Issuing a link costs more than finding no account. Done right after the answer, that
/// work would slow the next request to arrive, so a stranger could tell from their own
/// follow-up request whether an address has an account. It starts after a random delay of
/// up to this long instead, out of step with the requests.
const ISSUE_JITTER_MS: u64 = 2000;

fn jitter() -> Duration {
    let mut b = [0u8; 8];
    // Without randomness (never expected), no delay: the answer stays the same either way.
    let _ = aws_lc_rs::rand::fill(&mut b);
    Duration::from_millis(u64::from_le_bytes(b) % ISSUE_JITTER_MS)
}

/// Asks for a link of `kind` for `email`. Answers `Ok` alike for every address (or
/// `Throttled`, alike too); the link, if the account exists and is active, is mailed after.
pub async fn request(ctx: &Arc<Ctx>, op: &Op, kind: LinkKind, email: &str) -> Result<(), Refusal> {
    let email = normalize_email(email).unwrap_or_else(|_| email.trim().to_lowercase());
    let email: String = email.chars().take(254).collect();
    let ip = op.origin.ip_text().unwrap_or_else(|| "unknown".to_owned());
    let now = op.now_us();
    let mut tx = ctx.store.begin().await?;
    let mut blocked_until = 0;
    for (scope, most, window) in limits(&email, &ip) {
        let window = micros(window);
        let closes = move |n: u32| if n >= most { window } else { 0 };
        if let Some(until) = tx.throttle_reserve(&scope, now, window, closes).await? {
            blocked_until = blocked_until.max(until);
        }
    }
    if blocked_until > now {
        tx.rollback().await?;
        let wait = Duration::from_micros(u64::try_from(blocked_until - now).unwrap_or(1));
        return Err(Refusal::Throttled(wait));
    }
    tx.commit().await?;
    let Ok(permit) = ISSUING.try_acquire() else {
        tracing::warn!(
            kind = kind.name(),
            "too many sign-in links being issued; one dropped"
        );
        return Ok(());
    };
    let (ctx, op) = (ctx.clone(), op.clone());
    tokio::spawn(async move {
        // Held until the link is issued, or the task ends in any other way.
        let _permit = permit;
        tokio::time::sleep(jitter()).await;
        if let Err(e) = issue(&ctx, &op, kind, &email).await {
            tracing::error!(error = %e.detail, kind = kind.name(), "cannot issue a sign-in link");
        }
    });
    Ok(())
}

/// Issues and mails the link (superseding the person's earlier one), or records that the
/// address has no active account.
async fn issue(ctx: &Ctx, op: &Op, kind: LinkKind, email: &str) -> Result<(), CoreError> {
    let now = op.now_us();
    let mut tx = ctx.store.begin().await?;
    let user = tx.user_by_email(email).await?.filter(|u| u.active);
    let action = match kind {
        LinkKind::MagicLink => "auth.magic_link_requested",
        LinkKind::PasswordReset => "auth.password_reset_requested",
    };
    let Some(user) = user else {
        let event = op.event_by(
            actor_for(None),
            action,
            "user",
            None,
            Outcome::Denied,
            json!({"email": email, "reason": "no_active_account"}),
        );
        tx.record(&ctx.audit_key, &event).await?;
        tx.commit().await?;
        return Ok(());
    };
    let issued = token::issue(kind.prefix()).map_err(|e| CoreError::internal(&e))?;
    let expires = now + micros(kind.ttl());
    tx.issue_email_link(kind.purpose(), &issued.hash, user.id, now, expires)
        .await?;
    let link = format!(
        "{}{}?token={}",
        ctx.public_url,
        kind.path(),
        issued.secret.as_str()
    );
    let (subject, body) = kind.mail(&link);
    let m = Outgoing {
        kind: kind.name(),
        to: &user.email,
        subject,
        body: &body,
    };
    mail::queue(ctx, &mut tx, &m, now).await?;
    let event = op.event_by(
        actor_for(Some(user.id)),
        action,
        "user",
        Some(user.id.to_string()),
        Outcome::Success,
        json!({"email": user.email}),
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    ctx.mail.wake();
    Ok(())
}

/// Whether `token` is a live link of `kind` (a page shows its form only then; looking does
/// not use it up).
pub async fn is_live(ctx: &Ctx, op: &Op, kind: LinkKind, token: &str) -> Result<bool, Refusal> {
    if !token::well_formed(token, kind.prefix()) {
        return Ok(false);
    }
    let mut tx = ctx.store.begin_read().await?;
    let live = tx
        .email_link_live(kind.purpose(), &token::hash(token), op.now_us())
        .await?;
    tx.commit().await?;
    Ok(live)
}

/// Signs in with a magic link: once, while it is the newest, within 15 minutes.
pub async fn sign_in(ctx: &Ctx, op: &Op, token: &str) -> Result<Grant, Refusal> {
    let kind = LinkKind::MagicLink;
    let mut tx = ctx.store.begin().await?;
    let Some(user) = take(&mut tx, op, kind, token).await? else {
        tx.rollback().await?;
        return Err(refuse(ctx, op, kind).await?);
    };
    let summary = json!({"email": user.email, "method": kind.name()});
    start_session(ctx, op, tx, &user, summary).await
}

/// What completing a password reset came to.
#[derive(Debug)]
pub enum Reset {
    /// The password is changed, every other session ended; this is the new session.
    Done(Grant),
    /// The new password breaks the policy (the link is not used up).
    Weak(CoreError),
}

/// Sets a new password with a reset link: once, within 30 minutes. Ends every other session
/// and every other live link of the person, then signs them in.
pub async fn reset_password(
    ctx: &Ctx,
    op: &Op,
    token: &str,
    password: String,
) -> Result<Reset, Refusal> {
    let kind = LinkKind::PasswordReset;
    // Who the link is for, without using it up, to check the password against the policy.
    let mut tx = ctx.store.begin_read().await?;
    let holder = match token::well_formed(token, kind.prefix()) {
        true => {
            tx.email_link_holder(kind.purpose(), &token::hash(token), op.now_us())
                .await?
        }
        false => None,
    };
    let user = match holder {
        Some(id) => tx.user_by_id(id).await?,
        None => None,
    };
    tx.commit().await?;
    if let Some(user) = &user
        && let Err(p) = check_password(&password, &user.email)
    {
        return Ok(Reset::Weak(policy_error(&p)));
    }
    let hash = crate::costly::passwords()
        .hash(password)
        .await
        .map_err(|_| Refusal::Busy)??;
    let now = op.now_us();
    let mut tx = ctx.store.begin().await?;
    let Some(user) = take(&mut tx, op, kind, token).await? else {
        tx.rollback().await?;
        return Err(refuse(ctx, op, kind).await?);
    };
    tx.set_password(user.id, &hash, now).await?;
    tx.end_email_links(user.id, now).await?;
    let actor = actor_for(Some(user.id));
    let live = tx.live_device_ids(user.id, None).await?;
    let revoked = revoke_in_tx(&mut tx, ctx, op, &actor, &live, "password_reset").await?;
    let event = op.event_by(
        actor,
        "auth.password_reset",
        "user",
        Some(user.id.to_string()),
        Outcome::Success,
        json!({"email": user.email, "password": warden_domain::audit::MASK,
               "sessions_revoked": revoked.len()}),
    );
    tx.record(&ctx.audit_key, &event).await?;
    let summary = json!({"email": user.email, "method": kind.name()});
    let grant = start_session(ctx, op, tx, &user, summary).await?;
    ctx.identity.propagate(&ctx.store, ctx.clock.as_ref()).await;
    Ok(Reset::Done(grant))
}

/// Uses up a live link of `kind` and returns its active holder.
async fn take(
    tx: &mut warden_store::Tx,
    op: &Op,
    kind: LinkKind,
    token: &str,
) -> Result<Option<warden_store::identity::UserRow>, Refusal> {
    if !token::well_formed(token, kind.prefix()) {
        return Ok(None);
    }
    let Some(id) = tx
        .take_email_link(kind.purpose(), &token::hash(token), op.now_us())
        .await?
    else {
        return Ok(None);
    };
    Ok(tx.user_by_id(id).await?.filter(|u| u.active))
}

/// Records a refused link (used, superseded, expired, of another kind, mistyped) and returns
/// the refusal.
async fn refuse(ctx: &Ctx, op: &Op, kind: LinkKind) -> Result<Refusal, Refusal> {
    let mut tx = ctx.store.begin().await?;
    let event = op.event_by(
        actor_for(None),
        "auth.sign_in",
        "user",
        None,
        Outcome::Failed,
        json!({"method": kind.name(), "reason": "invalid_link"}),
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    Ok(Refusal::Invalid)
}
