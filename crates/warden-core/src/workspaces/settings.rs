//! What a workspace keeps on itself: repository, hooks, ticket configuration, and its
//! prompt templates.

use serde::Serialize;
use serde_json::json;
use warden_domain::tenancy::{Hooks, PromptName, Repository, TicketConfig, check_prompt};
use warden_store::tenancy::{PromptRow, WorkspaceGrant};

use super::Workspace;
use crate::secrets::Saved;
use crate::{Code, CoreError, CoreResult, Ctx, Op};

/// A workspace's settings, parsed: every field is replaced when saved.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where its code lives; `None` clears it.
    pub repository: Option<Repository>,
    /// Commands run around each agent session.
    pub hooks: Hooks,
    /// Ticket source; `None` clears it.
    pub tickets: Option<TicketConfig>,
}

impl Settings {
    /// Parses the settings as given in a request.
    pub fn parse(
        repository: Option<&str>,
        hooks: Hooks,
        ticket_config: Option<&serde_json::Value>,
    ) -> CoreResult<Self> {
        let repository = repository.map(Repository::parse).transpose()?;
        hooks.check()?;
        let tickets = ticket_config.map(TicketConfig::parse).transpose()?;
        Ok(Self {
            repository,
            hooks,
            tickets,
        })
    }
}

/// Serialising our own value types cannot fail in practice; if it does, it is a 500.
fn to_json<T: Serialize>(v: &T) -> CoreResult<String> {
    serde_json::to_string(v).map_err(|e| CoreError::internal(&e))
}

/// Replaces a workspace's repository, hooks and ticket configuration.
pub async fn save(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    settings: Settings,
) -> CoreResult<Workspace> {
    let repository_json = settings.repository.as_ref().map(to_json).transpose()?;
    let hooks_json = to_json(&settings.hooks)?;
    let tickets_json = settings.tickets.as_ref().map(to_json).transpose()?;
    let mut tx = ctx.store.scoped(grant).await?;
    let before = tx.get().await?.ticket_config;
    tx.set_settings(
        repository_json.as_deref(),
        &hooks_json,
        tickets_json.as_deref(),
        op.now_us(),
    )
    .await?;
    // Repository URLs carry no credentials (refused by `Repository::parse`), so the summary
    // may name them.
    let event = op.event(
        "workspace.settings_changed",
        "workspace",
        Some(tx.workspace().to_string()),
        json!({
            "repository": settings.repository,
            "pre_session_hooks": settings.hooks.pre_session.len(),
            "post_session_hooks": settings.hooks.post_session.len(),
            "ticket_provider": settings.tickets.as_ref().map(|t| t.provider),
        }),
    );
    tx.record(&ctx.audit_key, event).await?;
    // The sync follows the ticket source when it changes (and then acts for whoever saved it).
    if before.as_deref() != tickets_json.as_deref() {
        crate::tickets::sync::configure(ctx, op, &mut tx, settings.tickets.as_ref()).await?;
    }
    let row = tx.get().await?;
    tx.commit().await?;
    row.try_into()
}

/// A workspace's prompt templates.
pub async fn prompts(ctx: &Ctx, grant: &WorkspaceGrant) -> CoreResult<Vec<PromptRow>> {
    let mut tx = ctx.store.scoped(grant).await?;
    let rows = tx.prompts().await?;
    tx.commit().await?;
    Ok(rows)
}

/// One prompt template; 404 when there is none by that name.
pub async fn prompt(ctx: &Ctx, grant: &WorkspaceGrant, name: &str) -> CoreResult<PromptRow> {
    let mut tx = ctx.store.scoped(grant).await?;
    let row = tx.prompt(name).await?.ok_or(Code::NotFound)?;
    tx.commit().await?;
    Ok(row)
}

/// Creates or replaces a prompt template.
pub async fn save_prompt(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    name: &PromptName,
    template: &str,
) -> CoreResult<(Saved, PromptRow)> {
    check_prompt(template)?;
    let mut tx = ctx.store.scoped(grant).await?;
    let replaced = tx.put_prompt(name.as_str(), template, op.now_us()).await?;
    let event = op.event(
        "workspace.prompt_saved",
        "prompt",
        Some(name.as_str().to_owned()),
        json!({ "name": name.as_str(), "bytes": template.len(), "replaced": replaced }),
    );
    tx.record(&ctx.audit_key, event).await?;
    let row = tx
        .prompt(name.as_str())
        .await?
        .ok_or_else(|| CoreError::internal(&"prompt vanished"))?;
    tx.commit().await?;
    Ok((Saved::of(replaced), row))
}

/// Deletes a prompt template; 404 when there is none by that name.
pub async fn delete_prompt(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    name: &str,
) -> CoreResult<()> {
    let mut tx = ctx.store.scoped(grant).await?;
    if !tx.delete_prompt(name).await? {
        return Err(Code::NotFound.into());
    }
    let event = op.event(
        "workspace.prompt_deleted",
        "prompt",
        Some(name.to_owned()),
        json!({ "name": name }),
    );
    tx.record(&ctx.audit_key, event).await?;
    tx.commit().await?;
    Ok(())
}
