//! Organizations (multi-tenant mode): the caller's list, creating one, its members, and
//! switching the organization a sign-in acts in. Every rule is `warden_core::organizations`'.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;
use warden_core::organizations;
use warden_domain::access::{Access, Permission};
use warden_domain::license::Feature;
use warden_domain::organizations::{OrgRole, OrgSlug};
use warden_store::tenancy::organizations::{OrgMemberRow, OrgRow};

use super::me::rfc3339;
use crate::http::authz::{PlatformAccess, UserOp};
use crate::http::json::ApiJson;
use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::identity::{Caller, Credential, cookies};
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    // Listing and switching answer without the flag: the default organization is always
    // there. Making organizations and changing their members needs `multi-tenant`.
    let f = Feature::MultiTenant;
    Routes::new()
        .add(Access::SignedIn, routes!(list_mine))
        .add_feature(
            Access::Platform(Permission::ADMIN_CREATE),
            f,
            routes!(create_organization),
        )
        .add(Access::SignedIn, routes!(list_members))
        .add_feature(Access::SignedIn, f, routes!(put_member))
        .add_feature(Access::SignedIn, f, routes!(remove_member))
        .add(Access::SignedIn, routes!(switch_organization))
        .add_feature(
            Access::Platform(Permission::SETTINGS_UPDATE),
            f,
            routes!(assign_provider, unassign_provider),
        )
}

/// An organization.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationView {
    /// Id (what `x-org-id` carries).
    pub id: String,
    /// Short name.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// The caller's role in it: `admin`, `member`, or absent (the default organization, which
    /// every account belongs to, or one a platform administrator manages from outside).
    pub role: Option<String>,
    /// Whether the caller's sign-in acts in it now.
    pub current: bool,
}

fn org_view(o: OrgRow, current: bool) -> OrganizationView {
    OrganizationView {
        id: o.id.to_string(),
        slug: o.slug,
        name: o.name,
        role: None,
        current,
    }
}

/// The organizations the caller may act in.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationList {
    /// The default organization first, then by slug.
    pub items: Vec<OrganizationView>,
}

/// The organizations the caller may act in: the default one and those they belong to (every
/// organization, for a platform administrator who manages them).
#[utoipa::path(get, path = "/api/v1/organizations", tag = "organizations",
    responses((status = 200, description = "Organizations", body = OrganizationList)))]
pub(crate) async fn list_mine(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<OrganizationList>, ApiError> {
    let rows = organizations::mine(&state.ctx, &caller.principal).await?;
    Ok(Json(OrganizationList {
        items: rows
            .into_iter()
            .map(|l| OrganizationView {
                id: l.row.id.to_string(),
                slug: l.row.slug,
                name: l.row.name,
                role: l.row.role,
                current: l.current,
            })
            .collect(),
    }))
}

/// A new organization.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrganization {
    /// Short name: 2–40 lower-case letters, digits and single hyphens, starting with a letter.
    pub slug: String,
    /// Display name, 1–100 characters.
    pub name: String,
}

/// Creates an organization (platform administrators; the `multi-tenant` licence flag).
#[utoipa::path(post, path = "/api/v1/organizations", tag = "organizations",
    request_body(content = NewOrganization, example = json!({"slug": "acme", "name": "Acme Corp"})),
    responses((status = 201, description = "Created", body = OrganizationView),
        (status = 403, description = "Not a platform administrator, or the licence lacks `multi-tenant`", content_type = "application/problem+json"),
        (status = 409, description = "The slug is taken", content_type = "application/problem+json"),
        (status = 422, description = "Invalid slug or name", content_type = "application/problem+json")))]
pub(crate) async fn create_organization(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    ApiJson(input): ApiJson<NewOrganization>,
) -> Result<(StatusCode, Json<OrganizationView>), ApiError> {
    let slug = OrgSlug::parse(&input.slug).map_err(warden_core::CoreError::from)?;
    let row = organizations::create(&state.ctx, &op, &grant, &slug, &input.name).await?;
    Ok((StatusCode::CREATED, Json(org_view(row, false))))
}

/// A member of an organization.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrgMemberView {
    /// The account's id.
    pub user_id: String,
    /// Its email.
    pub email: String,
    /// `admin` or `member`.
    pub role: String,
    /// Added (RFC 3339).
    pub added_at: String,
}

fn member_view(m: OrgMemberRow) -> OrgMemberView {
    OrgMemberView {
        user_id: m.user_id.to_string(),
        email: m.email,
        role: m.role,
        added_at: rfc3339(m.added_at),
    }
}

/// An organization's members.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrgMemberList {
    /// The organization.
    pub organization: OrganizationView,
    /// Its members, by email.
    pub items: Vec<OrgMemberView>,
}

/// An organization's members (its admins, or a platform administrator). The organization
/// must be the one the sign-in acts in.
#[utoipa::path(get, path = "/api/v1/organizations/{org}/members", tag = "organizations",
    params(("org" = String, Path, description = "Organization id or slug")),
    responses((status = 200, description = "Members", body = OrgMemberList),
        (status = 403, description = "Another organization than the sign-in's (`org-mismatch`), or not its admin", content_type = "application/problem+json"),
        (status = 404, description = "No such organization", content_type = "application/problem+json")))]
pub(crate) async fn list_members(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
) -> Result<Json<OrgMemberList>, ApiError> {
    let (row, members) = organizations::members(&state.ctx, &caller.principal, &org).await?;
    Ok(Json(OrgMemberList {
        organization: org_view(row, true),
        items: members.into_iter().map(member_view).collect(),
    }))
}

/// A member to add, or a member's new role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgMemberInput {
    /// The account's email.
    pub email: String,
    /// `admin` or `member`.
    pub role: String,
}

