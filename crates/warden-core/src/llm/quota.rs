//! Quotas, reserved before a call and settled after it, shared by every node.
//!
//! The shared counters live in the database (`llm_counters`): a node takes from them what a
//! call needs — one request, its input estimate plus `max_tokens`, the cost of both — and,
//! while the limit is far, a little more (a lease), which it keeps in memory for the next
//! calls. So most calls touch no database, and the counters never grant more than the limit:
//! what every node holds plus what was used is at most the limit. Near the limit the leases
//! shrink to nothing and each call takes exactly its need.
//!
//! After the call the difference between the reservation and the usage reported goes back to
//! the node's lease; usage beyond the reservation (an upstream that ignored `max_tokens`) is
//! charged to the counters at once, so the next call sees it. A lease unused for a while is
//! given back so other nodes can have it.
//!
//! Fail closed: when a call needs the database and it cannot be reached, the call is refused.

use std::collections::HashMap;
use std::sync::Mutex;

use uuid::Uuid;
use warden_store::Store;
use warden_store::llm::{Amounts, CounterKey, Take};

use super::policy::{Limits, Period};

/// A lease is given back after this long unused (µs).
const IDLE_US: i64 = 10_000_000;
/// A lease asks for this share of a limit beyond the need (1/16).
const LEASE_SHARE: i64 = 16;

#[derive(Debug, Default)]
struct Lease {
    held: Amounts,
    used_at: i64,
    ends: i64,
}

/// One counter's part of a reservation.
#[derive(Debug, Clone)]
struct Part {
    key: CounterKey,
    limits: [Option<i64>; 3],
}

/// What a call reserved; settle it with [`Quotas::settle`].
#[derive(Debug, Clone, Default)]
pub struct Reservation {
    parts: Vec<Part>,
    need: Amounts,
}

impl Reservation {
    /// Whether nothing was reserved (no quota applies).
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }
}

/// Why a reservation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Over a limit; retry after this many seconds.
    Over {
        /// Seconds until the tightest period that refused ends.
        retry_after: i64,
    },
    /// The counters cannot be reached: refused (fail closed).
    Unavailable,
}

/// This node's quota state.
#[derive(Debug, Default)]
pub struct Quotas {
    leases: Mutex<HashMap<CounterKey, Lease>>,
}

fn parts_for(
    workspace: Uuid,
    user: Option<Uuid>,
    q: &super::policy::Quotas,
    now: i64,
) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut add = |subject: String, limits: &Limits| {
        if !limits.any() {
            return;
        }
        for p in Period::ALL {
            let l = limits.of(p);
            if l.iter().all(Option::is_none) {
                continue;
            }
            parts.push(Part {
                key: CounterKey {
                    workspace_id: workspace,
                    subject: subject.clone(),
                    period: p.as_str(),
                    start: p.bounds(now).0,
                },
                limits: l,
            });
        }
    };
    add("w".to_owned(), &q.workspace);
    if let Some(u) = user {
        add(u.to_string(), &q.per_user);
    }
    parts
}

fn period_end(key: &CounterKey) -> i64 {
    let p = match key.period {
        "minute" => Period::Minute,
        "day" => Period::Day,
        _ => Period::Month,
    };
    p.bounds(key.start).1
}

fn covers(lease: &Lease, need: &Amounts, limits: &[Option<i64>; 3]) -> bool {
    (0..3).all(|i| limits[i].is_none() || lease.held[i] >= need[i])
}

