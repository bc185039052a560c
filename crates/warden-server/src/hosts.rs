//! The host gate: how a request carrying a host key (`Authorization: Bearer whk_…`) is
//! authenticated. The access guard runs it for every route declared `Access::Host`.
//!
//! Order: client address (socket peer, or `X-Forwarded-For` behind a trusted proxy only),
//! throttle (per address and per key id; closed → 429 before any work), key shape, one indexed
//! lookup by key id, PBKDF2 off the async workers, then the host's and the global allow-list.
//! Every failure answers the same 401, whatever was wrong; failures are counted, and audited
//! sparsely (the 1st, 2nd, 4th, 8th… in a window) so a flood cannot flood the log.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::http::header;
use serde_json::json;
use uuid::Uuid;
use warden_crypto::host_ticket::{self, TicketKey};
use warden_domain::audit::{Actor, ActorKind, NewEvent, Outcome};
use warden_domain::clock::Clock;
use warden_domain::hosts::{
    AllowList, HOST_AUTH_THROTTLE_ADDRESS, HOST_AUTH_THROTTLE_KEY, HostKind, HostStatus,
    audit_failure, client_ip,
};
use warden_store::audit::ChainKey;
use warden_store::hosts::TicketCheck;
use warden_store::{Store, StoreError};

use crate::config::HostsConfig;

pub use warden_core::hosts::HostCaller;

/// Why a host was refused.
#[derive(Debug, thiserror::Error)]
pub enum HostRefusal {
    /// Missing, malformed, unknown, wrong, expired or out-of-network key: 401, one answer.
    #[error("invalid host credentials")]
    Invalid,
    /// Too many failures from this address or for this key id: 429 after this long.
    #[error("too many failed attempts")]
    Throttled(Duration),
    /// The check itself failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Authenticates hosts. See the module documentation.
pub struct HostGate {
    store: Store,
    audit_key: Arc<ChainKey>,
    clock: Arc<dyn Clock>,
    config: HostsConfig,
    tickets: Arc<TicketKey>,
    /// Key ids whose secret is being checked on this node right now.
    checking: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// A key id being checked; forgotten when dropped.
struct Checking<'a> {
    set: &'a std::sync::Mutex<std::collections::HashSet<String>>,
    key_id: String,
}

impl Drop for Checking<'_> {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.key_id);
    }
}

