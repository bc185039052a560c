//! Managing hosts: the platform's (every host, for platform administrators with a `hosts.*`
//! permission) and a workspace's own (for its maintainers). Keys are shown once and stored
//! only as hashes; every change is audited; a rejected or deleted host's live connection
//! ends at once.

use serde_json::json;
use uuid::Uuid;
use warden_domain::audit::NewEvent;
use warden_domain::hosts::{AllowList, HostKind, HostName, HostStatus};
use warden_store::hosts::{HostRow, Hosts, NewHost, StoredKey};
use warden_store::tenancy::{PlatformGrant, WorkspaceGrant, WorkspaceTx};
use zeroize::Zeroizing;

use crate::{Code, CoreError, CoreResult, Ctx, Op};

/// Whose hosts a use case manages: every host (the platform's administration) or one
/// workspace's own (its maintainers).
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// Every host.
    Platform(&'a PlatformGrant),
    /// One workspace's own hosts.
    Workspace(&'a WorkspaceGrant),
}

/// The transaction a scope opens: its host queries carry the scope's filter, and its audit
/// events the workspace.
enum HostTx {
    Platform(warden_store::Tx),
    Workspace(WorkspaceTx),
}

impl HostTx {
    async fn open(ctx: &Ctx, scope: Scope<'_>) -> CoreResult<Self> {
        Ok(match scope {
            Scope::Platform(grant) => Self::Platform(ctx.store.hosts_admin(grant).await?),
            Scope::Workspace(grant) => Self::Workspace(ctx.store.scoped(grant).await?),
        })
    }

    async fn open_read(ctx: &Ctx, scope: Scope<'_>) -> CoreResult<Self> {
        Ok(match scope {
            Scope::Platform(grant) => Self::Platform(ctx.store.hosts_admin_read(grant).await?),
            Scope::Workspace(grant) => Self::Workspace(ctx.store.scoped(grant).await?),
        })
    }

    fn hosts(&mut self) -> Hosts<'_> {
        match self {
            Self::Platform(tx) => tx.all_hosts(),
            Self::Workspace(tx) => tx.hosts(),
        }
    }

    async fn get(&mut self, id: Uuid) -> CoreResult<HostRow> {
        Ok(self.hosts().get(id).await?.ok_or(Code::NotFound)?)
    }

    async fn record(&mut self, ctx: &Ctx, event: NewEvent) -> CoreResult<()> {
        match self {
            Self::Platform(tx) => tx.record(&ctx.audit_key, &event).await,
            Self::Workspace(tx) => tx.record(&ctx.audit_key, event).await,
        }?;
        Ok(())
    }

    async fn commit(self) -> CoreResult<()> {
        match self {
            Self::Platform(tx) => tx.commit().await,
            Self::Workspace(tx) => tx.commit().await,
        }?;
        Ok(())
    }
}

/// A host id from a path: one that does not parse names no host.
fn host_id(id: &str) -> CoreResult<Uuid> {
    id.parse().map_err(|_| Code::NotFound.into())
}

/// A new key, made off the async threads (PBKDF2).
async fn new_key() -> CoreResult<warden_crypto::host_key::NewKey> {
    tokio::task::spawn_blocking(warden_crypto::host_key::generate)
        .await
        .map_err(|e| CoreError::internal(&e))?
        .map_err(|e| CoreError::internal(&e))
}

fn stored(key: &warden_crypto::host_key::NewKey) -> StoredKey<'_> {
    StoredKey {
        key_id: &key.key_id,
        salt: &key.salt,
        hash: &key.hash,
    }
}

/// A host and its API key (`whk_<key id>_<secret>`), shown this once.
pub struct WithKey {
    /// The host.
    pub host: HostRow,
    /// The key; Warden keeps only a hash.
    pub api_key: Zeroizing<String>,
}

impl std::fmt::Debug for WithKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WithKey")
            .field("host", &self.host.id)
            .finish_non_exhaustive()
    }
}

/// A new host, parsed.
#[derive(Debug, Clone)]
pub struct NewHostInput {
    name: HostName,
    kind: HostKind,
    allow: AllowList,
}

impl NewHostInput {
    /// Parses a display name, a kind (`session` or `deploy`) and an allow-list.
    pub fn parse(name: &str, kind: &str, allow_list: &[String]) -> CoreResult<Self> {
        let name = HostName::parse(name)?;
        let kind = HostKind::parse(kind)
            .ok_or_else(|| CoreError::invalid("kind", "must be session or deploy"))?;
        let allow = AllowList::parse(allow_list.iter().map(String::as_str))?;
        Ok(Self { name, kind, allow })
    }
}

