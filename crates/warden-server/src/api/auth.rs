//! Signing in and out, refreshing, and the public keys that verify access tokens.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;
use warden_domain::access::Access;

use crate::http::authz::{AnonymousOp, UserOp};
use crate::http::json::ApiJson;
use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::identity::{Caller, Credential, cookies};
use crate::state::AppState;
use warden_core::identity::flows::{self, Grant, Refusal};

pub(crate) fn routes() -> Routes<AppState> {
    Routes::new()
        .add_recovery(Access::Public, routes!(sign_in))
        .add(Access::Public, routes!(refresh))
        .add_recovery(Access::SignedIn, routes!(sign_out))
        .add(Access::Public, routes!(jwks))
        .add_recovery(Access::Public, routes!(methods))
}

/// Email and password.
#[derive(Deserialize, ToSchema)]
pub struct SignIn {
    /// Account email.
    pub email: String,
    /// Password.
    pub password: String,
    /// `true` for the web console: tokens arrive as `__Host-` cookies and the refresh token
    /// never appears in the body.
    #[serde(default)]
    pub cookies: bool,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// A refresh by a non-browser client. Browsers send no body: the refresh cookie is used.
#[derive(Deserialize, ToSchema)]
pub struct Refresh {
    /// The refresh token from the last sign-in or refresh.
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for Refresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Refresh([redacted])")
    }
}

/// Tokens issued by a sign-in or refresh.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// Access token (JWT, ES256 by default or RS256).
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Access-token lifetime in seconds.
    pub expires_in: i64,
    /// The new refresh token: only for non-browser clients; browsers get it as a cookie.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The device session.
    pub session_id: String,
    /// For cookie sessions: send this in `X-CSRF-Token` with every state-changing request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
}

pub(crate) fn refused(r: Refusal) -> Response {
    match r {
        Refusal::Invalid => ApiError::from(warden_core::Code::InvalidCredentials).into_response(),
        Refusal::Throttled(wait) => crate::http::problem::too_many_attempts(wait),
        Refusal::Csrf => ApiError::csrf().into_response(),
        Refusal::Busy => ApiError::busy().into_response(),
        Refusal::PasswordOff => {
            ApiError::from(warden_core::Code::PasswordSignInDisabled).into_response()
        }
        Refusal::Internal(cause) => ApiError::internal(&cause).into_response(),
    }
}

pub(crate) fn granted(state: &AppState, grant: Grant, browser: bool) -> Response {
    let session_id = grant.principal.session_id;
    let csrf = browser.then(|| state.ctx.identity.csrf_token(session_id));
    let body = TokenResponse {
        access_token: grant.access_token.clone(),
        token_type: "Bearer",
        expires_in: grant.expires_in,
        refresh_token: (!browser).then(|| grant.refresh_token.to_string()),
        session_id: session_id.to_string(),
        csrf_token: csrf.clone(),
    };
    let mut res = Json(body).into_response();
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    if let Some(csrf) = csrf {
        set_session_cookies(h, &grant, &csrf);
    }
    res
}

/// The browser session's cookies: access token, refresh token, CSRF token.
pub(crate) fn set_session_cookies(h: &mut HeaderMap, grant: &Grant, csrf: &str) {
    let life = grant.session_expires_in.max(0);
    for cookie in [
        cookies::set(cookies::ACCESS, &grant.access_token, grant.expires_in, true),
        cookies::set(cookies::REFRESH, &grant.refresh_token, life, true),
        cookies::set(cookies::CSRF, csrf, life, false),
    ]
    .into_iter()
    .flatten()
    {
        h.append(header::SET_COOKIE, cookie);
    }
}

/// Signs in. Answers alike for an unknown email and a wrong password; repeated failures are
/// slowed down and then refused with 429 and `Retry-After`. Always starts a new device
/// session.
#[utoipa::path(post, path = "/api/v1/auth/sign-in", tag = "auth", request_body = SignIn,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 401, description = "Wrong email or password", content_type = "application/problem+json"),
        (status = 429, description = "Too many failures", content_type = "application/problem+json")))]
pub(crate) async fn sign_in(
    State(state): State<AppState>,
    AnonymousOp(op): AnonymousOp,
    headers: HeaderMap,
    ApiJson(input): ApiJson<SignIn>,
) -> Response {
    // A browser sign-in sets cookies: refuse one started by another site (login CSRF).
    if input.cookies && !cookies::same_origin(&headers) {
        return ApiError::csrf().into_response();
    }
    match flows::sign_in(&state.ctx, &op, &input.email, input.password).await {
        Ok(grant) => granted(&state, grant, input.cookies),
        Err(r) => refused(r),
    }
}

/// Exchanges a refresh token for new tokens. The presented token is spent: presenting it
/// again after the grace window ends its device session.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = Option<Refresh>,
    responses(
        (status = 200, description = "New tokens", body = TokenResponse),
        (status = 401, description = "Unknown, spent or revoked token", content_type = "application/problem+json")))]
