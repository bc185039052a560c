//! The webhook intake: what `POST /webhooks/{token}` does, and the worker behind it.
//!
//! The request path does the same small amount of work whatever the token: it hashes the
//! token, looks the hash up in this node's routing table (every enabled source's token hash,
//! reloaded from the database every second and at once after a change on this node), and —
//! for a known token within its source's rate and backlog — hands the delivery to the
//! worker. The answer is always the same `200`; nothing about a delivery's fate reaches the
//! sender. Rate and backlog are first enforced here, per node, so a flood costs no database
//! work; the worker enforces the per-minute limit again across the cluster.
//!
//! A delivery handed over is answered once it is in the inbox (group commit: once an append
//! has the write lock, everything that has arrived by then goes in, one multi-row insert),
//! so a `200` means the delivery is stored even if the process dies the next moment. If it
//! cannot be stored in time the answer is `503` and the provider sends it again; its
//! delivery id makes the resend a replay, processed once. (Only the holder of a live token
//! can see that difference, or the millisecond an append takes: the 256-bit token is the
//! secret, not its liveness.)
//!
//! The inbox worker (every node runs one; on PostgreSQL they share the inbox without taking
//! the same delivery twice) takes deliveries in large batches, oldest first: it reads each
//! source as stored (so a rotated token, a disabled source or a new secret applies to every
//! delivery not yet processed, on every node), verifies signatures over the raw bytes against
//! the time each delivery arrived, applies the filter, and in one transaction stores what is
//! accepted (a delivery id seen before is a replay, processed once), enqueues the automation
//! runs, adds to the source's counters and deletes what it took from the inbox. What a crash
//! leaves in the inbox is processed after the restart, or by another node. While the licence
//! is invalid or lacks `automations`, deliveries are answered as always and counted as
//! dropped (paused) when processed: nothing is held back to run later.
//!
//! A source's backlog bounds its deliveries received but not processed: those this node
//! holds unanswered plus those in the inbox (as counted at the last reload of the routing
//! table, every second, plus what this node appended since).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::json;
use tokio::sync::{Notify, mpsc, oneshot};
use uuid::Uuid;
use warden_domain::audit::{Actor, Outcome};
use warden_domain::license::Feature;
use warden_store::event_sources::{Accepted, DeliverySource, Drops, NewEvent, SourceBatch};
use warden_store::webhook_inbox::{InboxRow, Received};

use super::verify::{self, Scheme};
use crate::op::unix_us;
use crate::{Ctx, Op, Origin};

/// Deliveries waiting to be appended to the inbox on one node, all sources together.
const QUEUE: usize = 20_000;
/// Deliveries appended to the inbox in one transaction.
const BATCH: usize = 2048;
/// Deliveries taken from the inbox in one transaction: large enough that the per-source
/// statements are shared by many, small enough that the write lock is let go within a few
/// milliseconds for the appends behind it.
const TAKE: usize = 512;
/// Body bytes taken from the inbox in one transaction (at least one delivery).
const BATCH_BYTES: i64 = 16 << 20;
/// Failed batches in a row after which the inbox worker takes one delivery at a time.
const POISON_AFTER: u32 = 3;
/// How long the inbox worker lets deliveries gather after a partial batch.
const GATHER: Duration = Duration::from_millis(50);
/// How often the routing table is reloaded without being asked.
const RELOAD: Duration = Duration::from_secs(1);

struct Route {
    source: Uuid,
    workspace: Uuid,
    rate: i64,
    backlog: i64,
    /// Deliveries this node holds unanswered.
    waiting: AtomicI64,
    /// Deliveries in the inbox (at the last reload, plus this node's appends since).
    inbox: AtomicI64,
    window: Mutex<(i64, i64)>,
    dropped_rate: AtomicI64,
    dropped_backlog: AtomicI64,
}

/// One delivery on its way to the inbox.
struct Delivery {
    route: Arc<Route>,
    token_hash: [u8; 32],
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Told whether the transaction that appended the delivery committed.
    stored: oneshot::Sender<bool>,
}

