//! Console → Profile: the person's name, signed-in devices (sign any out; this browser's own ends
//! this session), passkeys, personal access tokens (create one — its secret shown once — or
//! revoke), and their password. Through `warden_core::identity`, as the API; what needs a
//! session (not a token) refuses a personal access token there too.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use utoipa_axum::routes;
use warden_core::identity::{account, passkeys, tokens};
use warden_domain::access::{Access, Permission};

use super::{Done, Fields, Frame, agent, frame, render, when};
use crate::http::authz::UserOp;
use crate::http::problem::ApiError;
use crate::http::query::ApiQuery;
use crate::http::routes::Routes;
use crate::identity::Caller;
use crate::state::AppState;

pub(super) fn routes() -> Routes<AppState> {
    Routes::new()
        .add_recovery(Access::SignedIn, routes!(profile))
        .add_recovery(Access::SignedIn, routes!(revoke_device))
        .add(Access::SignedIn, routes!(revoke_token))
        .add(Access::SignedIn, routes!(create_token))
        .add_recovery(Access::SignedIn, routes!(change_password))
        .add(Access::SignedIn, routes!(set_name))
}

struct DeviceItem {
    id: String,
    agent: String,
    current: bool,
    created_at: String,
    last_used_at: String,
    last_ip: Option<String>,
}

struct PasskeyItem {
    name: String,
    flagged: bool,
    created_at: String,
    last_used_at: String,
}

struct TokenItem {
    id: String,
    name: String,
    permissions: String,
    expires_at: String,
    last_used_at: String,
}

#[derive(Template)]
#[template(path = "console/profile.html")]
struct ProfilePage {
    frame: Frame,
    devices: Vec<DeviceItem>,
    passkeys: Vec<PasskeyItem>,
    tokens: Vec<TokenItem>,
    /// The permissions a new token may carry: the person's own.
    grantable: Vec<String>,
    /// The person's workspaces, one of which a token may be kept to (id, name).
    workspaces: Vec<(String, String)>,
}

/// Profile: signed-in devices (sign any out), passkeys, personal access tokens (revoke).
#[utoipa::path(get, path = "/console/profile", tag = "console", params(Done),
    responses((status = 200, description = "Page", content_type = "text/html"),
              (status = 303, description = "Not signed in: to /sign-in")))]
pub(crate) async fn profile(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    caller: Caller,
    ApiQuery(done): ApiQuery<Done>,
) -> Result<Response, ApiError> {
    let p = &caller.principal;
    let now = op.now_us();
    let devices = account::active_devices(&state.ctx, &op, Some(p.user_id))
        .await?
        .into_iter()
        .map(|d| DeviceItem {
            id: d.id.to_string(),
            agent: agent(d.user_agent.as_deref()),
            current: d.id == p.session_id,
            created_at: when(d.created_at),
            last_used_at: when(d.last_used_at),
            last_ip: d.last_ip,
        })
        .collect();
    let passkeys = passkeys::mine(&state.ctx, p)
        .await?
        .into_iter()
        .map(|k| PasskeyItem {
            name: k.name,
            flagged: k.flagged_at.is_some(),
            created_at: when(k.created_at),
            last_used_at: k.last_used_at.map_or_else(|| "never".to_owned(), when),
        })
        .collect();
    let tokens = tokens::mine(&state.ctx, &op, p)
        .await?
        .into_iter()
        .filter(|t| t.revoked_at.is_none() && t.expires_at > now)
        .map(|t| TokenItem {
            id: t.id.to_string(),
            name: t.name,
            permissions: t.permissions.replace(' ', ", "),
            expires_at: when(t.expires_at),
            last_used_at: t.last_used_at.map_or_else(|| "never".to_owned(), when),
        })
        .collect();
    let listing = warden_core::workspaces::Listing {
        all: false,
        archived: false,
        cursor: None,
        limit: Some(200),
    };
    let workspaces = warden_core::workspaces::list(&state.ctx, &op, p, listing)
        .await?
        .items
        .into_iter()
        .map(|w| (w.id.to_string(), w.name))
        .collect();
    let frame = frame(
        &state,
        &caller,
        "profile",
        super::notice(done.done.as_deref()),
    )
    .await?;
    let page = ProfilePage {
        workspaces,
        grantable: frame.may.names(),
        frame,
        devices,
        passkeys,
        tokens,
    };
    Ok(render(&page, StatusCode::OK))
}

