//! Console → the organization switcher in the header (multi-tenant mode): a person who may act
//! in more than one organization picks one; the same use case as
//! `POST /api/v1/auth/organization`, then a new access cookie naming it.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use utoipa_axum::routes;
use warden_core::organizations;
use warden_domain::access::{Access, PermissionSet};
use warden_domain::organizations::{ORG_MANAGER, OrgId};

use super::Fields;
use crate::http::authz::UserOp;
use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::identity::{Caller, cookies};
use crate::state::AppState;

pub(super) fn routes() -> Routes<AppState> {
    Routes::new().add(Access::SignedIn, routes!(switch))
}

/// One organization in the switcher.
#[derive(Debug)]
pub(crate) struct OrgChoice {
    pub id: String,
    pub name: String,
    pub current: bool,
}

/// The organizations the header offers (empty unless there is a choice to make), and whether
/// the person administers the one they act in: its admin, or a platform administrator
/// managing organizations — never for the default organization, which has no admins.
pub(crate) async fn choices(
    state: &AppState,
    caller: &Caller,
    may: PermissionSet,
) -> Result<(Vec<OrgChoice>, bool), ApiError> {
    if caller.principal.is_token() {
        return Ok((Vec::new(), false));
    }
    let all = organizations::mine(&state.ctx, &caller.principal).await?;
    let admin = all.iter().any(|o| {
        o.current
            && !OrgId::from_uuid(o.row.id).is_default()
            && (o.row.role.as_deref() == Some("admin") || may.contains(ORG_MANAGER))
    });
    if all.len() < 2 {
        return Ok((Vec::new(), admin));
    }
    Ok((
        all.into_iter()
            .map(|o| OrgChoice {
                id: o.row.id.to_string(),
                name: o.row.name,
                current: o.current,
            })
            .collect(),
        admin,
    ))
}

/// Acts in another organization (form field `organization`: its id or slug), then to its
/// workspaces.
#[utoipa::path(post, path = "/console/organization", tag = "console",
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "To the organization's workspaces")))]
pub(crate) async fn switch(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    let form = Fields::parse(&body);
    let s = organizations::switch(
        &state.ctx,
        &op,
        &caller.principal,
        form.text("organization"),
    )
    .await?;
    let mut res = Redirect::to("/console/workspaces?done=org-switched").into_response();
    if let Some(v) = cookies::set(cookies::ACCESS, &s.access_token, s.expires_in, true) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(res)
}
