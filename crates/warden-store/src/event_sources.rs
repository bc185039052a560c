//! Event sources and the deliveries they accepted, as stored. People reach them through a
//! workspace's scoped transaction; the webhook intake reads and writes them through
//! [`JobsTx`] (the `warden.jobs` scope).

use uuid::Uuid;

use crate::automations::{JobsTx, unique_ok};
use crate::db::on_tx;
use crate::tenancy::WorkspaceTx;
use crate::{StoreError, Tx};

/// An event source as stored (never its token; its secret only sealed).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SourceRow {
    /// Id.
    pub id: Uuid,
    /// Workspace.
    pub workspace_id: Uuid,
    /// Name, unique in the workspace.
    pub name: String,
    /// `generic`, `github`, `stripe` or `standard`.
    pub kind: String,
    /// Whether deliveries are accepted.
    pub enabled: bool,
    /// The token's first four characters (to tell tokens apart in the console).
    pub token_prefix: String,
    /// The signing secret, sealed.
    pub sealed_secret: Option<Vec<u8>>,
    /// Who set the secret.
    pub secret_set_by: Option<Uuid>,
    /// When (µs).
    pub secret_set_at: Option<i64>,
    /// Generic: the header carrying the signature.
    pub signature_header: Option<String>,
    /// Generic: the header carrying a delivery id.
    pub delivery_header: Option<String>,
    /// Event types accepted (JSON array), if filtered.
    pub filter_events: Option<String>,
    /// A JSON pointer into the body …
    pub filter_pointer: Option<String>,
    /// … and the JSON value it must hold.
    pub filter_value: Option<String>,
    /// The automation a matching delivery runs.
    pub automation_id: Option<Uuid>,
    /// Deliveries accepted per minute, at most.
    pub rate_per_minute: i64,
    /// Deliveries waiting at once, at most (per node).
    pub backlog: i64,
    /// Accepted.
    pub accepted: i64,
    /// Valid but filtered out.
    pub ignored: i64,
    /// Seen before (same delivery id): processed once.
    pub replayed: i64,
    /// Over the rate limit.
    pub dropped_rate: i64,
    /// Over the backlog.
    pub dropped_backlog: i64,
    /// Bad or missing signature.
    pub dropped_signature: i64,
    /// While background work was paused (licence).
    pub dropped_paused: i64,
    /// Created by.
    pub created_by: Uuid,
    /// Created (µs).
    pub created_at: i64,
    /// Last changed (µs).
    pub updated_at: i64,
    /// Token last replaced (µs).
    pub token_rotated_at: Option<i64>,
    /// Deliveries received but not processed yet (read for people, not for the intake).
    #[sqlx(default)]
    pub waiting: i64,
}

const SOURCE_COLUMNS: &str = "id, workspace_id, name, kind, enabled, token_prefix, sealed_secret, \
     secret_set_by, secret_set_at, signature_header, delivery_header, filter_events, \
     filter_pointer, filter_value, automation_id, rate_per_minute, backlog, accepted, ignored, \
     replayed, dropped_rate, dropped_backlog, dropped_signature, dropped_paused, created_by, \
     created_at, updated_at, token_rotated_at";
/// Deliveries of the source received but not processed yet.
const WAITING: &str =
    "(SELECT COUNT(*) FROM webhook_inbox i WHERE i.source_id = event_sources.id) AS waiting";

/// What an event source is: everything a person sets except the token and secret.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: String,
    /// Enabled.
    pub enabled: bool,
    /// Generic: signature header.
    pub signature_header: Option<String>,
    /// Generic: delivery id header.
    pub delivery_header: Option<String>,
    /// Event types (JSON array).
    pub filter_events: Option<String>,
    /// JSON pointer.
    pub filter_pointer: Option<String>,
    /// JSON value.
    pub filter_value: Option<String>,
    /// Automation to run.
    pub automation_id: Option<Uuid>,
    /// Rate limit.
    pub rate_per_minute: i64,
    /// Backlog.
    pub backlog: i64,
}

