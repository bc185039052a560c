//! Passkeys over HTTP: a signed-in person registers, lists and removes theirs; anyone signs
//! in with one; administrators list them (flags included). The two pages that drive the
//! browser's WebAuthn calls (`/sign-in`, `/account/passkeys`) are static: their script
//! calls these routes with the session's cookies. Rules are
//! `warden_core::identity::passkeys`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::routes;
use warden_core::identity::passkeys;
use warden_core::op::rfc3339;
use warden_domain::access::{Access, Permission};
use warden_store::passkeys::PasskeyRow;

use super::admin::SessionFilter;
use super::auth::{granted, refused};
use crate::http::authz::{AnonymousOp, PlatformAccess, UserOp};
use crate::http::json::ApiJson;
use crate::http::page::{escape, page};
use crate::http::problem::ApiError;
use crate::http::query::ApiQuery;
use crate::http::routes::Routes;
use crate::identity::{Caller, cookies};
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    use Access::Platform;
    Routes::new()
        .add(Access::SignedIn, routes!(mine))
        .add(Access::SignedIn, routes!(register_start))
        .add(Access::SignedIn, routes!(register_finish))
        .add(Access::SignedIn, routes!(remove))
        .add(Platform(Permission::USERS_READ), routes!(all))
        .add_recovery(Access::Public, routes!(sign_in_options))
        .add_recovery(Access::Public, routes!(sign_in))
        .add_recovery(Access::Public, routes!(sign_in_page))
        .add_recovery(Access::Public, routes!(account_page))
}

/// A registered passkey (never its key material).
#[derive(Debug, Serialize, ToSchema)]
pub struct PasskeyView {
    /// Its id.
    pub id: String,
    /// Whose it is.
    pub user_id: String,
    /// Its name.
    pub name: String,
    /// Registered, RFC 3339.
    pub created_at: String,
    /// Last signed in with, RFC 3339.
    pub last_used_at: Option<String>,
    /// When its sign counter went backwards (a possible copy): it signs nobody in since.
    pub flagged_at: Option<String>,
    /// Why it was flagged.
    pub flagged_reason: Option<String>,
}

fn view(r: PasskeyRow) -> PasskeyView {
    PasskeyView {
        id: r.id.to_string(),
        user_id: r.user_id.to_string(),
        name: r.name,
        created_at: rfc3339(r.created_at),
        last_used_at: r.last_used_at.map(rfc3339),
        flagged_at: r.flagged_at.map(rfc3339),
        flagged_reason: r.flagged_reason,
    }
}

/// A ceremony begun: pass `options` to `navigator.credentials.create()` or `.get()` (after
/// decoding its base64url fields) and send the answer back with `ceremony`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CeremonyView {
    /// The handle of this ceremony (`wpc_…`): single use, two minutes.
    pub ceremony: String,
    /// WebAuthn options, `{"publicKey": …}`.
    #[schema(value_type = Object)]
    pub options: Value,
}

fn ceremony(c: passkeys::Ceremony) -> Json<CeremonyView> {
    Json(CeremonyView {
        ceremony: c.ceremony.to_string(),
        options: c.options,
    })
}

/// The signed-in person's passkeys.
#[utoipa::path(get, path = "/api/v1/me/passkeys", tag = "me",
    responses((status = 200, description = "Passkeys, oldest first", body = Vec<PasskeyView>)))]
pub(crate) async fn mine(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<PasskeyView>>, ApiError> {
    let rows = passkeys::mine(&state.ctx, &caller.principal).await?;
    Ok(Json(rows.into_iter().map(view).collect()))
}

/// Begins registering a passkey. Needs a session signed in within the last 5 minutes (sign
/// in again otherwise) — never a personal access token.
#[utoipa::path(post, path = "/api/v1/me/passkeys/registration", tag = "me",
    responses(
        (status = 200, description = "Options for navigator.credentials.create()", body = CeremonyView),
        (status = 403, description = "Signed in too long ago, or asked with a token", content_type = "application/problem+json"),
        (status = 409, description = "public_url names no host", content_type = "application/problem+json")))]
pub(crate) async fn register_start(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    caller: Caller,
) -> Result<Json<CeremonyView>, ApiError> {
    Ok(ceremony(
        passkeys::register_start(&state.ctx, &op, &caller.principal).await?,
    ))
}

/// A registration's answer.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterPasskey {
    /// The handle from the registration's start.
    pub ceremony: String,
    /// What to call the passkey (1–64 characters).
    pub name: String,
    /// The `PublicKeyCredential` from `navigator.credentials.create()`, its binary fields
    /// base64url-encoded.
    #[schema(value_type = Object)]
    pub credential: Value,
}

