//! Hosts: registration with a key shown once, approval, allow-lists, key rotation, deletion.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;
use uuid::Uuid;
use warden_core::hosts::admin::{self, Scope};
use warden_core::hosts::agent::{self, Report};
use warden_domain::access::{Access, Permission};
use warden_domain::hosts::{AllowList, HostStatus};
use warden_store::hosts::HostRow;

use super::me::rfc3339;
use crate::audit::request::RequestMeta;
use crate::http::authz::{HostAccess, PlatformAccess, UserOp, WorkspaceAccess};
use crate::http::json::ApiJson;
use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::state::AppState;

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
    let online = admin::online(&h, now);
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

fn with_key(made: admin::WithKey, now: i64) -> HostWithKey {
    HostWithKey {
        host: view(made.host, now),
        api_key: made.api_key.to_string(),
    }
}

impl std::fmt::Debug for HostWithKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostWithKey")
            .field("host", &self.host)
            .finish_non_exhaustive()
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
    UserOp(op): UserOp,
    ApiJson(input): ApiJson<NewHostInput>,
) -> Result<(StatusCode, Json<HostWithKey>), ApiError> {
    let input = admin::NewHostInput::parse(&input.name, &input.kind, &input.allow_list)?;
    let made = admin::register(&state.ctx, &op, Scope::Platform(&grant), input).await?;
    Ok((StatusCode::CREATED, Json(with_key(made, op.now_us()))))
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
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    ApiJson(input): ApiJson<NewHostInput>,
) -> Result<(StatusCode, Json<HostWithKey>), ApiError> {
    let input = admin::NewHostInput::parse(&input.name, &input.kind, &input.allow_list)?;
    let made = admin::register(&state.ctx, &op, Scope::Workspace(&grant), input).await?;
    Ok((StatusCode::CREATED, Json(with_key(made, op.now_us()))))
}

/// Every host, platform-wide and workspace-bound, by name.
#[utoipa::path(get, path = "/api/v1/hosts", tag = "hosts",
    responses((status = 200, description = "Hosts", body = Vec<HostView>)))]
pub(crate) async fn list_hosts(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    UserOp(op): UserOp,
) -> Result<Json<Vec<HostView>>, ApiError> {
    let rows = admin::list(&state.ctx, Scope::Platform(&grant)).await?;
    Ok(Json(
        rows.into_iter().map(|h| view(h, op.now_us())).collect(),
    ))
}

/// This workspace's own hosts, by name.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/hosts", tag = "hosts",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    responses((status = 200, description = "Hosts", body = Vec<HostView>)))]
pub(crate) async fn list_workspace_hosts(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
) -> Result<Json<Vec<HostView>>, ApiError> {
    let rows = admin::list(&state.ctx, Scope::Workspace(&grant)).await?;
    Ok(Json(
        rows.into_iter().map(|h| view(h, op.now_us())).collect(),
    ))
}

/// One host.
#[utoipa::path(get, path = "/api/v1/hosts/{host_id}", tag = "hosts",
    params(("host_id" = String, Path, description = "Host id")),
    responses((status = 200, description = "The host", body = HostView),
        (status = 404, description = "No such host", content_type = "application/problem+json")))]
pub(crate) async fn get_host(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    UserOp(op): UserOp,
    Path(id): Path<String>,
) -> Result<Json<HostView>, ApiError> {
    let row = admin::get(&state.ctx, Scope::Platform(&grant), &id).await?;
    Ok(Json(view(row, op.now_us())))
}

/// One of this workspace's hosts.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/hosts/{host_id}", tag = "hosts",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("host_id" = String, Path, description = "Host id")),
    responses((status = 200, description = "The host", body = HostView),
        (status = 404, description = "No such host in this workspace", content_type = "application/problem+json")))]
