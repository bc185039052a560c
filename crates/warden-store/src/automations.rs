//! Automations, their runs, event sources and the deliveries they accepted, as stored.
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

/// An event source as stored (never its token; its secret only sealed).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SourceRow {
    /// Id.
    pub id: Uuid,
    /// Workspace.
    pub workspace_id: Uuid,
    /// Name, unique in the workspace.
    pub name: String,
    /// `generic`, `github`, `stripe` or `standard`.
    pub kind: String,
    /// Whether deliveries are accepted.
    pub enabled: bool,
    /// The token's first four characters (to tell tokens apart in the console).
    pub token_prefix: String,
    /// The signing secret, sealed.
    pub sealed_secret: Option<Vec<u8>>,
    /// Who set the secret.
    pub secret_set_by: Option<Uuid>,
    /// When (µs).
    pub secret_set_at: Option<i64>,
    /// Generic: the header carrying the signature.
    pub signature_header: Option<String>,
    /// Generic: the header carrying a delivery id.
    pub delivery_header: Option<String>,
    /// Event types accepted (JSON array), if filtered.
    pub filter_events: Option<String>,
    /// A JSON pointer into the body …
    pub filter_pointer: Option<String>,
    /// … and the JSON value it must hold.
    pub filter_value: Option<String>,
    /// The automation a matching delivery runs.
    pub automation_id: Option<Uuid>,
    /// Deliveries accepted per minute, at most.
    pub rate_per_minute: i64,
    /// Deliveries waiting at once, at most (per node).
    pub backlog: i64,
    /// Accepted.
    pub accepted: i64,
    /// Valid but filtered out.
    pub ignored: i64,
    /// Seen before (same delivery id): processed once.
    pub replayed: i64,
    /// Over the rate limit.
    pub dropped_rate: i64,
    /// Over the backlog.
    pub dropped_backlog: i64,
    /// Bad or missing signature.
    pub dropped_signature: i64,
    /// While background work was paused (licence).
    pub dropped_paused: i64,
    /// Created by.
    pub created_by: Uuid,
    /// Created (µs).
    pub created_at: i64,
    /// Last changed (µs).
    pub updated_at: i64,
    /// Token last replaced (µs).
    pub token_rotated_at: Option<i64>,
}

const SOURCE_COLUMNS: &str = "id, workspace_id, name, kind, enabled, token_prefix, sealed_secret, \
     secret_set_by, secret_set_at, signature_header, delivery_header, filter_events, \
     filter_pointer, filter_value, automation_id, rate_per_minute, backlog, accepted, ignored, \
     replayed, dropped_rate, dropped_backlog, dropped_signature, dropped_paused, created_by, \
     created_at, updated_at, token_rotated_at";

/// What an event source is: everything a person sets except the token and secret.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: String,
    /// Enabled.
    pub enabled: bool,
    /// Generic: signature header.
    pub signature_header: Option<String>,
    /// Generic: delivery id header.
    pub delivery_header: Option<String>,
    /// Event types (JSON array).
    pub filter_events: Option<String>,
    /// JSON pointer.
    pub filter_pointer: Option<String>,
    /// JSON value.
    pub filter_value: Option<String>,
    /// Automation to run.
    pub automation_id: Option<Uuid>,
    /// Rate limit.
    pub rate_per_minute: i64,
    /// Backlog.
    pub backlog: i64,
}

/// A token's hash and what the intake needs to route a delivery before reading the database.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SourceToken {
    /// SHA-256 of the token.
    pub token_hash: Vec<u8>,
    /// The source.
    pub id: Uuid,
    /// Its rate limit.
    pub rate_per_minute: i64,
    /// Its backlog.
    pub backlog: i64,
}

/// What became of deliveries the intake did not write (counted per source).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drops {
    /// Over the rate limit.
    pub rate: i64,
    /// Over the backlog.
    pub backlog: i64,
    /// Bad signature.
    pub signature: i64,
    /// Paused.
    pub paused: i64,
    /// Filtered out.
    pub ignored: i64,
    /// Seen before.
    pub replayed: i64,
}

impl Drops {
    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A verified delivery to accept.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    /// The source.
    pub source_id: Uuid,
    /// Its workspace.
    pub workspace_id: Uuid,
    /// Its delivery id (replays share it).
    pub delivery_id: Option<&'a str>,
    /// Its event type.
    pub event_type: Option<&'a str>,
    /// The raw body.
    pub body: &'a [u8],
    /// The automation to run, if any.
    pub automation_id: Option<Uuid>,
    /// Received (µs).
    pub now: i64,
}

