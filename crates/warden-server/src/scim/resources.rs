//! The SCIM routes: discovery, Users and Groups.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use utoipa_axum::routes;
use warden_core::scim::{discovery, groups, users};
use warden_core::{Code, CoreError};
use warden_domain::access::Access;

use super::{
    ListQuery, Projection, Scim, ScimError, body, if_match, list_response, not_modified,
    resource_response, scim_json,
};
use crate::http::query::ApiQuery;
use crate::http::routes::Routes;
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    let s = Access::ScimToken;
    Routes::new()
        .add(s, routes!(service_provider_config))
        .add(s, routes!(resource_types))
        .add(s, routes!(resource_type))
        .add(s, routes!(schemas))
        .add(s, routes!(schema))
        .add(s, routes!(list_users, create_user))
        .add(s, routes!(get_user, replace_user, modify_user, delete_user))
        .add(s, routes!(search_users))
        .add(s, routes!(list_groups, create_group))
        .add(
            s,
            routes!(get_group, replace_group, modify_group, delete_group),
        )
        .add(s, routes!(search_groups))
        .add(s, routes!(search_all))
}

fn listed(list: Vec<Value>) -> Response {
    super::list_response(
        warden_core::scim::Listed {
            total: i64::try_from(list.len()).unwrap_or(0),
            start_index: 1,
            resources: list,
        },
        &Projection::default(),
    )
}

/// What Warden's SCIM service supports (PATCH, filters, ETags; no bulk, sorting or password
/// changes).
#[utoipa::path(get, path = "/scim/v2/ServiceProviderConfig", tag = "scim",
    responses((status = 200, description = "The service provider configuration", content_type = "application/scim+json", body = Object),
        (status = 401, description = "No valid SCIM token", content_type = "application/scim+json", body = Object)))]
pub(crate) async fn service_provider_config(State(state): State<AppState>, _s: Scim) -> Response {
    scim_json(
        StatusCode::OK,
        &discovery::service_provider_config(&state.ctx),
    )
}

/// The resource types served: User and Group.
#[utoipa::path(get, path = "/scim/v2/ResourceTypes", tag = "scim",
    responses((status = 200, description = "A list of ResourceType resources", content_type = "application/scim+json", body = Object),
        (status = 401, description = "No valid SCIM token", content_type = "application/scim+json", body = Object)))]
pub(crate) async fn resource_types(State(state): State<AppState>, _s: Scim) -> Response {
    listed(discovery::resource_types(&state.ctx))
}

/// One resource type.
#[utoipa::path(get, path = "/scim/v2/ResourceTypes/{id}", tag = "scim",
    params(("id" = String, Path, description = "User or Group")),
    responses((status = 200, description = "The ResourceType", content_type = "application/scim+json", body = Object),
        (status = 401, description = "No valid SCIM token", content_type = "application/scim+json", body = Object),
        (status = 404, description = "No such resource type", content_type = "application/scim+json", body = Object)))]
pub(crate) async fn resource_type(
    State(state): State<AppState>,
    _s: Scim,
    Path(id): Path<String>,
) -> Result<Response, ScimError> {
    discovery::resource_types(&state.ctx)
        .into_iter()
        .find(|r| r["id"] == id.as_str())
        .map(|r| scim_json(StatusCode::OK, &r))
        .ok_or_else(|| Code::NotFound.into())
}

/// The schemas of the resources served.
#[utoipa::path(get, path = "/scim/v2/Schemas", tag = "scim",
    responses((status = 200, description = "A list of Schema resources", content_type = "application/scim+json", body = Object),
        (status = 401, description = "No valid SCIM token", content_type = "application/scim+json", body = Object)))]
pub(crate) async fn schemas(State(state): State<AppState>, _s: Scim) -> Response {
    listed(discovery::schemas(&state.ctx))
}

/// One schema, by its URN.
#[utoipa::path(get, path = "/scim/v2/Schemas/{id}", tag = "scim",
    params(("id" = String, Path, description = "The schema's URN")),
    responses((status = 200, description = "The Schema", content_type = "application/scim+json", body = Object),
        (status = 401, description = "No valid SCIM token", content_type = "application/scim+json", body = Object),
        (status = 404, description = "No such schema", content_type = "application/scim+json", body = Object)))]
