//! SCIM 2.0 provisioning (RFC 7643/7644): a directory such as Entra ID or Okta creates,
//! updates, deactivates and deletes accounts and groups at `/scim/v2`.
//!
//! The directory authenticates with a bearer token (`wdn_scim_…`) an administrator created;
//! only its SHA-256 is stored, and every failure is the same 401. Every change is audited
//! with the token as the actor (`api_key` `scim:<token id>`). Deactivating an account
//! (`active: false`) or deleting it ends its device sessions and personal access tokens at
//! once, on every node; its gateway keys stop with it (they hold only for active users).
//! Deleting keeps the account (deactivated) for the audit trail; the directory no longer
//! sees it.
//!
//! A directory belongs to one organization (multi-tenant mode): its token is made by an
//! administrator acting there, and it sees and changes only the accounts and groups it
//! provisioned there — another organization's are unknown to it (404). An account it creates
//! joins the organization as a member; it adopts an existing account only if that account
//! already belongs to the organization.
//!
//! A token a node has read is trusted from its memory for at most a minute ([`TokenCache`]),
//! so a directory's burst of requests costs no token read each; revoking a token goes
//! through the revocation log, so every node refuses it on the next request all the same.

pub mod discovery;
pub mod groups;
pub mod model;
pub mod patch;
pub mod search;
pub mod users;
pub mod workspaces;

use std::collections::HashMap;
use std::sync::RwLock;

use serde_json::json;
use uuid::Uuid;
use warden_domain::audit::{Actor, ActorKind};
use warden_domain::organizations::OrgId;
use warden_store::scim::ScimTokenRow;
use warden_store::tenancy::PlatformGrant;
use zeroize::Zeroizing;

use crate::{Code, CoreError, CoreResult, Ctx, Op};

/// Prefix of directory tokens.
pub const TOKEN_PREFIX: &str = "wdn_scim_";
/// The path SCIM is served under.
pub const ROOT: &str = "/scim/v2";
/// The most resources one page holds.
pub const MAX_RESULTS: i64 = 200;
/// A page's size when the directory does not ask.
pub const DEFAULT_COUNT: i64 = 100;

/// How long a node trusts a token it has read: well within the time a revoked id stays in
/// the revocation state every node keeps (the access-token lifetime, five minutes at least).
const CACHE_US: i64 = 60_000_000;
/// Tokens one node remembers; past it the expired ones go, then all.
const CACHE_CAPACITY: usize = 1_000;

/// This node's directory tokens read from the database, by their secret's SHA-256: the
/// token's id, its organization and until when it is trusted without reading it again.
#[derive(Default)]
pub struct TokenCache {
    entries: RwLock<HashMap<[u8; 32], (ScimClient, i64)>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenCache")
    }
}

impl TokenCache {
    fn get(&self, hash: &[u8; 32], now: i64) -> Option<ScimClient> {
        let entries = self.entries.read().ok()?;
        entries
            .get(hash)
            .filter(|(_, until)| now < *until)
            .map(|(client, _)| client.clone())
    }

    fn remember(&self, hash: [u8; 32], client: ScimClient, now: i64) {
        let Ok(mut entries) = self.entries.write() else {
            return;
        };
        if entries.len() >= CACHE_CAPACITY {
            entries.retain(|_, (_, until)| now < *until);
            if entries.len() >= CACHE_CAPACITY {
                entries.clear();
            }
        }
        entries.insert(hash, (client, now + CACHE_US));
    }
}

/// The directory behind a request.
#[derive(Debug, Clone)]
pub struct ScimClient {
    /// The token's id.
    pub token_id: Uuid,
    /// The organization whose directory it is.
    pub organization: OrgId,
}

impl ScimClient {
    /// Who acts in the audit trail.
    pub fn actor(&self) -> Actor {
        Actor {
            kind: ActorKind::ApiKey,
            id: Some(format!("scim:{}", self.token_id)),
        }
    }
}

/// The SCIM root URL links are built on (from `public_url`, never from the request).
pub fn base(ctx: &Ctx) -> String {
    format!("{}{ROOT}", ctx.public_url.trim_end_matches('/'))
}

/// Finds the token a directory presented: from this node's memory when it read it less than
/// a minute ago, else from the database. Every failure — malformed, unknown, revoked — is the
/// same 401; a revocation on any node is in the revocation state before its request answers.
pub async fn authenticate(ctx: &Ctx, presented: &str, now: i64) -> CoreResult<ScimClient> {
    if !warden_crypto::token::checked_well_formed(presented, TOKEN_PREFIX) {
        return Err(Code::Unauthenticated.into());
    }
    let hash = warden_crypto::token::hash(presented);
    let client = match ctx.scim_tokens.get(&hash, now) {
        Some(client) => client,
        None => {
            let mut tx = ctx.store.begin_read().await?;
            let row = tx.scim_token_by_hash(&hash).await?;
            tx.commit().await?;
            let row = row.ok_or(Code::Unauthenticated)?;
            // The last use, to within a minute: a write only when the recorded one is older.
            if row.last_used_at.is_none_or(|t| t < now - 60_000_000) {
                let mut tx = ctx.store.begin().await?;
                tx.touch_scim_token(row.id, now).await?;
                tx.commit().await?;
            }
            let client = ScimClient {
                token_id: row.id,
                organization: OrgId::from_uuid(row.organization_id),
            };
            ctx.scim_tokens.remember(hash, client.clone(), now);
            client
        }
    };
    if ctx.identity.revocations.is_session_revoked(client.token_id) {
        return Err(Code::Unauthenticated.into());
    }
    Ok(client)
}

