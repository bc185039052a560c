//! Workspaces, the tenant boundary, and their members.

use crate::http::query::ApiQuery;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use uuid::Uuid;
use warden_domain::access::{
    Access, Permission, WorkspaceRole, keeps_an_owner, may_change_membership,
};
use warden_domain::audit::Outcome;
use warden_domain::identity::normalize_email;
use warden_domain::tenancy::{Hooks, Repository, WorkspaceId, WorkspaceName};
use warden_store::tenancy::{MemberRow, WorkspaceRow, WorkspaceTx};

use super::me::rfc3339;
use crate::audit::request::RequestMeta;
use crate::http::authz::{PlatformAccess, WorkspaceAccess, refused};
use crate::http::json::ApiJson;
use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::identity::{Caller, now_us};
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    use Access::Workspace;
    Routes::new()
        .add(Access::SignedIn, routes!(list_workspaces))
        .add(
            Access::Platform(Permission::WORKSPACES_CREATE),
            routes!(create_workspace),
        )
        .add(
            Workspace(Permission::WORKSPACES_READ),
            routes!(get_workspace),
        )
        .add(
            Workspace(Permission::WORKSPACES_UPDATE),
            routes!(rename_workspace),
        )
        .add(
            Workspace(Permission::WORKSPACES_DELETE),
            routes!(archive_workspace),
        )
        .add(
            Workspace(Permission::WORKSPACES_READ),
            routes!(list_members),
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

pub(crate) fn db(e: warden_store::StoreError) -> ApiError {
    ApiError::internal(&e)
}

/// A workspace.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceView {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Where its code lives.
    #[schema(value_type = Option<Object>)]
    pub repository: Option<Repository>,
    /// Commands run around each agent session.
    #[schema(value_type = Object)]
    pub hooks: Hooks,
    /// Ticket source configuration.
    #[schema(value_type = Option<Object>)]
    pub ticket_config: Option<serde_json::Value>,
    /// Creator's user id.
    pub created_by: String,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Last changed (RFC 3339).
    pub updated_at: String,
    /// Archived (RFC 3339); archived workspaces are read-only.
    pub archived_at: Option<String>,
    /// The caller's role in it, if a member.
    pub my_role: Option<String>,
}

pub(crate) fn view(w: WorkspaceRow) -> WorkspaceView {
    WorkspaceView {
        id: w.id.to_string(),
        name: w.name,
        repository: w
            .repository
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok()),
        hooks: serde_json::from_str(&w.hooks).unwrap_or_default(),
        ticket_config: w
            .ticket_config
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok()),
        created_by: w.created_by.to_string(),
        created_at: rfc3339(w.created_at),
        updated_at: rfc3339(w.updated_at),
        archived_at: w.archived_at.map(rfc3339),
        my_role: w.my_role,
    }
}

/// Listing options.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// Every workspace, not only the caller's (platform `workspaces.read`; audited).
    #[serde(default)]
    pub all: bool,
    /// Include archived workspaces.
    #[serde(default)]
    pub archived: bool,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// One page of workspaces.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspacePage {
    /// Workspaces, oldest first.
    pub items: Vec<WorkspaceView>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// The caller's workspaces, or with `all=true` every workspace (platform `workspaces.read`).
#[utoipa::path(get, path = "/api/v1/workspaces", tag = "workspaces", params(ListQuery),
    responses(
        (status = 200, description = "Workspaces", body = WorkspacePage),
        (status = 403, description = "all=true without platform workspaces.read", content_type = "application/problem+json")))]
pub(crate) async fn list_workspaces(
    State(state): State<AppState>,
    meta: RequestMeta,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<WorkspacePage>, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-limit",
            "limit must be between 1 and 200.",
        ));
    }
    let after = match q.cursor.as_deref() {
        None => None,
        Some(c) => Some(WorkspaceId::parse(c).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid-cursor",
                "cursor must be the next_cursor of a previous page.",
            )
        })?),
    };
    let rows = if q.all {
        let grant = state
            .store
            .authorize_platform(&caller.principal, Permission::WORKSPACES_READ)
            .await
            .map_err(refused)?;
        let event = meta.event(
            state.clock.now(),
            caller.actor(),
            "workspace.listed_all",
            "workspace",
            None,
            Outcome::Success,
            json!({ "archived": q.archived, "cursor": q.cursor, "limit": limit }),
        );
        state
            .store
            .platform_wide(&grant, &state.audit_key, &event, after, limit, q.archived)
            .await
            .map_err(db)?
    } else {
        state
            .store
            .my_workspaces(&caller.principal, after, limit, q.archived)
            .await
            .map_err(db)?
    };
    let full = i64::try_from(rows.len()).unwrap_or(0) == limit;
    let next_cursor = rows.last().filter(|_| full).map(|w| w.id.to_string());
    Ok(Json(WorkspacePage {
        items: rows.into_iter().map(view).collect(),
        next_cursor,
    }))
}

