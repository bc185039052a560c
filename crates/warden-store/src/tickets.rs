//! A workspace's tickets as stored, numbered within the workspace, and the sessions linked to
//! them. Reached only through the workspace's scoped transaction.

use uuid::Uuid;

use crate::StoreError;
use crate::db::on_tx;
use crate::tenancy::WorkspaceTx;

/// A ticket as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TicketRow {
    /// Id.
    pub id: Uuid,
    /// Workspace.
    pub workspace_id: Uuid,
    /// Number within the workspace (`#12`).
    pub number: i64,
    /// Title.
    pub title: String,
    /// Markdown body.
    pub body: String,
    /// Status.
    pub status: String,
    /// Who works on it.
    pub assignee_id: Option<Uuid>,
    /// Labels (a JSON array of strings).
    pub labels: String,
    /// Who wrote it.
    pub created_by: Uuid,
    /// Created (µs).
    pub created_at: i64,
    /// Last changed (µs).
    pub updated_at: i64,
    /// The tracker's id for the issue it mirrors (synced tickets only).
    pub external_id: Option<String>,
    /// The web address.
    pub external_url: Option<String>,
    /// The state as last seen or set (`open`, `closed:completed`,
    /// `closed:not_planned`).
    pub external_state: Option<String>,
    /// The tracker state this ticket's status stood for at the last sync.
    pub synced_state: Option<String>,
}

pub(crate) const COLUMNS: &str = "id, workspace_id, number, title, body, status, assignee_id, \
     labels, created_by, created_at, updated_at, external_id, external_url, external_state, \
     synced_state";

/// A new ticket.
#[derive(Debug, Clone, Copy)]
pub struct NewTicket<'a> {
    /// Id.
    pub id: Uuid,
    /// Title.
    pub title: &'a str,
    /// Body.
    pub body: &'a str,
    /// Labels, as a JSON array.
    pub labels: &'a str,
    /// Assignee.
    pub assignee_id: Option<Uuid>,
    /// Now (µs).
    pub now: i64,
}

/// What a search asks for.
#[derive(Debug, Clone, Default)]
pub struct TicketQuery {
    /// Words that must appear in the title or body (case-insensitive).
    pub text: Option<String>,
    /// Only this status.
    pub status: Option<String>,
    /// Only tickets carrying this label.
    pub label: Option<String>,
    /// At most this many.
    pub limit: i64,
}

impl WorkspaceTx {
    /// Records a new ticket in the backlog with the workspace's next number.
    pub async fn insert_ticket(&mut self, t: &NewTicket<'_>) -> Result<i64, StoreError> {
        let ws = self.workspace().uuid();
        let by = self.user_id();
        let number: i64 = on_tx!(self.tx_mut(), |c| sqlx::query_scalar(
            "INSERT INTO ticket_counters (workspace_id, last) VALUES ($1, 1) \
             ON CONFLICT (workspace_id) DO UPDATE SET last = ticket_counters.last + 1 \
             RETURNING last"
        )
        .bind(ws)
        .fetch_one(c)
        .await)?;
        on_tx!(self.tx_mut(), |c| sqlx::query(
            "INSERT INTO tickets (id, workspace_id, number, title, body, status, assignee_id, \
             labels, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'backlog', $6, $7, $8, $9, $9)"
        )
        .bind(t.id)
        .bind(ws)
        .bind(number)
        .bind(t.title)
        .bind(t.body)
        .bind(t.assignee_id)
        .bind(t.labels)
        .bind(by)
        .bind(t.now)
        .execute(c)
        .await
        .map(drop))?;
        Ok(number)
    }

