//! What the MCP endpoint keeps: whether a workspace offers it, the tokens agent sessions
//! were given (as their SHA-256), the questions and messages a session sends its owner, and
//! each session's plan document. A token is found by its hash under the `warden.mcp` scope
//! (before the workspace is known); everything else goes through the workspace's scoped
//! transaction.

use uuid::Uuid;

use crate::db::on_tx;
use crate::tenancy::{WorkspaceTx, set_scope};
use crate::{Store, StoreError};

/// An MCP token, with the state of the session it was minted for.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct McpTokenRow {
    /// Id.
    pub id: Uuid,
    /// Workspace.
    pub workspace_id: Uuid,
    /// The session.
    pub session_id: Uuid,
    /// The session's owner, whose grants the token acts within.
    pub user_id: Uuid,
    /// Expires (µs).
    pub expires_at: i64,
    /// The session's status now.
    pub session_status: String,
}

/// A question or message from a session to its owner.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MessageRow {
    /// Id.
    pub id: Uuid,
    /// The session.
    pub session_id: Uuid,
    /// `question` or `message`.
    pub kind: String,
    /// What the agent said.
    pub body: String,
    /// The answer, once given.
    pub answer: Option<String>,
    /// Who answered.
    pub answered_by: Option<Uuid>,
    /// When (µs).
    pub answered_at: Option<i64>,
    /// Until when a question waits for its answer (µs).
    pub expires_at: Option<i64>,
    /// Asked (µs).
    pub created_at: i64,
}

const MESSAGE_COLUMNS: &str =
    "id, session_id, kind, body, answer, answered_by, answered_at, expires_at, created_at";

impl Store {
    /// A token by the SHA-256 of its secret, with its session's status (read in the token's
    /// own workspace scope).
    pub async fn mcp_token_by_hash(&self, hash: &[u8]) -> Result<Option<McpTokenRow>, StoreError> {
        let mut tx = self.begin_read().await?;
        set_scope(&mut tx, "warden.mcp", "on").await?;
        let found: Option<(Uuid, Uuid, Uuid, Uuid, i64)> = on_tx!(tx, |c| sqlx::query_as(
            "SELECT id, workspace_id, session_id, user_id, expires_at FROM mcp_tokens \
             WHERE hash = $1"
        )
        .bind(hash)
        .fetch_optional(c)
        .await)?;
        let Some((id, workspace_id, session_id, user_id, expires_at)) = found else {
            tx.commit().await?;
            return Ok(None);
        };
        set_scope(&mut tx, "warden.workspace_id", &workspace_id.to_string()).await?;
        let status: Option<String> = on_tx!(tx, |c| sqlx::query_scalar(
            "SELECT status FROM agent_sessions WHERE id = $1 AND workspace_id = $2"
        )
        .bind(session_id)
        .bind(workspace_id)
        .fetch_optional(c)
        .await)?;
        tx.commit().await?;
        Ok(status.map(|session_status| McpTokenRow {
            id,
            workspace_id,
            session_id,
            user_id,
            expires_at,
            session_status,
        }))
    }
}

impl WorkspaceTx {
    /// Whether the workspace offers its sessions the MCP endpoint.
    pub async fn mcp_enabled(&mut self) -> Result<bool, StoreError> {
        let ws = self.workspace().uuid();
        let on: Option<bool> = on_tx!(self.tx_mut(), |c| sqlx::query_scalar(
            "SELECT enabled FROM workspace_mcp WHERE workspace_id = $1"
        )
        .bind(ws)
        .fetch_optional(c)
        .await)?;
        Ok(on.unwrap_or(false))
    }

