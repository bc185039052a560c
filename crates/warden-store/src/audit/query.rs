//! Reading the audit trail: pages newest first with filters, the streamed export, counts,
//! and the batched reads the chain walk shares (SQLite reads in keyset batches).

use futures_util::TryStreamExt;

use super::{ChainKey, JsonRow, Row, sql};
use crate::db::on_tx;
use crate::{Store, StoreError};

/// The newest `limit` events, unfiltered, after chaining what waits.
pub async fn newest(store: &Store, key: &ChainKey, limit: i64) -> Result<Vec<Row>, StoreError> {
    store.chain_audit(key).await?;
    store.audit_page(&Filter::default(), None, limit).await
}

/// Which events a query or export covers. Every field is optional; all given ones must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// `user`, `host`, `api_key` or `system`.
    pub actor_kind: Option<String>,
    /// The actor's id.
    pub actor_id: Option<String>,
    /// Actions starting with this (e.g. `user.` or `host.key`).
    pub action_prefix: Option<String>,
    /// Kind of resource.
    pub resource_type: Option<String>,
    /// Resource id.
    pub resource_id: Option<String>,
    /// Workspace.
    pub workspace_id: Option<String>,
    /// `success`, `denied` or `failed`.
    pub outcome: Option<String>,
    /// At or after this time (unix microseconds).
    pub since_us: Option<i64>,
    /// Before this time (unix microseconds).
    pub until_us: Option<i64>,
}

pub(super) const COLUMNS: &str = "seq, event_id, occurred_at_us, actor_kind, actor_id, workspace_id, \
    action, resource_type, resource_id, outcome, client_ip, user_agent, request_id, duration_ms, \
    summary, prev_hash, hash";

/// One condition for every filter combination: absent filters are bound as NULL.
const MATCHING: &str = "FROM audit_events \
    WHERE ($1 IS NULL OR actor_kind = $1) AND ($2 IS NULL OR actor_id = $2) \
    AND ($3 IS NULL OR substr(action, 1, length($3)) = $3) \
    AND ($4 IS NULL OR resource_type = $4) AND ($5 IS NULL OR resource_id = $5) \
    AND ($6 IS NULL OR workspace_id = $6) AND ($7 IS NULL OR outcome = $7) \
    AND ($8 IS NULL OR occurred_at_us >= $8) AND ($9 IS NULL OR occurred_at_us < $9) \
    AND ($10 IS NULL OR seq < $10)";

/// A later page: the same filters, and the page's start as a plain range on `seq` (an
/// `IS NULL OR` there keeps SQLite from walking the primary key from it), so a deep page
/// costs what the first does.
fn matching_before() -> String {
    MATCHING.replace("($10 IS NULL OR seq < $10)", "seq < $10")
}

static PAGE_SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
static PAGE_BEFORE_SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
static EXPORT_SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
static COUNT_SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
pub(super) static CHAIN_SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
pub(super) static SQLITE_CHAIN_SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
static SQLITE_EXPORT_SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Events per batch on SQLite's long reads (verification, export).
const SQLITE_BATCH: i64 = 2_000;
pub(super) const CHAIN_BATCH_FROM: &str = "FROM audit_events WHERE seq > $1";
const EXPORT_BATCH_FROM: &str = "FROM audit_events \
    WHERE ($2 IS NULL OR actor_kind = $2) AND ($3 IS NULL OR actor_id = $3) \
    AND ($4 IS NULL OR substr(action, 1, length($4)) = $4) \
    AND ($5 IS NULL OR resource_type = $5) AND ($6 IS NULL OR resource_id = $6) \
    AND ($7 IS NULL OR workspace_id = $7) AND ($8 IS NULL OR outcome = $8) \
    AND ($9 IS NULL OR occurred_at_us >= $9) AND ($10 IS NULL OR occurred_at_us < $10) \
    AND seq > $1";