    /// One ticket by id.
    pub async fn ticket(&mut self, id: Uuid) -> Result<Option<TicketRow>, StoreError> {
        let ws = self.workspace().uuid();
        let sql = format!("SELECT {COLUMNS} FROM tickets WHERE id = $1 AND workspace_id = $2");
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query_as::<_, TicketRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(id)
        .bind(ws)
        .fetch_optional(c)
        .await)?)
    }

    /// One ticket by its number in the workspace.
    pub async fn ticket_by_number(&mut self, number: i64) -> Result<Option<TicketRow>, StoreError> {
        let ws = self.workspace().uuid();
        let sql = format!("SELECT {COLUMNS} FROM tickets WHERE workspace_id = $1 AND number = $2");
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query_as::<_, TicketRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(ws)
        .bind(number)
        .fetch_optional(c)
        .await)?)
    }

    /// Tickets matching `q`, newest number first. The text is matched with `LIKE`, its
    /// wildcards escaped.
    pub async fn tickets(&mut self, q: &TicketQuery) -> Result<Vec<TicketRow>, StoreError> {
        let ws = self.workspace().uuid();
        let pattern = q.text.as_deref().map(|t| {
            let escaped = t
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        });
        let label = q.label.as_deref().map(|l| {
            let json = serde_json::to_string(l).unwrap_or_default();
            let escaped = json
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        });
        let sql = format!(
            "SELECT {COLUMNS} FROM tickets WHERE workspace_id = $1 \
             AND ($2 IS NULL OR LOWER(title) LIKE $2 ESCAPE '\\' OR LOWER(body) LIKE $2 ESCAPE '\\') \
             AND ($3 IS NULL OR status = $3) \
             AND ($4 IS NULL OR labels LIKE $4 ESCAPE '\\') \
             ORDER BY number DESC LIMIT $5"
        );
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query_as::<_, TicketRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(ws)
        .bind(pattern)
        .bind(q.status.as_deref())
        .bind(label)
        .bind(q.limit)
        .fetch_all(c)
        .await)?)
    }

    /// Replaces a ticket's title, body, labels and assignee.
    pub async fn update_ticket(
        &mut self,
        id: Uuid,
        title: &str,
        body: &str,
        labels: &str,
        assignee: Option<Uuid>,
        now: i64,
    ) -> Result<(), StoreError> {
        let ws = self.workspace().uuid();
        on_tx!(self.tx_mut(), |c| sqlx::query(
            "UPDATE tickets SET title = $3, body = $4, labels = $5, assignee_id = $6, \
             updated_at = $7 WHERE id = $1 AND workspace_id = $2"
        )
        .bind(id)
        .bind(ws)
        .bind(title)
        .bind(body)
        .bind(labels)
        .bind(assignee)
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Moves a ticket from `from` to `to`; false when it no longer stands at `from` (a
    /// concurrent move won).
    pub async fn move_ticket(
        &mut self,
        id: Uuid,
        from: &str,
        to: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let ws = self.workspace().uuid();
        let done = on_tx!(self.tx_mut(), |c| sqlx::query(
            "UPDATE tickets SET status = $4, updated_at = $5 \
             WHERE id = $1 AND workspace_id = $2 AND status = $3"
        )
        .bind(id)
        .bind(ws)
        .bind(from)
        .bind(to)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Deletes a ticket.
    pub async fn delete_ticket(&mut self, id: Uuid) -> Result<bool, StoreError> {
        let ws = self.workspace().uuid();
        let done = on_tx!(self.tx_mut(), |c| sqlx::query(
            "DELETE FROM tickets WHERE id = $1 AND workspace_id = $2"
        )
        .bind(id)
        .bind(ws)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Links a session to a ticket.
    pub async fn link_ticket_session(
        &mut self,
        ticket: Uuid,
        session: Uuid,
        now: i64,
    ) -> Result<(), StoreError> {
        let ws = self.workspace().uuid();
        on_tx!(self.tx_mut(), |c| sqlx::query(
            "INSERT INTO ticket_sessions (ticket_id, session_id, workspace_id, linked_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
        )
        .bind(ticket)
        .bind(session)
        .bind(ws)
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// The sessions linked to a ticket, oldest first.
    pub async fn ticket_sessions(&mut self, ticket: Uuid) -> Result<Vec<Uuid>, StoreError> {
        let ws = self.workspace().uuid();
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query_scalar::<_, Uuid>(
            "SELECT session_id FROM ticket_sessions WHERE ticket_id = $1 AND workspace_id = $2 \
             ORDER BY linked_at, session_id"
        )
        .bind(ticket)
        .bind(ws)
        .fetch_all(c)
        .await)?)
    }

    /// The tickets a session works on.
    pub async fn session_tickets(&mut self, session: Uuid) -> Result<Vec<TicketRow>, StoreError> {
        let ws = self.workspace().uuid();
        let sql = format!(
            "SELECT {} FROM tickets t JOIN ticket_sessions s ON s.ticket_id = t.id \
             WHERE s.session_id = $1 AND t.workspace_id = $2 ORDER BY t.number",
            crate::db::prefixed(COLUMNS, "t")
        );
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query_as::<_, TicketRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(session)
        .bind(ws)
        .fetch_all(c)
        .await)?)
    }

    /// Whether `user` is an active member of this workspace (an assignee must be).
    pub async fn is_active_member(&mut self, user: Uuid) -> Result<bool, StoreError> {
        let ws = self.workspace().uuid();
        let n: i64 = on_tx!(self.tx_mut(), |c| sqlx::query_scalar(
            "SELECT COUNT(*) FROM workspace_members m JOIN users u ON u.id = m.user_id \
             WHERE m.workspace_id = $1 AND m.user_id = $2 AND u.active = TRUE"
        )
        .bind(ws)
        .bind(user)
        .fetch_one(c)
        .await)?;
        Ok(n > 0)
    }
}
