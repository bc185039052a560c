//! Hosts: registration with a key shown once, approval, allow-lists, key rotation, deletion.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::routes;
use uuid::Uuid;
use warden_domain::access::{Access, Permission};
use warden_domain::audit::{NewEvent, Outcome};
use warden_domain::hosts::{AllowList, HostKind, HostName, HostStatus};
use warden_store::hosts::{HostRow, Hosts, NewHost, StoredKey};
use warden_store::tenancy::{PlatformGrant, WorkspaceTx};

use super::me::rfc3339;
use crate::audit::request::RequestMeta;
use crate::http::authz::{HostAccess, PlatformAccess, WorkspaceAccess};
use crate::http::json::ApiJson;
use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::identity::Caller;
use crate::state::AppState;
use warden_core::identity::now_us;

pub(crate) fn routes() -> Routes<AppState> {
    use Access::{Platform, Workspace};
    Routes::new()
        .add(Platform(Permission::HOSTS_CREATE), routes!(register_host))
        .add(Platform(Permission::HOSTS_READ), routes!(list_hosts))
        .add(Platform(Permission::HOSTS_READ), routes!(get_host))
        .add(Platform(Permission::HOSTS_APPROVE), routes!(approve_host))
        .add(Platform(Permission::HOSTS_APPROVE), routes!(reject_host))
        .add(Platform(Permission::HOSTS_UPDATE), routes!(rotate_host_key))
        .add(Platform(Permission::HOSTS_UPDATE), routes!(set_allow_list))
        .add(Platform(Permission::HOSTS_DELETE), routes!(delete_host))
        .add(
            Platform(Permission::HOSTS_UPDATE),
            routes!(set_host_workspaces),
        )
        .add(
            Workspace(Permission::HOSTS_CREATE),
            routes!(register_workspace_host),
        )
        .add(
            Workspace(Permission::HOSTS_READ),
            routes!(list_workspace_hosts),
        )
        .add(
            Workspace(Permission::HOSTS_READ),
            routes!(get_workspace_host),
        )
        .add(
            Workspace(Permission::HOSTS_UPDATE),
            routes!(rotate_workspace_host_key),
        )
        .add(
            Workspace(Permission::HOSTS_UPDATE),
            routes!(set_workspace_allow_list),
        )
        .add(
            Workspace(Permission::HOSTS_DELETE),
            routes!(delete_workspace_host),
        )
        .add(Access::Host, routes!(agent_hello))
        .add(Access::Host, routes!(agent_connect))
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(&e)
}

fn not_found() -> ApiError {
    ApiError::from_status(StatusCode::NOT_FOUND)
}

/// A host, without key material.
#[derive(Debug, Serialize, ToSchema)]
pub struct HostView {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// `session` or `deploy`.
    pub kind: String,
    /// `pending` (gets no work until approved), `approved` or `rejected`.
    pub status: String,
    /// Networks it may connect from; empty means anywhere.
    pub allow_list: Vec<String>,
    /// The current key's public id (the part after `whk_`).
    pub key_id: String,
    /// While a rotation's grace period lasts: the previous key's id and its end.
    pub previous_key_id: Option<String>,
    /// End of the previous key's grace period (RFC 3339).
    pub previous_key_until: Option<String>,
    /// As reported by the agent.
    pub hostname: Option<String>,
    /// As reported by the agent.
    pub os: Option<String>,
    /// As reported by the agent.
    pub agent_version: Option<String>,
    /// Address it last connected from.
    pub last_ip: Option<String>,
    /// The workspace it serves alone; absent for a platform host.
    pub workspace_id: Option<String>,
    /// Whether it has a live connection (to any node, seen within three heartbeats).
    pub online: bool,
    /// Last seen (RFC 3339).
    pub last_seen_at: Option<String>,
    /// Registered (RFC 3339).
    pub created_at: String,
    /// Approved or rejected (RFC 3339).
    pub decided_at: Option<String>,
}