pub(crate) async fn schema(
    State(state): State<AppState>,
    _s: Scim,
    Path(id): Path<String>,
) -> Result<Response, ScimError> {
    discovery::schemas(&state.ctx)
        .into_iter()
        .find(|r| r["id"] == id.as_str())
        .map(|r| scim_json(StatusCode::OK, &r))
        .ok_or_else(|| Code::NotFound.into())
}

/// Lists users, optionally filtered (`userName eq "…"`, `externalId eq "…"`, `emails sw …`,
/// `and`/`or`/`not`), a page at a time (`startIndex`, `count` ≤ 200).
#[utoipa::path(get, path = "/scim/v2/Users", tag = "scim",
    params(("filter" = Option<String>, Query, description = "A SCIM filter"),
        ("startIndex" = Option<String>, Query, description = "1-based index of the first result"),
        ("count" = Option<String>, Query, description = "At most this many (0–200, default 100)"),
        ("attributes" = Option<String>, Query, description = "Only these attributes"),
        ("excludedAttributes" = Option<String>, Query, description = "Not these attributes")),
    responses((status = 200, description = "A ListResponse of Users", content_type = "application/scim+json", body = Object),
        (status = 400, description = "An invalid filter or page", content_type = "application/scim+json", body = Object),
        (status = 401, description = "No valid SCIM token", content_type = "application/scim+json", body = Object)))]
pub(crate) async fn list_users(
    State(state): State<AppState>,
    s: Scim,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ScimError> {
    let found = users::list(&state.ctx, &s.client, q.filter.as_deref(), q.paging()?).await?;
    Ok(list_response(found, &q.projection()))
}

/// A search request body (`POST …/.search`).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct SearchRequest {
    filter: Option<String>,
    start_index: Option<i64>,
    count: Option<i64>,
    attributes: Option<Vec<String>>,
    excluded_attributes: Option<Vec<String>>,
}

fn search_request(
    headers: &HeaderMap,
    bytes: &Bytes,
) -> Result<(SearchRequest, Projection), ScimError> {
    let v = body(headers, bytes)?;
    let r: SearchRequest = serde_json::from_value(v).map_err(|_| {
        ScimError::from(CoreError::noted(
            Code::ScimInvalidSyntax,
            "body",
            "a SearchRequest has filter, startIndex, count, attributes and excludedAttributes"
                .into(),
        ))
    })?;
    let p = Projection::new(
        r.attributes.as_ref().map(|a| a.join(",")).as_deref(),
        r.excluded_attributes
            .as_ref()
            .map(|a| a.join(","))
            .as_deref(),
    );
    Ok((r, p))
}

/// Searches users with a SearchRequest body.
#[utoipa::path(post, path = "/scim/v2/Users/.search", tag = "scim",
    request_body(content = Object, content_type = "application/scim+json", description = "A SearchRequest"),
    responses((status = 200, description = "A ListResponse of Users", content_type = "application/scim+json", body = Object),
        (status = 400, description = "An invalid request or filter", content_type = "application/scim+json", body = Object),
        (status = 401, description = "No valid SCIM token", content_type = "application/scim+json", body = Object)))]
pub(crate) async fn search_users(
    State(state): State<AppState>,
    s: Scim,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ScimError> {
    let (r, p) = search_request(&headers, &bytes)?;
    let paging = warden_core::scim::Paging::new(r.start_index, r.count);
    let found = users::list(&state.ctx, &s.client, r.filter.as_deref(), paging).await?;
    Ok(list_response(found, &p))
}

/// Provisions a user; an email that belongs to an account the directory does not manage yet
/// adopts that account.
#[utoipa::path(post, path = "/scim/v2/Users", tag = "scim",
    request_body(content = Object, content_type = "application/scim+json", description = "A User"),
    responses((status = 201, description = "The User", content_type = "application/scim+json", body = Object),
        (status = 400, description = "An invalid User", content_type = "application/scim+json", body = Object),
        (status = 401, description = "No valid SCIM token", content_type = "application/scim+json", body = Object),
        (status = 409, description = "userName or email taken", content_type = "application/scim+json", body = Object)))]
