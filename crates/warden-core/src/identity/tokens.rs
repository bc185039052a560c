//! Personal access tokens: a user's bearer credentials for scripts and automation.
//!
//! - Shown once, in the checked form `wdn_pat_…` (secret scanners recognise it and confirm a
//!   find by its checksum), stored as a SHA-256 and looked up by it.
//! - Limited to a set of permissions (a subset of the creator's own when created) and
//!   optionally one workspace. On every request the access guard intersects them with the
//!   owner's *current* grants, so a role downgrade narrows existing tokens at once.
//! - Revoked through the revocation log with the token's id as its session: every node
//!   refuses it on the next request, exactly like a device session. Deactivating a user and
//!   an administrator's "revoke everything" end their tokens too.
//! - A token cannot create tokens, change its owner's credentials or approve sign-ins
//!   ([`require_session`]).
//! - Verified tokens are cached per node for at most a minute (shorter than the revocation
//!   log keeps a revoked id in memory), so a hot token costs no database read; the use is
//!   noted (last used, address) at most once a minute per node, and a new address is audited.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde_json::json;
use uuid::Uuid;
use warden_domain::access::{Permission, PermissionSet};
use warden_domain::audit::{Actor, ActorKind};
use warden_domain::identity::{
    PAT_MAX_ACTIVE, PAT_MAX_DAYS, PAT_MIN_DAYS, PAT_PREFIX, Principal, TokenLimits,
};
use warden_domain::organizations::OrgId;
use warden_domain::tenancy::WorkspaceId;
use warden_store::personal_tokens::PersonalTokenRow;
use warden_store::tenancy::PlatformGrant;
use zeroize::Zeroizing;

use crate::identity::flows;
use crate::{Code, CoreError, CoreResult, Ctx, Op};

const DAY_US: i64 = 86_400_000_000;
/// How long a verified token is trusted without reading the database (µs).
const CACHE_US: i64 = 60_000_000;
/// How often a use is written down per token and node, at most (µs).
const NOTE_EVERY_US: i64 = 60_000_000;
const CACHE_CAPACITY: usize = 50_000;
/// Ended tokens stay listed this long.
const LISTED_AFTER_END_US: i64 = 30 * DAY_US;

/// Refuses the request when it carries a personal access token: what follows needs a person
/// who signed in.
pub fn require_session(principal: &Principal) -> CoreResult<()> {
    if principal.is_token() {
        return Err(Code::SessionRequired.into());
    }
    Ok(())
}

/// What a new token should be.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// A name for the owner to recognise it by.
    pub name: String,
    /// Permission names.
    pub permissions: Vec<String>,
    /// The one workspace it may reach, if any.
    pub workspace_id: Option<String>,
    /// Lifetime in days (7 to 365).
    pub expires_in_days: u32,
}

/// A token just made: the stored row, and the secret (shown once).
pub struct Created {
    /// What is stored.
    pub row: PersonalTokenRow,
    /// The secret.
    pub secret: Zeroizing<String>,
}

impl std::fmt::Debug for Created {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Created")
            .field("row", &self.row)
            .finish_non_exhaustive()
    }
}

/// Creates a token for the signed-in user.
pub async fn create(
    ctx: &Ctx,
    op: &Op,
    principal: &Principal,
    input: NewToken,
) -> CoreResult<Created> {
    require_session(principal)?;
    let name = input.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(CoreError::invalid(
            "name",
            "Give the token a name of 1 to 100 characters.",
        ));
    }
    if !(PAT_MIN_DAYS..=PAT_MAX_DAYS).contains(&input.expires_in_days) {
        return Err(CoreError::invalid(
            "expires_in_days",
            "A token expires after 7 to 365 days.",
        ));
    }
    let permissions = PermissionSet::parse(input.permissions.iter().map(String::as_str))
        .map_err(|_| CoreError::invalid("permissions", "Unknown permission name."))?;
    if permissions == PermissionSet::EMPTY {
        return Err(CoreError::invalid(
            "permissions",
            "Name at least one permission.",
        ));
    }
    let workspace = match input.workspace_id.as_deref() {
        None => None,
        Some(w) => Some(
            WorkspaceId::parse(w)
                .ok_or_else(|| CoreError::new(Code::NotFound).on_field("workspace_id"))?,
        ),
    };
    let held = held_permissions(ctx, principal, workspace).await?;
    if !permissions.is_subset(held) {
        return Err(Code::PermissionNotHeld.into());
    }
    let issued =
        warden_crypto::token::issue_checked(PAT_PREFIX).map_err(|e| CoreError::internal(&e))?;
    let now = op.now_us();
    let row = PersonalTokenRow {
        id: Uuid::now_v7(),
        user_id: principal.user_id,
        name,
        permissions: permissions.names().join(" "),
        workspace_id: workspace.map(WorkspaceId::uuid),
        created_at: now,
        expires_at: now + i64::from(input.expires_in_days) * DAY_US,
        last_used_at: None,
        last_used_ip: None,
        revoked_at: None,
        revoked_reason: None,
        organization_id: principal.organization.unwrap_or(OrgId::DEFAULT).uuid(),
    };
    let mut tx = ctx.store.begin().await?;
    // Counted where the token is added, under the owner's row lock on PostgreSQL, so parallel
    // requests cannot pass the cap together.
    tx.lock_user_tokens(principal.user_id).await?;
    if tx
        .count_live_personal_tokens(principal.user_id, now)
        .await?
        >= PAT_MAX_ACTIVE
    {
        return Err(Code::TokenLimitReached.into());
    }
    tx.insert_personal_token(&row, &issued.hash).await?;
    let event = op.event(
        "personal_token.created",
        "personal_token",
        Some(row.id.to_string()),
        json!({
            "name": row.name,
            "permissions": row.permissions,
            "workspace_id": row.workspace_id.map(|w| w.to_string()),
            "expires_at": crate::op::rfc3339(row.expires_at),
        }),
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    Ok(Created {
        row,
        secret: issued.secret,
    })
}

