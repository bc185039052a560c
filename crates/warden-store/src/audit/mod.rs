//! The audit trail in storage: events written in the caller's transaction, then chained by
//! an HMAC-SHA256 over each event and the hash before it, and verified by walking the chain.
//!
//! Chaining is off the commit path. [`Tx::record`] puts the event in `audit_pending`, sealed
//! with an HMAC of its content, so it commits (or rolls back) with the change it describes
//! and no writer waits on another's commit. [`Store::chain_audit`] then moves committed
//! events into `audit_events` in order, giving each its sequence number and chain hash; one
//! chainer runs at a time, on any number of nodes, because it holds the `audit_head` row (a
//! row lock on PostgreSQL, the write lock on SQLite) until its batch commits. A pending event
//! whose seal does not match (edited, or inserted by someone without the key) is never
//! chained: the chainer leaves it where it is for the operator, chains the events around it and
//! reports it.
//!
//! The chain key is a server secret sealed by the keyring, so someone who can write to the
//! database but does not hold the encryption key can neither forge a consistent chain nor
//! slip an event into it. This module never updates an event and deletes only what the
//! database allows (chained pending rows; purged events behind a checkpoint).

use warden_domain::audit::NewEvent;

use crate::db::on_tx;
use crate::{Store, StoreError, Tx};

mod keys;
mod query;
mod verify;
pub(crate) use keys::server_secret;
pub use keys::{ChainKey, Checkpoint, CheckpointSigner};
pub use query::{Filter, newest};
pub use verify::{Anchor, Tamper, Verification};

/// Length of every chain hash.
pub const HASH_LEN: usize = 32;
const USER_AGENT_MAX: usize = 256;

/// One stored event, exactly as hashed.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Row {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// The event's id (UUIDv7).
    pub event_id: String,
    /// Unix time in microseconds.
    pub occurred_at_us: i64,
    /// `user`, `host`, `api_key` or `system`.
    pub actor_kind: String,
    /// The actor's id.
    pub actor_id: Option<String>,
    /// The workspace, when scoped.
    pub workspace_id: Option<String>,
    /// Dotted action name.
    pub action: String,
    /// Kind of resource.
    pub resource_type: String,
    /// Resource id.
    pub resource_id: Option<String>,
    /// `success`, `denied` or `failed`.
    pub outcome: String,
    /// Client address.
    pub client_ip: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// Request id.
    pub request_id: Option<String>,
    /// Duration in milliseconds.
    pub duration_ms: i64,
    /// Redacted input summary (JSON).
    pub summary: String,
    /// Hash of the event before (zeros for the first).
    pub prev_hash: Vec<u8>,
    /// This event's hash.
    pub hash: Vec<u8>,
}

impl Tx {
    /// Records `event` in this transaction: it commits with the change it describes or not at
    /// all, and if it cannot be written the transaction fails. The event is sealed with the
    /// chain key and waits in `audit_pending` until the chainer gives it its place in the
    /// chain (woken when this transaction commits). Returns the event's id.
    pub async fn record(&mut self, key: &ChainKey, event: &NewEvent) -> Result<String, StoreError> {
        let row = Row::from_event(event);
        let seal = key.seal(&row);
        let event_id = row.event_id.clone();
        self.recorded_audit = true;
        match &mut self.inner {
            // Written with the commit, in the same round trip (see [`write_and_commit`]).
            crate::db::TxInner::Sqlite(_) | crate::db::TxInner::SqliteNotBegun(_) => {
                self.deferred_audit.push(Sealed { row, seal });
            }
            crate::db::TxInner::Postgres(t) => {
                bind_sealed(sqlx::query(PENDING_INSERT_ONE), &Sealed { row, seal })
                    .execute(&mut **t)
                    .await?;
            }
        }
        Ok(event_id)
    }
}

/// An event sealed for `audit_pending`.
pub(crate) struct Sealed {
    row: Row,
    seal: [u8; HASH_LEN],
}

/// Inserts one sealed event (see [`bind_sealed`]).
const PENDING_INSERT_ONE: &str = "INSERT INTO audit_pending (event_id, occurred_at_us, \
    actor_kind, actor_id, workspace_id, action, resource_type, resource_id, outcome, \
    client_ip, user_agent, request_id, duration_ms, summary, seal) VALUES ($1, $2, $3, $4, \
    $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";

