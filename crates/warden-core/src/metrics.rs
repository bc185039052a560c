//! What a scrape of `/metrics` reads: the installation's counts (hosts connected, sessions
//! running, the work queue, the audit chain's backlog), this node's view (its connections, its
//! database pool, how far it verified the chain) and the licence's days left. Counts only,
//! never a row, a name or a secret: whoever holds the metrics token sees no tenant's data.

use warden_domain::license::Standing;
use warden_store::gauges::{Gauges, PoolStats};

use crate::Ctx;
use crate::error::CoreResult;

/// One scrape's readings.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Counts across the installation.
    pub installation: Gauges,
    /// This node's database pool.
    pub pool: PoolStats,
    /// Hosts connected to this node.
    pub hosts_on_node: usize,
    /// The audit chain as this node last verified it.
    pub audit: AuditReading,
    /// The licence, when this build enforces one.
    pub license: Option<LicenseReading>,
    /// Alert incidents by kind: (kind, raised ever, seen in the last day), every kind listed.
    pub alerts: Vec<(&'static str, i64, i64)>,
    /// The data key version this node seals with.
    pub keyring_version: u32,
    /// Values a master-key rotation has still to re-encrypt (0 with none under way).
    pub reencryption_remaining: i64,
}

/// The audit chain, as numbers.
#[derive(Debug, Clone, Copy)]
pub struct AuditReading {
    /// Whether the last verification found the chain intact (`false` when broken; `true`
    /// before the first check).
    pub intact: bool,
    /// The last sequence number this node verified.
    pub verified_through: i64,
    /// Chained events this node has not verified yet.
    pub unverified: i64,
}

/// The licence, as numbers.
#[derive(Debug, Clone, Copy)]
pub struct LicenseReading {
    /// Whether it is valid now (a grace period counts as valid).
    pub valid: bool,
    /// Days until it expires (negative once past), when one is installed.
    pub days_left: Option<f64>,
}

/// Reads the snapshot (one read transaction; the rest is in memory).
pub async fn snapshot(ctx: &Ctx) -> CoreResult<Snapshot> {
    let installation = ctx.store.gauges().await?;
    let status = ctx.audit_monitor.status();
    let now = crate::license::unix_now(ctx.clock.as_ref());
    let license = ctx.license.standing(now).map(|standing| LicenseReading {
        valid: !matches!(standing, Standing::Invalid(_)),
        days_left: ctx
            .license
            .installed()
            .map(|i| (i.claims.exp - now) as f64 / 86_400.0),
    });
    let counts = ctx
        .store
        .alert_counts(now - crate::alerts::ACTIVE_FOR_SECS)
        .await?;
    let alerts = warden_domain::alerts::AlertKind::ALL
        .into_iter()
        .map(|k| {
            let c = counts.iter().find(|c| c.kind == k.as_str());
            (
                k.as_str(),
                c.map_or(0, |c| c.incidents),
                c.map_or(0, |c| c.active),
            )
        })
        .collect();
    let keyring = crate::encryption::status(&ctx.store, &ctx.keyring).await?;
    Ok(Snapshot {
        alerts,
        keyring_version: keyring.version,
        reencryption_remaining: keyring.rotation.map_or(0, |r| r.remaining),
        pool: ctx.store.pool_stats(),
        hosts_on_node: ctx.connections.count(),
        audit: AuditReading {
            intact: status.status != "broken",
            verified_through: status.verified_through,
            unverified: (installation.audit_head - status.verified_through).max(0),
        },
        license,
        installation,
    })
}
