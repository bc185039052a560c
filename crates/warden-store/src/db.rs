//! Connections, pools and transactions for both backends.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Postgres, Sqlite};
use tokio::sync::Notify;

use crate::StoreError;

/// Which database engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite (the default).
    Sqlite,
    /// PostgreSQL (for clusters).
    Postgres,
}

impl Backend {
    /// The backend a `database.url` names, from its scheme.
    pub fn of_url(url: &str) -> Result<Self, StoreError> {
        let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or_default();
        match scheme {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            _ => Err(StoreError::InvalidUrl(
                "must start with sqlite:// or postgres://".to_owned(),
            )),
        }
    }

    /// Lower-case name, as shown in `/readyz`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        })
    }
}

/// How to reach the database. `Debug` never shows the URL (it may hold a password).
#[derive(Clone)]
pub struct ConnectOptions {
    /// `sqlite://PATH` or `postgres://USER:PASSWORD@HOST:PORT/DB`.
    pub url: String,
    /// Upper bound on pooled connections.
    pub max_connections: u32,
    /// How long to wait for a connection before giving up.
    pub connect_timeout: Duration,
    /// How long SQLite waits on a locked database before failing.
    pub busy_timeout: Duration,
}

impl ConnectOptions {
    /// Options with Warden's defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 10,
            connect_timeout: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(5),
        }
    }
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("url", &"[redacted]")
            .field("max_connections", &self.max_connections)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

#[derive(Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A handle to the database. Cheap to clone; all clones share one pool.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    /// Woken when a transaction that recorded an audit event commits (the chainer waits here).
    audit_recorded: Arc<Notify>,
    /// On SQLite, the group commit of transactions that only record audit events.
    audit_group: Option<crate::audit::GroupCommit>,
    /// On SQLite, this process's writers in line for the write lock.
    write_gate: Option<WriteGate>,
    /// On SQLite, what copies the write-ahead log into the database.
    _checkpointer: Option<crate::checkpoint::Checkpointer>,
}

/// SQLite has one writer. Left to SQLite, writers that find the lock taken sleep and try
/// again (1, 2, 5, 10 … 100 ms), so under contention the lock sits idle while they sleep and
/// the unlucky wait long. This process's writers instead queue here, first come first
/// served, and take the lock the moment the previous one lets go; SQLite's busy handler is
/// left for writers in other processes. Waiting longer than `busy_timeout` fails as a busy
/// database would. Work marked [`background`] (the queue's jobs) lines up one transaction at
/// a time, so a person's request waits behind at most one of them, however many run.
#[derive(Clone)]
pub(crate) struct WriteGate {
    lock: Arc<tokio::sync::Mutex<()>>,
    background: Arc<tokio::sync::Semaphore>,
    wait: Duration,
    /// Writers let through so far (the checkpointer's cue).
    turns: Arc<std::sync::atomic::AtomicU64>,
}

/// A turn at the write lock, held until the transaction ends.
pub(crate) struct WriteTurn {
    _lock: tokio::sync::OwnedMutexGuard<()>,
    _background: Option<tokio::sync::OwnedSemaphorePermit>,
}

tokio::task_local! {
    static BACKGROUND: ();
}

/// Runs `work` as background work: on SQLite its write transactions queue for the write lock
/// one at a time, behind everything else this process writes; on PostgreSQL nothing changes.
pub async fn background<F: std::future::Future>(work: F) -> F::Output {
    BACKGROUND.scope((), work).await
}

impl WriteGate {
    fn new(wait: Duration) -> Self {
        Self {
            lock: Arc::new(tokio::sync::Mutex::new(())),
            background: Arc::new(tokio::sync::Semaphore::new(1)),
            wait,
            turns: Arc::default(),
        }
    }