pub(crate) async fn get_workspace_host(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<Json<HostView>, ApiError> {
    let row = admin::get(&state.ctx, Scope::Workspace(&grant), &path.1).await?;
    Ok(Json(view(row, op.now_us())))
}

/// Approves a host: it may receive work.
#[utoipa::path(post, path = "/api/v1/hosts/{host_id}/approve", tag = "hosts",
    params(("host_id" = String, Path, description = "Host id")),
    responses((status = 200, description = "Approved", body = HostView),
        (status = 404, description = "No such host", content_type = "application/problem+json")))]
pub(crate) async fn approve_host(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    UserOp(op): UserOp,
    Path(id): Path<String>,
) -> Result<Json<HostView>, ApiError> {
    let row = admin::decide(&state.ctx, &op, &grant, &id, HostStatus::Approved).await?;
    Ok(Json(view(row, op.now_us())))
}

/// Rejects (or revokes the approval of) a host: it gets no work.
#[utoipa::path(post, path = "/api/v1/hosts/{host_id}/reject", tag = "hosts",
    params(("host_id" = String, Path, description = "Host id")),
    responses((status = 200, description = "Rejected", body = HostView),
        (status = 404, description = "No such host", content_type = "application/problem+json")))]
pub(crate) async fn reject_host(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    UserOp(op): UserOp,
    Path(id): Path<String>,
) -> Result<Json<HostView>, ApiError> {
    let row = admin::decide(&state.ctx, &op, &grant, &id, HostStatus::Rejected).await?;
    Ok(Json(view(row, op.now_us())))
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
    UserOp(op): UserOp,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<Rotation>,
) -> Result<Json<HostWithKey>, ApiError> {
    let scope = Scope::Platform(&grant);
    let made = admin::rotate_key(&state.ctx, &op, scope, &id, input.grace_minutes).await?;
    Ok(Json(with_key(made, op.now_us())))
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
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiJson(input): ApiJson<Rotation>,
) -> Result<Json<HostWithKey>, ApiError> {
    let scope = Scope::Workspace(&grant);
    let made = admin::rotate_key(&state.ctx, &op, scope, &path.1, input.grace_minutes).await?;
    Ok(Json(with_key(made, op.now_us())))
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
    UserOp(op): UserOp,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<AllowListInput>,
) -> Result<Json<HostView>, ApiError> {
    let scope = Scope::Platform(&grant);
    let row = admin::set_allow_list(&state.ctx, &op, scope, &id, &input.allow_list).await?;
    Ok(Json(view(row, op.now_us())))
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
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiJson(input): ApiJson<AllowListInput>,
) -> Result<Json<HostView>, ApiError> {
    let scope = Scope::Workspace(&grant);
    let row = admin::set_allow_list(&state.ctx, &op, scope, &path.1, &input.allow_list).await?;
    Ok(Json(view(row, op.now_us())))
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
    UserOp(op): UserOp,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    admin::delete(&state.ctx, &op, Scope::Platform(&grant), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes one of this workspace's hosts with every key it had.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/hosts/{host_id}", tag = "hosts",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("host_id" = String, Path, description = "Host id")),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "No such host in this workspace", content_type = "application/problem+json")))]
pub(crate) async fn delete_workspace_host(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    admin::delete(&state.ctx, &op, Scope::Workspace(&grant), &path.1).await?;
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
    let report = Report::parse(&input.hostname, &input.os, &input.agent_version)?;
    let op = meta.host_op(&host, state.ctx.clock.as_ref());
    if !agent::hello(&state.ctx, &op, &host, &report, None).await? {
        // Deleted between the key check and now.
        return Err(ApiError::from_status(StatusCode::UNAUTHORIZED));
    }
    let ticket =
        warden_core::hosts::ticket_for(&state.ctx.host_tickets, state.ctx.clock.as_ref(), &host)
            .ok_or_else(|| ApiError::internal(&"cannot issue a host ticket"))?;
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
    UserOp(op): UserOp,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<HostWorkspaces>,
) -> Result<Json<HostWorkspaces>, ApiError> {
    let ids = &input.workspace_ids;
    let saved = admin::set_workspaces(&state.ctx, &op, &grant, &id, ids).await?;
    Ok(Json(HostWorkspaces {
        workspace_ids: saved.iter().map(Uuid::to_string).collect(),
    }))
}