/// A new workspace.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWorkspace {
    /// Display name, 1–100 characters.
    pub name: String,
}

/// Creates a workspace; the caller becomes its owner.
#[utoipa::path(post, path = "/api/v1/workspaces", tag = "workspaces",
    request_body(content = NewWorkspace, example = json!({"name": "Payments"})),
    responses(
        (status = 201, description = "Created", body = WorkspaceView),
        (status = 422, description = "Invalid name", content_type = "application/problem+json")))]
pub(crate) async fn create_workspace(
    State(state): State<AppState>,
    meta: RequestMeta,
    caller: Caller,
    PlatformAccess(grant): PlatformAccess,
    ApiJson(input): ApiJson<NewWorkspace>,
) -> Result<(StatusCode, Json<WorkspaceView>), ApiError> {
    let name = WorkspaceName::parse(&input.name).map_err(|e| ApiError::invalid(&e))?;
    let now = state.clock.now();
    let mut tx = state
        .store
        .create_workspace(&grant, name.as_str(), now_us(state.clock.as_ref()))
        .await
        .map_err(db)?;
    let id = tx.workspace().to_string();
    let event = meta.event(
        now,
        caller.actor(),
        "workspace.created",
        "workspace",
        Some(id),
        Outcome::Success,
        json!({ "name": name.as_str() }),
    );
    tx.record(&state.audit_key, event).await.map_err(db)?;
    let row = tx.get().await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok((StatusCode::CREATED, Json(view(row))))
}

/// A workspace, with its settings (never its secret values).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}", tag = "workspaces",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    responses(
        (status = 200, description = "The workspace", body = WorkspaceView),
        (status = 404, description = "No such workspace visible to the caller", content_type = "application/problem+json")))]
pub(crate) async fn get_workspace(
    State(state): State<AppState>,
    access: WorkspaceAccess,
) -> Result<Json<WorkspaceView>, ApiError> {
    let mut tx = access.open(&state).await?;
    let row = tx.get().await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(Json(view(row)))
}

/// A workspace's new name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rename {
    /// Display name, 1–100 characters.
    pub name: String,
}

/// Renames a workspace.
#[utoipa::path(patch, path = "/api/v1/workspaces/{workspace_id}", tag = "workspaces",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = Rename, example = json!({"name": "Payments (EU)"})),
    responses(
        (status = 200, description = "Renamed", body = WorkspaceView),
        (status = 404, description = "No such workspace visible to the caller", content_type = "application/problem+json")))]
pub(crate) async fn rename_workspace(
    State(state): State<AppState>,
    meta: RequestMeta,
    caller: Caller,
    access: WorkspaceAccess,
    ApiJson(input): ApiJson<Rename>,
) -> Result<Json<WorkspaceView>, ApiError> {
    let name = WorkspaceName::parse(&input.name).map_err(|e| ApiError::invalid(&e))?;
    let mut tx = access.open(&state).await?;
    let before = tx.get().await.map_err(db)?;
    tx.rename(name.as_str(), now_us(state.clock.as_ref()))
        .await
        .map_err(db)?;
    let event = meta.event(
        state.clock.now(),
        caller.actor(),
        "workspace.renamed",
        "workspace",
        Some(before.id.to_string()),
        Outcome::Success,
        json!({ "name": { "old": before.name, "new": name.as_str() } }),
    );
    tx.record(&state.audit_key, event).await.map_err(db)?;
    let row = tx.get().await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(Json(view(row)))
}

/// Archives a workspace: it stays readable, and nothing in it can change.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/archive", tag = "workspaces",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    responses(
        (status = 204, description = "Archived"),
        (status = 404, description = "No such workspace visible to the caller", content_type = "application/problem+json"),
        (status = 409, description = "Already archived", content_type = "application/problem+json")))]
