//! Console → Workspaces: the person's workspaces (create one with platform
//! `workspaces.create`), each with its tabs — Sessions (the workspace's start page, see
//! `agent_sessions`), Members, Settings (see `workspace_settings`). Every workspace URL goes
//! through the workspace grant like the API: someone who may not know the workspace gets the
//! same 404 page as for one that does not exist.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use utoipa_axum::routes;
use warden_core::workspaces::members::{self, Newcomer, parse_role};
use warden_core::workspaces::{self as core, Listing};
use warden_domain::access::{Access, Permission, WorkspaceRole};
use warden_domain::tenancy::WorkspaceName;
use warden_store::tenancy::WorkspaceGrant;

use super::{Done, Fields, Frame, frame, render, when};
use crate::http::authz::{PlatformAccess, UserOp, WorkspaceAccess};
use crate::http::problem::ApiError;
use crate::http::query::ApiQuery;
use crate::http::routes::Routes;
use crate::identity::Caller;
use crate::state::AppState;

pub(super) fn routes() -> Routes<AppState> {
    use Access::Workspace;
    Routes::new()
        .add(Access::SignedIn, routes!(workspaces))
        .add(
            Access::Platform(Permission::WORKSPACES_CREATE),
            routes!(create),
        )
        .add(
            Workspace(Permission::WORKSPACES_READ),
            routes!(members_page),
        )
        .add(
            Workspace(Permission::WORKSPACES_MEMBERS),
            routes!(add_member),
        )
        .add(
            Workspace(Permission::WORKSPACES_MEMBERS),
            routes!(change_member),
        )
        .add(
            Workspace(Permission::WORKSPACES_MEMBERS),
            routes!(remove_member),
        )
}

/// The workspace a page is about, and which of its tabs the person may open.
pub(super) struct Place {
    pub id: String,
    pub name: String,
    pub tab: &'static str,
    pub archived: bool,
    pub may_sessions: bool,
    pub may_settings: bool,
    pub may_hosts: bool,
    pub may_automations: bool,
    pub may_llm: bool,
    pub may_tickets: bool,
    pub may_workflows: bool,
    pub may_bots: bool,
}

impl Place {
    pub(super) async fn of(
        state: &AppState,
        grant: &WorkspaceGrant,
        tab: &'static str,
    ) -> Result<Self, ApiError> {
        let w = core::get(&state.ctx, grant).await?;
        Ok(Self {
            id: w.id.to_string(),
            name: w.name,
            tab,
            archived: w.archived_at.is_some(),
            may_sessions: grant.holds(Permission::SESSIONS_READ),
            may_tickets: grant.holds(Permission::TICKETS_READ),
            may_bots: grant.holds(Permission::BOTS_READ)
                && state
                    .ctx
                    .license
                    .feature(warden_domain::license::Feature::Bots),
            may_workflows: grant.holds(Permission::WORKFLOWS_READ)
                && state
                    .ctx
                    .license
                    .feature(warden_domain::license::Feature::Workflows),
            may_settings: grant.holds(Permission::SETTINGS_READ),
            may_hosts: grant.holds(Permission::HOSTS_READ),
            may_automations: grant.holds(Permission::AUTOMATIONS_READ)
                && state
                    .ctx
                    .license
                    .feature(warden_domain::license::Feature::Automations),
            may_llm: grant.holds(Permission::LLM_CREATE)
                && state
                    .ctx
                    .license
                    .feature(warden_domain::license::Feature::LlmGateway),
        })
    }

    /// Where a tab of this workspace lives.
    pub(super) fn url(grant: &WorkspaceGrant, rest: &str) -> String {
        format!("/console/workspaces/{}{rest}", grant.workspace())
    }
}

struct WorkspaceItem {
    id: String,
    name: String,
    role: String,
    repository: String,
    archived: bool,
}

#[derive(Template)]
#[template(path = "console/workspaces.html")]
struct WorkspacesPage {
    frame: Frame,
    items: Vec<WorkspaceItem>,
    may_create: bool,
    /// Whether the person may list every workspace, and whether this page does.
    may_all: bool,
    all: bool,
}

/// Which workspaces the list shows.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WorkspacesQuery {
    /// `true`: every workspace (platform `workspaces.read`; audited), not only the person's.
    #[serde(default)]
    pub all: bool,
    /// A fixed notice (see the console's `notice`).
    pub done: Option<String>,
}

/// The person's workspaces (up to 200) — or, for those who may, every workspace — and the
/// form that creates one.
#[utoipa::path(get, path = "/console/workspaces", tag = "console", params(WorkspacesQuery),
    responses((status = 200, description = "Page", content_type = "text/html"),
              (status = 303, description = "Not signed in: to /sign-in")))]
