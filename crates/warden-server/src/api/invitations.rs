//! Invitations: administrators invite by email with a platform role; the invitee accepts
//! through the API or the page the mailed link opens, choosing a password.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use warden_core::identity::flows::Refusal;
use warden_core::invitations::{self, Accepted};
use warden_domain::access::{Access, Permission};
use warden_store::invitations::InvitationRow;

use super::auth::{TokenResponse, granted, refused, set_session_cookies};
use super::links::{LinkQuery, link_refused};
use crate::http::authz::{AnonymousOp, PlatformAccess, UserOp};
use crate::http::json::ApiJson;
use crate::http::page::{escape, page};
use crate::http::problem::ApiError;
use crate::http::query::ApiQuery;
use crate::http::routes::Routes;
use crate::identity::cookies;
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    use Access::Platform;
    Routes::new()
        .add(Platform(Permission::USERS_CREATE), routes!(send))
        .add(Platform(Permission::USERS_READ), routes!(list))
        .add(Platform(Permission::USERS_UPDATE), routes!(revoke))
        .add(Access::Public, routes!(accept))
        // Pages are never licence-gated; accepting checks the licence in core.
        .add_recovery(Access::Public, routes!(invitation_page))
        .add_recovery(Access::Public, routes!(invitation_page_submit))
}

/// Whom to invite.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewInvitation {
    /// The address.
    pub email: String,
    /// Platform role of the new account (default `member`; at most the inviter's own).
    pub platform_role: Option<String>,
}

/// An invitation.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationView {
    /// Its id.
    pub id: String,
    /// The invited address.
    pub email: String,
    /// The role the account gets.
    pub platform_role: String,
    /// `pending`, `accepted`, `revoked` or `expired`.
    pub status: &'static str,
    /// Who invited.
    pub invited_by: Option<String>,
    /// When sent, RFC 3339.
    pub created_at: String,
    /// When it stops working, RFC 3339.
    pub expires_at: String,
    /// The account it created.
    pub accepted_user: Option<String>,
}

fn view(r: InvitationRow, now_us: i64) -> InvitationView {
    let status = if r.accepted_at.is_some() {
        "accepted"
    } else if r.revoked_at.is_some() {
        "revoked"
    } else if r.expires_at <= now_us {
        "expired"
    } else {
        "pending"
    };
    InvitationView {
        id: r.id.to_string(),
        email: r.email,
        platform_role: r.platform_role,
        status,
        invited_by: r.invited_by.map(|u| u.to_string()),
        created_at: warden_core::op::rfc3339(r.created_at),
        expires_at: warden_core::op::rfc3339(r.expires_at),
        accepted_user: r.accepted_user.map(|u| u.to_string()),
    }
}

/// Invites an address (mailed a link valid for 7 days; a newer invitation to the same
/// address revokes the pending one).
#[utoipa::path(post, path = "/api/v1/admin/invitations", tag = "admin", request_body = NewInvitation,
    responses(
        (status = 201, description = "Sent", body = InvitationView),
        (status = 403, description = "Role above the inviter's", content_type = "application/problem+json"),
        (status = 409, description = "The address has an account", content_type = "application/problem+json"),
        (status = 422, description = "Not an email address, or no such role", content_type = "application/problem+json")))]
pub(crate) async fn send(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    ApiJson(input): ApiJson<NewInvitation>,
) -> Result<(StatusCode, Json<InvitationView>), ApiError> {
    let row = invitations::send(
        &state.ctx,
        &op,
        &grant,
        &input.email,
        input.platform_role.as_deref(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view(row, op.now_us()))))
}

/// Paging.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvitationQuery {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// One page of invitations.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationPage {
    /// Newest first.
    pub items: Vec<InvitationView>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// Invitations, newest first.
#[utoipa::path(get, path = "/api/v1/admin/invitations", tag = "admin", params(InvitationQuery),
    responses((status = 200, description = "Invitations", body = InvitationPage)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    ApiQuery(q): ApiQuery<InvitationQuery>,
) -> Result<Json<InvitationPage>, ApiError> {
    let page = invitations::list(&state.ctx, &grant, q.cursor.as_deref(), q.limit).await?;
    let now = op.now_us();
    Ok(Json(InvitationPage {
        items: page.items.into_iter().map(|r| view(r, now)).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Revokes a pending invitation: its link stops working at once.
#[utoipa::path(delete, path = "/api/v1/admin/invitations/{id}", tag = "admin",
    params(("id" = String, Path, description = "Invitation id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No pending invitation by that id", content_type = "application/problem+json")))]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    invitations::revoke(&state.ctx, &op, &grant, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An invitation's token and the chosen password.
#[derive(Deserialize, ToSchema)]
pub struct Accept {
    /// The `token` of the mailed link.
    pub token: String,
    /// The new account's password.
    pub password: String,
    /// `true` for a browser: tokens arrive as cookies.
    #[serde(default)]
    pub cookies: bool,
}

impl std::fmt::Debug for Accept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Accept([redacted])")
    }
}

/// Accepts an invitation: creates the account with the invited role and signs it in.
#[utoipa::path(post, path = "/api/v1/auth/invitations/accept", tag = "auth", request_body = Accept,
    responses(
        (status = 200, description = "Account created; signed in", body = TokenResponse),
        (status = 401, description = "Invitation used, revoked, expired or mistyped", content_type = "application/problem+json"),
        (status = 409, description = "The address got an account meanwhile", content_type = "application/problem+json"),
        (status = 422, description = "The password breaks the policy", content_type = "application/problem+json")))]
