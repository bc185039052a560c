//! Workflows as stored: definitions with their versions, runs pinned to a definition, and
//! each run's steps. People reach them through the workspace's scoped transaction; the
//! queue's runners advance runs through [`JobsTx`] (the `warden.jobs` scope). Every change of
//! a step or a run is conditional on the state it leaves, so two nodes (or a retried job)
//! cannot both move it.

use uuid::Uuid;

use crate::automations::JobsTx;
use crate::db::on_tx;
use crate::tenancy::WorkspaceTx;
use crate::{Store, StoreError, Tx};

/// A workflow as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WorkflowRow {
    /// Id.
    pub id: Uuid,
    /// Workspace.
    pub workspace_id: Uuid,
    /// Name, unique in the workspace.
    pub name: String,
    /// Its current version (1, 2, …).
    pub version: i64,
    /// The current definition (JSON).
    pub definition: String,
    /// The ticket status that starts it, if any.
    pub on_ticket: Option<String>,
    /// Who wrote it.
    pub created_by: Uuid,
    /// Created (µs).
    pub created_at: i64,
    /// Last changed (µs).
    pub updated_at: i64,
}

const WORKFLOW_COLUMNS: &str =
    "id, workspace_id, name, version, definition, on_ticket, created_by, created_at, updated_at";

/// A run as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RunRow {
    /// Id.
    pub id: Uuid,
    /// Workspace.
    pub workspace_id: Uuid,
    /// The workflow it runs.
    pub workflow_id: Uuid,
    /// The workflow's name then.
    pub name: String,
    /// The version it runs.
    pub version: i64,
    /// That version's definition (JSON).
    pub definition: String,
    /// `running`, `waiting` (an approval), `succeeded`, `failed`, `canceled`.
    pub status: String,
    /// Who started it (its sessions act for them).
    pub started_by: Uuid,
    /// The ticket it works on.
    pub ticket_id: Option<Uuid>,
    /// Created (µs).
    pub created_at: i64,
    /// Last changed (µs).
    pub updated_at: i64,
    /// Ended (µs).
    pub ended_at: Option<i64>,
}

const RUN_COLUMNS: &str = "id, workspace_id, workflow_id, name, version, definition, status, \
     started_by, ticket_id, created_at, updated_at, ended_at";

/// A step of a run as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StepRow {
    /// The run.
    pub run_id: Uuid,
    /// Workspace.
    pub workspace_id: Uuid,
    /// Its place in the run (0, 1, …: the order steps ran in).
    pub seq: i64,
    /// Its position in the definition.
    pub step_index: i64,
    /// Its id in the definition.
    pub step_id: String,
    /// `agent`, `command`, `approval`, `condition`.
    pub kind: String,
    /// `running`, `waiting`, `succeeded`, `failed`.
    pub status: String,
    /// The session it opened (agent and command steps).
    pub session_id: Option<Uuid>,
    /// Who approved or rejected it.
    pub decided_by: Option<Uuid>,
    /// Why (a rejection, a timeout, a failure).
    pub reason: Option<String>,
    /// Started (µs).
    pub started_at: i64,
    /// Ended (µs).
    pub ended_at: Option<i64>,
}

const STEP_COLUMNS: &str = "run_id, workspace_id, seq, step_index, step_id, kind, status, \
     session_id, decided_by, reason, started_at, ended_at";

async fn run_in(tx: &mut Tx, id: Uuid, ws: Option<Uuid>) -> Result<Option<RunRow>, StoreError> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM workflow_runs WHERE id = $1 AND ($2 IS NULL OR workspace_id = $2)"
    );
    Ok(on_tx!(tx, |c| sqlx::query_as::<_, RunRow>(
        sqlx::AssertSqlSafe(sql)
    )
    .bind(id)
    .bind(ws)
    .fetch_optional(c)
    .await)?)
}

async fn steps_in(tx: &mut Tx, run: Uuid) -> Result<Vec<StepRow>, StoreError> {
    let sql = format!("SELECT {STEP_COLUMNS} FROM workflow_steps WHERE run_id = $1 ORDER BY seq");
    Ok(on_tx!(tx, |c| sqlx::query_as::<_, StepRow>(
        sqlx::AssertSqlSafe(sql)
    )
    .bind(run)
    .fetch_all(c)
    .await)?)
}

/// How a step ends.
#[derive(Debug, Clone, Copy)]
struct Ending<'a> {
    from: &'a str,
    to: &'a str,
    decided_by: Option<Uuid>,
    reason: Option<&'a str>,
    now: i64,
}

