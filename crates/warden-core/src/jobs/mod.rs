//! The node's runner for the durable work queue (`warden_store::jobs`).
//!
//! Every node runs one: it claims due jobs under a lease, runs each with a heartbeat that
//! extends the lease while it works, and records the outcome — done, retried with backoff,
//! put off (a concurrency limit), or dead after its last attempt (audited, listed for
//! administrators). A node that dies mid-job leaves the lease to run out; another node then
//! claims the job again. Delivery is therefore at least once, and every handler is
//! idempotent — it looks for what an earlier attempt did before acting — so each job happens
//! once in effect. While the licence is not valid, the runner claims nothing.
//!
//! Wake-ups: a job enqueued on this node wakes its runner at once; on PostgreSQL every
//! node listens for `warden_jobs`; otherwise each looks twice a second.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::{Notify, Semaphore};
use uuid::Uuid;
pub mod admin;

use warden_domain::audit::{Actor, Outcome as AuditOutcome};
use warden_store::jobs::ClaimedJob;

use crate::op::unix_us;
use crate::{Ctx, Op, Origin};

/// How many jobs a node runs at once.
const PARALLEL: usize = 32;
/// How often a runner with nothing to do looks again.
const POLL: Duration = Duration::from_millis(500);
/// Wait before the n-th retry (1-based), seconds.
const BACKOFF_SECS: [i64; 5] = [5, 30, 120, 600, 3600];

/// This node's side of the queue: its name as a lease owner and its runner's wake-up call.
#[derive(Debug)]
pub struct Queue {
    node: String,
    wake: Notify,
}

impl Default for Queue {
    fn default() -> Self {
        Self {
            node: Uuid::now_v7().to_string(),
            wake: Notify::new(),
        }
    }
}

impl Queue {
    /// The name this node holds leases under.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Wakes this node's runner (a job was enqueued here, or one finished).
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// What a handler did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    /// Finished.
    Finished,
    /// Could not start yet (a limit): try again after this long, without counting an attempt.
    Later(Duration),
}

/// Why a handler failed, in words safe to keep on the job (never a secret or payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    /// What went wrong.
    pub reason: String,
    /// Whether trying again cannot help.
    pub permanent: bool,
}

impl Failed {
    /// A failure another attempt may get past.
    pub fn retry(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            permanent: false,
        }
    }

    /// A failure no retry fixes.
    pub fn permanent(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            permanent: true,
        }
    }
}

/// Starts this node's runner (one that claims nothing when `automations.run_jobs` is off).
pub fn spawn_runner(ctx: Arc<Ctx>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if !ctx.automations.run_jobs {
            tracing::info!("automations.run_jobs is off: this node runs no queued jobs");
            return;
        }
        let slots = Arc::new(Semaphore::new(PARALLEL));
        let mut listener = match ctx.store.job_wakeups().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for queued jobs; polling instead");
                None
            }
        };
        loop {
            let more = claim_and_start(&ctx, &slots).await;
            if more {
                continue;
            }
            tokio::select! {
                () = ctx.jobs.wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
                ok = next_notification(&mut listener) => if !ok { listener = None },
            }
        }
    })
}

async fn next_notification(listener: &mut Option<warden_store::jobs::JobWakeups>) -> bool {
    match listener {
        Some(l) => l.recv().await.is_ok(),
        None => std::future::pending().await,
    }
}

/// Claims as many due jobs as there are free slots and starts them; `true` when every slot
/// was filled (more may be due).
async fn claim_and_start(ctx: &Arc<Ctx>, slots: &Arc<Semaphore>) -> bool {
    let now = unix_us(ctx.clock.now());
    if !ctx.license.allows_background(now / 1_000_000) {
        return false;
    }
    let free = slots.available_permits();
    if free == 0 {
        return false;
    }
    let lease = lease_us(ctx);
    let claimed = match warden_store::background(ctx.store.claim_jobs(
        ctx.jobs.node(),
        now,
        now + lease,
        free as i64,
    ))
    .await
    {
        Ok(jobs) => jobs,
        Err(e) => {
            tracing::warn!(error = %e, "cannot claim queued jobs");
            return false;
        }
    };
    let full = claimed.len() == free;
    for job in claimed {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return false;
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            // Behind people's requests for the write lock on SQLite.
            warden_store::background(run_one(&ctx, job)).await;
            drop(permit);
            ctx.jobs.wake();
        });
    }
    full
}