pub(crate) async fn create_user(
    State(state): State<AppState>,
    s: Scim,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ScimError> {
    let v = body(&headers, &bytes)?;
    let out = users::create(&state.ctx, &s.op, &s.client, v).await?;
    Ok(resource_response(
        StatusCode::CREATED,
        out,
        &Projection::default(),
    ))
}

/// One user.
#[utoipa::path(get, path = "/scim/v2/Users/{id}", tag = "scim",
    params(("id" = String, Path, description = "The User's id"),
        ("attributes" = Option<String>, Query, description = "Only these attributes"),
        ("excludedAttributes" = Option<String>, Query, description = "Not these attributes")),
    responses((status = 200, description = "The User", content_type = "application/scim+json", body = Object),
        (status = 304, description = "Unchanged since the If-None-Match version"),
        (status = 401, description = "No valid SCIM token", content_type = "application/scim+json", body = Object),
        (status = 404, description = "No such User", content_type = "application/scim+json", body = Object)))]
pub(crate) async fn get_user(
    State(state): State<AppState>,
    s: Scim,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ScimError> {
    let out = users::get(&state.ctx, &s.client, &id).await?;
    if not_modified(&headers, out.1) {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    Ok(resource_response(StatusCode::OK, out, &q.projection()))
}

/// Replaces a user (`If-Match` honoured).
#[utoipa::path(put, path = "/scim/v2/Users/{id}", tag = "scim",
    params(("id" = String, Path, description = "The User's id")),
    request_body(content = Object, content_type = "application/scim+json", description = "A User"),
    responses((status = 200, description = "The User", content_type = "application/scim+json", body = Object),
        (status = 400, description = "An invalid User", content_type = "application/scim+json", body = Object),
        (status = 401, description = "No valid SCIM token", content_type = "application/scim+json", body = Object),
        (status = 403, description = "An account an administrator gave another platform role: no longer the directory's", content_type = "application/scim+json", body = Object),
        (status = 404, description = "No such User", content_type = "application/scim+json", body = Object),
        (status = 409, description = "userName or email taken; or the last administrator", content_type = "application/scim+json", body = Object),
        (status = 412, description = "If-Match names another version", content_type = "application/scim+json", body = Object)))]
pub(crate) async fn replace_user(
    State(state): State<AppState>,
    s: Scim,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ScimError> {
    let v = body(&headers, &bytes)?;
    let out = users::replace(&state.ctx, &s.op, &s.client, &id, v, if_match(&headers)).await?;
    Ok(resource_response(
        StatusCode::OK,
        out,
        &Projection::default(),
    ))
}

/// Changes a user with PATCH operations (`active: false` deactivates: sessions and tokens end
/// at once).
#[utoipa::path(patch, path = "/scim/v2/Users/{id}", tag = "scim",
    params(("id" = String, Path, description = "The User's id")),
    request_body(content = Object, content_type = "application/scim+json", description = "A PatchOp"),
    responses((status = 200, description = "The User", content_type = "application/scim+json", body = Object),
        (status = 400, description = "An invalid operation", content_type = "application/scim+json", body = Object),
        (status = 401, description = "No valid SCIM token", content_type = "application/scim+json", body = Object),
        (status = 403, description = "An account an administrator gave another platform role: no longer the directory's", content_type = "application/scim+json", body = Object),
        (status = 404, description = "No such User", content_type = "application/scim+json", body = Object),
        (status = 409, description = "userName or email taken; or the last administrator", content_type = "application/scim+json", body = Object),
        (status = 412, description = "If-Match names another version", content_type = "application/scim+json", body = Object)))]
pub(crate) async fn modify_user(
    State(state): State<AppState>,
    s: Scim,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ScimError> {
    let v = body(&headers, &bytes)?;
    let out = users::modify(&state.ctx, &s.op, &s.client, &id, v, if_match(&headers)).await?;
    Ok(resource_response(
        StatusCode::OK,
        out,
        &Projection::default(),
    ))
}

/// Deletes a user: the account is deactivated and kept for the audit trail.
#[utoipa::path(delete, path = "/scim/v2/Users/{id}", tag = "scim",
    params(("id" = String, Path, description = "The User's id")),
    responses((status = 204, description = "Deleted"),
        (status = 401, description = "No valid SCIM token", content_type = "application/scim+json", body = Object),
        (status = 403, description = "An account an administrator gave another platform role: no longer the directory's", content_type = "application/scim+json", body = Object),
        (status = 404, description = "No such User", content_type = "application/scim+json", body = Object),
        (status = 409, description = "The last administrator", content_type = "application/scim+json", body = Object),
        (status = 412, description = "If-Match names another version", content_type = "application/scim+json", body = Object)))]