impl std::fmt::Debug for HostGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostGate")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl HostGate {
    /// A gate over `store`, auditing with `audit_key`.
    pub fn new(
        store: Store,
        audit_key: Arc<ChainKey>,
        clock: Arc<dyn Clock>,
        config: HostsConfig,
        tickets: Arc<TicketKey>,
    ) -> Self {
        Self {
            store,
            audit_key,
            clock,
            config,
            tickets,
            checking: std::sync::Mutex::new(std::collections::HashSet::new()),
        }
    }

    /// The ticket path: HMAC and expiry, then the host must still exist, still hold the key
    /// the ticket names, and connect from an allowed address. No PBKDF2.
    async fn by_ticket(
        &self,
        text: &str,
        ip: IpAddr,
        now_us: i64,
    ) -> Result<HostCaller, &'static str> {
        let (row, grant) = match self
            .store
            .host_for_ticket(&self.tickets, text, now_us)
            .await
            .map_err(|_| "ticket lookup failed")?
        {
            TicketCheck::Invalid => return Err("invalid or expired ticket"),
            TicketCheck::Retired => return Err("ticket for a deleted host or a retired key"),
            TicketCheck::Valid(row, grant) => (row, grant),
        };
        let allowed =
            AllowList::from_stored(&row.allow_list).allows(ip) && self.config.allow_list.allows(ip);
        if !allowed {
            return Err("address not allowed");
        }
        Ok(HostCaller {
            host_id: row.id,
            kind: HostKind::parse(&row.kind).unwrap_or(HostKind::Session),
            status: HostStatus::parse(&row.status).unwrap_or(HostStatus::Rejected),
            key_id: grant.key_id().to_owned(),
            ip,
            grant,
        })
    }

    /// Authenticates the request's host key. `peer` is the socket peer.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
    ) -> Result<HostCaller, HostRefusal> {
        let Some(peer) = peer else {
            return Err(HostRefusal::Invalid);
        };
        let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
        let ip = client_ip(peer, forwarded, &self.config.trusted_proxies);
        let presented_text = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default()
            .to_owned();
        let presented = warden_crypto::host_key::parse(&presented_text);
        let key_id = presented.as_ref().map(|p| p.key_id.to_owned());
        let mut scopes = vec![format!("host-ip:{ip}")];
        if let Some(id) = &key_id {
            scopes.push(format!("host-key:{id}"));
        }
        let now_us = warden_core::identity::now_us(self.clock.as_ref());

        let mut tx = self.store.begin_read().await?;
        let scope_refs: Vec<&str> = scopes.iter().map(String::as_str).collect();
        let blocked_until = tx.throttle_blocked_until(&scope_refs).await?;
        tx.commit().await?;
        if blocked_until > now_us {
            let wait = u64::try_from(blocked_until - now_us).unwrap_or(1);
            return Err(HostRefusal::Throttled(Duration::from_micros(wait)));
        }

        if presented_text.starts_with(host_ticket::PREFIX) {
            let reason = match self.by_ticket(&presented_text, ip, now_us).await {
                Ok(caller) => return Ok(caller),
                Err(reason) => reason,
            };
            self.fail(&scopes, None, ip, reason, now_us).await?;
            return Err(HostRefusal::Invalid);
        }
        let row = match &key_id {
            Some(id) => self.store.host_by_key_id(id, now_us).await?,
            None => None,
        };
        // Whether the key id's scope counted this attempt already (reserved before PBKDF2).
        let mut reserved_key = false;
        let verdict: Result<HostCaller, &str> = match row {
            None if presented.is_some() => Err("unknown key"),
            None => Err("malformed key"),
            Some(row) => {
                // One check per key id at a time on this node, and the attempt reserved
                // before the PBKDF2 work, so parallel guesses get no further than serial
                // ones; the work itself is bounded per process.
                let id = key_id.clone().unwrap_or_default();
                let Some(_checking) = self.checking(&id) else {
                    return Err(HostRefusal::Throttled(Duration::from_secs(1)));
                };
                let reserved = [format!("host-pair:{ip}|{id}"), format!("host-key:{id}")];
                self.reserve(&reserved, now_us).await?;
                reserved_key = true;
                let (checked, text) = (row.clone(), presented_text.clone());
                let grant = warden_core::costly::host_keys()
                    .run(move || checked.verify(&text))
                    .await
                    .map_err(|_| HostRefusal::Throttled(Duration::from_secs(1)))?;
                if grant.is_some() {
                    let mut tx = self.store.begin().await?;
                    for scope in &reserved {
                        tx.throttle_refund(scope).await?;
                    }
                    tx.commit().await?;
                }
                let allowed = AllowList::from_stored(&row.allow_list).allows(ip)
                    && self.config.allow_list.allows(ip);
                match (grant, allowed) {
                    (None, _) => Err("wrong secret"),
                    (Some(_), false) => Err("address not allowed"),
                    (Some(grant), true) => Ok(HostCaller {
                        host_id: row.id,
                        kind: HostKind::parse(&row.kind).unwrap_or(HostKind::Session),
                        // An unreadable status grants nothing.
                        status: HostStatus::parse(&row.status).unwrap_or(HostStatus::Rejected),
                        key_id: grant.key_id().to_owned(),
                        ip,
                        grant,
                    }),
                }
            }
        };
        let reason = match verdict {
            Ok(caller) => return Ok(caller),
            Err(reason) => reason,
        };
        let counted = if reserved_key {
            &scopes[..1]
        } else {
            &scopes[..]
        };
        self.fail(counted, key_id.as_deref(), ip, reason, now_us)
            .await?;
        Err(HostRefusal::Invalid)
    }

    /// Marks `key_id` as being checked on this node; `None` if it already is.
    fn checking(&self, key_id: &str) -> Option<Checking<'_>> {
        let mut set = self
            .checking
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        set.insert(key_id.to_owned()).then(|| Checking {
            set: &self.checking,
            key_id: key_id.to_owned(),
        })
    }

    /// Reserves one attempt in each scope (pair of address and key id, then key id) before
    /// the PBKDF2 check; a closed scope refuses it uncounted.
    async fn reserve(&self, scopes: &[String; 2], now_us: i64) -> Result<(), HostRefusal> {
        let mut tx = self.store.begin().await?;
        let mut blocked_until = 0;
        for (scope, rule) in scopes
            .iter()
            .zip([HOST_AUTH_THROTTLE_ADDRESS, HOST_AUTH_THROTTLE_KEY])
        {
            if let Some(until) = tx
                .throttle_reserve(scope, now_us, micros(rule.window), |n| {
                    micros(rule.delay_after(n))
                })
                .await?
            {
                blocked_until = until;
                break;
            }
        }
        if blocked_until > now_us {
            tx.rollback().await?;
            let wait = u64::try_from(blocked_until - now_us).unwrap_or(1);
            return Err(HostRefusal::Throttled(Duration::from_micros(wait)));
        }
        tx.commit().await?;
        Ok(())
    }

    async fn fail(
        &self,
        scopes: &[String],
        key_id: Option<&str>,
        ip: IpAddr,
        reason: &str,
        now_us: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.store.begin().await?;
        let mut counts = Vec::new();
        for (scope, rule) in scopes
            .iter()
            .zip([HOST_AUTH_THROTTLE_ADDRESS, HOST_AUTH_THROTTLE_KEY])
        {
            let n = tx
                .throttle_fail(scope, now_us, micros(rule.window), |n| {
                    micros(rule.delay_after(n))
                })
                .await?;
            counts.push(n);
        }
        let from_ip = counts.first().copied().unwrap_or(1);
        if counts.iter().any(|n| audit_failure(*n)) {
            let event = NewEvent {
                at: self.clock.now(),
                actor: Actor {
                    kind: ActorKind::Host,
                    id: None,
                },
                workspace_id: None,
                action: warden_domain::audit::Action::from_static("host.auth_failed"),
                resource_type: "host".to_owned(),
                resource_id: None,
                outcome: Outcome::Failed,
                client_ip: Some(ip),
                user_agent: None,
                request_id: crate::logging::current_request_id().map(|id| id.to_string()),
                duration_ms: 0,
                summary: json!({ "reason": reason, "key_id": key_id,
                                 "failures_from_address": from_ip,
                                 "failures_for_key": counts.get(1) }),
            };
            tx.record(&self.audit_key, &event).await?;
        }
        tx.commit().await
    }
}

