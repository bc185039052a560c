//! What is revoked, in memory, on every node: revoked sessions (until every access token
//! they had has expired) and deactivated users. Filled from the database at start and kept
//! in step by following the revocation log.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;
use std::sync::atomic::{AtomicI64, Ordering};

use uuid::Uuid;
use warden_store::identity::RevocationRow;
use warden_store::{Store, StoreError};

#[derive(Debug, Default)]
struct State {
    sessions: HashMap<Uuid, i64>,
    users: HashSet<Uuid>,
}

/// The revocation state of this node.
#[derive(Debug, Default)]
pub struct Revocations {
    state: RwLock<State>,
    applied: AtomicI64,
    /// Serialises catching up, so log entries are applied in order.
    catching_up: tokio::sync::Mutex<()>,
    /// A signing key was revoked: the keys must be reloaded and the verified-token cache
    /// dropped before this node reports the position as applied.
    keys_revoked: std::sync::atomic::AtomicBool,
}

impl Revocations {
    /// Whether a credential of `session` belonging to `user` must be refused.
    pub fn is_revoked(&self, session: Uuid, user: Uuid) -> bool {
        match self.state.read() {
            Ok(s) => s.sessions.contains_key(&session) || s.users.contains(&user),
            // A poisoned lock means a writer panicked mid-update: refuse rather than guess.
            Err(_) => true,
        }
    }

    /// Whether `session` (a device session, a personal or directory token) was revoked.
    pub fn is_session_revoked(&self, session: Uuid) -> bool {
        match self.state.read() {
            Ok(s) => s.sessions.contains_key(&session),
            Err(_) => true,
        }
    }

    /// The last log position applied.
    pub fn applied(&self) -> i64 {
        self.applied.load(Ordering::Acquire)
    }

    /// Loads the state: sessions revoked since `since_us` and every deactivated user.
    pub async fn load(&self, store: &Store, since_us: i64) -> Result<(), StoreError> {
        let _guard = self.catching_up.lock().await;
        let (sessions, users, last) = store.revocation_snapshot(since_us).await?;
        if let Ok(mut s) = self.state.write() {
            s.sessions = sessions.into_iter().collect();
            s.users = users.into_iter().collect();
        }
        self.applied.store(last, Ordering::Release);
        Ok(())
    }

    /// Applies every log entry written since the last one applied. Returns the new position.
    pub async fn catch_up(&self, store: &Store) -> Result<i64, StoreError> {
        let _guard = self.catching_up.lock().await;
        loop {
            let rows = store.revocations_after(self.applied()).await?;
            let Some(last) = rows.last().map(|r| r.id) else {
                return Ok(self.applied());
            };
            self.apply(&rows);
            self.applied.store(last, Ordering::Release);
        }
    }

    fn apply(&self, rows: &[RevocationRow]) {
        let Ok(mut s) = self.state.write() else {
            return;
        };
        for r in rows {
            match r.kind.as_str() {
                "session" => {
                    s.sessions.insert(r.subject, r.at);
                }
                "user_deactivated" => {
                    s.users.insert(r.subject);
                }
                "user_reactivated" => {
                    s.users.remove(&r.subject);
                }
                "signing_key" => self.keys_revoked.store(true, Ordering::Release),
                other => tracing::warn!(kind = other, "unknown revocation kind ignored"),
            }
        }
    }

    /// Whether a signing-key revocation was applied and the keys not yet reloaded.
    pub fn keys_revoked(&self) -> bool {
        self.keys_revoked.load(Ordering::Acquire)
    }

    /// Marks a signing-key revocation as still to be handled.
    pub fn mark_keys_revoked(&self) {
        self.keys_revoked.store(true, Ordering::Release);
    }

    /// Takes the pending signing-key revocation, if any.
    pub fn take_keys_revoked(&self) -> bool {
        self.keys_revoked.swap(false, Ordering::AcqRel)
    }

    /// Forgets sessions revoked before `before_us`: their access tokens have all expired.
    pub fn prune(&self, before_us: i64) {
        if let Ok(mut s) = self.state.write() {
            s.sessions.retain(|_, at| *at >= before_us);
        }
    }
}