fn view(h: HostRow, now: i64) -> HostView {
    let fresh = i64::try_from((crate::agent::HEARTBEAT * 3).as_micros()).unwrap_or(i64::MAX);
    let online = h.connected_node.is_some() && h.last_seen_at.is_some_and(|t| now - t < fresh);
    HostView {
        online,
        workspace_id: h.workspace_id.map(|w| w.to_string()),
        id: h.id.to_string(),
        name: h.name,
        kind: h.kind,
        status: h.status,
        allow_list: AllowList::from_stored(&h.allow_list).entries(),
        key_id: h.key_id,
        previous_key_id: h.previous_key_id,
        previous_key_until: h.previous_key_until.map(rfc3339),
        hostname: h.hostname,
        os: h.os,
        agent_version: h.agent_version,
        last_ip: h.last_ip,
        last_seen_at: h.last_seen_at.map(rfc3339),
        created_at: rfc3339(h.created_at),
        decided_at: h.decided_at.map(rfc3339),
    }
}

/// A new host.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewHostInput {
    /// Display name.
    pub name: String,
    /// `session` (runs agent sessions) or `deploy` (runs deployments).
    pub kind: String,
    /// IPv4/IPv6 addresses or CIDRs it may connect from; empty or absent means anywhere.
    #[serde(default)]
    pub allow_list: Vec<String>,
}

/// A host and its API key, shown this once.
#[derive(Serialize, ToSchema)]
pub struct HostWithKey {
    /// The host.
    pub host: HostView,
    /// `whk_<key id>_<secret>`: give it to the host's operator now; Warden keeps only a hash.
    pub api_key: String,
}

impl std::fmt::Debug for HostWithKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostWithKey")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

async fn new_key() -> Result<warden_crypto::host_key::NewKey, ApiError> {
    tokio::task::spawn_blocking(warden_crypto::host_key::generate)
        .await
        .map_err(internal)?
        .map_err(internal)
}

fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    id.parse().map_err(|_| not_found())
}

/// Whose hosts a request manages: every host (the platform routes) or one workspace's own
/// (the workspace routes, for its maintainers).
enum Scope<'a> {
    Platform(&'a PlatformGrant),
    Workspace(&'a WorkspaceAccess),
}

/// The transaction a scope opens: its host queries carry the scope's filter, and its audit
/// events the workspace.
enum HostTx {
    Platform(warden_store::Tx),
    Workspace(WorkspaceTx),
}

impl HostTx {
    async fn open(state: &AppState, scope: &Scope<'_>) -> Result<Self, ApiError> {
        Ok(match scope {
            Scope::Platform(grant) => Self::Platform(state.store.hosts_admin(grant).await?),
            Scope::Workspace(access) => Self::Workspace(access.open(state).await?),
        })
    }

    async fn open_read(state: &AppState, scope: &Scope<'_>) -> Result<Self, ApiError> {
        Ok(match scope {
            Scope::Platform(grant) => Self::Platform(state.store.hosts_admin_read(grant).await?),
            Scope::Workspace(access) => Self::Workspace(access.open(state).await?),
        })
    }

    fn hosts(&mut self) -> Hosts<'_> {
        match self {
            Self::Platform(tx) => tx.all_hosts(),
            Self::Workspace(tx) => tx.hosts(),
        }
    }

    async fn record(&mut self, state: &AppState, event: NewEvent) -> Result<(), ApiError> {
        match self {
            Self::Platform(tx) => tx.record(&state.audit_key, &event).await,
            Self::Workspace(tx) => tx.record(&state.audit_key, event).await,
        }
        .map(drop)
        .map_err(internal)
    }

    async fn commit(self) -> Result<(), ApiError> {
        match self {
            Self::Platform(tx) => tx.commit().await,
            Self::Workspace(tx) => tx.commit().await,
        }
        .map_err(internal)
    }
}

/// Registers a host. It stays pending, and gets no work, until an administrator approves it.
#[utoipa::path(post, path = "/api/v1/hosts", tag = "hosts",
    request_body(content = NewHostInput, example = json!({"name": "build-01", "kind": "session", "allow_list": ["10.0.0.0/8"]})),
    responses(
        (status = 201, description = "Registered; the key is in the response, once", body = HostWithKey),
        (status = 422, description = "Invalid name, kind or allow-list", content_type = "application/problem+json")))]