pub(crate) async fn accept(
    State(state): State<AppState>,
    AnonymousOp(op): AnonymousOp,
    headers: HeaderMap,
    ApiJson(input): ApiJson<Accept>,
) -> Response {
    if input.cookies && !cookies::same_origin(&headers) {
        return ApiError::csrf().into_response();
    }
    match invitations::accept(&state.ctx, &op, &input.token, input.password).await {
        Ok(Accepted::Done(grant)) => granted(&state, grant, input.cookies),
        Ok(Accepted::Refused(e)) => ApiError(e).into_response(),
        Err(r) => link_refused(r),
    }
}

const TITLE: &str = "Join Warden";

fn not_valid() -> Response {
    page(
        StatusCode::BAD_REQUEST,
        TITLE,
        "<p>This invitation is not valid: it was already used, revoked, has expired, or is \
         mistyped. Ask your administrator for a new one.</p>",
    )
}

/// The page an invitation link opens: the invited address and a password form.
#[utoipa::path(get, path = "/invitation", tag = "auth", params(LinkQuery),
    responses((status = 200, description = "Form", content_type = "text/html"),
              (status = 400, description = "Invitation not valid", content_type = "text/html")))]
pub(crate) async fn invitation_page(
    State(state): State<AppState>,
    AnonymousOp(op): AnonymousOp,
    ApiQuery(q): ApiQuery<LinkQuery>,
) -> Response {
    let token = q.token.unwrap_or_default();
    let email = match invitations::pending(&state.ctx, &op, &token).await {
        Ok(Some(email)) => email,
        Ok(None) => return not_valid(),
        Err(r) => return refused(r),
    };
    // Or join through single sign-on, when the organisation has it.
    let sso = warden_core::sso::flow::methods(&state.ctx)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|(_, name, start)| {
            format!(
                "<p><a href=\"{}?invitation={}\">Join with {}</a></p>",
                escape(&start),
                escape(&token),
                escape(&name)
            )
        })
        .collect::<String>();
    page(
        StatusCode::OK,
        TITLE,
        &format!(
            "{sso}<p>Choose a password for <strong>{}</strong>.</p>\
             <form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"token\" \
             value=\"{}\"><label>Password (at least 12 characters) <input type=\"password\" \
             name=\"password\" required minlength=\"12\" autocomplete=\"new-password\"></label>\
             <button type=\"submit\">Create account and sign in</button></form>",
            escape(&email),
            invitations::PATH,
            escape(&token)
        ),
    )
}

/// The page's form.
#[derive(Deserialize, ToSchema)]
pub struct AcceptForm {
    /// From the link.
    pub token: String,
    /// The new account's password.
    pub password: String,
}

impl std::fmt::Debug for AcceptForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AcceptForm([redacted])")
    }
}

/// Accepts the invitation from the page's form (same-origin posts only).
#[utoipa::path(post, path = "/invitation", tag = "auth",
    request_body(content = AcceptForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Account created; signed in (session cookies set)", content_type = "text/html"),
              (status = 400, description = "Invitation not valid", content_type = "text/html"),
              (status = 403, description = "Posted from another site", content_type = "application/problem+json"),
              (status = 422, description = "Refused (weak password, address taken, licence)", content_type = "text/html")))]
pub(crate) async fn invitation_page_submit(
    State(state): State<AppState>,
    AnonymousOp(op): AnonymousOp,
    headers: HeaderMap,
    Form(form): Form<AcceptForm>,
) -> Response {
    if !cookies::same_origin(&headers) {
        return ApiError::csrf().into_response();
    }
    match invitations::accept(&state.ctx, &op, &form.token, form.password).await {
        Ok(Accepted::Done(grant)) => {
            let mut res = page(
                StatusCode::OK,
                TITLE,
                "<p>Your account is ready and you are signed in in this browser.</p>",
            );
            let csrf = state.ctx.identity.csrf_token(grant.principal.session_id);
            set_session_cookies(res.headers_mut(), &grant, &csrf);
            res
        }
        Ok(Accepted::Refused(e)) => page(
            StatusCode::UNPROCESSABLE_ENTITY,
            TITLE,
            &format!(
                "<p>{}</p><p>Go back and try again; the invitation still works.</p>",
                escape(e.detail)
            ),
        ),
        Err(Refusal::Invalid) => not_valid(),
        Err(r) => refused(r),
    }
}
