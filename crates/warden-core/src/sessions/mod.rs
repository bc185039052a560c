//! Agent sessions: starting them on a host, following their output, stopping and closing
//! them, their worktree files, and what hosts report about them. Where a session may go next
//! is `warden_domain::sessions::SessionStatus::may_become`; every change here asks it.

pub mod files;
pub mod messages;
pub mod reports;

use serde_json::json;
use uuid::Uuid;
use warden_domain::sessions::{SessionMode, SessionStatus, provider_argv};
use warden_domain::tenancy::{Provider, Repository};
use warden_protocol::ServerMessage;
use warden_store::sessions::{NewSession, OutputRow, SessionRow};
use warden_store::tenancy::{WorkspaceGrant, WorkspaceTx};

use crate::workspaces::stored_document;
use crate::{Code, CoreError, CoreResult, Ctx, Op};

/// A session to open, parsed.
#[derive(Debug, Clone)]
pub struct StartSession {
    provider: Option<Provider>,
    argv: Vec<String>,
    mode: SessionMode,
    prompt: String,
    host: Option<Uuid>,
    id: Option<Uuid>,
    base: Option<Uuid>,
    keep: bool,
}

impl StartSession {
    /// Parses a request: a provider (or `command` with its program and arguments), a prompt
    /// (one argument to the provider, never seen by a shell), a mode (default `develop`) and
    /// optionally a particular host.
    pub fn parse(
        provider: &str,
        prompt: String,
        mode: Option<&str>,
        command: Vec<String>,
        host_id: Option<&str>,
    ) -> CoreResult<Self> {
        let mode = match mode {
            None => SessionMode::Develop,
            Some(m) => SessionMode::parse(m)
                .ok_or_else(|| CoreError::invalid("mode", "must be chat, develop or bot"))?,
        };
        if prompt.len() > 100_000 || prompt.contains('\0') {
            return Err(CoreError::invalid(
                "prompt",
                "must be at most 100,000 bytes, without NUL",
            ));
        }
        let (provider, argv) = if provider == "command" {
            if command.is_empty()
                || command.len() > 256
                || command.iter().any(|a| a.len() > 4096 || a.contains('\0'))
                || command[0].is_empty()
            {
                return Err(CoreError::invalid(
                    "command",
                    "must be a program and its arguments: 1 to 256 items of at most 4096 bytes, \
                     without NUL",
                ));
            }
            (None, command)
        } else {
            let p = Provider::parse(provider).ok_or_else(|| {
                CoreError::invalid(
                    "provider",
                    "must be claude-code, gemini-cli, codex, opencode, kilo-cli, qwen-code or command",
                )
            })?;
            if !command.is_empty() {
                return Err(CoreError::invalid(
                    "command",
                    "only the command provider takes a command",
                ));
            }
            (Some(p), provider_argv(p, &prompt))
        };
        let host = match host_id {
            None => None,
            Some(h) => Some(
                h.parse::<Uuid>()
                    .map_err(|_| CoreError::invalid("host_id", "must be a host id"))?,
            ),
        };
        Ok(Self {
            provider,
            argv,
            mode,
            prompt,
            host,
            id: None,
            base: None,
            keep: false,
        })
    }

    /// The same session with another prompt (a ticket's development prompt, built after the
    /// request was parsed).
    pub fn with_prompt(mut self, prompt: String) -> CoreResult<Self> {
        if prompt.len() > 100_000 || prompt.contains('\0') {
            return Err(CoreError::invalid(
                "prompt",
                "must be at most 100,000 bytes, without NUL",
            ));
        }
        if let Some(p) = self.provider {
            self.argv = provider_argv(p, &prompt);
        }
        self.prompt = prompt;
        Ok(self)
    }

    /// The session's id, chosen by the caller: starting it again with the same id finds the
    /// session instead of opening a second (an automation run retried after a crash).
    #[must_use]
    pub fn with_id(mut self, id: Uuid) -> Self {
        self.id = Some(id);
        self
    }

    /// A workflow step's session: it starts from the branch `base` (the run's previous
    /// session, on that session's host) left, and keeps its worktree and branch when it ends
    /// whatever its mode, until the run is over (the next step starts from them).
    #[must_use]
    pub fn in_workflow(mut self, base: Option<Uuid>) -> Self {
        self.base = base;
        self.keep = true;
        self
    }
}

fn protocol_mode(mode: SessionMode) -> warden_protocol::Mode {
    match mode {
        SessionMode::Chat => warden_protocol::Mode::Chat,
        SessionMode::Develop => warden_protocol::Mode::Develop,
        SessionMode::Bot => warden_protocol::Mode::Bot,
    }
}

