//! Automations and their runs, as stored (event sources and their deliveries are
//! [`crate::event_sources`]).
//!
//! People reach them through a workspace's scoped transaction ([`WorkspaceTx`]). The
//! background paths — the scheduler, the queue's automation runner and the webhook intake —
//! act across workspaces through [`JobsTx`], which only [`Store::begin_jobs`] makes (on
//! PostgreSQL it names the transaction `warden.jobs`, the one scope row-level security opens
//! these tables to besides a workspace's own).

use uuid::Uuid;

use crate::db::on_tx;
use crate::jobs::NewJob;
use crate::tenancy::{WorkspaceTx, set_scope};
use crate::{Store, StoreError, Tx};

/// An automation as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AutomationRow {
    /// Id.
    pub id: Uuid,
    /// Workspace.
    pub workspace_id: Uuid,
    /// Name, unique in the workspace.
    pub name: String,
    /// `manual`, `once`, `cron`, `loop` or `trigger`.
    pub kind: String,
    /// For `once`: when (µs).
    pub run_at: Option<i64>,
    /// For `cron`: the five-field expression.
    pub cron: Option<String>,
    /// For `cron`: the IANA time zone.
    pub timezone: Option<String>,
    /// For `loop`: seconds between the end of a run and the next.
    pub loop_interval_secs: Option<i64>,
    /// For `loop`: most runs.
    pub loop_max: Option<i64>,
    /// The prompt template (inline).
    pub prompt: String,
    /// A stored prompt template of the workspace, used instead of `prompt`.
    pub prompt_name: Option<String>,
    /// Provider (or `command`).
    pub provider: String,
    /// For `command`: the program and its arguments (JSON array).
    pub command: Option<String>,
    /// Session mode.
    pub mode: String,
    /// A particular host, if chosen.
    pub host_id: Option<Uuid>,
    /// Runs missed while no node ran: `skip` or `run_once`.
    pub missed: String,
    /// Whether it runs.
    pub enabled: bool,
    /// When its schedule fires next (µs).
    pub next_run_at: Option<i64>,
    /// Runs started so far.
    pub runs_started: i64,
    /// Whom runs act for.
    pub run_as: Uuid,
    /// Who created it.
    pub created_by: Uuid,
    /// Created (µs).
    pub created_at: i64,
    /// Last changed (µs).
    pub updated_at: i64,
}

const AUTOMATION_COLUMNS: &str = "id, workspace_id, name, kind, run_at, cron, timezone, \
     loop_interval_secs, loop_max, prompt, prompt_name, provider, command, mode, host_id, missed, \
     enabled, next_run_at, runs_started, run_as, created_by, created_at, updated_at";

/// What an automation is: everything a person sets.
#[derive(Debug, Clone)]
pub struct AutomationSpec {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: String,
    /// For `once`.
    pub run_at: Option<i64>,
    /// For `cron`.
    pub cron: Option<String>,
    /// For `cron`.
    pub timezone: Option<String>,
    /// For `loop`.
    pub loop_interval_secs: Option<i64>,
    /// For `loop`.
    pub loop_max: Option<i64>,
    /// Prompt template (inline).
    pub prompt: String,
    /// A stored prompt template's name.
    pub prompt_name: Option<String>,
    /// Provider.
    pub provider: String,
    /// Command (JSON array).
    pub command: Option<String>,
    /// Mode.
    pub mode: String,
    /// Host.
    pub host_id: Option<Uuid>,
    /// Missed-run policy.
    pub missed: String,
    /// Enabled.
    pub enabled: bool,
    /// When it fires next (µs), as the caller computed it from the schedule.
    pub next_run_at: Option<i64>,
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RunRow {
    /// Id.
    pub id: Uuid,
    /// Workspace.
    pub workspace_id: Uuid,
    /// Its automation.
    pub automation_id: Uuid,
    /// The job that carried it.
    pub job_id: Uuid,
    /// `manual`, `schedule`, `loop` or `event`.
    pub trigger: String,
    /// The instant its schedule named (µs).
    pub scheduled_for: Option<i64>,
    /// The delivery that triggered it.
    pub event_id: Option<Uuid>,
    /// The session it started.
    pub session_id: Option<Uuid>,
    /// `queued`, `running`, `done`, `failed` or `skipped`.
    pub status: String,
    /// Why it failed or was skipped.
    pub error: Option<String>,
    /// Created (µs).
    pub created_at: i64,
    /// Its session started (µs).
    pub started_at: Option<i64>,
    /// Ended (µs).
    pub ended_at: Option<i64>,
}

const RUN_COLUMNS: &str = "id, workspace_id, automation_id, job_id, trigger, scheduled_for, \
     event_id, session_id, status, error, created_at, started_at, ended_at";

impl WorkspaceTx {
    /// Stores a new automation.
    pub async fn insert_automation(
        &mut self,
        id: Uuid,
        a: &AutomationSpec,
        now: i64,
    ) -> Result<bool, StoreError> {
        let ws = self.workspace().uuid();
        let by = self.user_id();
        let res = on_tx!(self.tx_mut(), |c| sqlx::query(
            "INSERT INTO automations (id, workspace_id, name, kind, run_at, cron, timezone, \
             loop_interval_secs, loop_max, prompt, prompt_name, provider, command, mode, host_id, \
             missed, enabled, next_run_at, runs_started, run_as, created_by, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $20, $11, $12, $13, $14, \
             $15, $16, $17, 0, $18, $18, $19, $19)"
        )
        .bind(id)
        .bind(ws)
        .bind(&a.name)
        .bind(&a.kind)
        .bind(a.run_at)
        .bind(&a.cron)
        .bind(&a.timezone)
        .bind(a.loop_interval_secs)
        .bind(a.loop_max)
        .bind(&a.prompt)
        .bind(&a.provider)
        .bind(&a.command)
        .bind(&a.mode)
        .bind(a.host_id)
        .bind(&a.missed)
        .bind(a.enabled)
        .bind(a.next_run_at)
        .bind(by)
        .bind(now)
        .bind(&a.prompt_name)
        .execute(c)
        .await
        .map(|r| r.rows_affected()));
        unique_ok(res)
    }

