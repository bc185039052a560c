//! The scheduler every node runs: several times a second it turns due schedule instants into
//! queue jobs. A node moves an automation's next instant forward only if it still holds the
//! value it read (compare and set), and the job's dedupe key names the automation and the
//! instant, so however many nodes look at once, an instant fires once. An instant found
//! more than a minute late (no node was running) is missed: it is skipped, or run once for
//! everything missed, as the automation says. While the licence is not valid nothing fires;
//! when a valid licence is loaded, missed instants follow the same rule.
//!
//! It also enqueues the daily retention job: finished jobs older than a week and accepted
//! deliveries older than 30 days are deleted (dead jobs stay until an administrator acts).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::Notify;
use warden_domain::audit::Actor;
use warden_store::automations::DueAutomation;
use warden_store::jobs::NewJob;

use super::schedule::{MISSED_AFTER_US, Missed, Recurring};
use crate::jobs::{Done, Failed};
use crate::op::unix_us;
use crate::{Ctx, Op, Origin};

/// The retention job's kind.
pub const RETENTION_KIND: &str = "retention.prune";
/// How often the scheduler looks when nothing woke it.
const TICK: Duration = Duration::from_millis(200);
/// Due automations handled per transaction.
const BATCH: i64 = 500;
const DAY_US: i64 = 86_400_000_000;

/// The scheduler's wake-up call (an automation was created or changed on this node).
#[derive(Debug, Default)]
pub struct Scheduler {
    wake: Notify,
}

impl Scheduler {
    /// Wakes this node's scheduler.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// Starts this node's scheduler.
pub fn spawn(ctx: Arc<Ctx>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut retention_day = None;
        loop {
            let now = unix_us(ctx.clock.now());
            if ctx.license.allows_background(now / 1_000_000) {
                loop {
                    match fire_due(&ctx, now).await {
                        Ok(n) if n == BATCH as usize => continue,
                        Ok(_) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot fire due automations");
                            break;
                        }
                    }
                }
                if let Err(e) = crate::tickets::sync::fire_due(&ctx, now).await {
                    tracing::warn!(error = %e, "cannot start due ticket syncs");
                }
                let day = now.div_euclid(DAY_US);
                if retention_day != Some(day) {
                    match enqueue_retention(&ctx, now).await {
                        Ok(()) => retention_day = Some(day),
                        Err(e) => tracing::warn!(error = %e, "cannot enqueue the retention job"),
                    }
                }
            }
            tokio::select! {
                () = ctx.scheduler.wake.notified() => {}
                () = tokio::time::sleep(TICK) => {}
            }
        }
    })
}

/// What to do with one due instant: whether to fire, and the next instant.
fn plan(d: &DueAutomation, now: i64) -> (bool, Option<i64>, &'static str) {
    let late = now - d.next_run_at > MISSED_AFTER_US;
    let missed = Missed::parse(&d.missed).unwrap_or(Missed::Skip);
    let fire_late = missed == Missed::RunOnce;
    match d.kind.as_str() {
        "once" => (!late || fire_late, None, "schedule"),
        "cron" => {
            let recurring = d
                .cron
                .as_deref()
                .and_then(|c| Recurring::parse(c, d.timezone.as_deref().unwrap_or("UTC")).ok());
            let Some(r) = recurring else {
                return (false, None, "schedule");
            };
            if late {
                (fire_late, r.next_after(now), "schedule")
            } else {
                (true, r.next_after(d.next_run_at), "schedule")
            }
        }
        "loop" => (true, None, "loop"),
        _ => (false, None, "schedule"),
    }
}

/// Fires what is due at `now`; returns how many due automations it looked at. Jobs are
/// stamped with the clock as this batch starts.
async fn fire_due(ctx: &Ctx, due_by: i64) -> Result<usize, warden_store::StoreError> {
    let now = unix_us(ctx.clock.now()).max(due_by);
    let mut tx = ctx.store.begin_jobs().await?;
    let due = tx.due_automations(now, BATCH).await?;
    let plans: Vec<(bool, Option<i64>, &'static str)> = due.iter().map(|d| plan(d, now)).collect();
    let items: Vec<(uuid::Uuid, i64, Option<i64>, bool)> = due
        .iter()
        .zip(&plans)
        .map(|(d, (fire, next, _))| (d.id, d.next_run_at, *next, *fire))
        .collect();
    // Only instants this node moved fire here: another node took the rest.
    let moved = tx.advance_automations(&items).await?;
    let mut payloads = Vec::new();
    for (d, (fire, _, trigger)) in due.iter().zip(&plans) {
        if !moved.contains(&d.id) {
            continue;
        }
        if !fire {
            let op = Op::new(Actor::system(), Origin::default(), ctx.clock.as_ref());
            let mut event = op.event(
                "automation.run_skipped",
                "automation",
                Some(d.id.to_string()),
                json!({ "scheduled_for": crate::op::rfc3339(d.next_run_at),
                        "reason": "missed while no node was running" }),
            );
            event.workspace_id = Some(d.workspace_id.to_string());
            tx.tx().record(&ctx.audit_key, &event).await?;
            continue;
        }
        payloads.push((
            d,
            json!({ "automation_id": d.id, "trigger": trigger, "scheduled_for": d.next_run_at })
                .to_string(),
            format!("schedule:{}:{}", d.id, d.next_run_at),
        ));
    }
    let jobs: Vec<NewJob<'_>> = payloads
        .iter()
        .map(|(d, payload, key)| NewJob {
            kind: super::runner::KIND,
            workspace_id: Some(d.workspace_id),
            dedupe_key: Some(key),
            payload,
            max_attempts: ctx.automations.job_attempts,
            run_at: now,
            now,
        })
        .collect();
    let fired = tx.tx().enqueue_jobs(&jobs).await?;
    tx.commit().await?;
    if fired > 0 {
        ctx.jobs.wake();
    }
    Ok(due.len())
}

async fn enqueue_retention(ctx: &Ctx, now: i64) -> Result<(), warden_store::StoreError> {
    let day = now.div_euclid(DAY_US);
    let key = format!("retention:{day}");
    let mut tx = ctx.store.begin().await?;
    tx.enqueue_job(&NewJob {
        kind: RETENTION_KIND,
        workspace_id: None,
        dedupe_key: Some(&key),
        payload: "{}",
        max_attempts: ctx.automations.job_attempts,
        run_at: now,
        now,
    })
    .await?;
    tx.commit().await
}

/// The retention job.
pub async fn retention(ctx: &Arc<Ctx>) -> Result<Done, Failed> {
    let now = unix_us(ctx.clock.now());
    let fail = |e: warden_store::StoreError| {
        tracing::warn!(error = %e, "retention could not reach the database");
        Failed::retry("the database was not available")
    };
    let jobs = ctx
        .store
        .prune_done_jobs(now - 7 * DAY_US)
        .await
        .map_err(fail)?;
    let mut tx = ctx.store.begin_jobs().await.map_err(fail)?;
    let events = tx.prune_events(now - 30 * DAY_US).await.map_err(fail)?;
    tx.commit().await.map_err(fail)?;
    tracing::info!(
        jobs,
        events,
        "retention pruned finished jobs and old deliveries"
    );
    Ok(Done::Finished)
}