pub(crate) async fn register_host(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    meta: RequestMeta,
    caller: Caller,
    ApiJson(input): ApiJson<NewHostInput>,
) -> Result<(StatusCode, Json<HostWithKey>), ApiError> {
    register(&state, &meta, &caller, &Scope::Platform(&grant), input).await
}

/// Registers a host bound to this workspace: it serves this workspace alone. It stays
/// pending, and gets no work, until a platform administrator approves it.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/hosts", tag = "hosts",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = NewHostInput, example = json!({"name": "team-runner", "kind": "session"})),
    responses(
        (status = 201, description = "Registered; the key is in the response, once", body = HostWithKey),
        (status = 422, description = "Invalid name, kind or allow-list", content_type = "application/problem+json")))]
pub(crate) async fn register_workspace_host(
    State(state): State<AppState>,
    meta: RequestMeta,
    caller: Caller,
    access: WorkspaceAccess,
    ApiJson(input): ApiJson<NewHostInput>,
) -> Result<(StatusCode, Json<HostWithKey>), ApiError> {
    register(&state, &meta, &caller, &Scope::Workspace(&access), input).await
}

async fn register(
    state: &AppState,
    meta: &RequestMeta,
    caller: &Caller,
    scope: &Scope<'_>,
    input: NewHostInput,
) -> Result<(StatusCode, Json<HostWithKey>), ApiError> {
    let name = HostName::parse(&input.name).map_err(|e| ApiError::invalid(&e))?;
    let kind = HostKind::parse(&input.kind).ok_or(ApiError(warden_core::CoreError::invalid(
        "kind",
        "must be session or deploy",
    )))?;
    let allow = AllowList::parse(input.allow_list.iter().map(String::as_str))
        .map_err(|e| ApiError::invalid(&e))?;
    let key = new_key().await?;
    let id = Uuid::now_v7();
    let mut tx = HostTx::open(state, scope).await?;
    tx.hosts()
        .insert(&NewHost {
            id,
            name: name.as_str(),
            kind: kind.as_str(),
            allow_list: &allow.to_stored(),
            key: StoredKey {
                key_id: &key.key_id,
                salt: &key.salt,
                hash: &key.hash,
            },
            created_by: caller.principal.user_id,
            now: now_us(state.clock.as_ref()),
        })
        .await
        .map_err(internal)?;
    let event = meta.event(
        state.clock.now(),
        caller.actor(),
        "host.registered",
        "host",
        Some(id.to_string()),
        Outcome::Success,
        json!({ "name": name.as_str(), "kind": kind.as_str(), "key_id": key.key_id,
                "allow_list": allow.entries() }),
    );
    tx.record(state, event).await?;
    let row = tx
        .hosts()
        .get(id)
        .await
        .map_err(internal)?
        .ok_or_else(not_found)?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(HostWithKey {
            host: view(row, now_us(state.clock.as_ref())),
            api_key: key.key.to_string(),
        }),
    ))
}

/// Every host, platform-wide and workspace-bound, by name.
#[utoipa::path(get, path = "/api/v1/hosts", tag = "hosts",
    responses((status = 200, description = "Hosts", body = Vec<HostView>)))]
pub(crate) async fn list_hosts(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
) -> Result<Json<Vec<HostView>>, ApiError> {
    list(&state, &Scope::Platform(&grant)).await
}

/// This workspace's own hosts, by name.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/hosts", tag = "hosts",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    responses((status = 200, description = "Hosts", body = Vec<HostView>)))]
pub(crate) async fn list_workspace_hosts(
    State(state): State<AppState>,
    access: WorkspaceAccess,
) -> Result<Json<Vec<HostView>>, ApiError> {
    list(&state, &Scope::Workspace(&access)).await
}