pub(crate) async fn workspaces(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    caller: Caller,
    ApiQuery(q): ApiQuery<WorkspacesQuery>,
) -> Result<Response, ApiError> {
    let listing = Listing {
        all: q.all,
        archived: true,
        cursor: None,
        limit: Some(200),
    };
    let page = core::list(&state.ctx, &op, &caller.principal, listing).await?;
    let items = page
        .items
        .into_iter()
        .map(|w| WorkspaceItem {
            id: w.id.to_string(),
            name: w.name,
            role: w.my_role.unwrap_or_default(),
            repository: match w.repository {
                Some(
                    warden_domain::tenancy::Repository::Url(r)
                    | warden_domain::tenancy::Repository::Path(r),
                ) => r,
                None => "no repository yet".to_owned(),
            },
            archived: w.archived_at.is_some(),
        })
        .collect();
    let frame = frame(
        &state,
        &caller,
        "workspaces",
        super::notice(q.done.as_deref()),
    )
    .await?;
    let page = WorkspacesPage {
        may_create: frame.may.contains(Permission::WORKSPACES_CREATE),
        may_all: frame.may.contains(Permission::WORKSPACES_READ),
        all: q.all,
        frame,
        items,
    };
    Ok(render(&page, StatusCode::OK))
}

/// Creates a workspace (`name`); the person becomes its owner and lands on its settings.
#[utoipa::path(post, path = "/console/workspaces", tag = "console",
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Created: to its settings")))]
pub(crate) async fn create(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    body: Bytes,
) -> Result<Response, ApiError> {
    let form = Fields::parse(&body);
    let name = WorkspaceName::parse(form.text("name"))?;
    let w = core::create(&state.ctx, &op, &grant, &name).await?;
    Ok(Redirect::to(&format!(
        "/console/workspaces/{}/settings?done=workspace-created",
        w.id
    ))
    .into_response())
}

struct MemberItem {
    user_id: String,
    email: String,
    role: &'static str,
    added_at: String,
    /// Granted by a mapped directory group (which changes it), not by a person.
    from_directory: bool,
}

#[derive(Template)]
#[template(path = "console/workspace_members.html")]
struct MembersPage {
    frame: Frame,
    place: Place,
    members: Vec<MemberItem>,
    may_manage: bool,
    roles: [WorkspaceRole; 4],
    directory: super::directory_groups::Section,
}

/// A workspace's members and their roles; maintainers add, change and remove them.
#[utoipa::path(get, path = "/console/workspaces/{workspace_id}/members", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"), Done),
    responses((status = 200, description = "Page", content_type = "text/html"),
              (status = 404, description = "No such workspace for this person", content_type = "text/html")))]
pub(crate) async fn members_page(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    caller: Caller,
    ApiQuery(done): ApiQuery<Done>,
) -> Result<Response, ApiError> {
    let members = members::list(&state.ctx, &grant)
        .await?
        .into_iter()
        .map(|m| MemberItem {
            user_id: m.user_id.to_string(),
            email: m.email,
            role: WorkspaceRole::parse(&m.role).map_or("unknown", WorkspaceRole::as_str),
            added_at: when(m.added_at),
            from_directory: m.via_directory,
        })
        .collect();
    let directory = super::directory_groups::section(&state, &grant, &caller.principal).await?;
    let page = MembersPage {
        frame: frame(
            &state,
            &caller,
            "workspaces",
            super::notice(done.done.as_deref()),
        )
        .await?,
        place: Place::of(&state, &grant, "members").await?,
        members,
        may_manage: grant.holds(Permission::WORKSPACES_MEMBERS),
        roles: WorkspaceRole::ALL,
        directory,
    };
    Ok(render(&page, StatusCode::OK))
}

/// Adds an active user by email (`email`, `role`).
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/members", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Back to the members")))]
pub(crate) async fn add_member(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    body: Bytes,
) -> Result<Response, ApiError> {
    let form = Fields::parse(&body);
    let role = parse_role(form.text("role"))?;
    let who = Newcomer::Email(form.text("email").trim().to_owned());
    members::add(&state.ctx, &op, &grant, who, role).await?;
    Ok(Redirect::to(&Place::url(&grant, "/members?done=member-added")).into_response())
}

/// Changes a member's role (`role`).
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/members/{user_id}/role", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("user_id" = String, Path, description = "Member's user id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Back to the members")))]
pub(crate) async fn change_member(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let user = path.1;
    let role = parse_role(Fields::parse(&body).text("role"))?;
    members::change_role(&state.ctx, &op, &grant, &user, role).await?;
    Ok(Redirect::to(&Place::url(&grant, "/members?done=member-changed")).into_response())
}

/// Removes a member.
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/members/{user_id}/remove", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("user_id" = String, Path, description = "Member's user id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Back to the members")))]
pub(crate) async fn remove_member(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let user = path.1;
    members::remove(&state.ctx, &op, &grant, &user).await?;
    Ok(Redirect::to(&Place::url(&grant, "/members?done=member-removed")).into_response())
}