type Table = HashMap<[u8; 32], Arc<Route>>;

/// This node's intake: routing table, queue to the worker, reload call.
pub struct Intake {
    routes: RwLock<Arc<Table>>,
    sender: mpsc::Sender<Delivery>,
    receiver: Mutex<Option<mpsc::Receiver<Delivery>>>,
    reload: Notify,
    loaded: Notify,
    /// Wakes the inbox worker (this node appended).
    appended: Notify,
    /// Whether the routing table has been loaded since the process started.
    ready: AtomicBool,
}

impl std::fmt::Debug for Intake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intake").finish_non_exhaustive()
    }
}

/// A delivery on its way to the inbox, to be waited for before the sender is answered.
#[derive(Debug)]
pub struct Stored(oneshot::Receiver<bool>);

impl Stored {
    /// Whether the delivery was stored in the inbox within `limit`; `false` if storing it
    /// failed or took longer.
    pub async fn committed(self, limit: Duration) -> bool {
        matches!(tokio::time::timeout(limit, self.0).await, Ok(Ok(true)))
    }
}

impl Default for Intake {
    fn default() -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        Self {
            routes: RwLock::new(Arc::new(HashMap::new())),
            sender,
            receiver: Mutex::new(Some(receiver)),
            reload: Notify::new(),
            loaded: Notify::new(),
            appended: Notify::new(),
            ready: AtomicBool::new(false),
        }
    }
}

impl Intake {
    /// Asks for the routing table to be reloaded now (a source changed on this node).
    pub fn reload(&self) {
        self.reload.notify_one();
    }

