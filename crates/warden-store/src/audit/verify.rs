//! Verifying the audit chain: walking it in sequence order (streaming, one row of lookahead)
//! and naming the first event edited, deleted, inserted or reordered; checking every signed
//! checkpoint on the way; writing checkpoints and purging only what one covers.

use std::fmt;

use futures_util::TryStreamExt;
use warden_domain::clock::Clock;

use super::query::{CHAIN_BATCH_FROM, CHAIN_SQL, COLUMNS, SQLITE_CHAIN_SQL, sqlite_batch};
use super::{ChainKey, Checkpoint, CheckpointSigner, HASH_LEN, Row, sql};
use crate::db::on_tx;
use crate::{Store, StoreError};

/// How the chain was broken, at the first event where it breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// The event's content no longer matches its hash.
    Edited,
    /// Events are missing from here on (rows deleted).
    Deleted,
    /// An event that was never recorded was added here.
    Inserted,
    /// The event was recorded at another position.
    Reordered,
    /// An event waiting to be chained does not carry the server's seal: it was edited, or
    /// inserted by someone without the key. Its number is the one it would have taken.
    Unsealed,
    /// A checkpoint for this event does not carry the server's signature, or vouches for
    /// another hash than the event's (or for an event that does not exist).
    Checkpoint,
}

impl fmt::Display for Tamper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Edited => "edited",
            Self::Deleted => "deleted",
            Self::Inserted => "inserted",
            Self::Reordered => "reordered",
            Self::Unsealed => "unsealed",
            Self::Checkpoint => "vouched for by a forged checkpoint",
        })
    }
}

/// The result of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Events checked before the first break (or all of them).
    pub checked: u64,
    /// The first break: the sequence number where it shows, and what happened there.
    pub broken: Option<(i64, Tamper)>,
}

/// How far to look for an event's original position when its hash does not match.
const REORDER_WINDOW: i64 = 64;

/// Where a verification starts: the first sequence number to check and the hash the event
/// before it must have ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// The next sequence number expected.
    pub next_seq: i64,
    /// The hash of the event before it (zeros before the first event).
    pub prev_hash: Vec<u8>,
}

impl Anchor {
    /// The start of the chain.
    pub fn genesis() -> Self {
        Self {
            next_seq: 1,
            prev_hash: vec![0; HASH_LEN],
        }
    }
}

impl Store {
    /// Walks the whole audit chain in sequence order, streaming (memory stays flat), and
    /// reports the first event that was edited, deleted, inserted or reordered; then checks
    /// the seals of the events still waiting to be chained. When old
    /// events were purged, the walk starts from the signed checkpoint just before the oldest
    /// remaining event, which must verify against `checkpoint_key`.
    pub async fn verify_audit(
        &self,
        key: &ChainKey,
        checkpoint_key: &[u8],
    ) -> Result<Verification, StoreError> {
        let mut tx = self.begin_read().await?;
        let first = on_tx!(tx, |c| sqlx::query_scalar::<_, Option<i64>>(
            "SELECT MIN(seq) FROM audit_events"
        )
        .fetch_one(c)
        .await)?;
        let head = on_tx!(tx, |c| sqlx::query_scalar::<_, i64>(
            "SELECT seq FROM audit_head WHERE id = 1"
        )
        .fetch_one(c)
        .await)?;
        // Purged up to here: the oldest remaining event, or everything when none remain.
        let purged_through = first.map_or(head, |f| f - 1);
        let anchor = if purged_through == 0 {
            Anchor::genesis()
        } else {
            let cp = on_tx!(tx, |c| {
                sqlx::query_as::<_, Checkpoint>(
                "SELECT seq, hash, signed_at_us, signature FROM audit_checkpoints WHERE seq = $1"
            )
            .bind(purged_through)
            .fetch_optional(c)
            .await
            })?;
            match cp {
                Some(cp) if cp.verifies(checkpoint_key) => Anchor {
                    next_seq: cp.seq + 1,
                    prev_hash: cp.hash,
                },
                _ => {
                    tx.commit().await?;
                    return Ok(Verification {
                        checked: 0,
                        broken: Some((1, Tamper::Deleted)),
                    });
                }
            }
        };
        tx.commit().await?;
        // After a purge the anchor's own event is gone by design; the signed checkpoint
        // vouches for it instead.
        let (mut verification, next) = self
            .verify_chain(key, checkpoint_key, &anchor, purged_through > 0)
            .await?;
        if verification.broken.is_none()
            && let (_, Some(_)) = self.audit_pending(key).await?
        {
            verification.broken = Some((next.next_seq, Tamper::Unsealed));
        }
        Ok(verification)
    }

