//! SAML 2.0 providers (licence feature `sso-saml`): administrators add one from the IdP's
//! metadata (uploaded or by URL); Warden publishes its own metadata per provider; people start
//! at the same `/api/v1/auth/sso/{slug}/start` as for OpenID providers and come back to the
//! assertion consumer service by HTTP-POST. Listing and removing providers is shared with
//! OpenID Connect (`/api/v1/admin/sso/providers`).

use axum::Form;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;
use warden_core::sso::saml::{self, Posted, Provider, Settings};
use warden_domain::access::{Access, Permission};
use warden_domain::license::Feature;

use super::sso::{ProviderView, finished, view};
use crate::http::authz::{AnonymousOp, PlatformAccess, UserOp};
use crate::http::json::ApiJson;
use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::identity::cookies;
use crate::state::AppState;

/// The cookie binding a SAML sign-in under way to its browser (`SameSite=None`: the IdP
/// comes back with a cross-site POST).
pub const BINDING_COOKIE: &str = "__Host-warden_saml";

pub(crate) fn routes() -> Routes<AppState> {
    use Access::Platform;
    let f = Feature::SsoSaml;
    Routes::new()
        .add_feature(Platform(Permission::SETTINGS_CREATE), f, routes!(create))
        .add_feature(Platform(Permission::SETTINGS_READ), f, routes!(get_one))
        .add_feature(Platform(Permission::SETTINGS_UPDATE), f, routes!(update))
        .add_feature(Access::Public, f, routes!(metadata))
        .add_feature(Access::Public, f, routes!(acs))
}

/// A SAML provider's settings.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SamlProviderInput {
    /// Short name used in URLs; fixed once created.
    #[serde(default)]
    pub slug: Option<String>,
    /// Shown on the sign-in screen.
    pub display_name: String,
    /// The IdP's metadata XML (an `EntityDescriptor`), or give `metadata_url` (on a change,
    /// neither keeps the stored metadata).
    #[serde(default)]
    pub metadata_xml: Option<String>,
    /// Where to fetch the IdP's metadata (https; fetched once, on each save).
    #[serde(default)]
    pub metadata_url: Option<String>,
    /// What the IdP must sign: `assertion` (default), `response` or `either`.
    #[serde(default)]
    pub signed: Option<String>,
    /// Accept sign-ins the IdP starts (default off: they cannot be bound to a browser).
    #[serde(default)]
    pub idp_initiated: bool,
    /// The attribute with the email (default: `email`, `mail`, the Entra and LDAP names; else
    /// the NameID).
    #[serde(default)]
    pub email_attribute: Option<String>,
    /// The attribute with the display name.
    #[serde(default)]
    pub name_attribute: Option<String>,
    /// The attribute with group names.
    #[serde(default)]
    pub groups_attribute: Option<String>,
    /// Email domains this IdP is trusted for (needed for `jit` and `link_by_email`).
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// Create accounts for people who sign in for the first time (default off).
    #[serde(default)]
    pub jit: bool,
    /// Their platform role (default `member`; at most your own).
    #[serde(default)]
    pub default_role: Option<String>,
    /// Link an existing account by email in an allowed domain (default off).
    #[serde(default)]
    pub link_by_email: bool,
    /// Allow `metadata_url` on a private, loopback or link-local address (default off).
    #[serde(default)]
    pub allow_private_network: bool,
}

impl std::fmt::Debug for SamlProviderInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SamlProviderInput")
            .field("slug", &self.slug)
            .field("display_name", &self.display_name)
            .finish_non_exhaustive()
    }
}

impl SamlProviderInput {
    fn settings(self) -> Settings {
        Settings {
            display_name: self.display_name,
            metadata_xml: self.metadata_xml,
            metadata_url: self.metadata_url,
            signed: self.signed,
            idp_initiated: self.idp_initiated,
            email_attribute: self.email_attribute,
            name_attribute: self.name_attribute,
            groups_attribute: self.groups_attribute,
            allowed_domains: self.allowed_domains,
            jit: self.jit,
            default_role: self.default_role,
            link_by_email: self.link_by_email,
            allow_private_network: self.allow_private_network,
        }
    }
}

/// A SAML provider: what it shares with OpenID providers, and its SAML settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct SamlProviderView {
    /// Its common settings (`issuer` is the IdP's entity id; `redirect_uri` the assertion
    /// consumer service URL).
    #[serde(flatten)]
    pub provider: ProviderView,
    /// This Warden's entity id towards the IdP (also the URL of its metadata).
    pub sp_entity_id: String,
    /// The IdP's single sign-on URL (HTTP-Redirect), from its metadata.
    pub sso_url: String,
    /// Where the metadata was fetched from, if it was.
    pub metadata_url: Option<String>,
    /// What the IdP must sign.
    pub signed: String,
    /// Whether IdP-initiated sign-in is accepted.
    pub idp_initiated: bool,
    /// Attribute names ('' for the usual ones).
    pub email_attribute: String,
    /// See `email_attribute`.
    pub name_attribute: String,
    /// See `email_attribute`.
    pub groups_attribute: String,
}