/// A token's hash and what the intake needs to route a delivery before reading the database.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SourceToken {
    /// SHA-256 of the token.
    pub token_hash: Vec<u8>,
    /// The source.
    pub id: Uuid,
    /// Its workspace.
    pub workspace_id: Uuid,
    /// Its rate limit.
    pub rate_per_minute: i64,
    /// Its backlog.
    pub backlog: i64,
}

/// What became of deliveries the intake did not write (counted per source).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drops {
    /// Over the rate limit.
    pub rate: i64,
    /// Over the backlog.
    pub backlog: i64,
    /// Bad signature.
    pub signature: i64,
    /// Paused.
    pub paused: i64,
    /// Filtered out.
    pub ignored: i64,
    /// Seen before.
    pub replayed: i64,
}

impl Drops {
    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A verified delivery to accept.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    /// The source.
    pub source_id: Uuid,
    /// Its workspace.
    pub workspace_id: Uuid,
    /// Its delivery id (replays share it).
    pub delivery_id: Option<&'a str>,
    /// Its event type.
    pub event_type: Option<&'a str>,
    /// The raw body.
    pub body: &'a [u8],
    /// The automation to run, if any.
    pub automation_id: Option<Uuid>,
    /// Received (µs).
    pub now: i64,
}

/// An enabled source as the intake locks it for a batch.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliverySource {
    /// The source.
    #[sqlx(flatten)]
    pub row: SourceRow,
    /// Its token's hash now (a delivery that came with another is for a token rotated away).
    pub token_hash: Vec<u8>,
    /// Start of its per-minute window (µs).
    pub minute_start: i64,
    /// Deliveries accepted in that window.
    pub minute_count: i64,
}

/// One source's share of a batch: its verified deliveries in arrival order, and the drops
/// decided before (bad signatures, filtered, paused) to add to its counters.
#[derive(Debug)]
pub struct SourceBatch<'a> {
    /// The source, as locked.
    pub source: &'a DeliverySource,
    /// Verified deliveries, in arrival order.
    pub events: Vec<NewEvent<'a>>,
    /// Drops decided before.
    pub drops: Drops,
}

/// What accepting a delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Stored (and its run enqueued).
    New(Uuid),
    /// Seen before: nothing done.
    Replay,
    /// The source's per-minute limit is used up across the cluster.
    OverRate,
    /// The source is gone or disabled, or its token changed since the delivery arrived.
    Gone,
}