/// Binds `e` to [`PENDING_INSERT_ONE`] on either backend.
fn bind_sealed<'q, DB>(
    q: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>,
    e: &Sealed,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>
where
    DB: sqlx::Database,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Vec<u8>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let r = &e.row;
    q.bind(r.event_id.clone())
        .bind(r.occurred_at_us)
        .bind(r.actor_kind.clone())
        .bind(r.actor_id.clone())
        .bind(r.workspace_id.clone())
        .bind(r.action.clone())
        .bind(r.resource_type.clone())
        .bind(r.resource_id.clone())
        .bind(r.outcome.clone())
        .bind(r.client_ip.clone())
        .bind(r.user_agent.clone())
        .bind(r.request_id.clone())
        .bind(r.duration_ms)
        .bind(r.summary.clone())
        .bind(e.seal.to_vec())
}

/// On SQLite, inserts the events of the JSON array bound as `$1` (see [`pending_json`]).
/// They travel as one value: SQLite looks up each bound parameter by a linear scan, so a
/// statement with many parameters costs quadratic time.
const SQLITE_PENDING_FROM_JSON: &str = "INSERT INTO audit_pending (event_id, occurred_at_us, \
    actor_kind, actor_id, workspace_id, action, resource_type, resource_id, outcome, \
    client_ip, user_agent, request_id, duration_ms, summary, seal) SELECT value->>0, \
    value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, value->>7, value->>8, \
    value->>9, value->>10, value->>11, value->>12, value->>13, unhex(value->>14) \
    FROM json_each($1) ORDER BY key";

/// Sealed events as the JSON array [`SQLITE_PENDING_FROM_JSON`] reads.
fn pending_json<'a>(events: impl Iterator<Item = &'a Sealed>) -> String {
    let batch: Vec<serde_json::Value> = events
        .map(|e| {
            let r = &e.row;
            serde_json::json!([
                r.event_id,
                r.occurred_at_us,
                r.actor_kind,
                r.actor_id,
                r.workspace_id,
                r.action,
                r.resource_type,
                r.resource_id,
                r.outcome,
                r.client_ip,
                r.user_agent,
                r.request_id,
                r.duration_ms,
                r.summary,
                hex::encode(e.seal),
            ])
        })
        .collect();
    serde_json::Value::Array(batch).to_string()
}

/// Writes a SQLite transaction's audit events and commits it in one round trip to the
/// connection's thread: `INSERT …; COMMIT; BEGIN`. The write lock is released as soon as the
/// events are in, without another wake-up of the calling task in between (the round trips
/// made while holding SQLite's single write lock are what limit throughput). If the insert or
/// the commit fails, the statements after it do not run and the transaction is still open
/// for the caller to roll back. The empty `BEGIN` that follows keeps sqlx's own account of
/// the transaction true: the caller's `commit` then ends it, with nothing to write.
pub(crate) async fn write_and_commit(
    t: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    events: &[Sealed],
) -> Result<(), StoreError> {
    // One event (the usual case) binds its values directly, which measured faster for a
    // single row than decoding JSON inside the write lock.
    if let [one] = events {
        let sql = sql(&SQLITE_COMMIT_ONE_SQL, || {
            format!("{PENDING_INSERT_ONE}; COMMIT; BEGIN")
        });
        bind_sealed(sqlx::query(sql), one).execute(&mut **t).await?;
    } else {
        let sql = sql(&SQLITE_COMMIT_SQL, || {
            format!("{SQLITE_PENDING_FROM_JSON}; COMMIT; BEGIN")
        });
        sqlx::query(sql)
            .bind(pending_json(events.iter()))
            .execute(&mut **t)
            .await?;
    }
    Ok(())
}

static SQLITE_COMMIT_ONE_SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
static SQLITE_COMMIT_SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Events per group commit at most.
const GROUP_MAX: usize = 1_000;

type GroupItem = (
    Vec<Sealed>,
    tokio::sync::oneshot::Sender<Result<(), String>>,
);

