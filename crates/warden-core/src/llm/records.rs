//! Call records, written off the request path: each finished call is handed to a writer
//! that stores records in batches — the record, its audit event (`llm.call`, carrying the
//! correlation id) and the day's usage in one transaction — then checks the monthly quotas
//! of the workspaces and users it touched and sends the 80% and 90% alerts (audit and mail,
//! once each).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;
use uuid::Uuid;
use warden_domain::audit::{Action, Actor, ActorKind, NewEvent, Outcome};
use warden_store::llm::CallRow;

use super::policy::{Limits, Policy, month_bounds_days};
use crate::Ctx;

/// Records waiting for the writer on one node (bounded: a full queue slows calls down).
/// Four batches: enough to keep the writer busy, little memory held under saturation.
const QUEUE: usize = 2_048;
/// Records written in one transaction.
const BATCH: usize = 512;

/// One finished call, with what its audit event needs.
#[derive(Debug)]
pub struct Finished {
    /// The record.
    pub row: CallRow,
    /// The caller's address.
    pub client_ip: Option<std::net::IpAddr>,
    /// The workspace's quotas (for the alerts).
    pub quotas: Arc<Policy>,
}

/// The sending side, held by the gateway.
#[derive(Debug, Clone)]
pub struct Writer {
    tx: mpsc::Sender<Finished>,
}

/// The receiving side, until the writer task takes it.
#[derive(Debug)]
pub struct Inbox(mpsc::Receiver<Finished>);

/// A writer and its inbox.
pub fn channel() -> (Writer, Inbox) {
    let (tx, rx) = mpsc::channel(QUEUE);
    (Writer { tx }, Inbox(rx))
}

impl Writer {
    /// Hands a record to the writer, waiting for room when its queue is full.
    pub async fn send(&self, f: Finished) {
        if self.tx.send(f).await.is_err() {
            tracing::error!("the call record writer has stopped; a record is lost");
        }
    }

    /// Hands a record to the writer without waiting. When the queue is full the caller's task waits its
    /// turn in the background: no record is dropped.
    pub fn push(&self, f: Finished) {
        match self.tx.try_send(f) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(f)) => {
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let _ = tx.send(f).await;
                });
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!("the call record writer has stopped; a record is lost");
            }
        }
    }
}

fn event_of(f: &Finished) -> NewEvent {
    let r = &f.row;
    let actor = match r.user_id {
        Some(u) => Actor {
            kind: ActorKind::ApiKey,
            id: Some(u.to_string()),
        },
        None => Actor {
            kind: ActorKind::ApiKey,
            id: Some(r.key_id.to_string()),
        },
    };
    let outcome = match r.status {
        200..=299 => Outcome::Success,
        400 | 401 | 403 | 413 | 429 => Outcome::Denied,
        _ => Outcome::Failed,
    };
    NewEvent {
        at: time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(r.created_at) * 1000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
        actor,
        workspace_id: Some(r.workspace_id.to_string()),
        action: Action::from_static("llm.call"),
        resource_type: "llm_call".to_owned(),
        resource_id: Some(r.id.to_string()),
        outcome,
        client_ip: f.client_ip,
        user_agent: None,
        request_id: Some(r.request_id.clone()),
        duration_ms: r.latency_us / 1000,
        summary: json!({
            "endpoint": r.endpoint,
            "model": r.model,
            "status": r.status,
            "key_id": r.key_id.to_string(),
            "session_id": r.session_id.map(|s| s.to_string()),
            "tokens_in": r.tokens_in,
            "tokens_out": r.tokens_out,
            "cost_micros": r.cost,
            "decisions": serde_json::from_str::<serde_json::Value>(&r.decisions).unwrap_or_default(),
        }),
    }
}

/// Runs the writer until the gateway is dropped.
pub fn spawn(ctx: Arc<Ctx>, inbox: Inbox) -> tokio::task::JoinHandle<()> {
    let mut rx = inbox.0;
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            if rx.recv_many(&mut batch, BATCH).await == 0 {
                return;
            }
            // A moment for more to arrive, so a busy gateway writes few transactions.
            if batch.len() < BATCH {
                tokio::time::sleep(Duration::from_millis(20)).await;
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(f) => batch.push(f),
                        Err(_) => break,
                    }
                }
            }
            let mut delay = Duration::from_millis(100);
            loop {
                match write(&ctx, &batch).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::error!(error = %e, records = batch.len(), "cannot write call records; retrying");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(10));
                    }
                }
            }
            alerts(&ctx, &batch).await;
            batch.clear();
        }
    })
}

