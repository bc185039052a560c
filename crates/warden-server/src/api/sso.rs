//! Single sign-on: administrators configure OpenID Connect providers; people start a sign-in
//! (redirected to the provider, the attempt bound to their browser by a short-lived cookie)
//! and come back to the callback, which opens the same session as a password sign-in.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use warden_core::sso::flow::{self, Callback, Failure};
use warden_core::sso::providers::{self, Issuer, Settings};
use warden_domain::access::{Access, Permission};
use warden_store::sso::ProviderRow;

use super::auth::set_session_cookies;
use crate::http::authz::{AnonymousOp, PlatformAccess, UserOp};
use crate::http::json::ApiJson;
use crate::http::page::page;
use crate::http::problem::ApiError;
use crate::http::query::ApiQuery;
use crate::http::routes::Routes;
use crate::identity::cookies;
use crate::state::AppState;

/// The cookie binding a sign-in under way to the browser that started it.
pub const BINDING_COOKIE: &str = "__Host-warden_sso";

pub(crate) fn routes() -> Routes<AppState> {
    use Access::Platform;
    Routes::new()
        .add(Platform(Permission::SETTINGS_CREATE), routes!(create))
        .add(Platform(Permission::SETTINGS_READ), routes!(list))
        .add(Platform(Permission::SETTINGS_READ), routes!(get_one))
        .add(Platform(Permission::SETTINGS_UPDATE), routes!(update))
        .add(Platform(Permission::SETTINGS_DELETE), routes!(delete))
        .add_recovery(Access::Public, routes!(start))
        .add_recovery(Access::Public, routes!(callback))
        .add_recovery(Access::Public, routes!(signed_in))
}

/// A provider's settings.
#[derive(Deserialize, ToSchema)]
pub struct ProviderInput {
    /// Short name used in URLs (`/api/v1/auth/sso/{slug}/start`); fixed once created.
    #[serde(default)]
    pub slug: Option<String>,
    /// Shown on the sign-in screen.
    pub display_name: String,
    /// `google`, `entra` (with `tenant`) or `oidc` (with `issuer`).
    pub preset: String,
    /// Microsoft Entra directory (tenant) id or domain.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Issuer URL, for `oidc`.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Client id registered with the provider.
    pub client_id: String,
    /// Client secret (write-only; omit on a change to keep the stored one).
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Scopes (default `openid email profile`).
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// Email domains accepted for linking and provisioning (empty: any).
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// Create accounts for people who sign in for the first time (default off).
    #[serde(default)]
    pub jit: bool,
    /// Their platform role (default `member`; at most your own).
    #[serde(default)]
    pub default_role: Option<String>,
    /// Link an existing account by the provider's verified email (default off).
    #[serde(default)]
    pub link_by_email: bool,
    /// Allow a provider on a private, loopback or link-local address (default off).
    #[serde(default)]
    pub allow_private_network: bool,
}

impl std::fmt::Debug for ProviderInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderInput")
            .field("slug", &self.slug)
            .field("display_name", &self.display_name)
            .finish_non_exhaustive()
    }
}

impl ProviderInput {
    fn settings(&self) -> Result<Settings, ApiError> {
        let issuer = match self.preset.as_str() {
            "google" => Issuer::Google,
            "entra" => Issuer::Entra {
                tenant: self.tenant.clone().unwrap_or_default(),
            },
            "oidc" => Issuer::Url(self.issuer.clone().unwrap_or_default()),
            _ => {
                return Err(ApiError(warden_core::CoreError::invalid(
                    "preset",
                    "must be google, entra or oidc",
                )));
            }
        };
        Ok(Settings {
            display_name: self.display_name.clone(),
            issuer,
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            scopes: self.scopes.clone(),
            allowed_domains: self.allowed_domains.clone(),
            jit: self.jit,
            default_role: self.default_role.clone(),
            link_by_email: self.link_by_email,
            allow_private_network: self.allow_private_network,
        })
    }
}

/// A configured provider (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderView {
    /// Short name.
    pub slug: String,
    /// Shown on the sign-in screen.
    pub display_name: String,
    /// Issuer URL.
    pub issuer: String,
    /// Client id.
    pub client_id: String,
    /// Whether a client secret is stored.
    pub has_client_secret: bool,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Email domains accepted (empty: any).
    pub allowed_domains: Vec<String>,
    /// Just-in-time accounts.
    pub jit: bool,
    /// Their platform role.
    pub default_role: String,
    /// Linking existing accounts by verified email.
    pub link_by_email: bool,
    /// Whether private addresses are allowed.
    pub allow_private_network: bool,
    /// The redirect URI to register with the provider (for SAML: the assertion consumer
    /// service URL).
    pub redirect_uri: String,
    /// `oidc` or `saml` (its SAML settings: `/api/v1/admin/saml/providers/{slug}`).
    pub protocol: String,
    /// The organization whose people it signs in (multi-tenant mode); absent: the
    /// installation's. Set with `PUT /api/v1/organizations/{org}/sso-providers/{slug}`.
    pub organization_id: Option<String>,
}