/// Group commit, on SQLite, of transactions that record audit events and do nothing else (a
/// denied action, a failed sign-in: the kind that arrives in floods). One task takes every
/// such commit waiting and writes them as one transaction, `BEGIN IMMEDIATE; INSERT …;
/// COMMIT`, in one round trip to a connection's thread; then each caller learns the outcome.
/// Each caller's events are all written or the caller gets an error, as with a commit of its
/// own (a failed group fails all of its callers). Every other transaction commits alone.
#[derive(Clone)]
pub(crate) struct GroupCommit {
    queue: tokio::sync::mpsc::Sender<GroupItem>,
}

impl GroupCommit {
    /// Starts the group's task on `pool`; it ends when the last store clone is dropped.
    pub(crate) fn spawn(pool: sqlx::SqlitePool, gate: crate::db::WriteGate) -> Self {
        let (queue, mut rx) = tokio::sync::mpsc::channel::<GroupItem>(4_096);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut count = first.0.len();
                let mut group = vec![first];
                while count < GROUP_MAX {
                    match rx.try_recv() {
                        Ok(item) => {
                            count += item.0.len();
                            group.push(item);
                        }
                        Err(_) => break,
                    }
                }
                let events: Vec<&Sealed> = group.iter().flat_map(|(e, _)| e).collect();
                let outcome = match gate.enter().await {
                    Ok(_turn) => write_group(&pool, &events).await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                for (_, reply) in group {
                    let _ = reply.send(outcome.clone());
                }
            }
        });
        Self { queue }
    }

    /// Commits `events` (with whichever others are waiting) and returns once they are in.
    pub(crate) async fn commit(&self, events: Vec<Sealed>) -> Result<(), StoreError> {
        let (reply, outcome) = tokio::sync::oneshot::channel();
        let gone = || StoreError::Invalid("the audit writer has stopped".to_owned());
        self.queue.send((events, reply)).await.map_err(|_| gone())?;
        outcome
            .await
            .map_err(|_| gone())?
            .map_err(|e| StoreError::Invalid(format!("recording audit events failed: {e}")))
    }
}

/// One group commit. On any error the connection is closed rather than reused (closing rolls
/// back whatever was open).
async fn write_group(pool: &sqlx::SqlitePool, events: &[&Sealed]) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    let done = sqlx::query(sql(&SQLITE_GROUP_SQL, || {
        format!("BEGIN IMMEDIATE; {SQLITE_PENDING_FROM_JSON}; COMMIT")
    }))
    .bind(pending_json(events.iter().copied()))
    .execute(&mut *conn)
    .await;
    if let Err(e) = done {
        let _ = sqlx::Connection::close(conn.detach()).await;
        return Err(StoreError::from(e));
    }
    Ok(())
}

static SQLITE_GROUP_SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

impl Row {
    /// An event as it will be stored, before it has a place in the chain.
    fn from_event(event: &NewEvent) -> Self {
        let micros = event.at.unix_timestamp_nanos() / 1_000;
        Self {
            seq: 0,
            event_id: uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
                uuid::NoContext,
                u64::try_from(event.at.unix_timestamp()).unwrap_or(0),
                event.at.nanosecond(),
            ))
            .to_string(),
            occurred_at_us: i64::try_from(micros).unwrap_or(i64::MAX),
            actor_kind: event.actor.kind.as_str().to_owned(),
            actor_id: event.actor.id.clone(),
            workspace_id: event.workspace_id.clone(),
            action: event.action.as_str().to_owned(),
            resource_type: event.resource_type.clone(),
            resource_id: event.resource_id.clone(),
            outcome: event.outcome.as_str().to_owned(),
            client_ip: event.client_ip.map(|ip| ip.to_string()),
            user_agent: event
                .user_agent
                .as_ref()
                .map(|ua| ua.chars().take(USER_AGENT_MAX).collect()),
            request_id: event.request_id.clone(),
            duration_ms: event.duration_ms,
            summary: event.summary.to_string(),
            prev_hash: Vec::new(),
            hash: Vec::new(),
        }
    }
}

/// Events moved into the chain per transaction.
const CHAIN_BATCH: usize = 500;

/// What one run of the chainer did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chained {
    /// Events given their place in the chain.
    pub linked: u64,
    /// The first event waiting to be chained whose seal does not match (edited, or inserted
    /// without the key): the sequence number it would take next and its event id. It is never
    /// chained (and cannot be deleted by the application); the events around it are.
    pub unsealed: Option<(i64, String)>,
}

