//! Identity: signing keys and access tokens, the verified-token cache, the in-memory
//! revocation state every node keeps in step through the database, and the sign-in, refresh,
//! revocation and user-creation use cases. Reading credentials off a request is the front
//! end's part (the server's `identity` module).
//!
//! Steady state costs no database read per request: a token is verified once (ES256 or RS256) and
//! then found in the cache; revocation is checked against memory on every request. A
//! revocation is written to the database and its log, announced to other nodes (PostgreSQL
//! `NOTIFY`, with polling as a fallback), and the revoking request does not answer until
//! every live node has applied it, so the very next request anywhere is refused.

pub mod account;
pub mod device;
pub mod flows;
pub mod keys;
pub mod links;
pub mod origins;
pub mod passkeys;
pub mod policy;
mod revocation;
pub mod setup;
pub mod tokens;
pub mod users;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use uuid::Uuid;
use warden_crypto::Keyring;
use warden_crypto::jwt::{AccessClaims, LEEWAY_SECS};
use warden_domain::clock::Clock;
use warden_domain::identity::{Principal, ThrottlePolicy};
use warden_domain::organizations::OrgId;
use warden_store::{Store, StoreError};

use crate::settings::AuthConfig;
pub use keys::KeySet;
pub use revocation::Revocations;

/// The `aud` of every access token.
pub const AUDIENCE: &str = "warden-api";
/// Prefix of refresh tokens.
pub const REFRESH_PREFIX: &str = "wrt_";
/// Prefix of setup links.
pub const SETUP_PREFIX: &str = "wsu_";
const CACHE_CAPACITY: usize = 100_000;

struct Cached {
    principal: Principal,
    exp: i64,
    /// The cache generation when verification began; older ones do not count.
    generation: u64,
}

/// Everything identity needs at run time. One per node, shared by every request.
pub struct Identity {
    /// Settings.
    pub config: AuthConfig,
    /// How failed sign-ins are slowed down.
    pub throttle: ThrottlePolicy,
    keys: RwLock<Arc<KeySet>>,
    /// What is revoked, kept in step with the database.
    pub revocations: Revocations,
    cache: RwLock<HashMap<Box<str>, Cached>>,
    /// Verified personal access tokens.
    pub tokens: tokens::TokenCache,
    /// Bumped when a signing key is revoked: verifications begun before no longer count.
    generation: std::sync::atomic::AtomicU64,
    emails: RwLock<HashMap<Uuid, String>>,
    csrf_key: hmac::Key,
    /// Keys the stand-in credential ids a passkey sign-in by email offers for an address
    /// without passkeys (shared by every node, so the answer does not depend on the node).
    decoy_key: hmac::Key,
    /// This node's id in the `nodes` table.
    pub node_id: Uuid,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Loads (or on first boot creates) the signing key and the revocation state.
    pub async fn load(
        store: &Store,
        keyring: &Keyring,
        clock: &dyn Clock,
        config: AuthConfig,
    ) -> Result<Self, StoreError> {
        let keys = keys::load_or_create(store, keyring, clock, &config).await?;
        let csrf =
            warden_store::keyring::random_server_secret(store, keyring, clock, "csrf_key").await?;
        let decoy =
            warden_store::keyring::random_server_secret(store, keyring, clock, "passkey_decoy_key")
                .await?;
        let revocations = Revocations::default();
        revocations
            .load(store, now_us(clock) - retention_us(&config))
            .await?;
        let node_id = Uuid::now_v7();
        // Registered before serving, so a revocation on another node waits for this one
        // from its first request on.
        store
            .node_heartbeat(node_id, revocations.applied(), now_us(clock))
            .await?;
        Ok(Self {
            config,
            throttle: ThrottlePolicy::default(),
            keys: RwLock::new(Arc::new(keys)),
            revocations,
            cache: RwLock::new(HashMap::new()),
            tokens: tokens::TokenCache::default(),
            generation: std::sync::atomic::AtomicU64::new(0),
            emails: RwLock::new(HashMap::new()),
            csrf_key: hmac::Key::new(hmac::HMAC_SHA256, &csrf),
            decoy_key: hmac::Key::new(hmac::HMAC_SHA256, &decoy),
            node_id,
        })
    }