pub(crate) async fn archive_workspace(
    State(state): State<AppState>,
    meta: RequestMeta,
    caller: Caller,
    access: WorkspaceAccess,
) -> Result<StatusCode, ApiError> {
    let mut tx = access.open(&state).await?;
    tx.archive(now_us(state.clock.as_ref())).await.map_err(db)?;
    let event = meta.event(
        state.clock.now(),
        caller.actor(),
        "workspace.archived",
        "workspace",
        Some(tx.workspace().to_string()),
        Outcome::Success,
        json!({}),
    );
    tx.record(&state.audit_key, event).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(StatusCode::NO_CONTENT)
}

/// A member of a workspace.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    /// User id.
    pub user_id: String,
    /// Email.
    pub email: String,
    /// Role here: owner, maintainer, member or viewer.
    pub role: String,
    /// Who added them.
    pub added_by: String,
    /// When (RFC 3339).
    pub added_at: String,
}

fn member_view(m: MemberRow) -> MemberView {
    MemberView {
        user_id: m.user_id.to_string(),
        email: m.email,
        role: m.role,
        added_by: m.added_by.to_string(),
        added_at: rfc3339(m.added_at),
    }
}

/// A workspace's members.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/members", tag = "workspaces",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    responses(
        (status = 200, description = "Members", body = Vec<MemberView>),
        (status = 404, description = "No such workspace visible to the caller", content_type = "application/problem+json")))]
pub(crate) async fn list_members(
    State(state): State<AppState>,
    access: WorkspaceAccess,
) -> Result<Json<Vec<MemberView>>, ApiError> {
    let mut tx = access.open(&state).await?;
    let rows = tx.members().await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(Json(rows.into_iter().map(member_view).collect()))
}

fn parse_role(role: &str) -> Result<WorkspaceRole, ApiError> {
    WorkspaceRole::parse(role).ok_or(ApiError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        code: "invalid-input",
        detail: "must be owner, maintainer, member or viewer",
        field: Some("role"),
    })
}

fn role_forbidden() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "owner-role-reserved",
        "Only owners can grant, change or remove the owner role.",
    )
}

fn last_owner() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "last-owner",
        "A workspace keeps at least one owner: make someone else owner first.",
    )
}

/// Checks a membership change against the actor's role and the last-owner rule.
async fn check_change(
    tx: &mut WorkspaceTx,
    from: Option<WorkspaceRole>,
    to: Option<WorkspaceRole>,
) -> Result<(), ApiError> {
    let platform_wide = tx.platform_holds(Permission::WORKSPACES_MEMBERS);
    if !may_change_membership(tx.role(), platform_wide, from, to) {
        return Err(role_forbidden());
    }
    let owners = tx.count_owners().await.map_err(db)?;
    if !keeps_an_owner(owners, from, to) {
        return Err(last_owner());
    }
    Ok(())
}

/// A new member, by email or user id.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    /// The user's email.
    pub email: Option<String>,
    /// Or the user's id.
    pub user_id: Option<String>,
    /// owner, maintainer, member or viewer.
    pub role: String,
}

/// Adds a member.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/members", tag = "workspaces",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = NewMember, example = json!({"email": "dev@example.test", "role": "member"})),
    responses(
        (status = 201, description = "Added", body = MemberView),
        (status = 409, description = "Already a member", content_type = "application/problem+json"),
        (status = 422, description = "No such active user, or bad role", content_type = "application/problem+json")))]