/// An event waiting to be chained, as stored.
struct PendingRow {
    id: i64,
    row: Row,
    seal: Vec<u8>,
}

impl Store {
    /// Gives every committed event that waits to be chained its sequence number and chain
    /// hash, in order, a batch per transaction. One chainer runs at a time across all nodes
    /// (each batch holds the `audit_head` row until it commits), so when this returns, every
    /// event committed before the call is in the chain, except those that fail their seal.
    pub async fn chain_audit(&self, key: &ChainKey) -> Result<Chained, StoreError> {
        let mut done = Chained::default();
        let mut unsealed = None;
        let mut after = 0;
        loop {
            let mut tx = self.begin().await?;
            // The chain's lock on PostgreSQL (SQLite's write lock is already held), and the
            // head as the last batch left it.
            let (mut seq, mut prev) = on_tx!(tx, |c| sqlx::query_as::<_, (i64, Vec<u8>)>(
                "UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash"
            )
            .fetch_one(c)
            .await)?;
            let pending = pending_after(&mut tx, after).await?;
            let full = pending.len() == CHAIN_BATCH;
            after = pending.last().map_or(after, |p| p.id);
            let mut linked: Vec<Row> = Vec::with_capacity(pending.len());
            let mut ids: Vec<i64> = Vec::with_capacity(pending.len());
            for p in pending {
                if key.seal(&p.row).as_slice() != p.seal.as_slice() {
                    // Skipped, every time: it stays where it is for the operator, and the
                    // trail is reported broken.
                    unsealed = unsealed.or(Some(p.row.event_id));
                    continue;
                }
                let mut row = p.row;
                seq += 1;
                row.seq = seq;
                row.prev_hash = prev;
                row.hash = key.hash(&row).to_vec();
                prev = row.hash.clone();
                ids.push(p.id);
                linked.push(row);
            }
            if linked.is_empty() {
                tx.rollback().await?;
                if full {
                    continue;
                }
                done.unsealed = unsealed.map(|id| (seq + 1, id));
                return Ok(done);
            }
            let inserted = insert_chained(&mut tx, &ids, &linked).await?;
            let removed = match &mut tx.inner {
                crate::db::TxInner::SqliteNotBegun(_) => return Err(crate::db::not_begun()),
                // Exactly the ones chained: an unsealed event may sit between them, and on
                // PostgreSQL another writer's event may have committed among them since the
                // batch was read.
                crate::db::TxInner::Sqlite(t) => sqlx::query(
                    "DELETE FROM audit_pending WHERE id IN (SELECT value FROM json_each($1))",
                )
                .bind(serde_json::to_string(&ids).unwrap_or_default())
                .execute(&mut **t)
                .await?
                .rows_affected(),
                crate::db::TxInner::Postgres(t) => {
                    sqlx::query("DELETE FROM audit_pending WHERE id = ANY($1)")
                        .bind(&ids)
                        .execute(&mut **t)
                        .await?
                        .rows_affected()
                }
            };
            let expected = linked.len() as u64;
            if inserted != expected || removed != expected {
                // Cannot happen while the lock is held and pending rows cannot change; if it
                // does, nothing of this batch is kept.
                return Err(StoreError::Invalid(format!(
                    "audit chaining moved {inserted} and removed {removed} of {expected} events"
                )));
            }
            on_tx!(tx, |c| sqlx::query(
                "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1"
            )
            .bind(seq)
            .bind(&prev)
            .execute(c)
            .await
            .map(drop))?;
            tx.commit().await?;
            done.linked += linked.len() as u64;
            if !full {
                done.unsealed = unsealed.map(|id| (seq + 1, id));
                return Ok(done);
            }
        }
    }

    /// How many events wait to be chained, and the first of them whose seal does not match
    /// (its event id), without changing anything.
    pub async fn audit_pending(&self, key: &ChainKey) -> Result<(u64, Option<String>), StoreError> {
        let mut tx = self.begin_read().await?;
        let mut count = 0u64;
        let mut unsealed = None;
        let mut after = 0i64;
        loop {
            let batch = pending_after(&mut tx, after).await?;
            let Some(last) = batch.last().map(|p| p.id) else {
                break;
            };
            after = last;
            for p in batch {
                count += 1;
                if unsealed.is_none() && key.seal(&p.row).as_slice() != p.seal.as_slice() {
                    unsealed = Some(p.row.event_id);
                }
            }
        }
        tx.commit().await?;
        Ok((count, unsealed))
    }
}