    /// Turns the MCP endpoint on or off for the workspace's new sessions.
    pub async fn set_mcp_enabled(&mut self, enabled: bool, now: i64) -> Result<(), StoreError> {
        let ws = self.workspace().uuid();
        let by = self.user_id();
        on_tx!(self.tx_mut(), |c| sqlx::query(
            "INSERT INTO workspace_mcp (workspace_id, enabled, updated_by, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (workspace_id) DO UPDATE \
             SET enabled = $2, updated_by = $3, updated_at = $4"
        )
        .bind(ws)
        .bind(enabled)
        .bind(by)
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Stores a new token for a session of this workspace.
    pub async fn insert_mcp_token(
        &mut self,
        id: Uuid,
        session: Uuid,
        hash: &[u8],
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let ws = self.workspace().uuid();
        let by = self.user_id();
        on_tx!(self.tx_mut(), |c| sqlx::query(
            "INSERT INTO mcp_tokens (id, workspace_id, session_id, user_id, hash, created_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        )
        .bind(id)
        .bind(ws)
        .bind(session)
        .bind(by)
        .bind(hash)
        .bind(now)
        .bind(expires_at)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Records a question (with the time it waits until) or a message from a session.
    pub async fn insert_session_message(
        &mut self,
        id: Uuid,
        session: Uuid,
        kind: &str,
        body: &str,
        expires_at: Option<i64>,
        now: i64,
    ) -> Result<(), StoreError> {
        let ws = self.workspace().uuid();
        on_tx!(self.tx_mut(), |c| sqlx::query(
            "INSERT INTO session_messages (id, workspace_id, session_id, kind, body, expires_at, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        )
        .bind(id)
        .bind(ws)
        .bind(session)
        .bind(kind)
        .bind(body)
        .bind(expires_at)
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// A session's questions and messages, oldest first (at most 500).
    pub async fn session_messages(&mut self, session: Uuid) -> Result<Vec<MessageRow>, StoreError> {
        let ws = self.workspace().uuid();
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM session_messages WHERE session_id = $1 \
             AND workspace_id = $2 ORDER BY created_at, id LIMIT 500"
        );
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query_as::<_, MessageRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(session)
        .bind(ws)
        .fetch_all(c)
        .await)?)
    }

    /// One message of a session.
    pub async fn session_message(
        &mut self,
        session: Uuid,
        id: Uuid,
    ) -> Result<Option<MessageRow>, StoreError> {
        let ws = self.workspace().uuid();
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM session_messages WHERE id = $1 AND session_id = $2 \
             AND workspace_id = $3"
        );
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query_as::<_, MessageRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(id)
        .bind(session)
        .bind(ws)
        .fetch_optional(c)
        .await)?)
    }

    /// Answers an open question: false when it was answered already or has expired.
    pub async fn answer_question(
        &mut self,
        session: Uuid,
        id: Uuid,
        answer: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let ws = self.workspace().uuid();
        let by = self.user_id();
        let done = on_tx!(self.tx_mut(), |c| sqlx::query(
            "UPDATE session_messages SET answer = $4, answered_by = $5, answered_at = $6 \
             WHERE id = $1 AND session_id = $2 AND workspace_id = $3 AND kind = 'question' \
             AND answer IS NULL AND (expires_at IS NULL OR expires_at > $6)"
        )
        .bind(id)
        .bind(session)
        .bind(ws)
        .bind(answer)
        .bind(by)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// A session's plan document, if it wrote one.
    pub async fn session_plan(
        &mut self,
        session: Uuid,
    ) -> Result<Option<(String, i64)>, StoreError> {
        let ws = self.workspace().uuid();
        Ok(on_tx!(self.tx_mut(), |c| {
            sqlx::query_as::<_, (String, i64)>(
                "SELECT content, updated_at FROM session_plans WHERE session_id = $1 \
             AND workspace_id = $2",
            )
            .bind(session)
            .bind(ws)
            .fetch_optional(c)
            .await
        })?)
    }

    /// Replaces a session's plan document.
    pub async fn set_session_plan(
        &mut self,
        session: Uuid,
        content: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let ws = self.workspace().uuid();
        on_tx!(self.tx_mut(), |c| sqlx::query(
            "INSERT INTO session_plans (session_id, workspace_id, content, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (session_id) DO UPDATE \
             SET content = $3, updated_at = $4"
        )
        .bind(session)
        .bind(ws)
        .bind(content)
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }
}
