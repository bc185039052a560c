//! The host gate: how a host key (or session ticket) presented with a request is
//! authenticated. The server's access guard reads the key and the client address off the
//! request and runs this for every route declared `Access::Host`.
//!
//! Order: client address (socket peer, or `X-Forwarded-For` behind a trusted proxy only),
//! throttle (per address and per key id; closed → 429 before any work), key shape, one indexed
//! lookup by key id, PBKDF2 off the async workers, then the host's and the global allow-list.
//! Every failure answers the same 401, whatever was wrong; failures are counted, and audited
//! sparsely (the 1st, 2nd, 4th, 8th… in a window) so a flood cannot flood the log.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use warden_crypto::host_ticket::{self, TicketKey};
use warden_domain::audit::{Actor, ActorKind, NewEvent, Outcome};
use warden_domain::clock::Clock;
use warden_domain::hosts::{
    AllowList, HOST_AUTH_THROTTLE_ADDRESS, HOST_AUTH_THROTTLE_KEY, HostKind, HostStatus,
    audit_failure,
};
use warden_store::audit::ChainKey;
use warden_store::hosts::TicketCheck;
use warden_store::{Store, StoreError};

use super::HostCaller;
use crate::settings::HostsConfig;

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

    /// The client's address: the socket `peer`, or the `X-Forwarded-For` entry a trusted
    /// proxy added (no proxy is trusted unless configured).
    pub fn client_ip(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        warden_domain::hosts::client_ip(peer, forwarded_for, &self.config.trusted_proxies)
    }

    /// Authenticates the key (or ticket) a host presented from address `ip` (see
    /// [`Self::client_ip`]); `request_id` marks the audit events of failures.
    pub async fn authenticate(
        &self,
        presented_text: &str,
        ip: IpAddr,
        request_id: Option<String>,
    ) -> Result<HostCaller, HostRefusal> {
        let presented_text = presented_text.to_owned();
        let presented = warden_crypto::host_key::parse(&presented_text);
        let key_id = presented.as_ref().map(|p| p.key_id.to_owned());
        let mut scopes = vec![format!("host-ip:{ip}")];
        if let Some(id) = &key_id {
            scopes.push(format!("host-key:{id}"));
        }
        let now_us = crate::identity::now_us(self.clock.as_ref());

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
            self.fail(&scopes, None, (ip, request_id), reason, None, now_us)
                .await?;
            return Err(HostRefusal::Invalid);
        }
        let row = match &key_id {
            Some(id) => self.store.host_by_key_id(id, now_us).await?,
            None => None,
        };
        // Whether the key id's scope counted this attempt already (reserved before PBKDF2).
        let mut reserved_key = false;
        // The host whose right key came from a refused address (an alert).
        let mut refused_network = None;
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
                let grant = crate::costly::host_keys()
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
                    (Some(_), false) => {
                        refused_network = Some(row.id);
                        Err("address not allowed")
                    }
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
        self.fail(
            counted,
            key_id.as_deref(),
            (ip, request_id),
            reason,
            refused_network,
            now_us,
        )
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
        (ip, request_id): (IpAddr, Option<String>),
        reason: &str,
        refused_network: Option<uuid::Uuid>,
        now_us: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.store.begin().await?;
        // A right key from a refused network: one alert per host and day, however many tries.
        if let Some(host) = refused_network {
            let day = now_us.div_euclid(86_400 * 1_000_000);
            crate::alerts::raise_in(
                &mut tx,
                &self.audit_key,
                self.clock.as_ref(),
                warden_domain::alerts::AlertKind::HostRefusedNetwork,
                &format!("host {host} day {day}"),
                json!({ "host_id": host, "client_ip": ip.to_string(), "key_id": key_id }),
            )
            .await?;
        }
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
                request_id,
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
