//! A workspace's gateway configuration as the hot path uses it — policy, upstreams with their
//! keys opened, filters compiled with the workspace's stored values — and the platform's
//! switch, each cached for 2 s; when stale, one request reads it again while the others go on
//! with the previous one (for at most 30 s).

use std::sync::Arc;

use uuid::Uuid;
use warden_llm::filters::Filters;
use warden_llm::upstream::Kind;
use warden_store::llm::UpstreamRow;
use zeroize::Zeroizing;

use super::policy::Policy;
use super::{
    CONFIG_CACHE_US, Gateway, Refusal, STALE_US, Upstream, WsConfig, upstream_key_context,
};
use crate::Ctx;

impl Gateway {
    pub(super) async fn switch_on(&self, ctx: &Ctx, now: i64) -> Result<bool, Refusal> {
        let cached = self.global.read().map(|g| *g).unwrap_or((false, i64::MIN));
        if cached.1 + CONFIG_CACHE_US > now {
            return Ok(cached.0);
        }
        // One request reads it again; the others go on with what it was, for a while.
        if cached.1 + STALE_US > now
            && self
                .global_refreshing
                .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            return Ok(cached.0);
        }
        let read = ctx.store.llm_enabled().await;
        self.global_refreshing
            .store(false, std::sync::atomic::Ordering::Release);
        let on = read.map_err(|_| Refusal::Unavailable)?;
        if let Ok(mut g) = self.global.write() {
            *g = (on, now);
        }
        Ok(on)
    }

    pub(super) async fn workspace(
        &self,
        ctx: &Ctx,
        ws: Uuid,
        now: i64,
    ) -> Result<Arc<WsConfig>, Refusal> {
        let cached = self
            .workspaces
            .read()
            .ok()
            .and_then(|m| m.get(&ws).cloned());
        if let Some(c) = &cached {
            if c.loaded_at + CONFIG_CACHE_US > now {
                return Ok(c.clone());
            }
            // One request reads it again; the others go on with what it was, for a while.
            if c.loaded_at + STALE_US > now
                && c.refreshing.swap(true, std::sync::atomic::Ordering::AcqRel)
            {
                return Ok(c.clone());
            }
        }
        let loaded = load_config(ctx, ws, now).await;
        if let Some(c) = &cached {
            c.refreshing
                .store(false, std::sync::atomic::Ordering::Release);
        }
        let loaded = Arc::new(loaded.map_err(|e| {
            tracing::error!(error = %e, "cannot load a workspace's gateway configuration");
            Refusal::Unavailable
        })?);
        if let Ok(mut m) = self.workspaces.write() {
            m.insert(ws, loaded.clone());
        }
        Ok(loaded)
    }
}

pub(super) async fn load_config(ctx: &Ctx, ws: Uuid, now: i64) -> Result<WsConfig, String> {
    let (policy_row, upstream_rows) = ctx.store.llm_config(ws).await.map_err(|e| e.to_string())?;
    let (enabled, policy) = match &policy_row {
        Some(p) => (p.enabled, Policy::from_stored(&p.policy)),
        None => (true, Policy::default()),
    };
    let mut upstreams = Vec::with_capacity(upstream_rows.len());
    for r in upstream_rows {
        upstreams.push(open_upstream(ctx, &r)?);
    }
    // The filters look for every value the workspace stores, and its upstreams' keys.
    let mut values: Vec<Zeroizing<String>> = Vec::new();
    if policy.filters.secrets != warden_llm::filters::Action::Off {
        for (kind, name, sealed) in ctx
            .store
            .llm_workspace_secrets(ws)
            .await
            .map_err(|e| e.to_string())?
        {
            let kind = warden_store::tenancy::SecretKind::parse(&kind)
                .unwrap_or(warden_store::tenancy::SecretKind::Provider);
            let wid = warden_domain::tenancy::WorkspaceId::from_uuid(ws);
            if let Ok(plain) = ctx
                .keyring
                .open(&crate::secrets::context(wid, kind, &name), &sealed)
                && let Ok(text) = String::from_utf8(plain.to_vec())
            {
                values.push(Zeroizing::new(text));
            }
        }
        for u in &upstreams {
            if let Some(k) = &u.key {
                values.push(k.clone());
            }
        }
    }
    let filters = Filters::new(policy.filters.clone(), values.iter().map(|v| v.as_str()));
    Ok(WsConfig {
        enabled,
        policy: Arc::new(policy),
        filters,
        upstreams,
        loaded_at: now,
        refreshing: std::sync::atomic::AtomicBool::new(false),
    })
}

fn open_upstream(ctx: &Ctx, r: &UpstreamRow) -> Result<Upstream, String> {
    let key = match &r.sealed_key {
        Some(sealed) => {
            let plain = ctx
                .keyring
                .open(&upstream_key_context(r.workspace_id, r.id), sealed)
                .map_err(|_| "an upstream key could not be opened".to_owned())?;
            Some(Zeroizing::new(
                String::from_utf8(plain.to_vec())
                    .map_err(|_| "an upstream key is not text".to_owned())?,
            ))
        }
        None => None,
    };
    Ok(Upstream {
        id: r.id,
        name: r.name.clone(),
        kind: Kind::parse(&r.kind).unwrap_or(Kind::OpenAiCompatible),
        base_url: r.base_url.clone(),
        key,
        models: serde_json::from_str(&r.models).unwrap_or_default(),
        aliases: serde_json::from_str(&r.aliases).unwrap_or_default(),
        allow_private: r.allow_private_network && ctx.llm.config.allow_private_upstreams,
    })
}