async fn list(state: &AppState, scope: &Scope<'_>) -> Result<Json<Vec<HostView>>, ApiError> {
    let mut tx = HostTx::open_read(state, scope).await?;
    let rows = tx.hosts().list().await.map_err(internal)?;
    tx.commit().await?;
    let now = now_us(state.clock.as_ref());
    Ok(Json(rows.into_iter().map(|r| view(r, now)).collect()))
}

/// One host.
#[utoipa::path(get, path = "/api/v1/hosts/{host_id}", tag = "hosts",
    params(("host_id" = String, Path, description = "Host id")),
    responses((status = 200, description = "The host", body = HostView),
        (status = 404, description = "No such host", content_type = "application/problem+json")))]
pub(crate) async fn get_host(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    Path(id): Path<String>,
) -> Result<Json<HostView>, ApiError> {
    get(&state, &Scope::Platform(&grant), &id).await
}

/// One of this workspace's hosts.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/hosts/{host_id}", tag = "hosts",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("host_id" = String, Path, description = "Host id")),
    responses((status = 200, description = "The host", body = HostView),
        (status = 404, description = "No such host in this workspace", content_type = "application/problem+json")))]
pub(crate) async fn get_workspace_host(
    State(state): State<AppState>,
    access: WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<Json<HostView>, ApiError> {
    get(&state, &Scope::Workspace(&access), &path.1).await
}

async fn get(state: &AppState, scope: &Scope<'_>, id: &str) -> Result<Json<HostView>, ApiError> {
    let id = parse_id(id)?;
    let mut tx = HostTx::open_read(state, scope).await?;
    let row = tx
        .hosts()
        .get(id)
        .await
        .map_err(internal)?
        .ok_or_else(not_found)?;
    tx.commit().await?;
    Ok(Json(view(row, now_us(state.clock.as_ref()))))
}

async fn decide(
    state: &AppState,
    grant: &PlatformGrant,
    meta: &RequestMeta,
    caller: &Caller,
    id: &str,
    status: HostStatus,
) -> Result<Json<HostView>, ApiError> {
    let id = parse_id(id)?;
    let mut tx = HostTx::open(state, &Scope::Platform(grant)).await?;
    let before = tx
        .hosts()
        .get(id)
        .await
        .map_err(internal)?
        .ok_or_else(not_found)?;
    tx.hosts()
        .decide(
            id,
            status.as_str(),
            caller.principal.user_id,
            now_us(state.clock.as_ref()),
        )
        .await
        .map_err(internal)?;
    let action = match status {
        HostStatus::Approved => "host.approved",
        HostStatus::Rejected => "host.rejected",
        HostStatus::Pending => "host.pending",
    };
    let mut event = meta.event(
        state.clock.now(),
        caller.actor(),
        action,
        "host",
        Some(id.to_string()),
        Outcome::Success,
        json!({ "status": { "old": before.status, "new": status.as_str() } }),
    );
    event.workspace_id = before.workspace_id.map(|w| w.to_string());
    tx.record(state, event).await?;
    let row = tx
        .hosts()
        .get(id)
        .await
        .map_err(internal)?
        .ok_or_else(not_found)?;
    tx.commit().await?;
    if status == HostStatus::Rejected {
        state
            .connections
            .kick(id, "revoked", "an administrator rejected this host");
    }
    Ok(Json(view(row, now_us(state.clock.as_ref()))))
}

/// Approves a host: it may receive work.
#[utoipa::path(post, path = "/api/v1/hosts/{host_id}/approve", tag = "hosts",
    params(("host_id" = String, Path, description = "Host id")),
    responses((status = 200, description = "Approved", body = HostView),
        (status = 404, description = "No such host", content_type = "application/problem+json")))]
pub(crate) async fn approve_host(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    meta: RequestMeta,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<HostView>, ApiError> {
    decide(&state, &grant, &meta, &caller, &id, HostStatus::Approved).await
}

/// Rejects (or revokes the approval of) a host: it gets no work.
#[utoipa::path(post, path = "/api/v1/hosts/{host_id}/reject", tag = "hosts",
    params(("host_id" = String, Path, description = "Host id")),
    responses((status = 200, description = "Rejected", body = HostView),
        (status = 404, description = "No such host", content_type = "application/problem+json")))]