pub(crate) fn view(state: &AppState, r: ProviderRow) -> ProviderView {
    ProviderView {
        redirect_uri: if r.protocol == "saml" {
            warden_core::sso::saml::acs_url(&state.ctx, &r.slug)
        } else {
            flow::callback_url(&state.ctx, &r.slug)
        },
        has_client_secret: r.sealed_secret.is_some(),
        scopes: r.scopes.split_whitespace().map(str::to_owned).collect(),
        allowed_domains: r
            .allowed_domains
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        slug: r.slug,
        display_name: r.display_name,
        issuer: r.issuer,
        client_id: r.client_id,
        jit: r.jit,
        default_role: r.default_role,
        link_by_email: r.link_by_email,
        allow_private_network: r.allow_private_network,
        protocol: r.protocol,
        organization_id: r.organization_id.map(|o| o.to_string()),
    }
}

/// Adds an OpenID Connect provider.
#[utoipa::path(post, path = "/api/v1/admin/sso/providers", tag = "admin", request_body = ProviderInput,
    responses(
        (status = 201, description = "Created", body = ProviderView),
        (status = 403, description = "Just-in-time role above yours", content_type = "application/problem+json"),
        (status = 409, description = "Slug taken", content_type = "application/problem+json"),
        (status = 422, description = "Invalid settings (an issuer on a private address without allow_private_network…)", content_type = "application/problem+json")))]
pub(crate) async fn create(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    ApiJson(input): ApiJson<ProviderInput>,
) -> Result<(StatusCode, Json<ProviderView>), ApiError> {
    let slug = input.slug.clone().unwrap_or_default();
    let row = providers::create(&state.ctx, &op, &grant, &slug, &input.settings()?).await?;
    Ok((StatusCode::CREATED, Json(view(&state, row))))
}

/// Every provider.
#[utoipa::path(get, path = "/api/v1/admin/sso/providers", tag = "admin",
    responses((status = 200, description = "Providers", body = Vec<ProviderView>)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
) -> Result<Json<Vec<ProviderView>>, ApiError> {
    let rows = providers::list(&state.ctx, &grant).await?;
    Ok(Json(rows.into_iter().map(|r| view(&state, r)).collect()))
}

/// One provider.
#[utoipa::path(get, path = "/api/v1/admin/sso/providers/{slug}", tag = "admin",
    params(("slug" = String, Path, description = "Provider")),
    responses((status = 200, description = "The provider", body = ProviderView),
              (status = 404, description = "No such provider", content_type = "application/problem+json")))]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    Path(slug): Path<String>,
) -> Result<Json<ProviderView>, ApiError> {
    Ok(Json(view(
        &state,
        providers::get(&state.ctx, &grant, &slug).await?,
    )))
}

/// Changes a provider (omit `client_secret` to keep the stored one).
#[utoipa::path(put, path = "/api/v1/admin/sso/providers/{slug}", tag = "admin",
    params(("slug" = String, Path, description = "Provider")), request_body = ProviderInput,
    responses((status = 200, description = "Changed", body = ProviderView),
              (status = 404, description = "No such provider", content_type = "application/problem+json"),
              (status = 422, description = "Invalid settings", content_type = "application/problem+json")))]
pub(crate) async fn update(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    Path(slug): Path<String>,
    ApiJson(input): ApiJson<ProviderInput>,
) -> Result<Json<ProviderView>, ApiError> {
    let row = providers::update(&state.ctx, &op, &grant, &slug, &input.settings()?).await?;
    Ok(Json(view(&state, row)))
}

/// Removes a provider and unlinks its identities (the accounts stay).
#[utoipa::path(delete, path = "/api/v1/admin/sso/providers/{slug}", tag = "admin",
    params(("slug" = String, Path, description = "Provider")),
    responses((status = 204, description = "Removed"),
              (status = 404, description = "No such provider", content_type = "application/problem+json")))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    Path(slug): Path<String>,
) -> Result<StatusCode, ApiError> {
    providers::delete(&state.ctx, &op, &grant, &slug).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Where to go after signing in, and an invitation to accept with it.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StartQuery {
    /// A path of this site under `/console` (default: a page saying you are signed in).
    pub redirect: Option<String>,
    /// A pending invitation's token: the invited address gets its account through this
    /// provider (the provider must have verified that very address).
    pub invitation: Option<String>,
}

impl std::fmt::Debug for StartQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartQuery")
            .field("redirect", &self.redirect)
            .finish_non_exhaustive()
    }
}

