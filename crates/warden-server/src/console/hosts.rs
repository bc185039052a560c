//! Console → Hosts: every host, those waiting for approval first, approved or rejected by a
//! form (platform `hosts.approve`); registering one (its key shown once, on the answer page,
//! never again); a host's page with its allow-list, key rotation (the new key shown once, the
//! old one kept for a grace period) and deletion. Through `warden_core::hosts::admin` as the
//! API does.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use warden_core::hosts::admin::{self, Scope};
use warden_domain::access::Permission;
use warden_domain::hosts::HostStatus;

use super::{Done, Fields, Frame, frame, render, when};
use crate::http::authz::{PlatformAccess, UserOp};
use crate::http::problem::ApiError;
use crate::http::query::ApiQuery;
use crate::identity::Caller;
use crate::state::AppState;

pub(super) fn routes() -> crate::http::routes::Routes<AppState> {
    use warden_domain::access::Access::Platform;
    crate::http::routes::Routes::new()
        .add(
            Platform(Permission::HOSTS_READ),
            utoipa_axum::routes!(hosts),
        )
        .add(
            Platform(Permission::HOSTS_APPROVE),
            utoipa_axum::routes!(approve),
        )
        .add(
            Platform(Permission::HOSTS_APPROVE),
            utoipa_axum::routes!(reject),
        )
        .add(
            Platform(Permission::HOSTS_CREATE),
            utoipa_axum::routes!(register),
        )
        .add(
            Platform(Permission::HOSTS_READ),
            utoipa_axum::routes!(host_page),
        )
        .add(
            Platform(Permission::HOSTS_UPDATE),
            utoipa_axum::routes!(allow_list),
        )
        .add(
            Platform(Permission::HOSTS_UPDATE),
            utoipa_axum::routes!(rotate_key),
        )
        .add(
            Platform(Permission::HOSTS_DELETE),
            utoipa_axum::routes!(delete),
        )
        .add(
            Platform(Permission::HOSTS_UPDATE),
            utoipa_axum::routes!(workspaces),
        )
}

pub(super) struct HostItem {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub status: String,
    pub online: bool,
    pub detail: String,
}

/// A host as the lists show it.
pub(super) fn item(h: warden_store::hosts::HostRow, now: i64) -> HostItem {
    let online = admin::online(&h, now);
    let mut detail = Vec::new();
    if let Some(host) = &h.hostname {
        detail.push(format!("reports {host}"));
    }
    if let Some(os) = &h.os {
        detail.push(os.clone());
    }
    if let Some(ip) = &h.last_ip {
        detail.push(format!("from {ip}"));
    }
    detail.push(match h.last_seen_at {
        Some(t) => format!("last seen {}", when(t)),
        None => "never connected".to_owned(),
    });
    if h.workspace_id.is_some() {
        detail.push("one workspace's own".to_owned());
    }
    HostItem {
        id: h.id.to_string(),
        name: h.name,
        kind: h.kind,
        status: h.status,
        online,
        detail: detail.join(" · "),
    }
}

#[derive(Template)]
#[template(path = "console/hosts.html")]
struct HostsPage {
    frame: Frame,
    pending: Vec<HostItem>,
    others: Vec<HostItem>,
    may_decide: bool,
    may_register: bool,
}

/// The hosts, waiting ones first.
#[utoipa::path(get, path = "/console/hosts", tag = "console", params(Done),
    responses((status = 200, description = "Page", content_type = "text/html"),
              (status = 303, description = "Not signed in: to /sign-in"),
              (status = 403, description = "Without hosts.read", content_type = "text/html")))]
pub(crate) async fn hosts(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    UserOp(op): UserOp,
    caller: Caller,
    ApiQuery(done): ApiQuery<Done>,
) -> Result<Response, ApiError> {
    let now = op.now_us();
    let frame = frame(
        &state,
        &caller,
        "hosts",
        super::notice(done.done.as_deref()),
    )
    .await?;
    let may_decide = frame.may.contains(Permission::HOSTS_APPROVE);
    let (mut waiting, mut others) = (Vec::new(), Vec::new());
    for h in admin::list(&state.ctx, Scope::Platform(&grant)).await? {
        let pending = h.status == HostStatus::Pending.as_str();
        let item = item(h, now);
        if pending {
            waiting.push(item);
        } else {
            others.push(item);
        }
    }
    let page = HostsPage {
        may_register: frame.may.contains(Permission::HOSTS_CREATE),
        frame,
        pending: waiting,
        others,
        may_decide,
    };
    Ok(render(&page, StatusCode::OK))
}

async fn decide(
    state: &AppState,
    grant: &warden_store::tenancy::PlatformGrant,
    op: &warden_core::Op,
    id: &str,
    status: HostStatus,
) -> Result<Response, ApiError> {
    admin::decide(&state.ctx, op, grant, id, status).await?;
    let done = if status == HostStatus::Approved {
        "host-approved"
    } else {
        "host-rejected"
    };
    Ok(Redirect::to(&format!("/console/hosts?done={done}")).into_response())
}