/// The next batch of events after `after`, in sequence order, on SQLite.
///
/// sqlx hands every row of a SQLite result from the connection's thread to the async side
/// one at a time, with a thread wake-up each, which capped long reads near 90,000 rows/s.
/// Here SQLite packs a batch of rows into one JSON value (`json_group_array`), which crosses
/// once and is decoded here. Values are exact: text as text, integers as integers, hashes as
/// hex; rows are sorted again after decoding rather than trusting aggregate order.
pub(super) async fn sqlite_batch(
    conn: &mut sqlx::SqliteConnection,
    cell: &'static std::sync::OnceLock<String>,
    from: &'static str,
    filter: Option<&Filter>,
    after: i64,
) -> Result<Vec<Row>, StoreError> {
    let sql = sql(cell, || {
        let limit = if filter.is_some() { "$11" } else { "$2" };
        format!(
            "SELECT json_group_array(json_array(seq, event_id, occurred_at_us, actor_kind, \
             actor_id, workspace_id, action, resource_type, resource_id, outcome, client_ip, \
             user_agent, request_id, duration_ms, summary, hex(prev_hash), hex(hash))) \
             FROM (SELECT {COLUMNS} {from} ORDER BY seq LIMIT {limit})"
        )
    });
    let query = sqlx::query_scalar::<_, String>(sql).bind(after);
    let text = match filter {
        None => query.bind(SQLITE_BATCH).fetch_one(&mut *conn).await?,
        Some(f) => {
            query
                .bind(f.actor_kind.clone())
                .bind(f.actor_id.clone())
                .bind(f.action_prefix.clone())
                .bind(f.resource_type.clone())
                .bind(f.resource_id.clone())
                .bind(f.workspace_id.clone())
                .bind(f.outcome.clone())
                .bind(f.since_us)
                .bind(f.until_us)
                .bind(SQLITE_BATCH)
                .fetch_one(&mut *conn)
                .await?
        }
    };
    let parsed: Vec<JsonRow> = serde_json::from_str(&text)
        .map_err(|e| StoreError::Invalid(format!("audit batch did not decode: {e}")))?;
    let mut rows = parsed
        .into_iter()
        .map(JsonRow::into_row)
        .collect::<Result<Vec<Row>, StoreError>>()?;
    rows.sort_unstable_by_key(|r| r.seq);
    Ok(rows)
}

macro_rules! bind_filter {
    ($query:expr, $f:expr, $before:expr) => {
        $query
            .bind($f.actor_kind.clone())
            .bind($f.actor_id.clone())
            .bind($f.action_prefix.clone())
            .bind($f.resource_type.clone())
            .bind($f.resource_id.clone())
            .bind($f.workspace_id.clone())
            .bind($f.outcome.clone())
            .bind($f.since_us)
            .bind($f.until_us)
            .bind($before)
    };
}

