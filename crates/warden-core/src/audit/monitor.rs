//! The audit trail's background work: a chainer that links committed events into the chain
//! as they arrive, and a monitor that verifies each new segment of the chain, reports a break
//! loudly (error log, `/readyz`, the audit status endpoint), signs a checkpoint for what it
//! verified, and purges events past the retention period.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use tokio::task::JoinHandle;
use warden_domain::clock::Clock;
use warden_store::Store;
use warden_store::audit::{Anchor, ChainKey, Chained, CheckpointSigner, Tamper};

/// How long the chainer lets events gather after a commit wakes it. Each batch holds the
/// chain's lock (on SQLite, the database's write lock) for a few round trips; under load,
/// batches of a few hundred events keep that a small share of the lock's time (measured in
/// BENCHMARKS.md: 20 ms beat 0, 5 and 50).
pub const GATHER: Duration = Duration::from_millis(20);

/// When the monitor runs and what it keeps.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// How often to verify.
    pub every: Duration,
    /// How long events are kept.
    pub retention: Duration,
}

/// What the monitor knows about the chain.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditStatus {
    /// `pending` (not yet checked), `intact` or `broken`.
    pub status: &'static str,
    /// Events verified by this node since it started.
    pub verified_events: u64,
    /// The last sequence number known good.
    pub verified_through: i64,
    /// Where the chain breaks, when it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broken_at: Option<i64>,
    /// What happened there: `edited`, `deleted`, `inserted`, `reordered` or `unsealed` (an
    /// event waiting to be chained without the server's seal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tamper: Option<String>,
    /// When the last check finished (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<String>,
}

#[derive(Debug)]
struct Inner {
    anchor: Anchor,
    verified: u64,
    checked: bool,
    broken: Option<(i64, Tamper)>,
    checked_at: Option<String>,
}

/// Verifies new segments of the audit chain, one run at a time.
#[derive(Debug, Clone)]
pub struct AuditMonitor {
    inner: Arc<Mutex<Inner>>,
}

impl Default for AuditMonitor {
    fn default() -> Self {
        Self::new()
    }
}

impl AuditMonitor {
    /// A monitor that has checked nothing yet.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                anchor: Anchor::genesis(),
                verified: 0,
                checked: false,
                broken: None,
                checked_at: None,
            })),
        }
    }

    /// The current status.
    pub fn status(&self) -> AuditStatus {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        AuditStatus {
            status: match (inner.checked, inner.broken) {
                (_, Some(_)) => "broken",
                (true, None) => "intact",
                (false, None) => "pending",
            },
            verified_events: inner.verified,
            verified_through: inner.anchor.next_seq - 1,
            broken_at: inner.broken.map(|(seq, _)| seq),
            tamper: inner.broken.map(|(_, t)| t.to_string()),
            checked_at: inner.checked_at.clone(),
        }
    }

    /// Verifies everything written since the last run. Once broken, stays broken (the
    /// operator runs `warden audit verify` and investigates).
    pub async fn check(
        &self,
        store: &Store,
        key: &ChainKey,
        checkpoint_key: &[u8],
        clock: &dyn Clock,
    ) {
        let anchor = {
            let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            if inner.broken.is_some() {
                return;
            }
            inner.anchor.clone()
        };
        match store.verify_audit_from(key, checkpoint_key, &anchor).await {
            Ok((verification, next)) => {
                let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
                inner.checked = true;
                inner.verified += verification.checked;
                inner.checked_at = clock
                    .now()
                    .format(&time::format_description::well_known::Rfc3339)
                    .ok();
                match verification.broken {
                    Some((seq, tamper)) => {
                        tracing::error!(
                            seq,
                            %tamper,
                            "AUDIT CHAIN BROKEN: event {seq} was {tamper}; run `warden audit verify` and investigate"
                        );
                        inner.broken = Some((seq, tamper));
                    }
                    None => inner.anchor = next,
                }
            }
            Err(e) => tracing::warn!(error = %e, "audit verification could not run"),
        }
    }

    /// Links the events waiting to be chained. An event without the server's seal is never
    /// chained; it marks the trail broken (as [`AuditMonitor::check`] does for the chain).
    pub async fn chain(&self, store: &Store, key: &ChainKey) {
        match store.chain_audit(key).await {
            Ok(Chained {
                unsealed: Some((seq, event_id)),
                ..
            }) => {
                let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
                if inner.broken.is_none() {
                    tracing::error!(
                        seq,
                        event_id,
                        "AUDIT TRAIL BROKEN: event {event_id}, found when the chain's next event was {seq}, does not carry the server's seal (edited, or inserted without the key); it is left out of the chain: run `warden audit verify` and investigate"
                    );
                    inner.broken = Some((seq, Tamper::Unsealed));
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "audit events could not be chained"),
        }
    }

    /// Runs [`AuditMonitor::chain`] now, [`GATHER`] after a transaction on this node that
    /// recorded an event commits, and at least every `every` (events committed by a node that
    /// stopped before chaining them), until the task is aborted. Readers of the trail chain
    /// what waits before they read, so the wait only sizes the batches.
    pub fn spawn_chainer(
        &self,
        store: Store,
        key: Arc<ChainKey>,
        every: Duration,
    ) -> JoinHandle<()> {
        let monitor = self.clone();
        tokio::spawn(async move {
            loop {
                monitor.chain(&store, &key).await;
                tokio::select! {
                    () = store.audit_recorded() => tokio::time::sleep(GATHER).await,
                    () = tokio::time::sleep(every) => {}
                }
            }
        })
    }

    /// Signs a checkpoint for everything verified so far, then removes events older than
    /// `retention` up to the newest checkpoint among them. Does nothing once broken.
    pub async fn checkpoint_and_purge(
        &self,
        store: &Store,
        signer: &CheckpointSigner,
        clock: &dyn Clock,
        retention: Duration,
    ) {
        let anchor = {
            let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            if inner.broken.is_some() || !inner.checked {
                return;
            }
            inner.anchor.clone()
        };
        if let Err(e) = store.write_checkpoint(signer, &anchor, clock).await {
            tracing::warn!(error = %e, "could not sign an audit checkpoint");
            return;
        }
        let retention_us = i64::try_from(retention.as_micros()).unwrap_or(i64::MAX);
        let now_us = i64::try_from(clock.now().unix_timestamp_nanos() / 1_000).unwrap_or(0);
        match store.purge_audit(now_us.saturating_sub(retention_us)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "purged audit events past retention"),
            Err(e) => tracing::warn!(error = %e, "audit retention purge failed"),
        }
    }

    /// Runs [`AuditMonitor::check`] and then [`AuditMonitor::checkpoint_and_purge`] now and
    /// on every tick of `schedule`, until the task is aborted.
    pub fn spawn(
        &self,
        store: Store,
        key: Arc<ChainKey>,
        signer: Arc<CheckpointSigner>,
        clock: Arc<dyn Clock>,
        schedule: Schedule,
    ) -> JoinHandle<()> {
        let monitor = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(schedule.every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                monitor
                    .check(&store, &key, &signer.public_key(), clock.as_ref())
                    .await;
                monitor
                    .checkpoint_and_purge(&store, &signer, clock.as_ref(), schedule.retention)
                    .await;
            }
        })
    }
}
