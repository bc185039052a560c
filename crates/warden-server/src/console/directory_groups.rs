//! Console → a workspace's Members → Directory groups: the groups whose members join the
//! workspace (SCIM groups a directory provisions, groups a SAML provider asserts), mapping one
//! with a role and removing a mapping. The rules are `warden_core::scim::workspaces`'s, the same
//! the API's `/directory-groups` routes call.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use utoipa_axum::routes;
use warden_core::scim::workspaces as core;
use warden_core::workspaces::members::parse_role;
use warden_domain::access::{Access, Permission};
use warden_domain::identity::Principal;
use warden_store::tenancy::WorkspaceGrant;

use super::Fields;
use super::workspaces::Place;
use crate::http::authz::{UserOp, WorkspaceAccess};
use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::state::AppState;

pub(super) fn routes() -> Routes<AppState> {
    use Access::Workspace;
    Routes::new()
        .add(Workspace(Permission::WORKSPACES_MEMBERS), routes!(map))
        .add(Workspace(Permission::WORKSPACES_MEMBERS), routes!(unmap))
}

/// A mapped group as the members page lists it.
pub(super) struct GroupItem {
    pub group_id: String,
    pub name: String,
    /// `SCIM`, or `SAML · ` and the provider's slug.
    pub source: String,
    pub role: String,
    pub members: i64,
}

/// What the members page shows of directory groups: the mappings, and what may be mapped —
/// the SAML providers, and the SCIM groups (for those who may list the directory's groups).
pub(super) struct Section {
    pub groups: Vec<GroupItem>,
    pub saml_providers: Vec<(String, String)>,
    pub scim_groups: Vec<(String, String)>,
}

pub(super) async fn section(
    state: &AppState,
    grant: &WorkspaceGrant,
    who: &Principal,
) -> Result<Section, ApiError> {
    let groups = core::list(&state.ctx, grant)
        .await?
        .into_iter()
        .map(|m| GroupItem {
            group_id: m.group_id.to_string(),
            name: m.display_name,
            source: m
                .provider
                .map_or_else(|| "SCIM".to_owned(), |slug| format!("SAML · {slug}")),
            role: m.role,
            members: m.members,
        })
        .collect();
    let saml_providers = warden_core::sso::providers::public_list(&state.ctx)
        .await?
        .into_iter()
        .filter(|p| p.protocol == "saml")
        .map(|p| (p.slug, p.display_name))
        .collect();
    let scim_groups = match state
        .ctx
        .store
        .authorize_platform(who, Permission::USERS_READ)
        .await
    {
        Ok(platform) => core::directory_groups(&state.ctx, &platform, 0, 200)
            .await?
            .rows
            .into_iter()
            .map(|g| (g.id.to_string(), g.display_name))
            .collect(),
        Err(_) => Vec::new(),
    };
    Ok(Section {
        groups,
        saml_providers,
        scim_groups,
    })
}

/// Maps a group: `source` = `scim` with `group_id`, or `saml` with `provider` and `group`;
/// `role`.
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/directory-groups", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Back to the members")))]
pub(crate) async fn map(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    body: Bytes,
) -> Result<Response, ApiError> {
    let form = Fields::parse(&body);
    let role = parse_role(form.text("role"))?;
    if form.text("source") == "scim" {
        core::put(&state.ctx, &op, &grant, form.text("group_id"), role).await?;
    } else {
        let (provider, group) = (form.text("provider"), form.text("group"));
        core::put_sso(&state.ctx, &op, &grant, provider, group, role).await?;
    }
    Ok(Redirect::to(&Place::url(&grant, "/members?done=group-mapped")).into_response())
}

/// Removes a group's mapping (the memberships it alone granted end).
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/directory-groups/{group_id}/remove", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("group_id" = String, Path, description = "The group's id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Back to the members")))]
pub(crate) async fn unmap(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<Response, ApiError> {
    core::remove(&state.ctx, &op, &grant, &path.1).await?;
    Ok(Redirect::to(&Place::url(&grant, "/members?done=group-unmapped")).into_response())
}
