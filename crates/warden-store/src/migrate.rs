//! Schema migrations, one list per backend, applied under a lock so that several nodes
//! starting together apply each migration exactly once.
//!
//! PostgreSQL: a transaction-scoped advisory lock, then every pending migration in that one
//! transaction (DDL is transactional there). SQLite: `BEGIN IMMEDIATE` holds the database's
//! write lock for the same purpose. Either way a failed migration leaves nothing behind.

use aws_lc_rs::digest::{SHA256, digest};
use warden_domain::clock::Clock;

use crate::db::on_tx;
use crate::{Backend, Store, StoreError};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

impl Migration {
    fn sql(&self, backend: Backend) -> &'static str {
        match backend {
            Backend::Sqlite => self.sqlite,
            Backend::Postgres => self.postgres,
        }
    }

    fn checksum(&self, backend: Backend) -> String {
        hex::encode(digest(&SHA256, self.sql(backend).as_bytes()))
    }
}

macro_rules! migration {
    ($version:literal, $name:literal) => {
        Migration {
            version: $version,
            name: $name,
            sqlite: include_str!(concat!("../migrations/sqlite/", $name, ".sql")),
            postgres: include_str!(concat!("../migrations/postgres/", $name, ".sql")),
        }
    };
}

/// Every migration, in order. Versions are consecutive from 1; a test checks it.
const MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_foundation"),
    migration!(2, "0002_audit"),
    migration!(3, "0003_identity"),
    migration!(4, "0004_tenancy"),
    migration!(5, "0005_hosts"),
    migration!(6, "0006_workspace_hosts"),
    migration!(7, "0007_license"),
    migration!(8, "0008_agent_sessions"),
    migration!(9, "0009_host_workspaces"),
    migration!(10, "0010_session_archive"),
    migration!(11, "0011_audit_pending"),
    migration!(12, "0012_refresh_binding"),
    migration!(13, "0013_signing_key_revocation"),
    migration!(14, "0014_mail_and_links"),
    migration!(15, "0015_sso"),
    migration!(16, "0016_personal_tokens"),
    migration!(17, "0017_device_grants"),
    migration!(18, "0018_passkeys"),
    migration!(19, "0019_display_names"),
    migration!(20, "0020_automations"),
    migration!(21, "0021_service_keys"),
    migration!(22, "0022_llm_gateway"),
    migration!(23, "0023_tickets_mcp"),
    migration!(24, "0024_workflows"),
    migration!(25, "0025_bots"),
    migration!(26, "0026_ticket_sync"),
    migration!(27, "0027_alerts"),
    migration!(28, "0028_master_rotation"),
    migration!(29, "0029_node_addresses"),
    migration!(30, "0030_scim"),
    migration!(31, "0031_directory_groups"),
    migration!(32, "0032_member_order"),
    migration!(33, "0033_saml"),
    migration!(34, "0034_sso_groups"),
    migration!(35, "0035_organizations"),
    migration!(36, "0036_workspace_entry"),
    migration!(37, "0037_organization_settings"),
    migration!(38, "0038_webhook_inbox"),
];

/// An arbitrary constant naming Warden's migration lock among PostgreSQL advisory locks.
const PG_MIGRATION_LOCK: i64 = 0x5741_5244_454e_0001;

/// The newest schema version this build knows.
pub fn latest_schema_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// What a migration run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Schema version before the run.
    pub from: i64,
    /// Schema version after the run.
    pub to: i64,
}