/// A session id from a path: one that does not parse names no session.
fn session_id(id: &str) -> CoreResult<Uuid> {
    id.parse().map_err(|_| Code::NotFound.into())
}

async fn session(tx: &mut WorkspaceTx, id: Uuid) -> CoreResult<SessionRow> {
    Ok(tx.session(id).await?.ok_or(Code::NotFound)?)
}

fn status(row: &SessionRow) -> CoreResult<SessionStatus> {
    SessionStatus::parse(&row.status)
        .ok_or_else(|| CoreError::internal(&"stored session status is not a status"))
}

/// Opens a session: an approved host this workspace may use, connected to this node,
/// prepares a worktree on a branch of its own and runs the provider there, confined. The
/// secrets it needs are opened here and travel only over the host's connection.
pub async fn start(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    input: StartSession,
) -> CoreResult<SessionRow> {
    let mut tx = ctx.store.scoped(grant).await?;
    if let Some(id) = input.id
        && let Some(existing) = tx.session(id).await?
    {
        tx.commit().await?;
        return Ok(existing);
    }
    let workspace = tx.get().await?;
    let repository: Repository = stored_document(workspace.repository.as_deref(), "repository")?
        .ok_or(Code::NoRepository)?;
    let hooks: warden_domain::tenancy::Hooks =
        stored_document(Some(&workspace.hooks), "hooks")?.unwrap_or_default();
    // A session going on from another's branch must run where that branch is.
    let (base, wanted) = match input.base {
        Some(b) => match tx.session(b).await?.and_then(|r| r.host_id) {
            Some(h) => (Some(b), Some(h)),
            None => (None, input.host),
        },
        None => (None, input.host),
    };
    // Any connected host will do, whichever node holds its connection; one connected here
    // first (no relay).
    let here = ctx.connections.session_hosts();
    let mut usable = tx
        .usable_hosts(crate::hosts::connected_since(op.now_us()))
        .await?;
    usable.sort_by_key(|h| !here.contains(h));
    let host = usable
        .into_iter()
        .find(|h| wanted.is_none_or(|w| w == *h))
        .ok_or(Code::NoHostAvailable)?;
    let mut secrets = reports::secrets_for(ctx, &mut tx, input.provider)
        .await
        .map_err(|e| CoreError::internal(&e))?;
    let id = input.id.unwrap_or_else(Uuid::now_v7);
    let gateway = crate::llm::admin::sessions_use_gateway(&mut tx).await?;
    if gateway {
        // The session gets the gateway's address and a token of its own; the provider key
        // stays on the server.
        let token =
            crate::llm::admin::mint_session_token(&mut tx, id, grant.user_id(), op.now_us())
                .await?;
        reports::use_gateway(&mut secrets, input.provider, &ctx.llm.config.url, &token);
    }
    let provider_name = input.provider.map_or("command", Provider::as_str);
    tx.insert_session(&NewSession {
        id,
        host_id: host,
        provider: provider_name,
        mode: input.mode.as_str(),
        prompt: &input.prompt,
        now: op.now_us(),
    })
    .await?;
    let mut argv = input.argv;
    // Minted once the session row exists (the token names it).
    let mcp = crate::mcp::mint(&mut tx, id, op.now_us()).await?;
    if let Some(token) = &mcp {
        // The agent finds the MCP endpoint through its provider's own configuration; the
        // token travels as a variable only.
        reports::use_mcp(
            &mut secrets,
            &mut argv,
            input.provider,
            &ctx.public_url,
            token,
        );
    }
    let event = op.event(
        "session.created",
        "session",
        Some(id.to_string()),
        json!({ "provider": provider_name, "mode": input.mode.as_str(),
                "host_id": host.to_string(), "prompt_bytes": input.prompt.len(),
                "base_session": base.map(|b| b.to_string()),
                "variables": secrets.env.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
                "llm_gateway": gateway, "mcp": mcp.is_some() }),
    );
    tx.record(&ctx.audit_key, event).await?;
    let row = session(&mut tx, id).await?;
    tx.commit().await?;

    let start = ServerMessage::StartSession {
        session_id: id.to_string(),
        workspace_id: workspace.id.to_string(),
        repository: match repository {
            Repository::Url(u) => warden_protocol::Repository::Url(u),
            Repository::Path(p) => warden_protocol::Repository::Path(p),
        },
        mode: protocol_mode(input.mode),
        argv,
        env: secrets.env,
        pat: secrets.pat,
        hooks_pre: hooks.pre_session,
        hooks_post: hooks.post_session,
        base_session: base.map(|b| b.to_string()),
        keep_worktree: input.keep,
    };
    if !crate::cluster::send(ctx, host, start).await {
        // The host left between the choice and now.
        let mut tx = ctx.store.scoped(grant).await?;
        tx.end_waiting_session(
            id,
            SessionStatus::Failed,
            Some("the host disconnected before the session started"),
            op.now_us(),
        )
        .await?;
        tx.commit().await?;
    }
    Ok(row)
}