pub(crate) async fn delete_user(
    State(state): State<AppState>,
    s: Scim,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ScimError> {
    users::delete(&state.ctx, &s.op, &s.client, &id, if_match(&headers)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists groups, optionally filtered (`displayName eq "…"`, `members[value eq "…"]`).
#[utoipa::path(get, path = "/scim/v2/Groups", tag = "scim",
    params(("filter" = Option<String>, Query, description = "A SCIM filter"),
        ("startIndex" = Option<String>, Query, description = "1-based index of the first result"),
        ("count" = Option<String>, Query, description = "At most this many (0–200, default 100)"),
        ("attributes" = Option<String>, Query, description = "Only these attributes"),
        ("excludedAttributes" = Option<String>, Query, description = "Not these attributes (members: faster)")),
    responses((status = 200, description = "A ListResponse of Groups", content_type = "application/scim+json", body = Object),
        (status = 400, description = "An invalid filter or page", content_type = "application/scim+json", body = Object),
        (status = 401, description = "No valid SCIM token", content_type = "application/scim+json", body = Object)))]
pub(crate) async fn list_groups(
    State(state): State<AppState>,
    s: Scim,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ScimError> {
    let p = q.projection();
    let found = groups::list(
        &state.ctx,
        &s.client,
        q.filter.as_deref(),
        q.paging()?,
        !p.excludes("members"),
    )
    .await?;
    Ok(list_response(found, &p))
}

/// Searches groups with a SearchRequest body.
#[utoipa::path(post, path = "/scim/v2/Groups/.search", tag = "scim",
    request_body(content = Object, content_type = "application/scim+json", description = "A SearchRequest"),
    responses((status = 200, description = "A ListResponse of Groups", content_type = "application/scim+json", body = Object),
        (status = 400, description = "An invalid request or filter", content_type = "application/scim+json", body = Object),
        (status = 401, description = "No valid SCIM token", content_type = "application/scim+json", body = Object)))]
pub(crate) async fn search_groups(
    State(state): State<AppState>,
    s: Scim,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ScimError> {
    let (r, p) = search_request(&headers, &bytes)?;
    let paging = warden_core::scim::Paging::new(r.start_index, r.count);
    let found = groups::list(
        &state.ctx,
        &s.client,
        r.filter.as_deref(),
        paging,
        !p.excludes("members"),
    )
    .await?;
    Ok(list_response(found, &p))
}

/// Searching every resource type at once is not offered (501): search `/Users` or `/Groups`.
#[utoipa::path(post, path = "/scim/v2/.search", tag = "scim",
    request_body(content = Object, content_type = "application/scim+json", description = "A SearchRequest"),
    responses((status = 401, description = "No valid SCIM token", content_type = "application/scim+json", body = Object),
        (status = 501, description = "Not supported", content_type = "application/scim+json", body = Object)))]
pub(crate) async fn search_all(_s: Scim) -> ScimError {
    Code::ScimNotImplemented.into()
}

/// Creates a group.
#[utoipa::path(post, path = "/scim/v2/Groups", tag = "scim",
    request_body(content = Object, content_type = "application/scim+json", description = "A Group"),
    responses((status = 201, description = "The Group", content_type = "application/scim+json", body = Object),
        (status = 400, description = "An invalid Group", content_type = "application/scim+json", body = Object),
        (status = 401, description = "No valid SCIM token", content_type = "application/scim+json", body = Object),
        (status = 409, description = "displayName taken", content_type = "application/scim+json", body = Object)))]
