//! Signing in by emailed link: asking for a magic link or a password reset (answered alike
//! whether or not the account exists), using one through the API (CLI, console), and the two
//! small pages the mailed links open. Opening a link never uses it up (mail scanners follow
//! links); the page's button does, with a same-origin form post.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;
use warden_core::Code;
use warden_core::identity::flows::Refusal;
use warden_core::identity::links::{self, LinkKind, Reset};
use warden_domain::access::Access;

use super::auth::{TokenResponse, granted, refused, set_session_cookies};
use crate::http::authz::AnonymousOp;
use crate::http::json::ApiJson;
use crate::http::page::{escape, page};
use crate::http::problem::ApiError;
use crate::http::query::ApiQuery;
use crate::http::routes::Routes;
use crate::identity::cookies;
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    Routes::new()
        .add_recovery(Access::Public, routes!(request_magic_link))
        .add_recovery(Access::Public, routes!(magic_link_sign_in))
        .add_recovery(Access::Public, routes!(request_password_reset))
        .add_recovery(Access::Public, routes!(complete_password_reset))
        .add_recovery(Access::Public, routes!(link_page))
        .add_recovery(Access::Public, routes!(link_page_submit))
        .add_recovery(Access::Public, routes!(reset_page))
        .add_recovery(Access::Public, routes!(reset_page_submit))
        .add_recovery(Access::Public, routes!(email_link_submit))
}

/// An address to send a link to.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LinkRequest {
    /// The account's email.
    pub email: String,
}

/// The answer to a link request: the same for every address.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkRequested {
    /// What happens next.
    pub message: &'static str,
}

const REQUESTED: &str = "If an active account has this address, a link is on its way to it.";

async fn request(state: &AppState, op: &warden_core::Op, kind: LinkKind, email: &str) -> Response {
    match links::request(&state.ctx, op, kind, email).await {
        Ok(()) => (
            StatusCode::ACCEPTED,
            axum::Json(LinkRequested { message: REQUESTED }),
        )
            .into_response(),
        Err(r) => refused(r),
    }
}

/// Emails a magic sign-in link (single use, 15 minutes; a newer one replaces it). Answers
/// alike whether or not the account exists; throttled per address and client.
#[utoipa::path(post, path = "/api/v1/auth/magic-link", tag = "auth", request_body = LinkRequest,
    responses(
        (status = 202, description = "Accepted (whether or not the account exists)", body = LinkRequested),
        (status = 429, description = "Too many requests", content_type = "application/problem+json")))]
pub(crate) async fn request_magic_link(
    State(state): State<AppState>,
    AnonymousOp(op): AnonymousOp,
    ApiJson(input): ApiJson<LinkRequest>,
) -> Response {
    request(&state, &op, LinkKind::MagicLink, &input.email).await
}

/// A link's token.
#[derive(Deserialize, ToSchema)]
pub struct LinkSignIn {
    /// The `token` of the emailed link.
    pub token: String,
    /// `true` for a browser: tokens arrive as cookies (as with password sign-in).
    #[serde(default)]
    pub cookies: bool,
}

impl std::fmt::Debug for LinkSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSignIn([redacted])")
    }
}

/// A refusal of an emailed link (magic link, reset, invitation): an unusable link is
/// `invalid-link`, anything else as for sign-in.
pub(crate) fn link_refused(r: Refusal) -> Response {
    match r {
        Refusal::Invalid => ApiError::from(Code::InvalidLink).into_response(),
        other => refused(other),
    }
}

/// Signs in with a magic link: the same session as a password sign-in.
#[utoipa::path(post, path = "/api/v1/auth/magic-link/sign-in", tag = "auth", request_body = LinkSignIn,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 401, description = "Link used, expired, replaced or mistyped", content_type = "application/problem+json")))]
pub(crate) async fn magic_link_sign_in(
    State(state): State<AppState>,
    AnonymousOp(op): AnonymousOp,
    headers: HeaderMap,
    ApiJson(input): ApiJson<LinkSignIn>,
) -> Response {
    if input.cookies && !cookies::same_origin(&headers) {
        return ApiError::csrf().into_response();
    }
    match links::sign_in(&state.ctx, &op, &input.token).await {
        Ok(grant) => granted(&state, grant, input.cookies),
        Err(r) => link_refused(r),
    }
}

/// Emails a password-reset link (single use, 30 minutes). Answers alike whether or not the
/// account exists; throttled per address and client.
#[utoipa::path(post, path = "/api/v1/auth/password-reset", tag = "auth", request_body = LinkRequest,
    responses(
        (status = 202, description = "Accepted (whether or not the account exists)", body = LinkRequested),
        (status = 429, description = "Too many requests", content_type = "application/problem+json")))]
pub(crate) async fn request_password_reset(
    State(state): State<AppState>,
    AnonymousOp(op): AnonymousOp,
    ApiJson(input): ApiJson<LinkRequest>,
) -> Response {
    request(&state, &op, LinkKind::PasswordReset, &input.email).await
}

