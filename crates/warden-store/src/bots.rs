//! Bots as stored, and their conversations. People reach them through the workspace's scoped
//! transaction; the queue's runners take a bot's next message through [`JobsTx`], the bot's
//! row locked first so that a bot answers one message at a time on any number of nodes.

use uuid::Uuid;

use crate::automations::JobsTx;
use crate::db::on_tx;
use crate::tenancy::WorkspaceTx;
use crate::{Store, StoreError, Tx};

/// A bot as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BotRow {
    /// Id.
    pub id: Uuid,
    /// Workspace.
    pub workspace_id: Uuid,
    /// Name, unique in the workspace.
    pub name: String,
    /// The coding agent that answers.
    pub provider: String,
    /// What it is told before the conversation.
    pub instructions: String,
    /// Whom its sessions act for.
    pub run_as: Uuid,
    /// Created (µs).
    pub created_at: i64,
    /// Last changed (µs).
    pub updated_at: i64,
}

const BOT_COLUMNS: &str =
    "id, workspace_id, name, provider, instructions, run_as, created_at, updated_at";

/// A message to a bot, and its answer.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BotMessageRow {
    /// Id.
    pub id: Uuid,
    /// The bot.
    pub bot_id: Uuid,
    /// Workspace.
    pub workspace_id: Uuid,
    /// Where it came from: `console` (the API or the console) or `webhook`.
    pub channel: String,
    /// The message.
    pub body: String,
    /// `queued`, `answering`, `answered`, `failed`.
    pub status: String,
    /// The answer.
    pub answer: Option<String>,
    /// The session that answers it.
    pub session_id: Option<Uuid>,
    /// Who sent it (none for a webhook).
    pub created_by: Option<Uuid>,
    /// Sent (µs).
    pub created_at: i64,
    /// Answered (µs).
    pub answered_at: Option<i64>,
}

const MESSAGE_COLUMNS: &str = "id, bot_id, workspace_id, channel, body, status, answer, \
     session_id, created_by, created_at, answered_at";

async fn bot_in(tx: &mut Tx, id: Uuid, ws: Option<Uuid>) -> Result<Option<BotRow>, StoreError> {
    let sql = format!(
        "SELECT {BOT_COLUMNS} FROM bots WHERE id = $1 AND ($2 IS NULL OR workspace_id = $2)"
    );
    Ok(on_tx!(tx, |c| sqlx::query_as::<_, BotRow>(
        sqlx::AssertSqlSafe(sql)
    )
    .bind(id)
    .bind(ws)
    .fetch_optional(c)
    .await)?)
}

async fn messages_in(tx: &mut Tx, bot: Uuid, limit: i64) -> Result<Vec<BotMessageRow>, StoreError> {
    // The newest `limit`, returned oldest first.
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM (SELECT {MESSAGE_COLUMNS} FROM bot_messages \
         WHERE bot_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2) m \
         ORDER BY created_at, id"
    );
    Ok(on_tx!(tx, |c| sqlx::query_as::<_, BotMessageRow>(
        sqlx::AssertSqlSafe(sql)
    )
    .bind(bot)
    .bind(limit)
    .fetch_all(c)
    .await)?)
}

async fn insert_message_in(tx: &mut Tx, m: &BotMessageRow) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO bot_messages ({MESSAGE_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    );
    on_tx!(tx, |c| sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(m.id)
        .bind(m.bot_id)
        .bind(m.workspace_id)
        .bind(&m.channel)
        .bind(&m.body)
        .bind(&m.status)
        .bind(&m.answer)
        .bind(m.session_id)
        .bind(m.created_by)
        .bind(m.created_at)
        .bind(m.answered_at)
        .execute(c)
        .await
        .map(drop))?;
    Ok(())
}