pub(crate) async fn reject_host(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    meta: RequestMeta,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<HostView>, ApiError> {
    decide(&state, &grant, &meta, &caller, &id, HostStatus::Rejected).await
}

/// Key rotation options.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// How long the current key keeps working, 0–10080 minutes (default 60).
    #[serde(default)]
    pub grace_minutes: Option<i64>,
}

/// Issues a new key (shown once). The current key keeps working for the grace period, then is
/// refused; a key older than that stops at once.
#[utoipa::path(post, path = "/api/v1/hosts/{host_id}/rotate-key", tag = "hosts",
    params(("host_id" = String, Path, description = "Host id")),
    request_body(content = Rotation, example = json!({"grace_minutes": 60})),
    responses((status = 200, description = "Rotated; the new key is in the response, once", body = HostWithKey),
        (status = 404, description = "No such host", content_type = "application/problem+json"),
        (status = 422, description = "Grace period out of range", content_type = "application/problem+json")))]
pub(crate) async fn rotate_host_key(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    meta: RequestMeta,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<Rotation>,
) -> Result<Json<HostWithKey>, ApiError> {
    rotate(&state, &meta, &caller, &Scope::Platform(&grant), &id, input).await
}

/// Issues a new key for one of this workspace's hosts (shown once); the current key keeps
/// working for the grace period.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/hosts/{host_id}/rotate-key", tag = "hosts",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("host_id" = String, Path, description = "Host id")),
    request_body(content = Rotation, example = json!({"grace_minutes": 60})),
    responses((status = 200, description = "Rotated; the new key is in the response, once", body = HostWithKey),
        (status = 404, description = "No such host in this workspace", content_type = "application/problem+json"),
        (status = 422, description = "Grace period out of range", content_type = "application/problem+json")))]
pub(crate) async fn rotate_workspace_host_key(
    State(state): State<AppState>,
    meta: RequestMeta,
    caller: Caller,
    access: WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiJson(input): ApiJson<Rotation>,
) -> Result<Json<HostWithKey>, ApiError> {
    rotate(
        &state,
        &meta,
        &caller,
        &Scope::Workspace(&access),
        &path.1,
        input,
    )
    .await
}

async fn rotate(
    state: &AppState,
    meta: &RequestMeta,
    caller: &Caller,
    scope: &Scope<'_>,
    id: &str,
    input: Rotation,
) -> Result<Json<HostWithKey>, ApiError> {
    let id = parse_id(id)?;
    let grace = input.grace_minutes.unwrap_or(60);
    if !(0..=10_080).contains(&grace) {
        return Err(ApiError(warden_core::CoreError::invalid(
            "grace_minutes",
            "must be between 0 and 10080 minutes",
        )));
    }
    let key = new_key().await?;
    let now = now_us(state.clock.as_ref());
    let mut tx = HostTx::open(state, scope).await?;
    let before = tx
        .hosts()
        .get(id)
        .await
        .map_err(internal)?
        .ok_or_else(not_found)?;
    tx.hosts()
        .rotate_key(
            id,
            StoredKey {
                key_id: &key.key_id,
                salt: &key.salt,
                hash: &key.hash,
            },
            now + grace * 60_000_000,
            now,
        )
        .await
        .map_err(internal)?;
    let event = meta.event(
        state.clock.now(),
        caller.actor(),
        "host.key_rotated",
        "host",
        Some(id.to_string()),
        Outcome::Success,
        json!({ "key_id": { "old": before.key_id, "new": key.key_id }, "grace_minutes": grace }),
    );
    tx.record(state, event).await?;
    let row = tx
        .hosts()
        .get(id)
        .await
        .map_err(internal)?
        .ok_or_else(not_found)?;
    tx.commit().await?;
    Ok(Json(HostWithKey {
        host: view(row, now_us(state.clock.as_ref())),
        api_key: key.key.to_string(),
    }))
}

/// A host's allow-list.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllowListInput {
    /// IPv4/IPv6 addresses or CIDRs; empty means anywhere.
    pub allow_list: Vec<String>,
}