    /// Replaces what an automation is; it now acts for the caller. `false` when the name is
    /// taken.
    pub async fn update_automation(
        &mut self,
        id: Uuid,
        a: &AutomationSpec,
        now: i64,
    ) -> Result<bool, StoreError> {
        let ws = self.workspace().uuid();
        let by = self.user_id();
        let res = on_tx!(self.tx_mut(), |c| {
            sqlx::query(
            "UPDATE automations SET name = $3, kind = $4, run_at = $5, cron = $6, timezone = $7, \
             loop_interval_secs = $8, loop_max = $9, prompt = $10, provider = $11, command = $12, \
             mode = $13, host_id = $14, missed = $15, enabled = $16, next_run_at = $17, \
             run_as = $18, updated_at = $19, prompt_name = $20 WHERE id = $1 AND workspace_id = $2"
        )
        .bind(id)
        .bind(ws)
        .bind(&a.name)
        .bind(&a.kind)
        .bind(a.run_at)
        .bind(&a.cron)
        .bind(&a.timezone)
        .bind(a.loop_interval_secs)
        .bind(a.loop_max)
        .bind(&a.prompt)
        .bind(&a.provider)
        .bind(&a.command)
        .bind(&a.mode)
        .bind(a.host_id)
        .bind(&a.missed)
        .bind(a.enabled)
        .bind(a.next_run_at)
        .bind(by)
        .bind(now)
        .bind(&a.prompt_name)
        .execute(c)
        .await
        .map(|r| r.rows_affected())
        });
        unique_ok(res)
    }

    /// The workspace's automations, by name.
    pub async fn automations(&mut self) -> Result<Vec<AutomationRow>, StoreError> {
        let ws = self.workspace().uuid();
        let sql = format!(
            "SELECT {AUTOMATION_COLUMNS} FROM automations WHERE workspace_id = $1 ORDER BY name"
        );
        Ok(on_tx!(self.tx_mut(), |c| {
            sqlx::query_as::<_, AutomationRow>(sqlx::AssertSqlSafe(sql))
                .bind(ws)
                .fetch_all(c)
                .await
        })?)
    }

    /// One of the workspace's automations.
    pub async fn automation(&mut self, id: Uuid) -> Result<Option<AutomationRow>, StoreError> {
        let ws = self.workspace().uuid();
        automation_in(self.tx_mut(), id, Some(ws)).await
    }

    /// Deletes an automation (its runs with it; sources pointing at it stop running one).
    pub async fn delete_automation(&mut self, id: Uuid) -> Result<bool, StoreError> {
        let ws = self.workspace().uuid();
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query(
            "DELETE FROM automations WHERE id = $1 AND workspace_id = $2"
        )
        .bind(id)
        .bind(ws)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?
            == 1)
    }

    /// Records a run requested by a person, queued with its job.
    pub async fn insert_run(&mut self, r: &RunRow) -> Result<(), StoreError> {
        insert_run(self.tx_mut(), r).await
    }

