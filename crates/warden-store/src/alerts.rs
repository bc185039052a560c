//! Alerts as stored: one row per incident, how often and when it was seen, and whether the
//! administrators were mailed. Platform data: no workspace scope applies.

use crate::db::on_tx;
use crate::{StoreError, Tx};

/// One incident.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AlertRow {
    /// Its kind (`warden_domain::alerts::AlertKind::as_str`).
    pub kind: String,
    /// Which incident of that kind (the broken event's sequence number, the host and day…).
    pub incident: String,
    /// First seen (Unix seconds).
    pub first_at: i64,
    /// Last seen (Unix seconds).
    pub last_at: i64,
    /// How many times it was seen.
    pub occurrences: i64,
    /// When the administrators were mailed (Unix seconds), once they were.
    pub mailed_at: Option<i64>,
}

/// Incidents of one kind.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AlertCount {
    /// The kind.
    pub kind: String,
    /// Incidents ever raised.
    pub incidents: i64,
    /// Of those, seen since the given time.
    pub active: i64,
}

impl Tx {
    /// Records that incident `incident` of `kind` was seen at `now` (Unix seconds): `true`
    /// when this opened it (the caller raises it: audit, mail), `false` when it was open.
    pub async fn raise_alert(
        &mut self,
        kind: &str,
        incident: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let opened = on_tx!(self, |c| sqlx::query(
            "INSERT INTO alerts (kind, incident, first_at, last_at, occurrences) \
             VALUES ($1, $2, $3, $3, 1) ON CONFLICT (kind, incident) DO NOTHING"
        )
        .bind(kind)
        .bind(incident)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        if opened == 1 {
            return Ok(true);
        }
        on_tx!(self, |c| sqlx::query(
            "UPDATE alerts SET last_at = CASE WHEN last_at > $3 THEN last_at ELSE $3 END, \
             occurrences = occurrences + 1 WHERE kind = $1 AND incident = $2"
        )
        .bind(kind)
        .bind(incident)
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
        Ok(false)
    }

    /// Takes the incidents nobody has mailed yet, marking them mailed at `now`: whoever takes
    /// one mails it, in this transaction (the mail is queued with it).
    pub async fn take_unmailed_alerts(&mut self, now: i64) -> Result<Vec<AlertRow>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_as::<_, AlertRow>(
            "UPDATE alerts SET mailed_at = $1 WHERE mailed_at IS NULL \
             RETURNING kind, incident, first_at, last_at, occurrences, mailed_at"
        )
        .bind(now)
        .fetch_all(c)
        .await)?)
    }
}

impl crate::Store {
    /// Incidents seen since `since` (Unix seconds), most recent first, at most 50.
    pub async fn recent_alerts(&self, since: i64) -> Result<Vec<AlertRow>, StoreError> {
        let mut tx = self.begin_read().await?;
        let rows = on_tx!(tx, |c| sqlx::query_as::<_, AlertRow>(
            "SELECT kind, incident, first_at, last_at, occurrences, mailed_at FROM alerts \
             WHERE last_at >= $1 ORDER BY last_at DESC, kind, incident LIMIT 50"
        )
        .bind(since)
        .fetch_all(c)
        .await)?;
        tx.commit().await?;
        Ok(rows)
    }

    /// For each kind ever raised: its incidents, and how many were seen since `since`.
    pub async fn alert_counts(&self, since: i64) -> Result<Vec<AlertCount>, StoreError> {
        let mut tx = self.begin_read().await?;
        let rows = on_tx!(tx, |c| sqlx::query_as::<_, AlertCount>(
            "SELECT kind, COUNT(*) AS incidents, \
             SUM(CASE WHEN last_at >= $1 THEN 1 ELSE 0 END) AS active \
             FROM alerts GROUP BY kind ORDER BY kind"
        )
        .bind(since)
        .fetch_all(c)
        .await)?;
        tx.commit().await?;
        Ok(rows)
    }
}