async fn end_step_in(tx: &mut Tx, run: Uuid, seq: i64, e: Ending<'_>) -> Result<bool, StoreError> {
    let n = on_tx!(tx, |c| sqlx::query(
        "UPDATE workflow_steps SET status = $4, decided_by = $5, reason = $6, ended_at = $7 \
         WHERE run_id = $1 AND seq = $2 AND status = $3"
    )
    .bind(run)
    .bind(seq)
    .bind(e.from)
    .bind(e.to)
    .bind(e.decided_by)
    .bind(e.reason)
    .bind(e.now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

async fn set_run_in(tx: &mut Tx, run: Uuid, to: &str, now: i64) -> Result<bool, StoreError> {
    let ended = matches!(to, "succeeded" | "failed" | "canceled").then_some(now);
    let n = on_tx!(tx, |c| sqlx::query(
        "UPDATE workflow_runs SET status = $2, updated_at = $3, ended_at = $4 \
         WHERE id = $1 AND status IN ('running', 'waiting')"
    )
    .bind(run)
    .bind(to)
    .bind(now)
    .bind(ended)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

impl WorkspaceTx {
    /// Stores a new workflow at version 1.
    pub async fn insert_workflow(&mut self, w: &WorkflowRow) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO workflows ({WORKFLOW_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        );
        on_tx!(self.tx_mut(), |c| sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(w.id)
            .bind(w.workspace_id)
            .bind(&w.name)
            .bind(w.version)
            .bind(&w.definition)
            .bind(&w.on_ticket)
            .bind(w.created_by)
            .bind(w.created_at)
            .bind(w.updated_at)
            .execute(c)
            .await
            .map(drop))?;
        self.insert_workflow_version(w.id, w.version, &w.definition, w.created_at)
            .await
    }

    async fn insert_workflow_version(
        &mut self,
        id: Uuid,
        version: i64,
        definition: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let ws = self.workspace().uuid();
        let by = self.user_id();
        on_tx!(self.tx_mut(), |c| sqlx::query(
            "INSERT INTO workflow_versions (workflow_id, workspace_id, version, definition, \
             created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)"
        )
        .bind(id)
        .bind(ws)
        .bind(version)
        .bind(definition)
        .bind(by)
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Whether the workspace has a workflow called `name` (other than `except`).
    pub async fn workflow_name_taken(
        &mut self,
        name: &str,
        except: Option<Uuid>,
    ) -> Result<bool, StoreError> {
        let ws = self.workspace().uuid();
        let n: i64 = on_tx!(self.tx_mut(), |c| sqlx::query_scalar(
            "SELECT COUNT(*) FROM workflows WHERE workspace_id = $1 AND name = $2 \
             AND ($3 IS NULL OR id <> $3)"
        )
        .bind(ws)
        .bind(name)
        .bind(except)
        .fetch_one(c)
        .await)?;
        Ok(n > 0)
    }

    /// The workspace's workflows, by name.
    pub async fn workflows(&mut self) -> Result<Vec<WorkflowRow>, StoreError> {
        let ws = self.workspace().uuid();
        let sql = format!(
            "SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE workspace_id = $1 ORDER BY name"
        );
        Ok(on_tx!(self.tx_mut(), |c| {
            sqlx::query_as::<_, WorkflowRow>(sqlx::AssertSqlSafe(sql))
                .bind(ws)
                .fetch_all(c)
                .await
        })?)
    }

    /// One workflow.
    pub async fn workflow(&mut self, id: Uuid) -> Result<Option<WorkflowRow>, StoreError> {
        let ws = self.workspace().uuid();
        let sql =
            format!("SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE id = $1 AND workspace_id = $2");
        Ok(on_tx!(self.tx_mut(), |c| {
            sqlx::query_as::<_, WorkflowRow>(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .bind(ws)
                .fetch_optional(c)
                .await
        })?)
    }

    /// The workflows a ticket moving to `status` starts.
    pub async fn workflows_on_ticket(
        &mut self,
        status: &str,
    ) -> Result<Vec<WorkflowRow>, StoreError> {
        let ws = self.workspace().uuid();
        let sql = format!(
            "SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE workspace_id = $1 AND on_ticket = $2 \
             ORDER BY name"
        );
        Ok(on_tx!(self.tx_mut(), |c| {
            sqlx::query_as::<_, WorkflowRow>(sqlx::AssertSqlSafe(sql))
                .bind(ws)
                .bind(status)
                .fetch_all(c)
                .await
        })?)
    }

    /// Saves a new version of a workflow (its name may change too).
    pub async fn update_workflow(
        &mut self,
        id: Uuid,
        name: &str,
        definition: &str,
        on_ticket: Option<&str>,
        now: i64,
    ) -> Result<i64, StoreError> {
        let ws = self.workspace().uuid();
        let version: i64 = on_tx!(self.tx_mut(), |c| sqlx::query_scalar(
            "UPDATE workflows SET name = $3, definition = $4, on_ticket = $5, updated_at = $6, \
             version = version + 1 WHERE id = $1 AND workspace_id = $2 RETURNING version"
        )
        .bind(id)
        .bind(ws)
        .bind(name)
        .bind(definition)
        .bind(on_ticket)
        .bind(now)
        .fetch_one(c)
        .await)?;
        self.insert_workflow_version(id, version, definition, now)
            .await?;
        Ok(version)
    }

    /// Deletes a workflow and its versions (its runs stay, with their definitions).
    pub async fn delete_workflow(&mut self, id: Uuid) -> Result<bool, StoreError> {
        let ws = self.workspace().uuid();
        let n = on_tx!(self.tx_mut(), |c| sqlx::query(
            "DELETE FROM workflows WHERE id = $1 AND workspace_id = $2"
        )
        .bind(id)
        .bind(ws)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Records a new run.
    pub async fn insert_workflow_run(&mut self, r: &RunRow) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO workflow_runs ({RUN_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        );
        on_tx!(self.tx_mut(), |c| sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(r.id)
            .bind(r.workspace_id)
            .bind(r.workflow_id)
            .bind(&r.name)
            .bind(r.version)
            .bind(&r.definition)
            .bind(&r.status)
            .bind(r.started_by)
            .bind(r.ticket_id)
            .bind(r.created_at)
            .bind(r.updated_at)
            .bind(r.ended_at)
            .execute(c)
            .await
            .map(drop))?;
        Ok(())
    }

    /// The workspace's runs, newest first.
    pub async fn workflow_runs(&mut self, limit: i64) -> Result<Vec<RunRow>, StoreError> {
        let ws = self.workspace().uuid();
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM workflow_runs WHERE workspace_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT $2"
        );
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query_as::<_, RunRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(ws)
        .bind(limit)
        .fetch_all(c)
        .await)?)
    }

    /// One run of the workspace.
    pub async fn workflow_run(&mut self, id: Uuid) -> Result<Option<RunRow>, StoreError> {
        let ws = self.workspace().uuid();
        run_in(self.tx_mut(), id, Some(ws)).await
    }

    /// A run's steps, in the order they ran.
    pub async fn workflow_steps(&mut self, run: Uuid) -> Result<Vec<StepRow>, StoreError> {
        steps_in(self.tx_mut(), run).await
    }

    /// Ends a waiting approval step: false when it no longer waits.
    pub async fn decide_workflow_step(
        &mut self,
        run: Uuid,
        seq: i64,
        approved: bool,
        reason: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let by = self.user_id();
        let to = if approved { "succeeded" } else { "failed" };
        let e = Ending {
            from: "waiting",
            to,
            decided_by: Some(by),
            reason,
            now,
        };
        end_step_in(self.tx_mut(), run, seq, e).await
    }

    /// Moves a run that has not ended to `status`: false when it had ended.
    pub async fn set_workflow_run(
        &mut self,
        run: Uuid,
        status: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        set_run_in(self.tx_mut(), run, status, now).await
    }
}

impl WorkspaceTx {
    /// Makes an automation start `workflow` (or, with `None`, sessions again); from now on
    /// its runs act for this transaction's user, as after any other change to it.
    pub async fn set_automation_workflow(
        &mut self,
        automation: Uuid,
        workflow: Option<Uuid>,
        now: i64,
    ) -> Result<(), StoreError> {
        let ws = self.workspace().uuid();
        let by = self.user_id();
        on_tx!(self.tx_mut(), |c| {
            sqlx::query(
            "UPDATE automations SET run_as = $3, updated_at = $4 WHERE id = $1 AND workspace_id = $2"
        )
        .bind(automation)
        .bind(ws)
        .bind(by)
        .bind(now)
        .execute(c)
        .await
        .map(drop)
        })?;
        match workflow {
            Some(w) => on_tx!(self.tx_mut(), |c| sqlx::query(
                "INSERT INTO automation_workflows (automation_id, workspace_id, workflow_id, \
                 updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT (automation_id) DO UPDATE \
                 SET workflow_id = $3, updated_at = $4"
            )
            .bind(automation)
            .bind(ws)
            .bind(w)
            .bind(now)
            .execute(c)
            .await
            .map(drop))?,
            None => on_tx!(self.tx_mut(), |c| {
                sqlx::query(
                "DELETE FROM automation_workflows WHERE automation_id = $1 AND workspace_id = $2"
            )
            .bind(automation)
            .bind(ws)
            .execute(c)
            .await
            .map(drop)
            })?,
        }
        Ok(())
    }
}

impl JobsTx {
    /// The workflow an automation starts, if it starts one.
    pub async fn wf_of_automation(
        &mut self,
        automation: Uuid,
    ) -> Result<Option<WorkflowRow>, StoreError> {
        let sql = format!(
            "SELECT {} FROM workflows w JOIN automation_workflows a ON a.workflow_id = w.id \
             WHERE a.automation_id = $1",
            crate::db::prefixed(WORKFLOW_COLUMNS, "w")
        );
        Ok(on_tx!(self.tx(), |c| sqlx::query_as::<_, WorkflowRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(automation)
        .fetch_optional(c)
        .await)?)
    }

    /// A run, whatever its workspace.
    pub async fn wf_run(&mut self, id: Uuid) -> Result<Option<RunRow>, StoreError> {
        run_in(self.tx(), id, None).await
    }

    /// A run's steps, in the order they ran.
    pub async fn wf_steps(&mut self, run: Uuid) -> Result<Vec<StepRow>, StoreError> {
        steps_in(self.tx(), run).await
    }

    /// Records a step unless it is recorded already (a retried job): true when this call
    /// recorded it.
    pub async fn wf_insert_step(&mut self, s: &StepRow) -> Result<bool, StoreError> {
        let sql = format!(
            "INSERT INTO workflow_steps ({STEP_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING"
        );
        let n = on_tx!(self.tx(), |c| sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(s.run_id)
            .bind(s.workspace_id)
            .bind(s.seq)
            .bind(s.step_index)
            .bind(&s.step_id)
            .bind(&s.kind)
            .bind(&s.status)
            .bind(s.session_id)
            .bind(s.decided_by)
            .bind(&s.reason)
            .bind(s.started_at)
            .bind(s.ended_at)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Ends a step that stands at `from`: false when it does not any more.
    pub async fn wf_end_step(
        &mut self,
        run: Uuid,
        seq: i64,
        from: &str,
        to: &str,
        reason: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let e = Ending {
            from,
            to,
            decided_by: None,
            reason,
            now,
        };
        end_step_in(self.tx(), run, seq, e).await
    }

    /// The step that opened a session.
    pub async fn wf_step_of_session(
        &mut self,
        session: Uuid,
    ) -> Result<Option<StepRow>, StoreError> {
        let sql = format!("SELECT {STEP_COLUMNS} FROM workflow_steps WHERE session_id = $1");
        Ok(on_tx!(self.tx(), |c| sqlx::query_as::<_, StepRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(session)
        .fetch_optional(c)
        .await)?)
    }

    /// Closes (archives) up to `limit` ended sessions that steps of finished runs opened in
    /// `develop` mode — kept while their run went on, for its next step — and returns them
    /// (id, workspace, host).
    pub async fn wf_close_finished_sessions(
        &mut self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<(Uuid, Uuid, Option<Uuid>)>, StoreError> {
        crate::hosts::all_hosts_scope(self.tx()).await?;
        let found: Vec<(Uuid, Uuid, Option<Uuid>)> = on_tx!(self.tx(), |c| sqlx::query_as(
            "SELECT a.id, a.workspace_id, a.host_id FROM workflow_steps w \
             JOIN workflow_runs r ON r.id = w.run_id \
             JOIN agent_sessions a ON a.id = w.session_id \
             WHERE r.status IN ('succeeded', 'failed', 'canceled') AND a.mode = 'develop' \
             AND a.archived_at IS NULL AND a.status NOT IN ('waiting', 'running') LIMIT $1"
        )
        .bind(limit)
        .fetch_all(c)
        .await)?;
        let mut closed = Vec::with_capacity(found.len());
        for (id, workspace, host) in found {
            let n = on_tx!(self.tx(), |c| sqlx::query(
                "UPDATE agent_sessions SET archived_at = $2 WHERE id = $1 \
                 AND archived_at IS NULL AND status NOT IN ('waiting', 'running')"
            )
            .bind(id)
            .bind(now)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
            if n == 1 {
                closed.push((id, workspace, host));
            }
        }
        Ok(closed)
    }

    /// Moves a run that has not ended to `status`: false when it had ended.
    pub async fn wf_set_run(
        &mut self,
        run: Uuid,
        status: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        set_run_in(self.tx(), run, status, now).await
    }
}

impl Store {
    /// Sessions that ended while the workflow step that opened them still runs (a session
    /// lost with its host, one canceled before it started — ends that bypass the hosts'
    /// reports): each with whether it failed.
    pub async fn workflow_sessions_ended(
        &self,
        limit: i64,
    ) -> Result<Vec<(Uuid, bool)>, StoreError> {
        self.sessions_ended_awaited(crate::sessions::Awaiting::WorkflowStep, limit)
            .await
    }
}