impl WorkspaceTx {
    /// Stores a new bot.
    pub async fn insert_bot(&mut self, b: &BotRow) -> Result<(), StoreError> {
        let sql =
            format!("INSERT INTO bots ({BOT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)");
        on_tx!(self.tx_mut(), |c| sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(b.id)
            .bind(b.workspace_id)
            .bind(&b.name)
            .bind(&b.provider)
            .bind(&b.instructions)
            .bind(b.run_as)
            .bind(b.created_at)
            .bind(b.updated_at)
            .execute(c)
            .await
            .map(drop))?;
        Ok(())
    }

    /// Whether the workspace has a bot called `name`.
    pub async fn bot_name_taken(&mut self, name: &str) -> Result<bool, StoreError> {
        let ws = self.workspace().uuid();
        let n: i64 = on_tx!(self.tx_mut(), |c| sqlx::query_scalar(
            "SELECT COUNT(*) FROM bots WHERE workspace_id = $1 AND name = $2"
        )
        .bind(ws)
        .bind(name)
        .fetch_one(c)
        .await)?;
        Ok(n > 0)
    }

    /// The workspace's bots, by name.
    pub async fn bots(&mut self) -> Result<Vec<BotRow>, StoreError> {
        let ws = self.workspace().uuid();
        let sql = format!("SELECT {BOT_COLUMNS} FROM bots WHERE workspace_id = $1 ORDER BY name");
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query_as::<_, BotRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(ws)
        .fetch_all(c)
        .await)?)
    }

    /// One bot.
    pub async fn bot(&mut self, id: Uuid) -> Result<Option<BotRow>, StoreError> {
        let ws = self.workspace().uuid();
        bot_in(self.tx_mut(), id, Some(ws)).await
    }

    /// Deletes a bot and its conversation.
    pub async fn delete_bot(&mut self, id: Uuid) -> Result<bool, StoreError> {
        let ws = self.workspace().uuid();
        let n = on_tx!(self.tx_mut(), |c| sqlx::query(
            "DELETE FROM bots WHERE id = $1 AND workspace_id = $2"
        )
        .bind(id)
        .bind(ws)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Queues a message to a bot.
    pub async fn insert_bot_message(&mut self, m: &BotMessageRow) -> Result<(), StoreError> {
        insert_message_in(self.tx_mut(), m).await
    }

    /// A bot's newest `limit` messages, oldest first.
    pub async fn bot_messages(
        &mut self,
        bot: Uuid,
        limit: i64,
    ) -> Result<Vec<BotMessageRow>, StoreError> {
        messages_in(self.tx_mut(), bot, limit).await
    }
}

impl WorkspaceTx {
    /// Makes an event source's deliveries messages to `bot` (`None`: no more).
    pub async fn set_source_bot(
        &mut self,
        source: Uuid,
        bot: Option<Uuid>,
        now: i64,
    ) -> Result<(), StoreError> {
        let ws = self.workspace().uuid();
        match bot {
            Some(b) => on_tx!(self.tx_mut(), |c| sqlx::query(
                "INSERT INTO event_source_bots (source_id, workspace_id, bot_id, updated_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (source_id) DO UPDATE \
                 SET bot_id = $3, updated_at = $4"
            )
            .bind(source)
            .bind(ws)
            .bind(b)
            .bind(now)
            .execute(c)
            .await
            .map(drop))?,
            None => on_tx!(self.tx_mut(), |c| sqlx::query(
                "DELETE FROM event_source_bots WHERE source_id = $1 AND workspace_id = $2"
            )
            .bind(source)
            .bind(ws)
            .execute(c)
            .await
            .map(drop))?,
        }
        Ok(())
    }
}

impl JobsTx {
    /// Which of these event sources send their deliveries to a bot.
    pub async fn sources_with_bots(
        &mut self,
        sources: &[Uuid],
    ) -> Result<std::collections::HashSet<Uuid>, StoreError> {
        if sources.is_empty() {
            return Ok(std::collections::HashSet::new());
        }
        let found: Vec<Uuid> = on_tx!(self.tx(), |c| {
            let mut q = sqlx::QueryBuilder::new(
                "SELECT source_id FROM event_source_bots WHERE source_id IN (",
            );
            let mut list = q.separated(", ");
            for id in sources {
                list.push_bind(*id);
            }
            q.push(")");
            q.build_query_scalar::<Uuid>().fetch_all(c).await
        })?;
        Ok(found.into_iter().collect())
    }

    /// The bot an event source's deliveries go to.
    pub async fn bot_of_source(&mut self, source: Uuid) -> Result<Option<BotRow>, StoreError> {
        let sql = format!(
            "SELECT {} FROM bots b JOIN event_source_bots e ON e.bot_id = b.id \
             WHERE e.source_id = $1",
            crate::db::prefixed(BOT_COLUMNS, "b")
        );
        Ok(on_tx!(self.tx(), |c| sqlx::query_as::<_, BotRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(source)
        .fetch_optional(c)
        .await)?)
    }

    /// Locks a bot (until this transaction ends) and returns it: whoever holds the lock
    /// decides which message it answers next.
    pub async fn lock_bot(&mut self, id: Uuid) -> Result<Option<BotRow>, StoreError> {
        on_tx!(self.tx(), |c| sqlx::query(
            "UPDATE bots SET updated_at = updated_at WHERE id = $1"
        )
        .bind(id)
        .execute(c)
        .await
        .map(drop))?;
        bot_in(self.tx(), id, None).await
    }

    /// A bot's newest `limit` messages, oldest first (its conversation).
    pub async fn bot_conversation(
        &mut self,
        bot: Uuid,
        limit: i64,
    ) -> Result<Vec<BotMessageRow>, StoreError> {
        messages_in(self.tx(), bot, limit).await
    }

    /// The message a bot answers now, if one is being answered; else the oldest waiting.
    pub async fn bot_next_message(
        &mut self,
        bot: Uuid,
    ) -> Result<Option<BotMessageRow>, StoreError> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM bot_messages WHERE bot_id = $1 \
             AND status IN ('answering', 'queued') \
             ORDER BY CASE status WHEN 'answering' THEN 0 ELSE 1 END, created_at, id LIMIT 1"
        );
        Ok(on_tx!(self.tx(), |c| sqlx::query_as::<_, BotMessageRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(bot)
        .fetch_optional(c)
        .await)?)
    }

    /// Queues a message to a bot (a webhook's delivery).
    pub async fn insert_bot_message(&mut self, m: &BotMessageRow) -> Result<(), StoreError> {
        insert_message_in(self.tx(), m).await
    }

    /// Marks a queued message as being answered by `session`: false when it was not queued.
    pub async fn bot_message_answering(
        &mut self,
        id: Uuid,
        session: Uuid,
    ) -> Result<bool, StoreError> {
        let n = on_tx!(self.tx(), |c| sqlx::query(
            "UPDATE bot_messages SET status = 'answering', session_id = $2 \
             WHERE id = $1 AND status = 'queued'"
        )
        .bind(id)
        .bind(session)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// The message a session answers.
    pub async fn bot_message_of_session(
        &mut self,
        session: Uuid,
    ) -> Result<Option<BotMessageRow>, StoreError> {
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM bot_messages WHERE session_id = $1");
        Ok(on_tx!(self.tx(), |c| sqlx::query_as::<_, BotMessageRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(session)
        .fetch_optional(c)
        .await)?)
    }

    /// Ends a message being answered: false when it was not being answered.
    pub async fn bot_message_done(
        &mut self,
        id: Uuid,
        status: &str,
        answer: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let n = on_tx!(self.tx(), |c| sqlx::query(
            "UPDATE bot_messages SET status = $2, answer = $3, answered_at = $4 \
             WHERE id = $1 AND status = 'answering'"
        )
        .bind(id)
        .bind(status)
        .bind(answer)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}

impl Store {
    /// Sessions that ended while the bot message they answer is still being answered (ends
    /// that bypass the hosts' reports): each with whether it failed.
    pub async fn bot_sessions_ended(&self, limit: i64) -> Result<Vec<(Uuid, bool)>, StoreError> {
        self.sessions_ended_awaited(crate::sessions::Awaiting::BotAnswer, limit)
            .await
    }
}