/// Approves a host (it may receive work).
#[utoipa::path(post, path = "/console/hosts/{host_id}/approve", tag = "console",
    params(("host_id" = String, Path, description = "Host id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Back to the hosts")))]
pub(crate) async fn approve(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    UserOp(op): UserOp,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    decide(&state, &grant, &op, &id, HostStatus::Approved).await
}

/// Rejects a host (it gets no work; its connection ends).
#[utoipa::path(post, path = "/console/hosts/{host_id}/reject", tag = "console",
    params(("host_id" = String, Path, description = "Host id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Back to the hosts")))]
pub(crate) async fn reject(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    UserOp(op): UserOp,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    decide(&state, &grant, &op, &id, HostStatus::Rejected).await
}

/// The answer to a registration or a rotation: the key, this once.
#[derive(Template)]
#[template(path = "console/host_key.html")]
struct KeyPage {
    frame: Frame,
    name: String,
    key: zeroize::Zeroizing<String>,
    rotated: bool,
    /// Where "go to the host" leads.
    back: String,
}

fn lines(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Registers the host a form describes (`name`, `kind`, `allow_list`) in `scope` and answers
/// with its key, shown this once; `back` names where its page is.
pub(super) async fn register_from(
    state: &AppState,
    op: &warden_core::Op,
    caller: &Caller,
    scope: Scope<'_>,
    body: &[u8],
    section: &'static str,
    back: impl FnOnce(&str) -> String,
) -> Result<Response, ApiError> {
    let form = Fields::parse(body);
    let input = admin::NewHostInput::parse(
        form.text("name").trim(),
        form.given("kind").unwrap_or("session"),
        &lines(form.text("allow_list")),
    )?;
    let made = admin::register(&state.ctx, op, scope, input).await?;
    let page = KeyPage {
        frame: frame(state, caller, section, None).await?,
        back: back(&made.host.id.to_string()),
        name: made.host.name.clone(),
        key: made.api_key,
        rotated: false,
    };
    Ok(render(&page, StatusCode::OK))
}

/// Registers a host (`name`, `kind`, `allow_list`: addresses or networks, blank for any) and
/// shows its key once.
#[utoipa::path(post, path = "/console/hosts", tag = "console",
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Registered: the key, shown once", content_type = "text/html")))]
pub(crate) async fn register(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    UserOp(op): UserOp,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    register_from(
        &state,
        &op,
        &caller,
        Scope::Platform(&grant),
        &body,
        "hosts",
        |id| format!("/console/hosts/{id}"),
    )
    .await
}

/// A workspace a platform host may serve, and whether it is chosen.
pub(super) struct Served {
    id: String,
    name: String,
    chosen: bool,
}

#[derive(Template)]
#[template(path = "console/host.html")]
struct HostPage {
    frame: Frame,
    h: HostItem,
    /// Where its forms post (`…/allow-list`, `…/rotate-key`, `…/delete`).
    base: String,
    /// The list it belongs to.
    back: String,
    /// For a platform host, with `hosts.update`: every workspace, the chosen ones ticked.
    served: Option<Vec<Served>>,
    restricted: bool,
    allow: String,
    key_id: String,
    agent_version: String,
    previous_key_until: Option<String>,
    may_update: bool,
    may_delete: bool,
}

/// One host: what it reports, its allow-list, key and deletion.
#[utoipa::path(get, path = "/console/hosts/{host_id}", tag = "console",
    params(("host_id" = String, Path, description = "Host id"), Done),
    responses((status = 200, description = "Page", content_type = "text/html"),
              (status = 404, description = "No such host", content_type = "text/html")))]
pub(crate) async fn host_page(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    UserOp(op): UserOp,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(done): ApiQuery<Done>,
) -> Result<Response, ApiError> {
    let h = admin::get(&state.ctx, Scope::Platform(&grant), &id).await?;
    let chosen = admin::workspaces_of(&state.ctx, &grant, &id).await?;
    let may_update = grant.platform().contains(Permission::HOSTS_UPDATE);
    // Every workspace, to choose from (a platform-wide listing, audited as the API's is).
    let served = if may_update && h.workspace_id.is_none() {
        let listing = warden_core::workspaces::Listing {
            all: true,
            archived: false,
            cursor: None,
            limit: Some(200),
        };
        let all =
            warden_core::workspaces::list(&state.ctx, &op, &caller.principal, listing).await?;
        Some(
            all.items
                .into_iter()
                .map(|w| Served {
                    chosen: chosen.contains(&w.id),
                    id: w.id.to_string(),
                    name: w.name,
                })
                .collect(),
        )
    } else {
        None
    };
    let place = HostPlace {
        base: format!("/console/hosts/{id}"),
        back: "/console/hosts".to_owned(),
        section: "hosts",
        may_update,
        may_delete: grant.platform().contains(Permission::HOSTS_DELETE),
    };
    let notice = super::notice(done.done.as_deref());
    show_host(
        &state,
        &op,
        &caller,
        h,
        place,
        served,
        !chosen.is_empty(),
        notice,
    )
    .await
}

