//! The OpenAPI document, generated from the registered routes, then completed with what the
//! stack enforces around every handler (so generated clients expect what the server does):
//! the problem document for every error, and the answers the middleware gives — 400/413/415/
//! 422 for request bodies, 400 for query strings, 401/403/404 from the access guard, 429 and
//! 503 where credentials are checked, 503 from the licence gate, 500 anywhere.

use axum::extract::State;
use axum::http::{Method, header};
use axum::response::IntoResponse;
use utoipa::openapi::path::Operation;
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};
use utoipa_axum::routes;
use warden_domain::access::Access;

use crate::http::problem::{ApiError, PROBLEM_JSON};
use crate::http::routes::{AccessTable, Routes};
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    Routes::new().add(Access::Public, routes!(openapi_json))
}

/// The OpenAPI 3.1 document describing every route of this server.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "OpenAPI document", content_type = "application/json")))]
pub(crate) async fn openapi_json(State(state): State<AppState>) -> impl IntoResponse {
    match state.openapi_json.get() {
        Some(doc) => Ok(([(header::CONTENT_TYPE, "application/json")], doc.clone())),
        None => Err(ApiError::internal(&"OpenAPI document not assembled")),
    }
}

/// Routes whose credential check is throttled (429) and bounded (503 `server-busy`).
const CREDENTIAL_ROUTES: &[&str] = &[
    "/api/v1/auth/sign-in",
    "/api/v1/auth/refresh",
    "/api/v1/me/password",
];

/// Adds the problem schema and, to every operation, the error answers the stack gives it.
pub fn complete(doc: &mut OpenApi, table: &AccessTable) {
    let components = doc.components.get_or_insert_with(Default::default);
    components.schemas.insert(
        "Problem".to_owned(),
        <crate::http::problem::Problem<'_> as utoipa::PartialSchema>::schema(),
    );
    components.schemas.insert(
        "FieldProblem".to_owned(),
        <crate::http::problem::FieldProblem as utoipa::PartialSchema>::schema(),
    );
    // Each standard answer is described once and referenced by every operation.
    for status in [400, 401, 403, 404, 413, 415, 422, 429, 500, 503] {
        let standard = warden_core::Code::for_status(status);
        let (code, sentence) = (standard.as_str(), standard.sentence());
        let response = ResponseBuilder::new()
            .description(format!(
                "{sentence} (problem code `{code}` or a more specific one)"
            ))
            .content(PROBLEM_JSON, problem())
            .build();
        components
            .responses
            .insert(format!("Problem{status}"), RefOr::T(response));
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        for (method, op) in [
            (Method::GET, item.get.as_mut()),
            (Method::PUT, item.put.as_mut()),
            (Method::POST, item.post.as_mut()),
            (Method::DELETE, item.delete.as_mut()),
            (Method::PATCH, item.patch.as_mut()),
        ] {
            let Some(op) = op else { continue };
            let access = table.rule(&method, path);
            for status in statuses(path, op, access) {
                add_problem(op, status);
            }
        }
    }
}

fn statuses(path: &str, op: &Operation, access: Option<Access>) -> Vec<u16> {
    let mut out = Vec::new();
    if op.request_body.is_some() {
        out.extend([400, 413, 415, 422]);
    }
    let has_query = op.parameters.as_ref().is_some_and(|ps| {
        ps.iter().any(|p| match p {
            RefOr::T(p) => matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query),
            RefOr::Ref(_) => false,
        })
    });
    if has_query {
        out.push(400);
    }
    match access {
        Some(Access::Public) | None => {}
        Some(Access::Host) => out.extend([401, 429]),
        // The gateway answers in its clients' own error format, declared on each route.
        Some(Access::LlmKey) => return Vec::new(),
        Some(Access::McpToken) => out.extend([401, 403]),
        Some(Access::SignedIn) => out.push(401),
        Some(Access::Platform(_)) => out.extend([401, 403]),
        Some(Access::Workspace(_)) => out.extend([401, 403, 404]),
    }
    if CREDENTIAL_ROUTES.contains(&path) {
        out.extend([429, 503]);
    }
    if path.starts_with("/api/") {
        out.push(503);
    }
    out.push(500);
    out
}

fn problem() -> utoipa::openapi::Content {
    ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("Problem")))
        .build()
}

fn add_problem(op: &mut Operation, status: u16) {
    let key = status.to_string();
    match op.responses.responses.get_mut(&key) {
        // Declared by hand: make sure it names the problem document too (an endpoint with
        // answers of its own, such as OAuth's token errors, still refuses a malformed
        // request with a problem document).
        Some(RefOr::T(declared)) => {
            declared
                .content
                .insert(PROBLEM_JSON.to_owned(), RefOr::T(problem()));
        }
        Some(RefOr::Ref(_)) => {}
        None => {
            let shared = Ref::new(format!("#/components/responses/Problem{status}"));
            op.responses.responses.insert(key, RefOr::Ref(shared));
        }
    }
}