    /// Whether the routing table has been loaded since the process started, waiting up to
    /// `limit` for it. Before that every token would look unknown and a delivery sent to a
    /// node that has just started would be dropped with a `200`.
    pub async fn ready(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let loaded = self.loaded.notified();
            if self.ready.load(Ordering::Acquire) {
                return true;
            }
            if tokio::time::timeout_at(deadline, loaded).await.is_err() {
                return self.ready.load(Ordering::Acquire);
            }
        }
    }

    /// Completes after the next reload of the routing table.
    pub async fn reloaded(&self) {
        let wait = self.loaded.notified();
        self.reload();
        wait.await;
    }

    /// The request path: takes a delivery for the token in the URL, or drops it. Says
    /// nothing either way. `headers` is called only for a delivery that is taken; for that
    /// one the answer is a [`Stored`] to wait for before answering the sender.
    pub fn offer(
        &self,
        token: &str,
        now_us: i64,
        headers: impl FnOnce() -> Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Option<Stored> {
        let token_hash = warden_crypto::token::hash(token);
        let route = self
            .routes
            .read()
            .ok()
            .and_then(|t| t.get(&token_hash).cloned())?;
        {
            let minute = now_us.div_euclid(60_000_000);
            let mut w = route.window.lock().ok()?;
            if w.0 != minute {
                *w = (minute, 0);
            }
            if w.1 >= route.rate {
                route.dropped_rate.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            w.1 += 1;
        }
        let queued = route.inbox.load(Ordering::Acquire);
        if route.waiting.fetch_add(1, Ordering::AcqRel) + queued >= route.backlog {
            route.waiting.fetch_sub(1, Ordering::AcqRel);
            route.dropped_backlog.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let (stored, answer) = oneshot::channel();
        let delivery = Delivery {
            route: route.clone(),
            token_hash,
            headers: headers(),
            body,
            stored,
        };
        if self.sender.try_send(delivery).is_err() {
            route.waiting.fetch_sub(1, Ordering::AcqRel);
            route.dropped_backlog.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(Stored(answer))
    }

    fn replace(
        &self,
        rows: Vec<warden_store::event_sources::SourceToken>,
        inbox: &HashMap<Uuid, i64>,
    ) -> Vec<Arc<Route>> {
        let old = self.routes.read().map(|t| t.clone()).unwrap_or_default();
        let by_source: HashMap<Uuid, &Arc<Route>> = old.values().map(|r| (r.source, r)).collect();
        let mut table = Table::with_capacity(rows.len());
        for row in rows {
            let Ok(hash) = <[u8; 32]>::try_from(row.token_hash.as_slice()) else {
                continue;
            };
            // Keep a route's state (window, backlog, counters) while its settings hold.
            let route = match by_source.get(&row.id) {
                Some(r) if r.rate == row.rate_per_minute && r.backlog == row.backlog => {
                    Arc::clone(r)
                }
                _ => Arc::new(Route {
                    source: row.id,
                    workspace: row.workspace_id,
                    rate: row.rate_per_minute,
                    backlog: row.backlog,
                    waiting: AtomicI64::new(0),
                    inbox: AtomicI64::new(0),
                    window: Mutex::new((0, 0)),
                    dropped_rate: AtomicI64::new(0),
                    dropped_backlog: AtomicI64::new(0),
                }),
            };
            route
                .inbox
                .store(inbox.get(&row.id).copied().unwrap_or(0), Ordering::Release);
            table.insert(hash, route);
        }
        if let Ok(mut t) = self.routes.write() {
            *t = Arc::new(table);
        }
        // Routes that left the table: their unflushed counters are flushed once more.
        old.values().cloned().collect()
    }

    fn routes(&self) -> Vec<Arc<Route>> {
        self.routes
            .read()
            .map(|t| t.values().cloned().collect())
            .unwrap_or_default()
    }
}

/// Starts this node's routing-table loader and worker.
pub fn spawn(ctx: Arc<Ctx>) -> Vec<tokio::task::JoinHandle<()>> {
    let loader = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            loop {
                match load(&ctx).await {
                    Ok(gone) => {
                        ctx.webhooks.ready.store(true, Ordering::Release);
                        flush_counters(&ctx, &gone).await;
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot load the webhook routing table"),
                }
                ctx.webhooks.loaded.notify_waiters();
                tokio::select! {
                    () = ctx.webhooks.reload.notified() => {}
                    () = tokio::time::sleep(RELOAD) => {}
                }
            }
        })
    };
    let receiver = ctx.webhooks.receiver.lock().ok().and_then(|mut r| r.take());
    let appender = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let Some(mut rx) = receiver else {
                return;
            };
            let mut batch = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                append(&ctx, &mut rx, &mut batch).await;
            }
        })
    };
    let worker = tokio::spawn(async move {
        let mut failures = 0u32;
        loop {
            // What is in the inbox at start (a crash's leftovers) is processed at once.
            loop {
                // After failures in a row, the oldest delivery alone, and after more it is
                // set aside: one delivery that cannot be stored must not hold up the rest.
                let rows = if failures >= POISON_AFTER { 1 } else { TAKE };
                match process(&ctx, rows).await {
                    Ok(taken) => {
                        failures = 0;
                        if taken < rows {
                            // A partial batch: let the next one gather. Processing costs
                            // per batch and per source far more than per delivery, and the
                            // senders have their answer already.
                            if taken > 0 {
                                tokio::time::sleep(GATHER).await;
                            }
                            break;
                        }
                    }
                    Err(e) => {
                        failures += 1;
                        tracing::warn!(error = %e, "cannot process webhook deliveries; trying again");
                        if failures >= 2 * POISON_AFTER {
                            set_aside(&ctx).await;
                            failures = 0;
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        break;
                    }
                }
            }
            flush_counters(&ctx, &ctx.webhooks.routes()).await;
            tokio::select! {
                () = ctx.webhooks.appended.notified() => {}
                () = tokio::time::sleep(RELOAD) => {}
            }
        }
    });
    vec![loader, appender, worker]
}