/// Where a host's page lives, and what the person may do there.
pub(super) struct HostPlace {
    pub base: String,
    pub back: String,
    pub section: &'static str,
    pub may_update: bool,
    pub may_delete: bool,
}

/// A host's page: what it reports, its allow-list, key and deletion (and, for a shared host,
/// the workspaces it serves).
#[allow(clippy::too_many_arguments)]
pub(super) async fn show_host(
    state: &AppState,
    op: &warden_core::Op,
    caller: &Caller,
    h: warden_store::hosts::HostRow,
    place: HostPlace,
    served: Option<Vec<Served>>,
    restricted: bool,
    notice: Option<&'static str>,
) -> Result<Response, ApiError> {
    let frame = frame(state, caller, place.section, notice).await?;
    let page = HostPage {
        allow: h
            .allow_list
            .split_whitespace()
            .collect::<Vec<_>>()
            .join("\n"),
        key_id: h.key_id.clone(),
        agent_version: h
            .agent_version
            .clone()
            .unwrap_or_else(|| "not reported yet".to_owned()),
        previous_key_until: h.previous_key_until.map(when),
        may_update: place.may_update,
        may_delete: place.may_delete,
        restricted,
        served,
        base: place.base,
        back: place.back,
        h: item(h, op.now_us()),
        frame,
    };
    Ok(render(&page, StatusCode::OK))
}

/// Replaces the allow-list of the host `id` in `scope` with the form's `allow_list`.
pub(super) async fn allow_list_from(
    state: &AppState,
    op: &warden_core::Op,
    scope: Scope<'_>,
    id: &str,
    body: &[u8],
) -> Result<(), ApiError> {
    let entries = lines(Fields::parse(body).text("allow_list"));
    admin::set_allow_list(&state.ctx, op, scope, id, &entries).await?;
    Ok(())
}

/// Issues a new key for the host `id` in `scope` (the form's `grace_minutes`) and answers
/// with it, shown this once.
pub(super) async fn rotate_from(
    state: &AppState,
    op: &warden_core::Op,
    caller: &Caller,
    scope: Scope<'_>,
    id: &str,
    body: &[u8],
    (section, back): (&'static str, String),
) -> Result<Response, ApiError> {
    let form = Fields::parse(body);
    let grace = match form.given("grace_minutes") {
        None => None,
        Some(g) => Some(g.parse::<i64>().map_err(|_| {
            warden_core::CoreError::invalid("grace_minutes", "must be between 0 and 10080 minutes")
        })?),
    };
    let made = admin::rotate_key(&state.ctx, op, scope, id, grace).await?;
    let page = KeyPage {
        frame: frame(state, caller, section, None).await?,
        back,
        name: made.host.name.clone(),
        key: made.api_key,
        rotated: true,
    };
    Ok(render(&page, StatusCode::OK))
}

/// Replaces a host's allow-list (`allow_list`: addresses or networks, one per line; blank
/// allows any address).
#[utoipa::path(post, path = "/console/hosts/{host_id}/allow-list", tag = "console",
    params(("host_id" = String, Path, description = "Host id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Saved: back to the host")))]
pub(crate) async fn allow_list(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    UserOp(op): UserOp,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    allow_list_from(&state, &op, Scope::Platform(&grant), &id, &body).await?;
    Ok(Redirect::to(&format!("/console/hosts/{id}?done=allow-list-saved")).into_response())
}

/// Issues a new key for a host (`grace_minutes`: how long the current one keeps working,
/// default 60) and shows it once.
#[utoipa::path(post, path = "/console/hosts/{host_id}/rotate-key", tag = "console",
    params(("host_id" = String, Path, description = "Host id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "The new key, shown once", content_type = "text/html")))]
pub(crate) async fn rotate_key(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    UserOp(op): UserOp,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let back = format!("/console/hosts/{id}");
    rotate_from(
        &state,
        &op,
        &caller,
        Scope::Platform(&grant),
        &id,
        &body,
        ("hosts", back),
    )
    .await
}

/// Deletes a host: its key stops working and its connection ends.
#[utoipa::path(post, path = "/console/hosts/{host_id}/delete", tag = "console",
    params(("host_id" = String, Path, description = "Host id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Deleted: back to the hosts")))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    UserOp(op): UserOp,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    admin::delete(&state.ctx, &op, Scope::Platform(&grant), &id).await?;
    Ok(Redirect::to("/console/hosts?done=host-deleted").into_response())
}

/// Restricts a platform host to the ticked workspaces (`workspace`, one field each; none:
/// every workspace may use it).
#[utoipa::path(post, path = "/console/hosts/{host_id}/workspaces", tag = "console",
    params(("host_id" = String, Path, description = "Host id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Saved: back to the host")))]
pub(crate) async fn workspaces(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    UserOp(op): UserOp,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let form = Fields::parse(&body);
    let ids: Vec<String> = form.all("workspace").map(str::to_owned).collect();
    admin::set_workspaces(&state.ctx, &op, &grant, &id, &ids).await?;
    Ok(Redirect::to(&format!("/console/hosts/{id}?done=host-workspaces-saved")).into_response())
}