    /// Enqueues a job in the workspace (a manual run, say), in this transaction.
    pub async fn enqueue_job(&mut self, job: &NewJob<'_>) -> Result<Option<Uuid>, StoreError> {
        self.tx_mut().enqueue_job(job).await
    }

    /// An automation's runs, newest first.
    pub async fn automation_runs(
        &mut self,
        automation: Uuid,
        limit: i64,
    ) -> Result<Vec<RunRow>, StoreError> {
        let ws = self.workspace().uuid();
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM automation_runs WHERE automation_id = $1 \
             AND workspace_id = $2 ORDER BY created_at DESC, id DESC LIMIT $3"
        );
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query_as::<_, RunRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(automation)
        .bind(ws)
        .bind(limit)
        .fetch_all(c)
        .await)?)
    }
}

/// `true` when one row changed, `false` when a unique constraint refused the change (a name
/// taken). On PostgreSQL the transaction is then aborted: the caller gives up on it.
pub(crate) fn unique_ok(res: Result<u64, sqlx::Error>) -> Result<bool, StoreError> {
    match res {
        Ok(n) => Ok(n == 1),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

async fn automation_in(
    tx: &mut Tx,
    id: Uuid,
    ws: Option<Uuid>,
) -> Result<Option<AutomationRow>, StoreError> {
    let sql = format!(
        "SELECT {AUTOMATION_COLUMNS} FROM automations WHERE id = $1 \
         AND ($2 IS NULL OR workspace_id = $2)"
    );
    Ok(on_tx!(tx, |c| sqlx::query_as::<_, AutomationRow>(
        sqlx::AssertSqlSafe(sql)
    )
    .bind(id)
    .bind(ws)
    .fetch_optional(c)
    .await)?)
}

async fn insert_run(tx: &mut Tx, r: &RunRow) -> Result<(), StoreError> {
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO automation_runs (id, workspace_id, automation_id, job_id, trigger, \
         scheduled_for, event_id, session_id, status, error, created_at, started_at, \
         ended_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    )
    .bind(r.id)
    .bind(r.workspace_id)
    .bind(r.automation_id)
    .bind(r.job_id)
    .bind(&r.trigger)
    .bind(r.scheduled_for)
    .bind(r.event_id)
    .bind(r.session_id)
    .bind(&r.status)
    .bind(&r.error)
    .bind(r.created_at)
    .bind(r.started_at)
    .bind(r.ended_at)
    .execute(c)
    .await
    .map(drop))?;
    Ok(())
}

/// A transaction of the background paths, across workspaces. Only [`Store::begin_jobs`]
/// makes one.
#[derive(Debug)]
pub struct JobsTx(pub(crate) Tx);

impl Store {
    /// Starts a read-write transaction for the scheduler, the queue's runners or the webhook
    /// intake.
    pub async fn begin_jobs(&self) -> Result<JobsTx, StoreError> {
        let mut tx = self.begin().await?;
        set_scope(&mut tx, "warden.jobs", "on").await?;
        Ok(JobsTx(tx))
    }
}

/// An automation whose schedule is due.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueAutomation {
    /// Id.
    pub id: Uuid,
    /// Workspace.
    pub workspace_id: Uuid,
    /// Kind (`once` or `cron`, or `loop` waiting for its next run).
    pub kind: String,
    /// The instant due (µs).
    pub next_run_at: i64,
    /// For `cron`.
    pub cron: Option<String>,
    /// For `cron`.
    pub timezone: Option<String>,
    /// Missed-run policy.
    pub missed: String,
}