/// The workspace's sessions, newest first (at most 200).
pub async fn list(ctx: &Ctx, grant: &WorkspaceGrant) -> CoreResult<Vec<SessionRow>> {
    let mut tx = ctx.store.scoped(grant).await?;
    let rows = tx.sessions(200).await?;
    tx.commit().await?;
    Ok(rows)
}

/// One session of the workspace.
pub async fn get(ctx: &Ctx, grant: &WorkspaceGrant, id: &str) -> CoreResult<SessionRow> {
    let id = session_id(id)?;
    let mut tx = ctx.store.scoped(grant).await?;
    let row = session(&mut tx, id).await?;
    tx.commit().await?;
    Ok(row)
}

/// A session and its output after sequence number `after` (at most `limit` chunks). Every
/// read checks the grant again: a member removed meanwhile reads nothing more.
pub async fn output(
    ctx: &Ctx,
    grant: &WorkspaceGrant,
    id: Uuid,
    after: i64,
    limit: i64,
) -> CoreResult<(SessionRow, Vec<OutputRow>)> {
    let mut tx = ctx.store.scoped(grant).await?;
    let row = session(&mut tx, id).await?;
    let chunks = tx.session_output(id, after, limit).await?;
    tx.commit().await?;
    Ok((row, chunks))
}

/// A session id from a path, for reads that take it parsed.
pub fn parse_id(id: &str) -> CoreResult<Uuid> {
    session_id(id)
}

/// Stops a session: a waiting one is canceled at once; a running one's host ends its whole
/// process group and reports it canceled.
pub async fn stop(ctx: &Ctx, op: &Op, grant: &WorkspaceGrant, id: &str) -> CoreResult<SessionRow> {
    let id = session_id(id)?;
    let mut tx = ctx.store.scoped(grant).await?;
    let row = session(&mut tx, id).await?;
    let before = status(&row)?;
    if !before.may_become(SessionStatus::Canceled) {
        return Err(Code::SessionEnded.into());
    }
    let sent = match row.host_id {
        Some(h) => {
            crate::cluster::send(
                ctx,
                h,
                ServerMessage::StopSession {
                    session_id: id.to_string(),
                },
            )
            .await
        }
        None => false,
    };
    if !sent && before == SessionStatus::Running {
        return Err(Code::HostNotConnected.into());
    }
    if !sent {
        tx.end_waiting_session(id, SessionStatus::Canceled, None, op.now_us())
            .await?;
    }
    let event = op.event(
        "session.stopped",
        "session",
        Some(id.to_string()),
        json!({ "status_before": row.status }),
    );
    tx.record(&ctx.audit_key, event).await?;
    let row = session(&mut tx, id).await?;
    tx.commit().await?;
    Ok(row)
}

/// Closes an ended session: its host removes the worktree and branch (a chat or bot
/// session keeps them until now; a develop session's are gone already). The record and
/// output stay.
pub async fn close(ctx: &Ctx, op: &Op, grant: &WorkspaceGrant, id: &str) -> CoreResult<SessionRow> {
    let id = session_id(id)?;
    let mut tx = ctx.store.scoped(grant).await?;
    let row = session(&mut tx, id).await?;
    if !tx.archive_session(id, op.now_us()).await? {
        return Err(Code::SessionNotClosable.into());
    }
    let event = op.event(
        "session.closed",
        "session",
        Some(id.to_string()),
        json!({ "mode": row.mode, "status": row.status }),
    );
    tx.record(&ctx.audit_key, event).await?;
    let row = session(&mut tx, id).await?;
    tx.commit().await?;
    if let Some(host) = row.host_id {
        crate::cluster::send(
            ctx,
            host,
            ServerMessage::ArchiveSession {
                session_id: id.to_string(),
                workspace_id: row.workspace_id.to_string(),
            },
        )
        .await;
    }
    Ok(row)
}