pub(crate) async fn add_member(
    State(state): State<AppState>,
    meta: RequestMeta,
    caller: Caller,
    access: WorkspaceAccess,
    ApiJson(input): ApiJson<NewMember>,
) -> Result<(StatusCode, Json<MemberView>), ApiError> {
    let role = parse_role(&input.role)?;
    let no_user = || ApiError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        code: "unknown-user",
        detail: "no active user has this email or id",
        field: Some("email"),
    };
    let mut tx = access.open(&state).await?;
    let user = match (input.email.as_deref(), input.user_id.as_deref()) {
        (Some(email), None) => {
            let email = normalize_email(email).map_err(|_| no_user())?;
            tx.user_by_email(&email).await.map_err(db)?
        }
        (None, Some(id)) => {
            let id: Uuid = id.parse().map_err(|_| no_user())?;
            tx.user_by_id(id).await.map_err(db)?
        }
        _ => {
            return Err(ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "invalid-input",
                detail: "give exactly one of email and user_id",
                field: Some("email"),
            });
        }
    };
    let user = user.filter(|u| u.active).ok_or_else(no_user)?;
    check_change(&mut tx, None, Some(role)).await?;
    if tx.member(user.id).await.map_err(db)?.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already-member",
            "This user is already a member; change their role instead.",
        ));
    }
    tx.add_member(user.id, role, now_us(state.clock.as_ref()))
        .await
        .map_err(db)?;
    let event = meta.event(
        state.clock.now(),
        caller.actor(),
        "workspace.member_added",
        "user",
        Some(user.id.to_string()),
        Outcome::Success,
        json!({ "email": user.email, "role": role.as_str() }),
    );
    tx.record(&state.audit_key, event).await.map_err(db)?;
    let row = tx
        .member(user.id)
        .await
        .map_err(db)?
        .ok_or_else(|| ApiError::internal(&"member vanished"))?;
    tx.commit().await.map_err(db)?;
    Ok((StatusCode::CREATED, Json(member_view(row))))
}

/// A member's new role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    /// owner, maintainer, member or viewer.
    pub role: String,
}

async fn existing_member(
    tx: &mut WorkspaceTx,
    user_id: &str,
) -> Result<(Uuid, WorkspaceRole), ApiError> {
    let not_found = || ApiError::from_status(StatusCode::NOT_FOUND);
    let id: Uuid = user_id.parse().map_err(|_| not_found())?;
    let row = tx.member(id).await.map_err(db)?.ok_or_else(not_found)?;
    let role = WorkspaceRole::parse(&row.role).ok_or_else(not_found)?;
    Ok((id, role))
}

/// Changes a member's role. The last owner cannot be demoted.
#[utoipa::path(patch, path = "/api/v1/workspaces/{workspace_id}/members/{user_id}", tag = "workspaces",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("user_id" = String, Path, description = "Member's user id")),
    request_body(content = RoleChange, example = json!({"role": "viewer"})),
    responses(
        (status = 200, description = "Changed", body = MemberView),
        (status = 404, description = "No such member", content_type = "application/problem+json"),
        (status = 409, description = "Would leave no owner", content_type = "application/problem+json")))]
pub(crate) async fn change_member(
    State(state): State<AppState>,
    meta: RequestMeta,
    caller: Caller,
    access: WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiJson(input): ApiJson<RoleChange>,
) -> Result<Json<MemberView>, ApiError> {
    let user_id = path.1;
    let role = parse_role(&input.role)?;
    let mut tx = access.open(&state).await?;
    let (id, from) = existing_member(&mut tx, &user_id).await?;
    check_change(&mut tx, Some(from), Some(role)).await?;
    tx.set_member_role(id, role, now_us(state.clock.as_ref()))
        .await
        .map_err(db)?;
    let event = meta.event(
        state.clock.now(),
        caller.actor(),
        "workspace.member_role_changed",
        "user",
        Some(id.to_string()),
        Outcome::Success,
        json!({ "role": { "old": from.as_str(), "new": role.as_str() } }),
    );
    tx.record(&state.audit_key, event).await.map_err(db)?;
    let row = tx
        .member(id)
        .await
        .map_err(db)?
        .ok_or_else(|| ApiError::internal(&"member vanished"))?;
    tx.commit().await.map_err(db)?;
    Ok(Json(member_view(row)))
}

/// Removes a member. The last owner cannot be removed.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/members/{user_id}", tag = "workspaces",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("user_id" = String, Path, description = "Member's user id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such member", content_type = "application/problem+json"),
        (status = 409, description = "Would leave no owner", content_type = "application/problem+json")))]
pub(crate) async fn remove_member(
    State(state): State<AppState>,
    meta: RequestMeta,
    caller: Caller,
    access: WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let user_id = path.1;
    let mut tx = access.open(&state).await?;
    let (id, from) = existing_member(&mut tx, &user_id).await?;
    check_change(&mut tx, Some(from), None).await?;
    tx.remove_member(id).await.map_err(db)?;
    let event = meta.event(
        state.clock.now(),
        caller.actor(),
        "workspace.member_removed",
        "user",
        Some(id.to_string()),
        Outcome::Success,
        json!({ "role": from.as_str() }),
    );
    tx.record(&state.audit_key, event).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(StatusCode::NO_CONTENT)
}
