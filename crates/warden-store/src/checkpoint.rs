//! SQLite's write-ahead log, copied into the database off the write path.
//!
//! Left to itself, SQLite checkpoints inside the commit that takes the log past 1,000 pages:
//! that commit copies the log into the database file and syncs it before it returns, while
//! every writer of this process waits behind it at the write gate — so, under a steady
//! stream of writes, one commit in a few hundred takes tens of milliseconds and so do the
//! writes queued behind it. Here no connection checkpoints on its own
//! (`wal_autocheckpoint = 0`); a task of the store's runs a `PASSIVE` checkpoint every
//! [`EVERY`] after something was written, beside readers and writers, never waiting for
//! either. The log starts again from its beginning only when a writer finds all of it
//! copied, which a stream of writes may never let a checkpoint beside it finish; so once the
//! log holds more than [`RESTART_PAGES`], the checkpointer takes a turn at the write gate and
//! copies the rest (what was written since its last pass) with this process's writers
//! waiting, and the next writer starts the log again. The log stays bounded as before, and
//! writers wait for a remainder, less often, instead of for the whole copy.

use std::time::{Duration, Instant};

use sqlx::SqlitePool;

use crate::db::WriteGate;

/// How often the log is checkpointed while there are writes.
const EVERY: Duration = Duration::from_millis(250);
/// Pages in the log (4 KiB each) past which the rest is copied with writers held back.
const RESTART_PAGES: i64 = 4_096;
/// How often a failing checkpoint is logged at most.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Keeps the store's checkpointer running; it stops when the last store clone is dropped
/// or the pool is closed.
#[derive(Clone)]
pub(crate) struct Checkpointer {
    _alive: tokio::sync::mpsc::Sender<()>,
}

impl Checkpointer {
    /// Starts checkpointing `pool`'s database whenever `gate` has let a writer through
    /// since the last checkpoint, or that one could not copy the whole log.
    pub(crate) fn spawn(pool: SqlitePool, gate: WriteGate) -> Self {
        let (alive, mut gone) = tokio::sync::mpsc::channel::<()>(1);
        tokio::spawn(async move {
            let mut seen = gate.turns();
            let mut behind = false;
            let mut warned: Option<Instant> = None;
            let mut ticks = tokio::time::interval(EVERY);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = gone.recv() => break,
                    _ = ticks.tick() => {}
                }
                let turns = gate.turns();
                if turns == seen && !behind {
                    continue;
                }
                seen = turns;
                if pool.is_closed() {
                    break;
                }
                let pass = match passive(&pool).await {
                    Ok((log, _)) if log > RESTART_PAGES => match gate.enter().await {
                        Ok(_turn) => passive(&pool).await,
                        Err(e) => Err(sqlx::Error::Protocol(e.to_string())),
                    },
                    other => other,
                };
                match pass {
                    Ok((log, copied)) => behind = copied < log,
                    Err(e) => {
                        if pool.is_closed() {
                            break;
                        }
                        behind = true;
                        if warned.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
                            warned = Some(Instant::now());
                            tracing::warn!(error = %e, "cannot checkpoint the SQLite write-ahead log; trying again");
                        }
                    }
                }
            }
        });
        Self { _alive: alive }
    }
}

/// One passive checkpoint: the pages in the log and how many of them are copied (-1 and -1
/// when the database is not in WAL mode).
async fn passive(pool: &SqlitePool) -> Result<(i64, i64), sqlx::Error> {
    let (_busy, log, copied): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(pool)
        .await?;
    Ok((log, copied))
}
