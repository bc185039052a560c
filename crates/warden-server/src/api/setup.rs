//! First run: the one-time page where the first platform administrator sets an email and a
//! password. The link (printed by `warden serve` while no administrator exists) is single
//! use and expires after an hour.

use crate::http::query::ApiQuery;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use utoipa_axum::routes;
use uuid::Uuid;
use warden_domain::access::Access;
use warden_domain::audit::{Actor, Outcome};

use crate::audit::request::RequestMeta;
use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::state::AppState;
use warden_core::identity::users::{UserCreated, validate_new_user};
use warden_core::identity::{SETUP_PREFIX, now_us};

pub(crate) fn routes() -> Routes<AppState> {
    Routes::new()
        .add(Access::Public, routes!(setup_form))
        .add(Access::Public, routes!(setup_submit))
}

/// The link's token.
#[derive(Deserialize, utoipa::IntoParams)]
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
    let mut res = (
        status,
        Html(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>Warden setup</title></head><body><main><h1>Warden setup</h1>{body}\
             </main></body></html>"
        )),
    )
        .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// The setup form.
#[utoipa::path(get, path = "/setup", tag = "setup", params(SetupQuery),
    responses((status = 200, description = "Form", content_type = "text/html"),
              (status = 410, description = "Setup already done", content_type = "text/html")))]
pub(crate) async fn setup_form(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<SetupQuery>,
) -> Response {
    match admin_exists(&state).await {
        Ok(true) => return done_already(),
        Ok(false) => {}
        Err(e) => return e.into_response(),
    }
    let token = q
        .token
        .filter(|t| warden_crypto::token::well_formed(t, SETUP_PREFIX))
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

async fn admin_exists(state: &AppState) -> Result<bool, ApiError> {
    let mut tx = state
        .store
        .begin_read()
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let n = tx
        .count_admins()
        .await
        .map_err(|e| ApiError::internal(&e))?;
    tx.commit().await.map_err(|e| ApiError::internal(&e))?;
    Ok(n > 0)
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
    meta: RequestMeta,
    Form(form): Form<SetupForm>,
) -> Response {
    let email = match validate_new_user(&form.email, &form.password) {
        Ok(e) => e,
        Err(e) => {
            return page(
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!("<p>{}</p>", escape(e.detail)),
            );
        }
    };
    if !warden_crypto::token::well_formed(&form.token, SETUP_PREFIX) {
        return bad_link();
    }
    let password = form.password;
    let hash = match warden_core::costly::passwords().hash(password).await {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => return ApiError::internal(&e).into_response(),
        Err(busy) => return ApiError::from(busy).into_response(),
    };
    match create_first_admin(&state, &meta, &form.token, &email, &hash).await {
        Ok(Some(_)) => page(
            StatusCode::CREATED,
            "<p>The administrator account is ready. Sign in with it (POST /api/v1/auth/sign-in, \
             or <code>warden login</code>).</p>",
        ),
        Ok(None) => bad_link(),
        Err(SetupFailure::Gone) => done_already(),
        Err(SetupFailure::Internal) => {
            ApiError::from_status(StatusCode::INTERNAL_SERVER_ERROR).into_response()
        }
    }
}

enum SetupFailure {
    /// An administrator exists already.
    Gone,
    /// The database failed; logged, not shown.
    Internal,
}

fn bad_link() -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "<p>This setup link is not valid: it was already used, has expired, or is mistyped. \
         Restart <code>warden serve</code> for a new one, or use <code>warden user create</code>.</p>",
    )
}

async fn create_first_admin(
    state: &AppState,
    meta: &RequestMeta,
    token: &str,
    email: &str,
    hash: &str,
) -> Result<Option<Uuid>, SetupFailure> {
    let run = async {
        let now = state.clock.now();
        let now_us = now_us(state.clock.as_ref());
        let mut tx = state.store.begin().await?;
        if tx.count_admins().await? > 0 {
            return Ok(Err(SetupFailure::Gone));
        }
        if !tx
            .claim_setup_token(&warden_crypto::token::hash(token), now_us)
            .await?
        {
            return Ok(Ok(None));
        }
        let id = Uuid::now_v7();
        tx.create_user(id, email, hash, "admin", now_us).await?;
        let summary = warden_domain::audit::summarize(&UserCreated {
            email: email.to_owned(),
            password: "x",
            platform_role: "admin".to_owned(),
        })
        .unwrap_or_default();
        let event = meta.event(
            now,
            Actor::system(),
            "user.created",
            "user",
            Some(id.to_string()),
            Outcome::Success,
            serde_json::json!({"via": "setup_link", "input": summary}),
        );
        tx.record(&state.audit_key, &event).await?;
        tx.commit().await?;
        Ok::<_, warden_store::StoreError>(Ok(Some(id)))
    };
    match run.await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "first administrator setup failed");
            Err(SetupFailure::Internal)
        }
    }
}
