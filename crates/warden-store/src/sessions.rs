//! Agent sessions as stored. Members reach them only through a workspace's scoped
//! transaction; a host reports on them through the host path, where every statement also
//! names the host the session was given to.

use uuid::Uuid;
use warden_domain::sessions::SessionStatus;

use crate::db::on_tx;
use crate::tenancy::WorkspaceTx;
use crate::{StoreError, Tx};

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRow {
    /// Id.
    pub id: Uuid,
    /// Workspace.
    pub workspace_id: Uuid,
    /// The host running it.
    pub host_id: Option<Uuid>,
    /// Provider (`claude-code`, …, or `command`).
    pub provider: String,
    /// `chat`, `develop` or `bot`.
    pub mode: String,
    /// Status.
    pub status: String,
    /// The prompt.
    pub prompt: String,
    /// The isolation the host gave it.
    pub isolation: Option<String>,
    /// Exit code.
    pub exit_code: Option<i32>,
    /// Why it failed.
    pub error: Option<String>,
    /// Who created it.
    pub created_by: Uuid,
    /// Created (µs).
    pub created_at: i64,
    /// Started (µs).
    pub started_at: Option<i64>,
    /// Ended (µs).
    pub ended_at: Option<i64>,
    /// Closed (µs): its worktree is gone.
    pub archived_at: Option<i64>,
}

const COLUMNS: &str = "id, workspace_id, host_id, provider, mode, status, prompt, isolation, \
     exit_code, error, created_by, created_at, started_at, ended_at, archived_at";

/// A chunk of output.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutputRow {
    /// Position.
    pub seq: i64,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// Text.
    pub data: String,
}

/// A new session.
#[derive(Debug, Clone, Copy)]
pub struct NewSession<'a> {
    /// Id.
    pub id: Uuid,
    /// The host it goes to.
    pub host_id: Uuid,
    /// Provider.
    pub provider: &'a str,
    /// Mode.
    pub mode: &'a str,
    /// Prompt.
    pub prompt: &'a str,
    /// Now (µs).
    pub now: i64,
}

impl WorkspaceTx {
    /// Records a new session, waiting for its host.
    pub async fn insert_session(&mut self, s: &NewSession<'_>) -> Result<(), StoreError> {
        let ws = self.workspace().uuid();
        let by = self.user_id();
        on_tx!(self.tx_mut(), |c| {
            sqlx::query(
            "INSERT INTO agent_sessions (id, workspace_id, host_id, provider, mode, status, prompt, \
             created_by, created_at) VALUES ($1, $2, $3, $4, $5, 'waiting', $6, $7, $8)"
        )
        .bind(s.id)
        .bind(ws)
        .bind(s.host_id)
        .bind(s.provider)
        .bind(s.mode)
        .bind(s.prompt)
        .bind(by)
        .bind(s.now)
        .execute(c)
        .await
        .map(drop)
        })?;
        Ok(())
    }

