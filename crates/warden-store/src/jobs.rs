//! The durable work queue: jobs enqueued in the transaction of the change that causes them,
//! claimed under a lease, extended by heartbeats while they run, retried with backoff and
//! kept as dead letters when out of attempts. On PostgreSQL several nodes claim from one
//! table without waiting on each other (`FOR UPDATE SKIP LOCKED`) and wake each other with
//! `NOTIFY warden_jobs`; on SQLite the write lock orders claims.

use uuid::Uuid;

use crate::db::on_tx;
use crate::{Backend, Store, StoreError, Tx};

/// A job to enqueue.
#[derive(Debug, Clone, Copy)]
pub struct NewJob<'a> {
    /// What handles it (`automation.run`, …).
    pub kind: &'a str,
    /// The workspace it acts in, if any.
    pub workspace_id: Option<Uuid>,
    /// Enqueueing the same key twice makes one job (a cron instant, a webhook delivery).
    pub dedupe_key: Option<&'a str>,
    /// Its input (JSON).
    pub payload: &'a str,
    /// Attempts before it is dead.
    pub max_attempts: i32,
    /// Not before (µs).
    pub run_at: i64,
    /// Now (µs).
    pub now: i64,
}

/// A job a node has claimed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedJob {
    /// Its id.
    pub id: Uuid,
    /// What handles it.
    pub kind: String,
    /// The workspace it acts in.
    pub workspace_id: Option<Uuid>,
    /// Its input (JSON).
    pub payload: String,
    /// Attempts so far, this one included.
    pub attempts: i32,
    /// Attempts allowed.
    pub max_attempts: i32,
}

/// A job as administrators see it (never its payload, which may carry tenant data).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    /// Its id.
    pub id: Uuid,
    /// What handles it.
    pub kind: String,
    /// The workspace it acts in.
    pub workspace_id: Option<Uuid>,
    /// `queued`, `running`, `done` or `dead`.
    pub status: String,
    /// Attempts made.
    pub attempts: i32,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When enqueued (µs).
    pub created_at: i64,
    /// When it ended (µs).
    pub finished_at: Option<i64>,
}

/// How many jobs are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobCounts {
    /// Waiting (due or not).
    pub queued: i64,
    /// Leased to a node.
    pub running: i64,
    /// Out of attempts.
    pub dead: i64,
}

impl Tx {
    /// Enqueues a job; it becomes claimable when this transaction commits. Returns its id,
    /// or `None` when a job with the same dedupe key exists already (nothing is enqueued).
    pub async fn enqueue_job(&mut self, j: &NewJob<'_>) -> Result<Option<Uuid>, StoreError> {
        let id = Uuid::now_v7();
        let inserted = on_tx!(self, |c| {
            sqlx::query(
            "INSERT INTO jobs (id, kind, workspace_id, dedupe_key, payload, status, attempts, \
             max_attempts, run_at, created_at) VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $7, $8) \
             ON CONFLICT (dedupe_key) DO NOTHING"
        )
        .bind(id)
        .bind(j.kind)
        .bind(j.workspace_id)
        .bind(j.dedupe_key)
        .bind(j.payload)
        .bind(j.max_attempts)
        .bind(j.run_at)
        .bind(j.now)
        .execute(c)
        .await
        .map(|r| r.rows_affected())
        })? == 1;
        if inserted {
            self.notify_jobs().await?;
        }
        Ok(inserted.then_some(id))
    }

    /// Enqueues many jobs in one statement (a job whose dedupe key exists already is left
    /// out); returns how many were enqueued.
    pub async fn enqueue_jobs(&mut self, jobs: &[NewJob<'_>]) -> Result<u64, StoreError> {
        let mut total = 0;
        for chunk in jobs.chunks(1000) {
            total += on_tx!(self, |c| {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO jobs (id, kind, workspace_id, dedupe_key, payload, status, \
                     attempts, max_attempts, run_at, created_at) ",
                );
                q.push_values(chunk, |mut b, j| {
                    b.push_bind(Uuid::now_v7())
                        .push_bind(j.kind)
                        .push_bind(j.workspace_id)
                        .push_bind(j.dedupe_key)
                        .push_bind(j.payload)
                        .push_bind("queued")
                        .push_bind(0i32)
                        .push_bind(j.max_attempts)
                        .push_bind(j.run_at)
                        .push_bind(j.now);
                });
                q.push(" ON CONFLICT (dedupe_key) DO NOTHING");
                q.build().execute(c).await.map(|r| r.rows_affected())
            })?;
        }
        if total > 0 {
            self.notify_jobs().await?;
        }
        Ok(total)
    }