async fn load(ctx: &Ctx) -> Result<Vec<Arc<Route>>, warden_store::StoreError> {
    let mut tx = ctx.store.begin_jobs().await?;
    let rows = tx.source_tokens().await?;
    let inbox: HashMap<Uuid, i64> = tx.inbox_waiting().await?.into_iter().collect();
    tx.commit().await?;
    Ok(ctx.webhooks.replace(rows, &inbox))
}

/// Writes the request path's drop counts.
async fn flush_counters(ctx: &Ctx, routes: &[Arc<Route>]) {
    let counts: Vec<(Uuid, Drops)> = routes
        .iter()
        .filter_map(|r| {
            let d = Drops {
                rate: r.dropped_rate.swap(0, Ordering::Relaxed),
                backlog: r.dropped_backlog.swap(0, Ordering::Relaxed),
                ..Drops::default()
            };
            (!d.is_empty()).then_some((r.source, d))
        })
        .collect();
    if counts.is_empty() {
        return;
    }
    let result = async {
        let mut tx = ctx.store.begin_jobs().await?;
        for (source, d) in &counts {
            tx.count_deliveries(*source, 0, d).await?;
        }
        tx.commit().await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "cannot record dropped webhook deliveries");
    }
}

/// A source as this batch sees it: its scheme, opened key and filter.
struct Source {
    locked: DeliverySource,
    scheme: Scheme,
    key: Option<Vec<u8>>,
    events: Option<Vec<String>>,
    matcher: Option<(String, serde_json::Value)>,
    drops: Drops,
    signature_failures: Vec<&'static str>,
}

impl Source {
    fn of(ctx: &Ctx, locked: DeliverySource) -> Self {
        let row = &locked.row;
        let scheme = Scheme::of(
            &row.kind,
            row.signature_header.as_deref(),
            row.delivery_header.as_deref(),
        );
        let key = row.sealed_secret.as_deref().and_then(|sealed| {
            let opened = ctx
                .keyring
                .open(&super::secret_context(row.id), sealed)
                .map_err(|e| tracing::error!(error = %e, "cannot open an event source's secret"))
                .ok()?;
            verify::key_bytes(&scheme, &opened)
        });
        let events = row
            .filter_events
            .as_deref()
            .and_then(|e| serde_json::from_str(e).ok());
        let matcher = row.filter_pointer.clone().zip(
            row.filter_value
                .as_deref()
                .and_then(|v| serde_json::from_str(v).ok()),
        );
        Self {
            locked,
            scheme,
            key,
            events,
            matcher,
            drops: Drops::default(),
            signature_failures: Vec::new(),
        }
    }

    /// A source with a secret that could not be opened accepts nothing (fails closed).
    fn key_missing(&self) -> bool {
        self.locked.row.sealed_secret.is_some() && self.key.is_none()
    }

    fn matches(&self, event_type: Option<&str>, body: &[u8]) -> bool {
        if let Some(events) = &self.events
            && !event_type.is_some_and(|t| events.iter().any(|e| e == t))
        {
            return false;
        }
        if let Some((pointer, value)) = &self.matcher {
            let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
                return false;
            };
            if json.pointer(pointer) != Some(value) {
                return false;
            }
        }
        true
    }
}

