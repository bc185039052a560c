//! First run: the one-time page where the first platform administrator sets an email and a
//! password. The link (printed by `warden serve` while no administrator exists) is single
//! use and expires after an hour.

use crate::http::page::escape;
use crate::http::query::ApiQuery;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa_axum::routes;
use warden_core::Code;
use warden_core::identity::setup::{self, Setup};
use warden_domain::access::Access;

use crate::http::authz::AnonymousOp;
use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    Routes::new()
        .add(Access::Public, routes!(setup_form))
        .add(Access::Public, routes!(setup_submit))
}

/// The link's token.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SetupQuery {
    /// From the printed link.
    pub token: Option<String>,
}

impl std::fmt::Debug for SetupQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SetupQuery([redacted])")
    }
}

fn page(status: StatusCode, body: &str) -> Response {
    crate::http::page::page(status, "Warden setup", body)
}

/// The setup form.
#[utoipa::path(get, path = "/setup", tag = "setup", params(SetupQuery),
    responses((status = 200, description = "Form", content_type = "text/html"),
              (status = 410, description = "Setup already done", content_type = "text/html")))]
pub(crate) async fn setup_form(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<SetupQuery>,
) -> Response {
    match setup::admin_exists(&state.ctx).await {
        Ok(true) => return done_already(),
        Ok(false) => {}
        Err(e) => return ApiError(e).into_response(),
    }
    let token = q
        .token
        .filter(|t| setup::well_formed(t))
        .unwrap_or_default();
    page(
        StatusCode::OK,
        &format!(
            "<p>Create the first platform administrator.</p>\
             <form method=\"post\" action=\"/setup\">\
             <input type=\"hidden\" name=\"token\" value=\"{}\">\
             <label>Email <input type=\"email\" name=\"email\" required autocomplete=\"username\"></label>\
             <label>Password (at least 12 characters) <input type=\"password\" name=\"password\" \
             required minlength=\"12\" autocomplete=\"new-password\"></label>\
             <button type=\"submit\">Create administrator</button></form>",
            escape(&token)
        ),
    )
}

fn done_already() -> Response {
    page(
        StatusCode::GONE,
        "<p>Setup is complete: an administrator exists. Sign in instead.</p>",
    )
}

/// The submitted form.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct SetupForm {
    /// From the link.
    pub token: String,
    /// Administrator email.
    pub email: String,
    /// Administrator password.
    pub password: String,
}

impl std::fmt::Debug for SetupForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SetupForm([redacted])")
    }
}

/// Creates the first platform administrator, once.
#[utoipa::path(post, path = "/setup", tag = "setup",
    request_body(content = SetupForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 201, description = "Created", content_type = "text/html"),
              (status = 400, description = "Link invalid, used or expired", content_type = "text/html"),
              (status = 410, description = "Setup already done", content_type = "text/html"),
              (status = 422, description = "Invalid email or weak password", content_type = "text/html")))]
pub(crate) async fn setup_submit(
    State(state): State<AppState>,
    AnonymousOp(op): AnonymousOp,
    Form(form): Form<SetupForm>,
) -> Response {
    let created =
        setup::create_first_admin(&state.ctx, &op, &form.token, &form.email, form.password).await;
    match created {
        Ok(Setup::Created(_)) => page(
            StatusCode::CREATED,
            "<p>The administrator account is ready. <a href=\"/sign-in\">Sign in</a> with it \
             (or run <code>warden login</code>).</p>",
        ),
        Ok(Setup::BadLink) => bad_link(),
        Ok(Setup::Done) => done_already(),
        Err(e) if matches!(e.code, Code::InvalidEmail | Code::WeakPassword) => page(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("<p>{}</p>", escape(e.detail)),
        ),
        Err(e) => ApiError(e).into_response(),
    }
}

fn bad_link() -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "<p>This setup link is not valid: it was already used, has expired, or is mistyped. \
         Restart <code>warden serve</code> for a new one, or use <code>warden user create</code>.</p>",
    )
}