/// A new token with its secret, shown once.
pub struct NewToken {
    /// The stored token.
    pub row: ScimTokenRow,
    /// The secret.
    pub secret: Zeroizing<String>,
}

impl std::fmt::Debug for NewToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewToken")
            .field("row", &self.row)
            .finish_non_exhaustive()
    }
}

/// Creates a directory token for the organization the administrator acts in.
pub async fn create_token(
    ctx: &Ctx,
    op: &Op,
    grant: &PlatformGrant,
    name: &str,
) -> CoreResult<NewToken> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(CoreError::invalid(
            "name",
            "name must be 1 to 100 characters on one line",
        ));
    }
    let issued =
        warden_crypto::token::issue_checked(TOKEN_PREFIX).map_err(|e| CoreError::internal(&e))?;
    let row = ScimTokenRow {
        id: Uuid::now_v7(),
        name: name.to_owned(),
        organization_id: grant.organization().uuid(),
        created_by: grant.user_id(),
        created_at: op.now_us(),
        last_used_at: None,
        revoked_at: None,
    };
    let mut tx = ctx.store.begin().await?;
    tx.insert_scim_token(&row, &issued.hash).await?;
    let event = op.event(
        "scim_token.created",
        "scim_token",
        Some(row.id.to_string()),
        json!({ "name": row.name, "organization_id": row.organization_id.to_string() }),
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    Ok(NewToken {
        row,
        secret: issued.secret,
    })
}

/// The directory tokens of the organization the administrator acts in, newest first.
pub async fn tokens(ctx: &Ctx, grant: &PlatformGrant) -> CoreResult<Vec<ScimTokenRow>> {
    let mut tx = ctx.store.begin_read().await?;
    let rows = tx.scim_tokens(grant.organization()).await?;
    tx.commit().await?;
    Ok(rows)
}

/// Revokes a token at once; 404 unless it is live and of the organization the administrator
/// acts in.
pub async fn revoke_token(ctx: &Ctx, op: &Op, grant: &PlatformGrant, id: &str) -> CoreResult<()> {
    let id = id.parse::<Uuid>().map_err(|_| Code::NotFound)?;
    let mut tx = ctx.store.begin().await?;
    if !tx
        .revoke_scim_token(grant.organization(), id, op.now_us())
        .await?
    {
        return Err(Code::NotFound.into());
    }
    // Every node that trusts it from memory learns it through the log.
    tx.log_revocation("session", id, op.now_us()).await?;
    let event = op.event(
        "scim_token.revoked",
        "scim_token",
        Some(id.to_string()),
        json!({}),
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    ctx.identity.propagate(&ctx.store, ctx.clock.as_ref()).await;
    Ok(())
}

/// Which page a list asks for: SCIM's 1-based `startIndex` and `count`, clamped as RFC 7644
/// says (below 1 is 1; a negative count is 0; above [`MAX_RESULTS`] is that).
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    /// 1-based.
    pub start_index: i64,
    /// At most this many.
    pub count: i64,
}

impl Paging {
    /// From the query's values.
    pub fn new(start_index: Option<i64>, count: Option<i64>) -> Self {
        Self {
            start_index: start_index.unwrap_or(1).max(1),
            count: count.unwrap_or(DEFAULT_COUNT).clamp(0, MAX_RESULTS),
        }
    }
}

/// A page of resources as SCIM JSON.
#[derive(Debug)]
pub struct Listed {
    /// How many match in all.
    pub total: i64,
    /// Where the page starts (1-based).
    pub start_index: i64,
    /// The page.
    pub resources: Vec<serde_json::Value>,
}

/// A resource id from a path: one that does not parse names nothing.
pub(crate) fn id_of(id: &str) -> CoreResult<Uuid> {
    id.parse().map_err(|_| Code::NotFound.into())
}

/// A unique column refused a row (two clients racing for one name): 409 `uniqueness`.
pub(crate) fn unique(e: warden_store::StoreError) -> CoreError {
    if e.is_unique_violation() {
        Code::ScimUniqueness.into()
    } else {
        e.into()
    }
}

/// Checks `If-Match` against the current version (`*` matches any).
pub fn check_version(if_match: Option<&str>, version: i64) -> CoreResult<()> {
    let Some(want) = if_match else { return Ok(()) };
    let current = model::etag(version);
    let ok = want.split(',').map(str::trim).any(|t| {
        t == "*" || t == current || t.trim_start_matches("W/") == current.trim_start_matches("W/")
    });
    if ok {
        Ok(())
    } else {
        Err(Code::ScimVersionMismatch.into())
    }
}