impl WorkspaceTx {
    /// Stores a new event source with its token's hash.
    pub async fn insert_event_source(
        &mut self,
        id: Uuid,
        s: &SourceSpec,
        token_hash: &[u8],
        token_prefix: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let ws = self.workspace().uuid();
        let by = self.user_id();
        let res = on_tx!(self.tx_mut(), |c| sqlx::query(
            "INSERT INTO event_sources (id, workspace_id, name, kind, enabled, token_hash, \
             token_prefix, signature_header, delivery_header, filter_events, filter_pointer, \
             filter_value, automation_id, rate_per_minute, backlog, created_by, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
             $15, $16, $17, $17)"
        )
        .bind(id)
        .bind(ws)
        .bind(&s.name)
        .bind(&s.kind)
        .bind(s.enabled)
        .bind(token_hash)
        .bind(token_prefix)
        .bind(&s.signature_header)
        .bind(&s.delivery_header)
        .bind(&s.filter_events)
        .bind(&s.filter_pointer)
        .bind(&s.filter_value)
        .bind(s.automation_id)
        .bind(s.rate_per_minute)
        .bind(s.backlog)
        .bind(by)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()));
        unique_ok(res)
    }

    /// Replaces what an event source is (not its token or secret). `false` when the name is
    /// taken.
    pub async fn update_event_source(
        &mut self,
        id: Uuid,
        s: &SourceSpec,
        now: i64,
    ) -> Result<bool, StoreError> {
        let ws = self.workspace().uuid();
        let res = on_tx!(self.tx_mut(), |c| {
            sqlx::query(
            "UPDATE event_sources SET name = $3, kind = $4, enabled = $5, signature_header = $6, \
             delivery_header = $7, filter_events = $8, filter_pointer = $9, filter_value = $10, \
             automation_id = $11, rate_per_minute = $12, backlog = $13, updated_at = $14 \
             WHERE id = $1 AND workspace_id = $2"
        )
        .bind(id)
        .bind(ws)
        .bind(&s.name)
        .bind(&s.kind)
        .bind(s.enabled)
        .bind(&s.signature_header)
        .bind(&s.delivery_header)
        .bind(&s.filter_events)
        .bind(&s.filter_pointer)
        .bind(&s.filter_value)
        .bind(s.automation_id)
        .bind(s.rate_per_minute)
        .bind(s.backlog)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected())
        });
        unique_ok(res)
    }

    /// Sets (or, with `None`, removes) the source's signing secret, sealed by the caller.
    pub async fn set_event_source_secret(
        &mut self,
        id: Uuid,
        sealed: Option<&[u8]>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let ws = self.workspace().uuid();
        let by = sealed.map(|_| self.user_id());
        let at = sealed.map(|_| now);
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query(
            "UPDATE event_sources SET sealed_secret = $3, secret_set_by = $4, secret_set_at = $5, \
             updated_at = $6 WHERE id = $1 AND workspace_id = $2"
        )
        .bind(id)
        .bind(ws)
        .bind(sealed)
        .bind(by)
        .bind(at)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?
            == 1)
    }

    /// Replaces the source's token in one statement: the old one matches nothing from the
    /// moment this commits.
    pub async fn rotate_event_source_token(
        &mut self,
        id: Uuid,
        token_hash: &[u8],
        token_prefix: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let ws = self.workspace().uuid();
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query(
            "UPDATE event_sources SET token_hash = $3, token_prefix = $4, token_rotated_at = $5, \
             updated_at = $5 WHERE id = $1 AND workspace_id = $2"
        )
        .bind(id)
        .bind(ws)
        .bind(token_hash)
        .bind(token_prefix)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?
            == 1)
    }

    /// The workspace's event sources, by name.
    pub async fn event_sources(&mut self) -> Result<Vec<SourceRow>, StoreError> {
        let ws = self.workspace().uuid();
        let sql = format!(
            "SELECT {SOURCE_COLUMNS}, {WAITING} FROM event_sources WHERE workspace_id = $1 \
             ORDER BY name"
        );
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query_as::<_, SourceRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(ws)
        .fetch_all(c)
        .await)?)
    }

    /// One of the workspace's event sources.
    pub async fn event_source(&mut self, id: Uuid) -> Result<Option<SourceRow>, StoreError> {
        let ws = self.workspace().uuid();
        source_in(self.tx_mut(), id, Some(ws)).await
    }

    /// Deletes an event source and the deliveries it accepted.
    pub async fn delete_event_source(&mut self, id: Uuid) -> Result<bool, StoreError> {
        let ws = self.workspace().uuid();
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query(
            "DELETE FROM event_sources WHERE id = $1 AND workspace_id = $2"
        )
        .bind(id)
        .bind(ws)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?
            == 1)
    }
}

async fn source_in(
    tx: &mut Tx,
    id: Uuid,
    ws: Option<Uuid>,
) -> Result<Option<SourceRow>, StoreError> {
    let sql = format!(
        "SELECT {SOURCE_COLUMNS}, {WAITING} FROM event_sources WHERE id = $1 \
         AND ($2 IS NULL OR workspace_id = $2)"
    );
    Ok(on_tx!(tx, |c| sqlx::query_as::<_, SourceRow>(
        sqlx::AssertSqlSafe(sql)
    )
    .bind(id)
    .bind(ws)
    .fetch_optional(c)
    .await)?)
}

impl JobsTx {
    /// A delivery accepted earlier (for a run's template).
    pub async fn event_body(&mut self, id: Uuid) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(on_tx!(self.0, |c| sqlx::query_scalar::<_, Vec<u8>>(
            "SELECT body FROM webhook_events WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(c)
        .await)?)
    }