    /// How many writers this gate has let through.
    pub(crate) fn turns(&self) -> u64 {
        self.turns.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits for this process's turn to write.
    pub(crate) async fn enter(&self) -> Result<WriteTurn, StoreError> {
        let busy =
            |_| StoreError::Invalid("the database stayed locked by other writers".to_owned());
        let deadline = tokio::time::Instant::now() + self.wait;
        let background = if BACKGROUND.try_with(|()| ()).is_ok() {
            let permit = tokio::time::timeout_at(deadline, self.background.clone().acquire_owned())
                .await
                .map_err(busy)?;
            permit.ok()
        } else {
            None
        };
        let lock = tokio::time::timeout_at(deadline, self.lock.clone().lock_owned())
            .await
            .map_err(busy)?;
        self.turns
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(WriteTurn {
            _lock: lock,
            _background: background,
        })
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .finish()
    }
}

impl Store {
    /// Opens a pool and checks that the database answers. Does not migrate.
    pub async fn connect(options: &ConnectOptions) -> Result<Self, StoreError> {
        match Backend::of_url(&options.url)? {
            Backend::Sqlite => connect_sqlite(options).await,
            Backend::Postgres => connect_postgres(options).await,
        }
    }

    /// The connection pool as this node sees it (for `/metrics`).
    pub fn pool_stats(&self) -> crate::gauges::PoolStats {
        let (open, idle, max) = match &self.pool {
            Pool::Sqlite(p) => (p.size(), p.num_idle(), p.options().get_max_connections()),
            Pool::Postgres(p) => (p.size(), p.num_idle(), p.options().get_max_connections()),
        };
        crate::gauges::PoolStats {
            open,
            idle: u32::try_from(idle).unwrap_or(u32::MAX),
            max,
        }
    }

    /// Which backend this store runs on.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Starts a read-write transaction. On SQLite it takes the write lock (`BEGIN
    /// IMMEDIATE`) before its first statement, so concurrent writers queue instead of failing
    /// mid-transaction; one that only records audit events begins, writes them and commits in
    /// a single round trip to the connection's thread.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let inner = match &self.pool {
            Pool::Sqlite(p) => TxInner::SqliteNotBegun(NotBegun {
                pool: p.clone(),
                group: self.audit_group.clone(),
                gate: self.write_gate.clone(),
            }),
            Pool::Postgres(p) => TxInner::Postgres(begin_pg(p, "BEGIN").await?),
        };
        Ok(self.tx(inner))
    }

    /// Starts a read-only transaction that sees one consistent snapshot and blocks no writer
    /// (a deferred transaction on SQLite's write-ahead log; `REPEATABLE READ READ ONLY` on
    /// PostgreSQL).
    pub async fn begin_read(&self) -> Result<Tx, StoreError> {
        let inner = match &self.pool {
            Pool::Sqlite(p) => TxInner::Sqlite(p.begin().await?),
            Pool::Postgres(p) => TxInner::Postgres(
                begin_pg(p, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?,
            ),
        };
        Ok(self.tx(inner))
    }

    fn tx(&self, inner: TxInner) -> Tx {
        Tx {
            inner,
            write_turn: None,
            recorded_audit: false,
            deferred_audit: Vec::new(),
            audit_recorded: self.audit_recorded.clone(),
        }
    }

    /// Completes when a transaction that recorded an audit event has committed since the
    /// last wake-up (on this node).
    pub async fn audit_recorded(&self) {
        self.audit_recorded.notified().await;
    }

    /// Checks that the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Sqlite(p) => sqlx::query("SELECT 1").execute(p).await.map(drop)?,
            Pool::Postgres(p) => sqlx::query("SELECT 1").execute(p).await.map(drop)?,
        }
        Ok(())
    }

    /// Waits for checked-out connections to return, then closes the pool. On SQLite this
    /// checkpoints the write-ahead log.
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }

    /// On SQLite, this process's turn to write (for a statement that writes outside a
    /// [`Tx`]); `None` on PostgreSQL.
    pub(crate) async fn write_turn(&self) -> Result<Option<WriteTurn>, StoreError> {
        match &self.write_gate {
            Some(gate) => Ok(Some(gate.enter().await?)),
            None => Ok(None),
        }
    }

    pub(crate) fn pool_sqlite(&self) -> Option<&SqlitePool> {
        match &self.pool {
            Pool::Sqlite(p) => Some(p),
            Pool::Postgres(_) => None,
        }
    }

    pub(crate) fn pool_postgres(&self) -> Option<&PgPool> {
        match &self.pool {
            Pool::Postgres(p) => Some(p),
            Pool::Sqlite(_) => None,
        }
    }
}

