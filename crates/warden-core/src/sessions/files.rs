//! The files of an agent session's worktree, reached through its host: list, read, write,
//! delete and diff. Every path is checked here first (and again on the host); refusals are
//! audited; the host's answer is mapped to one stable code each.

use serde_json::json;
use uuid::Uuid;
use warden_domain::audit::Outcome;
use warden_domain::sessions::WorktreePath;
use warden_protocol::{AgentMessage, FileEntry, ServerMessage};
use warden_store::tenancy::WorkspaceGrant;

use crate::{Code, CoreError, CoreResult, Ctx, Op};

/// One file operation on one session of a workspace.
struct FileCall<'a> {
    ctx: &'a Ctx,
    op: &'a Op,
    grant: &'a WorkspaceGrant,
    session: Uuid,
}

impl FileCall<'_> {
    fn new<'a>(
        ctx: &'a Ctx,
        op: &'a Op,
        grant: &'a WorkspaceGrant,
        session: &str,
    ) -> CoreResult<FileCall<'a>> {
        Ok(FileCall {
            ctx,
            op,
            grant,
            session: super::parse_id(session)?,
        })
    }

    /// Records a refused path (denied, with the path as given) in a transaction of its own:
    /// the refusal is kept even though nothing else happens.
    async fn refused(&self, what: &str, path: &str, reason: &str) -> CoreResult<()> {
        let mut event = self.op.event_with(
            "session.path_refused",
            "session",
            Some(self.session.to_string()),
            Outcome::Denied,
            json!({ "op": what, "path": path, "reason": reason }),
        );
        event.workspace_id = Some(self.grant.workspace().to_string());
        let mut tx = self.ctx.store.begin().await?;
        tx.record(&self.ctx.audit_key, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a change the host made (in the workspace's own transaction).
    async fn changed(&self, action: &'static str, summary: serde_json::Value) -> CoreResult<()> {
        let mut tx = self.ctx.store.scoped(self.grant).await?;
        let event = self
            .op
            .event(action, "session", Some(self.session.to_string()), summary);
        tx.record(&self.ctx.audit_key, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Asks the session's host; returns its answer when it is `ok`.
    async fn run(
        &self,
        what: &'static str,
        path: Option<String>,
        content: Option<String>,
    ) -> CoreResult<AgentMessage> {
        // The session first: another workspace's session is not found, whatever else is wrong.
        let mut tx = self.ctx.store.scoped(self.grant).await?;
        let row = tx.session(self.session).await?.ok_or(Code::NotFound)?;
        if path.is_none() && matches!(what, "read" | "write" | "delete") {
            return Err(CoreError::invalid("path", "name the file"));
        }
        if let Some(p) = &path
            && let Err(why) = WorktreePath::parse(p)
        {
            drop(tx);
            self.refused(what, p, why.code()).await?;
            return Err(CoreError::with_detail(Code::PathRefused, why.message()));
        }
        tx.commit().await?;
        let host = row.host_id.ok_or(Code::HostNotConnected)?;
        let (session_id, workspace_id) = (row.id.to_string(), row.workspace_id.to_string());
        let sent_path = path.clone();
        let answer = crate::cluster::ask(
            self.ctx,
            host,
            ServerMessage::FileRequest {
                request_id: 0,
                session_id,
                workspace_id,
                op: what.to_owned(),
                path: sent_path,
                content,
            },
        )
        .await?;
        let AgentMessage::FileResponse { outcome, .. } = &answer else {
            return Err(CoreError::internal(&"unexpected answer"));
        };
        let shown = path.as_deref().unwrap_or("");
        match outcome.as_str() {
            "ok" => Ok(answer),
            "escape" => {
                self.refused(what, shown, "escape").await?;
                Err(Code::PathEscape.into())
            }
            "refused" => {
                self.refused(what, shown, "refused-by-host").await?;
                Err(Code::PathRefused.into())
            }
            "not-found" => Err(Code::NotFound.into()),
            "too-large" => Err(Code::FileTooLarge.into()),
            "not-a-file" => Err(Code::NotAFile.into()),
            "no-worktree" => Err(Code::NoWorktree.into()),
            _ => Err(CoreError::internal(&"the host could not access the file")),
        }
    }
}

fn content(answer: AgentMessage) -> CoreResult<String> {
    match answer {
        AgentMessage::FileResponse { content, .. } => Ok(content.unwrap_or_default()),
        _ => Err(CoreError::internal(&"unexpected answer")),
    }
}

/// A directory of the worktree (default: its root).
pub async fn list(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    session: &str,
    path: Option<String>,
) -> CoreResult<Vec<FileEntry>> {
    let call = FileCall::new(ctx, op, grant, session)?;
    match call.run("list", path, None).await? {
        AgentMessage::FileResponse { entries, .. } => Ok(entries),
        _ => Err(CoreError::internal(&"unexpected answer")),
    }
}

/// A file of the worktree (at most 48 KiB).
pub async fn read(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    session: &str,
    path: Option<String>,
) -> CoreResult<String> {
    let call = FileCall::new(ctx, op, grant, session)?;
    content(call.run("read", path, None).await?)
}

/// Writes a file of the worktree (audited with its size, never its content).
pub async fn write(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    session: &str,
    path: Option<String>,
    text: String,
) -> CoreResult<()> {
    let call = FileCall::new(ctx, op, grant, session)?;
    let bytes = text.len();
    call.run("write", path.clone(), Some(text)).await?;
    let p = path.unwrap_or_default();
    call.changed("session.file_written", json!({ "path": p, "bytes": bytes }))
        .await
}

/// Deletes a file of the worktree.
pub async fn delete(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    session: &str,
    path: Option<String>,
) -> CoreResult<()> {
    let call = FileCall::new(ctx, op, grant, session)?;
    call.run("delete", path.clone(), None).await?;
    let p = path.unwrap_or_default();
    call.changed("session.file_deleted", json!({ "path": p }))
        .await
}

/// The worktree's changes against the branch it started from (tracked files, at most
/// 48 KiB).
pub async fn diff(ctx: &Ctx, op: &Op, grant: &WorkspaceGrant, session: &str) -> CoreResult<String> {
    let call = FileCall::new(ctx, op, grant, session)?;
    content(call.run("diff", None, None).await?)
}