/// What the user holds now: their platform grants, plus their role's grants in `workspace`
/// (or in any of their workspaces, for a token not bound to one).
async fn held_permissions(
    ctx: &Ctx,
    principal: &Principal,
    workspace: Option<WorkspaceId>,
) -> CoreResult<PermissionSet> {
    let platform = ctx.store.platform_permissions(principal.user_id).await?;
    let memberships = ctx
        .store
        .my_workspaces(principal, None, 1000, false)
        .await?;
    let mut held = platform;
    let mut visible = false;
    for w in memberships {
        let Some(role) = w
            .my_role
            .as_deref()
            .and_then(warden_domain::access::WorkspaceRole::parse)
        else {
            continue;
        };
        if workspace.is_none_or(|id| id.uuid() == w.id) {
            held = held.union(role.grants());
            visible = true;
        }
    }
    if let Some(id) = workspace
        && !visible
    {
        // Not a member: only someone who sees every workspace may name it, and it must exist.
        ctx.store
            .authorize(principal, id, Permission::WORKSPACES_READ)
            .await
            .map_err(|_| CoreError::new(Code::NotFound).on_field("workspace_id"))?;
    }
    Ok(held)
}

/// The user's tokens: live ones and those ended in the last 30 days, newest first.
pub async fn mine(ctx: &Ctx, op: &Op, principal: &Principal) -> CoreResult<Vec<PersonalTokenRow>> {
    list(ctx, op, Some(principal.user_id)).await
}

/// Every user's tokens (or one user's), for an administrator.
pub async fn all(
    ctx: &Ctx,
    op: &Op,
    _admin: &PlatformGrant,
    user: Option<&str>,
) -> CoreResult<Vec<PersonalTokenRow>> {
    let user = match user {
        None => None,
        Some(u) => Some(crate::admin::user_id(u)?),
    };
    list(ctx, op, user).await
}

async fn list(ctx: &Ctx, op: &Op, user: Option<Uuid>) -> CoreResult<Vec<PersonalTokenRow>> {
    let mut tx = ctx.store.begin_read().await?;
    let rows = tx
        .personal_tokens(user, op.now_us() - LISTED_AFTER_END_US)
        .await?;
    tx.commit().await?;
    Ok(rows)
}

/// Revokes one of the user's own tokens; 404 when it is not theirs.
pub async fn revoke_mine(ctx: &Ctx, op: &Op, principal: &Principal, id: &str) -> CoreResult<()> {
    require_session(principal)?;
    revoke_one(ctx, op, Some(principal.user_id), id, "owner_revoked").await
}

/// Revokes anyone's token, as an administrator.
pub async fn revoke_any(ctx: &Ctx, op: &Op, _admin: &PlatformGrant, id: &str) -> CoreResult<()> {
    revoke_one(ctx, op, None, id, "admin_revoked").await
}