    /// Signs a checkpoint for `anchor` (the last verified event), unless one exists.
    pub async fn write_checkpoint(
        &self,
        signer: &CheckpointSigner,
        anchor: &Anchor,
        clock: &dyn Clock,
    ) -> Result<(), StoreError> {
        let seq = anchor.next_seq - 1;
        if seq < 1 {
            return Ok(());
        }
        let signature = signer.sign(seq, &anchor.prev_hash)?;
        let at = i64::try_from(clock.now().unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX);
        let mut tx = self.begin().await?;
        on_tx!(tx, |c| sqlx::query(
            "INSERT INTO audit_checkpoints (seq, hash, signed_at_us, signature) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (seq) DO NOTHING"
        )
        .bind(seq)
        .bind(&anchor.prev_hash)
        .bind(at)
        .bind(&signature)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        tx.commit().await
    }

    /// Removes events older than `before_us` (unix microseconds), but only up to the newest
    /// checkpoint among them, so verification can start from that checkpoint. Returns how
    /// many events were removed. The database itself refuses any other deletion.
    pub async fn purge_audit(&self, before_us: i64) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let upto = on_tx!(tx, |c| sqlx::query_scalar::<_, Option<i64>>(
            "SELECT MAX(seq) FROM audit_checkpoints WHERE seq <= \
             (SELECT MAX(seq) FROM audit_events WHERE occurred_at_us < $1)"
        )
        .bind(before_us)
        .fetch_one(c)
        .await)?;
        let Some(upto) = upto else {
            tx.rollback().await?;
            return Ok(0);
        };
        let removed = on_tx!(tx, |c| sqlx::query(
            "DELETE FROM audit_events WHERE seq <= $1 AND occurred_at_us < $2"
        )
        .bind(upto)
        .bind(before_us)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        tx.commit().await?;
        Ok(removed)
    }

    /// Verifies the chain from `anchor` (the last event already verified) to the head, in
    /// one snapshot that blocks no writer, and every checkpoint on the way against
    /// `checkpoint_key`. Returns the verification and, when intact, the anchor for the next
    /// run.
    pub async fn verify_audit_from(
        &self,
        key: &ChainKey,
        checkpoint_key: &[u8],
        anchor: &Anchor,
    ) -> Result<(Verification, Anchor), StoreError> {
        self.verify_chain(key, checkpoint_key, anchor, false).await
    }

    async fn verify_chain(
        &self,
        key: &ChainKey,
        checkpoint_key: &[u8],
        anchor: &Anchor,
        anchor_purged: bool,
    ) -> Result<(Verification, Anchor), StoreError> {
        let mut tx = self.begin_read().await?;
        // Read before the events: a checkpoint is written only for an event already there.
        let checkpoints = on_tx!(tx, |c| sqlx::query_as::<_, Checkpoint>(
            "SELECT seq, hash, signed_at_us, signature FROM audit_checkpoints WHERE seq >= $1"
        )
        .bind(anchor.next_seq)
        .fetch_all(c)
        .await)?;
        let mut walker = Walker::new(key, anchor);
        walker.checkpoints = checkpoints.into_iter().map(|c| (c.seq, c)).collect();
        walker.checkpoint_key = checkpoint_key;
        if anchor_purged {
            walker.anchor_seq = None;
        }
        // Start one event early: the anchor event itself must still be there, unchanged
        // (unless the anchor is a checkpoint whose event was purged).
        let from = if anchor_purged {
            anchor.next_seq
        } else {
            (anchor.next_seq - 1).max(1)
        };
        let sql = sql(&CHAIN_SQL, || {
            format!("SELECT {COLUMNS} FROM audit_events WHERE seq >= $1 ORDER BY seq")
        });
        if let crate::db::TxInner::Sqlite(t) = &mut tx.inner {
            let mut after = from - 1;
            'walk: loop {
                let batch =
                    sqlite_batch(t, &SQLITE_CHAIN_SQL, CHAIN_BATCH_FROM, None, after).await?;
                let Some(last) = batch.last().map(|r| r.seq) else {
                    break;
                };
                after = last;
                for row in batch {
                    if walker.push(row) {
                        break 'walk;
                    }
                }
            }
        } else {
            on_tx!(tx, |c| {
                let mut rows = sqlx::query_as::<_, Row>(sql).bind(from).fetch(c);
                while let Some(row) = rows.try_next().await? {
                    if walker.push(row) {
                        break;
                    }
                }
            });
        }
        let head = on_tx!(tx, |c| sqlx::query_as::<_, (i64, Vec<u8>)>(
            "SELECT seq, hash FROM audit_head WHERE id = 1"
        )
        .fetch_one(c)
        .await)?;
        tx.commit().await?;
        Ok(walker.finish(head))
    }
}

/// Walks rows in sequence order with one row of lookahead (needed to tell an inserted row
/// from an edited one).
struct Walker<'k> {
    key: &'k ChainKey,
    expected_seq: i64,
    expected_prev: Vec<u8>,
    pending: Option<Row>,
    checked: u64,
    broken: Option<(i64, Tamper)>,
    /// The already-verified event the walk starts from, still to be re-checked.
    anchor_seq: Option<i64>,
    /// Checkpoints not yet passed, each checked when the walk reaches its event.
    checkpoints: std::collections::BTreeMap<i64, Checkpoint>,
    checkpoint_key: &'k [u8],
}