    /// The workspace's sessions, newest first.
    pub async fn sessions(&mut self, limit: i64) -> Result<Vec<SessionRow>, StoreError> {
        let ws = self.workspace().uuid();
        let sql = format!(
            "SELECT {COLUMNS} FROM agent_sessions WHERE workspace_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT $2"
        );
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query_as::<_, SessionRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(ws)
        .bind(limit)
        .fetch_all(c)
        .await)?)
    }

    /// One of the workspace's sessions.
    pub async fn session(&mut self, id: Uuid) -> Result<Option<SessionRow>, StoreError> {
        let ws = self.workspace().uuid();
        let sql =
            format!("SELECT {COLUMNS} FROM agent_sessions WHERE id = $1 AND workspace_id = $2");
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query_as::<_, SessionRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(id)
        .bind(ws)
        .fetch_optional(c)
        .await)?)
    }

    /// Output chunks of one of the workspace's sessions after `after`, in order.
    pub async fn session_output(
        &mut self,
        id: Uuid,
        after: i64,
        limit: i64,
    ) -> Result<Vec<OutputRow>, StoreError> {
        let ws = self.workspace().uuid();
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query_as::<_, OutputRow>(
            "SELECT seq, stream, data FROM agent_session_output \
             WHERE session_id = $1 AND workspace_id = $2 AND seq > $3 ORDER BY seq LIMIT $4"
        )
        .bind(id)
        .bind(ws)
        .bind(after)
        .bind(limit)
        .fetch_all(c)
        .await)?)
    }

    /// Closes an ended session. Returns whether it was ended and not yet closed.
    pub async fn archive_session(&mut self, id: Uuid, now: i64) -> Result<bool, StoreError> {
        let ws = self.workspace().uuid();
        let n = on_tx!(self.tx_mut(), |c| sqlx::query(
            "UPDATE agent_sessions SET archived_at = $3 WHERE id = $1 AND workspace_id = $2 \
             AND archived_at IS NULL AND status NOT IN ('waiting', 'running')"
        )
        .bind(id)
        .bind(ws)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Ends a session that never started (canceled before its host took it, or refused).
    /// Returns whether it was waiting.
    pub async fn end_waiting_session(
        &mut self,
        id: Uuid,
        status: SessionStatus,
        error: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError> {
        if !SessionStatus::Waiting.may_become(status) {
            return Ok(false);
        }
        let status = status.as_str();
        let ws = self.workspace().uuid();
        let n = on_tx!(self.tx_mut(), |c| sqlx::query(
            "UPDATE agent_sessions SET status = $3, error = $4, ended_at = $5 \
             WHERE id = $1 AND workspace_id = $2 AND status = 'waiting'"
        )
        .bind(id)
        .bind(ws)
        .bind(status)
        .bind(error)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}

/// What a host reports about a session it runs.
#[derive(Debug, Clone, Copy)]
pub enum HostReport<'a> {
    /// Its process started with this isolation.
    Started {
        /// `landlock`, `landlock-partial` or `basic`.
        isolation: &'a str,
    },
    /// It ended (`Done`, `Failed` or `Canceled`; anything a running session may not
    /// become is ignored).
    Ended {
        /// How.
        status: SessionStatus,
        /// Exit code.
        exit_code: Option<i32>,
        /// Why it failed.
        error: Option<&'a str>,
    },
}

/// What a host's list of the sessions it runs changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconciled {
    /// Unfinished sessions it no longer runs, now lost.
    pub lost: u64,
    /// Sessions marked lost while it was away that it still runs, running again.
    pub revived: u64,
}

/// One chunk of a session's output, as its host reported it.
#[derive(Debug, Clone, Copy)]
pub struct OutputChunk<'a> {
    /// The session.
    pub session: Uuid,
    /// Position.
    pub seq: i64,
    /// `stdout` or `stderr`.
    pub stream: &'a str,
    /// Text.
    pub data: &'a str,
}

/// Rows per multi-row insert of output (3 parameters each, well under SQLite's limit).
const OUTPUT_ROWS_PER_INSERT: usize = 100;

impl crate::Store {
    /// Applies a host's report on session `id`, if that session was given to `host`. Returns
    /// the session's workspace when it applied, `None` otherwise. `audit` is recorded in the
    /// same transaction, marked with the workspace.
    pub async fn host_report(
        &self,
        host: &crate::hosts::HostGrant,
        id: Uuid,
        report: HostReport<'_>,
        now: i64,
        audit: (&crate::audit::ChainKey, warden_domain::audit::NewEvent),
    ) -> Result<Option<Uuid>, StoreError> {
        let host = host.host_id();
        let mut tx = self.begin_hosts().await?;
        let ws = host_session(&mut tx, host, id).await?;
        let Some(ws) = ws else {
            tx.rollback().await?;
            return Ok(None);
        };
        let changed = match report {
            HostReport::Started { isolation } => on_tx!(tx, |c| sqlx::query(
                "UPDATE agent_sessions SET status = 'running', isolation = $2, started_at = $3 \
                     WHERE id = $1 AND status = 'waiting'"
            )
            .bind(id)
            .bind(isolation)
            .bind(now)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?,
            HostReport::Ended {
                status,
                exit_code,
                error,
            } => {
                // Only from the statuses the domain lets the host make this one (a session
                // marked lost while its host was away gets the end the host reports).
                let from: Vec<&str> = [
                    SessionStatus::Waiting,
                    SessionStatus::Running,
                    SessionStatus::Lost,
                ]
                .into_iter()
                .filter(|s| s.host_may_make(status))
                .map(SessionStatus::as_str)
                .collect();
                let Some(&last) = from.last() else {
                    tx.rollback().await?;
                    return Ok(None);
                };
                let from: [&str; 3] = std::array::from_fn(|i| from.get(i).copied().unwrap_or(last));
                let status = status.as_str();
                on_tx!(tx, |c| {
                    sqlx::query(
                    "UPDATE agent_sessions SET status = $2, exit_code = $3, error = $4, ended_at = $5 \
                     WHERE id = $1 AND status IN ($6, $7, $8)"
                )
                .bind(id)
                .bind(status)
                .bind(exit_code)
                .bind(error)
                .bind(now)
                .bind(from[0])
                .bind(from[1])
                .bind(from[2])
                .execute(c)
                .await
                .map(|r| r.rows_affected())
                })?
            }
        };
        // Already so (a report sent again after a reconnect): nothing to record twice.
        if changed == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        tx.notify_output(id).await?;
        let (key, event) = audit;
        let event = warden_domain::audit::NewEvent {
            workspace_id: Some(ws.to_string()),
            ..event
        };
        tx.record(key, &event).await?;
        tx.commit().await?;
        Ok(Some(ws))
    }

    /// Records a burst of output chunks a host reported, in one transaction: each chunk only
    /// if its session was given to `host`. Returns the sessions that got output.
    pub async fn host_output(
        &self,
        host: &crate::hosts::HostGrant,
        chunks: &[OutputChunk<'_>],
    ) -> Result<Vec<Uuid>, StoreError> {
        let host = host.host_id();
        let mut tx = self.begin_hosts().await?;
        let mut sessions: Vec<(Uuid, Option<Uuid>)> = Vec::new();
        for c in chunks {
            if !sessions.iter().any(|(id, _)| *id == c.session) {
                let ws = host_session(&mut tx, host, c.session).await?;
                sessions.push((c.session, ws));
            }
        }
        for (id, ws) in &sessions {
            let Some(ws) = ws else { continue };
            let mine: Vec<&OutputChunk<'_>> = chunks.iter().filter(|c| c.session == *id).collect();
            for part in mine.chunks(OUTPUT_ROWS_PER_INSERT) {
                let mut sql = String::from(
                    "INSERT INTO agent_session_output (session_id, workspace_id, seq, stream, data) \
                     VALUES ",
                );
                for i in 0..part.len() {
                    let n = 3 + i * 3;
                    if i > 0 {
                        sql.push(',');
                    }
                    sql.push_str(&format!("($1, $2, ${n}, ${}, ${})", n + 1, n + 2));
                }
                sql.push_str(" ON CONFLICT DO NOTHING");
                // Only placeholders are formatted into the text; every value is bound.
                on_tx!(tx, |c| {
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                        .bind(*id)
                        .bind(*ws);
                    for chunk in part {
                        q = q.bind(chunk.seq).bind(chunk.stream).bind(chunk.data);
                    }
                    q.execute(c).await.map(drop)
                })?;
            }
            tx.notify_output(*id).await?;
        }
        tx.commit().await?;
        Ok(sessions
            .into_iter()
            .filter_map(|(id, ws)| ws.map(|_| id))
            .collect())
    }

    /// Subscribes to the sessions other nodes record output or an end for; `None` on SQLite
    /// (one node, which wakes its readers directly).
    pub async fn output_changes(&self) -> Result<Option<OutputChanges>, StoreError> {
        let Some(pool) = self.pool_postgres() else {
            return Ok(None);
        };
        let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
        listener.listen(OUTPUT_CHANNEL).await?;
        Ok(Some(OutputChanges { listener }))
    }

    /// A host says which sessions it runs: its other unfinished sessions created before
    /// `since` (µs, when this connection began) are lost, and those of its sessions marked
    /// lost while it was away (started, not closed) run again. Returns how many of each.
    pub async fn reconcile_host_sessions(
        &self,
        host: &crate::hosts::HostGrant,
        running: &[Uuid],
        since: i64,
        now: i64,
    ) -> Result<Reconciled, StoreError> {
        let host = host.host_id();
        let mut tx = self.begin_hosts().await?;
        let open = on_tx!(tx, |c| sqlx::query_scalar::<_, Uuid>(
            "SELECT id FROM agent_sessions WHERE host_id = $1 \
             AND status IN ('waiting', 'running') AND created_at < $2"
        )
        .bind(host)
        .bind(since)
        .fetch_all(c)
        .await)?;
        let mut lost = 0;
        for id in open.into_iter().filter(|id| !running.contains(id)) {
            lost += on_tx!(tx, |c| sqlx::query(
                "UPDATE agent_sessions SET status = 'lost', ended_at = $2, \
                 error = 'the host no longer runs it' \
                 WHERE id = $1 AND status IN ('waiting', 'running')"
            )
            .bind(id)
            .bind(now)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        }
        debug_assert!(SessionStatus::Lost.host_may_make(SessionStatus::Running));
        let mut revived = 0;
        for id in running {
            revived += on_tx!(tx, |c| sqlx::query(
                "UPDATE agent_sessions SET status = 'running', ended_at = NULL, error = NULL \
                 WHERE id = $1 AND host_id = $2 AND status = 'lost' \
                 AND started_at IS NOT NULL AND archived_at IS NULL"
            )
            .bind(*id)
            .bind(host)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        }
        tx.commit().await?;
        Ok(Reconciled { lost, revived })
    }

    /// Marks lost the unfinished sessions whose host is gone: deleted, or not seen since
    /// `seen_before` (µs). Returns how many.
    pub async fn lose_sessions_of_absent_hosts(
        &self,
        seen_before: i64,
        now: i64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin_hosts().await?;
        let n = on_tx!(tx, |c| sqlx::query(
            "UPDATE agent_sessions SET status = 'lost', ended_at = $2, \
             error = 'the host went away' \
             WHERE status IN ('waiting', 'running') AND (host_id IS NULL OR host_id IN \
             (SELECT id FROM hosts WHERE connected_node IS NULL OR last_seen_at IS NULL \
              OR last_seen_at < $1))"
        )
        .bind(seen_before)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        tx.commit().await?;
        Ok(n)
    }
}

async fn host_session(tx: &mut Tx, host: Uuid, id: Uuid) -> Result<Option<Uuid>, StoreError> {
    Ok(on_tx!(tx, |c| sqlx::query_scalar::<_, Uuid>(
        "SELECT workspace_id FROM agent_sessions WHERE id = $1 AND host_id = $2"
    )
    .bind(id)
    .bind(host)
    .fetch_optional(c)
    .await)?)
}

impl WorkspaceTx {
    /// Approved session hosts this workspace may use — its own, and platform hosts that are not
    /// restricted to other workspaces — that are connected to some node (seen after
    /// `fresh_after`, µs).
    pub async fn usable_hosts(&mut self, fresh_after: i64) -> Result<Vec<Uuid>, StoreError> {
        let ws = self.workspace().uuid();
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query_scalar::<_, Uuid>(
            "SELECT h.id FROM hosts h WHERE h.status = 'approved' AND h.kind = 'session' \
             AND (h.workspace_id = $1 OR (h.workspace_id IS NULL AND (\
               NOT EXISTS (SELECT 1 FROM host_workspaces hw WHERE hw.host_id = h.id) \
               OR EXISTS (SELECT 1 FROM host_workspaces hw \
                          WHERE hw.host_id = h.id AND hw.workspace_id = $1)))) \
             AND h.connected_node IS NOT NULL AND h.last_seen_at > $2 \
             ORDER BY h.id"
        )
        .bind(ws)
        .bind(fresh_after)
        .fetch_all(c)
        .await)?)
    }
}

#[cfg(test)]
mod tests {
    use warden_domain::sessions::SessionStatus::{self, *};

    /// The queries above spell the session state machine in SQL (`status IN ('waiting',
    /// 'running')` for live sessions, `status = 'waiting'` before a start); the rule itself
    /// is `SessionStatus::may_become`. This keeps the two the same.
    #[test]
    fn the_statuses_the_queries_treat_as_live_are_the_domain_rules() {
        let all = [Waiting, Running, Done, Failed, Canceled, Lost];
        let live: Vec<SessionStatus> = all.into_iter().filter(|s| !s.is_final()).collect();
        assert_eq!(live, [Waiting, Running]);
        for s in &live {
            assert!(s.may_become(Lost), "{s:?} can be lost (reconcile, sweep)");
            assert!(s.may_become(Failed) && s.may_become(Canceled));
        }
        assert!(Waiting.may_become(Running) && !Running.may_become(Running));
        assert!(Running.may_become(Done) && !Waiting.may_become(Done));
        for s in all.into_iter().filter(|s| s.is_final()) {
            assert!(all.into_iter().all(|t| !s.may_become(t)), "{s:?} is final");
        }
    }
}

/// What waits on a session's end, for the sweep that catches ends without a host's report.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Awaiting {
    /// A workflow step (`workflow_steps`, status `running`).
    WorkflowStep,
    /// A bot's answer (`bot_messages`, status `answering`).
    BotAnswer,
}

impl crate::Store {
    /// Sessions that ended while what awaits them still does: each with whether it failed.
    /// Read across workspaces (the runners' and the hosts' scopes).
    pub(crate) async fn sessions_ended_awaited(
        &self,
        awaiting: Awaiting,
        limit: i64,
    ) -> Result<Vec<(Uuid, bool)>, StoreError> {
        let sql = match awaiting {
            Awaiting::WorkflowStep => {
                "SELECT a.id, a.status FROM workflow_steps w JOIN agent_sessions a \
                 ON a.id = w.session_id WHERE w.status = 'running' \
                 AND a.status IN ('done', 'failed', 'canceled', 'lost') LIMIT $1"
            }
            Awaiting::BotAnswer => {
                "SELECT a.id, a.status FROM bot_messages w JOIN agent_sessions a \
                 ON a.id = w.session_id WHERE w.status = 'answering' \
                 AND a.status IN ('done', 'failed', 'canceled', 'lost') LIMIT $1"
            }
        };
        let mut tx = self.begin_hosts_read().await?;
        crate::tenancy::set_scope(&mut tx, "warden.jobs", "on").await?;
        let rows: Vec<(Uuid, String)> =
            on_tx!(tx, |c| sqlx::query_as(sql).bind(limit).fetch_all(c).await)?;
        tx.commit().await?;
        Ok(rows
            .into_iter()
            .map(|(id, st)| (id, st != "done"))
            .collect())
    }
}

/// The PostgreSQL channel on which a node announces, when it commits, the sessions it recorded
/// output or an end for.
const OUTPUT_CHANNEL: &str = "warden_output";

impl crate::db::Tx {
    /// On PostgreSQL, tells every node when this transaction commits that session `id` has
    /// something new, so their readers of it wake at once (not at their next look).
    pub(crate) async fn notify_output(&mut self, id: Uuid) -> Result<(), StoreError> {
        if let crate::db::TxInner::Postgres(t) = &mut self.inner {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(OUTPUT_CHANNEL)
                .bind(id.to_string())
                .execute(&mut **t)
                .await?;
        }
        Ok(())
    }
}

/// Sessions other nodes recorded output or an end for (PostgreSQL only).
pub struct OutputChanges {
    listener: sqlx::postgres::PgListener,
}

impl std::fmt::Debug for OutputChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputChanges").finish_non_exhaustive()
    }
}

impl OutputChanges {
    /// The next session with something new. Reconnects by itself after a lost connection
    /// (what was announced meanwhile is missed; readers still look every second).
    pub async fn next(&mut self) -> Result<Uuid, StoreError> {
        loop {
            let n = self.listener.recv().await?;
            if let Ok(id) = n.payload().parse() {
                return Ok(id);
            }
        }
    }
}