// The amounts are three parallel arrays (requests, tokens, cost) indexed together.
#[allow(clippy::needless_range_loop)]
impl Quotas {
    /// Reserves `need` (requests, tokens, cost) for a call of `user` in `workspace`.
    pub async fn reserve(
        &self,
        store: &Store,
        workspace: Uuid,
        user: Option<Uuid>,
        quotas: &super::policy::Quotas,
        need: Amounts,
        now: i64,
    ) -> Result<Reservation, Refused> {
        let parts = parts_for(workspace, user, quotas, now);
        if parts.is_empty() {
            return Ok(Reservation::default());
        }
        // Take what the node's leases cover; the rest comes from the database.
        let mut from_db = Vec::new();
        {
            let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
            for (i, part) in parts.iter().enumerate() {
                let lease = leases.entry(part.key.clone()).or_default();
                if covers(lease, &need, &part.limits) {
                    for m in 0..3 {
                        if part.limits[m].is_some() {
                            lease.held[m] -= need[m];
                        }
                    }
                    lease.used_at = now;
                } else {
                    from_db.push(i);
                }
            }
        }
        if from_db.is_empty() {
            return Ok(Reservation { parts, need });
        }
        let takes: Vec<Take> = from_db
            .iter()
            .map(|&i| {
                let part = &parts[i];
                let mut want = need;
                for m in 0..3 {
                    if let Some(l) = part.limits[m] {
                        want[m] = need[m] + l / LEASE_SHARE;
                    }
                }
                Take {
                    key: part.key.clone(),
                    need,
                    want,
                    limits: part.limits,
                }
            })
            .collect();
        let taken = async {
            let mut tx = store.begin_llm().await?;
            let granted = tx.take(&takes).await?;
            if granted.is_some() {
                tx.commit().await?;
            }
            Ok::<_, warden_store::StoreError>(granted)
        }
        .await;
        let granted = match taken {
            Ok(Some(g)) => Some(g),
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, "quota counters unreachable; refusing the call");
                self.give_back_local(&parts, &from_db, &need);
                return Err(Refused::Unavailable);
            }
        };
        let Some(granted) = granted else {
            // Calls running at the same time may have filled this node's leases meanwhile:
            // what they hold is this node's to use before refusing.
            if self.take_local(&parts, &from_db, &need, now) {
                return Ok(Reservation { parts, need });
            }
            self.give_back_local(&parts, &from_db, &need);
            let retry_after = from_db
                .iter()
                .map(|&i| (period_end(&parts[i].key) - now + 999_999) / 1_000_000)
                .min()
                .unwrap_or(60)
                .max(1);
            return Err(Refused::Over { retry_after });
        };
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        for (&i, g) in from_db.iter().zip(granted) {
            let lease = leases.entry(parts[i].key.clone()).or_default();
            for m in 0..3 {
                if parts[i].limits[m].is_some() {
                    lease.held[m] += g[m] - need[m];
                }
            }
            lease.used_at = now;
            lease.ends = period_end(&parts[i].key);
        }
        Ok(Reservation { parts, need })
    }

    /// Takes the parts `from_db` from this node's leases, all or none.
    fn take_local(&self, parts: &[Part], from_db: &[usize], need: &Amounts, now: i64) -> bool {
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        let all = from_db.iter().all(|&i| {
            leases
                .get(&parts[i].key)
                .is_some_and(|l| covers(l, need, &parts[i].limits))
        });
        if !all {
            return false;
        }
        for &i in from_db {
            if let Some(lease) = leases.get_mut(&parts[i].key) {
                for m in 0..3 {
                    if parts[i].limits[m].is_some() {
                        lease.held[m] -= need[m];
                    }
                }
                lease.used_at = now;
            }
        }
        true
    }

    /// Undoes the local part of a reservation the database refused.
    fn give_back_local(&self, parts: &[Part], from_db: &[usize], need: &Amounts) {
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        for (i, part) in parts.iter().enumerate() {
            if from_db.contains(&i) {
                continue;
            }
            if let Some(lease) = leases.get_mut(&part.key) {
                for m in 0..3 {
                    if part.limits[m].is_some() {
                        lease.held[m] += need[m];
                    }
                }
            }
        }
    }

    /// Settles a reservation with what the call used: the rest goes back to this node's
    /// leases; use beyond the reservation is charged to the shared counters.
    pub async fn settle(&self, store: &Store, r: &Reservation, used: Amounts) {
        if r.is_empty() {
            return;
        }
        let mut excess: Vec<(CounterKey, Amounts)> = Vec::new();
        {
            let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
            for part in &r.parts {
                let lease = leases.entry(part.key.clone()).or_default();
                let mut over = [0i64; 3];
                for m in 0..3 {
                    if part.limits[m].is_none() {
                        continue;
                    }
                    let back = r.need[m] - used[m];
                    if back >= 0 || lease.held[m] >= -back {
                        lease.held[m] += back;
                    } else {
                        over[m] = -back - lease.held[m].max(0);
                        lease.held[m] = lease.held[m].min(0);
                    }
                }
                if over.iter().any(|&x| x > 0) {
                    excess.push((part.key.clone(), over));
                }
            }
        }
        if excess.is_empty() {
            return;
        }
        let charged = async {
            let mut tx = store.begin_llm().await?;
            for (k, a) in &excess {
                tx.add(k, *a).await?;
            }
            tx.commit().await
        }
        .await;
        if let Err(e) = charged {
            tracing::error!(error = %e, "could not charge usage beyond a reservation");
        }
    }

    /// Gives back leases unused for a while or whose period ended (the latter are simply
    /// dropped: their counters no longer matter).
    pub async fn release_idle(&self, store: &Store, now: i64) {
        let mut back: Vec<(CounterKey, Amounts)> = Vec::new();
        {
            let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
            leases.retain(|k, l| {
                if l.ends != 0 && l.ends <= now {
                    return false;
                }
                if now - l.used_at >= IDLE_US {
                    if l.held.iter().any(|&x| x > 0) {
                        back.push((k.clone(), l.held.map(|x| -x.max(0))));
                    }
                    return false;
                }
                true
            });
        }
        if back.is_empty() {
            return;
        }
        let given = async {
            let mut tx = store.begin_llm().await?;
            for (k, a) in &back {
                tx.add(k, *a).await?;
            }
            tx.commit().await
        }
        .await;
        if let Err(e) = given {
            tracing::warn!(error = %e, "could not give back idle quota leases");
        }
    }
}