impl<'k> Walker<'k> {
    fn new(key: &'k ChainKey, anchor: &Anchor) -> Self {
        Self {
            key,
            expected_seq: anchor.next_seq,
            expected_prev: anchor.prev_hash.clone(),
            pending: None,
            checked: 0,
            broken: None,
            anchor_seq: (anchor.next_seq > 1).then_some(anchor.next_seq - 1),
            checkpoints: std::collections::BTreeMap::new(),
            checkpoint_key: &[],
        }
    }

    fn valid(&self, row: &Row) -> bool {
        self.key.hash(row).as_slice() == row.hash.as_slice()
    }

    fn valid_as(&self, row: &Row, seq: i64) -> bool {
        self.key.hash_as(row, seq).as_slice() == row.hash.as_slice()
    }

    /// Takes the next row; returns true once a break is found.
    fn push(&mut self, row: Row) -> bool {
        if let Some(anchor_seq) = self.anchor_seq.take() {
            if row.seq != anchor_seq {
                self.broken = Some((anchor_seq, Tamper::Deleted));
            } else if row.hash != self.expected_prev || !self.valid(&row) {
                self.broken = Some((anchor_seq, Tamper::Edited));
            }
            return self.broken.is_some();
        }
        if let Some(current) = self.pending.take() {
            self.judge(current, Some(&row));
            if self.broken.is_some() {
                return true;
            }
        }
        self.pending = Some(row);
        false
    }

    fn judge(&mut self, row: Row, next: Option<&Row>) {
        if row.seq > self.expected_seq {
            self.broken = Some((self.expected_seq, Tamper::Deleted));
            return;
        }
        if !self.valid(&row) {
            self.broken = Some((row.seq, self.classify(&row, next)));
            return;
        }
        if row.prev_hash != self.expected_prev {
            self.broken = Some((row.seq, Tamper::Reordered));
            return;
        }
        if let Some(cp) = self.checkpoints.remove(&row.seq)
            && (cp.hash != row.hash || !cp.verifies(self.checkpoint_key))
        {
            self.broken = Some((row.seq, Tamper::Checkpoint));
            return;
        }
        self.checked += 1;
        self.expected_seq = row.seq + 1;
        self.expected_prev = row.hash;
    }

    /// What happened to a row whose hash does not match, judged from its neighbour.
    fn classify(&self, row: &Row, next: Option<&Row>) -> Tamper {
        // A genuine event recorded at another position?
        let moved_by = (1..=REORDER_WINDOW)
            .flat_map(|d| [d, -d])
            .find(|d| self.valid_as(row, row.seq + d));
        match moved_by {
            // Everything after moved down by the same amount: rows were deleted and the rest
            // renumbered.
            Some(d) if d > 0 && next.is_none_or(|n| self.valid_as(n, n.seq + d)) => Tamper::Deleted,
            Some(_) => Tamper::Reordered,
            None => {
                // Not a genuine event. If the chain continues past it as if it were not
                // there, it was added; otherwise a genuine event was altered.
                let skipped = next.is_some_and(|n| {
                    n.prev_hash == self.expected_prev
                        && (self.valid(n) || self.valid_as(n, n.seq - 1))
                });
                if skipped {
                    Tamper::Inserted
                } else {
                    Tamper::Edited
                }
            }
        }
    }

    /// Ends the walk; `head` is the last sequence number handed out and the newest hash.
    fn finish(mut self, head: (i64, Vec<u8>)) -> (Verification, Anchor) {
        let (head_seq, head_hash) = head;
        if let Some(anchor_seq) = self.anchor_seq.take() {
            self.broken = Some((anchor_seq, Tamper::Deleted));
        }
        if self.broken.is_none()
            && let Some(last) = self.pending.take()
        {
            if !self.valid(&last) && last.seq > head_seq && last.seq == self.expected_seq {
                // Beyond the recorded head and not chained: added after the fact.
                self.broken = Some((last.seq, Tamper::Inserted));
            } else {
                self.judge(last, None);
            }
        }
        if self.broken.is_none() {
            if head_seq >= self.expected_seq || head_hash != self.expected_prev {
                // Newer events were handed out than remain, or the newest was replaced.
                self.broken = Some((self.expected_seq.min(head_seq.max(1)), Tamper::Deleted));
            } else if head_seq != self.expected_seq - 1 {
                self.broken = Some((head_seq + 1, Tamper::Inserted));
            } else if let Some(&seq) = self.checkpoints.keys().next() {
                // A checkpoint for an event that was never written.
                self.broken = Some((seq, Tamper::Checkpoint));
            }
        }
        (
            Verification {
                checked: self.checked,
                broken: self.broken,
            },
            Anchor {
                next_seq: self.expected_seq,
                prev_hash: self.expected_prev,
            },
        )
    }
}