fn saml_view(state: &AppState, p: Provider) -> SamlProviderView {
    SamlProviderView {
        sp_entity_id: saml::entity_id(&state.ctx, &p.row.slug),
        provider: view(state, p.row),
        sso_url: p.saml.sso_url,
        metadata_url: p.saml.metadata_url,
        signed: p.saml.signed,
        idp_initiated: p.saml.idp_initiated,
        email_attribute: p.saml.email_attribute,
        name_attribute: p.saml.name_attribute,
        groups_attribute: p.saml.groups_attribute,
    }
}

/// Adds a SAML provider.
#[utoipa::path(post, path = "/api/v1/admin/saml/providers", tag = "admin", request_body = SamlProviderInput,
    responses(
        (status = 201, description = "Created", body = SamlProviderView),
        (status = 403, description = "Not licensed (sso-saml), or a just-in-time role above yours", content_type = "application/problem+json"),
        (status = 409, description = "Slug taken", content_type = "application/problem+json"),
        (status = 422, description = "Unusable metadata or settings", content_type = "application/problem+json"),
        (status = 501, description = "Built without SAML support", content_type = "application/problem+json")))]
pub(crate) async fn create(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    ApiJson(input): ApiJson<SamlProviderInput>,
) -> Result<(StatusCode, Json<SamlProviderView>), ApiError> {
    let slug = input.slug.clone().unwrap_or_default();
    let p = saml::create(&state.ctx, &op, &grant, &slug, &input.settings()).await?;
    Ok((StatusCode::CREATED, Json(saml_view(&state, p))))
}

/// One SAML provider.
#[utoipa::path(get, path = "/api/v1/admin/saml/providers/{slug}", tag = "admin",
    params(("slug" = String, Path, description = "Provider")),
    responses((status = 200, description = "The provider", body = SamlProviderView),
              (status = 404, description = "No such SAML provider", content_type = "application/problem+json")))]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    Path(slug): Path<String>,
) -> Result<Json<SamlProviderView>, ApiError> {
    let p = saml::get(&state.ctx, &grant, &slug).await?;
    Ok(Json(saml_view(&state, p)))
}

/// Changes a SAML provider (new metadata included: a rotated IdP certificate).
#[utoipa::path(put, path = "/api/v1/admin/saml/providers/{slug}", tag = "admin",
    params(("slug" = String, Path, description = "Provider")), request_body = SamlProviderInput,
    responses((status = 200, description = "Changed", body = SamlProviderView),
              (status = 404, description = "No such SAML provider", content_type = "application/problem+json"),
              (status = 422, description = "Unusable metadata or settings", content_type = "application/problem+json")))]
pub(crate) async fn update(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    Path(slug): Path<String>,
    ApiJson(input): ApiJson<SamlProviderInput>,
) -> Result<Json<SamlProviderView>, ApiError> {
    let p = saml::update(&state.ctx, &op, &grant, &slug, &input.settings()).await?;
    Ok(Json(saml_view(&state, p)))
}

/// This service provider's metadata for one IdP: register it there.
#[utoipa::path(get, path = "/api/v1/auth/saml/{slug}/metadata", tag = "auth",
    params(("slug" = String, Path, description = "Provider")),
    responses((status = 200, description = "SP metadata", content_type = "application/samlmetadata+xml"),
              (status = 404, description = "No such SAML provider", content_type = "application/problem+json")))]
pub(crate) async fn metadata(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Response, ApiError> {
    let xml = saml::sp_metadata(&state.ctx, &slug).await?;
    let mut res = xml.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/samlmetadata+xml"),
    );
    Ok(res)
}

/// What the IdP posts.
#[derive(Deserialize, ToSchema)]
pub struct AcsForm {
    /// The response, base64.
    #[serde(rename = "SAMLResponse")]
    pub saml_response: Option<String>,
    /// The RelayState sent with the request (or the IdP's, for an IdP-initiated sign-in).
    #[serde(rename = "RelayState")]
    pub relay_state: Option<String>,
}

impl std::fmt::Debug for AcsForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AcsForm([redacted])")
    }
}

/// The assertion consumer service: verifies the IdP's response and signs in, or says why not.
#[utoipa::path(post, path = "/api/v1/auth/saml/{slug}/acs", tag = "auth",
    params(("slug" = String, Path, description = "Provider")),
    request_body(content = AcsForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Signed in (session cookies set)"),
              (status = 400, description = "Refused", content_type = "text/html")))]
pub(crate) async fn acs(
    State(state): State<AppState>,
    AnonymousOp(op): AnonymousOp,
    Path(slug): Path<String>,
    headers: HeaderMap,
    Form(form): Form<AcsForm>,
) -> Response {
    let posted = Posted {
        response: form.saml_response.as_deref(),
        relay_state: form.relay_state.as_deref(),
    };
    let binding = cookies::get(&headers, BINDING_COOKIE);
    let result = saml::acs(&state.ctx, &op, &slug, posted, binding).await;
    finished(&state, result, BINDING_COOKIE)
}