pub(crate) async fn refresh(
    State(state): State<AppState>,
    AnonymousOp(op): AnonymousOp,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let from_body = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice::<Refresh>(&body) {
            Ok(r) => r.refresh_token,
            Err(_) => return ApiError::from_status(StatusCode::BAD_REQUEST).into_response(),
        }
    };
    let (presented, browser) = match from_body {
        Some(t) => (t, false),
        None => match cookies::get(&headers, cookies::REFRESH) {
            Some(t) => (t.to_owned(), true),
            None => return refused(Refusal::Invalid),
        },
    };
    let csrf = if browser {
        if !cookies::same_origin(&headers) {
            return ApiError::csrf().into_response();
        }
        Some(
            headers
                .get(cookies::CSRF_HEADER)
                .and_then(|v| v.to_str().ok()),
        )
    } else {
        None
    };
    let mut res = match flows::refresh(&state.ctx, &op, &presented, csrf).await {
        Ok(grant) => granted(&state, grant, browser),
        Err(r) => refused(r),
    };
    if browser && res.status() == StatusCode::UNAUTHORIZED {
        clear_cookies(res.headers_mut());
    }
    res
}

fn clear_cookies(h: &mut HeaderMap) {
    for name in [cookies::ACCESS, cookies::REFRESH, cookies::CSRF] {
        if let Some(v) = cookies::clear(name) {
            h.append(header::SET_COOKIE, v);
        }
    }
}

/// Signs out: ends this device session everywhere at once and clears the cookies.
#[utoipa::path(post, path = "/api/v1/auth/sign-out", tag = "auth",
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "Not signed in", content_type = "application/problem+json")))]
pub(crate) async fn sign_out(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    caller: Caller,
) -> Response {
    if let Err(e) = warden_core::identity::tokens::require_session(&caller.principal) {
        return ApiError(e).into_response();
    }
    let session = caller.principal.session_id;
    match flows::revoke(&state.ctx, &op, &[session], "sign_out").await {
        Ok(_) => {
            let mut res = StatusCode::NO_CONTENT.into_response();
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            if caller.credential == Credential::Cookie {
                clear_cookies(res.headers_mut());
            }
            res
        }
        Err(r) => refused(r),
    }
}

/// The JSON Web Key Set.
#[derive(Debug, Serialize, ToSchema)]
pub struct Jwks {
    /// Published keys, the most recently activated first.
    #[schema(value_type = Vec<Object>)]
    pub keys: Vec<warden_crypto::jwt::Jwk>,
}

/// The public keys that verify Warden's access tokens.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth",
    responses((status = 200, description = "Public keys", body = Jwks)))]
pub(crate) async fn jwks(State(state): State<AppState>) -> Response {
    let keys = state.ctx.identity.keys().jwks().to_vec();
    let mut res = Json(Jwks { keys }).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    res
}

/// The sign-in methods this Warden offers.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignInMethods {
    /// Email and password (off in password-free mode).
    pub password: bool,
    /// Emailed single-use sign-in links (`POST /api/v1/auth/magic-link`).
    pub magic_link: bool,
    /// Emailed password-reset links (`POST /api/v1/auth/password-reset`); offered only while
    /// password sign-in is on.
    pub password_reset: bool,
    /// Where mail goes: `smtp`, or `log` when no SMTP server is configured (a link then
    /// reaches only whoever reads the server's log).
    pub mail: &'static str,
    /// Single sign-on providers.
    pub sso: Vec<SsoMethod>,
    /// Passkeys: on when `public_url` names a host (WebAuthn needs a domain).
    pub passkey: bool,
}

/// A single sign-on provider on the sign-in screen.
#[derive(Debug, Serialize, ToSchema)]
pub struct SsoMethod {
    /// Short name.
    pub slug: String,
    /// What to show.
    pub display_name: String,
    /// Where to send the browser (add `?redirect=/console/…` to come back there).
    pub start_url: String,
}

/// Which sign-in methods are enabled, for the console and the CLI.
#[utoipa::path(get, path = "/api/v1/auth/methods", tag = "auth",
    responses((status = 200, description = "Enabled methods", body = SignInMethods)))]
pub(crate) async fn methods(
    State(state): State<AppState>,
) -> Result<Json<SignInMethods>, ApiError> {
    let password = warden_core::identity::policy::password_sign_in(&state.ctx).await?;
    let sso = warden_core::sso::flow::methods(&state.ctx)
        .await?
        .into_iter()
        .map(|(slug, display_name, start_url)| SsoMethod {
            slug,
            display_name,
            start_url,
        })
        .collect();
    Ok(Json(SignInMethods {
        passkey: warden_core::identity::passkeys::relying_party(&state.ctx).is_some(),
        sso,
        password,
        magic_link: true,
        password_reset: password,
        mail: if state.ctx.mail.config.url.is_some() {
            "smtp"
        } else {
            "log"
        },
    }))
}