pub(crate) async fn create_group(
    State(state): State<AppState>,
    s: Scim,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ScimError> {
    let v = body(&headers, &bytes)?;
    let out = groups::create(&state.ctx, &s.op, &s.client, v).await?;
    Ok(resource_response(
        StatusCode::CREATED,
        out,
        &Projection::default(),
    ))
}

/// One group.
#[utoipa::path(get, path = "/scim/v2/Groups/{id}", tag = "scim",
    params(("id" = String, Path, description = "The Group's id"),
        ("attributes" = Option<String>, Query, description = "Only these attributes"),
        ("excludedAttributes" = Option<String>, Query, description = "Not these attributes")),
    responses((status = 200, description = "The Group", content_type = "application/scim+json", body = Object),
        (status = 304, description = "Unchanged since the If-None-Match version"),
        (status = 401, description = "No valid SCIM token", content_type = "application/scim+json", body = Object),
        (status = 404, description = "No such Group", content_type = "application/scim+json", body = Object)))]
pub(crate) async fn get_group(
    State(state): State<AppState>,
    s: Scim,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ScimError> {
    let out = groups::get(&state.ctx, &s.client, &id).await?;
    if not_modified(&headers, out.1) {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    Ok(resource_response(StatusCode::OK, out, &q.projection()))
}

/// Replaces a group and its members.
#[utoipa::path(put, path = "/scim/v2/Groups/{id}", tag = "scim",
    params(("id" = String, Path, description = "The Group's id")),
    request_body(content = Object, content_type = "application/scim+json", description = "A Group"),
    responses((status = 200, description = "The Group", content_type = "application/scim+json", body = Object),
        (status = 400, description = "An invalid Group", content_type = "application/scim+json", body = Object),
        (status = 401, description = "No valid SCIM token", content_type = "application/scim+json", body = Object),
        (status = 404, description = "No such Group", content_type = "application/scim+json", body = Object),
        (status = 409, description = "displayName taken", content_type = "application/scim+json", body = Object),
        (status = 412, description = "If-Match names another version", content_type = "application/scim+json", body = Object)))]
pub(crate) async fn replace_group(
    State(state): State<AppState>,
    s: Scim,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ScimError> {
    let v = body(&headers, &bytes)?;
    let out = groups::replace(&state.ctx, &s.op, &s.client, &id, v, if_match(&headers)).await?;
    Ok(resource_response(
        StatusCode::OK,
        out,
        &Projection::default(),
    ))
}

/// Changes a group with PATCH operations (add or remove members, rename).
#[utoipa::path(patch, path = "/scim/v2/Groups/{id}", tag = "scim",
    params(("id" = String, Path, description = "The Group's id")),
    request_body(content = Object, content_type = "application/scim+json", description = "A PatchOp"),
    responses((status = 200, description = "The Group", content_type = "application/scim+json", body = Object),
        (status = 400, description = "An invalid operation", content_type = "application/scim+json", body = Object),
        (status = 401, description = "No valid SCIM token", content_type = "application/scim+json", body = Object),
        (status = 404, description = "No such Group", content_type = "application/scim+json", body = Object),
        (status = 409, description = "displayName taken", content_type = "application/scim+json", body = Object),
        (status = 412, description = "If-Match names another version", content_type = "application/scim+json", body = Object)))]
pub(crate) async fn modify_group(
    State(state): State<AppState>,
    s: Scim,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ScimError> {
    let v = body(&headers, &bytes)?;
    let out = groups::modify(&state.ctx, &s.op, &s.client, &id, v, if_match(&headers)).await?;
    Ok(resource_response(
        StatusCode::OK,
        out,
        &Projection::default(),
    ))
}

/// Deletes a group (its members' accounts stay).
#[utoipa::path(delete, path = "/scim/v2/Groups/{id}", tag = "scim",
    params(("id" = String, Path, description = "The Group's id")),
    responses((status = 204, description = "Deleted"),
        (status = 401, description = "No valid SCIM token", content_type = "application/scim+json", body = Object),
        (status = 404, description = "No such Group", content_type = "application/scim+json", body = Object),
        (status = 412, description = "If-Match names another version", content_type = "application/scim+json", body = Object)))]
pub(crate) async fn delete_group(
    State(state): State<AppState>,
    s: Scim,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ScimError> {
    groups::delete(&state.ctx, &s.op, &s.client, &id, if_match(&headers)).await?;
    Ok(StatusCode::NO_CONTENT)
}