/// Events waiting to be chained with ids after `after`, oldest first, up to a batch. On
/// SQLite the batch crosses from the connection's thread as one JSON value (see
/// [`sqlite_batch`]).
async fn pending_after(tx: &mut Tx, after: i64) -> Result<Vec<PendingRow>, StoreError> {
    const COLS: &str = "id, event_id, occurred_at_us, actor_kind, actor_id, workspace_id, \
        action, resource_type, resource_id, outcome, client_ip, user_agent, request_id, \
        duration_ms, summary, seal";
    // An event whose id is already in `audit_events` cannot be a chained one (those leave
    // `audit_pending` in the same transaction): someone planted a row with its id there. It is
    // left waiting rather than failing every batch; the planted row breaks the chain's walk.
    const FREE: &str =
        "AND NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.event_id = p.event_id)";
    let limit = i64::try_from(CHAIN_BATCH).unwrap_or(i64::MAX);
    tx.begun().await?;
    let rows: Vec<JsonRow> = match &mut tx.inner {
        crate::db::TxInner::SqliteNotBegun(_) => return Err(crate::db::not_begun()),
        crate::db::TxInner::Sqlite(t) => {
            let text = sqlx::query_scalar::<_, String>(sql(&SQLITE_PENDING_SQL, || {
                format!(
                    "SELECT json_group_array(json_array(id, event_id, occurred_at_us, \
                     actor_kind, actor_id, workspace_id, action, resource_type, resource_id, \
                     outcome, client_ip, user_agent, request_id, duration_ms, summary, '', \
                     hex(seal))) FROM (SELECT {COLS} FROM audit_pending p WHERE id > $1 {FREE} \
                     ORDER BY id LIMIT $2)"
                )
            }))
            .bind(after)
            .bind(limit)
            .fetch_one(&mut **t)
            .await?;
            serde_json::from_str(&text)
                .map_err(|e| StoreError::Invalid(format!("audit batch did not decode: {e}")))?
        }
        crate::db::TxInner::Postgres(t) => {
            sqlx::query_as::<_, PgPending>(sql(&PG_PENDING_SQL, || {
                format!(
                    "SELECT {COLS} FROM audit_pending p WHERE id > $1 {FREE} ORDER BY id \
                     LIMIT $2"
                )
            }))
            .bind(after)
            .bind(limit)
            .fetch_all(&mut **t)
            .await?
            .into_iter()
            .map(|p| {
                JsonRow(
                    p.id,
                    p.event_id,
                    p.occurred_at_us,
                    p.actor_kind,
                    p.actor_id,
                    p.workspace_id,
                    p.action,
                    p.resource_type,
                    p.resource_id,
                    p.outcome,
                    p.client_ip,
                    p.user_agent,
                    p.request_id,
                    p.duration_ms,
                    p.summary,
                    String::new(),
                    hex::encode(p.seal),
                )
            })
            .collect()
        }
    };
    let mut out = rows
        .into_iter()
        .map(|j| {
            let id = j.0;
            let row = j.into_row()?;
            let seal = row.hash.clone();
            Ok(PendingRow {
                id,
                row: Row {
                    seq: 0,
                    hash: Vec::new(),
                    ..row
                },
                seal,
            })
        })
        .collect::<Result<Vec<PendingRow>, StoreError>>()?;
    out.sort_unstable_by_key(|p| p.id);
    Ok(out)
}

#[derive(sqlx::FromRow)]
struct PgPending {
    id: i64,
    event_id: String,
    occurred_at_us: i64,
    actor_kind: String,
    actor_id: Option<String>,
    workspace_id: Option<String>,
    action: String,
    resource_type: String,
    resource_id: Option<String>,
    outcome: String,
    client_ip: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
    duration_ms: i64,
    summary: String,
    seal: Vec<u8>,
}