async fn revoke_one(
    ctx: &Ctx,
    op: &Op,
    owner: Option<Uuid>,
    id: &str,
    reason: &'static str,
) -> CoreResult<()> {
    let id: Uuid = id.parse().map_err(|_| Code::NotFound)?;
    let mut tx = ctx.store.begin().await?;
    let row = tx.personal_token(id).await?.ok_or(Code::NotFound)?;
    if owner.is_some_and(|o| o != row.user_id) {
        return Err(Code::NotFound.into());
    }
    let revoked = revoke_in_tx(&mut tx, ctx, op, &[id], reason).await?;
    tx.commit().await?;
    if !revoked.is_empty() {
        ctx.identity.propagate(&ctx.store, ctx.clock.as_ref()).await;
    }
    Ok(())
}

/// Inside the caller's transaction: revokes every unrevoked token of `user` (deactivation,
/// a password reset, "revoke everything"). Returns how many.
pub async fn revoke_all_of(
    tx: &mut warden_store::Tx,
    ctx: &Ctx,
    op: &Op,
    user: Uuid,
    reason: &'static str,
) -> Result<usize, warden_store::StoreError> {
    let ids = tx.unrevoked_personal_token_ids(user).await?;
    Ok(revoke_in_tx(tx, ctx, op, &ids, reason).await?.len())
}

async fn revoke_in_tx(
    tx: &mut warden_store::Tx,
    ctx: &Ctx,
    op: &Op,
    ids: &[Uuid],
    reason: &'static str,
) -> Result<Vec<Uuid>, warden_store::StoreError> {
    let (revoked, _) = tx.revoke_personal_tokens(ids, op.now_us(), reason).await?;
    for id in &revoked {
        let event = op.event(
            "personal_token.revoked",
            "personal_token",
            Some(id.to_string()),
            json!({ "reason": reason }),
        );
        tx.record(&ctx.audit_key, &event).await?;
    }
    Ok(revoked)
}

/// Ends every device session and every token of a user, at once, on every node.
pub async fn revoke_everything(
    ctx: &Ctx,
    op: &Op,
    grant: &PlatformGrant,
    user: &str,
) -> CoreResult<(usize, usize)> {
    let user = crate::admin::user_id(user)?;
    let mut tx = ctx.store.begin().await?;
    crate::admin::may_act_on(&mut tx, grant, user).await?;
    let live = tx.live_device_ids(user, None).await?;
    let sessions =
        flows::revoke_in_tx(&mut tx, ctx, op, &op.actor, &live, "admin_revoked_all").await?;
    let tokens = revoke_all_of(&mut tx, ctx, op, user, "admin_revoked_all").await?;
    tx.commit().await?;
    ctx.identity.propagate(&ctx.store, ctx.clock.as_ref()).await;
    Ok((sessions.len(), tokens))
}

/// A verified token in a node's cache.
struct Cached {
    principal: Principal,
    /// Trusted until (µs): a minute after it was read, or its expiry, whichever is first.
    until: i64,
    /// When the use was last written down (µs).
    noted: AtomicI64,
    /// The addresses this node has seen it used from.
    seen: Mutex<Vec<IpAddr>>,
}

/// This node's verified tokens, keyed by the secret's hash.
#[derive(Default)]
pub struct TokenCache {
    entries: RwLock<HashMap<[u8; 32], Arc<Cached>>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenCache")
    }
}

/// What authenticating a presented personal access token found.
#[derive(Debug)]
pub enum Lookup {
    /// Known, verified (not checked against revocations: the caller does that); `true` when
    /// this use should be written down ([`noticed`]).
    Valid(Principal, bool),
    /// Not in this node's cache: [`authenticate`] must read the database.
    Unknown,
    /// Malformed.
    Refused,
}

impl TokenCache {
    /// Looks a token up without touching the database.
    pub fn cached(&self, secret: &str, now_us: i64, ip: Option<IpAddr>) -> Lookup {
        if !warden_crypto::token::checked_well_formed(secret, PAT_PREFIX) {
            return Lookup::Refused;
        }
        let hash = warden_crypto::token::hash(secret);
        let hit = self
            .entries
            .read()
            .ok()
            .and_then(|e| e.get(&hash).filter(|c| now_us < c.until).cloned());
        match hit {
            Some(c) => Lookup::Valid(c.principal.clone(), c.note_due(ip, now_us)),
            None => Lookup::Unknown,
        }
    }

    fn remember(
        &self,
        hash: [u8; 32],
        principal: &Principal,
        until: i64,
        now_us: i64,
    ) -> Arc<Cached> {
        let entry = Arc::new(Cached {
            principal: principal.clone(),
            until,
            noted: AtomicI64::new(i64::MIN),
            seen: Mutex::new(Vec::new()),
        });
        let Ok(mut entries) = self.entries.write() else {
            return entry;
        };
        if entries.len() >= CACHE_CAPACITY {
            entries.retain(|_, c| now_us < c.until);
            if entries.len() >= CACHE_CAPACITY {
                entries.clear();
            }
        }
        entries.insert(hash, entry.clone());
        entry
    }
}

