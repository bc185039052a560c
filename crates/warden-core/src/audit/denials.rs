//! Requests the access guard refuses (a forged or expired token, a viewer's write, an outsider
//! probing another workspace, a member reading the audit log) leave a trace: an
//! `access.denied` audit event and an info log line, with the actor when known, the route
//! template, the method, the reason (the problem code) and the request id.
//!
//! A flood must not flood the log: refusals are counted per (who, route, reason) in a window,
//! and only the 1st, 2nd, 4th, 8th… of each is written, carrying the running count. The counts
//! are bounded in memory, and writes run beside the response (never delaying it) with a cap on
//! how many may be in flight.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::json;
use uuid::Uuid;
use warden_domain::audit::{Action, Actor, ActorKind, NewEvent, Outcome};
use warden_domain::clock::Clock;
use warden_domain::hosts::audit_failure;
use warden_store::Store;
use warden_store::audit::ChainKey;

/// How long a count runs before it starts again.
const WINDOW_US: i64 = 3_600_000_000;
/// The most (who, route, reason) keys counted at once.
const MAX_KEYS: usize = 10_000;
/// The most denial events being written at once; past it, events wait for the next power of
/// two (the count carries what was skipped).
const MAX_IN_FLIGHT: usize = 32;

/// One refused request.
#[derive(Debug, Clone)]
pub struct Denial {
    /// The signed-in user, when the credential was valid.
    pub user: Option<Uuid>,
    /// Client address.
    pub ip: Option<IpAddr>,
    /// `User-Agent`.
    pub user_agent: Option<String>,
    /// HTTP method.
    pub method: String,
    /// The route template (`/api/v1/workspaces/{workspace_id}/...`), never the raw path.
    pub route: String,
    /// The problem code answered (`unauthenticated`, `forbidden`, `not-found`, …).
    pub reason: &'static str,
    /// HTTP status answered.
    pub status: u16,
    /// The request's id.
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    who: String,
    route: String,
    reason: &'static str,
}

#[derive(Debug)]
struct Count {
    n: u32,
    since: i64,
}

/// Records refused requests. See the module documentation.
pub struct Denials {
    store: Store,
    audit_key: Arc<ChainKey>,
    clock: Arc<dyn Clock>,
    counts: Mutex<HashMap<Key, Count>>,
    in_flight: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Denials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Denials").finish_non_exhaustive()
    }
}

impl Denials {
    /// A recorder writing to `store`'s audit trail.
    pub fn new(store: Store, audit_key: Arc<ChainKey>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            audit_key,
            clock,
            counts: Mutex::new(HashMap::new()),
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Counts a refusal; logs and audits it when its count is a power of two.
    pub fn record(&self, d: Denial) {
        let now = crate::identity::now_us(self.clock.as_ref());
        let who = match (d.user, d.ip) {
            (Some(user), _) => format!("user:{user}"),
            (None, Some(ip)) => format!("ip:{ip}"),
            (None, None) => "unknown".to_owned(),
        };
        let key = Key {
            who,
            route: d.route.clone(),
            reason: d.reason,
        };
        let n = {
            let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
            if counts.len() >= MAX_KEYS && !counts.contains_key(&key) {
                counts.retain(|_, c| now - c.since < WINDOW_US);
                if counts.len() >= MAX_KEYS {
                    counts.clear();
                }
            }
            let c = counts.entry(key).or_insert(Count { n: 0, since: now });
            if now - c.since >= WINDOW_US {
                *c = Count { n: 0, since: now };
            }
            c.n = c.n.saturating_add(1);
            c.n
        };
        if !audit_failure(n) {
            return;
        }
        tracing::info!(
            user = ?d.user,
            ip = ?d.ip,
            method = %d.method,
            route = %d.route,
            reason = d.reason,
            status = d.status,
            count = n,
            "access denied"
        );
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_IN_FLIGHT {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        let event = NewEvent {
            at: self.clock.now(),
            actor: Actor {
                kind: ActorKind::User,
                id: d.user.map(|u| u.to_string()),
            },
            workspace_id: None,
            action: Action::from_static("access.denied"),
            resource_type: "route".to_owned(),
            resource_id: Some(d.route.clone()),
            outcome: Outcome::Denied,
            client_ip: d.ip,
            user_agent: d.user_agent,
            request_id: d.request_id,
            duration_ms: 0,
            summary: json!({
                "method": d.method,
                "route": d.route,
                "reason": d.reason,
                "status": d.status,
                "count": n,
            }),
        };
        let (store, key, in_flight) = (
            self.store.clone(),
            self.audit_key.clone(),
            self.in_flight.clone(),
        );
        tokio::spawn(async move {
            let written = async {
                let mut tx = store.begin().await?;
                tx.record(&key, &event).await?;
                tx.commit().await
            }
            .await;
            if let Err(e) = written {
                tracing::warn!(error = %e, "cannot record a denied request");
            }
            in_flight.fetch_sub(1, Ordering::AcqRel);
        });
    }
}