static SQLITE_PENDING_SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
static PG_PENDING_SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Copies chained events from `audit_pending` into `audit_events` with their place in the
/// chain: only (pending id, sequence number, previous hash, hash) travel, in one statement.
/// The content copied is the content just hashed: pending rows cannot be updated (trigger),
/// and the batch holds the chain's lock.
async fn insert_chained(tx: &mut Tx, ids: &[i64], rows: &[Row]) -> Result<u64, StoreError> {
    const TARGET: &str = "INSERT INTO audit_events (seq, event_id, occurred_at_us, actor_kind, \
        actor_id, workspace_id, action, resource_type, resource_id, outcome, client_ip, \
        user_agent, request_id, duration_ms, summary, prev_hash, hash) SELECT";
    const FROM_PENDING: &str = "p.event_id, p.occurred_at_us, p.actor_kind, p.actor_id, \
        p.workspace_id, p.action, p.resource_type, p.resource_id, p.outcome, p.client_ip, \
        p.user_agent, p.request_id, p.duration_ms, p.summary";
    tx.begun().await?;
    match &mut tx.inner {
        crate::db::TxInner::SqliteNotBegun(_) => Err(crate::db::not_begun()),
        crate::db::TxInner::Sqlite(t) => {
            // One JSON value: SQLite looks up each bound parameter by a linear scan, so a
            // statement with thousands of them costs quadratic time.
            let links: Vec<serde_json::Value> = ids
                .iter()
                .zip(rows)
                .map(|(id, r)| {
                    serde_json::json!([id, r.seq, hex::encode(&r.prev_hash), hex::encode(&r.hash)])
                })
                .collect();
            let links = serde_json::Value::Array(links).to_string();
            sqlx::query(sql(&SQLITE_INSERT_SQL, || {
                format!(
                    "{TARGET} j.value->>1, {FROM_PENDING}, unhex(j.value->>2), \
                     unhex(j.value->>3) FROM json_each($1) j JOIN audit_pending p \
                     ON p.id = j.value->>0 ORDER BY j.key"
                )
            }))
            .bind(links)
            .execute(&mut **t)
            .await
            .map(|r| r.rows_affected())
            .map_err(StoreError::from)
        }
        crate::db::TxInner::Postgres(t) => {
            let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
            let prevs: Vec<&[u8]> = rows.iter().map(|r| r.prev_hash.as_slice()).collect();
            let hashes: Vec<&[u8]> = rows.iter().map(|r| r.hash.as_slice()).collect();
            sqlx::query(sql(&PG_INSERT_SQL, || {
                format!(
                    "{TARGET} u.seq, {FROM_PENDING}, u.prev_hash, u.hash \
                     FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[]) \
                     AS u(id, seq, prev_hash, hash) JOIN audit_pending p ON p.id = u.id \
                     ORDER BY u.seq"
                )
            }))
            .bind(ids)
            .bind(&seqs)
            .bind(&prevs)
            .bind(&hashes)
            .execute(&mut **t)
            .await
            .map(|r| r.rows_affected())
            .map_err(StoreError::from)
        }
    }
}

static PG_INSERT_SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
static SQLITE_INSERT_SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// A query text built once.
fn sql(cell: &'static std::sync::OnceLock<String>, build: impl FnOnce() -> String) -> &'static str {
    cell.get_or_init(build)
}

/// One event as SQLite's `json_array` writes it, in `query::COLUMNS` order, hashes in hex.
#[derive(serde::Deserialize)]
pub(super) struct JsonRow(
    i64,
    String,
    i64,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    String,
    String,
    String,
);

impl JsonRow {
    fn into_row(self) -> Result<Row, StoreError> {
        let unhex = |h: String| {
            hex::decode(h).map_err(|_| StoreError::Invalid("audit hash is not hex".to_owned()))
        };
        let j = self;
        Ok(Row {
            seq: j.0,
            event_id: j.1,
            occurred_at_us: j.2,
            actor_kind: j.3,
            actor_id: j.4,
            workspace_id: j.5,
            action: j.6,
            resource_type: j.7,
            resource_id: j.8,
            outcome: j.9,
            client_ip: j.10,
            user_agent: j.11,
            request_id: j.12,
            duration_ms: j.13,
            summary: j.14,
            prev_hash: unhex(j.15)?,
            hash: unhex(j.16)?,
        })
    }
}
