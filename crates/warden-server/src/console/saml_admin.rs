//! Console → Admin → Single sign-on, the SAML part: add a SAML provider from the IdP's
//! metadata (pasted, or its URL), change one (blank metadata keeps the stored one), and what
//! the list shows of one — what to register with the IdP. Through `warden_core::sso::saml`,
//! as the API; only when the licence has `sso-saml`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use utoipa_axum::routes;
use warden_core::sso::saml::{self, Settings};
use warden_domain::access::{Access, Permission};
use warden_domain::license::Feature;
use warden_store::tenancy::PlatformGrant;

use super::Fields;
use crate::http::authz::{PlatformAccess, UserOp};
use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::state::AppState;

pub(super) fn routes() -> Routes<AppState> {
    use Access::Platform;
    let f = Feature::SsoSaml;
    Routes::new()
        .add_feature(Platform(Permission::SETTINGS_CREATE), f, routes!(add))
        .add_feature(Platform(Permission::SETTINGS_UPDATE), f, routes!(update))
}

/// What the providers list shows of a SAML provider.
pub(super) struct SamlItem {
    pub sp_entity_id: String,
    pub acs: String,
    pub sso_url: String,
    pub signed: String,
    pub idp_initiated: bool,
    pub metadata_url: String,
}

/// The SAML settings of provider `slug`, for the list.
pub(super) async fn item(
    state: &AppState,
    grant: &PlatformGrant,
    slug: &str,
) -> Result<SamlItem, ApiError> {
    let p = saml::get(&state.ctx, grant, slug).await?;
    Ok(SamlItem {
        sp_entity_id: saml::entity_id(&state.ctx, slug),
        acs: saml::acs_url(&state.ctx, slug),
        sso_url: p.saml.sso_url,
        signed: p.saml.signed,
        idp_initiated: p.saml.idp_initiated,
        metadata_url: p.saml.metadata_url.unwrap_or_default(),
    })
}

fn settings_from(form: &Fields) -> Settings {
    Settings {
        display_name: form.text("display_name").trim().to_owned(),
        metadata_xml: form.given("metadata_xml").map(str::to_owned),
        metadata_url: form.given("metadata_url").map(str::to_owned),
        signed: form.given("signed").map(str::to_owned),
        idp_initiated: form.text("idp_initiated") == "on",
        email_attribute: form.given("email_attribute").map(str::to_owned),
        name_attribute: None,
        groups_attribute: None,
        allowed_domains: form.words("allowed_domains"),
        jit: form.text("jit") == "on",
        default_role: form.given("default_role").map(str::to_owned),
        link_by_email: form.text("link_by_email") == "on",
        allow_private_network: form.text("allow_private_network") == "on",
    }
}

/// Adds a SAML provider (`slug`, `display_name`, `metadata_xml` or `metadata_url`, `signed`,
/// `idp_initiated`, `email_attribute`, `allowed_domains`, `jit`, `default_role`,
/// `link_by_email`).
#[utoipa::path(post, path = "/console/admin/sso/saml", tag = "console",
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Added: back to the providers")))]
pub(crate) async fn add(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    body: Bytes,
) -> Result<Response, ApiError> {
    let form = Fields::parse(&body);
    let slug = form.text("slug").trim().to_owned();
    saml::create(&state.ctx, &op, &grant, &slug, &settings_from(&form)).await?;
    Ok(Redirect::to("/console/admin/sso?done=provider-added").into_response())
}

/// Changes a SAML provider (the form of [`add`] without `slug`; blank metadata keeps the
/// stored one).
#[utoipa::path(post, path = "/console/admin/sso/saml/{slug}", tag = "console",
    params(("slug" = String, Path, description = "Provider slug")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Saved: back to the providers")))]
pub(crate) async fn update(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    Path(slug): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let form = Fields::parse(&body);
    saml::update(&state.ctx, &op, &grant, &slug, &settings_from(&form)).await?;
    Ok(Redirect::to("/console/admin/sso?done=provider-saved").into_response())
}