/// Starts a PostgreSQL transaction in a task of its own. sqlx 0.9.0's Postgres `begin` is not
/// cancel-safe (transact-rs/sqlx#4393): a future dropped while `BEGIN` is in flight (a client
/// that disconnects, a timeout) returns its connection to the pool inside an open transaction,
/// and the next borrower's statements silently run in it. In its own task the `BEGIN` always
/// completes; a transaction that nobody receives is dropped there, which queues its `ROLLBACK`.
async fn begin_pg(
    pool: &PgPool,
    statement: &'static str,
) -> Result<sqlx::Transaction<'static, Postgres>, StoreError> {
    let pool = pool.clone();
    tokio::spawn(async move { pool.begin_with(statement).await })
        .await
        .map_err(|e| StoreError::Invalid(format!("starting a transaction failed: {e}")))?
        .map_err(StoreError::from)
}

async fn connect_sqlite(options: &ConnectOptions) -> Result<Store, StoreError> {
    let parsed = SqliteConnectOptions::from_str(&options.url)
        .map_err(|_| StoreError::InvalidUrl("not a valid sqlite:// URL".to_owned()))?;
    let target = parsed.get_filename().display().to_string();
    let gate = WriteGate::new(options.busy_timeout);
    let opts = parsed
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(options.busy_timeout)
        // The store's checkpointer copies the log into the database, not the commits
        // (`checkpoint.rs`).
        .pragma("wal_autocheckpoint", "0");
    // A connection to a local file cannot go stale, so it is not pinged on every checkout
    // (a round trip to its thread each time).
    let pool = SqlitePoolOptions::new()
        .max_connections(options.max_connections.max(1))
        .test_before_acquire(false)
        // A transaction whose statement or COMMIT failed on a full disk (SQLITE_FULL) may be
        // rolled back by SQLite itself; the driver's own rollback then fails and leaves it
        // counting a transaction that no longer exists, and every later BEGIN on that
        // connection fails. Such a connection is closed instead of reused (found by the
        // full-disk test). The check costs nothing unless a transaction seems open: then a
        // ping waits for the rollback queued when it was dropped.
        .before_acquire(|conn, _| {
            Box::pin(async move {
                use sqlx::Connection as _;
                if conn.is_in_transaction() {
                    conn.ping().await?;
                }
                Ok(!conn.is_in_transaction())
            })
        })
        .acquire_timeout(options.connect_timeout)
        .connect_with(opts)
        .await
        .map_err(|e| StoreError::Connect {
            backend: Backend::Sqlite,
            target,
            reason: connect_reason(&e),
        })?;
    Ok(Store {
        audit_group: Some(crate::audit::GroupCommit::spawn(pool.clone(), gate.clone())),
        _checkpointer: Some(crate::checkpoint::Checkpointer::spawn(
            pool.clone(),
            gate.clone(),
        )),
        write_gate: Some(gate),
        pool: Pool::Sqlite(pool),
        audit_recorded: Arc::default(),
    })
}

async fn connect_postgres(options: &ConnectOptions) -> Result<Store, StoreError> {
    let parsed = PgConnectOptions::from_str(&options.url)
        .map_err(|_| StoreError::InvalidUrl("not a valid postgres:// URL".to_owned()))?;
    let target = format!("{}:{}", parsed.get_host(), parsed.get_port());
    let opts = parsed.application_name("warden");
    let pool = PgPoolOptions::new()
        .max_connections(options.max_connections.max(1))
        .acquire_timeout(options.connect_timeout)
        .connect_with(opts)
        .await
        .map_err(|e| StoreError::Connect {
            backend: Backend::Postgres,
            target,
            reason: connect_reason(&e),
        })?;
    Ok(Store {
        pool: Pool::Postgres(pool),
        audit_recorded: Arc::default(),
        audit_group: None,
        _checkpointer: None,
        write_gate: None,
    })
}

/// A short, credential-free reason for a failed connection.
fn connect_reason(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Io(io) => io.to_string(),
        // The TLS library's reason (an unknown issuer, a name the certificate does not
        // cover, a server without TLS) names the problem and holds no credential.
        sqlx::Error::Tls(e) => format!("TLS negotiation failed: {e}"),
        sqlx::Error::PoolTimedOut => "timed out waiting for the database".to_owned(),
        sqlx::Error::Database(db) => db.message().to_owned(),
        _ => "the database refused the connection".to_owned(),
    }
}