/// Signs one of the person's devices out (this browser too: then to the sign-in page).
#[utoipa::path(post, path = "/console/profile/devices/{id}/revoke", tag = "console",
    params(("id" = String, Path, description = "Device session id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Back to the profile, or to /sign-in for this browser")))]
pub(crate) async fn revoke_device(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    account::revoke_device(&state.ctx, &op, &caller.principal, &id).await?;
    if id == caller.principal.session_id.to_string() {
        return Ok(Redirect::to("/sign-in").into_response());
    }
    Ok(Redirect::to("/console/profile?done=device-signed-out").into_response())
}

/// Revokes one of the person's personal access tokens.
#[utoipa::path(post, path = "/console/profile/tokens/{id}/revoke", tag = "console",
    params(("id" = String, Path, description = "Token id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Back to the profile")))]
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    tokens::revoke_mine(&state.ctx, &op, &caller.principal, &id).await?;
    Ok(Redirect::to("/console/profile?done=token-revoked").into_response())
}

/// A token just created: its secret, this once.
#[derive(Template)]
#[template(path = "console/token_created.html")]
struct TokenCreatedPage {
    frame: Frame,
    name: String,
    secret: zeroize::Zeroizing<String>,
    expires_at: String,
}

/// Creates a personal access token (`name`, one `permission` field each, `expires_in_days`)
/// and shows its secret once.
#[utoipa::path(post, path = "/console/profile/tokens", tag = "console",
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Created: the secret, shown once", content_type = "text/html")))]
pub(crate) async fn create_token(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    let form = Fields::parse(&body);
    let days = form.text("expires_in_days").parse::<u32>().map_err(|_| {
        warden_core::CoreError::invalid("expires_in_days", "must be a number of days, 7 to 365")
    })?;
    let input = tokens::NewToken {
        name: form.text("name").to_owned(),
        permissions: form.all("permission").map(str::to_owned).collect(),
        workspace_id: form.given("workspace_id").map(str::to_owned),
        expires_in_days: days,
    };
    let made = tokens::create(&state.ctx, &op, &caller.principal, input).await?;
    let page = TokenCreatedPage {
        frame: frame(&state, &caller, "profile", None).await?,
        name: made.row.name.clone(),
        expires_at: when(made.row.expires_at),
        secret: made.secret,
    };
    Ok(render(&page, StatusCode::OK))
}

/// Changes the person's password (`current_password`, `new_password`, `confirm`): every
/// other session of theirs is signed out.
#[utoipa::path(post, path = "/console/profile/password", tag = "console",
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Changed: back to the profile")))]
pub(crate) async fn change_password(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    let form = Fields::parse(&body);
    if form.text("new_password") != form.text("confirm") {
        return Err(
            warden_core::CoreError::invalid("confirm", "the two new passwords differ").into(),
        );
    }
    account::change_password(
        &state.ctx,
        &op,
        &caller.principal,
        form.text("current_password").to_owned(),
        form.text("new_password").to_owned(),
    )
    .await
    .map_err(|e| {
        // A wrong current password is a mistake in the form, not a lost session: the page
        // says so instead of sending the browser to sign in.
        if e.status == 401 {
            warden_core::CoreError::invalid("current_password", "is not your current password")
        } else {
            e
        }
    })?;
    Ok(Redirect::to("/console/profile?done=password-changed").into_response())
}

/// Sets the person's display name (`name`; blank clears it).
#[utoipa::path(post, path = "/console/profile/name", tag = "console",
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Saved: back to the profile")))]
pub(crate) async fn set_name(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    let form = Fields::parse(&body);
    account::set_display_name(&state.ctx, &op, &caller.principal, form.text("name")).await?;
    Ok(Redirect::to("/console/profile?done=name-saved").into_response())
}