fn lease_us(ctx: &Ctx) -> i64 {
    i64::try_from(ctx.automations.job_lease.as_micros()).unwrap_or(i64::MAX / 4)
}

async fn run_one(ctx: &Arc<Ctx>, job: ClaimedJob) {
    let node = ctx.jobs.node().to_owned();
    if job.attempts > job.max_attempts {
        // Its lease ran out on every attempt: the nodes running it stopped mid-way.
        bury(
            ctx,
            &job,
            "its node stopped while running it on every attempt",
        )
        .await;
        return;
    }
    // Keep the lease while the handler works.
    let heartbeat = {
        let ctx = ctx.clone();
        let (id, node) = (job.id, node.clone());
        tokio::spawn(async move {
            let every = ctx.automations.job_lease / 3;
            loop {
                tokio::time::sleep(every).await;
                let until = unix_us(ctx.clock.now()) + lease_us(&ctx);
                match ctx.store.heartbeat_job(id, &node, until).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(job = %id, "lost the lease of a running job");
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot extend a job's lease"),
                }
            }
        })
    };
    let outcome = handle(ctx, &job).await;
    heartbeat.abort();
    let now = unix_us(ctx.clock.now());
    let recorded = match outcome {
        Ok(Done::Finished) => ctx.store.complete_job(job.id, &node, now).await,
        Ok(Done::Later(wait)) => {
            let wait = i64::try_from(wait.as_micros()).unwrap_or(i64::MAX / 4);
            ctx.store.defer_job(job.id, &node, now + wait).await
        }
        Err(f) if f.permanent || job.attempts >= job.max_attempts => {
            bury(ctx, &job, &f.reason).await;
            return;
        }
        Err(f) => {
            let n = usize::try_from(job.attempts.max(1) - 1).unwrap_or(0);
            let wait = BACKOFF_SECS[n.min(BACKOFF_SECS.len() - 1)] * 1_000_000;
            ctx.store
                .retry_job(job.id, &node, now + wait, &f.reason)
                .await
        }
    };
    match recorded {
        Ok(true) => {}
        Ok(false) => tracing::warn!(job = %job.id, "a job's outcome came after its lease ran out"),
        Err(e) => tracing::error!(error = %e, "cannot record a job's outcome"),
    }
}

/// Gives up on a job and audits it.
async fn bury(ctx: &Ctx, job: &ClaimedJob, reason: &str) {
    let now = unix_us(ctx.clock.now());
    match ctx
        .store
        .bury_job(job.id, ctx.jobs.node(), reason, now)
        .await
    {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            tracing::error!(error = %e, "cannot record a dead job");
            return;
        }
    }
    let op = Op::new(Actor::system(), Origin::default(), ctx.clock.as_ref());
    let mut event = op.event_with(
        "job.dead",
        "job",
        Some(job.id.to_string()),
        AuditOutcome::Failed,
        json!({ "kind": job.kind, "attempts": job.attempts, "reason": reason }),
    );
    event.workspace_id = job.workspace_id.map(|w| w.to_string());
    if let Err(e) = crate::audit::record_system(ctx, event).await {
        tracing::error!(error = %e, "cannot audit a dead job");
    }
}

/// Runs one job by its kind.
async fn handle(ctx: &Arc<Ctx>, job: &ClaimedJob) -> Result<Done, Failed> {
    match job.kind.as_str() {
        crate::automations::runner::KIND => crate::automations::runner::run(ctx, job).await,
        crate::bots::runner::TURN => crate::bots::runner::run_turn(ctx, job).await,
        crate::workflows::runner::STEP => crate::workflows::runner::run_step(ctx, job).await,
        crate::workflows::runner::TIMEOUT => crate::workflows::runner::run_timeout(ctx, job).await,
        crate::tickets::sync::KIND => crate::tickets::sync::runner::run(ctx, job).await,
        crate::automations::scheduler::RETENTION_KIND => {
            crate::automations::scheduler::retention(ctx).await
        }
        _ => Err(Failed::permanent("no handler for this kind of job")),
    }
}