pub(crate) enum TxInner {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    /// A SQLite write transaction in which nothing has run yet: its first statement begins
    /// it ([`Tx::begun`]).
    SqliteNotBegun(NotBegun),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

/// Where a SQLite write transaction that has not begun will run.
pub(crate) struct NotBegun {
    pool: SqlitePool,
    group: Option<crate::audit::GroupCommit>,
    gate: Option<WriteGate>,
}

/// A database transaction. Dropped without [`Tx::commit`], it rolls back.
pub struct Tx {
    pub(crate) inner: TxInner,
    /// On SQLite, this transaction's turn at the write lock, held until it ends (declared
    /// after `inner`, so it is let go after the transaction).
    write_turn: Option<WriteTurn>,
    /// Whether an audit event was recorded (its commit wakes the chainer).
    pub(crate) recorded_audit: bool,
    /// On SQLite, audit events recorded in this transaction, written with its commit.
    pub(crate) deferred_audit: Vec<crate::audit::Sealed>,
    audit_recorded: Arc<Notify>,
}

impl fmt::Debug for Tx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.inner {
            TxInner::Sqlite(_) | TxInner::SqliteNotBegun(_) => "Tx(sqlite)",
            TxInner::Postgres(_) => "Tx(postgres)",
        })
    }
}

impl Tx {
    /// Which backend this transaction runs on.
    pub fn backend(&self) -> Backend {
        match self.inner {
            TxInner::Postgres(_) => Backend::Postgres,
            _ => Backend::Sqlite,
        }
    }

    /// Begins a SQLite write transaction that has not begun yet (`BEGIN IMMEDIATE`, which
    /// waits for the write lock). Every statement runs after this.
    pub(crate) async fn begun(&mut self) -> Result<(), StoreError> {
        if let TxInner::SqliteNotBegun(n) = &self.inner {
            let turn = match &n.gate {
                Some(gate) => Some(gate.enter().await?),
                None => None,
            };
            self.inner = TxInner::Sqlite(n.pool.begin_with("BEGIN IMMEDIATE").await?);
            self.write_turn = turn;
        }
        Ok(())
    }

    /// Makes the transaction's changes permanent.
    pub async fn commit(self) -> Result<(), StoreError> {
        match self.inner {
            TxInner::SqliteNotBegun(n) => {
                if !self.deferred_audit.is_empty() {
                    match n.group {
                        Some(group) => group.commit(self.deferred_audit).await?,
                        None => return Err(not_begun()),
                    }
                }
            }
            TxInner::Sqlite(mut t) => {
                if self.deferred_audit.is_empty() {
                    t.commit().await?;
                } else {
                    // Dropped on error: the transaction rolls back, events included.
                    crate::audit::write_and_commit(&mut t, &self.deferred_audit).await?;
                    t.commit().await?;
                }
            }
            TxInner::Postgres(t) => t.commit().await?,
        }
        if self.recorded_audit {
            self.audit_recorded.notify_one();
        }
        Ok(())
    }

    /// Discards the transaction's changes.
    pub async fn rollback(self) -> Result<(), StoreError> {
        match self.inner {
            TxInner::Sqlite(t) => t.rollback().await?,
            TxInner::SqliteNotBegun(_) => {}
            TxInner::Postgres(t) => t.rollback().await?,
        }
        Ok(())
    }
}

/// The error for a SQLite transaction reached before [`Tx::begun`] (a bug, never expected).
pub(crate) fn not_begun() -> StoreError {
    StoreError::Invalid("a SQLite transaction was used before it began".to_owned())
}

/// Runs one query expression against whichever backend a [`Tx`] holds. The expression is
/// written once and type-checked for both backends, so query text cannot drift between them.
macro_rules! on_tx {
    ($tx:expr, |$conn:ident| $body:expr) => {{
        $tx.begun().await?;
        match &mut $tx.inner {
            $crate::db::TxInner::Sqlite(t) => {
                let $conn = &mut **t;
                $body
            }
            $crate::db::TxInner::SqliteNotBegun(_) => return Err($crate::db::not_begun().into()),
            $crate::db::TxInner::Postgres(t) => {
                let $conn = &mut **t;
                $body
            }
        }
    }};
}
pub(crate) use on_tx;

/// A column list (`"id, name"`) with each column prefixed by a table alias (`"b.id, b.name"`),
/// for joins over a table's usual columns.
pub(crate) fn prefixed(columns: &str, alias: &str) -> String {
    columns
        .split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The file a `sqlite://` URL names, if it names one (not `:memory:`).
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
}
