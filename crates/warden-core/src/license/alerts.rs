//! Expiry alerts: once a day at the configured hour (UTC), administrators with an address are
//! told that the licence expires in 30, 14, 7 or 1 days. Each (licence, milestone) is sent by
//! exactly one node, once, ever: the first to record it in the database sends it. A run that
//! was missed never sends an old milestone (see `warden_domain::license::due_milestone`).
//! Alerts go through the mail outbox (with no SMTP configured, to the log).

use std::sync::atomic::Ordering;

use warden_domain::license::{DAY, days_left, due_milestone};

use crate::Ctx as AppState;

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not the time, or already run today on this node, or nothing installed.
    Idle,
    /// No milestone due, or another node (or an earlier run) sent it.
    NothingDue,
    /// Sent this milestone to these administrators.
    Sent {
        /// Days before expiry.
        milestone: u32,
        /// Recipients.
        to: Vec<String>,
    },
}

/// Runs the daily alert if it is due at `now` (Unix seconds) on this node.
pub async fn run_if_due(state: &AppState, now: i64) -> Outcome {
    let day = now.div_euclid(DAY);
    let hour = now.rem_euclid(DAY) / 3600;
    if hour < i64::from(state.license.config().alert_hour)
        || state.license.last_alert_day.load(Ordering::Relaxed) >= day
    {
        return Outcome::Idle;
    }
    state.license.last_alert_day.store(day, Ordering::Relaxed);
    run(state, now).await
}

/// Runs the alert now, whatever the hour (the daily schedule calls this).
pub async fn run(state: &AppState, now: i64) -> Outcome {
    let Some(installed) = state.license.installed() else {
        return Outcome::Idle;
    };
    if !installed.signature_ok {
        return Outcome::Idle;
    }
    let claims = &installed.claims;
    let Some(milestone) = due_milestone(claims.exp, now) else {
        return Outcome::NothingDue;
    };
    match state
        .store
        .claim_license_alert(&claims.jti, milestone, now)
        .await
    {
        Ok(true) => {}
        Ok(false) => return Outcome::NothingDue,
        Err(e) => {
            tracing::error!(error = %e, "cannot record a licence expiry alert");
            return Outcome::NothingDue;
        }
    }
    let to = match state.store.admin_emails().await {
        Ok(to) => to,
        Err(e) => {
            tracing::error!(error = %e, "cannot list administrators for a licence alert");
            return Outcome::NothingDue;
        }
    };
    let left = days_left(claims.exp, now);
    let subject = format!("Warden licence {} expires in {left} day(s)", claims.jti);
    let body = format!(
        "The Warden licence {} for {} expires in {left} day(s), at {}.\n\n\
         Ask your operator for a renewed .lic file and upload it in Settings → License \
         (PUT /api/v1/license). No new machine-info.json is needed.\n",
        claims.jti,
        claims.customer,
        crate::op::rfc3339(claims.exp.saturating_mul(1_000_000)),
    );
    if let Err(e) = queue_alert(state, &to, &subject, &body).await {
        tracing::error!(error = %e, "cannot queue a licence expiry alert");
    }
    Outcome::Sent { milestone, to }
}

/// Queues the alert for each administrator in the outbox (sent, retried and logged like all
/// mail).
async fn queue_alert(
    state: &AppState,
    to: &[String],
    subject: &str,
    body: &str,
) -> crate::CoreResult<()> {
    let now = crate::identity::now_us(state.clock.as_ref());
    let mut tx = state.store.begin().await?;
    for addr in to {
        let m = crate::mail::Outgoing {
            kind: "license_expiry",
            to: addr,
            subject,
            body,
        };
        crate::mail::queue(state, &mut tx, &m, now).await?;
    }
    tx.commit().await?;
    state.mail.wake();
    Ok(())
}
