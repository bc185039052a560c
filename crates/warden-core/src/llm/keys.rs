//! Gateway keys as the hot path sees them: every presented credential takes the same path —
//! hashed, looked up in this node's cache (positive and negative entries, 30 s), else by its
//! hash in the database — so a wrong, revoked, expired or unknown key is refused alike.
//! Revocation goes through the revocation log, so every node refuses a revoked key at once.

use std::sync::Arc;

use warden_store::llm::KeyRow;

use super::{Gateway, GatewayKey, KEY_CACHE_CAPACITY, KEY_CACHE_US, KeyEntry, Refusal, hash};
use crate::Ctx;

impl Gateway {
    /// Checks a presented key. Every refusal is the same.
    pub async fn authenticate(
        &self,
        ctx: &Ctx,
        presented: &str,
        now: i64,
    ) -> Result<Arc<GatewayKey>, Refusal> {
        let h = hash(presented);
        let cached = self
            .keys
            .read()
            .ok()
            .and_then(|m| m.get(&h).filter(|e| e.until > now).map(|e| e.key.clone()));
        let key = match cached {
            Some(k) => k,
            None => {
                let loaded = self.load_key(ctx, &h, now).await?;
                if let Ok(mut m) = self.keys.write() {
                    if m.len() >= KEY_CACHE_CAPACITY {
                        m.retain(|_, e| e.until > now);
                        if m.len() >= KEY_CACHE_CAPACITY {
                            m.clear();
                        }
                    }
                    m.insert(
                        h,
                        KeyEntry {
                            key: loaded.clone(),
                            until: now + KEY_CACHE_US,
                        },
                    );
                }
                loaded
            }
        };
        let key = key.ok_or(Refusal::Unauthorized)?;
        if key.expires_at.is_some_and(|e| e <= now)
            || ctx.identity.revocations.is_revoked(key.id, key.owner)
        {
            return Err(Refusal::Unauthorized);
        }
        Ok(key)
    }

    async fn load_key(
        &self,
        ctx: &Ctx,
        h: &[u8; 32],
        now: i64,
    ) -> Result<Option<Arc<GatewayKey>>, Refusal> {
        let row: Option<KeyRow> = ctx.store.llm_key_by_hash(h).await.map_err(|e| {
            tracing::error!(error = %e, "cannot look up a gateway key");
            Refusal::Unavailable
        })?;
        let Some(row) = row.filter(|r| r.revoked_at.is_none()) else {
            return Ok(None);
        };
        // A user's key holds only while they are an active member of a live workspace.
        let member = match row.user_id.or(Some(row.created_by)) {
            Some(u) => ctx
                .store
                .llm_member_role(row.workspace_id, u)
                .await
                .map_err(|_| Refusal::Unavailable)?
                .is_some(),
            None => false,
        };
        let platform_admin = !member
            && ctx
                .store
                .platform_permissions(row.user_id.unwrap_or(row.created_by))
                .await
                .map(|p| p.contains(warden_domain::access::Permission::WORKSPACES_READ))
                .unwrap_or(false);
        if !(member || platform_admin) {
            return Ok(None);
        }
        let _ = now;
        let automation_run_id = match row.session_id {
            Some(session) => ctx
                .store
                .automation_run_of_session(session)
                .await
                .map_err(|_| Refusal::Unavailable)?,
            None => None,
        };
        Ok(Some(Arc::new(GatewayKey {
            automation_run_id,
            id: row.id,
            workspace_id: row.workspace_id,
            user_id: row.user_id,
            session_id: row.session_id,
            owner: row.user_id.unwrap_or(row.created_by),
            expires_at: row.expires_at,
        })))
    }
}
