//! Alerts that reach people: an audit-chain break, a licence clock-tamper or signature
//! failure, and a host key used from a refused network. Each incident is raised once — the
//! node that opens its row records `alert.raised` in the audit trail in the same transaction —
//! and mailed once to the active administrators (through the mail outbox: SMTP, or the log
//! without it), whichever node takes it first. Incidents show in `/readyz` while seen in the
//! last day, and in `/metrics`.
//!
//! The host gate raises its alert where it refuses the key; the watcher ([`spawn_watch`])
//! looks at the audit monitor and the licence every few seconds and mails what is new.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use warden_domain::alerts::AlertKind;
use warden_domain::audit::{Actor, Outcome};
use warden_domain::clock::Clock;
use warden_store::audit::ChainKey;
use warden_store::{StoreError, Tx};

use crate::error::CoreResult;
use crate::{Ctx, Op, Origin};

/// How long after it was last seen an incident counts as active (`/readyz`, metrics).
pub const ACTIVE_FOR_SECS: i64 = 86_400;

/// How often the watcher looks.
const EVERY: Duration = Duration::from_secs(5);

/// An incident as `/readyz` shows it: no host, address or key — only what and when.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActiveAlert {
    /// `audit_chain_broken`, `license_clock_tampered`, `license_signature_invalid` or
    /// `host_refused_network`.
    pub kind: String,
    /// First seen (RFC 3339).
    pub since: String,
    /// Last seen (RFC 3339).
    pub last_seen: String,
    /// Times seen.
    pub occurrences: i64,
}

/// Opens incident `incident` of `kind` in `tx`, or counts it again when it is open. When
/// this opens it, `alert.raised` is recorded in the same transaction and an error is logged.
/// `true` when it opened.
pub async fn raise_in(
    tx: &mut Tx,
    key: &ChainKey,
    clock: &dyn Clock,
    kind: AlertKind,
    incident: &str,
    details: Value,
) -> Result<bool, StoreError> {
    let op = Op::new(Actor::system(), Origin::default(), clock);
    let opened = tx
        .raise_alert(kind.as_str(), incident, op.now_us() / 1_000_000)
        .await?;
    if opened {
        let event = op.event_with(
            "alert.raised",
            "alert",
            Some(kind.as_str().to_owned()),
            Outcome::Success,
            json!({ "kind": kind.as_str(), "incident": incident, "details": details }),
        );
        tx.record(key, &event).await?;
        tracing::error!(
            kind = kind.as_str(),
            incident,
            "ALERT: {}; the administrators are being mailed",
            kind.subject()
        );
    }
    Ok(opened)
}

/// [`raise_in`] in a transaction of its own.
pub async fn raise(ctx: &Ctx, kind: AlertKind, incident: &str, details: Value) -> CoreResult<bool> {
    let mut tx = ctx.store.begin().await?;
    let opened = raise_in(
        &mut tx,
        &ctx.audit_key,
        ctx.clock.as_ref(),
        kind,
        incident,
        details,
    )
    .await?;
    tx.commit().await?;
    Ok(opened)
}

/// Mails every incident nobody has mailed yet to the active administrators with an address
/// (queued with the taking, so an incident is mailed by exactly one node); how many.
pub async fn mail_new(ctx: &Ctx) -> CoreResult<usize> {
    let now_us = crate::identity::now_us(ctx.clock.as_ref());
    let to = ctx.store.admin_emails().await?;
    let mut tx = ctx.store.begin().await?;
    let taken = tx.take_unmailed_alerts(now_us / 1_000_000).await?;
    for alert in &taken {
        let Some(kind) = AlertKind::parse(&alert.kind) else {
            continue;
        };
        let body = format!(
            "{subject}.\n\n{advice}\n\nIncident: {incident}\nFirst seen: {first}\nServer: {url}\n\n\
             This is mailed once per incident; /readyz and /metrics show it while it lasts.\n",
            subject = kind.subject(),
            advice = kind.advice(),
            incident = alert.incident,
            first = crate::op::rfc3339(alert.first_at.saturating_mul(1_000_000)),
            url = ctx.public_url,
        );
        if to.is_empty() {
            tracing::error!(
                kind = kind.as_str(),
                "no active administrator has an email address: this alert reaches only the log"
            );
        }
        for addr in &to {
            let m = crate::mail::Outgoing {
                kind: "alert",
                to: addr,
                subject: kind.subject(),
                body: &body,
            };
            crate::mail::queue(ctx, &mut tx, &m, now_us).await?;
        }
    }
    tx.commit().await?;
    if !taken.is_empty() {
        ctx.mail.wake();
    }
    Ok(taken.len())
}

/// Raises what the audit monitor and the licence show now, then mails what is new.
pub async fn check(ctx: &Ctx) -> CoreResult<()> {
    let audit = ctx.audit_monitor.status();
    if let Some(seq) = audit.broken_at {
        raise(
            ctx,
            AlertKind::AuditChainBroken,
            &format!("event {seq}"),
            json!({ "broken_at": seq, "tamper": audit.tamper }),
        )
        .await?;
    }
    let now = crate::license::unix_now(ctx.clock.as_ref());
    if ctx.license.standing(now).is_some() {
        let watch = ctx.license.clock_watch();
        if watch.tampered_at(now) {
            raise(
                ctx,
                AlertKind::LicenseClockTampered,
                &format!("clock behind {}", watch.high_water),
                json!({ "latest_time_seen": crate::op::rfc3339(watch.high_water.saturating_mul(1_000_000)) }),
            )
            .await?;
        }
        if let Some(installed) = ctx.license.installed()
            && !installed.signature_ok
        {
            raise(
                ctx,
                AlertKind::LicenseSignatureInvalid,
                &format!("licence {} install {}", installed.claims.jti, installed.seq),
                json!({ "license_id": installed.claims.jti }),
            )
            .await?;
        }
    }
    mail_new(ctx).await?;
    Ok(())
}

/// Incidents seen in the last [`ACTIVE_FOR_SECS`].
pub async fn active(ctx: &Ctx) -> CoreResult<Vec<ActiveAlert>> {
    let now = crate::license::unix_now(ctx.clock.as_ref());
    let rows = ctx.store.recent_alerts(now - ACTIVE_FOR_SECS).await?;
    Ok(rows
        .into_iter()
        .map(|r| ActiveAlert {
            kind: r.kind,
            since: crate::op::rfc3339(r.first_at.saturating_mul(1_000_000)),
            last_seen: crate::op::rfc3339(r.last_at.saturating_mul(1_000_000)),
            occurrences: r.occurrences,
        })
        .collect())
}

/// Runs [`check`] every few seconds until aborted.
pub fn spawn_watch(ctx: Arc<Ctx>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(e) = check(&ctx).await {
                tracing::warn!(error = %e, "alerts could not be checked");
            }
            tokio::time::sleep(EVERY).await;
        }
    })
}