/// Appends deliveries to the inbox and tells their senders whether that committed.
async fn append(ctx: &Ctx, rx: &mut mpsc::Receiver<Delivery>, batch: &mut Vec<Delivery>) {
    let mut committed = false;
    for attempt in 0..3 {
        match append_once(ctx, rx, batch).await {
            Ok(()) => {
                committed = true;
                break;
            }
            Err(e) if attempt < 2 => {
                tracing::warn!(error = %e, "cannot store webhook deliveries; trying again");
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
            Err(e) => tracing::error!(
                error = %e,
                dropped = batch.len(),
                "cannot store webhook deliveries; their senders are told to send them again"
            ),
        }
    }
    for d in batch.drain(..) {
        if committed {
            d.route.inbox.fetch_add(1, Ordering::AcqRel);
        }
        d.route.waiting.fetch_sub(1, Ordering::AcqRel);
        // The sender may have given up waiting; the delivery is stored all the same.
        let _ = d.stored.send(committed);
    }
    if committed {
        ctx.webhooks.appended.notify_one();
    }
}

/// One append. The write lock comes first, then whatever arrived while waiting for it
/// joins the batch: a delivery waits for at most the transaction ahead of it (the worker's,
/// say) and its own, never for one more behind a batch taken before it arrived.
async fn append_once(
    ctx: &Ctx,
    rx: &mut mpsc::Receiver<Delivery>,
    batch: &mut Vec<Delivery>,
) -> Result<(), warden_store::StoreError> {
    let mut tx = ctx.store.begin_jobs().await?;
    tx.begin_now().await?;
    while batch.len() < BATCH {
        match rx.try_recv() {
            Ok(d) => batch.push(d),
            Err(_) => break,
        }
    }
    let now = unix_us(ctx.clock.now());
    let headers: Vec<String> = batch
        .iter()
        .map(|d| serde_json::to_string(&d.headers).unwrap_or_else(|_| "[]".to_owned()))
        .collect();
    let received: Vec<Received<'_>> = batch
        .iter()
        .zip(&headers)
        .map(|(d, headers)| Received {
            workspace_id: d.route.workspace,
            source_id: d.route.source,
            token_hash: &d.token_hash,
            headers,
            body: &d.body,
            received_at: now,
        })
        .collect();
    tx.inbox_append(&received).await?;
    tx.commit().await
}

/// Drops the oldest delivery in the inbox, which could not be processed alone.
async fn set_aside(ctx: &Ctx) {
    let result = async {
        let mut tx = ctx.store.begin_jobs().await?;
        let taken = tx.inbox_take(1, 1).await?;
        tx.inbox_remove(&taken).await?;
        tx.commit().await?;
        Ok::<_, warden_store::StoreError>(taken)
    }
    .await;
    match result {
        Ok(taken) => {
            for row in taken {
                tracing::error!(
                    source = %row.source_id,
                    bytes = row.body.len(),
                    "a webhook delivery could not be processed and was dropped"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot drop an unprocessable webhook delivery"),
    }
}

/// Whether a delivery id or event type fits where it is stored.
fn storable(text: Option<&str>) -> bool {
    text.is_none_or(|t| t.len() <= 512 && !t.contains('\0'))
}

/// Processes up to `rows` deliveries from the inbox; how many it took.
async fn process(ctx: &Ctx, rows: usize) -> Result<usize, warden_store::StoreError> {
    let mut tx = ctx.store.begin_jobs().await?;
    let taken = tx
        .inbox_take(i64::try_from(rows).unwrap_or(i64::MAX), BATCH_BYTES)
        .await?;
    if taken.is_empty() {
        tx.commit().await?;
        return Ok(0);
    }
    let enqueued = process_taken(ctx, &mut tx, &taken).await?;
    tx.inbox_remove(&taken).await?;
    tx.commit().await?;
    if enqueued {
        ctx.jobs.wake();
    }
    Ok(taken.len())
}

/// Verifies, filters and stores taken deliveries; whether a run was enqueued. The sources
/// the batch names are read and locked first, in one statement, so what follows is decided
/// on them as stored now (a rotated token, a disabled source, a new secret).
async fn process_taken(
    ctx: &Ctx,
    tx: &mut warden_store::automations::JobsTx,
    taken: &[InboxRow],
) -> Result<bool, warden_store::StoreError> {
    let now = unix_us(ctx.clock.now());
    let paused = !ctx.license.allows_background(now / 1_000_000)
        || !ctx.license.feature(Feature::Automations);
    let mut ids: Vec<Uuid> = taken.iter().map(|d| d.source_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut sources: BTreeMap<Uuid, Source> = tx
        .lock_delivery_sources(&ids)
        .await?
        .into_iter()
        .map(|s| (s.row.id, Source::of(ctx, s)))
        .collect();
    // What passed each source's checks, in arrival order.
    let mut passed: HashMap<Uuid, Vec<(verify::Verified, &InboxRow)>> = HashMap::new();
    for d in taken {
        // Gone, disabled or its token rotated since the delivery arrived.
        let Some(source) = sources
            .get_mut(&d.source_id)
            .filter(|s| s.locked.token_hash == d.token_hash)
        else {
            continue;
        };
        if paused {
            source.drops.paused += 1;
            continue;
        }
        if source.key_missing() {
            source.drops.signature += 1;
            continue;
        }
        let headers: Vec<(String, String)> = serde_json::from_str(&d.headers).unwrap_or_default();
        // Timestamps in signatures are judged against when the delivery arrived, not when
        // it is processed.
        let verified = match verify::verify(
            &source.scheme,
            source.key.as_deref(),
            &headers,
            &d.body,
            d.received_at / 1_000_000,
        ) {
            Ok(v) => v,
            Err(why) => {
                source.drops.signature += 1;
                source.signature_failures.push(why.as_str());
                continue;
            }
        };
        // An id or type no column could hold (a NUL, or longer than any provider's) is not
        // an event this source can accept.
        if !storable(verified.delivery_id.as_deref()) || !storable(verified.event_type.as_deref()) {
            source.drops.ignored += 1;
            continue;
        }
        if !source.matches(verified.event_type.as_deref(), &d.body) {
            source.drops.ignored += 1;
            continue;
        }
        passed.entry(d.source_id).or_default().push((verified, d));
    }
    let batches: Vec<SourceBatch<'_>> = sources
        .values()
        .map(|s| {
            let row = &s.locked.row;
            let events = passed
                .get(&row.id)
                .into_iter()
                .flatten()
                .map(|(v, d)| NewEvent {
                    source_id: row.id,
                    workspace_id: row.workspace_id,
                    delivery_id: v.delivery_id.as_deref(),
                    event_type: v.event_type.as_deref(),
                    body: &d.body,
                    automation_id: row.automation_id,
                    now: d.received_at,
                })
                .collect();
            SourceBatch {
                source: &s.locked,
                events,
                drops: s.drops,
            }
        })
        .collect();
    let results = tx
        .accept_batch(&batches, now, ctx.automations.job_attempts)
        .await?;
    let mut enqueued = false;
    let mut new: Vec<(Uuid, Vec<&[u8]>)> = Vec::new();
    for (b, outcome) in batches.iter().zip(&results) {
        let bodies: Vec<&[u8]> = b
            .events
            .iter()
            .zip(outcome)
            .filter(|(_, a)| matches!(a, Accepted::New(_)))
            .map(|(e, _)| e.body)
            .collect();
        if !bodies.is_empty() {
            enqueued |= b.source.row.automation_id.is_some();
            new.push((b.source.row.id, bodies));
        }
    }
    if !new.is_empty() && ctx.license.feature(Feature::Bots) {
        let ids: Vec<Uuid> = new.iter().map(|(id, _)| *id).collect();
        let with_bots = tx.sources_with_bots(&ids).await?;
        for (id, bodies) in new.iter().filter(|(id, _)| with_bots.contains(id)) {
            enqueued |= crate::bots::from_webhook(ctx, tx, *id, bodies, now).await?;
        }
    }
    for source in sources.values() {
        let row = &source.locked.row;
        if !source.signature_failures.is_empty() && tx.signature_alert_due(row.id, now).await? {
            let op = Op::new(Actor::system(), Origin::default(), ctx.clock.as_ref());
            let mut event = op.event_with(
                "event_source.signature_failed",
                "event_source",
                Some(row.id.to_string()),
                Outcome::Denied,
                json!({ "failures": source.signature_failures.len(),
                        "reason": source.signature_failures[0],
                        "token": row.token_prefix }),
            );
            event.workspace_id = Some(row.workspace_id.to_string());
            tx.tx().record(&ctx.audit_key, &event).await?;
        }
    }
    Ok(enqueued)
}