impl Cached {
    /// Whether this use should be written down: the first from an address this node has not
    /// seen the token used from, or the first in a minute.
    fn note_due(&self, ip: Option<IpAddr>, now_us: i64) -> bool {
        let Some(ip) = ip else { return false };
        let new_address = self.seen.lock().is_ok_and(|mut seen| {
            if seen.contains(&ip) {
                false
            } else {
                if seen.len() < 16 {
                    seen.push(ip);
                }
                true
            }
        });
        let last = self.noted.load(Ordering::Acquire);
        let due = now_us.saturating_sub(last) >= NOTE_EVERY_US
            && self
                .noted
                .compare_exchange(last, now_us, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
        new_address || due
    }
}

/// Authenticates a token this node has not cached: reads it, refuses it when revoked or
/// expired (recording the expiry once), and caches it.
/// Returns the principal and whether the use should be written down ([`noticed`]).
pub async fn authenticate(
    ctx: &Ctx,
    secret: &str,
    now_us: i64,
    ip: Option<IpAddr>,
) -> CoreResult<Option<(Principal, bool)>> {
    if !warden_crypto::token::checked_well_formed(secret, PAT_PREFIX) {
        return Ok(None);
    }
    let hash = warden_crypto::token::hash(secret);
    let mut tx = ctx.store.begin_read().await?;
    let found = tx.personal_token_by_hash(&hash).await?;
    tx.commit().await?;
    let Some((row, expiry_recorded)) = found else {
        return Ok(None);
    };
    if row.revoked_at.is_some() {
        return Ok(None);
    }
    if row.expires_at <= now_us {
        if !expiry_recorded {
            record_expiry(ctx, &row, now_us).await?;
        }
        return Ok(None);
    }
    let principal = Principal {
        user_id: row.user_id,
        session_id: row.id,
        token: Some(TokenLimits {
            permissions: PermissionSet::from_stored(row.permissions.split(' ')),
            workspace: row.workspace_id.map(WorkspaceId::from_uuid),
        }),
        organization: Some(OrgId::from_uuid(row.organization_id)),
    };
    if ctx
        .identity
        .revocations
        .is_revoked(principal.session_id, principal.user_id)
    {
        return Ok(None);
    }
    let until = (now_us + CACHE_US).min(row.expires_at);
    let entry = ctx
        .identity
        .tokens
        .remember(hash, &principal, until, now_us);
    let due = entry.note_due(ip, now_us);
    Ok(Some((principal, due)))
}

async fn record_expiry(ctx: &Ctx, row: &PersonalTokenRow, now_us: i64) -> CoreResult<()> {
    let mut tx = ctx.store.begin().await?;
    if tx.record_personal_token_expiry(row.id).await? {
        let op = system_op(ctx, row.user_id, None);
        let event = op.event(
            "personal_token.expired",
            "personal_token",
            Some(row.id.to_string()),
            json!({ "name": row.name, "expired_at": crate::op::rfc3339(row.expires_at) }),
        );
        tx.record(&ctx.audit_key, &event).await?;
    }
    tx.commit().await?;
    let _ = now_us;
    Ok(())
}

fn system_op(ctx: &Ctx, user: Uuid, ip: Option<IpAddr>) -> Op {
    Op::new(
        Actor {
            kind: ActorKind::User,
            id: Some(user.to_string()),
        },
        crate::Origin {
            ip,
            ..crate::Origin::default()
        },
        ctx.clock.as_ref(),
    )
}

/// Writes down a use of `principal`'s token from `ip` in the background: the last use and
/// its address, and an audit event the first time the token is used from that address. A
/// failure is logged, never felt by the request.
pub fn noticed(ctx: &Arc<Ctx>, principal: &Principal, ip: IpAddr, now_us: i64) {
    let ctx = ctx.clone();
    let (token, user) = (principal.session_id, principal.user_id);
    tokio::spawn(async move {
        let result: CoreResult<()> = async {
            let mut tx = ctx.store.begin().await?;
            let new_address = tx
                .note_personal_token_use(token, &ip.to_string(), now_us)
                .await?;
            if new_address {
                let op = system_op(&ctx, user, Some(ip));
                let event = op.event(
                    "personal_token.used_from_new_address",
                    "personal_token",
                    Some(token.to_string()),
                    json!({ "ip": ip.to_string() }),
                );
                tx.record(&ctx.audit_key, &event).await?;
            }
            tx.commit().await?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = ?e, "cannot note a personal access token's use");
        }
    });
}
