//! The MCP endpoint's rules: which workspaces offer it, the token an agent session is given
//! (`wdn_mcp_…`, minted at session start when the workspace offers MCP, stored as its
//! SHA-256), who that token is, and the tools it may call ([`tools`]).
//!
//! A token acts as its session's owner, within a ceiling (`tickets.read`, `tickets.create`,
//! `sessions.read`, `sessions.update`) and within its workspace: every tool call asks the
//! store for a grant exactly as a request with a personal access token does, so an owner
//! removed from the workspace, or a role that no longer allows it, ends what the agent can do.
//! It works only while its session is waiting or running, and for 7 days at most.

pub mod tools;

use serde::Serialize;
use serde_json::json;
use uuid::Uuid;
use warden_domain::access::{Permission, PermissionSet};
use warden_domain::audit::{Actor, ActorKind};
use warden_domain::identity::{Principal, TokenLimits};
use warden_domain::sessions::SessionStatus;
use warden_domain::tenancy::WorkspaceId;
use warden_store::tenancy::{WorkspaceGrant, WorkspaceTx};
use zeroize::Zeroizing;

use crate::{Code, CoreError, CoreResult, Ctx, Op};

/// Prefix of MCP tokens.
pub const TOKEN_PREFIX: &str = "wdn_mcp_";
/// The longest a token lives, even if its session runs on (µs).
const TOKEN_TTL_US: i64 = 7 * 86_400 * 1_000_000;
/// The path of the endpoint.
pub const PATH: &str = "/mcp";

/// What a token may do at most.
pub fn ceiling() -> PermissionSet {
    PermissionSet::of(&[
        Permission::TICKETS_READ,
        Permission::TICKETS_CREATE,
        Permission::SESSIONS_READ,
        Permission::SESSIONS_UPDATE,
    ])
}

/// The agent session behind a token.
#[derive(Debug, Clone)]
pub struct McpCaller {
    /// The token's id.
    pub token_id: Uuid,
    /// Its workspace.
    pub workspace: WorkspaceId,
    /// Its session.
    pub session: Uuid,
    /// The session's owner.
    pub user: Uuid,
}

impl McpCaller {
    fn principal(&self) -> Principal {
        Principal {
            user_id: self.user,
            session_id: self.token_id,
            token: Some(TokenLimits {
                permissions: ceiling(),
                workspace: Some(self.workspace),
            }),
            organization: None,
        }
    }

    /// Who acts in the audit trail: the token (its events name the session).
    pub fn actor(&self) -> Actor {
        Actor {
            kind: ActorKind::ApiKey,
            id: Some(format!("mcp:{}", self.token_id)),
        }
    }

    /// A grant for `permission` in the token's workspace, as its owner within the ceiling.
    pub(crate) async fn grant(
        &self,
        ctx: &Ctx,
        permission: Permission,
    ) -> CoreResult<WorkspaceGrant> {
        Ok(ctx
            .store
            .authorize(&self.principal(), self.workspace, permission)
            .await?)
    }
}

/// Finds the session a presented token belongs to. Every failure — malformed, unknown,
/// expired, its session ended — is the same 401.
pub async fn authenticate(ctx: &Ctx, presented: &str, now: i64) -> CoreResult<McpCaller> {
    if !warden_crypto::token::checked_well_formed(presented, TOKEN_PREFIX) {
        return Err(Code::Unauthenticated.into());
    }
    let hash = warden_crypto::token::hash(presented);
    let row = ctx
        .store
        .mcp_token_by_hash(&hash)
        .await?
        .ok_or(Code::Unauthenticated)?;
    let live = SessionStatus::parse(&row.session_status).is_some_and(|s| !s.is_final());
    if row.expires_at <= now || !live {
        return Err(Code::Unauthenticated.into());
    }
    Ok(McpCaller {
        token_id: row.id,
        workspace: WorkspaceId::from_uuid(row.workspace_id),
        session: row.session_id,
        user: row.user_id,
    })
}

/// Mints a session's token inside the session's transaction, when the workspace offers MCP.
pub(crate) async fn mint(
    tx: &mut WorkspaceTx,
    session: Uuid,
    now: i64,
) -> CoreResult<Option<Zeroizing<String>>> {
    if !tx.mcp_enabled().await? {
        return Ok(None);
    }
    let issued =
        warden_crypto::token::issue_checked(TOKEN_PREFIX).map_err(|e| CoreError::internal(&e))?;
    tx.insert_mcp_token(
        Uuid::now_v7(),
        session,
        &issued.hash,
        now,
        now + TOKEN_TTL_US,
    )
    .await?;
    Ok(Some(issued.secret))
}

/// Whether a workspace offers MCP, and where.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct McpSettings {
    /// Whether new sessions get a token and the endpoint configured.
    pub enabled: bool,
    /// The endpoint's address.
    pub url: String,
}

fn url(ctx: &Ctx) -> String {
    format!("{}{PATH}", ctx.public_url.trim_end_matches('/'))
}

/// The workspace's MCP setting.
pub async fn settings(ctx: &Ctx, grant: &WorkspaceGrant) -> CoreResult<McpSettings> {
    let mut tx = ctx.store.scoped(grant).await?;
    let enabled = tx.mcp_enabled().await?;
    tx.commit().await?;
    Ok(McpSettings {
        enabled,
        url: url(ctx),
    })
}

/// Turns MCP on or off for the workspace's new sessions (running ones keep their tokens
/// until they end).
pub async fn set_enabled(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    enabled: bool,
) -> CoreResult<McpSettings> {
    let mut tx = ctx.store.scoped(grant).await?;
    tx.set_mcp_enabled(enabled, op.now_us()).await?;
    let event = op.event(
        "workspace.mcp_changed",
        "workspace",
        Some(tx.workspace().to_string()),
        json!({ "enabled": enabled }),
    );
    tx.record(&ctx.audit_key, event).await?;
    tx.commit().await?;
    Ok(McpSettings {
        enabled,
        url: url(ctx),
    })
}