/// What accepting a delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Stored (and its run enqueued).
    New(Uuid),
    /// Seen before: nothing done.
    Replay,
    /// The source's per-minute limit is used up across the cluster.
    OverRate,
    /// The source is gone or disabled, or its token changed since the delivery arrived.
    Gone,
}

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

    /// Stores a new event source with its token's hash.
    pub async fn insert_event_source(
        &mut self,
        id: Uuid,
        s: &SourceSpec,
        token_hash: &[u8],
        token_prefix: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let ws = self.workspace().uuid();
        let by = self.user_id();
        let res = on_tx!(self.tx_mut(), |c| sqlx::query(
            "INSERT INTO event_sources (id, workspace_id, name, kind, enabled, token_hash, \
             token_prefix, signature_header, delivery_header, filter_events, filter_pointer, \
             filter_value, automation_id, rate_per_minute, backlog, created_by, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
             $15, $16, $17, $17)"
        )
        .bind(id)
        .bind(ws)
        .bind(&s.name)
        .bind(&s.kind)
        .bind(s.enabled)
        .bind(token_hash)
        .bind(token_prefix)
        .bind(&s.signature_header)
        .bind(&s.delivery_header)
        .bind(&s.filter_events)
        .bind(&s.filter_pointer)
        .bind(&s.filter_value)
        .bind(s.automation_id)
        .bind(s.rate_per_minute)
        .bind(s.backlog)
        .bind(by)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()));
        unique_ok(res)
    }

    /// Replaces what an event source is (not its token or secret). `false` when the name is
    /// taken.
    pub async fn update_event_source(
        &mut self,
        id: Uuid,
        s: &SourceSpec,
        now: i64,
    ) -> Result<bool, StoreError> {
        let ws = self.workspace().uuid();
        let res = on_tx!(self.tx_mut(), |c| {
            sqlx::query(
            "UPDATE event_sources SET name = $3, kind = $4, enabled = $5, signature_header = $6, \
             delivery_header = $7, filter_events = $8, filter_pointer = $9, filter_value = $10, \
             automation_id = $11, rate_per_minute = $12, backlog = $13, updated_at = $14 \
             WHERE id = $1 AND workspace_id = $2"
        )
        .bind(id)
        .bind(ws)
        .bind(&s.name)
        .bind(&s.kind)
        .bind(s.enabled)
        .bind(&s.signature_header)
        .bind(&s.delivery_header)
        .bind(&s.filter_events)
        .bind(&s.filter_pointer)
        .bind(&s.filter_value)
        .bind(s.automation_id)
        .bind(s.rate_per_minute)
        .bind(s.backlog)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected())
        });
        unique_ok(res)
    }

    /// Sets (or, with `None`, removes) the source's signing secret, sealed by the caller.
    pub async fn set_event_source_secret(
        &mut self,
        id: Uuid,
        sealed: Option<&[u8]>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let ws = self.workspace().uuid();
        let by = sealed.map(|_| self.user_id());
        let at = sealed.map(|_| now);
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query(
            "UPDATE event_sources SET sealed_secret = $3, secret_set_by = $4, secret_set_at = $5, \
             updated_at = $6 WHERE id = $1 AND workspace_id = $2"
        )
        .bind(id)
        .bind(ws)
        .bind(sealed)
        .bind(by)
        .bind(at)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?
            == 1)
    }

    /// Replaces the source's token in one statement: the old one matches nothing from the
    /// moment this commits.
    pub async fn rotate_event_source_token(
        &mut self,
        id: Uuid,
        token_hash: &[u8],
        token_prefix: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let ws = self.workspace().uuid();
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query(
            "UPDATE event_sources SET token_hash = $3, token_prefix = $4, token_rotated_at = $5, \
             updated_at = $5 WHERE id = $1 AND workspace_id = $2"
        )
        .bind(id)
        .bind(ws)
        .bind(token_hash)
        .bind(token_prefix)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?
            == 1)
    }

    /// The workspace's event sources, by name.
    pub async fn event_sources(&mut self) -> Result<Vec<SourceRow>, StoreError> {
        let ws = self.workspace().uuid();
        let sql = format!(
            "SELECT {SOURCE_COLUMNS} FROM event_sources WHERE workspace_id = $1 ORDER BY name"
        );
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query_as::<_, SourceRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(ws)
        .fetch_all(c)
        .await)?)
    }

    /// One of the workspace's event sources.
    pub async fn event_source(&mut self, id: Uuid) -> Result<Option<SourceRow>, StoreError> {
        let ws = self.workspace().uuid();
        source_in(self.tx_mut(), id, Some(ws)).await
    }

    /// Deletes an event source and the deliveries it accepted.
    pub async fn delete_event_source(&mut self, id: Uuid) -> Result<bool, StoreError> {
        let ws = self.workspace().uuid();
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query(
            "DELETE FROM event_sources WHERE id = $1 AND workspace_id = $2"
        )
        .bind(id)
        .bind(ws)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?
            == 1)
    }
}