/// Registers a host. It stays pending, and gets no work, until an administrator approves it.
pub async fn register(
    ctx: &Ctx,
    op: &Op,
    scope: Scope<'_>,
    input: NewHostInput,
) -> CoreResult<WithKey> {
    let key = new_key().await?;
    let id = Uuid::now_v7();
    let created_by = match scope {
        Scope::Platform(g) => g.user_id(),
        Scope::Workspace(g) => g.user_id(),
    };
    let mut tx = HostTx::open(ctx, scope).await?;
    tx.hosts()
        .insert(&NewHost {
            id,
            name: input.name.as_str(),
            kind: input.kind.as_str(),
            allow_list: &input.allow.to_stored(),
            key: stored(&key),
            created_by,
            now: op.now_us(),
        })
        .await?;
    let event = op.event(
        "host.registered",
        "host",
        Some(id.to_string()),
        json!({ "name": input.name.as_str(), "kind": input.kind.as_str(), "key_id": key.key_id,
                "allow_list": input.allow.entries() }),
    );
    tx.record(ctx, event).await?;
    let host = tx.get(id).await?;
    tx.commit().await?;
    Ok(WithKey {
        host,
        api_key: Zeroizing::new(key.key.to_string()),
    })
}

/// The hosts in scope, by name.
pub async fn list(ctx: &Ctx, scope: Scope<'_>) -> CoreResult<Vec<HostRow>> {
    let mut tx = HostTx::open_read(ctx, scope).await?;
    let rows = tx.hosts().list().await?;
    tx.commit().await?;
    Ok(rows)
}

/// One host in scope.
pub async fn get(ctx: &Ctx, scope: Scope<'_>, id: &str) -> CoreResult<HostRow> {
    let id = host_id(id)?;
    let mut tx = HostTx::open_read(ctx, scope).await?;
    let row = tx.get(id).await?;
    tx.commit().await?;
    Ok(row)
}

/// Approves (it may receive work) or rejects (its live connection ends) a host: platform
/// administrators only.
pub async fn decide(
    ctx: &Ctx,
    op: &Op,
    grant: &PlatformGrant,
    id: &str,
    status: HostStatus,
) -> CoreResult<HostRow> {
    let id = host_id(id)?;
    let mut tx = HostTx::open(ctx, Scope::Platform(grant)).await?;
    let before = tx.get(id).await?;
    tx.hosts()
        .decide(id, status.as_str(), grant.user_id(), op.now_us())
        .await?;
    let action = match status {
        HostStatus::Approved => "host.approved",
        HostStatus::Rejected => "host.rejected",
        HostStatus::Pending => "host.pending",
    };
    let mut event = op.event(
        action,
        "host",
        Some(id.to_string()),
        json!({ "status": { "old": before.status, "new": status.as_str() } }),
    );
    event.workspace_id = before.workspace_id.map(|w| w.to_string());
    tx.record(ctx, event).await?;
    let row = tx.get(id).await?;
    tx.commit().await?;
    if status == HostStatus::Rejected {
        ctx.connections.kick(
            id,
            warden_protocol::Refusal::Revoked,
            "an administrator rejected this host",
        );
    }
    Ok(row)
}

/// Issues a new key (shown once). The current key keeps working for `grace_minutes`
/// (0–10080, default 60), then is refused; a key older than that stops at once.
pub async fn rotate_key(
    ctx: &Ctx,
    op: &Op,
    scope: Scope<'_>,
    id: &str,
    grace_minutes: Option<i64>,
) -> CoreResult<WithKey> {
    let id = host_id(id)?;
    let grace = grace_minutes.unwrap_or(60);
    if !(0..=10_080).contains(&grace) {
        return Err(CoreError::invalid(
            "grace_minutes",
            "must be between 0 and 10080 minutes",
        ));
    }
    let key = new_key().await?;
    let now = op.now_us();
    let mut tx = HostTx::open(ctx, scope).await?;
    let before = tx.get(id).await?;
    tx.hosts()
        .rotate_key(id, stored(&key), now + grace * 60_000_000, now)
        .await?;
    let event = op.event(
        "host.key_rotated",
        "host",
        Some(id.to_string()),
        json!({ "key_id": { "old": before.key_id, "new": key.key_id }, "grace_minutes": grace }),
    );
    tx.record(ctx, event).await?;
    let host = tx.get(id).await?;
    tx.commit().await?;
    Ok(WithKey {
        host,
        api_key: Zeroizing::new(key.key.to_string()),
    })
}

/// Replaces a host's allow-list (IPv4/IPv6 addresses or CIDRs; empty means anywhere).
pub async fn set_allow_list(
    ctx: &Ctx,
    op: &Op,
    scope: Scope<'_>,
    id: &str,
    allow_list: &[String],
) -> CoreResult<HostRow> {
    let id = host_id(id)?;
    let allow = AllowList::parse(allow_list.iter().map(String::as_str))?;
    let mut tx = HostTx::open(ctx, scope).await?;
    let before = tx.get(id).await?;
    tx.hosts()
        .set_allow_list(id, &allow.to_stored(), op.now_us())
        .await?;
    let event = op.event(
        "host.allow_list_changed",
        "host",
        Some(id.to_string()),
        json!({ "allow_list": { "old": AllowList::from_stored(&before.allow_list).entries(),
                                "new": allow.entries() } }),
    );
    tx.record(ctx, event).await?;
    let row = tx.get(id).await?;
    tx.commit().await?;
    Ok(row)
}

