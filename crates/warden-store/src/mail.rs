//! The mail outbox: messages queued in the transaction of the change that causes them (so
//! mail goes out exactly when the change commits), claimed by one node at a time under a
//! lease, retried with backoff, and kept — without their bodies — as the admins' mail log.

use uuid::Uuid;

use crate::db::on_tx;
use crate::{Store, StoreError, Tx};

/// A message to queue. The body is sealed by the caller.
#[derive(Debug)]
pub struct NewMail<'a> {
    /// Its id.
    pub id: Uuid,
    /// What sent it (`magic_link`, `password_reset`, `license_expiry`, …).
    pub kind: &'a str,
    /// One address.
    pub recipient: &'a str,
    /// Subject line.
    pub subject: &'a str,
    /// The body, sealed by the keyring.
    pub sealed_body: &'a [u8],
    /// When queued (µs).
    pub now: i64,
}

/// A message a node has claimed to send.
#[derive(Debug, sqlx::FromRow)]
pub struct ClaimedMail {
    /// Its id.
    pub id: Uuid,
    /// What sent it.
    pub kind: String,
    /// One address.
    pub recipient: String,
    /// Subject line.
    pub subject: String,
    /// The sealed body (absent only if wiped, which a queued message never is).
    pub sealed_body: Option<Vec<u8>>,
    /// Attempts made before this one.
    pub attempts: i32,
}

/// A line of the mail log (never the body).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MailLogRow {
    /// Its id.
    pub id: Uuid,
    /// What sent it.
    pub kind: String,
    /// One address.
    pub recipient: String,
    /// Subject line.
    pub subject: String,
    /// `queued`, `sent`, `logged` (no SMTP configured) or `failed` (given up).
    pub status: String,
    /// Attempts made.
    pub attempts: i32,
    /// When the next attempt is due (queued only), µs.
    pub next_attempt_at: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When queued, µs.
    pub created_at: i64,
    /// When sent, logged or given up, µs.
    pub finished_at: Option<i64>,
}

impl Tx {
    /// Queues a message; it is sent once this transaction commits.
    pub async fn queue_mail(&mut self, m: &NewMail<'_>) -> Result<(), StoreError> {
        on_tx!(self, |c| {
            sqlx::query(
            "INSERT INTO mail_outbox (id, kind, recipient, subject, sealed_body, status, \
             attempts, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $6)"
        )
        .bind(m.id)
        .bind(m.kind)
        .bind(m.recipient)
        .bind(m.subject)
        .bind(m.sealed_body)
        .bind(m.now)
        .execute(c)
        .await
        .map(drop)
        })?;
        Ok(())
    }

    /// The newest messages first, before the cursor (a creation time, µs).
    pub async fn mail_log(
        &mut self,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<MailLogRow>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_as::<_, MailLogRow>(
            "SELECT id, kind, recipient, subject, status, attempts, next_attempt_at, last_error, \
             created_at, finished_at FROM mail_outbox WHERE created_at < $1 \
             ORDER BY created_at DESC, id DESC LIMIT $2"
        )
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(c)
        .await)?)
    }
}

impl Store {
    /// Claims up to `limit` messages due at `now` for this node until `lease_until`: another
    /// node sees them again only if this one has not finished them by then.
    pub async fn claim_due_mail(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedMail>, StoreError> {
        let mut tx = self.begin().await?;
        let due = on_tx!(tx, |c| sqlx::query_as::<_, (Uuid, i64)>(
            "SELECT id, next_attempt_at FROM mail_outbox \
             WHERE status = 'queued' AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at LIMIT $2"
        )
        .bind(now)
        .bind(limit)
        .fetch_all(c)
        .await)?;
        let mut claimed = Vec::with_capacity(due.len());
        for (id, seen) in due {
            // Only if no other node moved it meanwhile.
            let row = on_tx!(tx, |c| sqlx::query_as::<_, ClaimedMail>(
                "UPDATE mail_outbox SET next_attempt_at = $3 \
                 WHERE id = $1 AND status = 'queued' AND next_attempt_at = $2 \
                 RETURNING id, kind, recipient, subject, sealed_body, attempts"
            )
            .bind(id)
            .bind(seen)
            .bind(lease_until)
            .fetch_optional(c)
            .await)?;
            claimed.extend(row);
        }
        tx.commit().await?;
        Ok(claimed)
    }

    /// Records an attempt: `Some(next)` keeps the message queued until then (it failed and
    /// will be retried); otherwise it ends with `status` and its body is wiped.
    pub async fn finish_mail_attempt(
        &self,
        id: Uuid,
        status: &str,
        next: Option<i64>,
        error: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        match next {
            Some(next) => on_tx!(tx, |c| sqlx::query(
                "UPDATE mail_outbox SET attempts = attempts + 1, next_attempt_at = $2, \
                 last_error = $3 WHERE id = $1"
            )
            .bind(id)
            .bind(next)
            .bind(error)
            .execute(c)
            .await
            .map(drop))?,
            None => on_tx!(tx, |c| sqlx::query(
                "UPDATE mail_outbox SET attempts = attempts + 1, status = $2, last_error = $3, \
                 finished_at = $4, sealed_body = NULL WHERE id = $1"
            )
            .bind(id)
            .bind(status)
            .bind(error)
            .bind(now)
            .execute(c)
            .await
            .map(drop))?,
        }
        tx.commit().await?;
        Ok(())
    }
}
