//! Workspaces, the tenant boundary: listing, creating, renaming and archiving them. Members
//! are in [`members`], settings, secrets and prompts in [`settings`].

pub mod members;
pub mod settings;

use serde_json::{Value, json};
use uuid::Uuid;
use warden_domain::access::Permission;
use warden_domain::identity::Principal;
use warden_domain::tenancy::{Hooks, Repository, WorkspaceId, WorkspaceName};
use warden_store::tenancy::{PlatformGrant, WorkspaceGrant, WorkspaceRow};

use crate::paging::{Page, page_limit};
use crate::{Code, CoreError, CoreResult, Ctx, Op};

/// A workspace, its stored documents parsed. A stored document that does not parse is an
/// internal error, never "not set".
#[derive(Debug, Clone)]
pub struct Workspace {
    /// Id.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// Where its code lives.
    pub repository: Option<Repository>,
    /// Commands run around each agent session.
    pub hooks: Hooks,
    /// Ticket source configuration.
    pub ticket_config: Option<Value>,
    /// Creator.
    pub created_by: Uuid,
    /// Created (Unix µs).
    pub created_at: i64,
    /// Last changed (Unix µs).
    pub updated_at: i64,
    /// Archived (Unix µs); archived workspaces are read-only.
    pub archived_at: Option<i64>,
    /// The reader's own role in it, if a member.
    pub my_role: Option<String>,
}

impl TryFrom<WorkspaceRow> for Workspace {
    type Error = CoreError;

    fn try_from(w: WorkspaceRow) -> CoreResult<Self> {
        Ok(Self {
            repository: stored_document(w.repository.as_deref(), "repository")?,
            hooks: stored_document(Some(&w.hooks), "hooks")?.unwrap_or_default(),
            ticket_config: stored_document(w.ticket_config.as_deref(), "ticket_config")?,
            id: w.id,
            name: w.name,
            created_by: w.created_by,
            created_at: w.created_at,
            updated_at: w.updated_at,
            archived_at: w.archived_at,
            my_role: w.my_role,
        })
    }
}

/// Parses a JSON document stored in a workspace row.
pub(crate) fn stored_document<T: serde::de::DeserializeOwned>(
    text: Option<&str>,
    what: &'static str,
) -> CoreResult<Option<T>> {
    text.map(serde_json::from_str)
        .transpose()
        .map_err(|e| CoreError::internal(&format_args!("stored workspace {what} is corrupt: {e}")))
}

/// Which workspaces to list.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Every workspace, not only the caller's (platform `workspaces.read`; audited).
    pub all: bool,
    /// Include archived workspaces.
    pub archived: bool,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<i64>,
}

/// The caller's workspaces, or with `all` every workspace (platform `workspaces.read`,
/// audited).
pub async fn list(
    ctx: &Ctx,
    op: &Op,
    principal: &Principal,
    q: Listing,
) -> CoreResult<Page<Workspace>> {
    let limit = page_limit(q.limit)?;
    let after = match q.cursor.as_deref() {
        None => None,
        Some(c) => Some(WorkspaceId::parse(c).ok_or(Code::InvalidCursor)?),
    };
    let rows = if q.all {
        let grant = ctx
            .store
            .authorize_platform(principal, Permission::WORKSPACES_READ)
            .await?;
        let event = op.event(
            "workspace.listed_all",
            "workspace",
            None,
            json!({ "archived": q.archived, "cursor": q.cursor, "limit": limit }),
        );
        ctx.store
            .platform_wide(&grant, &ctx.audit_key, &event, after, limit, q.archived)
            .await?
    } else {
        ctx.store
            .my_workspaces(principal, after, limit, q.archived)
            .await?
    };
    let full = i64::try_from(rows.len()).unwrap_or(0) == limit;
    let next_cursor = rows.last().filter(|_| full).map(|w| w.id.to_string());
    Ok(Page {
        items: rows
            .into_iter()
            .map(Workspace::try_from)
            .collect::<CoreResult<_>>()?,
        next_cursor,
    })
}

/// Creates a workspace; the caller becomes its owner.
pub async fn create(
    ctx: &Ctx,
    op: &Op,
    grant: &PlatformGrant,
    name: &WorkspaceName,
) -> CoreResult<Workspace> {
    let mut tx = ctx
        .store
        .create_workspace(grant, name.as_str(), op.now_us())
        .await?
        .map_err(|_| CoreError::from(Code::OrgWorkspaceLimit))?;
    let event = op.event(
        "workspace.created",
        "workspace",
        Some(tx.workspace().to_string()),
        json!({ "name": name.as_str() }),
    );
    tx.record(&ctx.audit_key, event).await?;
    let row = tx.get().await?;
    tx.commit().await?;
    row.try_into()
}

/// A workspace, with its settings (never its secret values).
pub async fn get(ctx: &Ctx, grant: &WorkspaceGrant) -> CoreResult<Workspace> {
    let mut tx = ctx.store.scoped(grant).await?;
    let row = tx.get().await?;
    tx.commit().await?;
    row.try_into()
}

/// Renames a workspace.
pub async fn rename(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    name: &WorkspaceName,
) -> CoreResult<Workspace> {
    let mut tx = ctx.store.scoped(grant).await?;
    let before = tx.get().await?;
    tx.rename(name.as_str(), op.now_us()).await?;
    let event = op.event(
        "workspace.renamed",
        "workspace",
        Some(before.id.to_string()),
        json!({ "name": { "old": before.name, "new": name.as_str() } }),
    );
    tx.record(&ctx.audit_key, event).await?;
    let row = tx.get().await?;
    tx.commit().await?;
    row.try_into()
}

/// Archives a workspace: it stays readable, and nothing in it can change.
pub async fn archive(ctx: &Ctx, op: &Op, grant: &WorkspaceGrant) -> CoreResult<()> {
    let mut tx = ctx.store.scoped(grant).await?;
    tx.archive(op.now_us()).await?;
    let event = op.event(
        "workspace.archived",
        "workspace",
        Some(tx.workspace().to_string()),
        json!({}),
    );
    tx.record(&ctx.audit_key, event).await?;
    tx.commit().await?;
    Ok(())
}