/// Deletes a host with every key it had: it can never come back with them. Its live
/// connection, on any node, ends at once.
pub async fn delete(ctx: &Ctx, op: &Op, scope: Scope<'_>, id: &str) -> CoreResult<()> {
    let id = host_id(id)?;
    let mut tx = HostTx::open(ctx, scope).await?;
    let before = tx.get(id).await?;
    tx.hosts().delete(id).await?;
    let mut event = op.event(
        "host.deleted",
        "host",
        Some(id.to_string()),
        json!({ "name": before.name, "key_id": before.key_id, "status": before.status }),
    );
    event.workspace_id = before.workspace_id.map(|w| w.to_string());
    tx.record(ctx, event).await?;
    tx.commit().await?;
    ctx.connections.kick(
        id,
        warden_protocol::Refusal::Revoked,
        "an administrator deleted this host",
    );
    Ok(())
}

/// Restricts a platform host to some workspaces (empty: all); returns the saved list.
/// Sessions of other workspaces never go to it.
pub async fn set_workspaces(
    ctx: &Ctx,
    op: &Op,
    grant: &PlatformGrant,
    id: &str,
    workspace_ids: &[String],
) -> CoreResult<Vec<Uuid>> {
    let id = host_id(id)?;
    let bad = || {
        CoreError::invalid(
            "workspace_ids",
            "every entry must be the id of an existing workspace (at most 1000)",
        )
    };
    if workspace_ids.len() > 1000 {
        return Err(bad());
    }
    let mut wanted = workspace_ids
        .iter()
        .map(|w| w.parse::<Uuid>().map_err(|_| bad()))
        .collect::<CoreResult<Vec<_>>>()?;
    wanted.sort();
    wanted.dedup();
    let mut tx = ctx.store.hosts_admin(grant).await?;
    let before = tx.all_hosts().workspaces_of(id).await?;
    match tx.all_hosts().set_workspaces(id, &wanted).await? {
        None => return Err(Code::NotFound.into()),
        Some(false) => return Err(bad()),
        Some(true) => {}
    }
    let event = op.event(
        "host.workspaces_changed",
        "host",
        Some(id.to_string()),
        json!({ "workspace_ids": {
            "old": before.iter().map(Uuid::to_string).collect::<Vec<_>>(),
            "new": wanted.iter().map(Uuid::to_string).collect::<Vec<_>>() } }),
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    Ok(wanted)
}

/// The workspaces a platform host is restricted to (empty: every workspace).
pub async fn workspaces_of(ctx: &Ctx, grant: &PlatformGrant, id: &str) -> CoreResult<Vec<Uuid>> {
    let id = host_id(id)?;
    let mut tx = ctx.store.hosts_admin_read(grant).await?;
    let ids = tx.all_hosts().workspaces_of(id).await?;
    tx.commit().await?;
    Ok(ids)
}

/// Whether a host counts as online at `now_us`: connected to some node and seen within
/// three heartbeats.
pub fn online(host: &HostRow, now_us: i64) -> bool {
    host.connected_node.is_some()
        && host
            .last_seen_at
            .is_some_and(|t| t > super::connected_since(now_us))
}

/// The name of the host `warden serve` runs in its own process.
pub const LOCAL_HOST_NAME: &str = "local";

/// A key for the host that `warden serve` runs in its own process (the single-machine
/// default): registered and approved by the system on first start, its key rotated at every
/// start (the key lives only in this process's memory), allowed to connect from the loopback
/// only. An administrator may still reject or delete it; a rejected local host stays rejected.
pub async fn local_host_key(ctx: &Ctx) -> Result<Zeroizing<String>, String> {
    let key = tokio::task::spawn_blocking(warden_crypto::host_key::generate)
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let op = Op::new(
        warden_domain::audit::Actor::system(),
        crate::Origin::default(),
        ctx.clock.as_ref(),
    );
    let now = op.now_us();
    let stored = warden_store::hosts::StoredKey {
        key_id: &key.key_id,
        salt: &key.salt,
        hash: &key.hash,
    };
    let mut tx = ctx
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
    let event = op.event(
        action,
        "host",
        Some(id.to_string()),
        json!({ "name": LOCAL_HOST_NAME, "key_id": key.key_id, "local": true }),
    );
    tx.record(&ctx.audit_key, &event)
        .await
        .map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    Ok(Zeroizing::new(key.key.to_string()))
}
