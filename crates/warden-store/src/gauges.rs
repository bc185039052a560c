//! What `/metrics` samples at scrape time: counts across the whole installation, never a row.
//! One read transaction that sees every host (the hosts scope) and blocks no writer.

use crate::StoreError;
use crate::db::on_tx;

/// Counts across the installation, as one snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Hosts connected to some node.
    pub hosts_connected: i64,
    /// Sessions running on a host.
    pub sessions_running: i64,
    /// Sessions waiting for a host to start them.
    pub sessions_waiting: i64,
    /// Jobs waiting in the work queue (due or not).
    pub jobs_queued: i64,
    /// Jobs leased to a node.
    pub jobs_running: i64,
    /// Jobs out of attempts.
    pub jobs_dead: i64,
    /// Audit events committed but not yet linked into the chain.
    pub audit_unchained: i64,
    /// The chain's last sequence number (0 when empty).
    pub audit_head: i64,
}

/// The connection pool as this node sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections open.
    pub open: u32,
    /// Of those, idle.
    pub idle: u32,
    /// The most the pool opens.
    pub max: u32,
}

impl crate::Store {
    /// The installation's counts (see [`Gauges`]).
    pub async fn gauges(&self) -> Result<Gauges, StoreError> {
        let mut tx = self.begin_hosts_read().await?;
        let row = on_tx!(tx, |c| sqlx::query_as::<
            _,
            (i64, i64, i64, i64, i64, i64, i64, i64),
        >(
            "SELECT \
             (SELECT COUNT(*) FROM hosts WHERE connected_node IS NOT NULL), \
             (SELECT COUNT(*) FROM agent_sessions WHERE status = 'running'), \
             (SELECT COUNT(*) FROM agent_sessions WHERE status = 'waiting'), \
             (SELECT COUNT(*) FROM jobs WHERE status = 'queued'), \
             (SELECT COUNT(*) FROM jobs WHERE status = 'running'), \
             (SELECT COUNT(*) FROM jobs WHERE status = 'dead'), \
             (SELECT COUNT(*) FROM audit_pending), \
             (SELECT COALESCE(MAX(seq), 0) FROM audit_events)"
        )
        .fetch_one(c)
        .await)?;
        tx.commit().await?;
        Ok(Gauges {
            hosts_connected: row.0,
            sessions_running: row.1,
            sessions_waiting: row.2,
            jobs_queued: row.3,
            jobs_running: row.4,
            jobs_dead: row.5,
            audit_unchained: row.6,
            audit_head: row.7,
        })
    }
}