/// Replaces a host's allow-list.
#[utoipa::path(put, path = "/api/v1/hosts/{host_id}/allow-list", tag = "hosts",
    params(("host_id" = String, Path, description = "Host id")),
    request_body(content = AllowListInput, example = json!({"allow_list": ["192.0.2.0/24", "2001:db8::/32"]})),
    responses((status = 200, description = "Saved", body = HostView),
        (status = 404, description = "No such host", content_type = "application/problem+json"),
        (status = 422, description = "Invalid entry", content_type = "application/problem+json")))]
pub(crate) async fn set_allow_list(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    meta: RequestMeta,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<AllowListInput>,
) -> Result<Json<HostView>, ApiError> {
    allow_list(&state, &meta, &caller, &Scope::Platform(&grant), &id, input).await
}

/// Replaces the allow-list of one of this workspace's hosts.
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/hosts/{host_id}/allow-list", tag = "hosts",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("host_id" = String, Path, description = "Host id")),
    request_body(content = AllowListInput, example = json!({"allow_list": ["192.0.2.0/24"]})),
    responses((status = 200, description = "Saved", body = HostView),
        (status = 404, description = "No such host in this workspace", content_type = "application/problem+json"),
        (status = 422, description = "Invalid entry", content_type = "application/problem+json")))]
pub(crate) async fn set_workspace_allow_list(
    State(state): State<AppState>,
    meta: RequestMeta,
    caller: Caller,
    access: WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiJson(input): ApiJson<AllowListInput>,
) -> Result<Json<HostView>, ApiError> {
    allow_list(
        &state,
        &meta,
        &caller,
        &Scope::Workspace(&access),
        &path.1,
        input,
    )
    .await
}

async fn allow_list(
    state: &AppState,
    meta: &RequestMeta,
    caller: &Caller,
    scope: &Scope<'_>,
    id: &str,
    input: AllowListInput,
) -> Result<Json<HostView>, ApiError> {
    let id = parse_id(id)?;
    let allow = AllowList::parse(input.allow_list.iter().map(String::as_str))
        .map_err(|e| ApiError::invalid(&e))?;
    let mut tx = HostTx::open(state, scope).await?;
    let before = tx
        .hosts()
        .get(id)
        .await
        .map_err(internal)?
        .ok_or_else(not_found)?;
    tx.hosts()
        .set_allow_list(id, &allow.to_stored(), now_us(state.clock.as_ref()))
        .await
        .map_err(internal)?;
    let event = meta.event(
        state.clock.now(),
        caller.actor(),
        "host.allow_list_changed",
        "host",
        Some(id.to_string()),
        Outcome::Success,
        json!({ "allow_list": { "old": AllowList::from_stored(&before.allow_list).entries(),
                                "new": allow.entries() } }),
    );
    tx.record(state, event).await?;
    let row = tx
        .hosts()
        .get(id)
        .await
        .map_err(internal)?
        .ok_or_else(not_found)?;
    tx.commit().await?;
    Ok(Json(view(row, now_us(state.clock.as_ref()))))
}

/// Deletes a host with every key it had: it can never come back with them; re-adding it means
/// a new registration and a new approval. Its live connection, on any node, ends at once.
#[utoipa::path(delete, path = "/api/v1/hosts/{host_id}", tag = "hosts",
    params(("host_id" = String, Path, description = "Host id")),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "No such host", content_type = "application/problem+json")))]
pub(crate) async fn delete_host(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    meta: RequestMeta,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    delete(&state, &meta, &caller, &Scope::Platform(&grant), &id).await
}

/// Deletes one of this workspace's hosts with every key it had.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/hosts/{host_id}", tag = "hosts",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("host_id" = String, Path, description = "Host id")),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "No such host in this workspace", content_type = "application/problem+json")))]
pub(crate) async fn delete_workspace_host(
    State(state): State<AppState>,
    meta: RequestMeta,
    caller: Caller,
    access: WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    delete(&state, &meta, &caller, &Scope::Workspace(&access), &path.1).await
}