impl JobsTx {
    /// Commits.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.0.commit().await
    }

    /// The transaction, to enqueue jobs or record audit events in it.
    pub fn tx(&mut self) -> &mut Tx {
        &mut self.0
    }

    /// Begins now: on SQLite, waits here for the write lock instead of at the first
    /// statement, so what arrives while it waits can still go into this transaction (the
    /// webhook inbox's group commit). Nothing on PostgreSQL.
    pub async fn begin_now(&mut self) -> Result<(), StoreError> {
        self.0.begun().await
    }

    /// Enabled automations due at `now`, earliest first. On PostgreSQL the rows stay locked
    /// until this transaction ends and rows another node holds are skipped, so nodes
    /// scheduling at once share the work instead of waiting on each other.
    pub async fn due_automations(
        &mut self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<DueAutomation>, StoreError> {
        let lock = match self.0.backend() {
            crate::Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            crate::Backend::Sqlite => "",
        };
        let sql = format!(
            "SELECT id, workspace_id, kind, next_run_at, cron, timezone, missed FROM automations \
             WHERE enabled AND next_run_at IS NOT NULL AND next_run_at <= $1 \
             ORDER BY next_run_at LIMIT $2{lock}"
        );
        Ok(on_tx!(self.0, |c| sqlx::query_as::<_, DueAutomation>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(now)
        .bind(limit)
        .fetch_all(c)
        .await)?)
    }

    /// Moves many automations' schedules at once: each `(id, due, next, fired)` moves from
    /// `due` to `next` only if it is still at `due`, and counts a run when `fired`. Returns the
    /// ids moved.
    pub async fn advance_automations(
        &mut self,
        items: &[(Uuid, i64, Option<i64>, bool)],
    ) -> Result<std::collections::HashSet<Uuid>, StoreError> {
        let mut moved = std::collections::HashSet::new();
        if let crate::db::TxInner::Postgres(t) = &mut self.0.inner {
            let ids: Vec<Uuid> = items.iter().map(|i| i.0).collect();
            let dues: Vec<i64> = items.iter().map(|i| i.1).collect();
            let nexts: Vec<Option<i64>> = items.iter().map(|i| i.2).collect();
            let fired: Vec<i64> = items.iter().map(|i| i64::from(i.3)).collect();
            let rows: Vec<Uuid> = sqlx::query_scalar(
                "UPDATE automations a SET next_run_at = v.next, \
                 runs_started = a.runs_started + v.fired \
                 FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[]) \
                 AS v(id, due, next, fired) WHERE a.id = v.id AND a.next_run_at = v.due \
                 RETURNING a.id",
            )
            .bind(ids)
            .bind(dues)
            .bind(nexts)
            .bind(fired)
            .fetch_all(&mut **t)
            .await?;
            moved.extend(rows);
            return Ok(moved);
        }
        for (id, due, next, fired) in items {
            let n = on_tx!(self.0, |c| sqlx::query(
                "UPDATE automations SET next_run_at = $3, runs_started = runs_started + $4 \
                 WHERE id = $1 AND next_run_at = $2"
            )
            .bind(id)
            .bind(due)
            .bind(next)
            .bind(i64::from(*fired))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
            if n == 1 {
                moved.insert(*id);
            }
        }
        Ok(moved)
    }

    /// Sets when an automation fires next (a loop, after its run ended).
    pub async fn schedule_automation(
        &mut self,
        id: Uuid,
        next: Option<i64>,
    ) -> Result<(), StoreError> {
        on_tx!(self.0, |c| sqlx::query(
            "UPDATE automations SET next_run_at = $2 WHERE id = $1"
        )
        .bind(id)
        .bind(next)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// An automation, wherever it is.
    pub async fn automation(&mut self, id: Uuid) -> Result<Option<AutomationRow>, StoreError> {
        automation_in(&mut self.0, id, None).await
    }

    /// The run a job carries, if it was begun before (the job is being retried).
    pub async fn run_of_job(&mut self, job: Uuid) -> Result<Option<RunRow>, StoreError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM automation_runs WHERE job_id = $1");
        Ok(on_tx!(self.0, |c| sqlx::query_as::<_, RunRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(job)
        .fetch_optional(c)
        .await)?)
    }

    /// Records a run about to start its session (`session_id` chosen now, so a retry after a
    /// crash finds the session rather than starting a second).
    pub async fn insert_run(&mut self, r: &RunRow) -> Result<(), StoreError> {
        insert_run(&mut self.0, r).await
    }

    /// Sets a run's status (and its end, for a final one).
    pub async fn set_run_status(
        &mut self,
        id: Uuid,
        status: &str,
        error: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let ended = matches!(status, "done" | "failed" | "skipped").then_some(now);
        let started = (status == "running").then_some(now);
        on_tx!(self.0, |c| sqlx::query(
            "UPDATE automation_runs SET status = $2, error = $3, \
             started_at = COALESCE(started_at, $4), ended_at = COALESCE(ended_at, $5) \
             WHERE id = $1"
        )
        .bind(id)
        .bind(status)
        .bind(error)
        .bind(started)
        .bind(ended)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Runs of the workspace whose session is still going.
    pub async fn running_runs(&mut self, workspace: Uuid) -> Result<i64, StoreError> {
        Ok(on_tx!(self.0, |c| sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM automation_runs WHERE workspace_id = $1 AND status = 'running'"
        )
        .bind(workspace)
        .fetch_one(c)
        .await)?)
    }

    /// The run whose session this is, if an automation started it.
    pub async fn run_of_session(&mut self, session: Uuid) -> Result<Option<RunRow>, StoreError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM automation_runs WHERE session_id = $1");
        Ok(on_tx!(self.0, |c| sqlx::query_as::<_, RunRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(session)
        .fetch_optional(c)
        .await)?)
    }
}