    /// Every source's token hash, for the intake's routing table.
    pub async fn source_tokens(&mut self) -> Result<Vec<SourceToken>, StoreError> {
        Ok(on_tx!(self.0, |c| sqlx::query_as::<_, SourceToken>(
            "SELECT token_hash, id, workspace_id, rate_per_minute, backlog FROM event_sources \
             WHERE enabled"
        )
        .fetch_all(c)
        .await)?)
    }

    /// The enabled sources among `ids`, with their sealed secrets, token hashes and
    /// per-minute windows, locked until this transaction ends (on PostgreSQL, in id order, so
    /// two nodes' workers never wait on each other in a circle; SQLite has one writer).
    pub async fn lock_delivery_sources(
        &mut self,
        ids: &[Uuid],
    ) -> Result<Vec<DeliverySource>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let lock = match self.0.backend() {
            crate::Backend::Postgres => " FOR UPDATE",
            crate::Backend::Sqlite => "",
        };
        Ok(on_tx!(self.0, |c| {
            let mut q = sqlx::QueryBuilder::new(format!(
                "SELECT {SOURCE_COLUMNS}, token_hash, minute_start, minute_count \
                 FROM event_sources WHERE enabled AND id IN ("
            ));
            let mut list = q.separated(", ");
            for id in ids {
                list.push_bind(*id);
            }
            q.push(format!(") ORDER BY id{lock}"));
            q.build_query_as::<DeliverySource>().fetch_all(c).await
        })?)
    }

    /// Accepts one batch of verified deliveries of several sources (each locked by
    /// [`JobsTx::lock_delivery_sources`]) in a few statements whatever their number: counts
    /// them against each source's per-minute limit (across nodes), stores those within it
    /// unless their delivery id was seen, enqueues the run each new one triggers, and adds
    /// everything — with the drops decided before — to the sources' counters. Returns what
    /// became of each event, per source, in order.
    pub async fn accept_batch(
        &mut self,
        batches: &[SourceBatch<'_>],
        now: i64,
        max_attempts: i32,
    ) -> Result<Vec<Vec<Accepted>>, StoreError> {
        let minute = now.div_euclid(60_000_000) * 60_000_000;
        let mut out: Vec<Vec<Accepted>> = Vec::with_capacity(batches.len());
        let mut windows = Vec::with_capacity(batches.len());
        let mut take: Vec<(Uuid, &NewEvent<'_>)> = Vec::new();
        for b in batches {
            let n = i64::try_from(b.events.len()).unwrap_or(i64::MAX);
            let used = if b.source.minute_start == minute {
                b.source.minute_count
            } else {
                0
            };
            let allowed = (b.source.row.rate_per_minute - used).clamp(0, n);
            let allowed_n = usize::try_from(allowed).unwrap_or(0);
            windows.push(used + allowed);
            let mut slots = vec![Accepted::OverRate; b.events.len()];
            for (slot, e) in slots.iter_mut().zip(&b.events).take(allowed_n) {
                let id = Uuid::now_v7();
                *slot = Accepted::New(id);
                take.push((id, e));
            }
            out.push(slots);
        }
        // In chunks that keep a multi-row insert within SQLite's bound on parameters.
        let mut inserted = std::collections::HashSet::with_capacity(take.len());
        for chunk in take.chunks(1000) {
            let ids: Vec<Uuid> = on_tx!(self.0, |c| {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO webhook_events (id, workspace_id, source_id, delivery_id, \
                     event_type, body, received_at) ",
                );
                q.push_values(chunk, |mut b, (id, e)| {
                    b.push_bind(*id)
                        .push_bind(e.workspace_id)
                        .push_bind(e.source_id)
                        .push_bind(e.delivery_id)
                        .push_bind(e.event_type)
                        .push_bind(e.body)
                        .push_bind(e.now);
                });
                q.push(" ON CONFLICT (source_id, delivery_id) DO NOTHING RETURNING id");
                q.build_query_scalar::<Uuid>().fetch_all(c).await
            })?;
            inserted.extend(ids);
        }
        let jobs: Vec<(Uuid, Uuid, String, String)> = take
            .iter()
            .filter(|(id, _)| inserted.contains(id))
            .filter_map(|(id, e)| {
                let automation = e.automation_id?;
                let payload = serde_json::json!({
                    "automation_id": automation, "trigger": "event", "event_id": id,
                })
                .to_string();
                Some((
                    Uuid::now_v7(),
                    e.workspace_id,
                    format!("event:{id}"),
                    payload,
                ))
            })
            .collect();
        for chunk in jobs.chunks(1000) {
            on_tx!(self.0, |c| {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO jobs (id, kind, workspace_id, dedupe_key, payload, status, \
                     attempts, max_attempts, run_at, created_at) ",
                );
                q.push_values(chunk, |mut b, (id, workspace, key, payload)| {
                    b.push_bind(*id)
                        .push_bind("automation.run")
                        .push_bind(*workspace)
                        .push_bind(key.as_str())
                        .push_bind(payload.as_str())
                        .push_bind("queued")
                        .push_bind(0i32)
                        .push_bind(max_attempts)
                        .push_bind(now)
                        .push_bind(now);
                });
                q.push(" ON CONFLICT (dedupe_key) DO NOTHING");
                q.build().execute(c).await.map(drop)
            })?;
        }
        if !jobs.is_empty() {
            self.0.notify_jobs().await?;
        }
        for ((b, slots), window) in batches.iter().zip(out.iter_mut()).zip(windows) {
            let mut d = b.drops;
            let mut accepted = 0i64;
            for slot in slots.iter_mut() {
                match slot {
                    Accepted::New(id) if inserted.contains(id) => accepted += 1,
                    Accepted::New(_) => {
                        *slot = Accepted::Replay;
                        d.replayed += 1;
                    }
                    Accepted::OverRate => d.rate += 1,
                    Accepted::Replay | Accepted::Gone => {}
                }
            }
            if accepted == 0 && d.is_empty() {
                continue;
            }
            self.add_counts(b.source.row.id, accepted, &d, Some((minute, window)))
                .await?;
        }
        Ok(out)
    }

    /// Adds to a source's counters.
    pub async fn count_deliveries(
        &mut self,
        source: Uuid,
        accepted: i64,
        d: &Drops,
    ) -> Result<(), StoreError> {
        self.add_counts(source, accepted, d, None).await
    }

    /// Adds to a source's counters and, if given, sets its per-minute window (start, count).
    async fn add_counts(
        &mut self,
        source: Uuid,
        accepted: i64,
        d: &Drops,
        window: Option<(i64, i64)>,
    ) -> Result<(), StoreError> {
        on_tx!(self.0, |c| sqlx::query(
            "UPDATE event_sources SET accepted = accepted + $2, dropped_rate = dropped_rate + $3, \
             dropped_backlog = dropped_backlog + $4, dropped_signature = dropped_signature + $5, \
             dropped_paused = dropped_paused + $6, ignored = ignored + $7, \
             replayed = replayed + $8, minute_start = COALESCE($9, minute_start), \
             minute_count = COALESCE($10, minute_count) WHERE id = $1"
        )
        .bind(source)
        .bind(accepted)
        .bind(d.rate)
        .bind(d.backlog)
        .bind(d.signature)
        .bind(d.paused)
        .bind(d.ignored)
        .bind(d.replayed)
        .bind(window.map(|w| w.0))
        .bind(window.map(|w| w.1))
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Whether a signature failure on this source should be audited now (at most once a
    /// minute per source, across nodes); marks it so.
    pub async fn signature_alert_due(
        &mut self,
        source: Uuid,
        now: i64,
    ) -> Result<bool, StoreError> {
        Ok(on_tx!(self.0, |c| sqlx::query(
            "UPDATE event_sources SET last_signature_alert = $2 WHERE id = $1 \
             AND last_signature_alert <= $3"
        )
        .bind(source)
        .bind(now)
        .bind(now - 60_000_000)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?
            == 1)
    }

    /// Deletes deliveries received before `before` (µs).
    pub async fn prune_events(&mut self, before: i64) -> Result<u64, StoreError> {
        Ok(on_tx!(self.0, |c| sqlx::query(
            "DELETE FROM webhook_events WHERE received_at < $1"
        )
        .bind(before)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?)
    }
}