/// A reset link's token and the new password.
#[derive(Deserialize, ToSchema)]
pub struct ResetComplete {
    /// The `token` of the emailed link.
    pub token: String,
    /// The new password.
    pub password: String,
    /// `true` for a browser: tokens arrive as cookies.
    #[serde(default)]
    pub cookies: bool,
}

impl std::fmt::Debug for ResetComplete {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResetComplete([redacted])")
    }
}

/// Sets a new password with a reset link, ends every other session of the account, and
/// signs in.
#[utoipa::path(post, path = "/api/v1/auth/password-reset/complete", tag = "auth", request_body = ResetComplete,
    responses(
        (status = 200, description = "Password changed; signed in", body = TokenResponse),
        (status = 401, description = "Link used, expired, replaced or mistyped", content_type = "application/problem+json"),
        (status = 422, description = "The password breaks the policy", content_type = "application/problem+json")))]
pub(crate) async fn complete_password_reset(
    State(state): State<AppState>,
    AnonymousOp(op): AnonymousOp,
    headers: HeaderMap,
    ApiJson(input): ApiJson<ResetComplete>,
) -> Response {
    if input.cookies && !cookies::same_origin(&headers) {
        return ApiError::csrf().into_response();
    }
    match links::reset_password(&state.ctx, &op, &input.token, input.password).await {
        Ok(Reset::Done(grant)) => granted(&state, grant, input.cookies),
        Ok(Reset::Weak(e)) => ApiError(e).into_response(),
        Err(r) => link_refused(r),
    }
}

/// The token a mailed link carries.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LinkQuery {
    /// From the link.
    pub token: Option<String>,
}

impl std::fmt::Debug for LinkQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkQuery([redacted])")
    }
}

fn not_valid(kind: LinkKind) -> Response {
    let again = match kind {
        LinkKind::MagicLink => "Ask for a new sign-in link",
        LinkKind::PasswordReset => "Ask for a new reset link",
    };
    page(
        StatusCode::BAD_REQUEST,
        title(kind),
        &format!(
            "<p>This link is not valid: it was already used, has expired, was replaced by a \
             newer one, or is mistyped. {again}.</p>"
        ),
    )
}

fn title(kind: LinkKind) -> &'static str {
    match kind {
        LinkKind::MagicLink => "Sign in to Warden",
        LinkKind::PasswordReset => "Reset your Warden password",
    }
}

async fn form_page(
    state: &AppState,
    op: &warden_core::Op,
    kind: LinkKind,
    q: LinkQuery,
) -> Response {
    let token = q.token.unwrap_or_default();
    match links::is_live(&state.ctx, op, kind, &token).await {
        Ok(true) => {}
        Ok(false) => return not_valid(kind),
        Err(r) => return refused(r),
    }
    let token = escape(&token);
    let fields = match kind {
        LinkKind::MagicLink => "<p>Press the button to sign in to Warden in this browser. \
             The link works once; opening this page did not use it.</p>\
             <button type=\"submit\">Sign in</button>"
            .to_owned(),
        LinkKind::PasswordReset => "<label>New password (at least 12 characters) \
             <input type=\"password\" name=\"password\" required minlength=\"12\" \
             autocomplete=\"new-password\"></label>\
             <button type=\"submit\">Set password and sign in</button>"
            .to_owned(),
    };
    page(
        StatusCode::OK,
        title(kind),
        &format!(
            "<form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"token\" \
             value=\"{token}\">{fields}</form>",
            kind.path()
        ),
    )
}

/// The page a magic link opens: a button that signs in (opening it uses nothing up).
#[utoipa::path(get, path = "/sign-in/link", tag = "auth", params(LinkQuery),
    responses((status = 200, description = "Form", content_type = "text/html"),
              (status = 400, description = "Link not valid", content_type = "text/html")))]
pub(crate) async fn link_page(
    State(state): State<AppState>,
    AnonymousOp(op): AnonymousOp,
    ApiQuery(q): ApiQuery<LinkQuery>,
) -> Response {
    form_page(&state, &op, LinkKind::MagicLink, q).await
}

/// A page form: the link's token and, for a reset, the new password.
#[derive(Deserialize, ToSchema)]
pub struct LinkForm {
    /// From the link.
    pub token: String,
    /// The new password (password reset only).
    pub password: Option<String>,
}

impl std::fmt::Debug for LinkForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkForm([redacted])")
    }
}

fn signed_in(
    state: &AppState,
    kind: LinkKind,
    grant: warden_core::identity::flows::Grant,
) -> Response {
    let done = match kind {
        LinkKind::MagicLink => "You are signed in",
        LinkKind::PasswordReset => {
            "Your password is changed, every other session is signed \
             out, and you are signed in"
        }
    };
    let mut res = page(
        StatusCode::OK,
        title(kind),
        &format!("<p>{done} in this browser.</p>"),
    );
    let csrf = state.ctx.identity.csrf_token(grant.principal.session_id);
    set_session_cookies(res.headers_mut(), &grant, &csrf);
    res
}

