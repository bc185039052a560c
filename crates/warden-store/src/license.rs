//! Licences as stored: the install history (the newest is in force), the clock's high-water
//! mark, and which expiry alerts were sent. Platform data: no workspace scope applies.

use uuid::Uuid;
use warden_domain::license::ClockWatch;

use crate::db::on_tx;
use crate::{StoreError, Tx};

/// One install.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct InstallRow {
    /// Order of installation.
    pub seq: i64,
    /// Licence id.
    pub license_id: String,
    /// Customer.
    pub customer: String,
    /// Tier.
    pub tier: String,
    /// Expiry (Unix seconds).
    pub expires_at: i64,
    /// The signed licence.
    pub token: String,
    /// Who installed it.
    pub installed_by: Option<Uuid>,
    /// When (Unix seconds).
    pub installed_at: i64,
}

/// A licence to record as installed.
#[derive(Debug, Clone, Copy)]
pub struct NewInstall<'a> {
    /// Licence id.
    pub license_id: &'a str,
    /// Customer.
    pub customer: &'a str,
    /// Tier.
    pub tier: &'a str,
    /// Expiry (Unix seconds).
    pub expires_at: i64,
    /// The signed licence.
    pub token: &'a str,
    /// Who installed it.
    pub installed_by: Option<Uuid>,
    /// When (Unix seconds).
    pub installed_at: i64,
}

const COLUMNS: &str =
    "seq, license_id, customer, tier, expires_at, token, installed_by, installed_at";

impl Tx {
    /// Records an install; it is in force from this transaction's commit.
    pub async fn insert_license(&mut self, l: &NewInstall<'_>) -> Result<(), StoreError> {
        on_tx!(self, |c| sqlx::query(
            "INSERT INTO license_installs (license_id, customer, tier, expires_at, token, \
             installed_by, installed_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        )
        .bind(l.license_id)
        .bind(l.customer)
        .bind(l.tier)
        .bind(l.expires_at)
        .bind(l.token)
        .bind(l.installed_by)
        .bind(l.installed_at)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Serialises user admissions until this transaction ends (PostgreSQL: an advisory lock;
    /// SQLite serialises writers already).
    pub async fn lock_user_admission(&mut self) -> Result<(), StoreError> {
        if let crate::db::TxInner::Postgres(t) = &mut self.inner {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext('warden.user_admission')::bigint)")
                .execute(&mut **t)
                .await?;
        }
        Ok(())
    }

    /// Active users.
    pub async fn active_users(&mut self) -> Result<i64, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM users WHERE active = TRUE"
        )
        .fetch_one(c)
        .await)?)
    }
}

impl crate::Store {
    /// The licence in force (the newest install), if any.
    pub async fn current_license(&self) -> Result<Option<InstallRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM license_installs ORDER BY seq DESC LIMIT 1");
        let mut tx = self.begin_read().await?;
        let row = on_tx!(tx, |c| sqlx::query_as::<_, InstallRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .fetch_optional(c)
        .await)?;
        tx.commit().await?;
        Ok(row)
    }

    /// The newest install's sequence number (0: none), to notice another node's install.
    pub async fn license_seq(&self) -> Result<i64, StoreError> {
        let mut tx = self.begin_read().await?;
        let seq = on_tx!(tx, |c| sqlx::query_scalar::<_, i64>(
            "SELECT COALESCE(MAX(seq), 0) FROM license_installs"
        )
        .fetch_one(c)
        .await)?;
        tx.commit().await?;
        Ok(seq)
    }

    /// Every install, newest first (at most `limit`).
    pub async fn license_history(&self, limit: i64) -> Result<Vec<InstallRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM license_installs ORDER BY seq DESC LIMIT $1");
        let mut tx = self.begin_read().await?;
        let rows = on_tx!(tx, |c| sqlx::query_as::<_, InstallRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(limit)
        .fetch_all(c)
        .await)?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Active users.
    pub async fn count_active_users(&self) -> Result<i64, StoreError> {
        let mut tx = self.begin_read().await?;
        let n = tx.active_users().await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Shows the clock's high-water mark `now` (Unix seconds) and returns the watch after it,
    /// stored for every node and every restart.
    pub async fn observe_clock(&self, now: i64) -> Result<ClockWatch, StoreError> {
        let mut tx = self.begin().await?;
        let lock = if matches!(tx.inner, crate::db::TxInner::Postgres(_)) {
            " FOR UPDATE"
        } else {
            ""
        };
        let sql =
            format!("SELECT high_water, tampered_until FROM license_clock WHERE id = 1{lock}");
        let row = on_tx!(tx, |c| sqlx::query_as::<_, (i64, Option<i64>)>(
            sqlx::AssertSqlSafe(sql)
        )
        .fetch_optional(c)
        .await)?;
        let before = row.map(|(high_water, tampered_until)| ClockWatch {
            high_water,
            tampered_until,
        });
        let after = before.unwrap_or_default().observe(now);
        if before != Some(after) {
            on_tx!(tx, |c| sqlx::query(
                "INSERT INTO license_clock (id, high_water, tampered_until) VALUES (1, $1, $2) \
                 ON CONFLICT (id) DO UPDATE SET high_water = excluded.high_water, \
                 tampered_until = excluded.tampered_until"
            )
            .bind(after.high_water)
            .bind(after.tampered_until)
            .execute(c)
            .await
            .map(drop))?;
        }
        tx.commit().await?;
        Ok(after)
    }

    /// Claims the expiry alert for (licence, milestone): true for exactly one caller, ever,
    /// across nodes and restarts.
    pub async fn claim_license_alert(
        &self,
        license_id: &str,
        milestone: u32,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let n = on_tx!(tx, |c| sqlx::query(
            "INSERT INTO license_alerts (license_id, milestone, sent_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING"
        )
        .bind(license_id)
        .bind(i64::from(milestone))
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Email addresses of active platform administrators.
    pub async fn admin_emails(&self) -> Result<Vec<String>, StoreError> {
        let mut tx = self.begin_read().await?;
        let rows = on_tx!(tx, |c| sqlx::query_scalar::<_, String>(
            "SELECT email FROM users WHERE platform_role = 'admin' AND active = TRUE \
             ORDER BY email"
        )
        .fetch_all(c)
        .await)?;
        tx.commit().await?;
        Ok(rows)
    }
}