/// Adds a person to the organization (platform administrators) or changes a member's role
/// (also the organization's admins). An organization keeps at least one admin.
#[utoipa::path(post, path = "/api/v1/organizations/{org}/members", tag = "organizations",
    params(("org" = String, Path, description = "Organization id or slug")),
    request_body(content = OrgMemberInput, example = json!({"email": "ada@acme.example", "role": "admin"})),
    responses((status = 200, description = "The member", body = OrgMemberView),
        (status = 403, description = "Another organization than the sign-in's, not its admin, or the licence lacks `multi-tenant`", content_type = "application/problem+json"),
        (status = 404, description = "No such organization, or (for an organization admin) no such member", content_type = "application/problem+json"),
        (status = 409, description = "The default organization, or its last admin", content_type = "application/problem+json"),
        (status = 422, description = "Invalid email or role", content_type = "application/problem+json")))]
pub(crate) async fn put_member(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    caller: Caller,
    Path(org): Path<String>,
    ApiJson(input): ApiJson<OrgMemberInput>,
) -> Result<Json<OrgMemberView>, ApiError> {
    let role = OrgRole::parse(&input.role)
        .ok_or_else(|| warden_core::CoreError::invalid("role", "must be admin or member"))?;
    let m = organizations::put_member(&state.ctx, &op, &caller.principal, &org, &input.email, role)
        .await?;
    Ok(Json(member_view(m)))
}

/// Removes a member (the organization's admins, or a platform administrator). Their sign-ins
/// lose the organization on their next request.
#[utoipa::path(delete, path = "/api/v1/organizations/{org}/members/{user_id}", tag = "organizations",
    params(("org" = String, Path, description = "Organization id or slug"),
        ("user_id" = String, Path, description = "The member's account id")),
    responses((status = 204, description = "Removed"),
        (status = 403, description = "Another organization than the sign-in's, or not its admin", content_type = "application/problem+json"),
        (status = 404, description = "No such organization or member", content_type = "application/problem+json"),
        (status = 409, description = "The default organization, or its last admin", content_type = "application/problem+json")))]
pub(crate) async fn remove_member(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    caller: Caller,
    Path((org, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    organizations::remove_member(&state.ctx, &op, &caller.principal, &org, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The organization to act in.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchOrganization {
    /// Its id or slug (`default` for the default organization).
    pub organization: String,
}

/// A sign-in now acting in another organization.
#[derive(Debug, Serialize, ToSchema)]
pub struct SwitchedView {
    /// The organization.
    pub organization: OrganizationView,
    /// A new access token naming it (a browser sign-in gets it as its cookie instead).
    pub access_token: Option<String>,
    /// Its lifetime, seconds.
    pub expires_in: i64,
}

/// Switches the organization this sign-in acts in. The session keeps it across refreshes;
/// the answer carries an access token naming it (for a browser, a new access cookie).
/// Personal access tokens act in the organization they were made in.
#[utoipa::path(post, path = "/api/v1/auth/organization", tag = "organizations",
    request_body(content = SwitchOrganization, example = json!({"organization": "acme"})),
    responses((status = 200, description = "Switched", body = SwitchedView),
        (status = 403, description = "Not a member, a personal access token, or the licence lacks `multi-tenant`", content_type = "application/problem+json"),
        (status = 404, description = "No such organization", content_type = "application/problem+json")))]
pub(crate) async fn switch_organization(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    caller: Caller,
    ApiJson(input): ApiJson<SwitchOrganization>,
) -> Result<Response, ApiError> {
    let s = organizations::switch(&state.ctx, &op, &caller.principal, &input.organization).await?;
    let browser = caller.credential == Credential::Cookie;
    let mut headers = HeaderMap::new();
    if browser && let Some(v) = cookies::set(cookies::ACCESS, &s.access_token, s.expires_in, true) {
        headers.append(header::SET_COOKIE, v);
    }
    let view = SwitchedView {
        organization: org_view(s.org, true),
        access_token: (!browser).then_some(s.access_token),
        expires_in: s.expires_in,
    };
    Ok((headers, Json(view)).into_response())
}

/// Gives a single sign-on provider (OpenID or SAML) to the organization: its sign-ins act
/// there, and a person signing in through it for the first time joins it (platform
/// administrators holding `settings.update` and `admin.update`; the organization must be the
/// one the sign-in acts in).
#[utoipa::path(put, path = "/api/v1/organizations/{org}/sso-providers/{slug}", tag = "organizations",
    params(("org" = String, Path, description = "Organization id or slug"),
        ("slug" = String, Path, description = "The provider's slug")),
    responses((status = 204, description = "The provider belongs to the organization"),
        (status = 403, description = "Another organization than the sign-in's, or not a platform administrator", content_type = "application/problem+json"),
        (status = 404, description = "No such organization or provider", content_type = "application/problem+json")))]
pub(crate) async fn assign_provider(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    Path((org, slug)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    organizations::set_provider(&state.ctx, &op, &grant, &org, &slug, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Takes a provider back from the organization: it signs people in for the installation again.
#[utoipa::path(delete, path = "/api/v1/organizations/{org}/sso-providers/{slug}", tag = "organizations",
    params(("org" = String, Path, description = "Organization id or slug"),
        ("slug" = String, Path, description = "The provider's slug")),
    responses((status = 204, description = "Taken back"),
        (status = 403, description = "Another organization than the sign-in's, or not a platform administrator", content_type = "application/problem+json"),
        (status = 404, description = "No such organization, or the provider is not its", content_type = "application/problem+json")))]
pub(crate) async fn unassign_provider(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    Path((org, slug)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    organizations::set_provider(&state.ctx, &op, &grant, &org, &slug, false).await?;
    Ok(StatusCode::NO_CONTENT)
}