pub(crate) fn see_other(location: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Starts signing in with a provider: redirects to it.
#[utoipa::path(get, path = "/api/v1/auth/sso/{slug}/start", tag = "auth",
    params(("slug" = String, Path, description = "Provider"), StartQuery),
    responses((status = 303, description = "To the provider (sets the binding cookie)"),
              (status = 401, description = "The invitation is not pending", content_type = "application/problem+json"),
              (status = 404, description = "No such provider", content_type = "application/problem+json"),
              (status = 422, description = "Redirect target not allowed", content_type = "application/problem+json"),
              (status = 502, description = "The provider cannot be reached", content_type = "application/problem+json")))]
pub(crate) async fn start(
    State(state): State<AppState>,
    AnonymousOp(op): AnonymousOp,
    Path(slug): Path<String>,
    ApiQuery(q): ApiQuery<StartQuery>,
) -> Result<Response, ApiError> {
    let started = flow::start(
        &state.ctx,
        &op,
        &slug,
        q.redirect.as_deref(),
        q.invitation.as_deref(),
    )
    .await?;
    let mut res = see_other(&started.url);
    let max_age = flow::LOGIN_TTL_SECS;
    // SAML comes back with a cross-site POST, which carries only a SameSite=None cookie.
    let cookie = if started.cross_site {
        cookies::set_cross_site(super::saml::BINDING_COOKIE, &started.binding, max_age)
    } else {
        cookies::set(BINDING_COOKIE, &started.binding, max_age, true)
    };
    if let Some(c) = cookie {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(res)
}

/// What the provider sends back.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    /// The authorization code.
    pub code: Option<String>,
    /// The state from the start.
    pub state: Option<String>,
    /// The provider's error, when it refused.
    pub error: Option<String>,
    /// The provider's issuer (RFC 9207).
    pub iss: Option<String>,
}

impl std::fmt::Debug for CallbackQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallbackQuery([redacted])")
    }
}

const TITLE: &str = "Single sign-on";

/// The provider's redirect back: signs in and sends the browser on, or says why not.
#[utoipa::path(get, path = "/api/v1/auth/sso/{slug}/callback", tag = "auth",
    params(("slug" = String, Path, description = "Provider"), CallbackQuery),
    responses((status = 303, description = "Signed in (session cookies set)"),
              (status = 400, description = "Refused", content_type = "text/html"),
              (status = 502, description = "The provider cannot be reached", content_type = "text/html")))]
pub(crate) async fn callback(
    State(state): State<AppState>,
    AnonymousOp(op): AnonymousOp,
    Path(slug): Path<String>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<CallbackQuery>,
) -> Response {
    let cb = Callback {
        state: q.state.as_deref(),
        code: q.code.as_deref(),
        error: q.error.as_deref(),
        iss: q.iss.as_deref(),
    };
    let binding = cookies::get(&headers, BINDING_COOKIE);
    let result = flow::callback(&state.ctx, &op, &slug, cb, binding).await;
    finished(&state, result, BINDING_COOKIE)
}

/// The answer to a finished sign-in (OIDC callback or SAML assertion consumer service):
/// session cookies and on to where it was going, or a page saying why not; the binding cookie
/// `binding_cookie` is cleared either way.
pub(crate) fn finished(
    state: &AppState,
    result: Result<flow::SignedIn, Failure>,
    binding_cookie: &str,
) -> Response {
    let mut res = match result {
        Ok(done) => {
            let mut res = see_other(&done.after);
            let csrf = state
                .ctx
                .identity
                .csrf_token(done.grant.principal.session_id);
            set_session_cookies(res.headers_mut(), &done.grant, &csrf);
            res
        }
        Err(Failure::Refused(reason)) => page(
            StatusCode::BAD_REQUEST,
            TITLE,
            &format!(
                "<p>Signing in with this provider did not work ({}). Start again from the \
                 sign-in page; if it keeps failing, ask your administrator.</p>",
                crate::http::page::escape(reason)
            ),
        ),
        Err(Failure::Unavailable) => page(
            StatusCode::BAD_GATEWAY,
            TITLE,
            "<p>The identity provider could not be reached. Try again in a moment.</p>",
        ),
        Err(Failure::Internal(cause)) => ApiError::internal(&cause).into_response(),
    };
    if let Some(c) = cookies::clear(binding_cookie) {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}

/// Where a sign-in that named no destination ends.
#[utoipa::path(get, path = "/sso/signed-in", tag = "auth",
    responses((status = 200, description = "Signed in", content_type = "text/html")))]
pub(crate) async fn signed_in() -> Response {
    page(
        StatusCode::OK,
        TITLE,
        "<p>You are signed in in this browser.</p>",
    )
}
