//! Ticket sync as stored: per workspace, when its tracker is next read and how the last run
//! went; per ticket, the issue it mirrors; and comments on tickets, with the tracker's id for
//! each one that crossed over. Workspace-scoped reads and writes go through the workspace's
//! transaction; the scheduler and the sync job's bookkeeping through the jobs transaction.

use uuid::Uuid;

use crate::StoreError;
use crate::automations::JobsTx;
use crate::db::on_tx;
use crate::tenancy::WorkspaceTx;
use crate::tickets::{COLUMNS, TicketRow};

/// A workspace's sync state.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SyncRow {
    /// Workspace.
    pub workspace_id: Uuid,
    /// The tracker (`github`, …).
    pub provider: String,
    /// The repository or project in it.
    pub project: String,
    /// Whom the sync acts for: the person who last saved the ticket source.
    pub acting_for: Uuid,
    /// When it next runs (µs).
    pub next_at: i64,
    /// When the last run started (µs).
    pub last_started_at: Option<i64>,
    /// When the last run ended (µs).
    pub last_finished_at: Option<i64>,
    /// When a run last ended without an error (µs).
    pub last_success_at: Option<i64>,
    /// Why the last run failed (no secret in it); `None` when it did not.
    pub last_error: Option<String>,
    /// Where reading the tracker resumes (the newest change seen).
    pub cursor: Option<String>,
    /// The tracker's rate limit holds the sync until then (µs).
    pub rate_limited_until: Option<i64>,
    /// Issues imported or updated from the tracker, in all.
    pub imported: i64,
    /// Changes written to the tracker, in all.
    pub pushed: i64,
    /// Last changed (µs).
    pub updated_at: i64,
}

const SYNC_COLUMNS: &str = "workspace_id, provider, project, acting_for, next_at, \
     last_started_at, last_finished_at, last_success_at, last_error, cursor, \
     rate_limited_until, imported, pushed, updated_at";

/// A comment on a ticket.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CommentRow {
    /// Id.
    pub id: Uuid,
    /// Workspace.
    pub workspace_id: Uuid,
    /// Ticket.
    pub ticket_id: Uuid,
    /// Markdown body.
    pub body: String,
    /// The member who wrote it (`None`: it came from the tracker).
    pub author_id: Option<Uuid>,
    /// The author's name as shown (a tracker login for imported comments).
    pub author_name: String,
    /// The tracker's id for it, once it exists there.
    pub external_id: Option<String>,
    /// Written (µs).
    pub created_at: i64,
}

const COMMENT_COLUMNS: &str =
    "id, workspace_id, ticket_id, body, author_id, author_name, external_id, created_at";

/// A comment to record.
#[derive(Debug, Clone, Copy)]
pub struct NewComment<'a> {
    /// Ticket.
    pub ticket_id: Uuid,
    /// Body.
    pub body: &'a str,
    /// The member writing it (`None`: imported).
    pub author_id: Option<Uuid>,
    /// The author's name as shown.
    pub author_name: &'a str,
    /// The tracker's id (imported comments).
    pub external_id: Option<&'a str>,
    /// When it was written (µs).
    pub created_at: i64,
}

/// What a finished sync run records.
#[derive(Debug, Clone, Default)]
pub struct SyncOutcome {
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// The new cursor, when it moved.
    pub cursor: Option<String>,
    /// Held by the tracker's rate limit until then (µs): the next run waits for it.
    pub rate_limited_until: Option<i64>,
    /// Issues imported or updated.
    pub imported: i64,
    /// Changes written to the tracker.
    pub pushed: i64,
}