async fn delete(
    state: &AppState,
    meta: &RequestMeta,
    caller: &Caller,
    scope: &Scope<'_>,
    id: &str,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(id)?;
    let mut tx = HostTx::open(state, scope).await?;
    let before = tx
        .hosts()
        .get(id)
        .await
        .map_err(internal)?
        .ok_or_else(not_found)?;
    tx.hosts().delete(id).await.map_err(internal)?;
    let mut event = meta.event(
        state.clock.now(),
        caller.actor(),
        "host.deleted",
        "host",
        Some(id.to_string()),
        Outcome::Success,
        json!({ "name": before.name, "key_id": before.key_id, "status": before.status }),
    );
    event.workspace_id = before.workspace_id.map(|w| w.to_string());
    tx.record(state, event).await?;
    tx.commit().await?;
    state
        .connections
        .kick(id, "revoked", "an administrator deleted this host");
    Ok(StatusCode::NO_CONTENT)
}

/// What an agent reports when it connects.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HelloInput {
    /// The machine's hostname.
    pub hostname: String,
    /// Operating system and version.
    pub os: String,
    /// `warden-agent` version.
    pub agent_version: String,
}

/// Where the host stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct HelloAnswer {
    /// The host's id.
    pub host_id: String,
    /// `pending`, `approved` or `rejected`.
    pub status: String,
    /// Whether it may receive work (approved only).
    pub may_work: bool,
    /// A session ticket (`wht_…`, 15 minutes): present it instead of the key to reconnect
    /// without a full key check.
    pub ticket: String,
}

fn reported(field: &'static str, value: &str) -> Result<(), ApiError> {
    if value.trim().is_empty() || value.chars().count() > 200 || value.chars().any(char::is_control)
    {
        return Err(ApiError(warden_core::CoreError::invalid(
            field,
            "must be 1 to 200 characters without control characters",
        )));
    }
    Ok(())
}

/// An agent announces itself with its host key (`Authorization: Bearer whk_…`): Warden
/// records what it reports and answers whether it may work. A pending or rejected host gets
/// no work. Every failure is the same 401; repeated failures get 429 with `Retry-After`.
#[utoipa::path(post, path = "/api/v1/agent/hello", tag = "agent",
    request_body(content = HelloInput, example = json!({"hostname": "build-01.internal", "os": "Debian 12", "agent_version": "0.1.0"})),
    responses((status = 200, description = "Known host", body = HelloAnswer),
        (status = 401, description = "Invalid host credentials", content_type = "application/problem+json"),
        (status = 429, description = "Too many failed attempts", content_type = "application/problem+json")))]
pub(crate) async fn agent_hello(
    State(state): State<AppState>,
    meta: RequestMeta,
    HostAccess(host): HostAccess,
    ApiJson(input): ApiJson<HelloInput>,
) -> Result<Json<HelloAnswer>, ApiError> {
    reported("hostname", &input.hostname)?;
    reported("os", &input.os)?;
    reported("agent_version", &input.agent_version)?;
    let ip = host.ip.to_string();
    let mut tx = state.store.as_host(&host.grant).await?;
    if !tx
        .record_hello(
            &host.grant,
            &warden_store::hosts::Hello {
                hostname: input.hostname.trim(),
                os: input.os.trim(),
                agent_version: input.agent_version.trim(),
                ip: &ip,
                now: now_us(state.clock.as_ref()),
            },
        )
        .await
        .map_err(internal)?
    {
        // Deleted between the key check and now.
        return Err(ApiError::from_status(StatusCode::UNAUTHORIZED));
    }
    let mut event = meta.event(
        state.clock.now(),
        host.actor(),
        "host.connected",
        "host",
        Some(host.host_id.to_string()),
        Outcome::Success,
        json!({ "key_id": host.key_id, "status": host.status.as_str(),
                "hostname": input.hostname.trim(), "agent_version": input.agent_version.trim() }),
    );
    event.client_ip = Some(host.ip);
    tx.record(&state.audit_key, &event)
        .await
        .map_err(internal)?;
    tx.commit().await.map_err(internal)?;
    let ticket = crate::hosts::ticket_for(&state.host_tickets, state.clock.as_ref(), &host)
        .ok_or_else(|| internal("cannot issue a host ticket"))?;
    Ok(Json(HelloAnswer {
        host_id: host.host_id.to_string(),
        status: host.status.as_str().to_owned(),
        may_work: host.status.may_work(),
        ticket,
    }))
}

