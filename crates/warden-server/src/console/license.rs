//! Console → Licence: where the licence stands (every signed-in person sees the state and
//! features; administrators the usage, machine and history), and, for administrators, the
//! form that installs a licence file. Both are recovery routes: they answer while the
//! licence is missing or expired, which is when they are needed.

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use warden_core::license::install;
use warden_domain::access::Permission;

use super::{Done, Frame, frame, render};
use crate::api::license::{LicenseStatus, status_view};
use crate::http::authz::{PlatformAccess, UserOp};
use crate::http::problem::ApiError;
use crate::http::query::ApiQuery;
use crate::identity::Caller;
use crate::state::AppState;

/// An RFC 3339 time as the console writes times: `2026-12-03 07:41 UTC`.
fn shown(t: &str) -> String {
    match (t.get(..10), t.get(11..16)) {
        (Some(d), Some(h)) if t.len() > 16 => format!("{d} {h} UTC"),
        _ => t.to_owned(),
    }
}

#[derive(Template)]
#[template(path = "console/license.html")]
struct LicensePage {
    frame: Frame,
    status: LicenseStatus,
    headline: &'static str,
    admin: bool,
    alert: Option<&'static str>,
    /// For those who cannot install one: whom to ask.
    contacts: Vec<String>,
}

async fn page(
    state: &AppState,
    op: &warden_core::Op,
    caller: &Caller,
    notice: Option<&'static str>,
    alert: Option<&'static str>,
    code: StatusCode,
) -> Result<Response, ApiError> {
    let frame = frame(state, caller, "license", notice).await?;
    let status = status_view(state, op, caller).await?;
    let headline = match status.state {
        "valid" => "The licence is valid",
        "grace" => "The licence has expired: the grace period is running",
        "invalid" => "There is no valid licence",
        _ => "This build runs unlicensed: every feature is on",
    };
    let admin = frame.may.contains(Permission::ADMIN_UPDATE);
    let contacts = if admin {
        Vec::new()
    } else {
        install::contacts(&state.ctx).await?
    };
    let page = LicensePage {
        admin,
        contacts,
        frame,
        status,
        headline,
        alert,
    };
    Ok(render(&page, code))
}

/// Where the licence stands.
#[utoipa::path(get, path = "/console/license", tag = "console", params(Done),
    responses((status = 200, description = "Page", content_type = "text/html"),
              (status = 303, description = "Not signed in: to /sign-in")))]
pub(crate) async fn license(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    caller: Caller,
    ApiQuery(done): ApiQuery<Done>,
) -> Result<Response, ApiError> {
    let notice = super::notice(done.done.as_deref());
    page(&state, &op, &caller, notice, None, StatusCode::OK).await
}

/// Installs the licence file pasted into the form (`license`); a refused file is shown
/// with the reason and changes nothing.
#[utoipa::path(post, path = "/console/license", tag = "console",
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Installed: back to the licence page"),
              (status = 422, description = "Refused, with the reason", content_type = "text/html")))]
pub(crate) async fn install_license(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    caller: Caller,
    PlatformAccess(grant): PlatformAccess,
    body: Bytes,
) -> Result<Response, ApiError> {
    let text = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "license")
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    match install::install(&state.ctx, &op, &grant, &text).await {
        Ok(()) => Ok(Redirect::to("/console/license?done=license-installed").into_response()),
        Err(e) => {
            let code = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            page(&state, &op, &caller, None, Some(e.detail), code).await
        }
    }
}