impl Store {
    /// One page of events matching `filter`, newest first, older than `before` (a sequence
    /// number from the previous page) when given.
    pub async fn audit_page(
        &self,
        filter: &Filter,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Row>, StoreError> {
        let sql = match before {
            None => sql(&PAGE_SQL, || {
                format!("SELECT {COLUMNS} {MATCHING} ORDER BY seq DESC LIMIT $11")
            }),
            Some(_) => sql(&PAGE_BEFORE_SQL, || {
                format!(
                    "SELECT {COLUMNS} {} ORDER BY seq DESC LIMIT $11",
                    matching_before()
                )
            }),
        };
        let mut tx = self.begin_read().await?;
        let rows = on_tx!(tx, |c| bind_filter!(
            sqlx::query_as::<_, Row>(sql),
            filter,
            before
        )
        .bind(limit)
        .fetch_all(c)
        .await)?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Sends every event matching `filter`, oldest first, into `sink`, from one snapshot.
    /// Memory stays flat whatever the count (the channel is bounded); stops early, without
    /// error, when the receiver goes away. Returns how many events were sent.
    pub async fn audit_export(
        &self,
        filter: &Filter,
        sink: tokio::sync::mpsc::Sender<Row>,
    ) -> Result<u64, StoreError> {
        let sql = sql(&EXPORT_SQL, || {
            format!("SELECT {COLUMNS} {MATCHING} ORDER BY seq")
        });
        let mut tx = self.begin_read().await?;
        let mut sent = 0u64;
        if let crate::db::TxInner::Sqlite(t) = &mut tx.inner {
            let mut after = 0;
            'export: loop {
                let batch = sqlite_batch(
                    t,
                    &SQLITE_EXPORT_SQL,
                    EXPORT_BATCH_FROM,
                    Some(filter),
                    after,
                )
                .await?;
                let Some(last) = batch.last().map(|r| r.seq) else {
                    break;
                };
                after = last;
                for row in batch {
                    if sink.send(row).await.is_err() {
                        break 'export;
                    }
                    sent += 1;
                }
            }
        } else {
            on_tx!(tx, |c| {
                let mut rows =
                    bind_filter!(sqlx::query_as::<_, Row>(sql), filter, None::<i64>).fetch(c);
                while let Some(row) = rows.try_next().await? {
                    if sink.send(row).await.is_err() {
                        break;
                    }
                    sent += 1;
                }
            });
        }
        tx.commit().await?;
        Ok(sent)
    }

    /// How many events match `filter`.
    pub async fn audit_count(&self, filter: &Filter) -> Result<i64, StoreError> {
        let sql = sql(&COUNT_SQL, || format!("SELECT COUNT(*) {MATCHING}"));
        let mut tx = self.begin_read().await?;
        let n = on_tx!(tx, |c| bind_filter!(
            sqlx::query_scalar::<_, i64>(sql),
            filter,
            None::<i64>
        )
        .fetch_one(c)
        .await)?;
        tx.commit().await?;
        Ok(n)
    }
}

/// What an organization's audit view adds to the filters: its workspaces' events, the events
/// about the organization itself, and those its directory (SCIM tokens) made. Lists are bound
/// as JSON arrays ($11 workspaces, $12 the organization, $13 actors; $14 the page size).
fn org_condition(postgres: bool) -> &'static str {
    if postgres {
        "(workspace_id IN (SELECT json_array_elements_text(CAST($11 AS json))) \
         OR (resource_type = 'organization' AND resource_id = $12) \
         OR actor_id IN (SELECT json_array_elements_text(CAST($13 AS json))))"
    } else {
        "(workspace_id IN (SELECT value FROM json_each($11)) \
         OR (resource_type = 'organization' AND resource_id = $12) \
         OR actor_id IN (SELECT value FROM json_each($13)))"
    }
}

impl Store {
    /// One page of the events of organization `org` matching `filter`, newest first, older
    /// than `before` when given: its workspaces' events, those about the organization, and
    /// those its directory made.
    pub async fn audit_org_page(
        &self,
        org: warden_domain::organizations::OrgId,
        filter: &Filter,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Row>, StoreError> {
        let mut tx = self.begin_read().await?;
        crate::tenancy::decide::set_scope(&mut tx, "warden.org_id", &org.to_string()).await?;
        crate::tenancy::decide::set_scope(&mut tx, "warden.platform", "on").await?;
        let workspaces = on_tx!(tx, |c| sqlx::query_scalar::<_, uuid::Uuid>(
            "SELECT id FROM workspaces WHERE organization_id = $1"
        )
        .bind(org.uuid())
        .fetch_all(c)
        .await)?;
        crate::tenancy::decide::set_scope(&mut tx, "warden.platform", "").await?;
        let tokens = on_tx!(tx, |c| sqlx::query_scalar::<_, uuid::Uuid>(
            "SELECT id FROM scim_tokens WHERE organization_id = $1"
        )
        .bind(org.uuid())
        .fetch_all(c)
        .await)?;
        let workspaces = serde_json::Value::from(
            workspaces
                .iter()
                .map(uuid::Uuid::to_string)
                .collect::<Vec<_>>(),
        )
        .to_string();
        let actors = serde_json::Value::from(
            tokens
                .iter()
                .map(|t| format!("scim:{t}"))
                .collect::<Vec<_>>(),
        )
        .to_string();
        let postgres = matches!(tx.inner, crate::db::TxInner::Postgres(_));
        let matching = match before {
            None => MATCHING.to_owned(),
            Some(_) => matching_before(),
        };
        let sql = format!(
            "SELECT {COLUMNS} {matching} AND {} ORDER BY seq DESC LIMIT $14",
            org_condition(postgres)
        );
        let rows = on_tx!(tx, |c| bind_filter!(
            sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql.clone())),
            filter,
            before
        )
        .bind(&workspaces)
        .bind(org.to_string())
        .bind(&actors)
        .bind(limit)
        .fetch_all(c)
        .await)?;
        tx.commit().await?;
        Ok(rows)
    }
}