    /// On PostgreSQL, wakes every node's runner when this transaction commits.
    pub(crate) async fn notify_jobs(&mut self) -> Result<(), StoreError> {
        if let crate::db::TxInner::Postgres(t) = &mut self.inner {
            sqlx::query("SELECT pg_notify('warden_jobs', '')")
                .execute(&mut **t)
                .await?;
        }
        Ok(())
    }
}

/// Runs one statement on a job `owner` holds, in its own transaction; `true` when it did.
macro_rules! held {
    ($store:ident, $sql:expr, $id:expr, $owner:expr $(, $bind:expr)*) => {{
        let mut tx = $store.begin().await?;
        let n = on_tx!(tx, |c| sqlx::query($sql)
            .bind($id)
            .bind($owner)
            $(.bind($bind))*
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        tx.commit().await?;
        Ok(n == 1)
    }};
}

/// Claims due jobs and jobs whose lease ran out (their node died), oldest due first.
const CLAIM_SQL: &str = "UPDATE jobs SET status = 'running', lease_owner = $1, lease_until = $2, \
     attempts = attempts + 1 WHERE id IN (SELECT id FROM jobs \
     WHERE (status = 'queued' AND run_at <= $3) OR (status = 'running' AND lease_until < $3) \
     ORDER BY run_at LIMIT $4 {LOCK}) \
     RETURNING id, kind, workspace_id, payload, attempts, max_attempts";

impl Store {
    /// Claims up to `limit` jobs for `owner` (this node) until `lease_until`.
    pub async fn claim_jobs(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedJob>, StoreError> {
        let sql = CLAIM_SQL.replace(
            "{LOCK}",
            match self.backend() {
                Backend::Postgres => "FOR UPDATE SKIP LOCKED",
                Backend::Sqlite => "",
            },
        );
        let mut tx = self.begin().await?;
        let jobs = on_tx!(tx, |c| sqlx::query_as::<_, ClaimedJob>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(owner)
        .bind(lease_until)
        .bind(now)
        .bind(limit)
        .fetch_all(c)
        .await)?;
        tx.commit().await?;
        Ok(jobs)
    }

    /// Extends the lease of a job `owner` still holds; `false` when it no longer does (the
    /// lease ran out and another node took the job).
    pub async fn heartbeat_job(
        &self,
        id: Uuid,
        owner: &str,
        lease_until: i64,
    ) -> Result<bool, StoreError> {
        held!(
            self,
            "UPDATE jobs SET lease_until = $3 WHERE id = $1 AND lease_owner = $2 \
             AND status = 'running'",
            id,
            owner,
            lease_until
        )
    }

    /// Marks a job `owner` holds as done.
    pub async fn complete_job(&self, id: Uuid, owner: &str, now: i64) -> Result<bool, StoreError> {
        held!(
            self,
            "UPDATE jobs SET status = 'done', finished_at = $3, lease_owner = NULL, \
             lease_until = NULL WHERE id = $1 AND lease_owner = $2 AND status = 'running'",
            id,
            owner,
            now
        )
    }

    /// Puts a failed job back in the queue until `run_at`.
    pub async fn retry_job(
        &self,
        id: Uuid,
        owner: &str,
        run_at: i64,
        error: &str,
    ) -> Result<bool, StoreError> {
        held!(
            self,
            "UPDATE jobs SET status = 'queued', run_at = $3, last_error = $4, lease_owner = NULL, \
             lease_until = NULL WHERE id = $1 AND lease_owner = $2 AND status = 'running'",
            id,
            owner,
            run_at,
            error
        )
    }

    /// Puts a job back until `run_at` without counting the attempt (it could not start yet:
    /// a concurrency limit, say).
    pub async fn defer_job(&self, id: Uuid, owner: &str, run_at: i64) -> Result<bool, StoreError> {
        held!(
            self,
            "UPDATE jobs SET status = 'queued', run_at = $3, attempts = attempts - 1, \
             lease_owner = NULL, lease_until = NULL \
             WHERE id = $1 AND lease_owner = $2 AND status = 'running'",
            id,
            owner,
            run_at
        )
    }

    /// Gives up on a job: it stays, dead, for administrators to see.
    pub async fn bury_job(
        &self,
        id: Uuid,
        owner: &str,
        error: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        held!(
            self,
            "UPDATE jobs SET status = 'dead', last_error = $3, finished_at = $4, \
             lease_owner = NULL, lease_until = NULL \
             WHERE id = $1 AND lease_owner = $2 AND status = 'running'",
            id,
            owner,
            error,
            now
        )
    }

    /// Jobs in `status`, newest first (by id, which grows with time), before the cursor id.
    pub async fn jobs_in(
        &self,
        status: &str,
        before: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<JobRow>, StoreError> {
        let mut tx = self.begin_read().await?;
        let rows = on_tx!(tx, |c| sqlx::query_as::<_, JobRow>(
            "SELECT id, kind, workspace_id, status, attempts, max_attempts, last_error, \
             created_at, finished_at FROM jobs WHERE status = $1 AND ($2 IS NULL OR id < $2) \
             ORDER BY id DESC LIMIT $3"
        )
        .bind(status)
        .bind(before)
        .bind(limit)
        .fetch_all(c)
        .await)?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Puts a dead job back in the queue with its attempts reset (an administrator's retry).
    pub async fn requeue_dead_job(&self, id: Uuid, now: i64) -> Result<Option<JobRow>, StoreError> {
        let mut tx = self.begin().await?;
        let row = on_tx!(tx, |c| sqlx::query_as::<_, JobRow>(
            "UPDATE jobs SET status = 'queued', attempts = 0, run_at = $2, finished_at = NULL \
             WHERE id = $1 AND status = 'dead' RETURNING id, kind, workspace_id, status, \
             attempts, max_attempts, last_error, created_at, finished_at"
        )
        .bind(id)
        .bind(now)
        .fetch_optional(c)
        .await)?;
        if row.is_some() {
            tx.notify_jobs().await?;
        }
        tx.commit().await?;
        Ok(row)
    }

    /// How many jobs are queued, running and dead.
    pub async fn job_counts(&self) -> Result<JobCounts, StoreError> {
        let mut tx = self.begin_read().await?;
        let rows = on_tx!(tx, |c| sqlx::query_as::<_, (String, i64)>(
            "SELECT status, COUNT(*) FROM jobs WHERE status IN ('queued', 'running', 'dead') \
             GROUP BY status"
        )
        .fetch_all(c)
        .await)?;
        tx.commit().await?;
        let mut counts = JobCounts::default();
        for (status, n) in rows {
            match status.as_str() {
                "queued" => counts.queued = n,
                "running" => counts.running = n,
                _ => counts.dead = n,
            }
        }
        Ok(counts)
    }

    /// Deletes jobs done before `before` (µs); dead ones stay until an administrator acts.
    pub async fn prune_done_jobs(&self, before: i64) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let n = on_tx!(tx, |c| sqlx::query(
            "DELETE FROM jobs WHERE status = 'done' AND finished_at < $1"
        )
        .bind(before)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        tx.commit().await?;
        Ok(n)
    }

    /// Subscribes to "a job was enqueued" from every node; `None` on SQLite.
    pub async fn job_wakeups(&self) -> Result<Option<JobWakeups>, StoreError> {
        let Some(pool) = self.pool_postgres() else {
            return Ok(None);
        };
        let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
        listener.listen("warden_jobs").await?;
        Ok(Some(JobWakeups(listener)))
    }
}

/// "A job was enqueued", from any node (PostgreSQL).
#[derive(Debug)]
pub struct JobWakeups(sqlx::postgres::PgListener);

impl JobWakeups {
    /// Completes at the next enqueue anywhere.
    pub async fn recv(&mut self) -> Result<(), StoreError> {
        self.0.recv().await?;
        Ok(())
    }
}