/// `true` when one row changed, `false` when a unique constraint refused the change (a name
/// taken). On PostgreSQL the transaction is then aborted: the caller gives up on it.
fn unique_ok(res: Result<u64, sqlx::Error>) -> Result<bool, StoreError> {
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

async fn source_in(
    tx: &mut Tx,
    id: Uuid,
    ws: Option<Uuid>,
) -> Result<Option<SourceRow>, StoreError> {
    let sql = format!(
        "SELECT {SOURCE_COLUMNS} FROM event_sources WHERE id = $1 \
         AND ($2 IS NULL OR workspace_id = $2)"
    );
    Ok(on_tx!(tx, |c| sqlx::query_as::<_, SourceRow>(
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
pub struct JobsTx(Tx);

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

    /// A delivery accepted earlier (for a run's template).
    pub async fn event_body(&mut self, id: Uuid) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(on_tx!(self.0, |c| sqlx::query_scalar::<_, Vec<u8>>(
            "SELECT body FROM webhook_events WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(c)
        .await)?)
    }

    /// Every source's token hash, for the intake's routing table.
    pub async fn source_tokens(&mut self) -> Result<Vec<SourceToken>, StoreError> {
        Ok(on_tx!(self.0, |c| sqlx::query_as::<_, SourceToken>(
            "SELECT token_hash, id, rate_per_minute, backlog FROM event_sources WHERE enabled"
        )
        .fetch_all(c)
        .await)?)
    }

    /// A source, with its sealed secret, if its token is still `token_hash` and it is
    /// enabled.
    pub async fn source_for_delivery(
        &mut self,
        id: Uuid,
        token_hash: &[u8],
    ) -> Result<Option<SourceRow>, StoreError> {
        let sql = format!(
            "SELECT {SOURCE_COLUMNS} FROM event_sources WHERE id = $1 AND token_hash = $2 \
             AND enabled"
        );
        Ok(on_tx!(self.0, |c| sqlx::query_as::<_, SourceRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(id)
        .bind(token_hash)
        .fetch_optional(c)
        .await)?)
    }

    /// Accepts verified deliveries of one source, in order, in a few statements whatever
    /// their number: counts them against the per-minute limit (across nodes: the source's row
    /// is locked for the window on PostgreSQL, and SQLite has one writer), stores those within
    /// it unless their delivery id was seen, and enqueues the run each new one triggers.
    #[allow(clippy::too_many_arguments)]
    pub async fn accept_events(
        &mut self,
        source: Uuid,
        workspace: Uuid,
        token_hash: &[u8],
        automation: Option<Uuid>,
        events: &[NewEvent<'_>],
        now: i64,
        max_attempts: i32,
    ) -> Result<Vec<Accepted>, StoreError> {
        let n = i64::try_from(events.len()).unwrap_or(i64::MAX);
        let lock = match self.0.backend() {
            crate::Backend::Postgres => " FOR UPDATE",
            crate::Backend::Sqlite => "",
        };
        let sql = format!(
            "SELECT minute_start, minute_count, rate_per_minute FROM event_sources \
             WHERE id = $1 AND token_hash = $2 AND enabled{lock}"
        );
        let window = on_tx!(self.0, |c| sqlx::query_as::<_, (i64, i64, i64)>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(source)
        .bind(token_hash)
        .fetch_optional(c)
        .await)?;
        let Some((start, count, rate)) = window else {
            return Ok(vec![Accepted::Gone; events.len()]);
        };
        let minute = now.div_euclid(60_000_000) * 60_000_000;
        let used = if start == minute { count } else { 0 };
        let allowed = usize::try_from((rate - used).clamp(0, n)).unwrap_or(0);
        let mut out = vec![Accepted::OverRate; events.len()];
        if allowed == 0 {
            return Ok(out);
        }
        on_tx!(self.0, |c| sqlx::query(
            "UPDATE event_sources SET minute_start = $2, minute_count = $3 WHERE id = $1"
        )
        .bind(source)
        .bind(minute)
        .bind(used + i64::try_from(allowed).unwrap_or(0))
        .execute(c)
        .await
        .map(drop))?;
        let take = &events[..allowed];
        let ids: Vec<Uuid> = take.iter().map(|_| Uuid::now_v7()).collect();
        let inserted: std::collections::HashSet<Uuid> = on_tx!(self.0, |c| {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO webhook_events (id, workspace_id, source_id, delivery_id, \
                 event_type, body, received_at) ",
            );
            q.push_values(take.iter().zip(&ids), |mut b, (e, id)| {
                b.push_bind(*id)
                    .push_bind(workspace)
                    .push_bind(source)
                    .push_bind(e.delivery_id)
                    .push_bind(e.event_type)
                    .push_bind(e.body)
                    .push_bind(now);
            });
            q.push(" ON CONFLICT (source_id, delivery_id) DO NOTHING RETURNING id");
            q.build_query_scalar::<Uuid>().fetch_all(c).await
        })?
        .into_iter()
        .collect();
        for (slot, id) in out.iter_mut().zip(&ids) {
            *slot = if inserted.contains(id) {
                Accepted::New(*id)
            } else {
                Accepted::Replay
            };
        }
        if let Some(automation) = automation
            && !inserted.is_empty()
        {
            let jobs: Vec<(Uuid, String, String)> = ids
                .iter()
                .filter(|id| inserted.contains(id))
                .map(|id| {
                    let payload = serde_json::json!({
                        "automation_id": automation, "trigger": "event", "event_id": id,
                    })
                    .to_string();
                    (Uuid::now_v7(), format!("event:{id}"), payload)
                })
                .collect();
            on_tx!(self.0, |c| {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO jobs (id, kind, workspace_id, dedupe_key, payload, status, \
                     attempts, max_attempts, run_at, created_at) ",
                );
                q.push_values(&jobs, |mut b, (id, key, payload)| {
                    b.push_bind(*id)
                        .push_bind("automation.run")
                        .push_bind(workspace)
                        .push_bind(key.as_str())
                        .push_bind(payload.as_str())
                        .push_bind("queued")
                        .push_bind(0i32)
                        .push_bind(max_attempts)
                        .push_bind(now)
                        .push_bind(now);
                });
                q.push(" ON CONFLICT (dedupe_key) DO NOTHING");
                q.build().execute(c).await.map(drop)
            })?;
            self.0.notify_jobs().await?;
        }
        Ok(out)
    }

    /// Adds to a source's counters.
    pub async fn count_deliveries(
        &mut self,
        source: Uuid,
        accepted: i64,
        d: &Drops,
    ) -> Result<(), StoreError> {
        on_tx!(self.0, |c| sqlx::query(
            "UPDATE event_sources SET accepted = accepted + $2, dropped_rate = dropped_rate + $3, \
             dropped_backlog = dropped_backlog + $4, dropped_signature = dropped_signature + $5, \
             dropped_paused = dropped_paused + $6, ignored = ignored + $7, \
             replayed = replayed + $8 WHERE id = $1"
        )
        .bind(source)
        .bind(accepted)
        .bind(d.rate)
        .bind(d.backlog)
        .bind(d.signature)
        .bind(d.paused)
        .bind(d.ignored)
        .bind(d.replayed)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Whether a signature failure on this source should be audited now (at most once a
    /// minute per source, across nodes); marks it so.
    pub async fn signature_alert_due(
        &mut self,
        source: Uuid,
        now: i64,
    ) -> Result<bool, StoreError> {
        Ok(on_tx!(self.0, |c| sqlx::query(
            "UPDATE event_sources SET last_signature_alert = $2 WHERE id = $1 \
             AND last_signature_alert <= $3"
        )
        .bind(source)
        .bind(now)
        .bind(now - 60_000_000)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?
            == 1)
    }

    /// Deletes deliveries received before `before` (µs).
    pub async fn prune_events(&mut self, before: i64) -> Result<u64, StoreError> {
        Ok(on_tx!(self.0, |c| sqlx::query(
            "DELETE FROM webhook_events WHERE received_at < $1"
        )
        .bind(before)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?)
    }
}