    /// The current key set.
    pub fn keys(&self) -> Arc<KeySet> {
        self.keys
            .read()
            .map(|k| k.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Re-reads the published signing keys (after a rotation on any node).
    pub async fn reload_keys(
        &self,
        store: &Store,
        keyring: &Keyring,
        clock: &dyn Clock,
    ) -> Result<(), StoreError> {
        let fresh = keys::load(store, keyring, clock, &self.config).await?;
        if let Some(fresh) = fresh {
            if fresh.kids() != self.keys().kids() {
                tracing::info!(current = fresh.current_kid(), "signing keys reloaded");
            }
            match self.keys.write() {
                Ok(mut k) => *k = Arc::new(fresh),
                Err(p) => *p.into_inner() = Arc::new(fresh),
            }
        }
        Ok(())
    }

    /// Signs an access token for `principal`. Returns it and its lifetime in seconds.
    pub fn issue_access_token(
        &self,
        principal: &Principal,
        now: time::OffsetDateTime,
    ) -> Result<(String, i64), warden_crypto::jwt::KeyError> {
        let iat = now.unix_timestamp();
        let ttl = i64::try_from(self.config.access_token_ttl.as_secs()).unwrap_or(900);
        let claims = AccessClaims {
            iss: self.config.issuer.clone(),
            aud: AUDIENCE.to_owned(),
            sub: principal.user_id.to_string(),
            sid: principal.session_id.to_string(),
            jti: Uuid::now_v7().to_string(),
            iat,
            exp: iat + ttl,
            nbf: None,
            org: principal
                .organization
                .filter(|o| !o.is_default())
                .map(|o| o.to_string()),
        };
        Ok((self.keys().sign(&claims)?, ttl))
    }

    /// The CSRF token of a session: a MAC of its id, so it needs no storage and cannot be
    /// guessed from outside.
    pub fn csrf_token(&self, session_id: Uuid) -> String {
        B64URL.encode(hmac::sign(&self.csrf_key, session_id.as_bytes()))
    }

    /// The credential id a passkey sign-in by `email` offers when the address has no
    /// passkeys: the same for the same address on every node and every request, so the
    /// answer does not tell whether the account exists or holds passkeys.
    pub fn decoy_credential_id(&self, email: &str) -> Vec<u8> {
        hmac::sign(&self.decoy_key, email.trim().to_lowercase().as_bytes())
            .as_ref()
            .to_vec()
    }

    /// Whether `presented` is the CSRF token of `session_id` (constant time).
    pub fn csrf_matches(&self, session_id: Uuid, presented: &str) -> bool {
        B64URL
            .decode(presented)
            .is_ok_and(|tag| hmac::verify(&self.csrf_key, session_id.as_bytes(), &tag).is_ok())
    }

    /// Verifies an access token (once; then from the cache) and checks revocation (always).
    pub fn verify(&self, token: &str, now: i64) -> Option<Principal> {
        let generation = self.generation.load(std::sync::atomic::Ordering::Acquire);
        let cached = self.cache.read().ok().and_then(|c| {
            c.get(token)
                .filter(|e| now <= e.exp + LEEWAY_SECS && e.generation == generation)
                .map(|e| e.principal.clone())
        });
        let principal = match cached {
            Some(p) => p,
            None => {
                let claims = self.keys().verify(token, now).ok()?;
                let mut principal =
                    Principal::session(claims.sub.parse().ok()?, claims.sid.parse().ok()?);
                if let Some(org) = &claims.org {
                    principal = principal.in_org(OrgId::parse(org)?);
                }
                self.remember(token, &principal, claims.exp, now, generation);
                principal
            }
        };
        if self
            .revocations
            .is_revoked(principal.session_id, principal.user_id)
        {
            return None;
        }
        Some(principal)
    }

    /// Drops every cached verification: the next request re-verifies its token against the
    /// keys published now.
    pub fn flush_verified(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        match self.cache.write() {
            Ok(mut c) => c.clear(),
            Err(p) => p.into_inner().clear(),
        }
    }

    fn remember(&self, token: &str, principal: &Principal, exp: i64, now: i64, generation: u64) {
        let Ok(mut cache) = self.cache.write() else {
            return;
        };
        if cache.len() >= CACHE_CAPACITY {
            cache.retain(|_, e| now <= e.exp + LEEWAY_SECS);
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(
            token.into(),
            Cached {
                principal: principal.clone(),
                exp,
                generation,
            },
        );
    }
}

/// How long revoked sessions are kept in memory: past that, every access token they had
/// has expired.
pub fn retention_us(config: &AuthConfig) -> i64 {
    let secs = i64::try_from(config.access_token_ttl.as_secs()).unwrap_or(3600) + 2 * LEEWAY_SECS;
    secs * 1_000_000
}

/// `now` in Unix microseconds.
pub fn now_us(clock: &dyn Clock) -> i64 {
    crate::op::unix_us(clock.now())
}

/// How long a node's heartbeat stays fresh; a node silent longer is not waited for.
const NODE_STALE_US: i64 = 15_000_000;

/// Waits (up to 10 s) until every live node has applied the revocation log up to `position`.
pub async fn wait_for_nodes(store: &Store, clock: &dyn Clock, position: i64) -> bool {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match store
            .nodes_behind(position, now_us(clock) - NODE_STALE_US)
            .await
        {
            Ok(0) => return true,
            Ok(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Ok(n) => {
                tracing::warn!(nodes = n, "revocation not yet applied by every node");
                return false;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot check other nodes' revocation state");
                return false;
            }
        }
    }
}

impl Identity {
    /// After a revocation commits: applies it here, then waits (up to a few seconds) until
    /// every other live node has applied it too, so the next request anywhere is refused.
    pub async fn propagate(&self, store: &Store, clock: &dyn Clock) {
        let position = match self.revocations.catch_up(store).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "cannot apply revocations");
                return;
            }
        };
        // A revoked signing key is reloaded by the sync task, which reports the position then.
        if !self.revocations.keys_revoked() {
            let _ = store
                .node_heartbeat(self.node_id, position, now_us(clock))
                .await;
        }
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
        loop {
            match store
                .nodes_behind(position, now_us(clock) - NODE_STALE_US)
                .await
            {
                Ok(0) => return,
                Ok(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
                Ok(n) => {
                    tracing::warn!(nodes = n, "revocation not yet applied by every node");
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot check other nodes' revocation state");
                    return;
                }
            }
        }
    }
}

/// Keeps this node's revocation state, heartbeat and signing keys current: wakes on every
/// PostgreSQL revocation notice, and at least once a second.
pub fn spawn_sync(state: std::sync::Arc<crate::Ctx>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let identity = state.identity.clone();
        let store = state.store.clone();
        let mut listener = match store.revocation_listener().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for revocations; polling instead");
                None
            }
        };
        let mut last_beat = i64::MIN;
        let mut last_slow = now_us(state.clock.as_ref());
        loop {
            let wait = std::time::Duration::from_secs(1);
            match listener.as_mut() {
                Some(l) => {
                    if let Ok(Err(e)) = tokio::time::timeout(wait, l.recv()).await {
                        tracing::warn!(error = %e, "revocation listener failed; reconnecting");
                    }
                }
                None => tokio::time::sleep(wait).await,
            }
            let now = now_us(state.clock.as_ref());
            let before = identity.revocations.applied();
            let applied = match identity.revocations.catch_up(&store).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the revocation log");
                    continue;
                }
            };
            if identity.revocations.take_keys_revoked() {
                // Emergency revocation of a signing key: its public key leaves this node's
                // verifier and no verification made with it survives in the cache.
                match identity
                    .reload_keys(&store, &state.keyring, state.clock.as_ref())
                    .await
                {
                    Ok(()) => {
                        identity.flush_verified();
                        tracing::warn!("a signing key was revoked; keys reloaded, cache dropped");
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot reload signing keys after a revocation");
                        identity.flush_verified();
                        // Try again next round; the position is not reported meanwhile.
                        identity.revocations.mark_keys_revoked();
                        continue;
                    }
                }
            }
            if (applied != before || now.saturating_sub(last_beat) > NODE_STALE_US / 3)
                && store
                    .node_heartbeat(identity.node_id, applied, now)
                    .await
                    .is_ok()
            {
                last_beat = now;
            }
            if now - last_slow > keys::RELOAD_SECS * 1_000_000 {
                last_slow = now;
                identity
                    .revocations
                    .prune(now - retention_us(&identity.config));
                let grace = i64::try_from(identity.config.refresh_grace.as_micros()).unwrap_or(0);
                if let Err(e) = store.forget_successors(now - grace).await {
                    tracing::warn!(error = %e, "cannot clear expired refresh successors");
                }
                let window = identity
                    .throttle
                    .pair
                    .window
                    .max(identity.throttle.client.window);
                let window = i64::try_from(window.as_micros()).unwrap_or(i64::MAX);
                if let Err(e) = store.prune_identity(now, window).await {
                    tracing::warn!(error = %e, "cannot prune sign-in throttles");
                }
                if let Err(e) = identity
                    .reload_keys(&store, &state.keyring, state.clock.as_ref())
                    .await
                {
                    tracing::warn!(error = %e, "cannot reload signing keys");
                }
            }
        }
    })
}

impl Identity {
    /// The email of a user (for `/me`), from memory once read: emails do not change, and a
    /// deactivated user never gets this far (revocation is checked first).
    pub async fn user_email(
        &self,
        store: &Store,
        user: Uuid,
    ) -> Result<Option<String>, StoreError> {
        if let Some(email) = self.emails.read().ok().and_then(|m| m.get(&user).cloned()) {
            return Ok(Some(email));
        }
        let mut tx = store.begin_read().await?;
        let row = tx.user_by_id(user).await?;
        tx.commit().await?;
        let email = row.filter(|u| u.active).map(|u| u.email);
        if let (Some(e), Ok(mut m)) = (&email, self.emails.write()) {
            if m.len() >= CACHE_CAPACITY {
                m.clear();
            }
            m.insert(user, e.clone());
        }
        Ok(email)
    }
}