/// The agent's connection: a WebSocket on which it says hello (protocol version, hostname,
/// OS, agent version), gets a welcome with its status and a ticket, then heartbeats. Frames
/// over 64 KiB, unknown messages and unsupported versions end the connection with a reason.
#[utoipa::path(get, path = "/api/v1/agent/connect", tag = "agent",
    responses((status = 101, description = "Switching to the agent protocol"),
        (status = 401, description = "Invalid host credentials", content_type = "application/problem+json"),
        (status = 429, description = "Too many failed attempts", content_type = "application/problem+json")))]
pub(crate) async fn agent_connect(
    State(state): State<AppState>,
    meta: RequestMeta,
    HostAccess(host): HostAccess,
    ws: axum::extract::WebSocketUpgrade,
) -> axum::response::Response {
    // Idle hosts are the common case: small buffers keep 10,000 of them cheap.
    ws.max_message_size(warden_protocol::MAX_MESSAGE_BYTES)
        .max_frame_size(warden_protocol::MAX_MESSAGE_BYTES)
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .on_upgrade(move |socket| crate::agent::session(state, meta, host, socket))
}

/// The workspaces a platform host serves.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostWorkspaces {
    /// Workspace ids; empty: every workspace.
    pub workspace_ids: Vec<String>,
}

/// Restricts a platform host to some workspaces (an empty list: all). Sessions of other
/// workspaces never go to it.
#[utoipa::path(put, path = "/api/v1/hosts/{host_id}/workspaces", tag = "hosts",
    params(("host_id" = String, Path, description = "Host id")),
    request_body(content = HostWorkspaces, example = json!({"workspace_ids": ["0190b3b0-0000-7000-8000-000000000001"]})),
    responses((status = 200, description = "Saved", body = HostWorkspaces),
        (status = 404, description = "No such platform host", content_type = "application/problem+json"),
        (status = 422, description = "A workspace does not exist", content_type = "application/problem+json")))]
pub(crate) async fn set_host_workspaces(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    meta: RequestMeta,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<HostWorkspaces>,
) -> Result<Json<HostWorkspaces>, ApiError> {
    let id = parse_id(&id)?;
    let bad = || {
        ApiError(warden_core::CoreError::invalid(
            "workspace_ids",
            "every entry must be the id of an existing workspace (at most 1000)",
        ))
    };
    if input.workspace_ids.len() > 1000 {
        return Err(bad());
    }
    let mut wanted = input
        .workspace_ids
        .iter()
        .map(|w| w.parse::<Uuid>().map_err(|_| bad()))
        .collect::<Result<Vec<_>, _>>()?;
    wanted.sort();
    wanted.dedup();
    let mut tx = state.store.hosts_admin(&grant).await?;
    let before = tx.all_hosts().workspaces_of(id).await.map_err(internal)?;
    match tx
        .all_hosts()
        .set_workspaces(id, &wanted)
        .await
        .map_err(internal)?
    {
        None => return Err(not_found()),
        Some(false) => return Err(bad()),
        Some(true) => {}
    }
    let event = meta.event(
        state.clock.now(),
        caller.actor(),
        "host.workspaces_changed",
        "host",
        Some(id.to_string()),
        Outcome::Success,
        json!({ "workspace_ids": {
            "old": before.iter().map(Uuid::to_string).collect::<Vec<_>>(),
            "new": wanted.iter().map(Uuid::to_string).collect::<Vec<_>>() } }),
    );
    tx.record(&state.audit_key, &event)
        .await
        .map_err(internal)?;
    tx.commit().await.map_err(internal)?;
    Ok(Json(HostWorkspaces {
        workspace_ids: wanted.iter().map(Uuid::to_string).collect(),
    }))
}
