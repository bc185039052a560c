//! The sign-in, refresh and revocation procedures, each one database transaction with its
//! audit events. Handlers call these; they hold no HTTP types beyond what the caller passes.

use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use uuid::Uuid;
use warden_crypto::{Context, token};
use warden_domain::audit::{Actor, ActorKind, Outcome};
use warden_domain::identity::{Principal, normalize_email};
use warden_domain::organizations::OrgId;
use warden_store::identity::{NewDevice, Rotation, RotationByHash};

use super::REFRESH_PREFIX;
use crate::{Ctx, Op};

/// A successful sign-in or refresh: what the client receives.
#[derive(Debug)]
pub struct Grant {
    /// The signed-in principal.
    pub principal: Principal,
    /// The access token.
    pub access_token: String,
    /// Its lifetime in seconds.
    pub expires_in: i64,
    /// The refresh token (shown once).
    pub refresh_token: zeroize::Zeroizing<String>,
    /// Seconds until the session's hard end.
    pub session_expires_in: i64,
}

/// Why a sign-in or refresh did not produce a grant.
#[derive(Debug)]
pub enum Refusal {
    /// Wrong email or password, unknown or spent token (401).
    Invalid,
    /// Too many failures: retry after this long (429).
    Throttled(Duration),
    /// A cookie refresh without the CSRF token of its session (403).
    Csrf,
    /// Too much password hashing is running or waiting (503, retry in a moment).
    Busy,
    /// Password sign-in is off (password-free mode) and this is not the break-glass account,
    /// or the password was wrong: the two answer alike (403).
    PasswordOff,
    /// Something broke (500); the cause is logged.
    Internal(String),
}

impl<E: std::fmt::Display> From<E> for Refusal
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn from(e: E) -> Self {
        Self::Internal(e.to_string())
    }
}

/// What a sign-in's audit event keeps of its input: the email only.
#[derive(Debug, Serialize)]
pub struct SignInSummary {
    /// As typed (normalised when valid).
    pub email: String,
    /// Never recorded.
    pub password: Option<String>,
}
warden_domain::audited!(SignInSummary {
    email: Value,
    password: Ignore
});

fn summary<T: warden_domain::audit::Audited>(input: &T) -> serde_json::Value {
    warden_domain::audit::summarize(input).unwrap_or_else(|_| json!({}))
}

/// One sign-in attempt: the account it names and the throttle scopes it counts in.
struct Attempt {
    email: String,
    /// `pair:<email>|<ip>`, `account:<email>`, `client:<ip>`.
    scopes: [String; 3],
    audit_summary: serde_json::Value,
}

impl Attempt {
    fn new(op: &Op, email: &str) -> Self {
        let email = normalize_email(email).unwrap_or_else(|_| email.trim().to_lowercase());
        let email: String = email.chars().take(254).collect();
        let ip = op.origin.ip_text().unwrap_or_else(|| "unknown".to_owned());
        Self {
            scopes: [
                format!("pair:{email}|{ip}"),
                format!("account:{email}"),
                format!("client:{ip}"),
            ],
            audit_summary: summary(&SignInSummary {
                email: email.clone(),
                password: None,
            }),
            email,
        }
    }
}

/// Signs in with email and password. Throttled per (account, client address), account and
/// client address; answers the same, after the same argon2 work, for unknown accounts.
pub async fn sign_in(ctx: &Ctx, op: &Op, email: &str, password: String) -> Result<Grant, Refusal> {
    let attempt = Attempt::new(op, email);
    let user = reserve_attempt(ctx, op, &attempt).await?;

    // The password, off the async workers and bounded (argon2id costs ~20 ms of CPU and
    // 19 MiB): past the queue, 503 at once. The reservation stays counted.
    let stored = user
        .as_ref()
        .filter(|u| u.active)
        .and_then(|u| u.password_hash.clone());
    let ok = crate::costly::passwords()
        .verify(password, stored)
        .await
        .map_err(|_| Refusal::Busy)?;
    let user_id = user.as_ref().map(|u| u.id);
    // Password-free mode: only the break-glass account may use a password, and every other
    // outcome (wrong password included) answers alike, so the account is not revealed.
    let policy = password_policy(ctx).await?;
    let may_use_password =
        policy.password_sign_in || user_id.is_some_and(|id| Some(id) == policy.break_glass_user);
    match user.filter(|_| ok) {
        Some(user) if may_use_password => open_session(ctx, op, &attempt, &user).await,
        _ if !policy.password_sign_in => {
            record_failure(
                ctx,
                op,
                &attempt,
                user_id,
                Some("password_sign_in_disabled"),
            )
            .await?;
            Err(Refusal::PasswordOff)
        }
        _ => Err(record_failure(ctx, op, &attempt, user_id, None).await?),
    }
}