/// Finishes registering a passkey.
#[utoipa::path(post, path = "/api/v1/me/passkeys", tag = "me", request_body = RegisterPasskey,
    responses(
        (status = 201, description = "Registered", body = PasskeyView),
        (status = 400, description = "The answer failed a check, or the ceremony was used or expired", content_type = "application/problem+json"),
        (status = 403, description = "Signed in too long ago, or asked with a token", content_type = "application/problem+json"),
        (status = 409, description = "This credential is registered already", content_type = "application/problem+json")))]
pub(crate) async fn register_finish(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    caller: Caller,
    ApiJson(input): ApiJson<RegisterPasskey>,
) -> Result<(StatusCode, Json<PasskeyView>), ApiError> {
    let row = passkeys::register_finish(
        &state.ctx,
        &op,
        &caller.principal,
        &input.ceremony,
        &input.name,
        input.credential,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view(row))))
}

/// Removes one of the signed-in person's passkeys (needs a sign-in within 5 minutes). In
/// password-free mode the last one of an account without single sign-on stays.
#[utoipa::path(delete, path = "/api/v1/me/passkeys/{id}", tag = "me",
    params(("id" = String, Path, description = "Passkey id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Signed in too long ago, or asked with a token", content_type = "application/problem+json"),
        (status = 404, description = "No such passkey of yours", content_type = "application/problem+json"),
        (status = 409, description = "Your last way to sign in", content_type = "application/problem+json")))]
pub(crate) async fn remove(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    passkeys::remove(&state.ctx, &op, &caller.principal, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every user's passkeys (or one user's), flagged ones with their flag.
#[utoipa::path(get, path = "/api/v1/admin/passkeys", tag = "admin", params(SessionFilter),
    responses((status = 200, description = "Passkeys, newest first", body = Vec<PasskeyView>)))]
pub(crate) async fn all(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    ApiQuery(filter): ApiQuery<SessionFilter>,
) -> Result<Json<Vec<PasskeyView>>, ApiError> {
    let user = match filter.user_id.as_deref() {
        Some(u) => Some(uuid::Uuid::parse_str(u).map_err(|_| {
            ApiError::from(warden_core::CoreError::invalid("user_id", "not a user id"))
        })?),
        None => None,
    };
    let rows = passkeys::all(&state.ctx, &grant, user).await?;
    Ok(Json(rows.into_iter().map(view).collect()))
}

/// Who signs in: nobody named (the authenticator offers its discoverable credentials), or an
/// account's email.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct PasskeyOptionsRequest {
    /// The account's email, to sign in with one of its passkeys.
    pub email: Option<String>,
}

/// Begins a passkey sign-in. At most 60 a minute per address.
#[utoipa::path(post, path = "/api/v1/auth/passkey/options", tag = "auth", request_body = PasskeyOptionsRequest,
    responses(
        (status = 200, description = "Options for navigator.credentials.get()", body = CeremonyView),
        (status = 409, description = "public_url names no host", content_type = "application/problem+json")))]
pub(crate) async fn sign_in_options(
    State(state): State<AppState>,
    AnonymousOp(op): AnonymousOp,
    ApiJson(input): ApiJson<PasskeyOptionsRequest>,
) -> Result<Json<CeremonyView>, ApiError> {
    Ok(ceremony(
        passkeys::sign_in_start(&state.ctx, &op, input.email.as_deref()).await?,
    ))
}

/// A passkey sign-in's answer.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PasskeySignIn {
    /// The handle from the sign-in's start.
    pub ceremony: String,
    /// The `PublicKeyCredential` from `navigator.credentials.get()`, its binary fields
    /// base64url-encoded.
    #[schema(value_type = Object)]
    pub credential: Value,
    /// `true` for a browser: tokens arrive as `__Host-` cookies.
    #[serde(default)]
    pub cookies: bool,
}

/// Signs in with a passkey. Every refusal is the same 401.
#[utoipa::path(post, path = "/api/v1/auth/passkey", tag = "auth", request_body = PasskeySignIn,
    responses(
        (status = 200, description = "Signed in", body = super::auth::TokenResponse),
        (status = 401, description = "Refused", content_type = "application/problem+json")))]
pub(crate) async fn sign_in(
    State(state): State<AppState>,
    AnonymousOp(op): AnonymousOp,
    headers: HeaderMap,
    ApiJson(input): ApiJson<PasskeySignIn>,
) -> Response {
    if input.cookies && !cookies::same_origin(&headers) {
        return ApiError::csrf().into_response();
    }
    match passkeys::sign_in_finish(&state.ctx, &op, &input.ceremony, input.credential).await {
        Ok(grant) => granted(&state, grant, input.cookies),
        Err(r) => refused(r),
    }
}