impl Store {
    /// Applies every pending migration. Refuses a database migrated by a newer or different
    /// build. Safe to call from several processes at once.
    pub async fn migrate(&self, clock: &dyn Clock) -> Result<MigrationReport, StoreError> {
        let backend = self.backend();
        let mut tx = self.begin().await?;
        if backend == Backend::Postgres {
            on_tx!(tx, |c| sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(PG_MIGRATION_LOCK)
                .execute(c)
                .await
                .map(|r| r.rows_affected()))?;
        }
        let bootstrap = match backend {
            Backend::Sqlite => {
                "CREATE TABLE IF NOT EXISTS warden_schema_migrations (\
                 version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, \
                 applied_at TEXT NOT NULL)"
            }
            Backend::Postgres => {
                "CREATE TABLE IF NOT EXISTS warden_schema_migrations (\
                 version BIGINT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, \
                 applied_at TIMESTAMPTZ NOT NULL)"
            }
        };
        // The application role may not create tables (PostgreSQL): only bootstrap when missing,
        // so a node serving through that role can check an up-to-date schema.
        let exists = match backend {
            Backend::Sqlite => false,
            Backend::Postgres => on_tx!(tx, |c| sqlx::query_scalar::<_, bool>(
                "SELECT to_regclass('warden_schema_migrations') IS NOT NULL"
            )
            .fetch_one(c)
            .await)?,
        };
        if !exists {
            on_tx!(tx, |c| sqlx::raw_sql(bootstrap)
                .execute(c)
                .await
                .map(|r| r.rows_affected()))?;
        }
        let applied = on_tx!(tx, |c| sqlx::query_as::<_, (i64, String)>(
            "SELECT version, checksum FROM warden_schema_migrations ORDER BY version"
        )
        .fetch_all(c)
        .await)?;

        let from = applied.last().map_or(0, |(v, _)| *v);
        if from > latest_schema_version() {
            return Err(StoreError::SchemaTooNew {
                found: from,
                known: latest_schema_version(),
            });
        }
        for (version, checksum) in &applied {
            let known = MIGRATIONS.iter().find(|m| m.version == *version);
            if known.is_none_or(|m| m.checksum(backend) != *checksum) {
                return Err(StoreError::MigrationChanged { version: *version });
            }
        }
        for m in MIGRATIONS.iter().filter(|m| m.version > from) {
            let sql = m.sql(backend);
            on_tx!(tx, |c| sqlx::raw_sql(sql)
                .execute(c)
                .await
                .map(|r| r.rows_affected()))
            .map_err(|source| StoreError::MigrationFailed {
                version: m.version,
                name: m.name,
                source,
            })?;
            let now = clock.now();
            on_tx!(tx, |c| sqlx::query(
                "INSERT INTO warden_schema_migrations (version, name, checksum, applied_at) \
                 VALUES ($1, $2, $3, $4)"
            )
            .bind(m.version)
            .bind(m.name)
            .bind(m.checksum(backend))
            .bind(now)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
            tracing::info!(version = m.version, name = m.name, "applied migration");
        }
        tx.commit().await?;
        Ok(MigrationReport {
            from,
            to: latest_schema_version(),
        })
    }

    /// The schema version recorded in the database (0 when never migrated).
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let sql = "SELECT COALESCE(MAX(version), 0) FROM warden_schema_migrations";
        let version = match (self.pool_sqlite(), self.pool_postgres()) {
            (Some(p), _) => sqlx::query_scalar::<_, i64>(sql).fetch_one(p).await,
            (_, Some(p)) => sqlx::query_scalar::<_, i64>(sql).fetch_one(p).await,
            (None, None) => return Ok(0),
        };
        match version {
            Ok(v) => Ok(v),
            Err(sqlx::Error::Database(e)) if is_missing_table(e.code().as_deref()) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }
}

/// "no such table" on SQLite has no SQLSTATE; PostgreSQL says 42P01 (undefined_table).
fn is_missing_table(code: Option<&str>) -> bool {
    matches!(code, Some("42P01") | Some("1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_versions_are_consecutive_from_one_and_exist_for_both_backends() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "{}", m.name);
            assert!(m.name.starts_with(&format!("{:04}_", m.version)));
            assert!(!m.sqlite.trim().is_empty() && !m.postgres.trim().is_empty());
        }
    }
}