async fn password_policy(ctx: &Ctx) -> Result<warden_store::sign_in::SignInPolicy, Refusal> {
    let mut tx = ctx.store.begin_read().await?;
    let policy = tx.sign_in_policy().await?;
    tx.commit().await?;
    Ok(policy)
}

/// Reserves the attempt before any password work: it counts as a failure of the pair and of
/// the account until it succeeds, in one transaction that holds their rows, so parallel
/// attempts get through no faster than one after another would. A scope already closed
/// refuses it (rolled back, so a refused attempt is not counted; audited). Returns the account.
async fn reserve_attempt(
    ctx: &Ctx,
    op: &Op,
    attempt: &Attempt,
) -> Result<Option<warden_store::identity::UserRow>, Refusal> {
    let policy = ctx.identity.throttle;
    let now_us = op.now_us();
    let scopes = &attempt.scopes;
    let mut tx = ctx.store.begin().await?;
    let mut blocked_until = tx.throttle_blocked_until(&[scopes[2].as_str()]).await?;
    if blocked_until <= now_us {
        for (scope, rule) in scopes[..2].iter().zip([policy.pair, policy.account]) {
            if let Some(until) = tx
                .throttle_reserve(scope, now_us, micros(rule.window), |n| {
                    micros(rule.delay_after(n))
                })
                .await?
            {
                blocked_until = blocked_until.max(until);
            }
        }
    }
    let user = tx.user_by_email(&attempt.email).await?;
    if blocked_until <= now_us {
        tx.commit().await?;
        return Ok(user);
    }
    tx.rollback().await?;
    let wait = Duration::from_micros(u64::try_from(blocked_until - now_us).unwrap_or(1));
    let mut tx = ctx.store.begin().await?;
    let event = op.event_by(
        actor_for(user.as_ref().map(|u| u.id)),
        "auth.sign_in",
        "user",
        user.as_ref().map(|u| u.id.to_string()),
        Outcome::Denied,
        json!({"email": attempt.email, "reason": "throttled"}),
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    Err(Refusal::Throttled(wait))
}

/// A failed attempt: the pair and the account counted it already; the client address (which
/// many accounts may share) counts it now. Audited. Returns the refusal to answer with.
async fn record_failure(
    ctx: &Ctx,
    op: &Op,
    attempt: &Attempt,
    user_id: Option<Uuid>,
    reason: Option<&str>,
) -> Result<Refusal, Refusal> {
    let rule = ctx.identity.throttle.client;
    let mut tx = ctx.store.begin().await?;
    tx.throttle_fail(&attempt.scopes[2], op.now_us(), micros(rule.window), |n| {
        micros(rule.delay_after(n))
    })
    .await?;
    let event = op.event_by(
        actor_for(user_id),
        "auth.sign_in",
        "user",
        user_id.map(|u| u.to_string()),
        Outcome::Failed,
        match reason {
            Some(reason) => {
                let mut summary = attempt.audit_summary.clone();
                summary["reason"] = json!(reason);
                summary
            }
            None => attempt.audit_summary.clone(),
        },
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    Ok(Refusal::Invalid)
}

/// A successful attempt: a new session (a new refresh-token family), always; under the
/// single-session policy the user's other sessions end.
async fn open_session(
    ctx: &Ctx,
    op: &Op,
    attempt: &Attempt,
    user: &warden_store::identity::UserRow,
) -> Result<Grant, Refusal> {
    let mut tx = ctx.store.begin().await?;
    tx.clear_throttle(&attempt.scopes[0]).await?;
    tx.clear_throttle(&attempt.scopes[1]).await?;
    start_session(ctx, op, tx, user, attempt.audit_summary.clone()).await
}

/// Opens a session for `user` in `tx` (which may hold the change that let them in, such as
/// a used sign-in link) and commits it: a new device and refresh-token family, the user's
/// other sessions ended under the single-session policy, audited as `auth.sign_in` with
/// `summary`. Every way of signing in ends here, so each gives the same session.
pub(crate) async fn start_session(
    ctx: &Ctx,
    op: &Op,
    tx: warden_store::Tx,
    user: &warden_store::identity::UserRow,
    summary: serde_json::Value,
) -> Result<Grant, Refusal> {
    let signing = begin_signing(ctx, op, user.id);
    start_session_signed(ctx, op, tx, user, summary, signing).await
}

/// An access token being signed for a session about to be written.
pub(crate) struct Signing {
    principal: Principal,
    handle: tokio::task::JoinHandle<Result<(String, i64), warden_crypto::jwt::KeyError>>,
}

/// Starts signing the access token of a new session of `user_id`: an RSA signature (0.3 ms
/// at 2048 bits, 0.8 ms at 3072) need not wait for the session's writes. The token is handed
/// out only after the commit; if the transaction fails it is dropped unseen.
pub(crate) fn begin_signing(ctx: &Ctx, op: &Op, user_id: Uuid) -> Signing {
    begin_signing_in(ctx, op, user_id, OrgId::DEFAULT)
}

/// [`begin_signing`] for a session acting in `org` from the start (a sign-in through an
/// organization's own provider).
pub(crate) fn begin_signing_in(ctx: &Ctx, op: &Op, user_id: Uuid, org: OrgId) -> Signing {
    let principal = Principal::session(user_id, Uuid::now_v7()).in_org(org);
    let identity = ctx.identity.clone();
    let p = principal.clone();
    let now = op.now;
    Signing {
        principal,
        handle: tokio::task::spawn_blocking(move || identity.issue_access_token(&p, now)),
    }
}

/// [`start_session`] with the signature already under way (`signing` is for `user`).
pub(crate) async fn start_session_signed(
    ctx: &Ctx,
    op: &Op,
    mut tx: warden_store::Tx,
    user: &warden_store::identity::UserRow,
    summary: serde_json::Value,
    signing: Signing,
) -> Result<Grant, Refusal> {
    if signing.principal.user_id != user.id {
        return Err(Refusal::Internal(
            "a token signed for another account".into(),
        ));
    }
    let id = &ctx.identity;
    let now_us = op.now_us();
    let lifetime = i64::try_from(id.config.session_lifetime.as_micros()).unwrap_or(i64::MAX);
    let Signing {
        principal,
        handle: signing,
    } = signing;
    let session_id = principal.session_id;
    tx.create_device(&NewDevice {
        id: session_id,
        user_id: user.id,
        now: now_us,
        absolute_expires_at: now_us + lifetime,
        user_agent: op.origin.user_agent.as_deref(),
        ip: op.origin.ip_text().as_deref(),
    })
    .await?;
    if let Some(org) = principal.organization.filter(|o| !o.is_default()) {
        tx.set_session_org(session_id, user.id, org).await?;
    }
    let refresh = token::issue(REFRESH_PREFIX)?;
    tx.insert_refresh_token(
        Uuid::now_v7(),
        session_id,
        &refresh.hash,
        now_us,
        op.origin.ip_text().as_deref(),
    )
    .await?;
    let actor = actor_for(Some(user.id));
    let mut revoked_any = false;
    // The licence's `multiple-active-sessions` feature must allow it too.
    if !id.config.multiple_active_sessions
        || !ctx
            .license
            .feature(warden_domain::license::Feature::MultipleActiveSessions)
    {
        let others = tx.live_device_ids(user.id, Some(session_id)).await?;
        let revoked =
            revoke_in_tx(&mut tx, ctx, op, &actor, &others, "single_session_policy").await?;
        revoked_any = !revoked.is_empty();
    }
    let event = op.event_by(
        actor,
        "auth.sign_in",
        "session",
        Some(session_id.to_string()),
        Outcome::Success,
        summary,
    );
    tx.record(&ctx.audit_key, &event).await?;
    let unfamiliar = super::origins::note(ctx, op, &mut tx, user)
        .await
        .map_err(|e| Refusal::Internal(e.detail.to_owned()))?;
    tx.commit().await?;
    if unfamiliar {
        ctx.mail.wake();
    }
    if revoked_any {
        id.propagate(&ctx.store, ctx.clock.as_ref()).await;
    }
    if warden_crypto::password::needs_rehash(user.password_hash.as_deref().unwrap_or_default()) {
        tracing::info!("password hash uses old parameters; it is replaced at the next change");
    }
    let (access_token, expires_in) = signing.await??;
    Ok(Grant {
        principal,
        access_token,
        expires_in,
        refresh_token: refresh.secret,
        session_expires_in: lifetime / 1_000_000,
    })
}

/// Signs the access token on the blocking pool: an RSA signature takes a few hundred
/// microseconds of CPU, too long to hold an async worker that other requests are waiting on.
async fn sign_access_token(
    ctx: &Ctx,
    principal: &Principal,
    now: time::OffsetDateTime,
) -> Result<(String, i64), Refusal> {
    let identity = ctx.identity.clone();
    let principal = principal.clone();
    Ok(tokio::task::spawn_blocking(move || identity.issue_access_token(&principal, now)).await??)
}

pub(super) fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

pub(crate) fn actor_for(user: Option<Uuid>) -> Actor {
    match user {
        Some(id) => Actor {
            kind: ActorKind::User,
            id: Some(id.to_string()),
        },
        None => Actor {
            kind: ActorKind::User,
            id: None,
        },
    }
}

pub(crate) fn successor_context(id: Uuid) -> Context {
    Context::new("warden.refresh_successor").with(id.as_bytes())
}

/// A new refresh token, its id, and its secret sealed for the grace window.
fn successor(ctx: &Ctx) -> Result<(token::Issued, Uuid, Vec<u8>), Refusal> {
    let next = token::issue(REFRESH_PREFIX)?;
    let id = Uuid::now_v7();
    let sealed = ctx
        .keyring
        .seal(&successor_context(id), next.secret.as_bytes())?;
    Ok((next, id, sealed))
}

/// Exchanges a refresh token for a new access token and a new refresh token. A token that
/// was already rotated is reuse: its whole family (and only it) is revoked, unless the
/// rotation is within the grace window, when the same successor is handed out again.
/// `csrf` is the CSRF token presented with a cookie refresh (`None` for bearer clients).
pub async fn refresh(
    ctx: &Ctx,
    op: &Op,
    presented: &str,
    csrf: Option<Option<&str>>,
) -> Result<Grant, Refusal> {
    if !token::well_formed(presented, REFRESH_PREFIX) {
        return Err(Refusal::Invalid);
    }
    let hash = token::hash(presented);
    // Bearer clients: the common case is one statement. Cookie refreshes first check the
    // CSRF token against the session, so they take the path below.
    if csrf.is_none()
        && let Some(grant) = fast_refresh(ctx, op, &hash).await?
    {
        return Ok(grant);
    }
    // A lost race re-reads at most twice: the second read sees the winner's rotation.
    for _ in 0..3 {
        if let Some(grant) = try_refresh(ctx, op, &hash, csrf).await? {
            return Ok(grant);
        }
    }
    Err(Refusal::Internal("refresh kept losing races".to_owned()))
}

/// Rotates an unrotated token of a live session in one statement; `None` if that is not
/// the case (then the full path decides: grace window, reuse, or invalid).
async fn fast_refresh(ctx: &Ctx, op: &Op, hash: &[u8]) -> Result<Option<Grant>, Refusal> {
    let id = &ctx.identity;
    let now = op.now;
    let now_us = op.now_us();
    let idle = i64::try_from(id.config.session_idle.as_micros()).unwrap_or(i64::MAX);
    let (next, next_id, sealed) = successor(ctx)?;
    let ip = op.origin.ip_text();
    let Some(rotated) = ctx
        .store
        .rotate_refresh_by_hash(&RotationByHash {
            id: next_id,
            parent_hash: hash,
            hash: &next.hash,
            now: now_us,
            idle_cutoff: now_us.saturating_sub(idle),
            ip: ip.as_deref(),
            user_agent: op.origin.user_agent.as_deref(),
            sealed_secret: &sealed,
        })
        .await?
    else {
        return Ok(None);
    };
    let principal = Principal::session(rotated.user_id, rotated.session_id)
        .in_org(session_org(rotated.organization_id));
    let (access_token, expires_in) = sign_access_token(ctx, &principal, now).await?;
    Ok(Some(Grant {
        principal,
        access_token,
        expires_in,
        refresh_token: next.secret,
        session_expires_in: (rotated.absolute_expires_at - now_us) / 1_000_000,
    }))
}

/// One attempt; `Ok(None)` when a concurrent rotation won between our read and our write.
async fn try_refresh(
    ctx: &Ctx,
    op: &Op,
    hash: &[u8],
    csrf: Option<Option<&str>>,
) -> Result<Option<Grant>, Refusal> {
    let id = &ctx.identity;
    let now = op.now;
    let now_us = op.now_us();
    let idle = i64::try_from(id.config.session_idle.as_micros()).unwrap_or(i64::MAX);
    let grace = i64::try_from(id.config.refresh_grace.as_micros()).unwrap_or(0);

    let Some(row) = ctx.store.refresh_token(hash).await? else {
        return Err(Refusal::Invalid);
    };
    if let Some(presented_csrf) = csrf
        && !presented_csrf.is_some_and(|c| id.csrf_matches(row.session_id, c))
    {
        return Err(Refusal::Csrf);
    }
    let alive = row.revoked_at.is_none()
        && row.active
        && row.absolute_expires_at > now_us
        && row.last_used_at + idle > now_us;
    if !alive {
        return Err(Refusal::Invalid);
    }
    let principal =
        Principal::session(row.user_id, row.session_id).in_org(session_org(row.organization_id));
    let secret = match row.rotated_at {
        None => {
            let (next, next_id, sealed) = successor(ctx)?;
            let ip = op.origin.ip_text();
            let rotated = ctx
                .store
                .rotate_refresh_token(&Rotation {
                    id: next_id,
                    session_id: row.session_id,
                    parent_id: row.id,
                    hash: &next.hash,
                    now: now_us,
                    ip: ip.as_deref(),
                    user_agent: op.origin.user_agent.as_deref(),
                    sealed_secret: &sealed,
                })
                .await?;
            if !rotated {
                return Ok(None);
            }
            next.secret
        }
        Some(rotated) if now_us - rotated <= grace => {
            // A genuine race of one client (two tabs, a retry) gets the same successor; the
            // same token from another client is a stolen copy.
            if !same_client(op, &row) {
                end_family(ctx, op, &row, "grace_replay_from_another_client").await?;
                return Err(Refusal::Invalid);
            }
            let (Some(next_id), Some(sealed)) = (row.successor_id, row.successor_sealed.clone())
            else {
                return Err(Refusal::Invalid);
            };
            let opened = ctx.keyring.open(&successor_context(next_id), &sealed)?;
            let mut tx = ctx.store.begin().await?;
            let event = op.event_by(
                actor_for(Some(row.user_id)),
                "auth.refresh_grace_reissued",
                "session",
                Some(row.session_id.to_string()),
                Outcome::Success,
                json!({"token_id": row.id.to_string(), "after_ms": (now_us - rotated) / 1_000}),
            );
            tx.record(&ctx.audit_key, &event).await?;
            tx.commit().await?;
            zeroize::Zeroizing::new(String::from_utf8(opened.to_vec())?)
        }
        Some(_) => {
            // Reuse of a rotated token: someone holds a stolen copy. End the family.
            end_family(ctx, op, &row, "refresh_reuse").await?;
            return Err(Refusal::Invalid);
        }
    };
    let (access_token, expires_in) = sign_access_token(ctx, &principal, now).await?;
    Ok(Some(Grant {
        principal,
        access_token,
        expires_in,
        refresh_token: secret,
        session_expires_in: (row.absolute_expires_at - now_us) / 1_000_000,
    }))
}

/// Whether a replay of a rotated token comes from the client that rotated it: the same
/// address and the same user agent. (Within a window of a second or two a genuine client
/// does not move; a neighbour on its network is not it.)
fn same_client(op: &Op, row: &warden_store::identity::RefreshRow) -> bool {
    let here = op.origin.ip.map(|ip| ip.to_canonical());
    let there = row
        .successor_ip
        .as_deref()
        .and_then(|t| t.parse::<std::net::IpAddr>().ok())
        .map(|ip| ip.to_canonical());
    here.is_some() && here == there && op.origin.user_agent == row.successor_user_agent
}

/// A stolen refresh token was presented: ends its whole family (and only it), audited with
/// `why`, and makes every node apply it before answering.
async fn end_family(
    ctx: &Ctx,
    op: &Op,
    row: &warden_store::identity::RefreshRow,
    why: &'static str,
) -> Result<(), Refusal> {
    let mut tx = ctx.store.begin().await?;
    let thief_or_owner = actor_for(Some(row.user_id));
    let revoked = revoke_in_tx(
        &mut tx,
        ctx,
        op,
        &thief_or_owner,
        &[row.session_id],
        "refresh_reuse",
    )
    .await?;
    let event = op.event_by(
        actor_for(Some(row.user_id)),
        "auth.refresh_reuse_detected",
        "session",
        Some(row.session_id.to_string()),
        Outcome::Denied,
        json!({"token_id": row.id.to_string(), "family_revoked": !revoked.is_empty(),
               "reason": why}),
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    ctx.identity.propagate(&ctx.store, ctx.clock.as_ref()).await;
    Ok(())
}

/// Inside the caller's transaction: revokes those of `sessions` still live and records a
/// `session.revoked` event for each (with the reason and the requesting address). Every
/// revocation goes through here, so each one is audited the same way.
pub async fn revoke_in_tx(
    tx: &mut warden_store::Tx,
    ctx: &Ctx,
    op: &Op,
    actor: &Actor,
    sessions: &[Uuid],
    reason: &'static str,
) -> Result<Vec<Uuid>, warden_store::StoreError> {
    let (revoked, _) = tx
        .revoke_devices(
            sessions,
            op.now_us(),
            reason,
            op.origin.ip_text().as_deref(),
        )
        .await?;
    for sid in &revoked {
        let event = op.event_by(
            actor.clone(),
            "session.revoked",
            "session",
            Some(sid.to_string()),
            Outcome::Success,
            json!({ "reason": reason }),
        );
        tx.record(&ctx.audit_key, &event).await?;
    }
    Ok(revoked)
}

/// Revokes sessions with an audit event for each, then makes sure every node applied it.
/// `owner` restricts the revocation to that user's sessions. Returns the ids revoked.
pub async fn revoke(
    ctx: &Ctx,
    op: &Op,
    sessions: &[Uuid],
    reason: &'static str,
) -> Result<Vec<Uuid>, Refusal> {
    let mut tx = ctx.store.begin().await?;
    let revoked = revoke_in_tx(&mut tx, ctx, op, &op.actor, sessions, reason).await?;
    tx.commit().await?;
    if !revoked.is_empty() {
        ctx.identity.propagate(&ctx.store, ctx.clock.as_ref()).await;
    }
    Ok(revoked)
}

impl From<Refusal> for crate::CoreError {
    /// Outside sign-in and refresh (which answer for themselves), a refusal means the
    /// caller's own session is no longer valid.
    fn from(r: Refusal) -> Self {
        use crate::{Code, CoreError};
        match r {
            Refusal::Internal(cause) => CoreError::internal(&cause),
            Refusal::Busy => CoreError::busy(),
            Refusal::Throttled(wait) => CoreError::too_many_attempts(wait),
            Refusal::Csrf => Code::CsrfRefused.into(),
            Refusal::Invalid => Code::Unauthenticated.into(),
            Refusal::PasswordOff => Code::PasswordSignInDisabled.into(),
        }
    }
}

/// The organization a stored session acts in (`NULL`: the default one).
fn session_org(stored: Option<Uuid>) -> OrgId {
    stored.map_or(OrgId::DEFAULT, OrgId::from_uuid)
}