/// The name of the host `warden serve` runs in its own process.
pub const LOCAL_HOST_NAME: &str = "local";

/// A key for the host that `warden serve` runs in its own process (the single-machine
/// default): registered and approved by the system on first start, its key rotated at every
/// start (the key lives only in this process's memory), allowed to connect from the loopback
/// only. An administrator may still reject or delete it; a rejected local host stays rejected.
pub async fn local_host_key(
    state: &crate::state::AppState,
) -> Result<zeroize::Zeroizing<String>, String> {
    let key = tokio::task::spawn_blocking(warden_crypto::host_key::generate)
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let now = warden_core::identity::now_us(state.clock.as_ref());
    let meta = crate::audit::request::RequestMeta::none();
    let stored = warden_store::hosts::StoredKey {
        key_id: &key.key_id,
        salt: &key.salt,
        hash: &key.hash,
    };
    let mut tx = state
        .store
        .hosts_as_system()
        .await
        .map_err(|e| e.to_string())?;
    let existing = tx
        .all_hosts()
        .list()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|h| h.name == LOCAL_HOST_NAME && h.created_by.is_nil() && h.workspace_id.is_none());
    let (id, action) = match existing {
        Some(h) => {
            tx.all_hosts()
                .rotate_key(h.id, stored, now, now)
                .await
                .map_err(|e| e.to_string())?;
            (h.id, "host.key_rotated")
        }
        None => {
            let id = Uuid::now_v7();
            let loopback = AllowList::parse(["127.0.0.0/8", "::1"]).map_err(|e| e.to_string())?;
            tx.all_hosts()
                .insert(&warden_store::hosts::NewHost {
                    id,
                    name: LOCAL_HOST_NAME,
                    kind: HostKind::Session.as_str(),
                    allow_list: &loopback.to_stored(),
                    key: stored,
                    created_by: Uuid::nil(),
                    now,
                })
                .await
                .map_err(|e| e.to_string())?;
            tx.all_hosts()
                .decide(id, HostStatus::Approved.as_str(), Uuid::nil(), now)
                .await
                .map_err(|e| e.to_string())?;
            (id, "host.registered")
        }
    };
    let event = meta.event(
        state.clock.now(),
        Actor::system(),
        action,
        "host",
        Some(id.to_string()),
        Outcome::Success,
        json!({ "name": LOCAL_HOST_NAME, "key_id": key.key_id, "local": true }),
    );
    tx.record(&state.audit_key, &event)
        .await
        .map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    Ok(zeroize::Zeroizing::new(key.key.to_string()))
}