/// The sign-in page: a passkey button (no email typed), a button per single sign-on
/// provider, email and password (unless password sign-in is off), a passkey of the account an
/// email names, and an emailed sign-in link or password reset (plain forms). `next`: where to
/// go afterwards (a safe path of this site, else the console).
#[utoipa::path(get, path = "/sign-in", tag = "pages",
    params(("next" = Option<String>, Query, description = "Where to go after signing in")),
    responses((status = 200, description = "Page", content_type = "text/html")))]
pub(crate) async fn sign_in_page(
    State(state): State<AppState>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let next = query
        .as_deref()
        .and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "next")
                .map(|(_, v)| v.into_owned())
        })
        .and_then(|n| warden_core::sso::safe_after(&n))
        .unwrap_or_else(|| "/console".to_owned());
    let redirect: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
    // A provider list or policy that cannot be read leaves the page with what always works.
    let providers = warden_core::sso::flow::methods(&state.ctx)
        .await
        .unwrap_or_default();
    let discover = warden_core::sso::discovery::offered(&state.ctx)
        .await
        .unwrap_or(false);
    let password = warden_core::identity::policy::password_sign_in(&state.ctx)
        .await
        .unwrap_or(true);
    let sso: String = providers
        .iter()
        .map(|(_, name, start)| {
            format!(
                "<a class=\"button sso\" href=\"{start}?redirect={redirect}\">Sign in with {}</a>",
                escape(name)
            )
        })
        .collect();
    let password_fields = if password {
        "<label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\"></label>\
         <div class=\"actions\"><button type=\"submit\">Sign in with password</button>\
         <button id=\"passkey-for-email\" type=\"button\">Use a passkey for this email</button></div>"
    } else {
        "<div class=\"actions\"><button id=\"passkey-for-email\" type=\"submit\">Use a passkey for this email</button></div>"
    };
    page(
        StatusCode::OK,
        "Sign in to Warden",
        &format!(
            "<section class=\"card\" data-page=\"sign-in\">\
             <button id=\"passkey-sign-in\" class=\"primary\" type=\"button\">Sign in with a passkey</button>\
             {sso_block}\
             <p class=\"or\">or</p>\
             <form id=\"password-sign-in\">\
             <label>Email <input name=\"email\" type=\"email\" autocomplete=\"username webauthn\" required></label>\
             {password_fields}\
             </form><p id=\"status\" role=\"status\"></p></section>\
             <details class=\"card email-link\"><summary>Sign in with a link by email{reset}</summary>\
             <form method=\"post\" action=\"/sign-in/email\">\
             <label>Email <input name=\"email\" type=\"email\" autocomplete=\"username\" required></label>\
             <div class=\"actions\"><button type=\"submit\" name=\"kind\" value=\"sign-in\">Email me a sign-in link</button>{reset_button}</div>\
             </form></details>\
             <script src=\"/assets/passkeys.js\" defer></script>",
            sso_block = if sso.is_empty() {
                String::new()
            } else {
                format!(
                    "<div class=\"sso-list\">{sso}</div>{}",
                    if discover {
                        format!(
                            "<form class=\"sso-discover\" method=\"get\" action=\"/sign-in/sso\">\
                         <input type=\"hidden\" name=\"next\" value=\"{}\">\
                         <label>Work email <input name=\"email\" type=\"email\" autocomplete=\"username\" required></label>\
                         <button type=\"submit\">Continue with single sign-on</button></form>",
                            escape(&next)
                        )
                    } else {
                        String::new()
                    }
                )
            },
            reset = if password {
                ", or reset your password"
            } else {
                ""
            },
            reset_button = if password {
                "<button type=\"submit\" name=\"kind\" value=\"reset\" class=\"quiet\">Email me a password reset</button>"
            } else {
                ""
            },
        ),
    )
}

/// The passkeys page of the signed-in person: their passkeys, add one, remove one, sign out.
#[utoipa::path(get, path = "/account/passkeys", tag = "pages",
    responses((status = 200, description = "Page", content_type = "text/html")))]
pub(crate) async fn account_page() -> Response {
    page(
        StatusCode::OK,
        "Your passkeys",
        "<section class=\"card\" data-page=\"passkeys\">\
         <p id=\"who\">Loading…</p>\
         <ul id=\"passkeys\" class=\"list\"></ul>\
         <form id=\"add-passkey\"><label>Name for a new passkey <input name=\"name\" maxlength=\"64\" \
         placeholder=\"e.g. Work laptop\" required></label>\
         <div class=\"actions\"><button class=\"primary\" type=\"submit\">Add a passkey</button></div></form>\
         <p id=\"status\" role=\"status\"></p>\
         <div class=\"actions\"><button id=\"sign-out\" type=\"button\">Sign out</button></div></section>\
         <p><a href=\"/console/profile\">Back to your profile</a></p>\
         <script src=\"/assets/passkeys.js\" defer></script>",
    )
}