/// Signs in with the magic link from the page's form (same-origin posts only).
#[utoipa::path(post, path = "/sign-in/link", tag = "auth",
    request_body(content = LinkForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Signed in (session cookies set)", content_type = "text/html"),
              (status = 400, description = "Link not valid", content_type = "text/html"),
              (status = 403, description = "Posted from another site", content_type = "application/problem+json")))]
pub(crate) async fn link_page_submit(
    State(state): State<AppState>,
    AnonymousOp(op): AnonymousOp,
    headers: HeaderMap,
    Form(form): Form<LinkForm>,
) -> Response {
    // Another site posting its own link would sign this browser into its account.
    if !cookies::same_origin(&headers) {
        return ApiError::csrf().into_response();
    }
    match links::sign_in(&state.ctx, &op, &form.token).await {
        Ok(grant) => signed_in(&state, LinkKind::MagicLink, grant),
        Err(Refusal::Invalid) => not_valid(LinkKind::MagicLink),
        Err(r) => refused(r),
    }
}

/// The page a password-reset link opens: a form for the new password.
#[utoipa::path(get, path = "/reset-password", tag = "auth", params(LinkQuery),
    responses((status = 200, description = "Form", content_type = "text/html"),
              (status = 400, description = "Link not valid", content_type = "text/html")))]
pub(crate) async fn reset_page(
    State(state): State<AppState>,
    AnonymousOp(op): AnonymousOp,
    ApiQuery(q): ApiQuery<LinkQuery>,
) -> Response {
    form_page(&state, &op, LinkKind::PasswordReset, q).await
}

/// Sets the new password from the page's form (same-origin posts only).
#[utoipa::path(post, path = "/reset-password", tag = "auth",
    request_body(content = LinkForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Password changed; signed in", content_type = "text/html"),
              (status = 400, description = "Link not valid", content_type = "text/html"),
              (status = 403, description = "Posted from another site", content_type = "application/problem+json"),
              (status = 422, description = "The password breaks the policy", content_type = "text/html")))]
pub(crate) async fn reset_page_submit(
    State(state): State<AppState>,
    AnonymousOp(op): AnonymousOp,
    headers: HeaderMap,
    Form(form): Form<LinkForm>,
) -> Response {
    if !cookies::same_origin(&headers) {
        return ApiError::csrf().into_response();
    }
    let kind = LinkKind::PasswordReset;
    let password = form.password.unwrap_or_default();
    match links::reset_password(&state.ctx, &op, &form.token, password).await {
        Ok(Reset::Done(grant)) => signed_in(&state, kind, grant),
        Ok(Reset::Weak(e)) => page(
            StatusCode::UNPROCESSABLE_ENTITY,
            title(kind),
            &format!(
                "<p>{}</p><p>Go back and choose another password; the link still works.</p>",
                escape(e.detail)
            ),
        ),
        Err(Refusal::Invalid) => not_valid(kind),
        Err(r) => refused(r),
    }
}

/// The sign-in page's form asking for an emailed link.
#[derive(Deserialize, ToSchema)]
pub struct EmailLinkForm {
    /// The account's email.
    pub email: String,
    /// `sign-in` (a magic link, the default) or `reset` (a password reset link).
    pub kind: Option<String>,
}

impl std::fmt::Debug for EmailLinkForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailLinkForm")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// The sign-in page's "email me a link" form, without JavaScript: asks for a magic link or a
/// password reset and answers alike whether or not the account exists.
#[utoipa::path(post, path = "/sign-in/email", tag = "auth",
    request_body(content = EmailLinkForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Asked", content_type = "text/html"),
              (status = 429, description = "Too many requests", content_type = "text/html")))]
pub(crate) async fn email_link_submit(
    State(state): State<AppState>,
    AnonymousOp(op): AnonymousOp,
    Form(input): Form<EmailLinkForm>,
) -> Response {
    let kind = match input.kind.as_deref() {
        Some("reset") => LinkKind::PasswordReset,
        _ => LinkKind::MagicLink,
    };
    match links::request(&state.ctx, &op, kind, &input.email).await {
        Ok(()) => page(
            StatusCode::OK,
            "Check your email",
            &format!(
                "<section class=\"card\"><p>{REQUESTED} It works once, within 15 minutes.</p>\
                 <p><a href=\"/sign-in\">Back to sign-in</a></p></section>"
            ),
        ),
        Err(Refusal::Throttled(_)) => page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            "<section class=\"card\"><p>Too many links were asked for. Wait a few minutes, then \
             try again.</p><p><a href=\"/sign-in\">Back to sign-in</a></p></section>",
        ),
        Err(r) => refused(r),
    }
}
