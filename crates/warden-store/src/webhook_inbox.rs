//! The webhook inbox: deliveries the request path answered but the intake worker has not
//! processed yet. Appended in one multi-row insert per group commit, taken in large batches
//! (on PostgreSQL `FOR UPDATE SKIP LOCKED`, so the workers of several nodes never take the
//! same delivery; SQLite has one writer) and deleted in the transaction that processed them.

use uuid::Uuid;

use crate::StoreError;
use crate::automations::JobsTx;
use crate::db::on_tx;

/// Rows in one insert: keeps a multi-row insert within SQLite's bound on parameters.
const ROWS_PER_INSERT: usize = 1000;
/// Body bytes in one insert, so a run of large bodies is not one huge statement.
const BYTES_PER_INSERT: usize = 8 << 20;

/// A delivery as the request path received it.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    /// The source's workspace.
    pub workspace_id: Uuid,
    /// The source its token named when it arrived.
    pub source_id: Uuid,
    /// The hash of that token (a token rotated since makes the delivery unknown).
    pub token_hash: &'a [u8],
    /// The headers kept for signature checks, as JSON (`[[name, value], …]`).
    pub headers: &'a str,
    /// The raw body, as signed.
    pub body: &'a [u8],
    /// When it arrived (µs).
    pub received_at: i64,
}

/// A delivery taken from the inbox.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InboxRow {
    /// Its place in the inbox.
    pub id: i64,
    /// The source its token named.
    pub source_id: Uuid,
    /// The hash of that token.
    pub token_hash: Vec<u8>,
    /// Headers, as JSON (`[[name, value], …]`).
    pub headers: String,
    /// The raw body.
    pub body: Vec<u8>,
    /// When it arrived (µs).
    pub received_at: i64,
}

impl JobsTx {
    /// Appends received deliveries, in order.
    pub async fn inbox_append(&mut self, deliveries: &[Received<'_>]) -> Result<(), StoreError> {
        let mut rest = deliveries;
        while !rest.is_empty() {
            let mut n = 0;
            let mut bytes = 0;
            while n < rest.len() && n < ROWS_PER_INSERT && (n == 0 || bytes < BYTES_PER_INSERT) {
                bytes += rest[n].body.len();
                n += 1;
            }
            let (chunk, later) = rest.split_at(n);
            rest = later;
            on_tx!(self.0, |c| {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO webhook_inbox (workspace_id, source_id, token_hash, headers, body, size, \
                     received_at) ",
                );
                q.push_values(chunk, |mut b, d| {
                    b.push_bind(d.workspace_id)
                        .push_bind(d.source_id)
                        .push_bind(d.token_hash)
                        .push_bind(d.headers)
                        .push_bind(d.body)
                        .push_bind(i32::try_from(d.body.len()).unwrap_or(i32::MAX))
                        .push_bind(d.received_at);
                });
                q.build().execute(c).await.map(drop)
            })?;
        }
        Ok(())
    }

    /// Takes the oldest deliveries no other transaction holds: at most `rows`, and no more
    /// body bytes than `bytes` (but at least one). They stay held until this transaction
    /// ends; [`JobsTx::inbox_remove`] them in it once processed.
    pub async fn inbox_take(&mut self, rows: i64, bytes: i64) -> Result<Vec<InboxRow>, StoreError> {
        let lock = match self.0.backend() {
            crate::Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            crate::Backend::Sqlite => "",
        };
        let sql = format!("SELECT id, size FROM webhook_inbox ORDER BY id LIMIT $1{lock}");
        let sizes = on_tx!(self.0, |c| sqlx::query_as::<_, (i64, i32)>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(rows)
        .fetch_all(c)
        .await)?;
        let mut total = 0i64;
        let ids: Vec<i64> = sizes
            .iter()
            .take_while(|(_, size)| {
                let first = total == 0;
                total += i64::from(*size).max(1);
                first || total <= bytes
            })
            .map(|(id, _)| *id)
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(on_tx!(self.0, |c| {
            let mut q = sqlx::QueryBuilder::new(
                "SELECT id, source_id, token_hash, headers, body, received_at FROM webhook_inbox \
                 WHERE id IN (",
            );
            let mut list = q.separated(", ");
            for id in &ids {
                list.push_bind(*id);
            }
            q.push(") ORDER BY id");
            q.build_query_as::<InboxRow>().fetch_all(c).await
        })?)
    }

    /// Removes deliveries taken by [`JobsTx::inbox_take`] in this transaction.
    pub async fn inbox_remove(&mut self, taken: &[InboxRow]) -> Result<(), StoreError> {
        if taken.is_empty() {
            return Ok(());
        }
        on_tx!(self.0, |c| {
            let mut q = sqlx::QueryBuilder::new("DELETE FROM webhook_inbox WHERE id IN (");
            let mut list = q.separated(", ");
            for row in taken {
                list.push_bind(row.id);
            }
            q.push(")");
            q.build().execute(c).await.map(drop)
        })?;
        Ok(())
    }

    /// Deliveries waiting in the inbox, per source.
    pub async fn inbox_waiting(&mut self) -> Result<Vec<(Uuid, i64)>, StoreError> {
        Ok(on_tx!(self.0, |c| sqlx::query_as::<_, (Uuid, i64)>(
            "SELECT source_id, COUNT(*) FROM webhook_inbox GROUP BY source_id"
        )
        .fetch_all(c)
        .await)?)
    }
}
