//! The storage layer's one error type. Messages name what failed and how to fix it, never a
//! connection URL, password or stored value.

use crate::Backend;

/// What can go wrong in storage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `database.url` is not a URL this build understands.
    #[error("database.url: {0}")]
    InvalidUrl(String),
    /// The database could not be reached or opened.
    #[error("database.url: cannot connect to {backend} at {target}: {reason}")]
    Connect {
        /// Which backend.
        backend: Backend,
        /// `host:port` or the SQLite file path; never credentials.
        target: String,
        /// Why, in words a person can act on.
        reason: String,
    },
    /// The database was written by a newer Warden.
    #[error(
        "the database schema is at version {found}, newer than this Warden knows ({known}); \
         run a Warden at least as new as the one that last migrated it"
    )]
    SchemaTooNew {
        /// Version found in the database.
        found: i64,
        /// Newest version this binary ships.
        known: i64,
    },
    /// An applied migration differs from the one this binary ships.
    #[error(
        "migration {version} in the database differs from the one this Warden ships; the \
         database was migrated by a different build"
    )]
    MigrationChanged {
        /// The migration that differs.
        version: i64,
    },
    /// A migration failed to apply; nothing of it was kept.
    #[error("migration {version} ({name}) failed: {source}")]
    MigrationFailed {
        /// The failing migration.
        version: i64,
        /// Its name.
        name: &'static str,
        /// The database's error.
        #[source]
        source: sqlx::Error,
    },
    /// The configured encryption key does not unwrap the stored data keys.
    #[error(transparent)]
    Keyring(#[from] warden_crypto::KeyringError),
    /// Stored data is not what this build expects (a key that does not parse, say).
    #[error("{0}")]
    Invalid(String),
    /// A query failed.
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
}

impl StoreError {
    /// Whether the database refused a row because a unique column already holds its value
    /// (two clients racing for one name).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Self::Query(sqlx::Error::Database(e)) if e.is_unique_violation())
    }
}

impl StoreError {
    /// Whether the database itself is out of reach — down, restarting, its connections cut,
    /// out of connections — rather than the query or the data being wrong: what a client
    /// should retry shortly (503), not an internal error.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Connect { .. } => true,
            Self::Query(e) => match e {
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                // PostgreSQL: connection exceptions (class 08), the server shutting down or
                // starting (57P01–57P03), too many connections (53300).
                sqlx::Error::Database(db) => db.code().is_some_and(|c| {
                    c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03" | "53300")
                }),
                _ => false,
            },
            _ => false,
        }
    }

    /// Whether the database's storage is full (SQLite: `SQLITE_FULL` or no space left on the
    /// device; PostgreSQL: `disk_full`): the change was not made, and nothing is wrong with it.
    pub fn is_storage_full(&self) -> bool {
        match self {
            Self::Query(sqlx::Error::Database(db)) => {
                db.code().is_some_and(|c| matches!(&*c, "13" | "53100"))
            }
            Self::Query(sqlx::Error::Io(io)) => io.raw_os_error() == Some(28),
            _ => false,
        }
    }
}
