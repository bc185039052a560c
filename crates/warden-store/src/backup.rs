//! Backups of the embedded SQLite database: an online, consistent copy taken while Warden
//! serves (`VACUUM INTO`: one read transaction, so the copy is one point in time and no
//! writer waits for it), and the integrity check a copy must pass before it is restored.
//! PostgreSQL is backed up with `pg_dump` (docs/operations/backup.md).

use std::path::Path;

use crate::{Store, StoreError};

impl Store {
    /// Writes a consistent copy of the SQLite database to `dest`, which must not exist.
    pub async fn copy_sqlite_to(&self, dest: &Path) -> Result<(), StoreError> {
        let pool = self.pool_sqlite().ok_or_else(|| {
            StoreError::Invalid(
                "`warden backup` copies the embedded SQLite database; back PostgreSQL up with \
                 pg_dump (docs/operations/backup.md)"
                    .to_owned(),
            )
        })?;
        let dest = dest
            .to_str()
            .ok_or_else(|| StoreError::Invalid("the backup path is not UTF-8".to_owned()))?;
        sqlx::query("VACUUM INTO $1")
            .bind(dest)
            .execute(pool)
            .await?;
        Ok(())
    }

    /// SQLite's own check of every page and index: empty when the database is sound,
    /// else what is wrong (at most 20 lines).
    pub async fn integrity_problems(&self) -> Result<Vec<String>, StoreError> {
        let Some(pool) = self.pool_sqlite() else {
            return Ok(Vec::new());
        };
        let rows: Vec<(String,)> = sqlx::query_as("PRAGMA integrity_check(20)")
            .fetch_all(pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(line,)| line)
            .filter(|line| line != "ok")
            .collect())
    }
}