impl WorkspaceTx {
    /// The workspace's sync state, if its ticket source is synced.
    pub async fn ticket_sync(&mut self) -> Result<Option<SyncRow>, StoreError> {
        let ws = self.workspace().uuid();
        let sql = format!("SELECT {SYNC_COLUMNS} FROM ticket_sync WHERE workspace_id = $1");
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query_as::<_, SyncRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(ws)
        .fetch_optional(c)
        .await)?)
    }

    /// Syncs the workspace's tickets with `project` at `provider`, acting for this
    /// transaction's user, first at `now`. Pointing it somewhere else starts reading afresh.
    pub async fn set_ticket_sync(
        &mut self,
        provider: &str,
        project: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let ws = self.workspace().uuid();
        let by = self.user_id();
        on_tx!(self.tx_mut(), |c| sqlx::query(
            "INSERT INTO ticket_sync (workspace_id, provider, project, acting_for, next_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $5) \
             ON CONFLICT (workspace_id) DO UPDATE SET \
             cursor = CASE WHEN ticket_sync.provider = excluded.provider \
                 AND ticket_sync.project = excluded.project THEN ticket_sync.cursor END, \
             provider = excluded.provider, project = excluded.project, \
             acting_for = excluded.acting_for, next_at = excluded.next_at, \
             rate_limited_until = NULL, updated_at = excluded.updated_at"
        )
        .bind(ws)
        .bind(provider)
        .bind(project)
        .bind(by)
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Stops syncing the workspace's tickets (synced tickets stay, as they are).
    pub async fn clear_ticket_sync(&mut self) -> Result<(), StoreError> {
        let ws = self.workspace().uuid();
        on_tx!(self.tx_mut(), |c| sqlx::query(
            "DELETE FROM ticket_sync WHERE workspace_id = $1"
        )
        .bind(ws)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Makes the sync due at `now` (unless the tracker's rate limit holds it longer); false
    /// when the workspace's tickets are not synced.
    pub async fn request_ticket_sync(&mut self, now: i64) -> Result<bool, StoreError> {
        let ws = self.workspace().uuid();
        let n = on_tx!(self.tx_mut(), |c| sqlx::query(
            "UPDATE ticket_sync SET next_at = CASE WHEN rate_limited_until > $2 \
             THEN rate_limited_until ELSE $2 END, updated_at = $2 WHERE workspace_id = $1"
        )
        .bind(ws)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// The ticket mirroring the tracker's issue `external_id`.
    pub async fn ticket_by_external(
        &mut self,
        external_id: &str,
    ) -> Result<Option<TicketRow>, StoreError> {
        let ws = self.workspace().uuid();
        let sql =
            format!("SELECT {COLUMNS} FROM tickets WHERE workspace_id = $1 AND external_id = $2");
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query_as::<_, TicketRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(ws)
        .bind(external_id)
        .fetch_optional(c)
        .await)?)
    }

    /// Every ticket that mirrors an issue.
    pub async fn synced_tickets(&mut self) -> Result<Vec<TicketRow>, StoreError> {
        let ws = self.workspace().uuid();
        let sql = format!(
            "SELECT {COLUMNS} FROM tickets WHERE workspace_id = $1 AND external_id IS NOT NULL \
             ORDER BY number"
        );
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query_as::<_, TicketRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(ws)
        .fetch_all(c)
        .await)?)
    }

    /// Marks a ticket as the mirror of an issue, in the state both sides agree on.
    pub async fn link_external(
        &mut self,
        id: Uuid,
        external_id: &str,
        url: &str,
        state: &str,
    ) -> Result<(), StoreError> {
        let ws = self.workspace().uuid();
        on_tx!(self.tx_mut(), |c| sqlx::query(
            "UPDATE tickets SET external_id = $3, external_url = $4, external_state = $5, \
             synced_state = $5 WHERE id = $1 AND workspace_id = $2"
        )
        .bind(id)
        .bind(ws)
        .bind(external_id)
        .bind(url)
        .bind(state)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Records the state as seen or set (`external`) and what the ticket's status
    /// stands for now (`synced`).
    pub async fn set_external_state(
        &mut self,
        id: Uuid,
        external: &str,
        synced: &str,
    ) -> Result<(), StoreError> {
        let ws = self.workspace().uuid();
        on_tx!(self.tx_mut(), |c| sqlx::query(
            "UPDATE tickets SET external_state = $3, synced_state = $4 \
             WHERE id = $1 AND workspace_id = $2"
        )
        .bind(id)
        .bind(ws)
        .bind(external)
        .bind(synced)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Records a comment; `None` when an imported comment with that tracker id is there
    /// already.
    pub async fn insert_comment(&mut self, c: &NewComment<'_>) -> Result<Option<Uuid>, StoreError> {
        let ws = self.workspace().uuid();
        let id = Uuid::now_v7();
        let n = on_tx!(self.tx_mut(), |conn| sqlx::query(
            "INSERT INTO ticket_comments (id, workspace_id, ticket_id, body, author_id, \
             author_name, external_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (ticket_id, external_id) WHERE external_id IS NOT NULL DO NOTHING"
        )
        .bind(id)
        .bind(ws)
        .bind(c.ticket_id)
        .bind(c.body)
        .bind(c.author_id)
        .bind(c.author_name)
        .bind(c.external_id)
        .bind(c.created_at)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
        Ok((n == 1).then_some(id))
    }

    /// A ticket's comments, oldest first.
    pub async fn ticket_comments(&mut self, ticket: Uuid) -> Result<Vec<CommentRow>, StoreError> {
        let ws = self.workspace().uuid();
        let sql = format!(
            "SELECT {COMMENT_COLUMNS} FROM ticket_comments WHERE ticket_id = $1 \
             AND workspace_id = $2 ORDER BY created_at, id"
        );
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query_as::<_, CommentRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(ticket)
        .bind(ws)
        .fetch_all(c)
        .await)?)
    }

    /// Comments written here on synced tickets that the tracker does not have yet, oldest
    /// first.
    pub async fn unexported_comments(&mut self, limit: i64) -> Result<Vec<CommentRow>, StoreError> {
        let ws = self.workspace().uuid();
        let sql = format!(
            "SELECT {} FROM ticket_comments c JOIN tickets t ON t.id = c.ticket_id \
             WHERE c.workspace_id = $1 AND c.external_id IS NULL AND c.author_id IS NOT NULL \
             AND t.external_id IS NOT NULL ORDER BY c.created_at, c.id LIMIT $2",
            crate::db::prefixed(COMMENT_COLUMNS, "c")
        );
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query_as::<_, CommentRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(ws)
        .bind(limit)
        .fetch_all(c)
        .await)?)
    }

    /// Records the tracker's id for a comment written here; false when another comment of
    /// the ticket has it already (it was imported before this was recorded).
    pub async fn set_comment_external(
        &mut self,
        id: Uuid,
        external_id: &str,
    ) -> Result<bool, StoreError> {
        let ws = self.workspace().uuid();
        let taken: i64 = on_tx!(self.tx_mut(), |c| sqlx::query_scalar(
            "SELECT COUNT(*) FROM ticket_comments o JOIN ticket_comments m \
             ON m.ticket_id = o.ticket_id WHERE m.id = $1 AND o.workspace_id = $2 \
             AND o.external_id = $3"
        )
        .bind(id)
        .bind(ws)
        .bind(external_id)
        .fetch_one(c)
        .await)?;
        if taken > 0 {
            return Ok(false);
        }
        on_tx!(self.tx_mut(), |c| sqlx::query(
            "UPDATE ticket_comments SET external_id = $3 WHERE id = $1 AND workspace_id = $2"
        )
        .bind(id)
        .bind(ws)
        .bind(external_id)
        .execute(c)
        .await
        .map(drop))?;
        Ok(true)
    }
}

impl JobsTx {
    /// Workspaces whose sync is due at `now`, at most `limit`: (workspace, its due instant).
    pub async fn due_ticket_syncs(
        &mut self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<(Uuid, i64)>, StoreError> {
        Ok(on_tx!(self.tx(), |c| sqlx::query_as::<_, (Uuid, i64)>(
            "SELECT workspace_id, next_at FROM ticket_sync WHERE next_at <= $1 \
             ORDER BY next_at LIMIT $2"
        )
        .bind(now)
        .bind(limit)
        .fetch_all(c)
        .await)?)
    }

    /// Moves a workspace's next sync from `seen` to `next`; false when another node moved it
    /// first.
    pub async fn advance_ticket_sync(
        &mut self,
        workspace: Uuid,
        seen: i64,
        next: i64,
    ) -> Result<bool, StoreError> {
        let n = on_tx!(self.tx(), |c| sqlx::query(
            "UPDATE ticket_sync SET next_at = $3 WHERE workspace_id = $1 AND next_at = $2"
        )
        .bind(workspace)
        .bind(seen)
        .bind(next)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// A workspace's sync state.
    pub async fn ticket_sync_of(&mut self, workspace: Uuid) -> Result<Option<SyncRow>, StoreError> {
        let sql = format!("SELECT {SYNC_COLUMNS} FROM ticket_sync WHERE workspace_id = $1");
        Ok(on_tx!(self.tx(), |c| sqlx::query_as::<_, SyncRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(workspace)
        .fetch_optional(c)
        .await)?)
    }

    /// Starts a sync run unless one is under way (started, not finished, and not older
    /// than `stale_before`); false when one is, or when `now` is older than the last run's
    /// start or end (a run that waited for the lock while another ran and ended must look
    /// again rather than move the marks back, which would let a third run start beside it).
    pub async fn ticket_sync_started(
        &mut self,
        workspace: Uuid,
        now: i64,
        stale_before: i64,
    ) -> Result<bool, StoreError> {
        let n = on_tx!(self.tx(), |c| sqlx::query(
            "UPDATE ticket_sync SET last_started_at = $2 WHERE workspace_id = $1 \
             AND (last_started_at IS NULL OR last_finished_at >= last_started_at \
                  OR last_started_at < $3) \
             AND (last_started_at IS NULL OR last_started_at <= $2) \
             AND (last_finished_at IS NULL OR last_finished_at <= $2)"
        )
        .bind(workspace)
        .bind(now)
        .bind(stale_before)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Records how a sync run ended (never before it started, should the wall clock step
    /// back). A rate limit pushes the next run past its reset.
    pub async fn ticket_sync_finished(
        &mut self,
        workspace: Uuid,
        o: &SyncOutcome,
        now: i64,
    ) -> Result<(), StoreError> {
        on_tx!(self.tx(), |c| sqlx::query(
            "UPDATE ticket_sync SET last_finished_at = CASE WHEN last_started_at > $2 \
                 THEN last_started_at ELSE $2 END, last_error = $3, \
             last_success_at = CASE WHEN $3 IS NULL THEN (CASE WHEN last_started_at > $2 \
                 THEN last_started_at ELSE $2 END) ELSE last_success_at END, \
             cursor = COALESCE($4, cursor), rate_limited_until = $5, \
             next_at = CASE WHEN $5 > next_at THEN $5 ELSE next_at END, \
             imported = imported + $6, pushed = pushed + $7 WHERE workspace_id = $1"
        )
        .bind(workspace)
        .bind(now)
        .bind(o.error.as_deref())
        .bind(o.cursor.as_deref())
        .bind(o.rate_limited_until)
        .bind(o.imported)
        .bind(o.pushed)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }
}