async fn write(ctx: &Ctx, batch: &[Finished]) -> Result<(), warden_store::StoreError> {
    let mut tx = ctx.store.begin_llm().await?;
    let rows: Vec<CallRow> = batch.iter().map(|f| f.row.clone()).collect();
    tx.insert_calls(&rows).await?;
    for f in batch {
        tx.tx().record(&ctx.audit_key, &event_of(f)).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The thresholds alerted on, in percent of a monthly quota.
const THRESHOLDS: [i32; 2] = [80, 90];

async fn alerts(ctx: &Ctx, batch: &[Finished]) {
    let mut seen: HashSet<(Uuid, Option<Uuid>)> = HashSet::new();
    for f in batch {
        let q = &f.quotas.quotas;
        let ws = f.row.workspace_id;
        if monthly(&q.workspace) && seen.insert((ws, None)) {
            check(ctx, ws, None, &q.workspace, f.row.created_at).await;
        }
        if let Some(u) = f.row.user_id
            && monthly(&q.per_user)
            && seen.insert((ws, Some(u)))
        {
            check(ctx, ws, Some(u), &q.per_user, f.row.created_at).await;
        }
    }
}

fn monthly(l: &Limits) -> bool {
    l.requests_per_month.is_some()
        || l.tokens_per_month.is_some()
        || l.spend_micros_per_month.is_some()
}

async fn check(ctx: &Ctx, ws: Uuid, user: Option<Uuid>, l: &Limits, now: i64) {
    let day = i32::try_from(now.div_euclid(86_400_000_000)).unwrap_or(0);
    let (first, _) = month_bounds_days(day);
    let result = async {
        let mut tx = ctx.store.begin_llm().await?;
        let used = tx.usage_since(ws, user, first).await?;
        let mut crossed = Vec::new();
        for (metric, limit, used) in [
            ("requests", l.requests_per_month, used[0]),
            ("tokens", l.tokens_per_month, used[1]),
            ("spend_micros", l.spend_micros_per_month, used[2]),
        ] {
            let Some(limit) = limit.filter(|&x| x > 0) else {
                continue;
            };
            for t in THRESHOLDS {
                if used * 100 >= limit * i64::from(t) {
                    let subject = user.map_or_else(|| "w".to_owned(), |u| u.to_string());
                    if tx.note_alert(ws, &subject, metric, first, t, now).await? {
                        crossed.push((metric, t, used, limit));
                    }
                }
            }
        }
        for (metric, t, used, limit) in &crossed {
            let event = NewEvent {
                at: time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(now) * 1000)
                    .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
                actor: Actor::system(),
                workspace_id: Some(ws.to_string()),
                action: Action::from_static("llm.quota_alert"),
                resource_type: "workspace".to_owned(),
                resource_id: Some(ws.to_string()),
                outcome: Outcome::Success,
                client_ip: None,
                user_agent: None,
                request_id: None,
                duration_ms: 0,
                summary: json!({
                    "subject": user.map_or_else(|| "workspace".to_owned(), |u| u.to_string()),
                    "metric": metric, "threshold_percent": t, "used": used, "limit": limit,
                }),
            };
            tx.tx().record(&ctx.audit_key, &event).await?;
        }
        let recipients: Vec<String> = if crossed.is_empty() {
            Vec::new()
        } else {
            tx.workspace_admin_emails(ws, user).await?
        };
        for (metric, t, used, limit) in &crossed {
            let who = if user.is_some() {
                "a member's"
            } else {
                "the workspace's"
            };
            let body = format!(
                "The LLM gateway has used {t}% of {who} monthly {metric} quota \
                 ({used} of {limit}) in workspace {ws}.\n\nAt 100% calls are refused until the \
                 month ends or the quota is raised.\n"
            );
            let subject = format!("Warden: {t}% of a monthly LLM quota used");
            for to in &recipients {
                let m = crate::mail::Outgoing {
                    kind: "llm_quota_alert",
                    to,
                    subject: &subject,
                    body: &body,
                };
                if let Err(e) = crate::mail::queue(ctx, tx.tx(), &m, now).await {
                    tracing::warn!(error = ?e, "cannot queue a quota alert");
                }
            }
        }
        tx.commit().await?;
        if !crossed.is_empty() {
            ctx.mail.wake();
        }
        Ok::<_, warden_store::StoreError>(())
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "cannot check monthly LLM quotas");
    }
}
