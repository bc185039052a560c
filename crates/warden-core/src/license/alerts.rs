//! Expiry alerts: once a day at the configured hour (UTC), administrators with an address are
//! told that the licence expires in 30, 14, 7 or 1 days. Each (licence, milestone) is sent by
//! exactly one node, once, ever: the first to record it in the database sends it. A run that
//! was missed never sends an old milestone (see `warden_domain::license::due_milestone`).
//! With no SMTP configured, the alert goes to the log instead.

use std::sync::atomic::Ordering;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
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
    deliver(state, &to, &subject, &body).await;
    Outcome::Sent { milestone, to }
}

async fn deliver(state: &AppState, to: &[String], subject: &str, body: &str) {
    let Some(url) = &state.smtp.url else {
        tracing::warn!(recipients = ?to, subject, "licence expiry alert (no SMTP configured)");
        return;
    };
    let transport = match AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret()) {
        Ok(t) => t.build(),
        Err(_) => {
            tracing::error!("smtp.url is not usable; licence alert not sent");
            return;
        }
    };
    let Ok(from) = state.smtp.from.parse::<Mailbox>() else {
        tracing::error!("smtp.from is not an address; licence alert not sent");
        return;
    };
    for addr in to {
        let Ok(rcpt) = addr.parse::<Mailbox>() else {
            tracing::warn!(recipient = %addr, "not a deliverable address; skipped");
            continue;
        };
        let message = Message::builder()
            .from(from.clone())
            .to(rcpt)
            .subject(subject)
            .body(body.to_owned());
        match message {
            Ok(m) => {
                if let Err(e) = transport.send(m).await {
                    tracing::error!(recipient = %addr, error = %e, "licence alert not delivered");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot build a licence alert"),
        }
    }
}
